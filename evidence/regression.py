"""Mixed-effects meta-regression (metafor's ``rma.uni`` with ``mods``)."""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import _checks
from ._fit import Design, as_design, estimate_tau2, fit_model, fixed_effect_fit
from .errors import EvidenceError

EIGEN_TOL = 1e-7  # metafor's control$evtol for a rank-deficient X'X


@dataclass(frozen=True)
class _Column:
    """How one moderator column enters the model matrix."""

    name: str
    levels: tuple | None  # None for a numeric column; else the levels, reference first

    def encode(self, values):
        """Model-matrix columns for ``values`` of this moderator."""
        if self.levels is None:
            arr = _checks.as_float_array(values, f"moderator '{self.name}'")
            return _checks.check_finite(arr, f"moderator '{self.name}'")[:, None]
        _check_levels(self.name, values, self.levels)
        return np.column_stack([(values == lev).to_numpy(float) for lev in self.levels[1:]])

    @property
    def terms(self):
        if self.levels is None:
            return [self.name]
        return [f"{self.name}[{lev}]" for lev in self.levels[1:]]


def _check_levels(name, values, levels):
    """Raise on missing values or levels the model was not fitted with."""
    known = values.isin(levels).to_numpy()
    if not known.all():
        i = int(np.flatnonzero(~known)[0])
        raise EvidenceError(
            f"moderator '{name}' row {i} has level {values.iloc[i]!r}, which is not one of "
            f"{list(levels)}; drop that row or recode it."
        )


def _as_frame(moderators, k):
    """Moderators (DataFrame, Series, dict or array) as a DataFrame with k rows."""
    if isinstance(moderators, pd.Series):
        moderators = moderators.to_frame(moderators.name if moderators.name is not None else "x")
    elif isinstance(moderators, dict):
        moderators = pd.DataFrame(moderators)
    elif not isinstance(moderators, pd.DataFrame):
        arr = np.asarray(moderators)
        arr = arr[:, None] if arr.ndim == 1 else arr
        moderators = pd.DataFrame(arr, columns=[f"x{j + 1}" for j in range(arr.shape[1])])
    if moderators.shape[1] == 0:
        raise EvidenceError("moderators has no columns; use pool() for an intercept-only model.")
    if k is not None and len(moderators) != k:
        raise EvidenceError(
            f"moderators has {len(moderators)} rows but yi has {k}; pass one row per study."
        )
    return moderators.reset_index(drop=True)


def _column_coding(name, values):
    """Numeric columns stay as they are; others become R-style treatment dummies."""
    missing = values.isna().to_numpy()
    if missing.any():
        raise EvidenceError(
            f"moderator '{name}' is missing at row {int(np.flatnonzero(missing)[0])}; "
            "drop or impute those studies first."
        )
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return _Column(str(name), None)
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels = [c for c in values.cat.categories if (values == c).any()]
    else:
        levels = sorted(values.unique())
    if len(levels) < 2:
        raise EvidenceError(
            f"moderator '{name}' has a single level {levels[0]!r}; drop it or add studies "
            "with other levels."
        )
    return _Column(str(name), tuple(levels))


def _encode(frame, coding):
    """The model matrix (intercept first) for ``frame`` under ``coding``."""
    blocks = [np.ones((len(frame), 1))]
    blocks += [col.encode(frame[col.name]) for col in coding]
    return np.hstack(blocks)


