# Golden numbers for evidence/multilevel.py (pool_nested, pool_multilevel, robust_pool with
# CR1 and CR2) from metafor and clubSandwich.
# Run from the repository root:  Rscript tests/golden/make_metafor_multilevel.R
# Writes tests/golden/metafor_multilevel.json. Needs R with metafor (3.8-1 was used),
# clubSandwich (0.5.8) and jsonlite.
#
# Convergence: every rma() uses CTRL (Fisher scoring stops when tau^2 changes by < 1e-12).
# Every rma.mv() uses MV_CTRL, which nlminb() receives (rel.tol = 1e-12 instead of 1e-10,
# far more iterations); where a variance component sits at 0, or two components are
# confounded, nlminb cannot meet that on metafor's log scale and the case falls back to
# the default rel.tol = 1e-10 (its "fallback" flag is true and its call says so).
# Inputs are rounded to 15 significant digits before fitting (signif(x, 15)) so the JSON,
# which jsonlite writes with 15 significant digits, holds exactly the data R used.
# Effects are labelled source / site / effect; "site" is read within its source, as the
# nesting operator in ~ 1 | source/site does.

suppressMessages({
  library(metafor)
  library(clubSandwich)
})
library(jsonlite)

CTRL <- list(threshold = 1e-12, maxiter = 10000)
CTRL_STR <- "control = list(threshold = 1e-12, maxiter = 10000)"
MV_CTRL <- list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000)
MV_CTRL_STR <- "control = list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000)"
MV_CTRL_FALLBACK <- list(iter.max = 10000, eval.max = 10000)
MV_CTRL_FALLBACK_STR <- "control = list(iter.max = 10000, eval.max = 10000)"
fix <- function(x) signif(x, 15)
num <- function(x) if (is.null(x)) NA_real_ else unname(as.numeric(x))

# ------------------------------------------------------------------ data sets
konst <- dat.konstantopoulos2011
assink <- dat.assink2016

set.seed(20261130)
# nested: 30 sources of 1-4 sites of 1-5 effects; sigma2 = (.04 source, .02 site, .01 effect)
n_site <- sample(1:4, 30, replace = TRUE)
site_src <- rep(seq_along(n_site), n_site)
site_no <- unlist(lapply(n_site, seq_len))
n_eff <- sample(1:5, length(site_src), replace = TRUE)
src_nest <- rep(site_src, n_eff)
site_nest <- rep(site_no, n_eff)
k_nest <- length(src_nest)
vi_nest <- runif(k_nest, 0.005, 0.08)
u_src <- rnorm(30, 0, 0.2)
u_site <- rnorm(length(site_src), 0, sqrt(0.02))
yi_nest <- 0.15 + u_src[src_nest] + rep(u_site, n_eff) + rnorm(k_nest, 0, sqrt(0.01 + vi_nest))
# the same design with no between-site variance in the truth (sigma2_site near or at 0)
yi_nosite <- 0.15 + u_src[src_nest] + rnorm(k_nest, 0, sqrt(0.01 + vi_nest))
# every source one site: 25 sources of 2-6 effects
n_one <- sample(2:6, 25, replace = TRUE)
src_one <- rep(seq_along(n_one), n_one)
vi_one <- runif(length(src_one), 0.01, 0.1)
yi_one <- -0.1 + rnorm(25, 0, 0.25)[src_one] + rnorm(length(src_one), 0, sqrt(0.02 + vi_one))
# one source with 8 sites of 2-5 effects
n_single <- sample(2:5, 8, replace = TRUE)
site_single <- rep(seq_along(n_single), n_single)
vi_single <- runif(length(site_single), 0.01, 0.06)
yi_single <- 0.3 + rnorm(8, 0, 0.2)[site_single] +
  rnorm(length(site_single), 0, sqrt(0.01 + vi_single))

