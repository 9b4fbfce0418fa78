"""The weighted least-squares engine behind ``pool`` and ``meta_regression``.

It follows metafor's ``rma.uni`` (version 3.8-1) step by step, but replaces every k x k
matrix by p x p normal equations: with W = diag(w) and P = W - W X (X'WX)^-1 X'W,

* y'Py  = sum(w * r**2) where r are the WLS residuals,
* y'PPy = sum((w * r)**2),
* tr(P) = sum(w) - tr(A X'W^2 X) and
* tr(PP) = sum(w^2) - 2 tr(A X'W^3 X) + tr(A X'W^2 X A X'W^2 X), with A = (X'WX)^-1,

so one fit costs O(k p^2) time and O(k p) memory.

No sum over the k studies goes through a matrix product (``@``, ``np.dot``): numpy hands
those to the BLAS, whose threads (OpenBLAS starts one per core) make a k-length dot product
cost milliseconds instead of microseconds when the cores are busy. Every such sum is an
elementwise product reduced by ``ndarray.sum`` (pairwise summation, one thread); only p x p
matrices meet the BLAS/LAPACK.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from . import _dist
from .errors import ConvergenceError

THRESHOLD = 1e-12  # Fisher-scoring stop: |change in tau^2| (metafor's control$threshold)
MAXITER = 1000
ROOT_XTOL = 1e-14  # absolute tolerance on tau^2 for root finding (metafor's control$tol)
ROOT_RTOL = 4 * np.finfo(float).eps  # relative part of the same stop (as scipy's brentq)
LL0_TOL = np.finfo(float).eps ** 0.25  # metafor's default control$tol in its ll0 check


class Design:
    """A model matrix X (k x p) kept by column, for weighted sums without the BLAS.

    A column of ones (the intercept) is kept as None and never multiplied, so an
    intercept-only model costs a handful of sums per fit.
    """

    def __init__(self, X):
        self._X = np.asarray(X, dtype=float)
        self.k, self.p = self._X.shape
        self.cols = tuple(None if np.all(col == 1.0) else np.ascontiguousarray(col)
                          for col in self._X.T)
        self.intercept_only = self.cols == (None,)

    @classmethod
    def intercept(cls, k):
        """The design of an intercept-only model with k studies (X is built only if asked)."""
        design = cls.__new__(cls)
        design._X, design.k, design.p = None, k, 1
        design.cols, design.intercept_only = (None,), True
        return design

    @property
    def X(self):
        """The model matrix as a k x p array."""
        return np.ones((self.k, 1)) if self._X is None else self._X

    def gram(self, d=None):
        """X' diag(d) X (X'X when ``d`` is None) as a p x p array."""
        dc = [_times(d, c) for c in self.cols]
        g = np.empty((self.p, self.p))
        for i in range(self.p):
            for j in range(i, self.p):
                g[i, j] = g[j, i] = _total(_times(dc[i], self.cols[j]), self.k)
        return g

    def cross(self, d, y):
        """X' diag(d) y as a length-p array."""
        dy = d * y
        return np.array([_total(_times(dy, c), self.k) for c in self.cols])

    def fitted(self, beta):
        """X beta (a scalar for an intercept-only model: it broadcasts)."""
        out = 0.0
        for b, c in zip(beta, self.cols, strict=True):
            out = out + (b if c is None else b * c)
        return out


def _times(a, b):
    """a * b where None stands for a vector of ones."""
    if a is None:
        return b
    return a if b is None else a * b


def _total(a, k):
    """The sum of a (ndarray.sum: np.sum's pairwise summation, less call overhead); None is k ones."""
    return float(k) if a is None else float(a.sum())


def as_design(X):
    """``X`` as a :class:`Design` (it may already be one)."""
    return X if isinstance(X, Design) else Design(X)