def design_matrix(moderators, k=None, check_rank=True):
    """Build the model matrix as R's ``model.matrix(~ ., moderators)``.

    Parameters
    ----------
    moderators : pandas.DataFrame, pandas.Series, dict or array-like
        One row per study.
    k : int, optional
        Expected number of rows.
    check_rank : bool
        Raise if the columns are collinear (callers that first check k pass False and
        call :func:`check_full_rank` afterwards, so too few studies get the clearer error).

    Returns
    -------
    X : numpy.ndarray of shape (k, p)
        Intercept column first.
    terms : list of str
        Column names: "intrcpt", numeric names, and "name[level]" for dummies.
    coding : tuple
        The coding, to encode new data the same way.
    """
    frame = _as_frame(moderators, k)
    coding = tuple(_column_coding(name, frame[name]) for name in frame.columns)
    X = _encode(frame, coding)
    terms = ["intrcpt"] + [t for col in coding for t in col.terms]
    if check_rank:
        check_full_rank(X, terms)
    return X, terms, coding


def check_full_rank(X, terms):
    """Raise if the model matrix ``X`` (array or Design; columns ``terms``) is not of full
    column rank."""
    if np.linalg.eigvalsh(as_design(X).gram()).min() <= EIGEN_TOL:
        raise EvidenceError(
            f"the moderators are collinear (terms {terms[1:]}); the model matrix is not of "
            "full rank, so drop a redundant moderator."
        )


@dataclass(frozen=True)
class MetaRegressionResult:
    """Result of :func:`meta_regression`.

    ``coefficients`` is indexed by term with columns estimate, se, statistic, pvalue,
    ci_low, ci_high. ``qm`` is a chi-square statistic with ``qm_df`` df (test "z") or an F
    statistic with (``qm_df``, ``qm_ddf``) df (test "knha"); ``i2``, ``h2`` describe the
    residual heterogeneity; ``r2`` (percent) the heterogeneity accounted for.
    """

    coefficients: pd.DataFrame
    qm: float
    qm_df: int
    qm_ddf: float
    qm_pvalue: float
    qe: float
    qe_df: int
    qe_pvalue: float
    tau2: float
    i2: float
    h2: float
    r2: float
    k: int
    p: int
    method: str
    test: str
    alpha: float
    _model: object = field(default=None, repr=False, compare=False)
    _coding: tuple = field(default=(), repr=False, compare=False)

    def predict(self, new_moderators):
        """Predicted effects for new moderator values, coded as in the fit.

        Parameters
        ----------
        new_moderators : pandas.DataFrame, pandas.Series or dict
            Same columns as the fitted moderators.

        Returns
        -------
        pandas.DataFrame
            Columns pred, se, ci_low, ci_high, pi_low, pi_high (as metafor's ``predict``;
            prediction intervals use se^2 + tau^2 and the test's quantile).
        """
        frame = _as_frame(new_moderators, None)
        absent = [col.name for col in self._coding if col.name not in frame.columns]
        if absent:
            raise EvidenceError(f"new_moderators lacks column(s) {absent}; pass every moderator.")
        cols = self._model.predict(_encode(frame, self._coding))
        names = ("pred", "se", "ci_low", "ci_high", "pi_low", "pi_high")
        return pd.DataFrame(dict(zip(names, cols, strict=True)))

    def to_frame(self):
        """The coefficient table with the term as a column."""
        return self.coefficients.rename_axis("term").reset_index()


