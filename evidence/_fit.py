"""The weighted least-squares engine behind ``pool`` and ``meta_regression``.

It follows metafor's ``rma.uni`` (version 3.8-1) step by step, but replaces every k x k
matrix by p x p normal equations: with W = diag(w) and P = W - W X (X'WX)^-1 X'W,

* y'Py  = sum(w * r**2) where r are the WLS residuals,
* y'PPy = sum((w * r)**2),
* tr(P) = sum(w) - tr(A X'W^2 X) and
* tr(PP) = sum(w^2) - 2 tr(A X'W^3 X) + tr(A X'W^2 X A X'W^2 X), with A = (X'WX)^-1,

so one fit costs O(k p^2) time and O(k p) memory.
"""

from dataclasses import dataclass

import numpy as np

from . import _dist
from .errors import ConvergenceError

THRESHOLD = 1e-12  # Fisher-scoring stop: |change in tau^2| (metafor's control$threshold)
MAXITER = 1000
ROOT_XTOL = 1e-14  # absolute tolerance on tau^2 for root finding (metafor's control$tol)
LL0_TOL = np.finfo(float).eps ** 0.25  # metafor's default control$tol in its ll0 check


@dataclass(frozen=True)
class Wls:
    """Weighted least squares with weights ``w``: coefficients, (X'WX)^-1, residuals."""

    w: np.ndarray
    beta: np.ndarray
    inv: np.ndarray
    resid: np.ndarray

    @property
    def rss(self):
        """The weighted residual sum of squares y'Py."""
        return float(np.dot(self.w, self.resid**2))


def wls(X, y, w):
    """Solve the weighted normal equations X'WX b = X'Wy."""
    xtw = X.T * w
    inv = np.linalg.inv(xtw @ X)
    beta = inv @ (xtw @ y)
    return Wls(w, beta, inv, y - X @ beta)


def z_ratio(estimate, se):
    """estimate / se as a float; se = 0 (an exact fit) gives +/-inf, or NaN for 0 / 0."""
    if se > 0:
        return float(estimate / se)
    return float(np.copysign(np.inf, estimate)) if estimate else np.nan


def _cross(X, d):
    """X' diag(d) X."""
    return (X.T * d) @ X


def trace_p(X, fit):
    """tr(P) for the weights of ``fit``."""
    return float(fit.w.sum() - np.sum(fit.inv * _cross(X, fit.w**2)))


def trace_pp(X, fit):
    """tr(PP) for the weights of ``fit``."""
    g2 = fit.inv @ _cross(X, fit.w**2)
    g3 = fit.inv @ _cross(X, fit.w**3)
    return float(np.sum(fit.w**2) - 2 * np.trace(g3) + np.sum(g2 * g2.T))


# ---------------------------------------------------------------- non-iterative tau^2


def tau2_he(y, v, X):
    """Hedges (HE): (RSS_OLS - tr(PV)) / (k - p), P the OLS residual projector."""
    k, p = X.shape
    ols = wls(X, y, np.ones(k))
    tr_pv = v.sum() - np.sum(ols.inv * _cross(X, v))
    return (ols.rss - tr_pv) / (k - p)


def tau2_dl(y, v, X):
    """DerSimonian-Laird: (Q - (k - p)) / tr(P) with fixed-effect weights."""
    k, p = X.shape
    fe = wls(X, y, 1 / v)
    return (fe.rss - (k - p)) / trace_p(X, fe)


def tau2_hs(y, v, X):
    """Hunter-Schmidt: (Q - k) / sum(w) with fixed-effect weights."""
    w = 1 / v
    return (wls(X, y, w).rss - len(y)) / w.sum()


def tau2_sj(y, v, X):
    """Sidik-Jonkman, started (as metafor) from the variance of y with divisor k."""
    k, p = X.shape
    tau2_0 = np.mean((y - y.mean()) ** 2)
    return tau2_0 * wls(X, y, 1 / (v + tau2_0)).rss / (k - p)


# ---------------------------------------------------------------- iterative tau^2


def generalised_q(tau2, y, v, X):
    """Generalised Q statistic sum(w r^2) at w = 1 / (v + tau2)."""
    return wls(X, y, 1 / (v + tau2)).rss


def _r_mad(y):
    """R's ``mad()``: 1.4826 times the median absolute deviation from the median."""
    return 1.4826 * np.median(np.abs(y - np.median(y)))


