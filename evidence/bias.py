"""Small-study effects and publication bias: Egger's regression test, the rank-correlation
test, trim-and-fill and fail-safe N, as metafor's ``regtest``, ``ranktest``, ``trimfill``
and ``fsn``."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from . import _checks, _dist
from ._fit import Design, wls, z_ratio
from .errors import ConvergenceError, EvidenceError
from .pooling import pool
from .regression import meta_regression

EXACT_KENDALL_MAX_K = 1000  # above this the exact null distribution costs O(k^3); see rank_test
# Sums over k effects (a pooled centre, a regression slope) carry rounding errors of a few
# machine epsilons times the effects' size; differences below ROUNDING times max |yi| are
# that noise, not data (no effect size is recorded to 14 significant digits).
ROUNDING = 100 * np.finfo(float).eps


def _noise_level(y):
    """The size below which a difference between effects like ``y`` is rounding noise."""
    return ROUNDING * float(np.max(np.abs(y)))


def _scalar_frame(result, skip=()):
    """One-row DataFrame of a result's dataclass fields, leaving out ``skip``."""
    names = [n for n in result.__dataclass_fields__ if n not in skip]
    return pd.DataFrame([{n: getattr(result, n) for n in names}])


def _check_min_k(k, need, what):
    if k < need:
        raise EvidenceError(f"{what} needs at least {need} studies, got k={k}.")


# ---------------------------------------------------------------- Egger's regression test


@dataclass(frozen=True)
class EggerResult:
    """Result of :func:`egger_test`.

    ``statistic`` is z (``model="rma"``, test "z"), or t with ``df`` degrees of freedom
    (``model="lm"``, or test "knha"); ``limit_estimate`` is the intercept, the expected
    effect of a study with infinite precision, with its confidence interval.
    """

    statistic: float
    df: float
    pvalue: float
    limit_estimate: float
    limit_ci_low: float
    limit_ci_high: float
    model: str
    predictor: str
    method: str
    k: int

    @property
    def z(self):
        """The statistic when it is a z statistic, else NaN."""
        return self.statistic if np.isnan(self.df) else np.nan

    @property
    def t(self):
        """The statistic when it is a t statistic, else NaN."""
        return np.nan if np.isnan(self.df) else self.statistic

    def to_frame(self):
        """One-row DataFrame of all fields."""
        return _scalar_frame(self)


def _weighted_lm(y, X, w):
    """R's ``lm(y ~ X - 1, weights = w)``: coefficients, their t-based SEs and df."""
    fit = wls(Design(X), y, w)  # sums over studies without BLAS threads (see evidence._fit)
    inv, beta, rss = fit.inv, fit.beta.copy(), fit.rss
    df = len(y) - X.shape[1]
    if rss <= 1e-20 * (w * y**2).sum():  # residual SD below 1e-10 of the effects
        # an exact fit (e.g. two distinct vi): the residual variance is rounding noise, and
        # so would be t; take it as 0 (t = +/-inf) and a slope at rounding level as 0 (NaN)
        rss = 0.0
        beta[np.abs(beta) * np.abs(X).max(axis=0) <= 100 * np.finfo(float).eps * np.abs(y).max()] = 0.0
    return beta, np.sqrt(np.diag(inv) * rss / df), df


