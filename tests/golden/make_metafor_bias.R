# Golden numbers for evidence/{multilevel,bias,sensitivity,votes}.py from metafor.
# Run from the repository root:  Rscript tests/golden/make_metafor_bias.R
# Writes tests/golden/metafor_bias.json. Needs R with metafor (3.8-1 was used) and jsonlite.
#
# Convergence: every rma() uses CTRL (Fisher scoring stops when tau^2 changes by < 1e-12);
# leave1out(), cumul(), influence(), regtest() reuse the control of the model they are given,
# and trimfill() passes it on explicitly. Every rma.mv() uses MV_CTRL, which nlminb()
# receives (rel.tol = 1e-12 instead of 1e-10, and far more iterations and evaluations);
# where a variance component sits at 0 nlminb cannot meet that on metafor's log scale, and
# the case falls back to rel.tol = 1e-10 (its "boundary" flag is true and its call says so).
# Inputs are rounded to 15 significant digits before fitting (signif(x, 15)) so the JSON,
# which jsonlite writes with 15 significant digits, holds exactly the data R used.

suppressMessages(library(metafor))
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
bcg <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
curtis <- escalc("ROM", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
                 n2i = n2i, data = dat.curtis1998)
konst <- dat.konstantopoulos2011
set.seed(20241124)
k_het <- 30
vi_het <- runif(k_het, 0.01, 0.2)
yi_het <- rnorm(k_het, 0.3, sqrt(vi_het + 0.05))
# clustered: 40 clusters of 1-6 effects, sigma2 = (0.04 between, 0.02 within)
n_per <- sample(1:6, 40, replace = TRUE)
cl_ml <- rep(seq_along(n_per), n_per)
vi_ml <- runif(length(cl_ml), 0.005, 0.08)
yi_ml <- 0.2 + rnorm(40, 0, 0.2)[cl_ml] + rnorm(length(cl_ml), 0, sqrt(0.02 + vi_ml))
# homogeneous clustered: the effects vary less than their sampling variances imply
vi_hm <- runif(length(cl_ml), 0.02, 0.1)
yi_hm <- -0.1 + rnorm(length(cl_ml), 0, 0.3 * sqrt(vi_hm))
# tied effects (rounded to 0.1), so trimfill's ranks of |yi - centre| have ties
vi_ti <- runif(25, 0.01, 0.1)
yi_ti <- round(rnorm(25, 0.2, sqrt(vi_ti + 0.02)), 1)
data_sets <- list(
  bcg = list(yi = fix(bcg$yi), vi = fix(bcg$vi), cluster = bcg$alloc, order = bcg$year,
             description = 'dat.bcg, escalc("RR", ai=tpos, bi=tneg, ci=cpos, di=cneg); cluster = alloc, order = year'),
  curtis1998 = list(yi = fix(curtis$yi), vi = fix(curtis$vi), cluster = curtis$paper,
                    order = curtis$time,
                    description = 'dat.curtis1998, escalc("ROM", m1i, sd1i, n1i, m2i, sd2i, n2i); cluster = paper, order = time'),
  hackshaw1998 = list(yi = fix(dat.hackshaw1998$yi), vi = fix(dat.hackshaw1998$vi),
                      cluster = dat.hackshaw1998$country, order = dat.hackshaw1998$year,
                      description = "dat.hackshaw1998 (log odds ratios as shipped); cluster = country, order = year"),
  konstantopoulos2011 = list(yi = fix(konst$yi), vi = fix(konst$vi), cluster = konst$district,
                             order = konst$year,
                             description = "dat.konstantopoulos2011 as shipped; cluster = district, order = year"),
  synthetic_het = list(yi = fix(yi_het), vi = fix(vi_het), cluster = rep(1:10, 3),
                       order = k_het:1,
                       description = "set.seed(20241124); vi = runif(30, .01, .2); yi = rnorm(30, .3, sqrt(vi + .05)); cluster = rep(1:10, 3)"),
  synthetic_clustered = list(yi = fix(yi_ml), vi = fix(vi_ml), cluster = cl_ml,
                             order = seq_along(cl_ml),
                             description = "same seed, next draws: 40 clusters of sample(1:6) effects, mu = .2, sigma2 = (.04, .02), vi = runif(.005, .08)"),
  synthetic_hom = list(yi = fix(yi_hm), vi = fix(vi_hm), cluster = cl_ml,
                       order = seq_along(cl_ml),
                       description = "same seed, next draws, same clusters: vi = runif(.02, .1), yi = rnorm(-.1, .3 sqrt(vi)) (homogeneous)"),
  synthetic_ties = list(yi = fix(yi_ti), vi = fix(vi_ti), cluster = rep(1:5, 5),
                        order = seq_along(yi_ti),
                        description = "same seed, next draws: vi = runif(25, .01, .1); yi = round(rnorm(25, .2, sqrt(vi + .02)), 1) (tied effects)")
)