data_sets <- list(
  konstantopoulos2011 = list(
    yi = fix(konst$yi), vi = fix(konst$vi), source = konst$district, site = konst$school,
    description = "dat.konstantopoulos2011 as shipped; source = district, site = school (one effect per school)"),
  assink2016 = list(
    yi = fix(assink$yi), vi = fix(assink$vi), source = assink$study, site = assink$esid,
    description = "dat.assink2016 as shipped; source = study, site = esid (one effect per esid)"),
  synthetic_nested = list(
    yi = fix(yi_nest), vi = fix(vi_nest), source = src_nest, site = site_nest,
    description = "set.seed(20261130); 30 sources of sample(1:4) sites of sample(1:5) effects, mu = .15, sigma2 = (.04, .02, .01), vi = runif(.005, .08)"),
  synthetic_nosite = list(
    yi = fix(yi_nosite), vi = fix(vi_nest), source = src_nest, site = site_nest,
    description = "same design and draws as synthetic_nested, without the site effects (true sigma2_site = 0)"),
  synthetic_one_site = list(
    yi = fix(yi_one), vi = fix(vi_one), source = src_one, site = rep(1L, length(src_one)),
    description = "same seed, next draws: 25 sources of sample(2:6) effects, each source one site; mu = -.1, sigma2 = (.0625 source, .02 effect)"),
  synthetic_one_source = list(
    yi = fix(yi_single), vi = fix(vi_single), source = rep(1L, length(site_single)),
    site = site_single,
    description = "same seed, next draws: one source of 8 sites of sample(2:5) effects; mu = .3, sigma2 = (.04 site, .01 effect)")
)

frame <- function(d) {
  data.frame(yi = d$yi, vi = d$vi, source = d$source, site = d$site, effect = seq_along(d$yi))
}

# ------------------------------------------------------------------ rma.mv fits
fit_mv <- function(df, formula, method, test, level = 95) {
  fit <- function(ctrl) {
    suppressWarnings(try(rma.mv(yi, vi, random = formula, data = df, method = method,
                                test = test, level = level, control = ctrl), silent = TRUE))
  }
  res <- fit(MV_CTRL)
  ctrl_str <- MV_CTRL_STR
  if (inherits(res, "try-error")) {
    # a component at 0, or two confounded: nlminb cannot meet rel.tol = 1e-12 on the log scale
    res <- fit(MV_CTRL_FALLBACK)
    ctrl_str <- MV_CTRL_FALLBACK_STR
  }
  list(res = res, ctrl = ctrl_str)
}

LEVELS <- c("source", "site", "effect")

nested_case <- function(name, levels, method, test) {
  d <- data_sets[[name]]
  formula <- as.formula(paste("~ 1 |", paste(levels, collapse = "/")))
  f <- fit_mv(frame(d), formula, method, test)
  res <- f$res
  pr <- predict(res)
  sigma2 <- setNames(rep(0, 3), LEVELS)  # levels absent from the formula have no variance
  sigma2[levels] <- res$sigma2
  list(data = name, levels = levels, method = method, test = test,
       fallback = f$ctrl != MV_CTRL_STR,
       call = sprintf('rma.mv(yi, vi, random = ~ 1 | %s, method = "%s", test = "%s", %s)',
                      paste(levels, collapse = "/"), method, test, f$ctrl),
       k = res$k, n_levels = num(res$s.nlevels), sigma2 = num(sigma2),
       sigma2_fixed = num(res$vc.fix$sigma2),
       estimate = num(res$beta), se = num(res$se), statistic = num(res$zval),
       pvalue = num(res$pval), ci_low = num(res$ci.lb), ci_high = num(res$ci.ub),
       pi_low = num(pr$pi.lb), pi_high = num(pr$pi.ub), q = num(res$QE),
       q_pvalue = num(res$QEp), loglik = num(logLik(res)))
}

# ------------------------------------------------------------------ robust
robust_fields <- function(r) {
  list(n_clusters = r$n, df = num(r$dfs), estimate = num(r$beta), se = num(r$se),
       statistic = num(r$zval), pvalue = num(r$pval), ci_low = num(r$ci.lb),
       ci_high = num(r$ci.ub))
}

# working model rma(yi, vi): clustered by source
robust_re_case <- function(name, method, vcov, adjust = TRUE, level = 95) {
  d <- data_sets[[name]]
  fit <- suppressWarnings(rma(d$yi, d$vi, method = method, level = level, control = CTRL))
  if (vcov == "CR2") {
    r <- robust(fit, cluster = d$source, clubSandwich = TRUE)
    how <- "clubSandwich = TRUE"
  } else {
    r <- robust(fit, cluster = d$source, adjust = adjust, clubSandwich = FALSE)
    how <- sprintf("adjust = %s, clubSandwich = FALSE", adjust)
  }
  c(list(data = name, working = "RE", method = method, vcov = vcov, adjust = adjust,
         alpha = 1 - level / 100, tau2 = num(fit$tau2),
         call = sprintf('robust(rma(yi, vi, method = "%s", level = %s, %s), cluster = source, %s)',
                        method, level, CTRL_STR, how)),
    robust_fields(r))
}

