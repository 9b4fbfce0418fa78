# Golden numbers for evidence/{effect_sizes,pooling,regression,subgroups}.py from metafor.
# Run from the repository root:  Rscript tests/golden/make_metafor_core.R
# Writes tests/golden/metafor_core.json. Needs R with metafor (3.8-1 was used) and jsonlite.
#
# Every fitted model uses CTRL below so the iterative estimators are converged far beyond
# metafor's defaults: Fisher scoring (ML/REML/EB) stops when tau^2 changes by < 1e-12,
# uniroot() (PM, Q-profile CI) uses tol = 1e-12.
# All inputs are rounded to 15 significant digits before fitting (signif(x, 15)) so the
# JSON, which jsonlite writes with 15 significant digits, holds exactly the data R used.

suppressMessages(library(metafor))
library(jsonlite)

CTRL <- list(threshold = 1e-12, maxiter = 10000, tol = 1e-12)
CTRL_STR <- "control = list(threshold = 1e-12, maxiter = 10000, tol = 1e-12)"
CI_CTRL <- list(tol = 1e-12)
METHODS <- c("FE", "DL", "REML", "ML", "PM", "HS", "SJ", "HE", "EB")
TESTS <- c("z", "knha")
fix <- function(x) signif(x, 15)
num <- function(x) if (is.null(x)) NA_real_ else as.numeric(x)

# ------------------------------------------------------------------ data sets
bcg <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
curtis <- escalc("ROM", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
                 n2i = n2i, data = dat.curtis1998)
normand <- escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
                  n2i = n2i, data = dat.normand1999)
set.seed(20240601)
k_het <- 25
vi_het <- runif(k_het, 0.01, 0.2)
yi_het <- rnorm(k_het, 0.3, sqrt(vi_het + 0.05))
vi_hom <- runif(15, 0.02, 0.1)
yi_hom <- rnorm(15, -0.1, sqrt(vi_hom) * 0.3)  # far less spread than vi implies: tau^2 -> 0
data_sets <- list(
  bcg = list(yi = fix(bcg$yi), vi = fix(bcg$vi),
             description = 'dat.bcg, escalc("RR", ai=tpos, bi=tneg, ci=cpos, di=cneg)'),
  curtis1998 = list(yi = fix(curtis$yi), vi = fix(curtis$vi),
                    description = 'dat.curtis1998, escalc("ROM", m1i, sd1i, n1i, m2i, sd2i, n2i)'),
  normand1999 = list(yi = fix(normand$yi), vi = fix(normand$vi),
                     description = 'dat.normand1999, escalc("MD", ...)'),
  hackshaw1998 = list(yi = fix(dat.hackshaw1998$yi), vi = fix(dat.hackshaw1998$vi),
                      description = "dat.hackshaw1998 (log odds ratios as shipped)"),
  synthetic_het = list(yi = fix(yi_het), vi = fix(vi_het),
                       description = "set.seed(20240601); vi = runif(25, .01, .2); yi = rnorm(25, .3, sqrt(vi + .05))"),
  synthetic_hom = list(yi = fix(yi_hom), vi = fix(vi_hom),
                       description = "same seed, next draws: vi = runif(15, .02, .1); yi = rnorm(15, -.1, .3 sqrt(vi)) (homogeneous)"),
  k2 = list(yi = fix(yi_het[1:2]), vi = fix(vi_het[1:2]),
            description = "first two studies of synthetic_het"),
  k1 = list(yi = fix(yi_het[3]), vi = fix(vi_het[3]),
            description = "third study of synthetic_het")
)

# ------------------------------------------------------------------ pooling
pool_case <- function(name, method, test) {
  d <- data_sets[[name]]
  call <- sprintf('rma(yi, vi, method = "%s", test = "%s", %s)', method, test, CTRL_STR)
  res <- suppressWarnings(rma(d$yi, d$vi, method = method, test = test, control = CTRL))
  pr <- predict(res)
  ci <- NULL
  ci90 <- NULL
  if (method != "FE" && res$k > 1) {
    ci <- confint(res, control = CI_CTRL)$random
    ci <- list(tau2 = unname(ci["tau^2", 2:3]), I2 = unname(ci["I^2(%)", 2:3]),
               H2 = unname(ci["H^2", 2:3]))
    ci90 <- confint(res, level = 0.90, control = CI_CTRL)$random
    ci90 <- list(tau2 = unname(ci90["tau^2", 2:3]), I2 = unname(ci90["I^2(%)", 2:3]),
                 H2 = unname(ci90["H^2", 2:3]))
  }
  list(dataset = name, method = method, test = test, call = call,
       confint_call = if (is.null(ci)) NA else "confint(res, control = list(tol = 1e-12))",
       estimate = num(res$beta), se = num(res$se), statistic = num(res$zval),
       pvalue = num(res$pval), ci_low = num(res$ci.lb), ci_high = num(res$ci.ub),
       pi_low = num(pr$pi.lb), pi_high = num(pr$pi.ub), tau2 = num(res$tau2),
       I2 = num(res$I2), H2 = num(res$H2), QE = num(res$QE), QEp = num(res$QEp),
       weights = unname(weights(res)), confint = ci,
       confint90_call = if (is.null(ci)) NA else "confint(res, level = 0.90, control = list(tol = 1e-12))",
       confint90 = ci90)
}
pool_cases <- list()
for (name in names(data_sets)) for (method in METHODS) for (test in TESTS) {
  if (name == "k1" && test == "knha") next  # metafor returns se = 0 there; we raise
  pool_cases[[length(pool_cases) + 1]] <- pool_case(name, method, test)
}