fit_uni <- function(d, method, test = "z") {
  suppressWarnings(rma(d$yi, d$vi, method = method, test = test, control = CTRL))
}

# ------------------------------------------------------------------ multilevel and robust
multilevel_case <- function(name, method, test) {
  d <- data_sets[[name]]
  df <- data.frame(yi = d$yi, vi = d$vi, cluster = d$cluster, effect = seq_along(d$yi))
  fit <- function(ctrl) {
    try(rma.mv(yi, vi, random = ~ 1 | cluster/effect, data = df, method = method,
               test = test, control = ctrl), silent = TRUE)
  }
  res <- fit(MV_CTRL)
  ctrl_str <- MV_CTRL_STR
  if (inherits(res, "try-error")) {
    # a variance component at its boundary (0): on metafor's log scale nlminb cannot meet
    # rel.tol = 1e-12 there, so fall back to metafor's default tolerance (recorded in call)
    res <- fit(MV_CTRL_FALLBACK)
    ctrl_str <- MV_CTRL_FALLBACK_STR
  }
  pr <- predict(res)
  list(data = name, method = method, test = test, boundary = ctrl_str != MV_CTRL_STR,
       call = sprintf('rma.mv(yi, vi, random = ~ 1 | cluster/effect, method = "%s", test = "%s", %s)',
                      method, test, ctrl_str),
       k = res$k, n_clusters = res$s.nlevels[1], sigma2 = num(res$sigma2),
       estimate = num(res$beta), se = num(res$se), statistic = num(res$zval),
       pvalue = num(res$pval), ci_low = num(res$ci.lb), ci_high = num(res$ci.ub),
       pi_low = num(pr$pi.lb), pi_high = num(pr$pi.ub), q = num(res$QE),
       q_pvalue = num(res$QEp), loglik = num(logLik(res)))
}

robust_case <- function(name, method, adjust) {
  d <- data_sets[[name]]
  res <- robust(fit_uni(d, method), cluster = d$cluster, adjust = adjust, clubSandwich = FALSE)
  list(data = name, method = method, adjust = adjust,
       call = sprintf('robust(rma(yi, vi, method = "%s", %s), cluster = cluster, adjust = %s, clubSandwich = FALSE)',
                      method, CTRL_STR, adjust),
       n_clusters = res$n, df = num(res$dfs), estimate = num(res$beta), se = num(res$se),
       statistic = num(res$zval), pvalue = num(res$pval), ci_low = num(res$ci.lb),
       ci_high = num(res$ci.ub), tau2 = num(res$tau2))
}

# ------------------------------------------------------------------ publication bias
regtest_case <- function(name, model, method, predictor, test = "z") {
  d <- data_sets[[name]]
  res <- regtest(fit_uni(d, method, test), model = model, predictor = predictor)
  list(data = name, model = model, method = method, predictor = predictor, test = test,
       call = sprintf('regtest(rma(yi, vi, method = "%s", test = "%s", %s), model = "%s", predictor = "%s")',
                      method, test, CTRL_STR, model, predictor),
       statistic = num(res$zval), pvalue = num(res$pval), df = num(res$dfs),
       limit_estimate = num(res$est), limit_ci_low = num(res$ci.lb),
       limit_ci_high = num(res$ci.ub))
}

ranktest_case <- function(name) {
  d <- data_sets[[name]]
  res <- ranktest(d$yi, d$vi)
  list(data = name, call = "ranktest(yi, vi)", tau = num(res$tau), pvalue = num(res$pval))
}

# trimfill() breaks ties in yi by input order (a stable sort), so with tied yi of different
# vi its result depends on the order of the rows; evidence breaks them by vi. The data go in
# sorted by (yi, vi), where both orders agree (evidence is tested on the same sorted data).
trimfill_case <- function(name, method, estimator, side = NULL) {
  d <- data_sets[[name]]
  o <- order(d$yi, d$vi)
  d <- list(yi = d$yi[o], vi = d$vi[o])
  x <- fit_uni(d, method)
  res <- if (is.null(side)) {
    trimfill(x, estimator = estimator, control = CTRL)
  } else {
    trimfill(x, estimator = estimator, side = side, control = CTRL)
  }
  side_str <- if (is.null(side)) "" else sprintf(', side = "%s"', side)
  list(data = name, method = method, estimator = estimator, side_arg = side,
       call = sprintf(paste0('o <- order(yi, vi); trimfill(rma(yi[o], vi[o], method = "%s", %s), ',
                             'estimator = "%s"%s, %s)'),
                      method, CTRL_STR, estimator, side_str, CTRL_STR),
       k0 = res$k0, se_k0 = num(res$se.k0), side = res$side, p_k0 = num(res$p.k0),
       k = res$k, estimate = num(res$beta), se = num(res$se), statistic = num(res$zval),
       pvalue = num(res$pval), ci_low = num(res$ci.lb), ci_high = num(res$ci.ub),
       tau2 = num(res$tau2), yi = num(res$yi), vi = num(res$vi), filled = res$fill)
}

