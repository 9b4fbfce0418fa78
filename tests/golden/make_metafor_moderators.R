# Golden numbers for evidence/moderators.py (meta_regression_nested) from metafor.
# Run from the repository root:  Rscript tests/golden/make_metafor_moderators.R
# Writes tests/golden/metafor_moderators.json. Needs R with metafor (3.8-1 was used) and
# jsonlite.
#
# Every case is rma.mv(yi, vi, mods = <formula>, random = ~ 1 | <levels>, method, test)
# with MV_CTRL passed to nlminb (rel.tol = 1e-12 instead of 1e-10, far more iterations);
# where a variance component sits at 0, or two components are confounded, nlminb cannot
# meet that on metafor's log scale and the case falls back to the default rel.tol = 1e-10
# (its "fallback" flag is true and its call says so).
# Inputs are rounded to 15 significant digits before fitting (signif(x, 15)) so the JSON,
# which jsonlite writes with 15 significant digits, holds exactly the data R used.
# Effects are labelled source / site / effect; "site" is read within its source.
# Moderator values that are NA are dropped by rma.mv (na.action = "na.omit", with a
# warning); k is the number fitted, k_all the number given.
# rma.mv reports no R^2: "pseudo_r2" is computed here from two rma.mv fits of the same
# rows, 100 * (sum(sigma2_null) - sum(sigma2)) / sum(sigma2_null) truncated to [0, 100],
# sigma2_null from the intercept-only model (same random formula, method and control).

suppressMessages(library(metafor))
library(jsonlite)

MV_CTRL <- list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000)
MV_CTRL_STR <- "control = list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000)"
MV_CTRL_FALLBACK <- list(iter.max = 10000, eval.max = 10000)
MV_CTRL_FALLBACK_STR <- "control = list(iter.max = 10000, eval.max = 10000)"
fix <- function(x) signif(x, 15)
num <- function(x) if (is.null(x)) NA_real_ else unname(as.numeric(x))
LEVELS <- c("source", "site", "effect")

# ------------------------------------------------------------------ data sets
konst <- dat.konstantopoulos2011
assink <- dat.assink2016

set.seed(20261201)
# nested: 30 sources of 1-4 sites of 1-5 effects; x a site-level moderator (as warming in
# degrees C) with 10 % of effects missing it, biome a source-level factor of 3 levels;
# sigma2 = (.03 source, .02 site, .01 effect)
n_site <- sample(1:4, 30, replace = TRUE)
site_src <- rep(seq_along(n_site), n_site)
site_no <- unlist(lapply(n_site, seq_len))
n_eff <- sample(1:5, length(site_src), replace = TRUE)
src_nest <- rep(site_src, n_eff)
site_nest <- rep(site_no, n_eff)
k_nest <- length(src_nest)
vi_nest <- runif(k_nest, 0.005, 0.08)
x_site <- round(runif(length(site_src), 0.5, 6), 2)
x_nest <- rep(x_site, n_eff)
biome_src <- sample(c("boreal", "temperate", "tropical"), 30, replace = TRUE)
biome_nest <- biome_src[src_nest]
shift <- c(boreal = 0, temperate = -0.15, tropical = 0.1)
yi_nest <- 0.1 - 0.04 * x_nest + shift[biome_nest] + rnorm(30, 0, sqrt(0.03))[src_nest] +
  rep(rnorm(length(site_src), 0, sqrt(0.02)), n_eff) + rnorm(k_nest, 0, sqrt(0.01 + vi_nest))
x_nest_na <- x_nest
x_nest_na[sample(k_nest, round(0.1 * k_nest))] <- NA
# every source one site: 25 sources of 2-6 effects, x a source-level moderator
n_one <- sample(2:6, 25, replace = TRUE)
src_one <- rep(seq_along(n_one), n_one)
vi_one <- runif(length(src_one), 0.01, 0.1)
x_one <- rep(round(runif(25, 0, 20), 1), n_one)
yi_one <- -0.1 + 0.02 * x_one + rnorm(25, 0, 0.25)[src_one] +
  rnorm(length(src_one), 0, sqrt(0.02 + vi_one))
# one source of 8 sites of 2-5 effects, x a site-level moderator
n_single <- sample(2:5, 8, replace = TRUE)
site_single <- rep(seq_along(n_single), n_single)
vi_single <- runif(length(site_single), 0.01, 0.06)
x_single <- rep(round(runif(8, 10, 90)), n_single)
yi_single <- 0.3 - 0.004 * x_single + rnorm(8, 0, 0.2)[site_single] +
  rnorm(length(site_single), 0, sqrt(0.01 + vi_single))

