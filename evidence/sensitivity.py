"""Sensitivity analyses of a pooled estimate: leave-one-out, cumulative meta-analysis and
influence diagnostics, as metafor's ``leave1out``, ``cumul`` and ``influence``."""

import numpy as np
import pandas as pd

from . import _checks, _dist
from .errors import EvidenceError
from .pooling import pool

COLUMNS = ("estimate", "se", "statistic", "pvalue", "ci_low", "ci_high", "q", "q_pvalue",
           "tau2", "i2", "h2")


def _refit(y, v, keep, method, test, alpha):
    """``pool`` on the studies in ``keep``, or None where metafor's refit fails too."""
    try:
        return pool(y[keep], v[keep], method=method, test=test, alpha=alpha)
    except EvidenceError:  # includes ConvergenceError; metafor reports the row as NA
        return None


def _row(fit):
    return [getattr(fit, name) for name in COLUMNS] if fit else [np.nan] * len(COLUMNS)


def _check_inputs(yi, vi, method, test, alpha, what):
    """Validate and check that ``pool`` accepts the full data (so bad options fail early)."""
    y, v = _checks.as_effects(yi, vi)
    if len(y) < 2:
        raise EvidenceError(f"{what} needs at least 2 studies, got k={len(y)}.")
    full = pool(y, v, method=method, test=test, alpha=alpha)
    return y, v, full


def _leave_out_fits(y, v, method, test, alpha):
    """The k fits that each omit one study."""
    keep = np.ones(len(y), dtype=bool)
    fits = []
    for i in range(len(y)):
        keep[i] = False
        fits.append(_refit(y, v, keep, method, test, alpha))
        keep[i] = True
    return fits


def leave_one_out(yi, vi, method="REML", test="z", alpha=0.05):
    """Pool the studies k times, leaving out each study in turn.

    Parameters
    ----------
    yi : array-like of shape (k,)
        Observed effect sizes, k >= 2.
    vi : array-like of shape (k,)
        Sampling variances, all > 0.
    method : str
        tau^2 estimator (see :func:`evidence.pool`).
    test : {"z", "knha"}
        Test of each pooled estimate.
    alpha : float
        1 - confidence level.

    Returns
    -------
    pandas.DataFrame
        One row per omitted study in input order (index ``omitted``: its position), with
        columns estimate, se, statistic, pvalue, ci_low, ci_high, q, q_pvalue, tau2, i2, h2.

    Notes
    -----
    As metafor 3.8-1 ``leave1out(rma(yi, vi, method, test))``: every row is an independent
    :func:`evidence.pool` fit on k - 1 studies; a fit that is not possible (e.g. the
    Knapp-Hartung test on one remaining study) gives a row of NaN, as metafor's NA.
    For ``method="FE"`` tau2 is 0.

    References
    ----------
    Viechtbauer, W., & Cheung, M. W.-L. (2010). Outlier and influence diagnostics for
    meta-analysis. Research Synthesis Methods, 1, 112-125.
    """
    y, v, _ = _check_inputs(yi, vi, method, test, alpha, "leave_one_out")
    rows = [_row(fit) for fit in _leave_out_fits(y, v, method, test, alpha)]
    return pd.DataFrame(rows, columns=COLUMNS, index=pd.RangeIndex(len(y), name="omitted"))


def cumulative(yi, vi, method="REML", order=None, test="z", alpha=0.05):
    """Cumulative meta-analysis: pool the first 1, 2, ..., k studies.

    Parameters
    ----------
    yi, vi, method, test, alpha
        As for :func:`leave_one_out`.
    order : array-like of shape (k,), optional
        Sort key (e.g. publication year): studies are added in ascending order of it,
        ties in input order. Default: input order.

    Returns
    -------
    pandas.DataFrame
        One row per step (index ``added``: input position of the study added at that
        step), with the columns of :func:`leave_one_out`.

    Notes
    -----
    As metafor 3.8-1 ``cumul(rma(yi, vi, method, test), order = order)``, where ``order``
    is likewise a variable to sort by (a stable ascending sort; missing values last).
    Step j is an independent :func:`evidence.pool` fit on the first j studies (tau^2 = 0
    at j = 1); a step that cannot be fitted (``test="knha"`` at j = 1) is a row of NaN.

    References
    ----------
    Lau, J., Antman, E. M., Jimenez-Silva, J., Kupelnick, B., Mosteller, F., & Chalmers,
    T. C. (1992). Cumulative meta-analysis of therapeutic trials for myocardial infarction.
    New England Journal of Medicine, 327, 248-254.
    """
    y, v, _ = _check_inputs(yi, vi, method, test, alpha, "cumulative")
    perm = _sort_order(order, len(y))
    ys, vs = y[perm], v[perm]
    rows = [_row(_refit(ys, vs, slice(0, j), method, test, alpha)) for j in range(1, len(y) + 1)]
    return pd.DataFrame(rows, columns=COLUMNS, index=pd.Index(perm, name="added"))