# ------------------------------------------------------------------ meta-regression
bcg_mods <- data.frame(ablat = bcg$ablat, alloc = bcg$alloc)
curtis_mods <- data.frame(time = curtis$time, method = as.character(curtis$method))
reg_sets <- list(
  bcg = list(data = "bcg", mods = bcg_mods, formula = "~ ablat + factor(alloc)",
             new = data.frame(ablat = c(10, 30, 55), alloc = c("alternate", "random", "systematic"))),
  curtis1998 = list(data = "curtis1998", mods = curtis_mods, formula = "~ time + factor(method)",
                    new = data.frame(time = c(20, 100, 400), method = c("GC", "GH", "OTC")))
)
reg_case <- function(name, method, test) {
  s <- reg_sets[[name]]
  d <- data_sets[[s$data]]
  X <- model.matrix(as.formula(s$formula), s$mods)[, -1, drop = FALSE]
  call <- sprintf('rma(yi, vi, mods = %s, method = "%s", test = "%s", %s)', s$formula,
                  method, test, CTRL_STR)
  res <- suppressWarnings(rma(d$yi, d$vi, mods = X, method = method, test = test, control = CTRL))
  Xn <- model.matrix(as.formula(s$formula), rbind(s$mods, s$new))[-seq_len(nrow(s$mods)), -1, drop = FALSE]
  pr <- predict(res, newmods = Xn)
  list(dataset = name, method = method, test = test, call = call,
       predict_call = "predict(res, newmods = model.matrix(formula, new)[, -1])",
       terms = rownames(res$beta), estimate = num(res$beta), se = num(res$se),
       statistic = num(res$zval), pvalue = num(res$pval), ci_low = num(res$ci.lb),
       ci_high = num(res$ci.ub), QM = num(res$QM), QMdf = num(res$QMdf), QMp = num(res$QMp),
       QE = num(res$QE), QEp = num(res$QEp), tau2 = num(res$tau2), I2 = num(res$I2),
       H2 = num(res$H2), R2 = num(res$R2),
       predict = list(pred = num(pr$pred), se = num(pr$se), ci_low = num(pr$ci.lb),
                      ci_high = num(pr$ci.ub), pi_low = num(pr$pi.lb), pi_high = num(pr$pi.ub)))
}
reg_cases <- list()
for (name in names(reg_sets)) for (method in METHODS) for (test in TESTS)
  reg_cases[[length(reg_cases) + 1]] <- reg_case(name, method, test)
moderators <- lapply(reg_sets, function(s) list(data = s$data, columns = as.list(s$mods),
                                                 new = as.list(s$new)))

# ------------------------------------------------------------------ subgroups
sub_sets <- list(bcg = list(data = "bcg", groups = as.character(bcg$alloc)),
                 curtis1998 = list(data = "curtis1998", groups = as.character(curtis$fungrp)))