def egger_test(yi, vi, method="REML", model="rma", predictor="sei", test="z", alpha=0.05):
    """Egger's regression test for funnel-plot asymmetry.

    Parameters
    ----------
    yi : array-like of shape (k,)
        Observed effect sizes.
    vi : array-like of shape (k,)
        Sampling variances, all > 0.
    method : str
        tau^2 estimator of the mixed-effects model (``model="rma"``); see
        :func:`evidence.pool`.
    model : {"rma", "lm"}
        Mixed-effects meta-regression, or weighted linear regression with a
        multiplicative dispersion (Egger's original test).
    predictor : {"sei", "vi"}
        Regress on the standard errors or on the sampling variances.
    test : {"z", "knha"}
        Test of the mixed-effects model (ignored for ``model="lm"``).
    alpha : float
        1 - confidence level of the limit estimate's interval.

    Returns
    -------
    EggerResult

    Notes
    -----
    As metafor 3.8-1 ``regtest(rma(yi, vi, method, test), model, predictor)``: the test
    is that of the predictor's coefficient in ``yi ~ predictor``. For ``model="rma"``
    that is :func:`evidence.meta_regression` with the same estimator and test; for
    ``model="lm"`` weighted least squares with weights 1 / vi and a t test with k - 2 df
    (an exact fit, where R's ``lm`` warns "essentially perfect fit" and reports rounding
    noise, gives t = +/-inf, or NaN when the slope is 0 too).
    The intercept is the "limit estimate" (effect as se -> 0), with a normal (z) or
    t(k - 2) interval as the fitted model's.

    References
    ----------
    Egger, M., Davey Smith, G., Schneider, M., & Minder, C. (1997). Bias in meta-analysis
    detected by a simple, graphical test. BMJ, 315, 629-634.
    Sterne, J. A. C., & Egger, M. (2005). Regression methods to detect publication and
    other bias in meta-analysis. In Publication Bias in Meta-Analysis (pp. 99-110). Wiley.
    """
    y, v = _checks.as_effects(yi, vi)
    model = _checks.check_choice(model, ("rma", "lm"), "model")
    predictor = _checks.check_choice(predictor, ("sei", "vi"), "predictor")
    alpha = _checks.check_alpha(alpha)
    _check_min_k(len(y), 3, "egger_test")
    if np.ptp(v) == 0:
        raise EvidenceError(
            "egger_test needs sampling variances that differ; all vi are equal, so the "
            "predictor is collinear with the intercept."
        )
    x = np.sqrt(v) if predictor == "sei" else v
    if model == "lm":
        beta, se, df = _weighted_lm(y, np.column_stack([np.ones_like(x), x]), 1 / v)
        crit = _dist.t_isf(alpha / 2, df)
        t = z_ratio(beta[1], se[1])
        return EggerResult(
            statistic=t, df=float(df), pvalue=float(2 * _dist.t_sf(abs(t), df)),
            limit_estimate=float(beta[0]), limit_ci_low=float(beta[0] - crit * se[0]),
            limit_ci_high=float(beta[0] + crit * se[0]), model=model, predictor=predictor,
            method=None, k=len(y),
        )
    fit = meta_regression(y, v, {predictor: x}, method=method, test=test, alpha=alpha)
    slope, limit = fit.coefficients.loc[predictor], fit.coefficients.loc["intrcpt"]
    return EggerResult(
        statistic=float(slope["statistic"]), df=float(fit.qm_ddf), pvalue=float(slope["pvalue"]),
        limit_estimate=float(limit["estimate"]), limit_ci_low=float(limit["ci_low"]),
        limit_ci_high=float(limit["ci_high"]), model=model, predictor=predictor,
        method=fit.method, k=len(y),
    )


# ---------------------------------------------------------------- rank correlation test


@dataclass(frozen=True)
class RankTestResult:
    """Result of :func:`rank_test`: Kendall's tau and its two-sided p-value."""

    tau: float
    pvalue: float
    exact: bool
    k: int

    def to_frame(self):
        """One-row DataFrame of all fields."""
        return _scalar_frame(self)


def _kendall_cdf(q, n):
    """P(S <= q) for the number of discordant pairs S among n untied pairs under H0.

    The Mahonian distribution (inversions of a random permutation), built by adding
    one element at a time: each new element adds 0..m-1 inversions with equal chance.
    Only P(S = 0..q) is kept, since those never depend on larger counts.
    """
    if q < 0:
        return 0.0
    dist = np.ones(1)
    for m in range(2, n + 1):
        cum = np.concatenate([[0.0], np.cumsum(dist)])
        j = np.arange(min(len(dist) + m - 1, int(q) + 1))
        dist = (cum[np.minimum(j + 1, len(dist))] - cum[np.maximum(j - m + 1, 0)]) / m
    return float(np.sum(dist))


def _kendall_exact_p(tau, n):
    """Two-sided exact p-value as R's ``cor.test(method = "kendall", exact = TRUE)``."""
    q = round((tau + 1) * n * (n - 1) / 4)
    total = n * (n - 1) // 2
    # the null distribution is symmetric: P(S >= q) = P(S <= total - q), without cancellation
    p = _kendall_cdf(total - q, n) if q > n * (n - 1) / 4 else _kendall_cdf(q, n)
    return min(2 * p, 1.0)