data_sets <- list(
  konstantopoulos2011 = list(
    yi = fix(konst$yi), vi = fix(konst$vi), source = konst$district, site = konst$school,
    moderators = list(year = konst$year),
    description = "dat.konstantopoulos2011 as shipped; source = district, site = school (one effect per school); year"),
  assink2016 = list(
    yi = fix(assink$yi), vi = fix(assink$vi), source = assink$study, site = assink$esid,
    moderators = list(year = assink$year, deltype = assink$deltype),
    description = "dat.assink2016 as shipped; source = study, site = esid (one effect per esid); year (centred in the data set), deltype (covert/general/overt)"),
  synthetic_nested = list(
    yi = fix(unname(yi_nest)), vi = fix(vi_nest), source = src_nest, site = site_nest,
    moderators = list(x = x_nest_na, biome = biome_nest),
    description = "set.seed(20261201); 30 sources of sample(1:4) sites of sample(1:5) effects; x = site-level round(runif(.5, 6), 2) with 10 % of effects set to NA, biome = source-level sample of boreal/temperate/tropical; yi = .1 - .04 x + (0, -.15, .1)[biome] + u, sigma2 = (.03, .02, .01), vi = runif(.005, .08) (yi uses x before the NAs)"),
  synthetic_one_site = list(
    yi = fix(yi_one), vi = fix(vi_one), source = src_one, site = rep(1L, length(src_one)),
    moderators = list(x = x_one),
    description = "same seed, next draws: 25 sources of sample(2:6) effects, each source one site; x = source-level round(runif(0, 20), 1); yi = -.1 + .02 x + u, sigma2 = (.0625 source, .02 effect)"),
  synthetic_one_source = list(
    yi = fix(yi_single), vi = fix(vi_single), source = rep(1L, length(site_single)),
    site = site_single, moderators = list(x = x_single),
    description = "same seed, next draws: one source of 8 sites of sample(2:5) effects; x = site-level round(runif(10, 90)); yi = .3 - .004 x + u, sigma2 = (.04 site, .01 effect)")
)

frame <- function(d) {
  df <- data.frame(yi = d$yi, vi = d$vi, source = d$source, site = d$site,
                   effect = seq_along(d$yi))
  for (name in names(d$moderators)) df[[name]] <- d$moderators[[name]]
  df
}

# new moderator values for predict(): a grid over each numeric moderator's range and
# every level of each factor, all combinations
new_rows <- function(df, mods) {
  values <- lapply(mods, function(m) {
    x <- df[[m]]
    if (is.numeric(x)) {
      r <- range(x, na.rm = TRUE)
      signif(seq(r[1], r[2], length.out = 4), 6)
    } else {
      sort(unique(x))
    }
  })
  names(values) <- mods
  expand.grid(values, stringsAsFactors = FALSE)
}

fit_mv <- function(df, mods_formula, random, method, test) {
  fit <- function(ctrl) {
    suppressWarnings(try(rma.mv(yi, vi, mods = mods_formula, random = random, data = df,
                                method = method, test = test, control = ctrl),
                         silent = TRUE))
  }
  res <- fit(MV_CTRL)
  ctrl_str <- MV_CTRL_STR
  if (inherits(res, "try-error")) {
    res <- fit(MV_CTRL_FALLBACK)
    ctrl_str <- MV_CTRL_FALLBACK_STR
  }
  if (inherits(res, "try-error")) stop(res)
  list(res = res, ctrl = ctrl_str)
}

full_sigma2 <- function(res, levels) {
  sigma2 <- setNames(rep(0, 3), LEVELS)  # levels absent from the formula have no variance
  sigma2[levels] <- res$sigma2
  sigma2
}