def tau2_pm(y, v, X):
    """Paule-Mandel: the root of Q(tau2) = k - p on [0, tau2_max], as metafor."""
    k, p = X.shape
    target = k - p
    if generalised_q(0.0, y, v, X) < target:
        return 0.0
    tau2_max = max(100.0, 10 * _r_mad(y) ** 2)  # metafor's control$tau2.max default
    if generalised_q(tau2_max, y, v, X) > target:
        raise ConvergenceError(
            f"Paule-Mandel/empirical Bayes: the root of Q(tau2) = k - p lies above "
            f"tau2_max = {tau2_max:g}; rescale the effect sizes or use method='REML'."
        )

    def f(t):
        return generalised_q(t, y, v, X) - target

    return _root(f, tau2_max)


def _step_ml(fit, X):
    return (np.sum((fit.w * fit.resid) ** 2) - fit.w.sum()) / np.sum(fit.w**2)


def _step_reml(fit, X):
    return (np.sum((fit.w * fit.resid) ** 2) - trace_p(X, fit)) / trace_pp(X, fit)


_FISHER_STEP = {"ML": _step_ml, "REML": _step_reml}


def _keep_nonnegative(tau2, adj):
    """Halve a negative step until tau2 + adj >= 0, as metafor's step-halving does."""
    if tau2 == 0.0 and adj < 0:
        return 0.0  # halving would only end when adj underflows to -0.0
    while tau2 + adj < 0:
        adj /= 2
    return adj


def tau2_fisher(y, v, X, method):
    """ML or REML by metafor's Fisher scoring, started from max(0, HE)."""
    step = _FISHER_STEP[method]
    tau2 = max(0.0, tau2_he(y, v, X))
    for _ in range(MAXITER):
        adj = step(wls(X, y, 1 / (v + tau2)), X)
        adj = _keep_nonnegative(tau2, 0.0 if np.isnan(adj) else adj)
        old, tau2 = tau2, tau2 + adj
        if abs(old - tau2) <= THRESHOLD:
            return _ll0_check(y, v, X, method, tau2)
    raise ConvergenceError(
        f"Fisher scoring for method='{method}' did not converge in {MAXITER} iterations; "
        "try method='PM' or 'DL', or check for extreme sampling variances."
    )


def log_likelihood(y, v, X, tau2, method):
    """The ML or REML log-likelihood at ``tau2`` (metafor's, without the REMLf term)."""
    k, p = X.shape
    fit = wls(X, y, 1 / (v + tau2))
    ll = -0.5 * np.sum(np.log(v + tau2)) - 0.5 * fit.rss
    if method == "ML":
        return ll - 0.5 * k * np.log(2 * np.pi)
    logdet = np.linalg.slogdet(_cross(X, fit.w))[1]
    return ll - 0.5 * (k - p) * np.log(2 * np.pi) - 0.5 * logdet


def _ll0_check(y, v, X, method, tau2):
    """metafor's guard: fall back to tau2 = 0 if that has a clearly higher likelihood."""
    ll0 = log_likelihood(y, v, X, 0.0, method)
    if ll0 - log_likelihood(y, v, X, tau2, method) > LL0_TOL and tau2 > THRESHOLD:
        return 0.0
    return tau2


def _root(f, upper):
    """The root of ``f`` on [0, upper] by Brent's method, with metafor's tolerances."""
    # imported here: scipy.optimize is ~0.3 s of `import evidence`, and only PM/EB and
    # tau2_conf_int need it
    from scipy.optimize import brentq

    return brentq(f, 0.0, upper, xtol=ROOT_XTOL, maxiter=MAXITER)


def estimate_tau2(y, v, X, method):
    """tau^2 by ``method`` (see ``evidence._checks.METHODS``), truncated at 0."""
    if method == "FE" or len(y) == 1:
        return 0.0
    closed = {"HE": tau2_he, "DL": tau2_dl, "HS": tau2_hs, "SJ": tau2_sj}
    if method in closed:
        tau2 = closed[method](y, v, X)
    elif method in ("PM", "EB"):
        tau2 = tau2_pm(y, v, X)  # EB's fixed point is the PM equation (see pooling Notes)
    else:
        tau2 = tau2_fisher(y, v, X, method)
    return max(0.0, float(tau2))


# ---------------------------------------------------------------- model


