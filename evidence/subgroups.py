"""Subgroup analysis with a test of differences between groups."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import _checks, _dist
from .errors import EvidenceError
from .pooling import pool
from .regression import meta_regression

_COLUMNS = ["group", "k", "estimate", "se", "ci_low", "ci_high", "pi_low", "pi_high", "tau2",
            "i2", "q", "q_pvalue"]


@dataclass(frozen=True)
class SubgroupResult:
    """Result of :func:`subgroups`: a per-group ``table`` and the between-group test.

    ``q_between`` is chi-square with ``q_between_df`` df (test "z"), or for
    ``tau2="common"`` with test "knha" an F statistic with (``q_between_df``, k - G) df.
    """

    table: pd.DataFrame
    q_between: float
    q_between_df: int
    q_between_pvalue: float
    tau2: str
    method: str
    test: str
    alpha: float

    def to_frame(self):
        """The per-group table (a copy)."""
        return self.table.copy()


def _as_labels(groups, k):
    """Group labels as a Series of length k without missing values."""
    labels = pd.Series(np.asarray(groups, dtype=object) if not isinstance(groups, pd.Series)
                       else groups.to_numpy(dtype=object))
    if len(labels) != k:
        raise EvidenceError(f"groups has {len(labels)} labels but yi has {k}; pass one per study.")
    missing = labels.isna().to_numpy()
    if missing.any():
        raise EvidenceError(
            f"groups is missing at position {int(np.flatnonzero(missing)[0])}; label every study."
        )
    if labels.nunique() < 2:
        raise EvidenceError("groups has a single level; subgroups need at least two.")
    return labels


def subgroups(yi, vi, groups, method="REML", tau2="separate", test="z", alpha=0.05):
    """Pool effects within subgroups and test whether the subgroups differ.

    Parameters
    ----------
    yi, vi : array-like of shape (k,)
        Effect sizes and sampling variances.
    groups : array-like of shape (k,)
        Group label of each study (sorted to order the table, as R's ``factor``).
    method : str
        tau^2 estimator, as in :func:`evidence.pool`.
    tau2 : {"separate", "common"}
        A separate tau^2 per group, or one tau^2 shared by all groups.
    test : {"z", "knha"}
        As in :func:`evidence.pool`.
    alpha : float
        1 - confidence level.

    Returns
    -------
    SubgroupResult

    Notes
    -----
    ``tau2="separate"``: each group is pooled on its own with :func:`evidence.pool` (a
    group with k = 1 gets tau^2 = 0), and the between-group statistic is the Q test of a
    fixed-effect model fitted to the group estimates with their standard errors, i.e.
    metafor's ``rma(estimates, sei=se, method="FE")$QE`` with G - 1 df.

    ``tau2="common"``: one mixed-effects meta-regression on the group factor, metafor's
    ``rma(yi, vi, mods = ~ factor(group))``; the between-group test is its QM (chi-square
    with G - 1 df, or F with (G - 1, k - G) df for "knha"). The table then holds the
    model's prediction for each group (with the common tau^2 and the model's residual I^2),
    while ``q`` and ``q_pvalue`` remain the within-group fixed-effect Q test.

    References
    ----------
    Borenstein, M., Hedges, L. V., Higgins, J. P. T., & Rothstein, H. R. (2009).
    Introduction to Meta-Analysis, chapter 19. Wiley.
    """
    y, v = _checks.as_effects(yi, vi)
    labels = _as_labels(groups, len(y))
    mode = _checks.check_choice(tau2, ("separate", "common"), "tau2")
    alpha = _checks.check_alpha(alpha)
    levels = sorted(labels.unique())
    if mode == "common":
        return _common(y, v, labels, levels, method, test, alpha)
    fits = _pool_each(y, v, labels, levels, method, test, alpha)
    table = pd.DataFrame([_row(g, fit) for g, fit in zip(levels, fits, strict=True)], columns=_COLUMNS)
    q, df, pvalue = _between_q(table["estimate"].to_numpy(), table["se"].to_numpy())
    return SubgroupResult(table, q, df, pvalue, mode, fits[0].method, fits[0].test, alpha)


def _pool_each(y, v, labels, levels, method, test, alpha):
    """pool() within each group, in the order of ``levels``."""
    masks = [(labels == g).to_numpy() for g in levels]
    return [pool(y[m], v[m], method, test, alpha) for m in masks]


def _row(group, fit):
    """One table row from a group's PoolResult."""
    return [group, fit.k, fit.estimate, fit.se, fit.ci_low, fit.ci_high, fit.pi_low,
            fit.pi_high, fit.tau2, fit.i2, fit.q, fit.q_pvalue]


def _between_q(estimates, se):
    """Fixed-effect Q of the group estimates: Wald test that they are all equal."""
    w = 1 / se**2
    q = float(np.sum(w * (estimates - np.sum(w * estimates) / w.sum()) ** 2))
    df = len(estimates) - 1
    return q, df, float(_dist.chi2_sf(q, df))


def _common(y, v, labels, levels, method, test, alpha):
    """Subgroups as one meta-regression on the group factor (common tau^2)."""
    fits = _pool_each(y, v, labels, levels, "FE", "z", alpha)  # only for within-group Q
    codes = pd.Categorical(labels, categories=levels)
    reg = meta_regression(y, v, pd.DataFrame({"group": codes}), method, test, alpha)
    pred = reg.predict(pd.DataFrame({"group": pd.Categorical(levels, categories=levels)}))
    table = pd.DataFrame({
        "group": levels, "k": [f.k for f in fits], "estimate": pred["pred"], "se": pred["se"],
        "ci_low": pred["ci_low"], "ci_high": pred["ci_high"], "pi_low": pred["pi_low"],
        "pi_high": pred["pi_high"], "tau2": reg.tau2, "i2": reg.i2,
        "q": [f.q for f in fits], "q_pvalue": [f.q_pvalue for f in fits],
    }, columns=_COLUMNS)
    return SubgroupResult(table, reg.qm, reg.qm_df, reg.qm_pvalue, "common", reg.method,
                          reg.test, alpha)