fsn_case <- function(name, type, alpha = 0.05, target = NULL) {
  d <- data_sets[[name]]
  res <- if (is.null(target)) {
    fsn(d$yi, d$vi, type = type, alpha = alpha)
  } else {
    fsn(d$yi, d$vi, type = type, alpha = alpha, target = target)
  }
  target_str <- if (is.null(target)) "" else sprintf(", target = %s", format(target, digits = 15))
  list(data = name, type = type, alpha = alpha, target_arg = target,
       call = sprintf('fsn(yi, vi, type = "%s", alpha = %s%s)', type, alpha, target_str),
       fsnum = num(res$fsnum), pvalue = num(res$pval), mean_effect = num(res$meanes),
       target = num(res$target))
}

# ------------------------------------------------------------------ sensitivity
list_rma <- function(res) {
  out <- unclass(res)
  stat <- if (!is.null(out$zval)) out$zval else out$tval
  list(estimate = num(out$estimate), se = num(out$se), statistic = num(stat),
       pvalue = num(out$pval), ci_low = num(out$ci.lb), ci_high = num(out$ci.ub),
       q = num(out$Q), q_pvalue = num(out$Qp),
       tau2 = if (is.null(out$tau2)) rep(0, length(out$estimate)) else num(out$tau2),
       i2 = num(out$I2), h2 = num(out$H2))
}

leave1out_case <- function(name, method, test = "z") {
  d <- data_sets[[name]]
  c(list(data = name, method = method, test = test,
         call = sprintf('leave1out(rma(yi, vi, method = "%s", test = "%s", %s))',
                        method, test, CTRL_STR)),
    list_rma(leave1out(fit_uni(d, method, test))))
}

cumul_case <- function(name, method, ordered) {
  d <- data_sets[[name]]
  x <- fit_uni(d, method)
  res <- if (ordered) cumul(x, order = d$order) else cumul(x)
  c(list(data = name, method = method, ordered = ordered,
         call = sprintf('cumul(rma(yi, vi, method = "%s", %s)%s)', method, CTRL_STR,
                        if (ordered) ", order = order" else "")),
    list_rma(res))
}

influence_case <- function(name, method) {
  d <- data_sets[[name]]
  inf <- influence(fit_uni(d, method))
  list(data = name, method = method,
       call = sprintf('influence(rma(yi, vi, method = "%s", %s))', method, CTRL_STR),
       rstudent = num(inf$inf$rstudent), dffits = num(inf$inf$dffits),
       cook_d = num(inf$inf$cook.d), cov_r = num(inf$inf$cov.r),
       tau2_del = num(inf$inf$tau2.del), qe_del = num(inf$inf$QE.del),
       hat = num(inf$inf$hat), weight = num(inf$inf$weight),
       dfbetas = num(inf$dfbs$intrcpt), inf = unname(inf$is.infl))
}

# ------------------------------------------------------------------ vote counting
binom_case <- function(x, n, conf) {
  res <- binom.test(x, n, p = 0.5, conf.level = conf)
  list(n_increase = x, n_tested = n, conf_level = conf,
       call = sprintf("binom.test(%d, %d, p = 0.5, conf.level = %s)", x, n, conf),
       pvalue = num(res$p.value), proportion = num(res$estimate),
       ci_low = num(res$conf.int[1]), ci_high = num(res$conf.int[2]))
}

ml_grid <- expand.grid(data = c("konstantopoulos2011", "synthetic_clustered", "curtis1998",
                                "synthetic_hom"),
                       method = c("REML", "ML"), test = c("z", "t"), stringsAsFactors = FALSE)
multilevel <- Map(multilevel_case, ml_grid$data, ml_grid$method, ml_grid$test)

rb_grid <- expand.grid(data = c("konstantopoulos2011", "curtis1998", "synthetic_clustered",
                                "bcg"),
                       method = c("REML", "DL", "FE"), adjust = c(TRUE, FALSE),
                       stringsAsFactors = FALSE)