case <- function(name, mods, levels, method, test) {
  d <- data_sets[[name]]
  df <- frame(d)
  for (m in mods) if (is.character(df[[m]])) df[[m]] <- factor(df[[m]])
  rhs <- paste(mods, collapse = " + ")
  mods_formula <- as.formula(paste("~", rhs))
  random <- as.formula(paste("~ 1 |", paste(levels, collapse = "/")))
  f <- fit_mv(df, mods_formula, random, method, test)
  res <- f$res
  # the intercept-only model of the same rows, for the pseudo R^2
  used <- complete.cases(df[mods])
  f0 <- fit_mv(df[used, ], ~ 1, random, method, test)
  s <- sum(res$sigma2)
  s0 <- sum(f0$res$sigma2)
  r2 <- if (s0 > 0) min(100, max(0, 100 * (s0 - s) / s0)) else 0
  new <- new_rows(df, mods)
  new_df <- new
  for (m in mods) if (is.factor(df[[m]])) new_df[[m]] <- factor(new[[m]], levels = levels(df[[m]]))
  X_new <- model.matrix(mods_formula, data = new_df)[, -1, drop = FALSE]
  pr <- predict(res, newmods = X_new)
  list(data = name, mods = I(mods), levels = I(levels), method = method, test = test,
       fallback = f$ctrl != MV_CTRL_STR, null_fallback = f0$ctrl != MV_CTRL_STR,
       call = sprintf('rma.mv(yi, vi, mods = ~ %s, random = ~ 1 | %s, method = "%s", test = "%s", %s)',
                      gsub("(deltype|biome)", "factor(\\1)", rhs),
                      paste(levels, collapse = "/"), method, test, f$ctrl),
       null_call = sprintf('rma.mv(yi, vi, random = ~ 1 | %s, method = "%s", test = "%s", %s) on the same rows',
                           paste(levels, collapse = "/"), method, test, f0$ctrl),
       k = res$k, k_all = nrow(df), n_levels = num(res$s.nlevels),
       sigma2 = num(full_sigma2(res, levels)), sigma2_fixed = num(res$vc.fix$sigma2),
       sigma2_null = num(full_sigma2(f0$res, levels)), pseudo_r2 = r2,
       terms = I(rownames(res$beta)), estimate = num(res$beta), se = num(res$se),
       statistic = num(res$zval), pvalue = num(res$pval), ci_low = num(res$ci.lb),
       ci_high = num(res$ci.ub), ddf = num(res$ddf),
       qm = num(res$QM), qm_df = num(res$QMdf[1]), qm_ddf = num(res$QMdf[2]),
       qm_pvalue = num(res$QMp), qe = num(res$QE), qe_df = res$k - res$p,
       qe_pvalue = num(res$QEp), loglik = num(logLik(res)), weights = num(weights(res)),
       new = as.list(new), pred = num(pr$pred), pred_se = num(pr$se),
       pred_ci_low = num(pr$ci.lb), pred_ci_high = num(pr$ci.ub),
       pred_pi_low = num(pr$pi.lb), pred_pi_high = num(pr$pi.ub))
}

# ------------------------------------------------------------------ cases
three <- c("source", "site", "effect")
two <- c("source", "site")
grid <- function(data, mods, levels, methods = c("REML", "ML"), tests = c("z", "t")) {
  g <- expand.grid(method = methods, test = tests, stringsAsFactors = FALSE)
  Map(function(method, test) case(data, mods, levels, method, test), g$method, g$test)
}
cases <- c(
  # the usual three-level models of these data (effects in schools in districts; in
  # studies), and the same with an effect level confounded with the site level
  grid("konstantopoulos2011", "year", two),
  grid("konstantopoulos2011", "year", three, tests = "z"),
  grid("assink2016", "year", two),
  grid("assink2016", "deltype", two),
  grid("assink2016", c("year", "deltype"), two, tests = "z"),
  grid("assink2016", c("year", "deltype"), three, methods = "REML", tests = "t"),
  # synthetic three-level data with missing moderator values
  grid("synthetic_nested", "x", three),
  grid("synthetic_nested", "biome", three, tests = "z"),
  grid("synthetic_nested", c("x", "biome"), three),
  # degenerate designs
  grid("synthetic_one_site", "x", three),
  grid("synthetic_one_source", "x", three, tests = "z")
)

out <- list(
  source = list(r_version = R.version.string,
                metafor_version = as.character(packageVersion("metafor")),
                date = as.character(Sys.Date()),
                script = "tests/golden/make_metafor_moderators.R",
                rma_mv_control = MV_CTRL_STR,
                rma_mv_fallback_control = MV_CTRL_FALLBACK_STR,
                note = "inputs rounded with signif(x, 15) before fitting; null = NA in R; sigma2 listed as (source, site, effect), 0 for a level absent from the formula; factors are R's factor() of the text values (sorted levels, first the reference); pseudo_r2 is computed from two rma.mv fits, not reported by metafor"),
  data = data_sets,
  cases = unname(cases))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", null = "null",
                  pretty = 1),
           "tests/golden/metafor_moderators.json")
