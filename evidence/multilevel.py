"""Several effects per study: the three-level model and cluster-robust standard errors.

``pool_multilevel`` is metafor's ``rma.mv(yi, vi, random = ~ 1 | cluster/effect)``;
``robust_pool`` is ``robust(rma(yi, vi), cluster = cluster, adjust = TRUE)``.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from . import _checks, _dist
from ._fit import z_ratio
from .errors import ConvergenceError, EvidenceError
from .pooling import pool

ML_METHODS = ("REML", "ML")
ML_TESTS = ("z", "t")
NEWTON_TOL = 1e-12  # relative change in each variance component that ends the polishing
NEWTON_MAXITER = 100


@dataclass(frozen=True)
class MultilevelResult:
    """Result of :func:`pool_multilevel`.

    ``sigma2`` is ``(between-cluster, within-cluster)``; ``statistic`` is z or t
    (``k - 1`` df); ``loglik`` is metafor's ``logLik()`` (restricted for REML).
    """

    k: int
    n_clusters: int
    estimate: float
    se: float
    statistic: float
    pvalue: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    sigma2: tuple
    q: float
    q_df: int
    q_pvalue: float
    loglik: float
    method: str
    test: str
    alpha: float

    def to_frame(self):
        """One-row DataFrame; ``sigma2`` becomes ``sigma2_between`` and ``sigma2_within``."""
        row = {name: getattr(self, name) for name in self.__dataclass_fields__}
        row["sigma2_between"], row["sigma2_within"] = row.pop("sigma2")
        return pd.DataFrame([row])


@dataclass(frozen=True)
class RobustResult:
    """Result of :func:`robust_pool`: a random-effects estimate with a cluster-robust SE.

    ``statistic`` is a t statistic with ``df = n_clusters - 1``.
    """

    k: int
    n_clusters: int
    estimate: float
    se: float
    statistic: float
    df: int
    pvalue: float
    ci_low: float
    ci_high: float
    tau2: float
    method: str
    adjust: bool
    alpha: float

    def to_frame(self):
        """One-row DataFrame of all fields."""
        return pd.DataFrame([{name: getattr(self, name) for name in self.__dataclass_fields__}])


# ---------------------------------------------------------------- input


def as_clusters(cluster, k):
    """Integer codes 0..n-1 for the cluster labels and the number of clusters n."""
    labels = pd.Series(list(cluster) if not hasattr(cluster, "__len__") else cluster)
    if len(labels) != k:
        raise EvidenceError(
            f"inputs must have the same length, but yi has {k} and cluster has {len(labels)}; "
            "pass one cluster label per effect."
        )
    codes, uniques = pd.factorize(labels, use_na_sentinel=True)
    if (codes < 0).any():
        i = int(np.flatnonzero(codes < 0)[0])
        raise EvidenceError(f"cluster must not be missing; position {i} is {labels.iloc[i]!r}.")
    return codes, len(uniques)


def _check_clusters(codes, n, k, what):
    """Raise unless the clusters can identify a between-cluster component."""
    if n < 2:
        raise EvidenceError(
            f"{what} needs at least 2 clusters; all {k} effects are in one cluster. "
            "Use pool() on the effects or add studies."
        )


# ---------------------------------------------------------------- likelihood


@dataclass(frozen=True)
class _Data:
    y: np.ndarray
    v: np.ndarray
    codes: np.ndarray
    n: int
    reml: bool


def _csum(data, values):
    """Per-cluster sums."""
    return np.bincount(data.codes, weights=values, minlength=data.n)


@dataclass(frozen=True)
class _Fit:
    """The GLS fit at given variance components, from per-cluster Sherman-Morrison forms.

    Cluster j has V_j = diag(d) + sb J with d = v + sw; with a = 1/d, s_j = sum(a) and
    c_j = 1 / (1 + sb s_j): V_j^-1 = diag(a) - sb c_j a a', 1'V_j^-1 1 = s_j c_j and
    log det V_j = sum(log d) + log(1 + sb s_j).
    """

    mu: float
    info: float  # 1'V^-1 1
    a: np.ndarray
    s: np.ndarray
    c: np.ndarray
    r: np.ndarray  # y - mu
    t: np.ndarray  # per-cluster sums of a r
    loglik: float


def _gls(data, sigma2):
    """Fit mu at ``sigma2 = (sb, sw)`` and evaluate the (restricted) log-likelihood."""
    sb, sw = sigma2
    a = 1 / (data.v + sw)
    s = _csum(data, a)
    c = 1 / (1 + sb * s)
    info = float(np.sum(s * c))
    mu = float(np.sum(_csum(data, a * data.y) * c)) / info
    r = data.y - mu
    t = _csum(data, a * r)
    quad = float(np.dot(a * r, r) - sb * np.sum(c * t**2))  # r'V^-1 r
    logdet = float(np.sum(np.log(data.v + sw)) + np.sum(np.log1p(sb * s)))
    k = len(data.y)
    if data.reml:  # metafor's REMLf: + log det(X'X) / 2 = log(k) / 2
        ll = -0.5 * ((k - 1) * np.log(2 * np.pi) + logdet + np.log(info) + quad) + 0.5 * np.log(k)
    else:
        ll = -0.5 * (k * np.log(2 * np.pi) + logdet + quad)
    return _Fit(mu, info, a, s, c, r, t, ll)


def _gradient(data, sigma2, fit):
    """d loglik / d (sb, sw): -tr(P dV)/2 + r'V^-1 dV V^-1 r/2 (P -> V^-1 for ML)."""
    sb, _ = sigma2
    a, s, c = fit.a, fit.s, fit.c
    a2 = _csum(data, a**2)
    vinv_r = a * (fit.r - sb * (c * fit.t)[data.codes])
    tr_b = np.sum(s * c)  # tr(V^-1 J)
    tr_w = np.sum(a) - sb * np.sum(c * a2)  # tr(V^-1)
    if data.reml:  # minus tr((X'V^-1X)^-1 X'V^-1 dV V^-1 X)
        tr_b -= np.sum((s * c) ** 2) / fit.info
        tr_w -= np.sum(c**2 * a2) / fit.info
    g_b = -0.5 * tr_b + 0.5 * np.sum((c * fit.t) ** 2)
    g_w = -0.5 * tr_w + 0.5 * np.dot(vinv_r, vinv_r)
    return np.array([g_b, g_w])