def _sort_order(order, k):
    """Stable ascending permutation by the sort key ``order`` (identity when None)."""
    if order is None:
        return np.arange(k)
    key = np.asarray(order)
    if key.ndim != 1 or len(key) != k:
        raise EvidenceError(
            f"order must have one value per study; got shape {key.shape} for k={k}."
        )
    try:
        return np.argsort(key, kind="stable")
    except TypeError as exc:
        raise EvidenceError(f"order values cannot be sorted ({exc}); use one type.") from None


def influence(yi, vi, method="REML"):
    """Case-deletion influence diagnostics for a random-effects model.

    Parameters
    ----------
    yi, vi, method
        As for :func:`leave_one_out`; the z test is used.

    Returns
    -------
    pandas.DataFrame
        One row per study in input order with columns rstudent, dffits, cook_d, cov_r,
        tau2_del, qe_del, hat, weight (percent), dfbetas and inf (bool: influential).

    Notes
    -----
    As metafor 3.8-1 ``influence(rma(yi, vi, method))`` for an intercept-only model. With
    the full fit (mu, its variance vb, tau^2, w = 1 / (vi + tau^2), hat = w / sum(w)) and the
    fit without study i (mu_(i), vb_(i), tau^2_(i), Q_(i)):

    * rstudent = (yi - mu_(i)) / sqrt(vi + vb_(i) + tau^2_(i)),
    * dffits = (mu - mu_(i)) / sqrt(hat_i (tau^2_(i) + vi)),
    * cook_d = (mu - mu_(i))^2 / vb, cov_r = vb_(i) / vb,
    * dfbetas = (mu - mu_(i)) / sqrt(1 / sum(1 / (v + tau^2_(i)))) (all k studies),
    * inf when |dffits| > 3 sqrt(1 / (k - 1)), or P(chi2_1 <= cook_d) > 0.5, or
      hat > 3 / k, or |dfbetas| > 1.

    References
    ----------
    Viechtbauer, W., & Cheung, M. W.-L. (2010). Outlier and influence diagnostics for
    meta-analysis. Research Synthesis Methods, 1, 112-125.
    """
    y, v, full = _check_inputs(yi, vi, method, "z", 0.05, "influence")
    dele = _deletion_table(_leave_out_fits(y, v, method, "z", 0.05))
    w = 1 / (v + full.tau2)
    hat = w / w.sum()
    vb = full.se**2
    shift = full.estimate - dele["estimate"]
    resid = y - dele["estimate"]
    resid[np.abs(resid) < 100 * np.finfo(float).eps] = 0.0  # as metafor
    out = pd.DataFrame({
        "rstudent": resid / np.sqrt(v + dele["vb"] + dele["tau2"]),
        "dffits": shift / np.sqrt(hat * (dele["tau2"] + v)),
        "cook_d": shift**2 / vb,
        "cov_r": dele["vb"] / vb,
        "tau2_del": dele["tau2"],
        "qe_del": dele["q"],
        "hat": hat,
        "weight": 100 * hat,
        "dfbetas": shift / np.sqrt(1 / np.sum(1 / (v[None, :] + dele["tau2"][:, None]), axis=1)),
    })
    out["inf"] = _influential(out, len(y))
    return out


def _deletion_table(fits):
    """Arrays of estimate, vb, tau2 and q of the leave-one-out fits (NaN where none)."""
    cols = {"estimate": [], "vb": [], "tau2": [], "q": []}
    for fit in fits:
        cols["estimate"].append(fit.estimate if fit else np.nan)
        cols["vb"].append(fit.se**2 if fit else np.nan)
        cols["tau2"].append(fit.tau2 if fit else np.nan)
        cols["q"].append(fit.q if fit else np.nan)
    return {name: np.array(values) for name, values in cols.items()}


def _influential(table, k):
    """metafor's rule of thumb for flagging influential studies (NaN never flags)."""
    with np.errstate(invalid="ignore"):
        flag = ((np.abs(table["dffits"]) > 3 * np.sqrt(1 / (k - 1)))
                | (_dist.chi2_cdf(table["cook_d"], 1) > 0.5)
                | (table["hat"] > 3 / k)
                | (np.abs(table["dfbetas"]) > 1))
    return flag.fillna(False).astype(bool)
