"""Vote counting for direction-only evidence: a sign test of increases against decreases."""

import numbers
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import _checks
from .errors import EvidenceError

DIRECTIONS = ("increase", "decrease", "no_change", "mixed", "not_reported")


@dataclass(frozen=True)
class VoteCountResult:
    """Result of :func:`vote_count`.

    Only increases and decreases enter the test (``n_tested`` of them); the other
    categories are counted and reported but ignored. ``proportion_increase`` is
    ``n_increase / n_tested`` with its Clopper-Pearson interval.
    """

    n_increase: int
    n_decrease: int
    n_no_change: int
    n_mixed: int
    n_not_reported: int
    n_total: int
    n_tested: int
    proportion_increase: float
    ci_low: float
    ci_high: float
    pvalue: float
    alpha: float

    def to_frame(self):
        """One-row DataFrame of all fields."""
        return pd.DataFrame([{name: getattr(self, name) for name in self.__dataclass_fields__}])


def _direction(value, position):
    """The direction word for one vote: a vocabulary string or the sign of a number."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in DIRECTIONS:
            return word
        raise EvidenceError(
            f"directions[{position}] is {value!r}; must be one of {list(DIRECTIONS)} "
            "or a signed number."
        )
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if np.isnan(value):
            raise EvidenceError(
                f"directions[{position}] is NaN; use 'not_reported' for a missing direction."
            )
        return "increase" if value > 0 else "decrease" if value < 0 else "no_change"
    raise EvidenceError(
        f"directions[{position}] is {value!r} of type {type(value).__name__}; "
        f"must be one of {list(DIRECTIONS)} or a signed number."
    )


def vote_count(directions, alpha=0.05):
    """Count directions of effect and test increases against decreases.

    Parameters
    ----------
    directions : iterable of str or numbers
        One vote per study: "increase", "decrease", "no_change", "mixed" or
        "not_reported" (case and surrounding spaces ignored), or a signed number such
        as an effect size (> 0 increase, < 0 decrease, 0 no change).
    alpha : float
        1 - confidence level of the interval for the proportion of increases.

    Returns
    -------
    VoteCountResult

    Raises
    ------
    EvidenceError
        For an unknown direction, NaN, or when no vote is an increase or a decrease.

    Notes
    -----
    The sign test: a two-sided exact binomial test of n_increase out of n_increase +
    n_decrease against p = 0.5 (``scipy.stats.binomtest``, which matches R's
    ``binom.test``: the p-value sums the probabilities of outcomes no more likely than
    the one observed). The interval is Clopper-Pearson (exact). "no_change", "mixed" and
    "not_reported" carry no sign and are excluded from the test. Vote counting ignores
    effect sizes and precision, so it is a last resort when only directions are reported;
    prefer :func:`evidence.pool` when effects and variances are available.

    References
    ----------
    Bushman, B. J., & Wang, M. C. (2009). Vote-counting procedures in meta-analysis. In
    The Handbook of Research Synthesis and Meta-Analysis (2nd ed., pp. 207-220).
    Clopper, C. J., & Pearson, E. S. (1934). The use of confidence or fiducial limits
    illustrated in the case of the binomial. Biometrika, 26, 404-413.
    """
    alpha = _checks.check_alpha(alpha)
    if isinstance(directions, (str, bytes)):
        raise EvidenceError("directions must be a sequence of votes, not a single string.")
    counts = Counter(_direction(value, i) for i, value in enumerate(directions))
    n_inc, n_dec = counts["increase"], counts["decrease"]
    n_tested = n_inc + n_dec
    if n_tested == 0:
        raise EvidenceError(
            f"vote_count needs at least one 'increase' or 'decrease'; got {dict(counts) or 'no votes'}."
        )
    # imported here: scipy.stats costs ~1 s, and evidence.synthesis (the explorer's evidence
    # map) imports this module without always counting votes
    from scipy.stats import binomtest

    test = binomtest(n_inc, n_tested, p=0.5)
    ci = test.proportion_ci(confidence_level=1 - alpha, method="exact")
    return VoteCountResult(
        n_increase=n_inc, n_decrease=n_dec, n_no_change=counts["no_change"],
        n_mixed=counts["mixed"], n_not_reported=counts["not_reported"],
        n_total=sum(counts.values()), n_tested=n_tested, proportion_increase=n_inc / n_tested,
        ci_low=float(ci.low), ci_high=float(ci.high), pvalue=float(test.pvalue), alpha=alpha,
    )