@dataclass(frozen=True)
class Wls:
    """Weighted least squares of y on ``design`` with weights ``w``: coefficients,
    (X'WX)^-1, residuals, and the sums built from them (each computed once)."""

    design: Design
    w: np.ndarray
    beta: np.ndarray
    inv: np.ndarray
    resid: np.ndarray

    @cached_property
    def wr(self):
        """w * r."""
        return self.w * self.resid

    @cached_property
    def rss(self):
        """The weighted residual sum of squares y'Py = sum(w r^2)."""
        return float((self.wr * self.resid).sum())

    @cached_property
    def wr2(self):
        """y'PPy = sum((w r)^2), also -dQ/dtau^2 at these weights (X'Wr = 0)."""
        return float((self.wr * self.wr).sum())

    @cached_property
    def sum_w(self):
        return float(self.w.sum())

    @cached_property
    def w2(self):
        return self.w * self.w

    @cached_property
    def a_g2(self):
        """(X'WX)^-1 X'W^2X."""
        return self.inv @ self.design.gram(self.w2)

    @cached_property
    def trace_p(self):
        """tr(P) = sum(w) - tr((X'WX)^-1 X'W^2X)."""
        if self.design.intercept_only:
            return self.sum_w - float(self.w2.sum()) / self.sum_w
        return float(self.sum_w - np.trace(self.a_g2))

    @cached_property
    def trace_pp(self):
        """tr(PP) = sum(w^2) - 2 tr(A X'W^3X) + tr(A X'W^2X A X'W^2X), A = (X'WX)^-1."""
        if self.design.intercept_only:
            s2, sw = float(self.w2.sum()), self.sum_w
            return s2 - 2 * float((self.w2 * self.w).sum()) / sw + (s2 / sw) ** 2
        g2 = self.a_g2
        g3 = self.inv @ self.design.gram(self.w2 * self.w)
        return float(self.w2.sum() - 2 * np.trace(g3) + np.sum(g2 * g2.T))


def wls(design, y, w):
    """Solve the weighted normal equations X'WX b = X'Wy."""
    if design.intercept_only:
        sw = float(w.sum())
        beta = np.array([(w * y).sum() / sw])
        fit = Wls(design, w, beta, np.array([[1 / sw]]), y - beta[0])
        fit.__dict__["sum_w"] = sw  # cached_property's slot: no second pass over w
        return fit
    inv = np.linalg.inv(design.gram(w))
    beta = inv @ design.cross(w, y)
    return Wls(design, w, beta, inv, y - design.fitted(beta))


def z_ratio(estimate, se):
    """estimate / se as a float; se = 0 (an exact fit) gives +/-inf, or NaN for 0 / 0."""
    if se > 0:
        return float(estimate / se)
    return float(np.copysign(np.inf, estimate)) if estimate else np.nan


# ---------------------------------------------------------------- non-iterative tau^2
# Every estimator takes the Design ``d`` and, where it needs one, the fixed-effect fit ``fe``
# (weights 1 / v), which fit_model computes once for the estimator and for QE/I^2.


def fixed_effect_fit(d, y, v):
    """The weighted least-squares fit with weights 1 / v."""
    return wls(d, y, 1 / v)


def tau2_he(d, y, v, fe=None):
    """Hedges (HE): (RSS_OLS - tr(PV)) / (k - p), P the OLS residual projector."""
    ols = wls(d, y, np.ones(d.k))
    tr_pv = v.sum() - np.sum(ols.inv * d.gram(v))
    return (ols.rss - tr_pv) / (d.k - d.p)


def tau2_dl(d, y, v, fe=None):
    """DerSimonian-Laird: (Q - (k - p)) / tr(P) with fixed-effect weights."""
    fe = fixed_effect_fit(d, y, v) if fe is None else fe
    return (fe.rss - (d.k - d.p)) / fe.trace_p


def tau2_hs(d, y, v, fe=None):
    """Hunter-Schmidt: (Q - k) / sum(w) with fixed-effect weights."""
    fe = fixed_effect_fit(d, y, v) if fe is None else fe
    return (fe.rss - d.k) / fe.sum_w


def tau2_sj(d, y, v, fe=None):
    """Sidik-Jonkman, started (as metafor) from the variance of y with divisor k."""
    tau2_0 = np.mean((y - y.mean()) ** 2)
    return tau2_0 * wls(d, y, 1 / (v + tau2_0)).rss / (d.k - d.p)


# ---------------------------------------------------------------- iterative tau^2


def generalised_q(tau2, d, y, v):
    """Generalised Q statistic sum(w r^2) at w = 1 / (v + tau2)."""
    return wls(d, y, 1 / (v + tau2)).rss


def _r_mad(y):
    """R's ``mad()``: 1.4826 times the median absolute deviation from the median."""
    return 1.4826 * np.median(np.abs(y - np.median(y)))


PM_UPPER_FLOOR = 100.0  # metafor's control$tau2.max = max(100, 10 mad(y)^2)