def _tie_counts(x):
    counts = np.unique(x, return_counts=True)[1]
    return counts[counts > 1].astype(float)


def _kendall_normal_p(tau, x, y):
    """Two-sided p-value from the tie-corrected normal approximation (R's ``cor.test``)."""
    n = len(x)
    tx, ty = _tie_counts(x), _tie_counts(y)
    t0 = n * (n - 1) / 2
    s = tau * np.sqrt((t0 - np.sum(tx * (tx - 1)) / 2) * (t0 - np.sum(ty * (ty - 1)) / 2))
    var = (n * (n - 1) * (2 * n + 5) - np.sum(tx * (tx - 1) * (2 * tx + 5))
           - np.sum(ty * (ty - 1) * (2 * ty + 5))) / 18
    var += np.sum(tx * (tx - 1)) * np.sum(ty * (ty - 1)) / (2 * n * (n - 1))
    var += np.sum(tx * (tx - 1) * (tx - 2)) * np.sum(ty * (ty - 1) * (ty - 2)) / (9 * n * (n - 1) * (n - 2))
    return float(2 * _dist.norm_sf(abs(s / np.sqrt(var))))


def rank_test(yi, vi):
    """Begg and Mazumdar's rank-correlation test for funnel-plot asymmetry.

    Parameters
    ----------
    yi : array-like of shape (k,)
        Observed effect sizes.
    vi : array-like of shape (k,)
        Sampling variances, all > 0 and not all equal.

    Returns
    -------
    RankTestResult

    Notes
    -----
    As metafor 3.8-1 ``ranktest(yi, vi)``: with the fixed-effect estimate theta and its
    variance vb, the standardised effects (yi - theta) / sqrt(vi - vb) are correlated with
    vi by Kendall's tau-b. Without ties the p-value is exact (R's ``cor.test`` with
    ``exact = TRUE``, from the distribution of discordant pairs); with ties it comes from
    the tie-corrected normal approximation without continuity correction. One deviation:
    above k = 1000 untied studies the exact distribution (O(k^3) work here, and far more
    in R) is replaced by the normal approximation, which agrees to many digits there.
    Residuals yi - theta below 100 machine epsilons (relative to max |yi|) are set to 0, so
    identical effects give tau = NaN (no variation) instead of a value of rounding noise.

    References
    ----------
    Begg, C. B., & Mazumdar, M. (1994). Operating characteristics of a rank correlation test
    for publication bias. Biometrics, 50, 1088-1101.
    """
    y, v = _checks.as_effects(yi, vi)
    _check_min_k(len(y), 3, "rank_test")
    if np.ptp(v) == 0:
        raise EvidenceError("rank_test needs sampling variances that differ; all vi are equal.")
    w = 1 / v
    theta = (w * y).sum() / w.sum()
    resid = y - theta
    # residuals at rounding level (all yi equal) are 0: otherwise their signs, and tau,
    # would depend on the summation order of theta
    resid[np.abs(resid) <= 100 * np.finfo(float).eps * np.max(np.abs(y))] = 0.0
    ystar = resid / np.sqrt(v - 1 / w.sum())
    tau = float(stats.kendalltau(ystar, v).statistic)
    k = len(y)
    ties = min(len(np.unique(ystar)), len(np.unique(v))) < k
    exact = not ties and k <= EXACT_KENDALL_MAX_K
    pvalue = _kendall_exact_p(tau, k) if exact else _kendall_normal_p(tau, ystar, v)
    return RankTestResult(tau=tau, pvalue=pvalue, exact=exact, k=k)


# ---------------------------------------------------------------- trim and fill


@dataclass(frozen=True)
class TrimFillResult:
    """Result of :func:`trim_and_fill`.

    ``k0`` studies were imputed on ``side``; the remaining fields describe the model
    refitted to the observed plus filled studies (``k`` in all). ``points`` holds those
    studies (columns yi, vi, filled; observed ones first, in input order).
    """

    k0: int
    se_k0: float
    p_k0: float
    side: str
    estimator: str
    k: int
    estimate: float
    se: float
    statistic: float
    pvalue: float
    ci_low: float
    ci_high: float
    tau2: float
    method: str
    points: pd.DataFrame

    def to_frame(self):
        """One-row DataFrame of the scalar fields (``points`` left out)."""
        return _scalar_frame(self, skip=("points",))