# working model rma.mv(yi, vi, random = ~ 1 | source/site[/effect]): clustered by source
robust_mv_case <- function(name, levels, method, vcov, adjust = TRUE, level = 95) {
  d <- data_sets[[name]]
  formula <- as.formula(paste("~ 1 |", paste(levels, collapse = "/")))
  f <- fit_mv(frame(d), formula, method, "z", level)
  if (vcov == "CR2") {
    r <- robust(f$res, cluster = d$source, clubSandwich = TRUE)
    how <- "clubSandwich = TRUE"
  } else {
    r <- robust(f$res, cluster = d$source, adjust = adjust, clubSandwich = FALSE)
    how <- sprintf("adjust = %s, clubSandwich = FALSE", adjust)
  }
  sigma2 <- setNames(rep(0, 3), LEVELS)
  sigma2[levels] <- f$res$sigma2
  c(list(data = name, working = "nested", levels = levels, method = method, vcov = vcov,
         adjust = adjust, alpha = 1 - level / 100, sigma2 = num(sigma2),
         fallback = f$ctrl != MV_CTRL_STR,
         call = sprintf('robust(rma.mv(yi, vi, random = ~ 1 | %s, method = "%s", level = %s, %s), cluster = source, %s)',
                        paste(levels, collapse = "/"), method, level, f$ctrl, how)),
    robust_fields(r))
}

# ------------------------------------------------------------------ cases
three <- c("source", "site", "effect")
two <- c("source", "site")
nested_grid <- rbind(
  expand.grid(data = c("synthetic_nested", "synthetic_nosite"), method = c("REML", "ML"),
              test = c("z", "t"), stringsAsFactors = FALSE),
  expand.grid(data = c("konstantopoulos2011", "assink2016", "synthetic_one_site",
                       "synthetic_one_source"),
              method = c("REML", "ML"), test = "z", stringsAsFactors = FALSE))
nested <- Map(function(data, method, test) nested_case(data, three, method, test),
              nested_grid$data, nested_grid$method, nested_grid$test)
# the usual three-level model of these data: effects in schools (esid) in districts (studies)
two_level <- Map(function(data, method) nested_case(data, two, method, "z"),
                 rep(c("konstantopoulos2011", "assink2016"), each = 2), c("REML", "ML"))

cr2_data <- c("konstantopoulos2011", "assink2016", "synthetic_nested", "synthetic_one_site")
robust_re <- c(
  Map(function(data, method) robust_re_case(data, method, "CR2"),
      rep(cr2_data, each = 3), c("REML", "DL", "FE")),
  list(robust_re_case("synthetic_nested", "REML", "CR2", level = 90)))
robust_mv <- c(
  Map(function(data, method) robust_mv_case(data, two, method, "CR2"),
      rep(c("konstantopoulos2011", "assink2016"), each = 2), c("REML", "ML")),
  Map(function(data, method) robust_mv_case(data, three, method, "CR2"),
      rep(c("synthetic_nested", "synthetic_nosite", "synthetic_one_site"), each = 2),
      c("REML", "ML")),
  list(robust_mv_case("synthetic_nested", three, "REML", "CR2", level = 90),
       robust_mv_case("synthetic_nested", three, "REML", "CR1", adjust = TRUE),
       robust_mv_case("synthetic_nested", three, "REML", "CR1", adjust = FALSE),
       robust_mv_case("konstantopoulos2011", two, "REML", "CR1", adjust = TRUE)))

out <- list(
  source = list(r_version = R.version.string,
                metafor_version = as.character(packageVersion("metafor")),
                clubSandwich_version = as.character(packageVersion("clubSandwich")),
                date = as.character(Sys.Date()),
                script = "tests/golden/make_metafor_multilevel.R",
                control = CTRL_STR, rma_mv_control = MV_CTRL_STR,
                rma_mv_fallback_control = MV_CTRL_FALLBACK_STR,
                note = "inputs rounded with signif(x, 15) before fitting; null = NA in R; sigma2 listed as (source, site, effect), 0 for a level absent from the formula"),
  data = data_sets,
  nested = unname(c(nested, two_level)),
  robust = unname(c(robust_re, robust_mv)))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", null = "null",
                  pretty = 1),
           "tests/golden/metafor_multilevel.json")