def _objective(x, data, scale):
    """Negative log-likelihood and its gradient in scaled units x = sigma2 / scale."""
    sigma2 = x * scale
    fit = _gls(data, sigma2)
    return -fit.loglik, -_gradient(data, sigma2, fit) * scale


def _hessian(data, sigma2, step):
    """Central-difference Hessian of the analytic gradient."""
    h = np.empty((2, 2))
    for j in range(2):
        e = np.zeros(2)
        e[j] = step[j]
        up, down = sigma2 + e, np.maximum(sigma2 - e, 0.0)
        g_up = _gradient(data, up, _gls(data, up))
        g_down = _gradient(data, down, _gls(data, down))
        h[:, j] = (g_up - g_down) / (up[j] - down[j])
    return (h + h.T) / 2


def _newton(data, sigma2, scale):
    """Polish a maximum with projected Newton steps, keeping components at 0 where the
    gradient pushes below 0 (the boundary maximum metafor approaches on its log scale)."""
    for _ in range(NEWTON_MAXITER):
        g = _gradient(data, sigma2, _gls(data, sigma2))
        free = ~((sigma2 <= 0) & (g <= 0))
        if not free.any():
            return sigma2
        h = _hessian(data, sigma2, 1e-4 * np.maximum(sigma2, scale * 1e-3))[np.ix_(free, free)]
        step = np.zeros(2)
        try:
            step[free] = -np.linalg.solve(h, g[free])
        except np.linalg.LinAlgError:
            return sigma2
        new = np.maximum(sigma2 + step, 0.0)
        if _gls(data, new).loglik < _gls(data, sigma2).loglik - 1e-9 * scale:
            return sigma2  # Newton overshoots only far from the maximum; keep the quasi-Newton one
        done = np.all(np.abs(new - sigma2) <= NEWTON_TOL * np.maximum(new, scale * 1e-6))
        sigma2 = new
        if done:
            return sigma2
    raise ConvergenceError(
        f"pool_multilevel: Newton polishing did not converge in {NEWTON_MAXITER} steps; "
        "check for extreme sampling variances or try method='ML'."
    )