def _ranks_first(a, tol):
    """Ranks 1..k of ``a``, values within ``tol`` of each other tied and ranked by position.

    R's ``rank(ties.method = "first")``, with ties judged at ``tol`` instead of exactly: a
    centred effect differs from its mirror image by the rounding noise of the centre, and
    that noise must not decide which of the two ranks higher.
    """
    order = np.argsort(a, kind="stable")
    group = np.cumsum(np.r_[True, np.diff(a[order]) > tol])  # runs closer than tol
    ranks = np.empty(len(a))
    ranks[order[np.lexsort((order, group))]] = np.arange(1, len(a) + 1)
    return ranks


def _k0_step(yc, k, estimator, tol):
    """One trim-and-fill estimate of k0 (unrounded) and its standard error.

    ``yc`` are the sorted effects minus the centre; |yc| <= ``tol`` counts as 0 (no sign)
    and |yc| within ``tol`` of each other as ties (ranked by position, as metafor's
    ``ties.method = "first"``), so rounding noise in the centre cannot change k0.
    """
    yc = np.where(np.abs(yc) <= tol, 0.0, yc)
    signed = np.sign(yc) * _ranks_first(np.abs(yc), tol)
    if estimator == "R0":
        left = -signed[signed < 0]
        k0 = k - (left.max() if left.size else k) - 1  # no study left of centre: k0 = 0
        return k0, np.sqrt(2 * max(0, k0) + 2)
    sr = signed[signed > 0].sum()
    k0 = (4 * sr - k * (k + 1)) / (2 * k - 1) if estimator == "L0" else \
        k - 0.5 - np.sqrt(2 * k**2 - 4 * sr + 0.25)
    # var_sr can dip below 0 when almost all ranks fall on one side; sqrt then gives NaN,
    # as in metafor (which warns)
    var_sr = (k * (k + 1) * (2 * k + 1) + 10 * k0**3 + 27 * k0**2 + 17 * k0
              - 18 * k * k0**2 - 18 * k * k0 + 6 * k**2 * k0) / 24
    with np.errstate(invalid="ignore"):
        if estimator == "L0":
            return k0, 4 * np.sqrt(var_sr) / (2 * k - 1)
        return k0, 2 * np.sqrt(var_sr) / np.sqrt((k - 0.5) ** 2 - k0 * (2 * k - k0 - 1))


def _detect_side(y, v, method):
    """metafor's default side: "right" if the slope of yi on sqrt(vi) is negative.

    A slope whose change over the range of sqrt(vi) is rounding noise (a symmetric funnel)
    counts as 0, which metafor's test ``slope < 0`` sends to "left".
    """
    sei = np.sqrt(v)
    slope = meta_regression(y, v, {"sei": sei}, method=method).coefficients.loc["sei", "estimate"]
    return "right" if slope * np.ptp(sei) < -_noise_level(y) else "left"


def _iterate_k0(ys, vs, method, estimator, maxiter):
    """Trim the k0 most extreme studies, re-estimate the centre, until k0 is stable."""
    k = len(ys)
    k0 = 0
    tol = _noise_level(ys)
    for _ in range(maxiter):
        previous = k0
        centre = pool(ys[: k - k0], vs[: k - k0], method=method).estimate
        k0_raw, se_k0 = _k0_step(ys - centre, k, estimator, tol)
        k0 = int(max(0, round(k0_raw)))  # round half to even, as R's round()
        if k0 == previous:
            return k0, se_k0, centre
    raise ConvergenceError(
        f"trim_and_fill: k0 did not settle in {maxiter} iterations; try estimator='R0' or 'Q0'."
    )