@dataclass(frozen=True)
class Model:
    """A fitted (mixed-)effects model: everything ``pool``/``meta_regression`` report."""

    X: np.ndarray
    y: np.ndarray
    v: np.ndarray
    beta: np.ndarray
    vb: np.ndarray
    tau2: float
    w: np.ndarray
    ddf: float
    crit: float
    qe: float
    qe_pvalue: float
    vt: float
    i2: float
    h2: float
    method: str
    test: str
    alpha: float

    @property
    def k(self):
        return self.X.shape[0]

    @property
    def p(self):
        return self.X.shape[1]

    @property
    def se(self):
        return np.sqrt(np.diag(self.vb))

    def pvalues(self, stat):
        """Two-sided p-values of z or t statistics ``stat``."""
        if self.test == "knha":
            return 2 * _dist.t_sf(np.abs(stat), self.ddf)
        return 2 * _dist.norm_sf(np.abs(stat))

    def predict(self, X_new):
        """Predictions, standard errors, confidence and prediction bounds (as metafor)."""
        pred = X_new @ self.beta
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", X_new, self.vb, X_new), 0))
        half_pi = self.crit * np.sqrt(se**2 + self.tau2)
        return pred, se, pred - self.crit * se, pred + self.crit * se, pred - half_pi, pred + half_pi

    def wald(self, idx):
        """QM for coefficients ``idx``: chi-square (z) or F (knha) statistic, df, p-value."""
        b = self.beta[idx]
        try:
            qm = float(b @ np.linalg.solve(self.vb[np.ix_(idx, idx)], b))
        except np.linalg.LinAlgError:
            qm = np.nan
        m = len(idx)
        if self.test == "knha":
            return qm / m, (m, self.ddf), float(_dist.f_sf(qm / m, m, self.ddf))
        return qm, (m, np.nan), float(_dist.chi2_sf(qm, m))


def _heterogeneity(y, v, X, tau2, method):
    """QE, its p-value, metafor's typical variance vt, I^2 (%) and H^2."""
    k, p = X.shape
    if k <= p:
        return 0.0, 1.0, 0.0, 0.0, 1.0  # metafor's values when no residual df remain
    fe = wls(X, y, 1 / v)
    qe = max(0.0, fe.rss)
    vt = (k - p) / trace_p(X, fe)
    if method == "FE":
        i2 = max(0.0, 100 * (qe - (k - p)) / qe) if qe > 0 else 0.0
        h2 = qe / (k - p)
    else:
        i2, h2 = 100 * tau2 / (vt + tau2), tau2 / vt + 1
    return qe, float(_dist.chi2_sf(qe, k - p)), vt, i2, h2


def _knha_scale(fit, k, p):
    """Knapp-Hartung factor s^2 = RSS / (k - p); 0 when RSS is numerically 0 (metafor)."""
    rss = fit.rss
    return 0.0 if rss <= np.finfo(float).eps else rss / (k - p)


def fit_model(y, v, X, method, test, alpha):
    """Estimate tau^2, the coefficients and heterogeneity statistics as ``rma.uni``."""
    k, p = X.shape
    tau2 = estimate_tau2(y, v, X, method)
    fit = wls(X, y, 1 / (v + tau2))
    vb = fit.inv
    if test == "knha":
        vb = vb * _knha_scale(fit, k, p)
        ddf = float(k - p)
        crit = float(_dist.t_isf(alpha / 2, ddf))
    else:
        ddf, crit = np.nan, float(_dist.norm_isf(alpha / 2))
    qe, qe_p, vt, i2, h2 = _heterogeneity(y, v, X, tau2, method)
    return Model(X, y, v, fit.beta, vb, tau2, fit.w, ddf, crit, qe, qe_p, vt, i2, h2,
                 method, test, alpha)


def tau2_q_profile(model):
    """Q-profile confidence bounds for tau^2 as metafor's ``confint(type="QP")``.

    Returns ``(low, high)``; a bound that metafor reports as "<" or ">" its search limit is
    returned at that limit (0 or tau2_max = max(100, 10 tau^2)).
    """
    y, v, X, alpha = model.y, model.v, model.X, model.alpha
    df = model.k - model.p
    crit_u, crit_l = _dist.chi2_isf(alpha / 2, df), _dist.chi2_ppf(alpha / 2, df)
    upper_lim = max(100.0, 10 * model.tau2)
    q_min, q_max = generalised_q(0.0, y, v, X), generalised_q(upper_lim, y, v, X)

    def solve(target):
        def f(t):
            return generalised_q(t, y, v, X) - target

        return _root(f, upper_lim)

    if q_max > crit_u:
        return upper_lim, upper_lim
    if q_min < crit_l:
        return 0.0, 0.0
    high = upper_lim if q_max > crit_l else solve(crit_l)
    low = 0.0 if q_min < crit_u else solve(crit_u)
    return low, high