def fit_sigma2(data):
    """Maximise the (restricted) log-likelihood over (sb, sw) >= 0.

    L-BFGS-B with the analytic gradient on variance components scaled by the spread of
    the data, then projected Newton steps so the optimum is accurate to ~1e-12.
    """
    scale = max(float(np.var(data.y)), float(np.mean(data.v)))
    start = np.full(2, max(float(np.var(data.y) - np.mean(data.v)), 0.1 * scale) / (2 * scale))
    res = optimize.minimize(
        _objective, start, args=(data, scale), jac=True, method="L-BFGS-B",
        bounds=[(0, None)] * 2, options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10000},
    )
    if not np.all(np.isfinite(res.x)):
        raise ConvergenceError("pool_multilevel: the likelihood could not be maximised.")
    sigma2 = _newton(data, res.x * scale, scale)
    return np.where(sigma2 <= 10 * np.finfo(float).eps, 0.0, sigma2)  # metafor's cut-off


# ---------------------------------------------------------------- public API


def _test_crit(test, alpha, df):
    """Two-sided critical value and p-value function for a z or t test."""
    if test == "t":
        return float(_dist.t_isf(alpha / 2, df)), lambda stat: float(2 * _dist.t_sf(abs(stat), df))
    return float(_dist.norm_isf(alpha / 2)), lambda stat: float(2 * _dist.norm_sf(abs(stat)))


def _cochran_q(y, v):
    """Cochran's Q with fixed-effect weights 1 / v."""
    w = 1 / v
    return float(np.sum(w * (y - np.dot(w, y) / w.sum()) ** 2))


def pool_multilevel(yi, vi, cluster, method="REML", test="z", alpha=0.05):
    """Pool effect sizes nested in clusters with a three-level random-effects model.

    Parameters
    ----------
    yi : array-like of shape (k,)
        Observed effect sizes.
    vi : array-like of shape (k,)
        Their sampling variances, all > 0.
    cluster : array-like of shape (k,)
        Cluster (study, site or paper) label of each effect; any hashable values.
    method : {"REML", "ML"}
        Restricted or full maximum likelihood.
    test : {"z", "t"}
        Normal-theory z test, or t test with ``k - 1`` df (metafor's ``test = "t"``).
    alpha : float
        1 - confidence level.

    Returns
    -------
    MultilevelResult

    Raises
    ------
    EvidenceError
        On malformed input, fewer than 2 clusters, or no cluster with 2 or more effects
        (then the two components are not identifiable; use :func:`evidence.pool`).
    ConvergenceError
        If the likelihood cannot be maximised.

    Notes
    -----
    The model is metafor 3.8-1 ``rma.mv(yi, vi, random = ~ 1 | cluster/effect)`` with one
    ``effect`` level per row: y = mu + u_cluster + e_effect + sampling error, with
    variances ``sigma2 = (sb, sw)``. Cluster j's marginal covariance is
    diag(v + sw) + sb J, inverted by Sherman-Morrison, so one likelihood and gradient
    evaluation costs O(k) time and memory (10^5 effects take well under a second).
    The variance components maximise the (restricted) log-likelihood over sb, sw >= 0: L-BFGS-B
    with the analytic gradient, then projected Newton steps (Hessian by differences of the
    analytic gradient) to a relative change below 1e-12. metafor maximises on the log scale
    with nlminb and sets components below 10 machine epsilon to 0; on a boundary it stops
    near (not at) 0, while this function returns exactly 0. ``loglik`` includes metafor's
    REML constant log(k) / 2. ``q`` is Cochran's Q with weights 1 / vi and k - 1 df. The
    prediction interval is estimate +/- crit sqrt(se^2 + sb + sw), as ``predict.rma``.

    References
    ----------
    Konstantopoulos, S. (2011). Fixed effects and variance components estimation in
    three-level meta-analysis. Research Synthesis Methods, 2, 61-76.
    Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
    Journal of Statistical Software, 36(3), 1-48.
    """
    y, v = _checks.as_effects(yi, vi)
    method = _checks.check_choice(method, ML_METHODS, "method")
    test = _checks.check_choice(test, ML_TESTS, "test")
    alpha = _checks.check_alpha(alpha)
    codes, n = as_clusters(cluster, len(y))
    _check_clusters(codes, n, len(y), "pool_multilevel")
    if n == len(y):
        raise EvidenceError(
            "pool_multilevel needs a cluster with 2 or more effects; every cluster has one, "
            "so between- and within-cluster variance are not identifiable. Use pool()."
        )
    data = _Data(y, v, codes, n, method == "REML")
    sigma2 = fit_sigma2(data)
    return _multilevel_result(data, sigma2, test, alpha)


