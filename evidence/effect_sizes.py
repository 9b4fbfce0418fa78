"""Effect sizes from group summaries (metafor's ``escalc``) and conversions between scales."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from . import _checks, _dist
from .errors import EvidenceError


@dataclass(frozen=True)
class EffectSizes:
    """Effect sizes ``yi`` and sampling variances ``vi`` of one ``measure``.

    Unpacks as ``yi, vi = result``. Both are floats when every input was a scalar,
    otherwise 1-d numpy arrays.
    """

    yi: np.ndarray | float
    vi: np.ndarray | float
    measure: str

    def __iter__(self):
        return iter((self.yi, self.vi))

    def to_frame(self):
        """DataFrame with columns yi, vi and measure, one row per comparison."""
        return pd.DataFrame({"yi": np.atleast_1d(self.yi), "vi": np.atleast_1d(self.vi),
                             "measure": self.measure})


_GROUP_ARGS = ("mean_t", "sd_t", "n_t", "mean_c", "sd_c", "n_c")


def _as_groups(values, allow_missing_sd):
    """Broadcast the six group summaries to float arrays and validate them."""
    arrays = {name: _checks.as_float_array(val, name) for name, val in zip(_GROUP_ARGS, values, strict=True)}
    try:
        arrays = dict(zip(arrays, np.broadcast_arrays(*arrays.values()), strict=True))
    except ValueError:
        _checks.check_same_length(**arrays)
    for name, arr in arrays.items():
        if name.startswith("sd"):
            _check_sd(arr, name, allow_missing_sd)
        else:
            _checks.check_finite(arr, name)
    for name in ("n_t", "n_c"):
        _checks.check_positive(arrays[name], name)
    return arrays


def _check_sd(arr, name, allow_missing):
    """SDs must be >= 0; missing (NaN) ones only with ``allow_missing_sd=True``."""
    missing = np.isnan(arr)
    if missing.any() and not allow_missing:
        i = int(np.flatnonzero(missing)[0])
        raise EvidenceError(
            f"{name} is missing at position {i}; impute it, or pass allow_missing_sd=True "
            "to get vi = NaN for those rows."
        )
    _checks.check_finite(arr[~missing], name)
    _checks.check_positive(np.where(missing, 0.0, arr), name, strict=False)


def _result(yi, vi, measure, inputs):
    """Scalars out when every input was a scalar, arrays otherwise."""
    if all(np.ndim(x) == 0 for x in inputs):
        return EffectSizes(float(yi[0]), float(vi[0]), measure)
    return EffectSizes(yi, vi, measure)


def log_response_ratio(mean_t, sd_t, n_t, mean_c, sd_c, n_c, bias_corrected=False,
                       allow_missing_sd=False):
    """Log response ratio ln(mean_t / mean_c) and its sampling variance.

    Parameters
    ----------
    mean_t, sd_t, n_t : array-like or scalar
        Mean, standard deviation and sample size of the treatment group.
    mean_c, sd_c, n_c : array-like or scalar
        The same for the control group. Means must be > 0, SDs >= 0, n >= 1.
    bias_corrected : bool
        Apply the Lajeunesse (2015) second-order bias corrections to yi and vi.
    allow_missing_sd : bool
        If True, a missing (NaN) SD gives vi = NaN (and, with ``bias_corrected``, yi = NaN)
        instead of an error.

    Returns
    -------
    EffectSizes
        ``measure`` is "ROM" or "ROM_BC".

    Notes
    -----
    Without correction this is metafor's ``escalc(measure="ROM")`` with its default
    ``vtype="LS"`` (Hedges et al. 1999):
    vi = sd_t^2 / (n_t mean_t^2) + sd_c^2 / (n_c mean_c^2).
    metafor 3.8-1 has no bias-corrected ROM; with ``bias_corrected=True`` this uses
    Lajeunesse (2015), eqs. for lnRR^Delta and var(lnRR^Delta):
    yi += (sd_t^2 / (n_t mean_t^2) - sd_c^2 / (n_c mean_c^2)) / 2 and
    vi += (sd_t^4 / (n_t^2 mean_t^4) + sd_c^4 / (n_c^2 mean_c^4)) / 2.

    References
    ----------
    Hedges, L. V., Gurevitch, J., & Curtis, P. S. (1999). The meta-analysis of response
    ratios in experimental ecology. Ecology, 80, 1150-1156.
    Lajeunesse, M. J. (2015). Bias and correction for the log response ratio in ecological
    meta-analysis. Ecology, 96, 2056-2063.
    """
    inputs = (mean_t, sd_t, n_t, mean_c, sd_c, n_c)
    g = _as_groups(inputs, allow_missing_sd)
    for name in ("mean_t", "mean_c"):
        bad = g[name] <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise EvidenceError(
                f"{name} must be > 0 for a log response ratio; position {i} is {g[name][i]!r}; "
                "use mean_difference() or standardized_mean_difference() for such data."
            )
    cv2_t = g["sd_t"] ** 2 / (g["n_t"] * g["mean_t"] ** 2)
    cv2_c = g["sd_c"] ** 2 / (g["n_c"] * g["mean_c"] ** 2)
    yi = np.log(g["mean_t"] / g["mean_c"])
    vi = cv2_t + cv2_c
    if bias_corrected:
        yi = yi + (cv2_t - cv2_c) / 2
        vi = vi + (cv2_t**2 + cv2_c**2) / 2
    return _result(yi, vi, "ROM_BC" if bias_corrected else "ROM", inputs)


def _pooled_sd(g):
    """Pooled within-group SD with n_t + n_c - 2 df."""
    df = g["n_t"] + g["n_c"] - 2
    return np.sqrt(((g["n_t"] - 1) * g["sd_t"] ** 2 + (g["n_c"] - 1) * g["sd_c"] ** 2) / df)


def _hedges_correction(df):
    """Exact small-sample factor J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2))."""
    return np.exp(special.gammaln(df / 2) - np.log(np.sqrt(df / 2)) - special.gammaln((df - 1) / 2))


def standardized_mean_difference(mean_t, sd_t, n_t, mean_c, sd_c, n_c, allow_missing_sd=False):
    """Hedges' g: the bias-corrected standardised mean difference and its variance.

    Parameters
    ----------
    mean_t, sd_t, n_t : array-like or scalar
        Mean, standard deviation and sample size of the treatment group.
    mean_c, sd_c, n_c : array-like or scalar
        The same for the control group; n_t + n_c must be at least 4.
    allow_missing_sd : bool
        If True, a missing SD gives yi = vi = NaN instead of an error.

    Returns
    -------
    EffectSizes
        ``measure`` is "SMD".

    Notes
    -----
    metafor's ``escalc(measure="SMD")`` with default ``vtype="LS"``: d = (mean_t - mean_c)
    / s_pooled, g = J(m) d with the exact correction J(m) = Gamma(m/2) / (sqrt(m/2)
    Gamma((m-1)/2)), m = n_t + n_c - 2, and vi = 1/n_t + 1/n_c + g^2 / (2 (n_t + n_c)).

    References
    ----------
    Hedges, L. V. (1981). Distribution theory for Glass's estimator of effect size and
    related estimators. Journal of Educational Statistics, 6, 107-128.
    """
    inputs = (mean_t, sd_t, n_t, mean_c, sd_c, n_c)
    g = _as_groups(inputs, allow_missing_sd)
    df = g["n_t"] + g["n_c"] - 2
    small = df <= 1
    if small.any():
        i = int(np.flatnonzero(small)[0])
        raise EvidenceError(
            f"standardized_mean_difference needs n_t + n_c >= 4; position {i} has "
            f"{g['n_t'][i]:g} + {g['n_c'][i]:g}."
        )
    yi = _hedges_correction(df) * (g["mean_t"] - g["mean_c"]) / _pooled_sd(g)
    vi = 1 / g["n_t"] + 1 / g["n_c"] + yi**2 / (2 * (g["n_t"] + g["n_c"]))
    return _result(yi, vi, "SMD", inputs)


def mean_difference(mean_t, sd_t, n_t, mean_c, sd_c, n_c, allow_missing_sd=False):
    """Raw mean difference mean_t - mean_c and its sampling variance.

    Parameters
    ----------
    mean_t, sd_t, n_t : array-like or scalar
        Mean, standard deviation and sample size of the treatment group.
    mean_c, sd_c, n_c : array-like or scalar
        The same for the control group.
    allow_missing_sd : bool
        If True, a missing SD gives vi = NaN instead of an error.

    Returns
    -------
    EffectSizes
        ``measure`` is "MD".

    Notes
    -----
    metafor's ``escalc(measure="MD")`` with its default ``vtype="LS"`` (unequal variances):
    vi = sd_t^2 / n_t + sd_c^2 / n_c.

    References
    ----------
    Borenstein, M. (2009). Effect sizes for continuous data. In The Handbook of Research
    Synthesis and Meta-Analysis (2nd ed., pp. 221-235).
    """
    inputs = (mean_t, sd_t, n_t, mean_c, sd_c, n_c)
    g = _as_groups(inputs, allow_missing_sd)
    yi = g["mean_t"] - g["mean_c"]
    vi = g["sd_t"] ** 2 / g["n_t"] + g["sd_c"] ** 2 / g["n_c"]
    return _result(yi, vi, "MD", inputs)


def _unary(values, name, fn):
    """Apply ``fn`` to validated finite values; scalar in, float out."""
    arr = _checks.check_finite(_checks.as_float_array(values, name), name)
    out = fn(arr)
    return float(out[0]) if np.ndim(values) == 0 else out


def sd_from_se(se, n):
    """Standard deviation from a standard error of the mean: sd = se sqrt(n).

    Parameters
    ----------
    se : array-like or scalar
        Standard errors (>= 0).
    n : array-like or scalar
        Sample sizes (>= 1).

    Returns
    -------
    float or numpy.ndarray
    """
    se_arr = _checks.check_positive(_checks.as_float_array(se, "se"), "se", strict=False)
    n_arr = _checks.check_positive(_checks.as_float_array(n, "n"), "n")
    if len(se_arr) != len(n_arr) and 1 not in (len(se_arr), len(n_arr)):
        _checks.check_same_length(se=se_arr, n=n_arr)
    out = se_arr * np.sqrt(n_arr)
    return float(out[0]) if np.ndim(se) == 0 and np.ndim(n) == 0 else out


def se_from_ci(low, high, alpha=0.05, log=False):
    """Standard error from a normal-theory (1 - alpha) confidence interval.

    Parameters
    ----------
    low, high : array-like or scalar
        Interval bounds, low <= high.
    alpha : float
        1 - confidence level of the reported interval.
    log : bool
        True for ratio measures reported on the ratio scale (e.g. a response ratio or
        odds ratio): the bounds must be > 0 and the SE is on the log scale.

    Returns
    -------
    float or numpy.ndarray
        (high - low) / (2 z_{1 - alpha/2}), after taking logs when ``log=True``.
    """
    alpha = _checks.check_alpha(alpha)
    lo = _checks.check_finite(_checks.as_float_array(low, "low"), "low")
    hi = _checks.check_finite(_checks.as_float_array(high, "high"), "high")
    _checks.check_same_length(low=lo, high=hi)
    if log:
        lo, hi = np.log(_checks.check_positive(lo, "low")), np.log(_checks.check_positive(hi, "high"))
    bad = hi < lo
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise EvidenceError(f"high must be >= low; position {i} has low={lo[i]!r}, high={hi[i]!r}.")
    out = (hi - lo) / (2 * _dist.norm_isf(alpha / 2))
    return float(out[0]) if np.ndim(low) == 0 else out


def vi_from_ci(low, high, alpha=0.05, log=False):
    """Sampling variance from a confidence interval: the square of :func:`se_from_ci`.

    Parameters
    ----------
    low, high : array-like or scalar
        Interval bounds.
    alpha : float
        1 - confidence level of the reported interval.
    log : bool
        True when the bounds are on the ratio scale of a ratio measure (variance on the
        log scale).

    Returns
    -------
    float or numpy.ndarray
    """
    return se_from_ci(low, high, alpha, log) ** 2


def lnrr_from_percent_change(pct):
    """Log response ratio from a percent change: ln(1 + pct / 100).

    Parameters
    ----------
    pct : array-like or scalar
        Percent change of treatment relative to control, > -100.

    Returns
    -------
    float or numpy.ndarray
    """
    def convert(arr):
        bad = arr <= -100
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise EvidenceError(f"pct must be > -100; position {i} is {float(arr[i])!r}.")
        return np.log1p(arr / 100)

    return _unary(pct, "pct", convert)


def percent_change_from_lnrr(yi):
    """Percent change from a log response ratio: 100 (exp(yi) - 1).

    Parameters
    ----------
    yi : array-like or scalar
        Log response ratios.

    Returns
    -------
    float or numpy.ndarray
    """
    return _unary(yi, "yi", lambda arr: 100 * np.expm1(arr))