def tau2_pm(d, y, v, fe=None):
    """Paule-Mandel: the root of Q(tau2) = k - p on [0, tau2_max], as metafor."""
    target = d.k - d.p
    fe = fixed_effect_fit(d, y, v) if fe is None else fe
    if fe.rss < target:
        return 0.0
    # Q decreases in tau2, so a root below 100 is the root in [0, tau2_max] whatever
    # mad(y) is; the two medians of mad are needed only when the root lies above 100
    # DL is a one-step approximation of this root: Newton steps from there need about half
    # the Q evaluations of steps from 0 (the bracket keeps them safe when DL overshoots)
    start = (fe.rss - target) / fe.trace_p
    tau2 = solve_q(d, y, v, target, PM_UPPER_FLOOR, first=fe, upper_checked=False,
                   start=start)
    if tau2 is not None:
        return tau2
    tau2_max = max(PM_UPPER_FLOOR, 10 * _r_mad(y) ** 2)
    if tau2_max == PM_UPPER_FLOOR or generalised_q(tau2_max, d, y, v) > target:
        raise ConvergenceError(
            f"Paule-Mandel/empirical Bayes: the root of Q(tau2) = k - p lies above "
            f"tau2_max = {tau2_max:g}; rescale the effect sizes or use method='REML'."
        )
    return solve_q(d, y, v, target, tau2_max, first=fe, start=start)


def solve_q(d, y, v, target, upper, first=None, upper_checked=True, start=None):
    """The tau^2 in [0, upper] where the generalised Q equals ``target``.

    Q(tau2) decreases in tau2, with the exact slope dQ/dtau2 = -sum((w r)^2) (the change of
    the coefficients drops out, as X'Wr = 0). So Newton steps from 0 (the Paule-Mandel
    steps of DerSimonian and Kacker, 2007) are taken inside a bracket [lo, hi] with
    Q(lo) >= target >= Q(hi), and a step that leaves it is replaced by bisection. It stops
    at the same tolerance as metafor's ``uniroot`` call (``ROOT_XTOL``, absolute), so
    it finds the same root with a handful of Q evaluations instead of Brent's dozen or so.

    The caller has checked Q(0) >= target (``first`` is the fit at tau2 = 0, if at hand).
    Q(upper) <= target too if ``upper_checked``; otherwise that is checked only when a step
    reaches ``upper``, and None is returned when it fails (no root in [0, upper]). The
    steps start from ``start`` if it lies in (0, upper), else from 0.
    """
    lo, hi, tau2, fit = 0.0, upper, 0.0, first
    if start is not None and 0 < start < upper:
        tau2, fit = float(start), None
    for _ in range(MAXITER):
        if fit is None:
            fit = wls(d, y, 1 / (v + tau2))
        f = fit.rss - target
        if f == 0:
            return tau2
        if f > 0:
            lo = tau2
        else:
            hi, upper_checked = tau2, True  # Q(upper) <= Q(tau2) < target
        new = tau2 + f / fit.wr2 if fit.wr2 > 0 else hi
        if new >= hi and not upper_checked:
            if generalised_q(upper, d, y, v) > target:
                return None
            upper_checked = True
        if not lo < new < hi:
            new = 0.5 * (lo + hi)
        if abs(new - tau2) <= ROOT_XTOL + ROOT_RTOL * abs(new) or hi - lo <= ROOT_XTOL:
            return new
        tau2, fit = new, None
    raise ConvergenceError(
        f"the root of Q(tau2) = {target:g} was not found in {MAXITER} steps on [0, {upper:g}]."
    )


def _step_ml(fit):
    return (fit.wr2 - fit.sum_w) / fit.w2.sum()


def _step_reml(fit):
    return (fit.wr2 - fit.trace_p) / fit.trace_pp


_FISHER_STEP = {"ML": _step_ml, "REML": _step_reml}


def _keep_nonnegative(tau2, adj):
    """Halve a negative step until tau2 + adj >= 0, as metafor's step-halving does."""
    if tau2 == 0.0 and adj < 0:
        return 0.0  # halving would only end when adj underflows to -0.0
    while tau2 + adj < 0:
        adj /= 2
    return adj


def tau2_fisher(d, y, v, method):
    """ML or REML by metafor's Fisher scoring, started from max(0, HE)."""
    step = _FISHER_STEP[method]
    tau2 = max(0.0, tau2_he(d, y, v))
    for _ in range(MAXITER):
        adj = step(wls(d, y, 1 / (v + tau2)))
        adj = _keep_nonnegative(tau2, 0.0 if np.isnan(adj) else adj)
        old, tau2 = tau2, tau2 + adj
        if abs(old - tau2) <= THRESHOLD:
            return _ll0_check(d, y, v, method, tau2)
    raise ConvergenceError(
        f"Fisher scoring for method='{method}' did not converge in {MAXITER} iterations; "
        "try method='PM' or 'DL', or check for extreme sampling variances."
    )