def meta_regression(yi, vi, moderators, method="REML", test="z", alpha=0.05):
    """Fit a (mixed-effects) meta-regression.

    Parameters
    ----------
    yi : array-like of shape (k,)
        Observed effect sizes.
    vi : array-like of shape (k,)
        Sampling variances, all > 0.
    moderators : pandas.DataFrame, pandas.Series, dict or array-like
        One row per study. Numeric columns enter as they are; text, categorical and bool
        columns become treatment dummies with the first level as reference (sorted values,
        or the category order of a pandas Categorical, as R's ``factor``). An intercept is
        always added.
    method : {"REML", "ML", "DL", "PM", "EB", "HS", "SJ", "HE", "FE"}
        Estimator of the residual heterogeneity tau^2; "FE" fits a fixed-effects model.
    test : {"z", "knha"}
        z and chi-square tests, or Knapp-Hartung t tests with k - p df and an F test.
    alpha : float
        1 - confidence level.

    Returns
    -------
    MetaRegressionResult

    Notes
    -----
    Matches metafor 3.8-1 ``rma.uni(yi, vi, mods = ~ ..., method, test)``; the estimators
    are those of :func:`evidence.pool` generalised as in metafor (DL and the
    Knapp-Hartung factor use the residual df k - p; SJ starts from the variance of yi
    around its mean; PM/EB solve Q(tau2) = k - p). QM tests all coefficients except the
    intercept. I^2 = 100 tau^2 / (tau^2 + s^2) with s^2 = (k - p) / tr(P_FE).
    R^2 = max(0, 100 (tau2_0 - tau2) / tau2_0), with tau2_0 from the intercept-only model
    fitted by the same method (0 when tau2_0 = 0); for "FE" it is the adjusted R^2 of the
    weighted least-squares fit, as metafor. Everything uses p x p normal equations, so the
    cost is O(k p^2). Collinear moderators raise an error (metafor drops them).

    References
    ----------
    Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
    Journal of Statistical Software, 36(3), 1-48.
    Raudenbush, S. W. (2009). Analyzing effect sizes: random-effects models. In The
    Handbook of Research Synthesis and Meta-Analysis (2nd ed., pp. 295-315).
    """
    y, v = _checks.as_effects(yi, vi)
    method = _checks.check_choice(method, _checks.METHODS, "method")
    test = _checks.check_choice(test, _checks.TESTS, "test")
    alpha = _checks.check_alpha(alpha)
    X, terms, coding = design_matrix(moderators, len(y), check_rank=False)
    k, p = X.shape
    _checks.check_k(k, p, method, test)
    design = Design(X)
    check_full_rank(design, terms)
    model = fit_model(y, v, design, method, test, alpha)
    qm, (m, ddf), qm_p = model.wald(np.arange(1, p))
    return MetaRegressionResult(
        coefficients=_coef_table(model, terms), qm=qm, qm_df=m, qm_ddf=ddf, qm_pvalue=qm_p,
        qe=model.qe, qe_df=k - p, qe_pvalue=model.qe_pvalue, tau2=model.tau2, i2=model.i2,
        h2=model.h2, r2=_pseudo_r2(model), k=k, p=p, method=method, test=test, alpha=alpha,
        _model=model, _coding=coding,
    )


def _coef_table(model, terms):
    """Estimates, standard errors, z/t statistics, p-values and confidence bounds."""
    se = model.se
    stat = model.beta / se
    return pd.DataFrame(
        {"estimate": model.beta, "se": se, "statistic": stat, "pvalue": model.pvalues(stat),
         "ci_low": model.beta - model.crit * se, "ci_high": model.beta + model.crit * se},
        index=pd.Index(terms, name="term"),
    )


def _pseudo_r2(model):
    """metafor's R^2 (percent): proportional reduction in tau^2, or adjusted R^2 for FE."""
    if model.method == "FE":
        return _weighted_adj_r2(model.y, model.v, model.design)
    try:
        tau2_0 = estimate_tau2(model.y, model.v, Design.intercept(model.k), model.method)
    except EvidenceError:
        return np.nan  # metafor reports NA when the intercept-only fit fails
    if tau2_0 == 0:
        return 0.0
    # clipped to [0, 100]: 100 * a / a can round to 100.00000000000001
    return min(100.0, max(0.0, 100 * (tau2_0 - model.tau2) / tau2_0))


def _weighted_adj_r2(y, v, design):
    """100 x adjusted R^2 of ``lm(y ~ X, weights = 1 / v)``, floored at 0."""
    if np.all(y == y[0]):
        return 0.0
    rss = fixed_effect_fit(design, y, v).rss
    tss = fixed_effect_fit(Design.intercept(design.k), y, v).rss
    return max(0.0, 100 * (1 - (rss / tss) * (design.k - 1) / (design.k - design.p)))