def trim_and_fill(yi, vi, method="REML", estimator="L0", side=None, alpha=0.05, maxiter=100):
    """Duval and Tweedie's trim-and-fill adjustment for funnel-plot asymmetry.

    Parameters
    ----------
    yi : array-like of shape (k,)
        Observed effect sizes.
    vi : array-like of shape (k,)
        Sampling variances, all > 0.
    method : str
        tau^2 estimator of every model fitted (see :func:`evidence.pool`).
    estimator : {"L0", "R0", "Q0"}
        Estimator of the number of missing studies.
    side : {"left", "right"}, optional
        Side on which studies are missing; by default the side opposite to the sign of the
        slope of yi on sqrt(vi) (as metafor).
    alpha : float
        1 - confidence level of the filled model.
    maxiter : int
        Maximum number of trim-and-fill iterations.

    Returns
    -------
    TrimFillResult

    Notes
    -----
    As metafor 3.8-1 ``trimfill(rma(yi, vi, method), estimator, side)``. Effects are
    mirrored when side = "right" and sorted; each iteration pools the k - k0 smallest,
    ranks |yi - centre| (ties by position) and updates k0 = max(0, round(k0)) with the L0,
    R0 or Q0 formula of Duval and Tweedie (2000), until k0 repeats. The k0 largest effects
    are then reflected about the final centre and the model is refitted to all k + k0
    studies. ``se_k0`` is metafor's standard error from the last iteration; ``p_k0`` (R0
    only, else NaN) is metafor's one-sided p = 0.5^(k0 + 1).

    Two choices make the result independent of row order and of rounding, where metafor's
    is not: tied effects are sorted by vi (metafor keeps their row order, so its k0 can
    change when rows are shuffled; both agree on rows sorted by (yi, vi)), and centred
    effects within 100 machine epsilons of max |yi| of 0 or of each other count as 0 and
    as tied (metafor compares them exactly, so the rounding noise of the centre can decide
    a sign or a rank: an exactly symmetric funnel gets k0 = 0 or 1 by that noise). For the
    same reason a slope on sqrt(vi) that changes the fit by less than that over the range
    of sqrt(vi) counts as 0 when the side is chosen ("left", as metafor's for 0).

    References
    ----------
    Duval, S. J., & Tweedie, R. L. (2000). Trim and fill: A simple funnel-plot-based method
    of testing and adjusting for publication bias in meta-analysis. Biometrics, 56, 455-463.
    Duval, S. J., & Tweedie, R. L. (2000). A nonparametric "trim and fill" method of
    accounting for publication bias in meta-analysis. JASA, 95, 89-98.
    """
    y, v = _checks.as_effects(yi, vi)
    estimator = _checks.check_choice(estimator, ("L0", "R0", "Q0"), "estimator")
    alpha = _checks.check_alpha(alpha)
    _check_min_k(len(y), 2 if side else 3, "trim_and_fill" + ("" if side else " without side"))
    if side is None and np.ptp(v) == 0:
        raise EvidenceError(
            "trim_and_fill cannot choose the side when all vi are equal (the slope of yi on "
            "sqrt(vi) is undefined); pass side='left' or side='right'."
        )
    side = _detect_side(y, v, method) if side is None else \
        _checks.check_choice(side, ("left", "right"), "side")
    sign = -1.0 if side == "right" else 1.0
    order = np.lexsort((v, sign * y))  # tied effects by variance: input order never matters
    ys, vs = sign * y[order], v[order]
    k0, se_k0, centre = _iterate_k0(ys, vs, method, estimator, maxiter)
    filled_y = sign * (2 * centre - ys[len(y) - k0:])
    points = pd.DataFrame({"yi": np.concatenate([y, filled_y]),
                           "vi": np.concatenate([v, vs[len(y) - k0:]]),
                           "filled": np.repeat([False, True], [len(y), k0])})
    fit = pool(points["yi"], points["vi"], method=method, alpha=alpha)
    return TrimFillResult(
        k0=k0, se_k0=float(se_k0), p_k0=0.5 ** (k0 + 1) if estimator == "R0" else np.nan,
        side=side, estimator=estimator, k=fit.k, estimate=fit.estimate, se=fit.se,
        statistic=fit.statistic, pvalue=fit.pvalue, ci_low=fit.ci_low, ci_high=fit.ci_high,
        tau2=fit.tau2, method=fit.method, points=points,
    )


# ---------------------------------------------------------------- fail-safe N


@dataclass(frozen=True)
class FailSafeResult:
    """Result of :func:`fail_safe_n`.

    ``n`` is the number of additional null studies (may be ``inf`` for Orwin with target 0);
    ``pvalue`` is the combined one-sided (Rosenthal) or two-sided (Rosenberg) p-value of the
    observed studies, NaN for Orwin; ``mean_effect`` the unweighted (Orwin) or weighted
    (Rosenberg) mean effect, NaN for Rosenthal.
    """

    n: float
    method: str
    alpha: float
    pvalue: float
    mean_effect: float
    target: float
    k: int

    def to_frame(self):
        """One-row DataFrame of all fields."""
        return _scalar_frame(self)


