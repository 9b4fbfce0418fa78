# Golden numbers for synthesis tables (evidence/synthesis.py, model = "multilevel" and
# "robust") on groups of the shipped SRDB warming effects, from metafor and clubSandwich.
# Run from the repository root:
#   python tests/golden/export_synthesis_groups.py   # writes tests/golden/synthesis_groups.csv
#   Rscript tests/golden/make_metafor_synthesis.R    # writes tests/golden/metafor_synthesis.json
# Needs R with metafor (3.8-1 was used), clubSandwich (0.5.8) and jsonlite.
#
# Each group's rows are the effects synthesize() pools for soil_respiration (finite yi,
# vi > 0): site = study_id, source = source_key (the site itself when it has none).
# Multilevel: rma.mv(yi, vi, random = ~ 1 | source/site/effect) with one effect level per
# row. Convergence: nlminb with rel.tol = 1e-12 (MV_CTRL); where a component sits at 0 or
# two are confounded nlminb cannot meet that on metafor's log scale, and the fit is made
# with optim's BFGS at reltol = 1e-14 instead (MV_CTRL_BFGS, flagged "fallback": its
# log-likelihood agrees with evidence's to ~1e-14, where nlminb's default rel.tol = 1e-10
# stops up to 1e-8 short of the maximum). I2 is metafor's FAQ formula for multilevel models
# (Cheung 2014): 100 sum(sigma2) / (sum(sigma2) + (k - p) / tr(P)), P = W - W X (X'W X)^-1 X'W,
# W = diag(1 / vi). Robust: rma(yi, vi, method) as working model, clubSandwich's
# coef_test(fit, vcov = "CR2", cluster = source, test = "Satterthwaite") and conf_int(),
# and the prediction interval of predict(robust(fit, cluster = source, clubSandwich = TRUE)).

suppressMessages({
  library(metafor)
  library(clubSandwich)
})
library(jsonlite)

CTRL <- list(threshold = 1e-12, maxiter = 10000)
CTRL_STR <- "control = list(threshold = 1e-12, maxiter = 10000)"
MV_CTRL <- list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000)
MV_CTRL_STR <- "control = list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000)"
MV_CTRL_FALLBACK <- list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-14, maxit = 10000)
MV_CTRL_FALLBACK_STR <- 'control = list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-14, maxit = 10000)'
num <- function(x) if (is.null(x)) NA_real_ else unname(as.numeric(x))

rows <- read.csv("tests/golden/synthesis_groups.csv", colClasses = c(
  "character", "character", "numeric", "numeric", "character", "character"))
groups <- unique(rows[c("facet", "value")])

group_data <- function(facet, value) {
  d <- rows[rows$facet == facet & rows$value == value, ]
  d$effect <- seq_len(nrow(d))
  d
}

fit_mv <- function(d, method, test) {
  fit <- function(ctrl) {
    suppressWarnings(try(rma.mv(yi, vi, random = ~ 1 | source/site/effect, data = d,
                                method = method, test = test, control = ctrl), silent = TRUE))
  }
  res <- fit(MV_CTRL)
  ctrl_str <- MV_CTRL_STR
  if (inherits(res, "try-error")) {
    res <- fit(MV_CTRL_FALLBACK)
    ctrl_str <- MV_CTRL_FALLBACK_STR
  }
  list(res = res, ctrl = ctrl_str)
}

multilevel_i2 <- function(res, vi) {
  W <- diag(1 / vi)
  X <- model.matrix(res)
  P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W
  100 * sum(res$sigma2) / (sum(res$sigma2) + (res$k - res$p) / sum(diag(P)))
}

multilevel_case <- function(facet, value, method, test) {
  d <- group_data(facet, value)
  f <- fit_mv(d, method, test)
  res <- f$res
  pr <- predict(res)
  list(facet = facet, value = value, model = "multilevel", method = method, test = test,
       fallback = f$ctrl != MV_CTRL_STR,
       call = sprintf('rma.mv(yi, vi, random = ~ 1 | source/site/effect, method = "%s", test = "%s", %s)',
                      method, test, f$ctrl),
       k = res$k, n_levels = num(res$s.nlevels), sigma2 = num(res$sigma2),
       sigma2_fixed = num(res$vc.fix$sigma2), estimate = num(res$beta), se = num(res$se),
       ci_low = num(res$ci.lb), ci_high = num(res$ci.ub), pi_low = num(pr$pi.lb),
       pi_high = num(pr$pi.ub), i2 = multilevel_i2(res, d$vi), q_pvalue = num(res$QEp),
       loglik = num(logLik(res)))
}

robust_case <- function(facet, value, method) {
  d <- group_data(facet, value)
  fit <- suppressWarnings(rma(yi, vi, data = d, method = method, control = CTRL))
  ct <- coef_test(fit, vcov = "CR2", cluster = d$source, test = "Satterthwaite")
  ci <- conf_int(fit, vcov = "CR2", cluster = d$source, level = 0.95)
  pr <- predict(robust(fit, cluster = d$source, clubSandwich = TRUE))
  list(facet = facet, value = value, model = "robust", method = method,
       call = sprintf(paste0('fit <- rma(yi, vi, method = "%s", %s); coef_test(fit, vcov = "CR2", ',
                             'cluster = source, test = "Satterthwaite"); conf_int(fit, vcov = "CR2", ',
                             'cluster = source); predict(robust(fit, cluster = source, clubSandwich = TRUE))'),
                      method, CTRL_STR),
       k = fit$k, n_clusters = length(unique(d$source)), tau2 = num(fit$tau2),
       estimate = num(ct$beta), se = num(ct$SE), df = num(ct$df_Satt), pvalue = num(ct$p_Satt),
       ci_low = num(ci$CI_L), ci_high = num(ci$CI_U), pi_low = num(pr$pi.lb),
       pi_high = num(pr$pi.ub))
}

multilevel <- c(
  Map(function(f, v) multilevel_case(f, v, "REML", "z"), groups$facet, groups$value),
  list(multilevel_case("biome", "temperate", "ML", "z"),
       multilevel_case("ecosystem", "grassland", "REML", "t")))
several <- Filter(function(i) length(unique(group_data(groups$facet[i], groups$value[i])$source)) > 1,
                  seq_len(nrow(groups)))
robust <- c(
  Map(function(i) robust_case(groups$facet[i], groups$value[i], "REML"), several),
  list(robust_case("biome", "temperate", "DL")))

data_sets <- lapply(seq_len(nrow(groups)), function(i) {
  d <- group_data(groups$facet[i], groups$value[i])
  list(facet = groups$facet[i], value = groups$value[i], yi = d$yi, vi = d$vi,
       source = d$source, site = d$site)
})

out <- list(
  source = list(r_version = R.version.string,
                metafor_version = as.character(packageVersion("metafor")),
                clubSandwich_version = as.character(packageVersion("clubSandwich")),
                date = as.character(Sys.Date()),
                script = "tests/golden/make_metafor_synthesis.R",
                input = "tests/golden/synthesis_groups.csv (tests/golden/export_synthesis_groups.py)",
                response = "soil_respiration",
                control = CTRL_STR, rma_mv_control = MV_CTRL_STR,
                rma_mv_fallback_control = MV_CTRL_FALLBACK_STR,
                note = "sigma2 as metafor lists it (source, source/site, source/site/effect); a single-level factor is fixed at 0 (sigma2_fixed); confounded components are split by metafor"),
  data = data_sets,
  multilevel = unname(multilevel),
  robust = unname(robust))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", null = "null", pretty = 1),
           "tests/golden/metafor_synthesis.json")