def log_likelihood(d, y, v, tau2, method):
    """The ML or REML log-likelihood at ``tau2`` (metafor's, without the REMLf term)."""
    fit = wls(d, y, 1 / (v + tau2))
    ll = -0.5 * np.log(v + tau2).sum() - 0.5 * fit.rss
    if method == "ML":
        return ll - 0.5 * d.k * np.log(2 * np.pi)
    logdet = np.linalg.slogdet(d.gram(fit.w))[1]
    return ll - 0.5 * (d.k - d.p) * np.log(2 * np.pi) - 0.5 * logdet


def _ll0_check(d, y, v, method, tau2):
    """metafor's guard: fall back to tau2 = 0 if that has a clearly higher likelihood."""
    ll0 = log_likelihood(d, y, v, 0.0, method)
    if ll0 - log_likelihood(d, y, v, tau2, method) > LL0_TOL and tau2 > THRESHOLD:
        return 0.0
    return tau2


_NOT_FISHER = {"HE": tau2_he, "DL": tau2_dl, "HS": tau2_hs, "SJ": tau2_sj,
               "PM": tau2_pm, "EB": tau2_pm}  # EB's fixed point is the PM equation (pooling Notes)


def estimate_tau2(y, v, X, method, fe=None):
    """tau^2 by ``method`` (see ``evidence._checks.METHODS``), truncated at 0.

    ``X`` is a model matrix or a :class:`Design`; ``fe`` the fixed-effect fit, if at hand.
    """
    if method == "FE" or len(y) == 1:
        return 0.0
    d = as_design(X)
    estimator = _NOT_FISHER.get(method)
    tau2 = estimator(d, y, v, fe) if estimator else tau2_fisher(d, y, v, method)
    return max(0.0, float(tau2))


# ---------------------------------------------------------------- model


@dataclass(frozen=True)
class Model:
    """A fitted (mixed-)effects model: everything ``pool``/``meta_regression`` report."""

    design: Design
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
    def X(self):
        return self.design.X

    @property
    def k(self):
        return self.design.k

    @property
    def p(self):
        return self.design.p

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
        X_new = np.asarray(X_new, dtype=float)
        pred = np.sum(X_new * self.beta, axis=1)  # rows of new data: no BLAS over them
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


def _heterogeneity(d, fe, tau2, method):
    """QE, its p-value, metafor's typical variance vt, I^2 (%) and H^2."""
    k, p = d.k, d.p
    if k <= p:
        return 0.0, 1.0, 0.0, 0.0, 1.0  # metafor's values when no residual df remain
    qe = max(0.0, fe.rss)
    vt = (k - p) / fe.trace_p
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
    """Estimate tau^2, the coefficients and heterogeneity statistics as ``rma.uni``.

    ``X`` is a model matrix or a :class:`Design`.
    """
    d = as_design(X)
    k, p = d.k, d.p
    fe = fixed_effect_fit(d, y, v)
    tau2 = estimate_tau2(y, v, d, method, fe)
    fit = fe if tau2 == 0 else wls(d, y, 1 / (v + tau2))
    vb = fit.inv
    if test == "knha":
        vb = vb * _knha_scale(fit, k, p)
        ddf = float(k - p)
        crit = float(_dist.t_isf(alpha / 2, ddf))
    else:
        ddf, crit = np.nan, float(_dist.norm_isf(alpha / 2))
    qe, qe_p, vt, i2, h2 = _heterogeneity(d, fe, tau2, method)
    return Model(d, y, v, fit.beta, vb, tau2, fit.w, ddf, crit, qe, qe_p, vt, i2, h2,
                 method, test, alpha)


def tau2_q_profile(model):
    """Q-profile confidence bounds for tau^2 as metafor's ``confint(type="QP")``.

    Returns ``(low, high)``; a bound that metafor reports as "<" or ">" its search limit is
    returned at that limit (0 or tau2_max = max(100, 10 tau^2)).
    """
    d, y, v, alpha = model.design, model.y, model.v, model.alpha
    df = model.k - model.p
    crit_u, crit_l = _dist.chi2_isf(alpha / 2, df), _dist.chi2_ppf(alpha / 2, df)
    upper_lim = max(100.0, 10 * model.tau2)
    first = fixed_effect_fit(d, y, v)
    q_min, q_max = first.rss, generalised_q(upper_lim, d, y, v)
    if q_max > crit_u:
        return upper_lim, upper_lim
    if q_min < crit_l:
        return 0.0, 0.0
    high = upper_lim if q_max > crit_l else solve_q(d, y, v, crit_l, upper_lim, first)
    low = 0.0 if q_min < crit_u else solve_q(d, y, v, crit_u, upper_lim, first)
    return low, high