def _rosenthal(y, v, alpha):
    z_avg = abs(np.sum(y / np.sqrt(v)) / np.sqrt(len(y)))
    n = max(0.0, len(y) * (z_avg / _dist.norm_isf(alpha)) ** 2 - len(y))
    return n, float(_dist.norm_sf(z_avg)), np.nan, np.nan


def _orwin(y, target):
    mean = float(np.mean(y))
    target = mean / 2 if target is None else float(target)
    if target == 0:
        return np.inf, np.nan, mean, target
    if np.sign(target) != np.sign(mean):
        target = -target
    return max(0.0, len(y) * (mean - target) / target), np.nan, mean, target


def _rosenberg(y, v, alpha):
    w = 1 / v
    wy = (w * y).sum()
    mean = wy / w.sum()
    z = mean / np.sqrt(1 / w.sum())
    extra_w = (wy / _dist.norm_isf(alpha / 2)) ** 2 - w.sum()
    n = max(0.0, len(y) * extra_w / w.sum())
    return n, float(2 * _dist.norm_sf(abs(z))), float(mean), np.nan


def _round_up(n):
    """metafor's rounding: ceiling unless already an integer to sqrt(machine epsilon)."""
    if np.isinf(n) or abs(n - round(n)) < np.sqrt(np.finfo(float).eps):
        return float(round(n)) if np.isfinite(n) else n
    return float(np.ceil(n))


def fail_safe_n(yi, vi, method="Rosenthal", alpha=0.05, target=None):
    """Fail-safe N: how many unpublished null studies would overturn the result.

    Parameters
    ----------
    yi : array-like of shape (k,)
        Observed effect sizes.
    vi : array-like of shape (k,)
        Sampling variances, all > 0 (not used by Orwin's method).
    method : {"Rosenthal", "Orwin", "Rosenberg"}
        Rosenthal's Stouffer-based N, Orwin's N for a target mean effect, or Rosenberg's
        weighted (fixed-effect) N.
    alpha : float
        Significance level (one-sided for Rosenthal, two-sided for Rosenberg).
    target : float, optional
        Orwin's target mean effect; default half the observed mean. Its sign is made
        that of the observed mean; 0 gives N = inf.

    Returns
    -------
    FailSafeResult

    Notes
    -----
    As metafor 3.8-1 ``fsn(yi, vi, type, alpha, target)`` with its defaults
    (Stouffer's method for Rosenthal, unweighted mean for Orwin). Rosenthal:
    N = k (z_avg / z_alpha)^2 - k with z_avg = |sum(yi / sqrt(vi))| / sqrt(k).
    Orwin: N = k (mean - target) / target. Rosenberg: N = k [(sum(w yi) / z_{alpha/2})^2 -
    sum(w)] / sum(w), w = 1 / vi. N is truncated at 0 and rounded up unless it is an
    integer to within sqrt(machine epsilon).

    References
    ----------
    Rosenthal, R. (1979). The "file drawer problem" and tolerance for null results.
    Psychological Bulletin, 86, 638-641.
    Orwin, R. G. (1983). A fail-safe N for effect size in meta-analysis. Journal of
    Educational Statistics, 8, 157-159.
    Rosenberg, M. S. (2005). The file-drawer problem revisited: A general weighted method
    for calculating fail-safe numbers in meta-analysis. Evolution, 59, 464-468.
    """
    y, v = _checks.as_effects(yi, vi)
    method = _checks.check_choice(method, ("Rosenthal", "Orwin", "Rosenberg"), "method")
    alpha = _checks.check_alpha(alpha)
    if target is not None and method != "Orwin":
        raise EvidenceError(f"target is used only by method='Orwin', not method='{method}'.")
    if method == "Rosenthal":
        n, p, mean, target = _rosenthal(y, v, alpha)
    elif method == "Orwin":
        n, p, mean, target = _orwin(y, target)
    else:
        n, p, mean, target = _rosenberg(y, v, alpha)
    return FailSafeResult(n=_round_up(n), method=method, alpha=alpha, pvalue=p,
                          mean_effect=mean, target=target, k=len(y))
