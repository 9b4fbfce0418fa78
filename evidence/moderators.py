"""Moderators of effects nested in sites in sources: meta-regression and its report.

``meta_regression_nested`` is metafor's ``rma.mv(yi, vi, mods = ~ ..., random = ~ 1 |
source/site/effect)``: the nested model of :func:`evidence.pool_nested` with moderators.
``moderator_analysis`` fits one moderator (warming in degrees C, duration, sampled depth,
biome, ...) from a table of effects, with the nested or the independent model, and reports
the slope (also as percent change per unit for log response ratios), QM, R^2 and a fitted
line with its confidence band for a bubble plot.

The fit costs O(k p^2) time and O(k p) memory: every quantity the likelihood, its gradient
and its exact Hessian need is a bilinear form b1'V^-1 b2 of a few k-vectors (the columns of
X, y and V^-1 applied to them), and each such form is a sum over effects, sites and sources
by Woodbury's identity per site and then per source, as in :mod:`evidence.multilevel`.
No k x k matrix is formed.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import _checks, _dist
from ._fit import Design, fixed_effect_fit
from .errors import EvidenceError
from .multilevel import (
    LEVELS,
    ZERO,
    _common_args,
    _dense_codes,
    _nested_data,
    _notes,
    _test_crit,
    _trace_terms,
    as_clusters,
    estimable_levels,
    fit_sigma2,
    pool_nested,
)
from .regression import _as_frame, _column_coding, _encode, meta_regression

MODELS = ("multilevel", "independent")
RATIO_MEASURES = frozenset({"ROM", "ROM_BC"})  # log response ratios, as evidence.synthesis
UNITS = {"warming_c": "°C", "duration_years": "year", "depth_mid_cm": "cm"}
CONSTANT_RTOL = 1e-10  # a moderator whose SD is below this times its largest |value| is constant
COLLINEAR_TOL = 1e-7  # smallest eigenvalue of the moderators' correlation matrix (metafor's evtol)
LOG_2PI = float(np.log(2 * np.pi))


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class NestedRegressionResult:
    """Result of :func:`meta_regression_nested`.

    ``coefficients`` is indexed by term (``"intrcpt"``, a numeric moderator's name,
    ``"name[level]"`` for a dummy) with columns estimate, se, statistic, pvalue, ci_low,
    ci_high. ``qm`` tests every coefficient but the intercept: chi-square with ``qm_df``
    df (test "z") or F with (``qm_df``, ``qm_ddf``) df (test "t", ``qm_ddf = k - p``, as
    metafor). ``qe`` is the test of residual heterogeneity (weights 1 / vi, ``k - p`` df).
    ``sigma2``, ``estimable`` and ``notes`` are as in :class:`evidence.NestedResult`;
    ``sigma2_null`` are the components of the intercept-only nested model of the same
    effects and ``r2`` (percent) the pseudo-R^2 from the two. ``k`` effects were fitted;
    ``k_dropped`` effects lacked a moderator value, which left ``sites_dropped`` sites and
    ``sources_dropped`` sources without any effect. ``used`` marks the fitted input rows.
    """

    coefficients: pd.DataFrame
    qm: float
    qm_df: int
    qm_ddf: float
    qm_pvalue: float
    qe: float
    qe_df: int
    qe_pvalue: float
    sigma2: tuple
    estimable: tuple
    sigma2_null: tuple
    r2: float
    loglik: float
    k: int
    p: int
    n_sites: int
    n_sources: int
    k_dropped: int
    sites_dropped: int
    sources_dropped: int
    method: str
    test: str
    alpha: float
    notes: tuple = ()
    used: np.ndarray = field(default=None, repr=False, compare=False)
    _model: object = field(default=None, repr=False, compare=False)

    def predict(self, new_moderators):
        """Predicted effects for new moderator values, coded as in the fit.

        Parameters
        ----------
        new_moderators : pandas.DataFrame, pandas.Series or dict
            Same columns as the fitted moderators, no missing values.

        Returns
        -------
        pandas.DataFrame
            Columns pred, se, ci_low, ci_high, pi_low, pi_high, as metafor's
            ``predict(fit, newmods)``: the prediction interval uses se^2 plus the sum of
            ``sigma2`` and the test's quantile (z, or t with k - p df).
        """
        return self._model.predict(new_moderators)

    def weights(self):
        """Each fitted effect's weight in percent, as metafor's ``weights(fit)`` for an
        ``rma.mv`` fit: 100 diag(W) / sum(diag(W)), W = V^-1 the inverse of the fitted
        marginal covariance (the bubble sizes of metafor's ``regplot``, which draws them
        with area in proportion to the weight)."""
        return self._model.weights.copy()

    def to_frame(self):
        """The coefficient table with the term as a column."""
        return self.coefficients.rename_axis("term").reset_index()


@dataclass(frozen=True)
class _Fitted:
    """What predictions need: the coding, the standardisation and the fit in its basis."""

    coding: tuple
    centre: np.ndarray  # column means of X (0 for the intercept)
    scale: np.ndarray  # column SDs of X (1 for the intercept)
    beta: np.ndarray  # coefficients in the standardised basis, y not centred
    cov: np.ndarray  # their covariance
    total_sigma2: float
    crit: float
    weights: np.ndarray

    def predict(self, new_moderators):
        frame = _as_frame(new_moderators, None)
        absent = [col.name for col in self.coding if col.name not in frame.columns]
        if absent:
            raise EvidenceError(f"new_moderators lacks column(s) {absent}; pass every moderator.")
        x = (_encode(frame, self.coding) - self.centre) / self.scale
        pred = np.einsum("ij,j->i", x, self.beta)  # einsum: no BLAS threads for a few rows
        se = np.sqrt(np.maximum(np.einsum("ij,jl,il->i", x, self.cov, x), 0.0))
        half_pi = self.crit * np.sqrt(se**2 + self.total_sigma2)
        return pd.DataFrame({"pred": pred, "se": se, "ci_low": pred - self.crit * se,
                             "ci_high": pred + self.crit * se, "pi_low": pred - half_pi,
                             "pi_high": pred + half_pi})


# ---------------------------------------------------------------- moderators in, rows out


def _missing(frame):
    """Rows lacking a value of any moderator (None, NaN, NA or a blank string)."""
    out = np.zeros(len(frame), dtype=bool)
    for name in frame.columns:
        values = frame[name]
        out |= values.isna().to_numpy(bool)
        if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
            blank = values.astype("string").str.strip() == ""  # numbers become text too
            out |= blank.fillna(False).to_numpy(bool)
    return out


def _check_some_values(frame, missing):
    """Raise if no row has every moderator value, naming the moderators to blame."""
    if not missing.all():
        return
    empty = [str(name) for name in frame.columns if _missing(frame[[name]]).all()]
    which = empty or [str(name) for name in frame.columns]
    raise EvidenceError(
        f"moderator(s) {which} have no value in any of the {len(frame)} effects (or no effect "
        "has all moderators); nothing to regress on: drop the moderator or add values."
    )


def _model_matrix(frame):
    """Treatment-coded model matrix (intercept first), its terms and coding; the coding
    refuses a single-level factor."""
    frame = frame.reset_index(drop=True).infer_objects()  # object columns of numbers -> float
    coding = tuple(_column_coding(name, frame[name]) for name in frame.columns)
    X = _encode(frame, coding)
    terms = ["intrcpt"] + [t for col in coding for t in col.terms]
    return X, terms, coding


def _standardise(X, coding):
    """The model matrix as standardised rows Z (p, k): the intercept, then each column
    centred and scaled by its mean and SD; with those means (0 for the intercept) and SDs
    (1). Raise on a constant numeric moderator."""
    Z = np.ascontiguousarray(X.T)  # one row per column: contiguous sums over the effects
    centre = Z.mean(axis=1)
    scale = Z.std(axis=1)
    centre[0], scale[0] = 0.0, 1.0
    j = 1
    for col in coding:
        width = 1 if col.levels is None else len(col.levels) - 1
        if col.levels is None and scale[j] <= CONSTANT_RTOL * np.max(np.abs(Z[j])):
            raise EvidenceError(
                f"moderator '{col.name}' is constant ({Z[j, 0]:g} in all {Z.shape[1]} "
                "effects with a value); its slope is not identifiable: drop it or add "
                "effects with other values."
            )
        j += width
    Z -= centre[:, None]
    Z /= scale[:, None]
    return Z, centre, scale


def _check_collinear(Z, terms):
    """Raise if the standardised moderator rows ``Z`` (no intercept) are collinear,
    naming the terms that make up the near-null combinations."""
    if len(Z) < 2:
        return
    corr = _gram(Z, Z) / Z.shape[1]
    values, vectors = np.linalg.eigh(corr)
    null = values <= COLLINEAR_TOL
    if not null.any():
        return
    loading = np.abs(vectors[:, null]).max(axis=1)  # every near-null combination
    involved = [terms[1 + j] for j in np.flatnonzero(loading > 0.1 * loading.max())]
    raise EvidenceError(
        f"the moderators are collinear (terms {involved}): the model matrix is not of full "
        "rank, so drop a redundant moderator."
    )


def _check_enough(k, p, k_dropped):
    """Raise unless there is at least one residual degree of freedom."""
    if k < p + 1:
        extra = f" ({k_dropped} more lacked a moderator value)" if k_dropped else ""
        raise EvidenceError(
            f"a meta-regression with {p} coefficients needs at least {p + 1} effects with "
            f"every moderator value, got k={k}{extra}; add effects or drop moderators."
        )


def _n_sites(source_codes, site_codes):
    """Number of distinct (source, site) pairs."""
    key = np.multiply(source_codes, int(site_codes.max()) + 1, dtype=np.int64) + site_codes
    return _dense_codes(key)[1]


# ---------------------------------------------------------------- the likelihood


@dataclass(frozen=True)
class _RegData:
    """The nested design with a model matrix. ``B`` holds the standardised columns of X
    then the centred effects, one per row; ``nested`` has ``reml=False`` so that
    :func:`evidence.multilevel._trace_terms` gives the traces tr(V^-1 G_a V^-1 G_b)."""

    nested: object
    B: np.ndarray  # (p + 1, k)
    p: int
    reml: bool
    logdet_xx: float  # log det(X'X) in the standardised basis: metafor's REMLf term
    site_rows: np.ndarray  # site codes of p + 1 stacked rows of effects
    source_rows: np.ndarray  # source codes of 3 (p + 1) stacked rows of sites
    work: np.ndarray  # (2, p + 1, k) buffers reused by every evaluation: fresh arrays this
    # large cost page faults that take longer than the arithmetic on them

    y = property(lambda self: self.nested.y)
    v = property(lambda self: self.nested.v)
    free = property(lambda self: self.nested.free)
    scale = property(lambda self: self.nested.scale)

    def site_sums(self, rows):
        """Per-site sums of each row of a (p + 1, k) array."""
        n = self.nested.n_sites
        m = len(rows)
        return np.bincount(self.site_rows, weights=rows.ravel(), minlength=m * n).reshape(m, n)

    def source_sums(self, rows):
        """Per-source sums of each row of an (m, n_sites) array, m <= 3 (p + 1)."""
        n = self.nested.n_sources
        m = len(rows)
        codes = self.source_rows[: m * self.nested.n_sites]
        return np.bincount(codes, weights=rows.ravel(), minlength=m * n).reshape(m, n)


def _reg_data(Z, y, v, source, n_sources, site, free, reml):
    """:class:`_RegData` from the standardised model-matrix rows ``Z`` (p, k)."""
    nested = _nested_data(y, v, source, n_sources, site, free, reml=False)
    p, k = Z.shape
    B = np.empty((p + 1, k))
    B[:p], B[p] = Z, nested.y
    logdet_xx = float(np.linalg.slogdet(_gram(Z, Z))[1])
    site_rows = (nested.site[None, :] + nested.n_sites * np.arange(p + 1)[:, None]).ravel()
    source_rows = (nested.site_source[None, :]
                   + n_sources * np.arange(3 * (p + 1))[:, None]).ravel()
    return _RegData(nested, B, p, reml, logdet_xx, site_rows, source_rows,
                    np.empty((2, p + 1, k)))


def _gram(A, B):
    """sum_i A[r, i] B[s, i] as an (r, s) array, by einsum's own loops (no BLAS: its
    threads make k-long products slow on a busy machine, see evidence._fit)."""
    return np.einsum("ri,si->rs", A, B)


def _sym_gram(A, B):
    """:func:`_gram` when the result is symmetric (A = D B with D diagonal, or A = B): the
    upper triangle only, which saves 40 % of the passes over k at five rows."""
    m = len(A)
    out = np.empty((m, m))
    for r in range(m):
        for s in range(r, m):
            out[r, s] = out[s, r] = np.einsum("i,i->", A[r], B[s])
    return out


@dataclass
class _RegEval:
    """The (restricted) log-likelihood at sigma2 and what follows from it, in the
    standardised basis: beta, H = (X'V^-1 X)^-1 and, for order 1 and 2, the gradient,
    Hessian and expected information (the fields :func:`fit_sigma2` reads)."""

    loglik: float
    beta: np.ndarray
    H: np.ndarray
    grad: np.ndarray = None
    hess: np.ndarray = None
    fisher: np.ndarray = None


def _evaluate_reg(data, sigma2, order=2, work=None):
    """Log-likelihood (order 0), gradient (1) and Hessian (2) of the nested meta-regression.

    Notation as :func:`evidence.multilevel._evaluate`: a = 1/(v + s3) per effect; per site
    S = sum a, c = 1/(1 + s2 S), q = c S; per source R = sum q, g = 1/(1 + s1 R). For any
    k-vectors b1, b2 with per-site sums T = sum a b and per-source sums U = sum c T,

        b1'V^-1 b2 = sum a b1 b2 - s2 sum_sites c T1 T2 - s1 sum_sources g U1 U2,
        V^-1 b = a (b - kappa[site]),  kappa = c (s2 T + s1 g U),

    which gives X'V^-1 X, X'V^-1 y and y'V^-1 y, then W = V^-1 X and m = V^-1 r. The REML
    gradient is (m'G_a m - tr(P G_a)) / 2 with tr(P G_a) = tr(V^-1 G_a) - tr(H W'G_a W),
    G_a the source, site and effect indicator products; the Hessian is
    tr(P G_a P G_b) / 2 - z_a'P z_b with z_a = G_a m, and every term in it is a bilinear
    form of the vectors G_a [W, m], which are constant within sources or sites for a = 1,
    2, so their forms cost O(sites) and only the effect-level ones O(k p^2).
    ``work`` is accepted for :func:`fit_sigma2` and not used.
    """
    nd, p = data.nested, data.p
    s1, s2, s3 = (float(s) for s in sigma2)
    ss = nd.site_source
    a = 1 / (nd.v + s3)
    S = nd.by_site(a)
    c = 1 / (1 + s2 * S)
    q = c * S
    R = nd.by_source(q)
    g = 1 / (1 + s1 * R)
    gt = g[ss]
    aB, F = data.work
    np.multiply(a, data.B, out=aB)
    T = data.site_sums(aB)
    U = data.source_sums(c * T)
    M = _sym_gram(aB, data.B) - s2 * _gram(c * T, T) - s1 * _gram(g * U, U)
    H = np.linalg.inv(M[:p, :p])
    beta = H @ M[:p, p]
    rvr = float(M[p, p] - M[:p, p] @ beta)
    k = len(a)
    logdet = float(-np.sum(np.log(a)) + np.sum(np.log1p(s2 * S)) + np.sum(np.log1p(s1 * R)))
    if data.reml:
        logdet_xvx = float(np.linalg.slogdet(M[:p, :p])[1])
        ll = -0.5 * ((k - p) * LOG_2PI + logdet + logdet_xvx + rvr - data.logdet_xx)
    else:
        ll = -0.5 * (k * LOG_2PI + logdet + rvr)
    out = _RegEval(float(ll), beta, H)
    if order < 1:
        return out
    kappa = c * (s2 * T + s1 * gt * U[:, ss])
    for row, spread in zip(kappa, F, strict=True):  # row by row: twice as fast as axis=1
        np.take(row, nd.site, out=spread)
    np.subtract(data.B, F, out=F)
    F *= a  # V^-1 [X, y]
    F[p] -= np.einsum("r,ri->i", beta, F[:p])  # V^-1 r, r = y - X beta
    Fs = data.site_sums(F)
    Fj = data.source_sums(Fs)
    FGF = [_gram(Fj, Fj), _gram(Fs, Fs), _sym_gram(F, F)]  # [W, m]' G_a [W, m]
    A2 = nd.by_site(a * a)
    U_t = c * c * A2
    U_s = nd.by_source(U_t)
    traces = np.array([np.sum(g * R), np.sum(q) - s1 * np.sum(gt * q * q),
                       np.sum(S) - s2 * np.sum(c * A2) - s1 * np.sum(g * U_s)])
    if data.reml:
        traces -= [np.sum(H * G[:p, :p]) for G in FGF]
    quad = np.array([G[p, p] for G in FGF])
    out.grad = 0.5 * (quad - traces)
    if order < 2:
        return out
    A3 = nd.by_site(a**3)
    tvv = _trace_terms(nd, s1, s2, c, q, g, gt, R, A2, A3, U_t, U_s, None, None)
    phi = _level_forms(data, (s1, s2), a, S, c, g, F, Fs, Fj, aB)
    tr, zpz = tvv.copy(), np.empty((3, 3))
    m = p + 1
    for i in range(3):
        for j in range(3):
            block = phi[i * m:(i + 1) * m, j * m:(j + 1) * m]
            xz_i, xz_j = FGF[i][:p, p], FGF[j][:p, p]
            zpz[i, j] = block[p, p] - xz_i @ H @ xz_j
            if data.reml:  # tr(PAPB) = tr(V^-1 A V^-1 B) - 2 tr(H W'AV^-1BW) + tr(H W'AW H W'BW)
                tr[i, j] += (-2 * np.sum(H * block[:p, :p])
                             + np.sum((H @ FGF[i][:p, :p]) * (H @ FGF[j][:p, :p]).T))
    out.fisher = 0.5 * tr
    out.hess = out.fisher - zpz
    return out


def _level_forms(data, sigma2, a, S, c, g, F, Fs, Fj, out):
    """(G_a F)'V^-1 (G_b F) for a, b in (source, site, effect), as one 3 (p + 1) square
    array in blocks. G_1 F and G_2 F are constant within sites (values L per site), so
    their a-weighted per-site sums are S L and sum a b1 b2 reduces to sums over sites.
    ``out`` is a buffer of F's shape."""
    s1, s2 = sigma2[0], sigma2[1]
    ss = data.nested.site_source
    L = np.vstack([Fj[:, ss], Fs])
    aF = np.multiply(a, F, out=out)
    TE = data.site_sums(aF)
    T = np.vstack([S * L, TE])
    U = data.source_sums(c * T)
    LE = _gram(L, TE)
    raw = np.block([[_gram(S * L, L), LE], [LE.T, _sym_gram(aF, F)]])
    return raw - s2 * _gram(c * T, T) - s1 * _gram(g * U, U)


# ---------------------------------------------------------------- fitting


def _start(Z, y, v, free):
    """Start values: the DerSimonian-Laird residual tau^2 of the moderator model, shared by
    the free components (at least 1 % of the mean sampling variance); and QE."""
    fe = fixed_effect_fit(Design(Z.T), y, v)
    p, k = Z.shape
    tau2 = max((fe.rss - (k - p)) / fe.trace_p, 0.0) if fe.trace_p > 0 else 0.0
    total = max(tau2, 0.01 * float(np.mean(v)))
    free = np.array(free)
    return np.where(free, total / max(int(free.sum()), 1), 0.0), fe.rss


def _fit(data, start):
    """sigma2 at the maximum, then the final evaluation there (components below ZERO at 0)."""
    sigma2, ev = fit_sigma2(data, evaluate=_evaluate_reg, start=start)
    if np.any((sigma2 > 0) & (sigma2 <= ZERO)):
        sigma2 = np.where(sigma2 <= ZERO, 0.0, sigma2)
        ev = _evaluate_reg(data, sigma2, order=0)
    return sigma2, ev


def _gls_weights(data, sigma2):
    """metafor's weights(): 100 diag(V^-1) / sum, diag(V^-1) = a - a^2 (s2 c + s1 g c^2)."""
    nd = data.nested
    s1, s2, s3 = sigma2
    a = 1 / (nd.v + s3)
    S = nd.by_site(a)
    c = 1 / (1 + s2 * S)
    g = 1 / (1 + s1 * nd.by_source(c * S))
    d = a - a * a * (s2 * c + s1 * g[nd.site_source] * c * c)[nd.site]
    return 100 * d / d.sum()


def _back_transform(beta_std, cov_std, centre, scale):
    """Coefficients and covariance for the model matrix as given, from the standardised
    basis Z = (X - centre) / scale, for which X = Z T with T = [[1, centre], [0, diag(scale)]]."""
    tinv = np.diag(1 / scale)
    tinv[0, 1:] = -centre[1:] / scale[1:]
    return tinv @ beta_std, tinv @ cov_std @ tinv.T


def _coef_table(beta, cov, terms, crit, pvalue):
    se = np.sqrt(np.diag(cov))
    stat = beta / se
    return pd.DataFrame(
        {"estimate": beta, "se": se, "statistic": stat,
         "pvalue": [pvalue(t) for t in stat], "ci_low": beta - crit * se,
         "ci_high": beta + crit * se},
        index=pd.Index(terms, name="term"),
    )


def _omnibus(beta_std, cov_std, test, ddf):
    """QM for all coefficients but the intercept (invariant to the standardisation)."""
    b = beta_std[1:]
    qm = float(b @ np.linalg.solve(cov_std[1:, 1:], b))
    m = len(b)
    if test == "t":
        return qm / m, m, float(ddf), float(_dist.f_sf(qm / m, m, ddf))
    return qm, m, np.nan, float(_dist.chi2_sf(qm, m))


def _pseudo_r2(null_sigma2, sigma2):
    """Percent reduction of the summed variance components, truncated to [0, 100]."""
    before, after = float(np.sum(null_sigma2)), float(np.sum(sigma2))
    if before <= 0:
        return 0.0
    return min(100.0, max(0.0, 100 * (before - after) / before))


def _dropped_note(k_dropped, frame, sites_dropped, sources_dropped):
    if not k_dropped:
        return ()
    names = [str(name) for name in frame.columns]
    return (f"{k_dropped} effect(s) without a value of {', '.join(names)} left out "
            f"({sites_dropped} site(s) and {sources_dropped} source(s) with no effect left).",)


# ---------------------------------------------------------------- public API


def meta_regression_nested(yi, vi, moderators, source, site, *, method="REML", test="z",
                           alpha=0.05):
    """Meta-regression for effects within sites within sources.

    Parameters
    ----------
    yi : array-like of shape (k,)
        Observed effect sizes.
    vi : array-like of shape (k,)
        Their sampling variances, all > 0.
    moderators : pandas.DataFrame, pandas.Series, dict or array-like
        One row per effect. Numeric columns enter as they are; text, categorical and bool
        columns become treatment dummies with the first level as reference (sorted values,
        or the category order of a pandas Categorical, as R's ``factor``), as in
        :func:`evidence.meta_regression`. An intercept is always added. A row missing any
        moderator value (None, NaN, NA or a blank string) is left out and counted.
    source : array-like of shape (k,)
        Source (paper, database study) label of each effect.
    site : array-like of shape (k,)
        Site (study record) label of each effect, read within its source.
    method : {"REML", "ML"}
        Restricted or full maximum likelihood.
    test : {"z", "t"}
        z and chi-square tests, or t tests with k - p df and an F test for QM (metafor's
        ``test = "t"``).
    alpha : float
        1 - confidence level.

    Returns
    -------
    NestedRegressionResult

    Raises
    ------
    EvidenceError
        On malformed input, missing labels, a moderator with no value at all, a constant
        numeric moderator or a single-level factor (not identifiable), collinear
        moderators, or fewer than p + 1 effects with every moderator value.
    ConvergenceError
        If the likelihood cannot be maximised.

    Notes
    -----
    The model is metafor 3.8-1 ``rma.mv(yi, vi, mods = ~ ..., random = ~ 1 |
    source/site/effect)`` with one ``effect`` per row: y = X beta + u_source + u_site +
    u_effect + sampling error. The variance components maximise the (restricted)
    likelihood by the projected Newton iteration of :func:`evidence.multilevel.fit_sigma2`
    with this model's exact gradient and Hessian; the degenerate-design rules and notes
    are those of :func:`evidence.pool_nested`. Each source's marginal covariance is
    inverted by Woodbury's identity per site and per source, so a fit costs O(k p^2)
    time and no k x k matrix is formed. Numeric columns are centred and scaled inside the
    fit (a year as moderator would otherwise make X'V^-1 X ill-conditioned) and the
    coefficients transformed back; the REML log-likelihood includes metafor's
    log det(X'X) / 2, which makes it the same in either basis.

    ``qe`` is metafor's QE: the weighted residual sum of squares of the fixed-effect fit
    with weights 1 / vi, k - p df. rma.mv reports no R^2; ``r2`` is the usual multilevel
    pseudo-R^2, 100 (sum sigma2_0 - sum sigma2) / sum sigma2_0 truncated to [0, 100],
    with sigma2_0 the components of the intercept-only nested model (:func:`pool_nested`)
    of the same effects fitted by the same method (0 when sum sigma2_0 = 0).

    metafor drops collinear columns with a warning and refuses k = p only implicitly;
    here collinear moderators are an error naming the terms, and at least one residual
    degree of freedom (k >= p + 1) is required.

    References
    ----------
    Konstantopoulos, S. (2011). Fixed effects and variance components estimation in
    three-level meta-analysis. Research Synthesis Methods, 2, 61-76.
    Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
    Journal of Statistical Software, 36(3), 1-48.
    """
    y, v, method, test, alpha = _common_args(yi, vi, method, test, alpha)
    k_all = len(y)
    frame = _as_frame(moderators, k_all)
    source_codes, _ = as_clusters(source, k_all, "source")
    site_codes, _ = as_clusters(site, k_all, "site")
    missing = _missing(frame)
    _check_some_values(frame, missing)
    used = ~missing
    X, terms, coding = _model_matrix(frame[used])
    k, p = X.shape
    _check_enough(k, p, int(missing.sum()))
    Z, centre, scale = _standardise(X, coding)
    _check_collinear(Z[1:], terms)
    src, n_sources = _dense_codes(source_codes[used])
    sit = site_codes[used]
    n_sites = _n_sites(src, sit)
    estimable = estimable_levels(n_sources, n_sites, k)
    data = _reg_data(Z, y[used], v[used], src, n_sources, sit, estimable, method == "REML")
    start, qe = _start(Z, y[used], v[used], estimable)
    sigma2, ev = _fit(data, start)
    beta_std = ev.beta.copy()
    beta_std[0] += data.nested.shift
    crit, pvalue = _test_crit(test, alpha, k - p)
    beta, cov = _back_transform(beta_std, ev.H, centre, scale)
    qm, qm_df, qm_ddf, qm_p = _omnibus(beta_std, ev.H, test, k - p)
    null = pool_nested(y[used], v[used], src, sit, method=method)
    k_dropped = int(missing.sum())
    sources_dropped = len(np.unique(source_codes)) - n_sources
    sites_dropped = _n_sites(source_codes, site_codes) - n_sites
    notes = (*_notes(n_sources, n_sites, k, estimable),
             *_dropped_note(k_dropped, frame, sites_dropped, sources_dropped))
    fitted = _Fitted(coding, centre, scale, beta_std, ev.H, float(np.sum(sigma2)), crit,
                     _gls_weights(data, sigma2))
    return NestedRegressionResult(
        coefficients=_coef_table(beta, cov, terms, crit, pvalue), qm=qm, qm_df=qm_df,
        qm_ddf=qm_ddf, qm_pvalue=qm_p, qe=max(0.0, float(qe)), qe_df=k - p,
        qe_pvalue=float(_dist.chi2_sf(max(0.0, qe), k - p)),
        sigma2=tuple(float(s) for s in sigma2), estimable=estimable,
        sigma2_null=tuple(float(s) for s in null.sigma2), r2=_pseudo_r2(null.sigma2, sigma2),
        loglik=ev.loglik, k=k, p=p, n_sites=n_sites, n_sources=n_sources,
        k_dropped=k_dropped, sites_dropped=sites_dropped, sources_dropped=sources_dropped,
        method=method, test=test, alpha=alpha, notes=notes, used=used, _model=fitted,
    )


# ---------------------------------------------------------------- the moderator report


@dataclass(frozen=True)
class ModeratorAnalysis:
    """Result of :func:`moderator_analysis`: one moderator's meta-regression, reported.

    ``model`` is "multilevel" (:func:`meta_regression_nested`) or "independent"
    (:func:`evidence.meta_regression`). ``kind`` is "numeric" or "categorical"; for a
    numeric moderator ``slope`` and its se, CI and p-value are the change in the effect
    (e.g. lnRR) per ``unit`` of the moderator, and for log response ratios (``ratio``)
    ``percent_per_unit`` = 100 (exp(slope) - 1) with its CI transformed the same way
    (NaN otherwise, and all slope fields NaN for a categorical moderator, whose contrasts
    are in ``coefficients``). ``k_effects``, ``n_sites`` and ``n_sources`` were fitted;
    ``k_missing`` effects lacked a moderator value, leaving ``sites_dropped`` sites and
    ``sources_dropped`` sources with no effect; ``k_no_effect`` rows had no finite ``yi``
    with ``vi > 0``. ``sigma2`` is (source, site, effect) for the multilevel model (NaN for
    a component the design cannot identify) and NaN for the independent one; ``tau2`` is
    the residual heterogeneity in all (the sum of ``sigma2``, or rma.uni's tau^2). ``r2``
    is in percent (see :func:`meta_regression_nested` and :func:`evidence.meta_regression`).
    """

    moderator: str
    kind: str
    unit: str
    model: str
    k_effects: int
    n_sites: int
    n_sources: int
    k_missing: int
    sites_dropped: int
    sources_dropped: int
    k_no_effect: int
    slope: float
    slope_se: float
    slope_ci_low: float
    slope_ci_high: float
    slope_pvalue: float
    percent_per_unit: float
    percent_ci_low: float
    percent_ci_high: float
    qm: float
    qm_df: int
    qm_ddf: float
    qm_pvalue: float
    qe: float
    qe_df: int
    qe_pvalue: float
    r2: float
    tau2: float
    sigma2: tuple
    method: str
    test: str
    alpha: float
    ratio: bool
    notes: tuple = ()
    fit: object = field(default=None, repr=False, compare=False)
    _points: pd.DataFrame = field(default=None, repr=False, compare=False)

    @property
    def coefficients(self):
        """The fit's coefficient table (estimate, se, statistic, pvalue, ci_low, ci_high)."""
        return self.fit.coefficients

    def to_frame(self):
        """One-row DataFrame of every field but ``fit``; ``sigma2`` becomes
        ``sigma2_source``, ``sigma2_site``, ``sigma2_effect`` and ``notes`` one string."""
        skip = {"fit", "_points"}
        row = {name: getattr(self, name) for name in self.__dataclass_fields__ if name not in skip}
        for level, s2 in zip(LEVELS, row.pop("sigma2"), strict=True):
            row[f"sigma2_{level}"] = s2
        row["notes"] = " ".join(row["notes"])
        return pd.DataFrame([row])

    def line(self, n=50):
        """The fitted line and its confidence band, for a bubble plot.

        Parameters
        ----------
        n : int
            Number of evenly spaced moderator values from the smallest to the largest
            fitted one (numeric moderator); ignored for a categorical one, which gets one
            row per level in the fit's order (reference first).

        Returns
        -------
        pandas.DataFrame
            Columns x, fitted, se, ci_low, ci_high, pi_low, pi_high (the model's
            prediction at x, as :meth:`NestedRegressionResult.predict`), and for log
            response ratios percent, percent_low, percent_high (the fitted value and its
            CI as percent change, 100 (exp(.) - 1)).
        """
        x = self._points["x"]
        if self.kind == "numeric":
            if not (isinstance(n, (int, np.integer)) and n >= 2):
                raise EvidenceError(f"line() needs n >= 2 points; got {n!r}.")
            grid = np.linspace(float(x.min()), float(x.max()), int(n))
        else:
            grid = list(_levels(self.fit))
        pred = self.fit.predict(pd.DataFrame({self.moderator: grid}))
        out = pd.DataFrame({"x": grid, "fitted": pred["pred"]})
        out = pd.concat([out, pred.drop(columns="pred")], axis=1)
        if self.ratio:
            for name, col in (("percent", "fitted"), ("percent_low", "ci_low"),
                              ("percent_high", "ci_high")):
                out[name] = 100 * np.expm1(out[col])
        return out

    def points(self):
        """The fitted effects for the bubbles: one row each with ``row`` (its index label
        in the input frame), x (moderator value), yi, vi, study_id, source_key and weight.

        ``weight`` is the model's weight in percent, as metafor's ``weights(fit)``: for the
        multilevel model 100 diag(V^-1) / sum, V the fitted marginal covariance; for the
        independent model 100 w / sum(w), w = 1 / (vi + tau^2). metafor's ``regplot`` draws
        each point with size in proportion to the square root of this weight.
        """
        return self._points.copy()


def _levels(fit):
    """The levels of the one categorical moderator of a fit, reference first."""
    coding = fit._model.coding if isinstance(fit, NestedRegressionResult) else fit._coding
    return coding[0].levels


def _effect_rows(frame):
    """Rows with a finite ``yi`` and a finite ``vi > 0``."""
    y = pd.to_numeric(frame["yi"], errors="coerce").to_numpy(float)
    v = pd.to_numeric(frame["vi"], errors="coerce").to_numpy(float)
    return np.isfinite(y) & np.isfinite(v) & (v > 0)


def _labels(rows):
    """Site and source labels of ``rows`` as in evidence.synthesis: a row without a
    ``study_id`` is a site of its own, a site without a ``source_key`` its own source."""
    n = len(rows)
    notes = []
    site = _label_codes(rows, "study_id")
    if (site < 0).any():
        notes.append(f"{int((site < 0).sum())} effect(s) without a study_id: each its own site")
        site = np.where(site < 0, site.max(initial=-1) + 1 + np.arange(n), site)
    source = _label_codes(rows, "source_key")
    if "source_key" not in rows:
        notes.append("no source_key: each site counts as its own source")
    elif (source < 0).any():
        lone = int(pd.unique(site[source < 0]).size)
        notes.append(f"{lone} site(s) without a source_key: each counts as its own source")
    source = np.where(source < 0, source.max(initial=-1) + 1 + site, source)
    return source, site, notes


def _label_codes(rows, column):
    """Codes of a label column, -1 for a missing label (None, NaN or a blank string)."""
    if column not in rows:
        return np.full(len(rows), -1, dtype=np.intp)
    labels = rows[column]
    if labels.dtype == object or isinstance(labels.dtype, pd.StringDtype):
        blank = (labels.astype("string").str.strip() == "").fillna(False).to_numpy(bool)
        labels = labels.where(~blank, None)  # numbers cannot be blank: no text for them
    return pd.factorize(labels, use_na_sentinel=True)[0].astype(np.intp)


def _moderator_values(frame, moderator):
    """The moderator column; ``depth_mid_cm`` may be derived as the sampled layer's
    mid-point from ``depth_top_cm`` and ``depth_bottom_cm``."""
    if moderator in frame:
        return frame[moderator]
    if moderator == "depth_mid_cm" and {"depth_top_cm", "depth_bottom_cm"} <= set(frame):
        top = pd.to_numeric(frame["depth_top_cm"], errors="coerce")
        bottom = pd.to_numeric(frame["depth_bottom_cm"], errors="coerce")
        return ((top + bottom) / 2).rename(moderator)
    derived = " (or depth_top_cm and depth_bottom_cm for depth_mid_cm)" * (
        moderator == "depth_mid_cm")
    raise EvidenceError(
        f"frame has no column {moderator!r}{derived}; columns are "
        f"{sorted(map(str, frame.columns))[:12]}."
    )


def _is_ratio(rows):
    """Log response ratios: no ``measure`` column, or every given measure ROM/ROM_BC."""
    if "measure" not in rows:
        return True
    measures = set(rows["measure"].dropna())
    return bool(measures) and measures <= RATIO_MEASURES


def moderator_analysis(frame, moderator, *, model="multilevel", method="REML", test="z",
                       alpha=0.05, ratio=None):
    """Meta-regression of the effects in ``frame`` on one moderator, for a report or a plot.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per effect: ``yi``, ``vi``, ``study_id`` (the site), ``source_key`` (the
        source) and the moderator column; optional ``measure``. Rows without a finite
        ``yi`` and ``vi > 0`` (direction-only rows) are left out and counted; a row
        without a ``study_id`` is a site of its own, a site without a ``source_key`` its
        own source (as :func:`evidence.synthesize`).
    moderator : str
        The column: numeric (``warming_c``, ``duration_years``, ``depth_mid_cm``, which is
        derived from ``depth_top_cm`` and ``depth_bottom_cm`` when absent) or categorical
        (``biome``: treatment dummies, the first sorted level the reference).
    model : {"multilevel", "independent"}
        :func:`meta_regression_nested` (effects in sites in sources) or
        :func:`evidence.meta_regression` (effects as independent), to compare.
    method : str
        "REML" or "ML" for the multilevel model; any of :data:`evidence.METHODS` for the
        independent one.
    test : str
        "z" or "t" for the multilevel model; "z" or "knha" for the independent one.
    alpha : float
        1 - confidence level.
    ratio : bool, optional
        Whether ``yi`` are log response ratios (then the slope is also reported as
        percent change per unit). Default: True without a ``measure`` column, else when
        every given measure is ROM or ROM_BC (as :func:`evidence.synthesize`).

    Returns
    -------
    ModeratorAnalysis

    Raises
    ------
    EvidenceError
        On a frame without ``yi``/``vi`` or the moderator, no effect to fit, an unknown
        model, and everything the chosen model refuses (see
        :func:`meta_regression_nested`).
    """
    if not isinstance(frame, pd.DataFrame):
        raise EvidenceError(f"frame must be a pandas DataFrame; got {type(frame).__name__}.")
    if not isinstance(moderator, str):
        raise EvidenceError(f"moderator must be one column name (a str); got {moderator!r:.60}.")
    absent = [name for name in ("yi", "vi") if name not in frame]
    if absent:
        raise EvidenceError(f"frame lacks column(s) {absent}; it needs yi and vi per effect.")
    model = _checks.check_choice(model, MODELS, "model")
    values = _moderator_values(frame, moderator)
    ok = _effect_rows(frame)
    if not ok.any():
        raise EvidenceError(f"none of the {len(frame)} rows has a finite yi with vi > 0; "
                            "nothing to fit.")
    rows = frame[ok]
    mods = pd.DataFrame({moderator: values[ok].to_numpy()})
    y = pd.to_numeric(rows["yi"]).to_numpy(float)
    v = pd.to_numeric(rows["vi"]).to_numpy(float)
    source, site, notes = _labels(rows)
    if not ok.all():
        notes.insert(0, f"{int((~ok).sum())} row(s) without a finite yi and vi > 0 left out")
    if model == "multilevel":
        fit = meta_regression_nested(y, v, mods, source, site, method=method, test=test,
                                     alpha=alpha)
        kept = _kept_nested(fit)
    else:
        fit, kept = _independent(y, v, mods, source, site, method, test, alpha)
    ratio = _is_ratio(rows) if ratio is None else bool(ratio)
    return _report(fit, kept, moderator, model, ratio, int((~ok).sum()), notes,
                   _bubbles(rows, values[ok], kept))


@dataclass(frozen=True)
class _Kept:
    """Which effects a fit used and what leaving the others out cost, for either model."""

    used: np.ndarray
    k_dropped: int
    sites_dropped: int
    sources_dropped: int
    n_sites: int
    n_sources: int
    weights: np.ndarray
    notes: tuple


def _kept_nested(fit):
    return _Kept(fit.used, fit.k_dropped, fit.sites_dropped, fit.sources_dropped, fit.n_sites,
                 fit.n_sources, fit.weights(), fit.notes)


def _independent(y, v, mods, source, site, method, test, alpha):
    """evidence.meta_regression on the effects with a moderator value, and the counts."""
    missing = _missing(mods)
    _check_some_values(mods, missing)
    used = ~missing
    res = meta_regression(y[used], v[used], mods[used].reset_index(drop=True).infer_objects(),
                          method=method, test=test, alpha=alpha)
    n_sources = len(np.unique(source[used]))
    n_sites = _n_sites(source[used], site[used])
    sites_dropped = _n_sites(source, site) - n_sites
    sources_dropped = len(np.unique(source)) - n_sources
    notes = _dropped_note(int(missing.sum()), mods, sites_dropped, sources_dropped)
    if res.k > n_sites:
        notes = (*notes, f"fitted as if independent: {res.k} effects from {n_sites} sites")
    w = res._model.w
    return res, _Kept(used, int(missing.sum()), sites_dropped, sources_dropped, n_sites,
                      n_sources, 100 * w / w.sum(), notes)


def _bubbles(rows, values, kept):
    """The fitted effects with their moderator values and model weights."""
    used = kept.used
    out = pd.DataFrame({
        "row": rows.index[used],
        "x": values.to_numpy()[used],
        "yi": pd.to_numeric(rows["yi"]).to_numpy(float)[used],
        "vi": pd.to_numeric(rows["vi"]).to_numpy(float)[used],
    })
    for column in ("study_id", "source_key"):
        out[column] = rows[column].to_numpy()[used] if column in rows else None
    out["weight"] = kept.weights
    return out


def _report(fit, kept, moderator, model, ratio, k_no_effect, notes, points):
    """ModeratorAnalysis from a fit (nested or independent) and its counts."""
    coef = fit.coefficients
    numeric = moderator in coef.index
    nan = np.nan
    if numeric:
        row = coef.loc[moderator]
        slope = (row["estimate"], row["se"], row["ci_low"], row["ci_high"], row["pvalue"])
    else:
        slope = (nan,) * 5
    if numeric and ratio:
        percent = tuple(float(100 * np.expm1(b)) for b in (slope[0], slope[2], slope[3]))
    else:
        percent = (nan,) * 3
    if model == "multilevel":
        sigma2 = tuple(s if ok else nan for s, ok in zip(fit.sigma2, fit.estimable, strict=True))
        tau2 = float(sum(fit.sigma2))
    else:
        sigma2, tau2 = (nan,) * 3, float(fit.tau2)
    return ModeratorAnalysis(
        moderator=moderator, kind="numeric" if numeric else "categorical",
        unit=UNITS.get(moderator, "unit"), model=model, k_effects=fit.k, n_sites=kept.n_sites,
        n_sources=kept.n_sources, k_missing=kept.k_dropped, sites_dropped=kept.sites_dropped,
        sources_dropped=kept.sources_dropped, k_no_effect=k_no_effect,
        slope=float(slope[0]), slope_se=float(slope[1]), slope_ci_low=float(slope[2]),
        slope_ci_high=float(slope[3]), slope_pvalue=float(slope[4]),
        percent_per_unit=percent[0], percent_ci_low=percent[1], percent_ci_high=percent[2],
        qm=fit.qm, qm_df=fit.qm_df, qm_ddf=fit.qm_ddf, qm_pvalue=fit.qm_pvalue, qe=fit.qe,
        qe_df=fit.qe_df, qe_pvalue=fit.qe_pvalue, r2=fit.r2, tau2=tau2, sigma2=sigma2,
        method=fit.method, test=fit.test, alpha=fit.alpha, ratio=ratio,
        notes=(*notes, *kept.notes), fit=fit, _points=points,
    )