robust_cases <- Map(robust_case, rb_grid$data, rb_grid$method, rb_grid$adjust)

bias_data <- c("bcg", "hackshaw1998", "curtis1998", "synthetic_het", "konstantopoulos2011")
reg_grid <- rbind(
  expand.grid(data = bias_data, model = "rma", method = c("REML", "DL", "FE"),
              predictor = c("sei", "vi"), test = "z", stringsAsFactors = FALSE),
  expand.grid(data = bias_data, model = "rma", method = "REML", predictor = "sei",
              test = "knha", stringsAsFactors = FALSE),
  expand.grid(data = bias_data, model = "lm", method = "REML", predictor = c("sei", "vi"),
              test = "z", stringsAsFactors = FALSE))
regtests <- Map(regtest_case, reg_grid$data, reg_grid$model, reg_grid$method,
                reg_grid$predictor, reg_grid$test)

ranktests <- lapply(c(bias_data, "synthetic_clustered", "synthetic_hom", "synthetic_ties"),
                    ranktest_case)

tf_grid <- expand.grid(data = c("bcg", "hackshaw1998", "curtis1998", "synthetic_het",
                                "konstantopoulos2011", "synthetic_ties"),
                       method = c("REML", "FE", "DL"), estimator = c("L0", "R0", "Q0"),
                       stringsAsFactors = FALSE)
trimfills <- c(Map(trimfill_case, tf_grid$data, tf_grid$method, tf_grid$estimator),
               list(trimfill_case("hackshaw1998", "REML", "L0", "left"),
                    trimfill_case("hackshaw1998", "REML", "L0", "right"),
                    trimfill_case("curtis1998", "REML", "R0", "right"),
                    trimfill_case("bcg", "REML", "R0", "left"),
                    trimfill_case("hackshaw1998", "FE", "R0", "left"),
                    trimfill_case("synthetic_het", "DL", "L0", "right"),
                    trimfill_case("synthetic_het", "REML", "Q0", "left")))

fsn_grid <- expand.grid(data = bias_data, type = c("Rosenthal", "Orwin", "Rosenberg"),
                        alpha = c(0.05, 0.01), stringsAsFactors = FALSE)
fsns <- c(Map(fsn_case, fsn_grid$data, fsn_grid$type, fsn_grid$alpha),
          list(fsn_case("bcg", "Orwin", target = -0.2), fsn_case("curtis1998", "Orwin", target = 0.1),
               fsn_case("hackshaw1998", "Orwin", target = -0.05)))

sens_data <- c("bcg", "hackshaw1998", "curtis1998", "synthetic_het", "synthetic_hom")
l1_grid <- rbind(expand.grid(data = sens_data, method = c("REML", "DL", "FE"), test = "z",
                             stringsAsFactors = FALSE),
                 expand.grid(data = c("bcg", "synthetic_het"), method = "REML", test = "knha",
                             stringsAsFactors = FALSE))
leave1outs <- Map(leave1out_case, l1_grid$data, l1_grid$method, l1_grid$test)
cu_grid <- expand.grid(data = sens_data, method = c("REML", "DL"), ordered = c(FALSE, TRUE),
                       stringsAsFactors = FALSE)
cumuls <- Map(cumul_case, cu_grid$data, cu_grid$method, cu_grid$ordered)
in_grid <- expand.grid(data = sens_data, method = c("REML", "DL", "FE"),
                       stringsAsFactors = FALSE)
influences <- Map(influence_case, in_grid$data, in_grid$method)

votes <- list(binom_case(7, 10, 0.95), binom_case(12, 30, 0.95), binom_case(0, 5, 0.9),
              binom_case(25, 25, 0.95), binom_case(1, 1, 0.95), binom_case(40, 97, 0.99))

out <- list(
  source = list(metafor_version = as.character(packageVersion("metafor")),
                r_version = R.version.string, date = as.character(Sys.Date()),
                script = "tests/golden/make_metafor_bias.R",
                control = CTRL_STR, rma_mv_control = MV_CTRL_STR,
                rma_mv_boundary_control = MV_CTRL_FALLBACK_STR,
                note = "inputs rounded with signif(x, 15) before fitting; null = NA in R"),
  data = data_sets,
  multilevel = unname(multilevel), robust = unname(robust_cases), regtest = unname(regtests),
  ranktest = ranktests, trimfill = unname(trimfills), fsn = unname(fsns),
  leave1out = unname(leave1outs), cumul = unname(cumuls), influence = unname(influences),
  binom_test = votes)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", null = "null",
                  pretty = 1),
           "tests/golden/metafor_bias.json")