separate_case <- function(name, method, test) {
  s <- sub_sets[[name]]
  d <- data_sets[[s$data]]
  levels <- sort(unique(s$groups))
  fits <- lapply(levels, function(g) {
    i <- s$groups == g
    suppressWarnings(rma(d$yi[i], d$vi[i], method = method, test = test, control = CTRL))
  })
  est <- sapply(fits, function(f) num(f$beta))
  se <- sapply(fits, function(f) num(f$se))
  between <- rma(est, sei = se, method = "FE")
  pr <- lapply(fits, predict)
  list(dataset = name, tau2 = "separate", method = method, test = test,
       call = sprintf('per group: rma(yi, vi, method = "%s", test = "%s", %s); between: rma(estimates, sei = se, method = "FE")$QE',
                      method, test, CTRL_STR),
       groups = levels, k = sapply(fits, function(f) f$k), estimate = est, se = se,
       ci_low = sapply(fits, function(f) num(f$ci.lb)), ci_high = sapply(fits, function(f) num(f$ci.ub)),
       pi_low = sapply(pr, function(p) num(p$pi.lb)), pi_high = sapply(pr, function(p) num(p$pi.ub)),
       tau2_groups = sapply(fits, function(f) num(f$tau2)), I2 = sapply(fits, function(f) num(f$I2)),
       QE = sapply(fits, function(f) num(f$QE)), QEp = sapply(fits, function(f) num(f$QEp)),
       Q_between = num(between$QE), Q_between_df = length(levels) - 1, Q_between_p = num(between$QEp))
}
common_case <- function(name, method, test) {
  s <- sub_sets[[name]]
  d <- data_sets[[s$data]]
  g <- factor(s$groups)
  res <- suppressWarnings(rma(d$yi, d$vi, mods = ~ g, method = method, test = test, control = CTRL))
  newmods <- model.matrix(~ g, data.frame(g = factor(levels(g), levels = levels(g))))[, -1, drop = FALSE]
  pr <- predict(res, newmods = newmods)
  list(dataset = name, tau2 = "common", method = method, test = test,
       call = sprintf('rma(yi, vi, mods = ~ factor(group), method = "%s", test = "%s", %s); predict() per level',
                      method, test, CTRL_STR),
       groups = levels(g), estimate = num(pr$pred), se = num(pr$se), ci_low = num(pr$ci.lb),
       ci_high = num(pr$ci.ub), pi_low = num(pr$pi.lb), pi_high = num(pr$pi.ub),
       tau2_common = num(res$tau2), I2 = num(res$I2), Q_between = num(res$QM),
       Q_between_df = num(res$QMdf[1]), Q_between_p = num(res$QMp))
}
sub_cases <- list()
for (name in names(sub_sets)) for (method in c("FE", "DL", "REML", "PM")) for (test in TESTS) {
  sub_cases[[length(sub_cases) + 1]] <- separate_case(name, method, test)
  sub_cases[[length(sub_cases) + 1]] <- common_case(name, method, test)
}
groups <- lapply(sub_sets, function(s) list(data = s$data, groups = s$groups))

# ------------------------------------------------------------------ effect sizes
es_inputs <- list(
  curtis1998 = dat.curtis1998[, c("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")],
  normand1999 = dat.normand1999[, c("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")]
)
es_case <- function(name, measure) {
  x <- es_inputs[[name]]
  e <- escalc(measure, m1i = x$m1i, sd1i = x$sd1i, n1i = x$n1i, m2i = x$m2i, sd2i = x$sd2i,
              n2i = x$n2i)
  list(dataset = name, measure = measure,
       call = sprintf('escalc("%s", m1i, sd1i, n1i, m2i, sd2i, n2i)', measure),
       yi = as.numeric(e$yi), vi = as.numeric(e$vi))
}
es_cases <- list()
for (name in names(es_inputs)) for (measure in c("ROM", "SMD", "MD"))
  es_cases[[length(es_cases) + 1]] <- es_case(name, measure)
# metafor 3.8-1 has no bias-corrected ROM: Lajeunesse (2015) written out in R instead
x <- es_inputs$curtis1998
cv_t <- x$sd1i^2 / (x$n1i * x$m1i^2)
cv_c <- x$sd2i^2 / (x$n2i * x$m2i^2)
es_cases[[length(es_cases) + 1]] <- list(
  dataset = "curtis1998", measure = "ROM_BC",
  call = "Lajeunesse (2015): yi = log(m1i/m2i) + (cv_t - cv_c)/2, vi = cv_t + cv_c + (cv_t^2 + cv_c^2)/2, cv = sd^2/(n m^2)",
  yi = log(x$m1i / x$m2i) + (cv_t - cv_c) / 2, vi = cv_t + cv_c + (cv_t^2 + cv_c^2) / 2)

# ------------------------------------------------------------------ write
out <- list(
  source = list(metafor_version = as.character(packageVersion("metafor")),
                r_version = R.version.string, date = format(Sys.time(), "%Y-%m-%d"),
                script = "tests/golden/make_metafor_core.R",
                control = CTRL_STR, confint_control = "control = list(tol = 1e-12)",
                note = "inputs rounded with signif(x, 15) before fitting; null = NA in R"),
  data = data_sets, moderators = moderators, groups = groups,
  effect_size_inputs = lapply(es_inputs, as.list),
  pool = pool_cases, meta_regression = reg_cases, subgroups = sub_cases,
  effect_sizes = es_cases
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", null = "null", pretty = FALSE),
           "tests/golden/metafor_core.json")
cat("wrote tests/golden/metafor_core.json:", length(pool_cases), "pool,", length(reg_cases),
    "meta-regression,", length(sub_cases), "subgroup,", length(es_cases), "effect-size cases\n")
