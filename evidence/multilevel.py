"""Several effects per study: multilevel models and cluster-robust standard errors.

``pool_nested`` is metafor's ``rma.mv(yi, vi, random = ~ 1 | source/site/effect)``: effects
within sites (study records) within sources (papers); ``pool_multilevel`` is the two-level
``rma.mv(yi, vi, random = ~ 1 | cluster/effect)``. ``robust_pool`` is metafor's
``robust(fit, cluster)`` for a random-effects or a nested working model, with the CR1
sandwich (``adjust``) or clubSandwich's CR2 with Satterthwaite degrees of freedom.

Every model here is fitted in O(k) time and memory: the marginal covariance of a source is
a diagonal plus one compound-symmetry block per site plus one for the source, whose inverse,
determinant and traces follow from Woodbury's identity applied per site and then per
source, so no k x k matrix is ever formed.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import _checks, _dist
from ._fit import z_ratio
from .errors import ConvergenceError, EvidenceError
from .pooling import pool
from .robust import ROBUST_VCOV, WorkingModel, robust_variance

ML_METHODS = ("REML", "ML")
ML_TESTS = ("z", "t")
LEVELS = ("source", "site", "effect")  # outermost first, as sigma2 in NestedResult
POLISH = 1e-4  # relative move of a full Newton step after which one chord step ends the fit
FLOOR = 1e-8  # changes are relative to max(sigma2, FLOOR * scale of the data)
MAXITER = 200
FISHER_STEPS = 1  # Fisher scoring steps before Newton: robust far from the maximum
ZERO = 10 * np.finfo(float).eps  # components below this are reported as 0, as metafor


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
class NestedResult:
    """Result of :func:`pool_nested`: effects within sites within sources.

    ``sigma2`` and ``estimable`` follow :data:`LEVELS` = ``("source", "site", "effect")``:
    between sources, between sites of a source, and between effects of a site. A component
    that the design cannot identify is fixed at 0 with ``estimable`` False and a sentence
    in ``notes``. ``statistic`` is z or t (``k - 1`` df); ``loglik`` is metafor's
    ``logLik()`` (restricted for REML); the prediction interval uses the sum of ``sigma2``.
    """

    k: int
    n_sites: int
    n_sources: int
    estimate: float
    se: float
    statistic: float
    pvalue: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    sigma2: tuple
    estimable: tuple
    q: float
    q_df: int
    q_pvalue: float
    loglik: float
    method: str
    test: str
    alpha: float
    notes: tuple = ()
    _model: object = field(default=None, repr=False, compare=False)

    def to_frame(self):
        """One-row DataFrame; ``sigma2`` and ``estimable`` become one column per level
        (``sigma2_source``, ..., ``estimable_effect``) and ``notes`` one string."""
        row = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "_model"}
        for level, s2, ok in zip(LEVELS, row.pop("sigma2"), row.pop("estimable"), strict=True):
            row[f"sigma2_{level}"], row[f"estimable_{level}"] = s2, ok
        row["notes"] = " ".join(row["notes"])
        return pd.DataFrame([row])

    def robust(self, vcov="CR2", adjust=True):
        """Cluster-robust inference for this fit, clustered by source.

        Parameters
        ----------
        vcov : {"CR2", "CR1"}
            clubSandwich's CR2 with Satterthwaite df, or metafor's sandwich with
            ``n - 1`` df (times n / (n - 1) when ``adjust``).
        adjust : bool
            Small-sample factor for ``vcov="CR1"``; ignored for CR2.

        Returns
        -------
        RobustResult

        Raises
        ------
        EvidenceError
            With fewer than 2 sources.

        Notes
        -----
        As :func:`robust_pool` with ``site`` given, without fitting the model again.
        """
        return _nested_robust(self, vcov, adjust, "NestedResult.robust")


@dataclass(frozen=True)
class RobustResult:
    """Result of :func:`robust_pool`: a pooled estimate with a cluster-robust SE.

    ``statistic`` is a t statistic with ``df`` degrees of freedom: ``n_clusters - 1`` for
    ``vcov="CR1"``, Satterthwaite's (a float) for ``"CR2"``. ``working`` names the working
    model (``"RE"`` or ``"source/site/effect"``); ``tau2`` is its heterogeneity variance
    (for the nested model the sum of ``sigma2``, which lists source, site, effect).
    """

    k: int
    n_clusters: int
    estimate: float
    se: float
    statistic: float
    df: float
    pvalue: float
    ci_low: float
    ci_high: float
    tau2: float
    method: str
    adjust: bool
    alpha: float
    vcov: str = "CR1"
    working: str = "RE"
    sigma2: tuple = ()

    def to_frame(self):
        """One-row DataFrame of all fields (``sigma2`` as a tuple)."""
        return pd.DataFrame([{name: getattr(self, name) for name in self.__dataclass_fields__}])


# ---------------------------------------------------------------- input


def as_clusters(cluster, k, name="cluster"):
    """Integer codes 0..n-1 for the labels of ``name`` and the number of labels n."""
    labels = pd.Series(list(cluster) if not hasattr(cluster, "__len__") else cluster)
    if len(labels) != k:
        raise EvidenceError(
            f"inputs must have the same length, but yi has {k} and {name} has {len(labels)}; "
            f"pass one {name} label per effect."
        )
    if isinstance(labels.dtype, np.dtype) and labels.dtype.kind in "iu":
        # numpy integers cannot be missing (pandas' nullable Int64 can): no hashing needed
        return _dense_codes(labels.to_numpy())
    codes, uniques = pd.factorize(labels, use_na_sentinel=True)
    if (codes < 0).any():
        i = int(np.flatnonzero(codes < 0)[0])
        value = labels.iloc[i]
        value = value.item() if isinstance(value, np.generic) else value  # nan, not np.float64(nan)
        raise EvidenceError(
            f"{name} must not be missing; position {i} is {value!r}; give every effect a label."
        )
    return codes.astype(np.intp), len(uniques)


def _dense_codes(values):
    """Codes 0..n-1 of integers in sorted order, by a presence table when their range is
    at most a few times their number (as with codes from a database), else by hashing.

    Written to allocate one k-length array: fresh large arrays cost page faults that
    take longer than the arithmetic.
    """
    low = int(values.min())
    span = int(values.max()) - low + 1
    if span > 4 * len(values) + 1024:
        codes, uniques = pd.factorize(values)
        return codes.astype(np.intp), len(uniques)
    codes = np.subtract(values, low, dtype=np.intp)
    rank = np.zeros(span, dtype=np.intp)
    rank[codes] = 1
    np.cumsum(rank, out=rank)
    rank -= 1
    return np.take(rank, codes, out=codes), int(rank[-1]) + 1


def _check_clusters(n, k, what):
    """Raise unless there are at least 2 clusters."""
    if n < 2:
        raise EvidenceError(
            f"{what} needs at least 2 clusters; all {k} effects are in one cluster. "
            "Use pool() on the effects or add studies."
        )


# ---------------------------------------------------------------- the nested design


@dataclass(frozen=True)
class _Nested:
    """Effects in sites in sources as integer codes, with the effects centred.

    ``y`` is ``yi - shift`` (their mean) so that sums of squares expanded around the
    estimate lose no digits. ``free`` says which of (source, site, effect)
    variance components are estimated; the others stay at 0.
    """

    y: np.ndarray
    shift: float
    v: np.ndarray
    site: np.ndarray  # site code of each effect
    source: np.ndarray  # source code of each effect
    site_source: np.ndarray  # source code of each site
    n_sites: int
    n_sources: int
    free: tuple
    reml: bool

    def by_site(self, values):
        """Per-site sums of per-effect values."""
        return np.bincount(self.site, weights=values, minlength=self.n_sites)

    def by_source(self, values):
        """Per-source sums of per-site values."""
        return np.bincount(self.site_source, weights=values, minlength=self.n_sources)

    @property
    def scale(self):
        """A variance of the size of the data, for relative tolerances."""
        return max(float(np.var(self.y)), float(np.mean(self.v)))


def _nested_data(y, v, source, n_sources, site, free, reml):
    """Build :class:`_Nested` from source codes and within-source site labels (codes)."""
    key = np.multiply(source, int(site.max()) + 1, dtype=np.int64)
    key += site  # a site is read within its source
    site_codes, n_sites = _dense_codes(key)
    site_source = np.empty(n_sites, dtype=np.intp)
    site_source[site_codes] = source  # every effect of a site has the site's source
    shift = float(np.mean(y))
    return _Nested(y - shift, shift, v, site_codes, source, site_source, n_sites, n_sources,
                   tuple(free), reml)


def estimable_levels(n_sources, n_sites, k):
    """Which of (source, site, effect) variance components the design identifies.

    A level with a single unit has no between-unit variance to estimate (metafor fixes
    such a component at 0). A level whose units each hold exactly one unit of the next
    outer level (every source one site, every site one effect) duplicates that level: the
    two components add up in every covariance, so only their sum is identified, and it is
    reported at the outer level.
    """
    counts = (n_sources, n_sites, k)
    return tuple(n > 1 and (j == 0 or n != counts[j - 1]) for j, n in enumerate(counts))


def _notes(n_sources, n_sites, k, estimable):
    """One sentence per variance component fixed at 0."""
    counts = (n_sources, n_sites, k)
    notes = []
    for j, level in enumerate(LEVELS):
        if estimable[j]:
            continue
        if counts[j] == 1:
            notes.append(f"sigma2_{level} fixed at 0: there is only one {level}.")
        else:
            outer = LEVELS[j - 1]
            notes.append(
                f"sigma2_{level} fixed at 0: every {outer} has one {level}, so the two "
                f"components are confounded and their sum is reported as sigma2_{outer} "
                "(metafor splits it equally between them)."
            )
    return tuple(notes)


# ---------------------------------------------------------------- likelihood
# Sums of products go through np.einsum, which reduces without building the product
# array: with k = 10^5 every large temporary costs fresh pages from the kernel, several
# times the arithmetic itself. Per-effect arrays live in one work buffer for the same reason.

_SPEC = {2: "i,i->", 3: "i,i,i->", 4: "i,i,i,i->"}


def _dot(*arrays):
    """sum(arrays[0] * arrays[1] * ...) without temporaries (einsum's own loop, no BLAS)."""
    return float(np.einsum(_SPEC[len(arrays)], *arrays))


@dataclass
class _Eval:
    """The (restricted) log-likelihood at sigma2 = (s1, s2, s3) and what follows from it."""

    loglik: float
    mu: float  # GLS estimate (centred)
    info: float  # 1'V^-1 1
    grad: np.ndarray = None
    hess: np.ndarray = None  # observed second derivatives
    fisher: np.ndarray = None  # expected information


def _moments(data, s3, order, work):
    """sum log(v + s3) and per-site sums of a^p y^j (p = 1..order + 1, j = 0..2), a = 1/(v + s3),
    ordered p-major: S, sum a y, sum a y^2, sum a^2, ... ``work`` is a (4, k) buffer."""
    a, ay, ay2, tmp = work
    np.add(data.v, s3, out=a)
    logsum = float(np.sum(np.log(a, out=tmp)))
    np.reciprocal(a, out=a)
    np.multiply(a, data.y, out=ay)
    np.multiply(ay, data.y, out=ay2)
    sums = [data.by_site(a), data.by_site(ay), data.by_site(ay2)]
    if order >= 1:
        powers = [sums]
        for _ in range(order):
            row = []
            for base in (a, ay, ay2):  # a^p y^j = a^(p - 1) (a y^j): tmp walks up the powers
                np.multiply(base, a, out=tmp)
                for _ in range(len(powers) - 1):
                    np.multiply(tmp, a, out=tmp)
                row.append(data.by_site(tmp))
            powers.append(row)
        sums = [x for row in powers for x in row]
    return logsum, sums


def _evaluate(data, sigma2, order=2, work=None):
    """Log-likelihood (order 0), its gradient (1) and Hessian (2) in O(k).

    Notation: a = 1/(v + s3) per effect; per site S = sum a, c = 1/(1 + s2 S), q = c S;
    per source R = sum q, g = 1/(1 + s1 R). Then V^-1 1 = a c g, 1'V^-1 1 = sum g R,
    log det V = sum log(v + s3) + sum log(1 + s2 S) + sum log(1 + s1 R), and every trace
    tr(P G_a P G_b) and quadratic form y'P G_a P G_b P y (G_1 = source indicator
    products, G_2 = site ones, G_3 = I) is a sum of per-site and per-source terms.
    """
    s1, s2, s3 = sigma2
    if work is None:
        work = np.empty((4, len(data.y)))
    logsum, m = _moments(data, s3, order, work)
    S, Y1, Q1 = m[:3]
    ss = data.site_source
    c = 1 / (1 + s2 * S)
    q = c * S
    R = data.by_source(q)
    g = 1 / (1 + s1 * R)
    gt, gr = g[ss], g * R
    info = float(np.sum(gr))
    mu = _dot(g, data.by_source(c * Y1)) / info
    rho = Y1 - mu * S  # per-site sums of a r, r = y - mu
    sig = data.by_source(c * rho)
    sig_t = sig[ss]
    kap = c * (s2 * rho + s1 * gt * sig_t)  # V^-1 r = a (r - kap) on each site
    r_vinv_r = np.sum(Q1) - 2 * mu * np.sum(Y1) + mu**2 * np.sum(S) - _dot(kap, rho)
    logdet = logsum + float(np.sum(np.log1p(s2 * S)) + np.sum(np.log1p(s1 * R)))
    k = len(data.y)
    if data.reml:  # metafor's REML log-likelihood includes + log det(X'X) / 2 = log(k) / 2
        ll = -0.5 * ((k - 1) * np.log(2 * np.pi) + logdet + np.log(info) + r_vinv_r)
        ll += 0.5 * np.log(k)
    else:
        ll = -0.5 * (k * np.log(2 * np.pi) + logdet + r_vinv_r)
    out = _Eval(float(ll), mu, info)
    if order < 1:
        return out
    A2, Y2, Q2 = m[3:6]
    mbar_s = g * sig  # per-source sums of m = V^-1 r
    mbar_t = c * rho - s1 * gt * q * sig_t  # per-site sums of m
    a2r = Y2 - mu * A2
    sum_a2r2 = np.sum(Q2) - 2 * mu * np.sum(Y2) + mu**2 * np.sum(A2)
    U_t = c * c * A2  # per-site u'u, u = a c
    U_s = data.by_source(U_t)
    traces = np.array([info, np.sum(q) - s1 * _dot(gt, q, q),
                       np.sum(S) - s2 * _dot(c, A2) - s1 * _dot(g, U_s)])
    e = np.array([_dot(gr, gr), _dot(gt, gt, q, q), _dot(g, g, U_s)])  # x'G_a x, x = V^-1 1
    if data.reml:
        traces = traces - e / info
    quad = np.array([_dot(mbar_s, mbar_s), _dot(mbar_t, mbar_t),
                     sum_a2r2 - 2 * _dot(kap, a2r) + _dot(kap, kap, A2)])
    out.grad = 0.5 * (quad - traces)
    if order < 2:
        return out
    A3, Y3, Q3 = m[6:9]
    out.fisher = 0.5 * _trace_terms(data, s1, s2, c, q, g, gt, R, A2, A3, U_t, U_s, info, e)
    nu_t = c * (a2r - kap * A2)  # per-site u'm
    nu_s = data.by_source(nu_t)
    p_s = data.by_source(q * mbar_t)
    xz = np.array([_dot(gr, mbar_s), _dot(gt, q, mbar_t), _dot(g, nu_s)])
    a3r = Y3 - mu * A3
    sum_a3r2 = np.sum(Q3) - 2 * mu * np.sum(Y3) + mu**2 * np.sum(A3)
    z = np.empty((3, 3))  # z_a' V^-1 z_b for z_a = G_a V^-1 r
    z[0, 0] = _dot(mbar_s, mbar_s, gr)
    z[0, 1] = _dot(mbar_s, g, p_s)
    z[1, 1] = _dot(q, mbar_t, mbar_t) - s1 * _dot(g, p_s, p_s)
    z[0, 2] = _dot(mbar_s, g, nu_s)
    z[1, 2] = _dot(mbar_t, nu_t) - s1 * _dot(mbar_t, gt, q, nu_s[ss])
    z[2, 2] = (sum_a3r2 - 2 * _dot(kap, a3r) + _dot(kap, kap, A3) - s2 * _dot(nu_t, nu_t, 1 / c)
               - s1 * _dot(g, nu_s, nu_s))
    z[1, 0], z[2, 0], z[2, 1] = z[0, 1], z[0, 2], z[1, 2]
    out.hess = out.fisher - (z - np.outer(xz, xz) / info)
    return out


def _trace_terms(data, s1, s2, c, q, g, gt, R, A2, A3, U_t, U_s, info, e):
    """tr(P G_a P G_b) for a, b in (source, site, effect); P -> V^-1 for ML."""
    ss = data.site_source
    qq, qqq = data.by_source(q * q), data.by_source(q**3)
    w3 = data.by_source(c * c * (A3 - s2 * c * A2**2))  # per-source u'W u
    gr, s1g = g * R, s1 * g
    t = np.empty((3, 3))
    t[0, 0] = _dot(gr, gr)
    t[0, 1] = _dot(gt, gt, q, q)
    t[1, 1] = np.sum(qq) - 2 * _dot(s1g, qqq) + _dot(s1g, s1g, qq, qq)
    t[0, 2] = _dot(g, g, U_s)
    s1gq = s1 * gt * q
    t[1, 2] = np.sum(U_t) - 2 * _dot(U_t, s1gq) + _dot(s1gq, s1gq, U_s[ss])
    t[2, 2] = (np.sum(A2) - 2 * s2 * _dot(c, A3) + s2**2 * _dot(c, c, A2, A2)
               - 2 * _dot(s1g, w3) + _dot(s1g, s1g, U_s, U_s))
    if data.reml:  # tr(PAPB) = tr(MAMB) - 2 x'AMBx / info + x'Ax x'Bx / info^2
        cc = np.empty((3, 3))
        g3r = gr * g * g
        cc[0, 0] = _dot(gr, gr, gr)
        cc[0, 1] = _dot(g3r, qq)
        cc[0, 2] = _dot(g3r, U_s)
        cc[1, 1] = _dot(g, g, qqq) - _dot(g, g, s1g, qq * qq)
        cc[1, 2] = _dot(g, g, data.by_source(q * U_t)) - _dot(g, g, s1g, qq * U_s)
        cc[2, 2] = _dot(g, g, w3) - _dot(g, g, s1g, U_s * U_s)
        t = t - 2 * cc / info + np.outer(e, e) / info**2
    iu = np.triu_indices(3, 1)
    t[iu[1], iu[0]] = t[iu]
    return t


# ---------------------------------------------------------------- maximisation


def _start(data):
    """Start values: the DerSimonian-Laird tau^2 of all effects, shared by the free levels."""
    free = np.array(data.free)
    w = 1 / data.v
    k = len(data.y)
    q = float(np.sum(w * (data.y - np.sum(w * data.y) / np.sum(w)) ** 2))
    denom = float(np.sum(w) - np.sum(w**2) / np.sum(w))
    tau2 = max((q - (k - 1)) / denom if denom > 0 else 0.0, 0.0)
    total = max(tau2, 0.01 * float(np.mean(data.v)))
    return np.where(free, total / max(int(free.sum()), 1), 0.0)


def _direction(ev, act, newton):
    """Newton step on the active components if the Hessian there is negative definite,
    else a Fisher-scoring step (else a step scaled by the information's diagonal).

    Returns the step and whether it is a Newton step.
    """
    g = ev.grad[act]
    ix = np.ix_(act, act)
    for curvature, is_newton in ((-ev.hess[ix], True), (ev.fisher[ix], False)):
        if is_newton and not newton:
            continue
        try:
            chol = np.linalg.cholesky(curvature)
        except np.linalg.LinAlgError:
            continue
        return np.linalg.solve(chol.T, np.linalg.solve(chol, g)), is_newton
    diag = np.diag(ev.fisher[ix])
    return g / np.where(diag > 0, diag, 1.0), False


def fit_sigma2(data, evaluate=None, start=None):
    """Maximise the (restricted) log-likelihood over the free variance components >= 0.

    Projected Newton-Raphson with the exact Hessian (a Fisher-scoring step first, and
    wherever the Hessian is not negative definite), halving steps until the likelihood does
    not fall. A component at 0 whose gradient points below 0 is held there. Once a full
    Newton step moves every component by less than POLISH relative (so the error left is
    about POLISH^2, convergence being quadratic), the new point gets only its gradient
    and one last step with the Hessian of the point before (a chord step, its error
    about POLISH^2 times the Hessian's change, POLISH) ends the iterations.

    ``evaluate(data, sigma2, order, work)`` returns the log-likelihood with, for order 1
    and 2, its gradient and (order 2) Hessian and expected information; the default is
    the intercept-only model's :func:`_evaluate` (:mod:`evidence.moderators` passes its
    meta-regression one). ``start`` overrides the start values of :func:`_start`.

    Returns
    -------
    sigma2 : ndarray of shape (3,)
    ev : _Eval
        The log-likelihood and GLS estimate at ``sigma2`` (what ``evaluate`` returns).
    """
    evaluate = _evaluate if evaluate is None else evaluate
    free = np.array(data.free)
    sigma2 = _start(data) if start is None else np.where(free, start, 0.0)
    if not free.any():
        return sigma2, evaluate(data, sigma2, order=0)
    floor = FLOOR * data.scale
    work = np.empty((4, len(data.y)))
    ev = evaluate(data, sigma2, work=work)
    for it in range(MAXITER):
        act = _active(free, sigma2, ev)
        if not act.any():
            return sigma2, ev
        step, newton = _direction(ev, act, it >= FISHER_STEPS)
        lam = 1.0
        while True:
            new = _moved(sigma2, act, lam * step)
            change = np.max(np.abs(new - sigma2) / np.maximum(new, floor))
            last = newton and lam == 1.0 and change <= POLISH
            trial = evaluate(data, new, order=1 if last else 2, work=work)
            if trial.loglik >= ev.loglik - 1e-13 * abs(ev.loglik):
                break
            lam /= 2
            if lam < 1e-12:  # no step uphill: at the maximum to rounding
                return sigma2, ev
        if last:
            return _chord(data, new, trial, ev, free, evaluate)
        sigma2, ev = new, trial
        if change <= POLISH**4:  # a step this small: nothing left to gain
            return sigma2, ev
    raise ConvergenceError(
        f"multilevel model: the likelihood did not converge in {MAXITER} Newton steps; "
        "check for extreme sampling variances or try method='ML'."
    )


def _active(free, sigma2, ev):
    """Free components, less those at 0 whose gradient points below 0."""
    return free & ~((sigma2 <= 0) & (ev.grad <= 0))


def _moved(sigma2, act, step):
    """sigma2 moved by ``step`` on the active components, projected onto sigma2 >= 0."""
    new = sigma2.copy()
    new[act] = np.maximum(sigma2[act] + step, 0.0)
    return new


def _chord(data, sigma2, ev, before, free, evaluate=_evaluate):
    """The last step: the gradient at ``sigma2`` with the Hessian of the point ``before``;
    kept if the likelihood does not fall."""
    ev.hess, ev.fisher = before.hess, before.fisher
    act = _active(free, sigma2, ev)
    if act.any():
        step, newton = _direction(ev, act, True)
        if newton:
            new = _moved(sigma2, act, step)
            final = evaluate(data, new, order=0)
            if final.loglik >= ev.loglik - 1e-13 * abs(ev.loglik):
                return new, final
    return sigma2, ev


# ---------------------------------------------------------------- fitted model


@dataclass(frozen=True)
class _Model:
    """A fitted nested model: the design, sigma2 and the GLS estimate."""

    data: _Nested
    sigma2: np.ndarray
    mu: float  # centred estimate
    info: float

    @property
    def estimate(self):
        return self.mu + self.data.shift

    def residuals(self):
        return self.data.y - self.mu

    def working(self):
        """The fitted covariance as a working model clustered by source."""
        d = self.data
        s1, s2, s3 = self.sigma2
        return WorkingModel(d.v + s3, float(s1), float(s2), d.site, d.site_source, d.n_sources)


# ---------------------------------------------------------------- public API


def _test_crit(test, alpha, df):
    """Two-sided critical value and p-value function for a z or t test."""
    if test == "t":
        return float(_dist.t_isf(alpha / 2, df)), lambda stat: float(2 * _dist.t_sf(abs(stat), df))
    return float(_dist.norm_isf(alpha / 2)), lambda stat: float(2 * _dist.norm_sf(abs(stat)))


def _cochran_q(y, v):
    """Cochran's Q with fixed-effect weights 1 / v."""
    w = 1 / v
    return float(np.sum(w * (y - np.sum(w * y) / w.sum()) ** 2))


def _fit(data):
    """Fit the nested model: sigma2, then the GLS estimate at it."""
    sigma2, ev = fit_sigma2(data)
    if np.any((sigma2 > 0) & (sigma2 <= ZERO)):
        sigma2 = np.where(sigma2 <= ZERO, 0.0, sigma2)
        ev = _evaluate(data, sigma2, order=0)
    return _Model(data, sigma2, ev.mu, ev.info), ev.loglik


def _summary(model, loglik, y, v, test, alpha):
    """Estimate, tests, intervals and Q shared by the two- and three-level results."""
    k = len(y)
    mu = model.estimate
    se = 1 / np.sqrt(model.info)
    stat = mu / se
    crit, pvalue = _test_crit(test, alpha, k - 1)
    q = _cochran_q(y, v)
    half_pi = crit * np.sqrt(se**2 + float(np.sum(model.sigma2)))
    return dict(
        k=k, estimate=mu, se=float(se), statistic=float(stat), pvalue=pvalue(stat),
        ci_low=mu - crit * se, ci_high=mu + crit * se, pi_low=float(mu - half_pi),
        pi_high=float(mu + half_pi), q=q, q_df=k - 1, q_pvalue=float(_dist.chi2_sf(q, k - 1)),
        loglik=loglik, method="REML" if model.data.reml else "ML", test=test, alpha=alpha,
    )


def _common_args(yi, vi, method, test, alpha):
    y, v = _checks.as_effects(yi, vi)
    method = _checks.check_choice(method, ML_METHODS, "method")
    test = _checks.check_choice(test, ML_TESTS, "test")
    return y, v, method, test, _checks.check_alpha(alpha)


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
        (then the two components are not identifiable; use :func:`evidence.pool` or
        :func:`pool_nested`, which report such designs instead of refusing them).
    ConvergenceError
        If the likelihood cannot be maximised.

    Notes
    -----
    The model is metafor 3.8-1 ``rma.mv(yi, vi, random = ~ 1 | cluster/effect)`` with one
    ``effect`` level per row: y = mu + u_cluster + e_effect + sampling error, with
    variances ``sigma2 = (sb, sw)``; it is :func:`pool_nested` with one source and the
    clusters as its sites, so the fit is the same O(k) projected Newton iteration. metafor
    maximises on the log scale with nlminb and sets components below 10 machine epsilon
    to 0; on a boundary it stops near (not at) 0, while this function returns exactly 0.
    ``loglik`` includes metafor's REML constant log(k) / 2. ``q`` is Cochran's Q with
    weights 1 / vi and k - 1 df. The prediction interval is estimate +/- crit
    sqrt(se^2 + sb + sw), as ``predict.rma``.

    References
    ----------
    Konstantopoulos, S. (2011). Fixed effects and variance components estimation in
    three-level meta-analysis. Research Synthesis Methods, 2, 61-76.
    Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
    Journal of Statistical Software, 36(3), 1-48.
    """
    y, v, method, test, alpha = _common_args(yi, vi, method, test, alpha)
    codes, n = as_clusters(cluster, len(y))
    _check_clusters(n, len(y), "pool_multilevel")
    if n == len(y):
        raise EvidenceError(
            "pool_multilevel needs a cluster with 2 or more effects; every cluster has one, "
            "so between- and within-cluster variance are not identifiable. Use pool()."
        )
    data = _nested_data(y, v, np.zeros(len(y), dtype=np.intp), 1, codes, (False, True, True),
                        method == "REML")
    model, loglik = _fit(data)
    out = _summary(model, loglik, y, v, test, alpha)
    return MultilevelResult(n_clusters=n, sigma2=(float(model.sigma2[1]), float(model.sigma2[2])),
                            **out)


def pool_nested(yi, vi, source, site, *, method="REML", test="z", alpha=0.05):
    """Pool effects within sites within sources: sampling error plus three variance components.

    Parameters
    ----------
    yi : array-like of shape (k,)
        Observed effect sizes.
    vi : array-like of shape (k,)
        Their sampling variances, all > 0.
    source : array-like of shape (k,)
        Source (paper, database study) label of each effect; any hashable values.
    site : array-like of shape (k,)
        Site (study record) label of each effect, read within its source: the same site
        label in two sources names two sites (as R's ``source/site``).
    method : {"REML", "ML"}
        Restricted or full maximum likelihood.
    test : {"z", "t"}
        Normal-theory z test, or t test with ``k - 1`` df (metafor's ``test = "t"``).
    alpha : float
        1 - confidence level.

    Returns
    -------
    NestedResult
        ``sigma2`` = (between sources, between sites within a source, between effects
        within a site); ``estimable`` flags and ``notes`` say which the design identifies.

    Raises
    ------
    EvidenceError
        On malformed input or missing labels.
    ConvergenceError
        If the likelihood cannot be maximised.

    Notes
    -----
    The model is metafor 3.8-1 ``rma.mv(yi, vi, random = ~ 1 | source/site/effect)`` with
    one ``effect`` per row: y = mu + u_source + u_site + u_effect + sampling error. Each
    source's marginal covariance is diag(v + s3) + s2 (one block of ones per site) + s1
    (a block of ones), inverted by Woodbury's identity per site and then per source, so the
    likelihood, its gradient and its exact Hessian cost O(k) time and memory (10^5 effects
    fit in tens of milliseconds). The components maximise the (restricted) likelihood
    over sigma2 >= 0 by projected Newton-Raphson (see :func:`fit_sigma2`), to a relative
    change below 1e-10 in the last full step.

    Degenerate designs are fitted, not refused: a level with a single unit (one source,
    or one site in all) has its component fixed at 0, as metafor does for single-level
    factors. A level whose units each hold one unit of the next level (every source has
    one site, or every site one effect) is confounded with it: only the sum of the two
    components is identified, and metafor, started symmetrically, splits it equally. Here
    the inner component is fixed at 0 and the sum reported at the outer level; estimate,
    SE, log-likelihood and prediction interval are unchanged. With every effect in its own
    source the model is :func:`evidence.pool` with REML or ML.

    References
    ----------
    Konstantopoulos, S. (2011). Fixed effects and variance components estimation in
    three-level meta-analysis. Research Synthesis Methods, 2, 61-76.
    Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
    Journal of Statistical Software, 36(3), 1-48.
    """
    y, v, method, test, alpha = _common_args(yi, vi, method, test, alpha)
    source_codes, n_sources = as_clusters(source, len(y), "source")
    site_codes, _ = as_clusters(site, len(y), "site")
    if test == "t" and len(y) < 2:
        raise EvidenceError("test='t' needs at least 2 effects (k - 1 df); got k=1. Use test='z'.")
    data = _nested_data(y, v, source_codes, n_sources, site_codes, (True, True, True),
                        method == "REML")
    estimable = estimable_levels(n_sources, data.n_sites, len(y))
    data = _Nested(**{**data.__dict__, "free": estimable})
    model, loglik = _fit(data)
    out = _summary(model, loglik, y, v, test, alpha)
    return NestedResult(
        n_sites=data.n_sites, n_sources=n_sources, sigma2=tuple(float(s) for s in model.sigma2),
        estimable=estimable, notes=_notes(n_sources, data.n_sites, len(y), estimable),
        _model=model, **out,
    )


# ---------------------------------------------------------------- robust


def _robust_result(wmodel, estimate, resid, vcov, adjust, alpha, **fields):
    """CR1 or CR2 inference for the intercept of a fitted working model."""
    var, df = robust_variance(wmodel, resid, vcov, adjust)
    se = float(np.sqrt(var))
    stat = z_ratio(estimate, se)
    crit, pvalue = _test_crit("t", alpha, df)
    return RobustResult(
        k=len(resid), n_clusters=wmodel.n_clusters, estimate=estimate, se=se, statistic=stat,
        df=df, pvalue=pvalue(stat), ci_low=estimate - crit * se, ci_high=estimate + crit * se,
        adjust=bool(adjust) and vcov == "CR1", alpha=alpha, vcov=vcov, **fields,
    )


def _nested_robust(res, vcov, adjust, what):
    """CR1 or CR2 inference for a :class:`NestedResult`, clustered by source."""
    vcov = _checks.check_choice(vcov, ROBUST_VCOV, "vcov")
    model = res._model
    _check_clusters(res.n_sources, res.k, what)
    return _robust_result(model.working(), model.estimate, model.residuals(), vcov, adjust,
                          res.alpha, tau2=float(sum(res.sigma2)), method=res.method,
                          working="source/site/effect", sigma2=res.sigma2)


def robust_pool(yi, vi, cluster, method="REML", adjust=True, alpha=0.05, *, vcov="CR1",
                site=None):
    """Pooled estimate with a cluster-robust (sandwich) standard error.

    Parameters
    ----------
    yi : array-like of shape (k,)
        Observed effect sizes.
    vi : array-like of shape (k,)
        Their sampling variances, all > 0.
    cluster : array-like of shape (k,)
        Cluster label of each effect; effects in different clusters are assumed independent.
    method : str
        Estimator of the working model's variance components: any of :func:`evidence.pool`'s
        (``"FE"`` for a fixed-effect model) without ``site``, ``"REML"`` or ``"ML"`` with it.
    adjust : bool
        For ``vcov="CR1"``: multiply the sandwich variance by n / (n - 1), n the number of
        clusters. Ignored (reported False) for CR2, which has its own adjustment.
    alpha : float
        1 - confidence level.
    vcov : {"CR1", "CR2"}
        metafor's sandwich with n - 1 df, or clubSandwich's bias-reduced CR2 estimator
        with Satterthwaite degrees of freedom.
    site : array-like of shape (k,), optional
        Site labels within clusters. Given, the working model is :func:`pool_nested` with
        the clusters as sources (``rma.mv(yi, vi, random = ~ 1 | cluster/site/effect)``);
        ``site=np.arange(k)`` gives the two-level model of :func:`pool_multilevel`.
        Without it the working model is :func:`evidence.pool` (``rma(yi, vi)``).

    Returns
    -------
    RobustResult

    Raises
    ------
    EvidenceError
        On malformed input or fewer than 2 clusters.

    Notes
    -----
    With ``vcov="CR1"`` this is metafor 3.8-1 ``robust(fit, cluster, adjust = adjust)``
    without clubSandwich: with x = V^-1 1 the working model's GLS weights and e the
    residuals, Var = sum_j (sum_{i in j} x_i e_i)^2 / (sum x)^2, times n / (n - 1) when
    ``adjust``; tests and intervals use the t distribution with n - 1 df.

    With ``vcov="CR2"`` it is ``robust(fit, cluster, clubSandwich = TRUE)``, that is
    clubSandwich 0.5.8's ``coef_test(fit, vcov = "CR2", cluster = cluster, test =
    "Satterthwaite")`` and ``conf_int``: each cluster's residuals are multiplied by the
    adjustment A_j = T_j' G_j^(-1/2) T_j, T_j the Cholesky factor of the working model's
    covariance V_j, G_j = T_j (V_j - 1 1' / sum x) T_j', and the degrees of freedom are
    Satterthwaite's for the CR2 variance under the working model. Only the scalars
    1'V_j^-1 A_j 1 and 1'V_j^-1 A_j e_j are needed; :func:`evidence.robust.cr2_terms`
    computes them in O(k) per quadrature node without forming any n_j x n_j matrix.
    clubSandwich sets eigenvalues of G_j below 1e-12 to zero (with the nested working
    model G_j has the units of a variance squared, so this bites only when v + s3 is below
    about 1e-6); the inverse square root here is exact.

    References
    ----------
    Hedges, L. V., Tipton, E., & Johnson, M. C. (2010). Robust variance estimation in
    meta-regression with dependent effect size estimates. Research Synthesis Methods, 1,
    39-65.
    Pustejovsky, J. E., & Tipton, E. (2018). Small-sample methods for cluster-robust
    variance estimation and hypothesis testing in fixed effects models. Journal of
    Business & Economic Statistics, 36(4), 672-683.
    Tipton, E. (2015). Small sample adjustments for robust variance estimation with
    meta-regression. Psychological Methods, 20(3), 375-393.
    """
    alpha = _checks.check_alpha(alpha)
    vcov = _checks.check_choice(vcov, ROBUST_VCOV, "vcov")
    if site is not None:
        res = pool_nested(yi, vi, cluster, site, method=method, alpha=alpha)
        return _nested_robust(res, vcov, adjust, "robust_pool")
    fit = pool(yi, vi, method=method, alpha=alpha)
    y, v = _checks.as_effects(yi, vi)
    codes, n = as_clusters(cluster, len(y))
    _check_clusters(n, len(y), "robust_pool")
    wmodel = WorkingModel(v + fit.tau2, 0.0, 0.0, codes, np.arange(n), n)
    return _robust_result(wmodel, fit.estimate, y - fit.estimate, vcov, adjust, alpha,
                          tau2=fit.tau2, method=fit.method, working="RE", sigma2=(fit.tau2,))