def _multilevel_result(data, sigma2, test, alpha):
    """Collect the estimate, tests and intervals at the fitted variance components."""
    fit = _gls(data, sigma2)
    k = len(data.y)
    se = 1 / np.sqrt(fit.info)
    stat = fit.mu / se
    crit, pvalue = _test_crit(test, alpha, k - 1)
    q = _cochran_q(data.y, data.v)
    half_pi = crit * np.sqrt(se**2 + sigma2.sum())
    return MultilevelResult(
        k=k, n_clusters=data.n, estimate=fit.mu, se=float(se), statistic=float(stat),
        pvalue=pvalue(stat), ci_low=fit.mu - crit * se, ci_high=fit.mu + crit * se,
        pi_low=float(fit.mu - half_pi), pi_high=float(fit.mu + half_pi),
        sigma2=(float(sigma2[0]), float(sigma2[1])), q=q, q_df=k - 1,
        q_pvalue=float(_dist.chi2_sf(q, k - 1)), loglik=fit.loglik,
        method="REML" if data.reml else "ML", test=test, alpha=alpha,
    )


def robust_pool(yi, vi, cluster, method="REML", adjust=True, alpha=0.05):
    """Random-effects estimate with a cluster-robust (sandwich) standard error.

    Parameters
    ----------
    yi : array-like of shape (k,)
        Observed effect sizes.
    vi : array-like of shape (k,)
        Their sampling variances, all > 0.
    cluster : array-like of shape (k,)
        Cluster label of each effect; effects in different clusters are assumed independent.
    method : str
        tau^2 estimator passed to :func:`evidence.pool` (``"FE"`` for a fixed-effect model).
    adjust : bool
        Multiply the sandwich variance by n / (n - 1), n the number of clusters (CR1).
    alpha : float
        1 - confidence level.

    Returns
    -------
    RobustResult

    Raises
    ------
    EvidenceError
        On malformed input or fewer than 2 clusters.

    Notes
    -----
    As metafor 3.8-1 ``robust(rma(yi, vi, method = method), cluster, adjust = adjust)``
    without clubSandwich: the model is fitted ignoring the clustering (so the estimate and
    tau^2 equal :func:`evidence.pool`'s), then with w = 1 / (vi + tau^2) and residuals
    e = yi - estimate, Var = sum_j (sum_{i in j} w_i e_i)^2 / (sum w)^2, times n / (n - 1)
    when ``adjust``. Tests and intervals use the t distribution with n - 1 df.

    References
    ----------
    Hedges, L. V., Tipton, E., & Johnson, M. C. (2010). Robust variance estimation in
    meta-regression with dependent effect size estimates. Research Synthesis Methods, 1,
    39-65.
    """
    alpha = _checks.check_alpha(alpha)
    fit = pool(yi, vi, method=method, alpha=alpha)
    y, v = _checks.as_effects(yi, vi)
    codes, n = as_clusters(cluster, len(y))
    _check_clusters(codes, n, len(y), "robust_pool")
    w = 1 / (v + fit.tau2)
    score = np.bincount(codes, weights=w * (y - fit.estimate), minlength=n)
    var = np.sum(score**2) / w.sum() ** 2 * (n / (n - 1) if adjust else 1.0)
    se = float(np.sqrt(var))
    stat = z_ratio(fit.estimate, se)
    crit, pvalue = _test_crit("t", alpha, n - 1)
    return RobustResult(
        k=len(y), n_clusters=n, estimate=fit.estimate, se=se, statistic=stat, df=n - 1,
        pvalue=pvalue(stat), ci_low=fit.estimate - crit * se, ci_high=fit.estimate + crit * se,
        tau2=fit.tau2, method=fit.method, adjust=bool(adjust), alpha=alpha,
    )
