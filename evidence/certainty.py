"""GRADE-like certainty of a body of evidence, computed only from the evidence rows given.

One row per piece of evidence (a study's link to a claim, or an effect size); the grade
starts from the kind of evidence and is rated down for inconsistency, imprecision,
indirectness and publication bias, each with a written reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import EvidenceError

GRADES = ("Very low", "Low", "Moderate", "High")  # index + 1 = level

#: evidence kind -> starting level (4 High ... 1 Very low)
START_LEVELS = {"experimental": 4, "synthesis": 3, "observational": 2, "model": 2, "expert": 1}

#: direction words -> sign: +1 for, -1 against, 0 neither
SIGNS = {"increase": 1, "supports": 1, "decrease": -1, "contradicts": -1,
         "no_change": 0, "mixed": 0, "qualifies": 0, "not_reported": 0}

FEW_STUDIES = 3        # fewer signed studies than this: imprecise
I2_SERIOUS = 50.0      # I^2 (%) at or above this: inconsistent
MINORITY_SERIOUS = 1 / 3  # share of the minority direction: very serious inconsistency
SIGN_TEST_ALPHA = 0.05  # without effect sizes: a direction needs a sign test below this
EGGER_MIN_K = 10       # Egger's test only with at least this many effects (Sterne et al. 2011)
EGGER_ALPHA = 0.10
MAJORITY_OFF_SCOPE = 0.5  # share of studies outside the scope above which: indirect
SCOPE_FACETS = {"biome": "biome", "ecosystem": "ecosystem", "depth_class": "depth_class",
                "mechanism": "mechanisms"}
#: a scope value -> other study values that are still direct evidence for it
SCOPE_MATCHES = {"high_latitude": {"arctic", "boreal"}, "topsoil": {"whole_profile"},
                 "subsoil": {"whole_profile"}}


@dataclass(frozen=True)
class Reason:
    """One step of the grading: a domain, how many levels it moves the grade, and why."""

    domain: str
    levels: int
    text: str


@dataclass(frozen=True)
class Certainty:
    """Result of :func:`grade_certainty`.

    ``level`` is 1 (Very low) to 4 (High); ``reasons`` lists the start and every domain,
    including those that did not move the grade (``levels == 0``).
    """

    grade: str
    level: int
    start: str
    n_studies: int
    n_for: int
    n_against: int
    reasons: tuple[Reason, ...]

    def to_frame(self):
        """One row per reason: domain, levels (negative = rated down) and text."""
        return pd.DataFrame([vars(r) for r in self.reasons], columns=["domain", "levels", "text"])

    def explain(self):
        """The grade and its reasons as one short paragraph."""
        steps = "; ".join(r.text for r in self.reasons if r.levels or r.domain == "start")
        return f"{self.grade} certainty ({steps})."


def grade_certainty(evidence, scope=None, pooled=None):
    """Grade the certainty of a body of evidence, GRADE-like.

    Parameters
    ----------
    evidence : pandas.DataFrame
        One row per piece of evidence. Columns used: ``evidence_kind`` (experimental,
        observational, synthesis, model, expert; missing = unclassified), ``direction``
        (increase / decrease / no_change / mixed / not_reported, or a claim relation
        supports / contradicts / qualifies), ``study_id`` (rows of one study count once;
        default: each row is a study), optional ``yi`` and ``vi`` (effect sizes) and the
        scope facets ``biome``, ``ecosystem``, ``depth_class`` and ``mechanisms`` (a list).
    scope : dict, optional
        What the claim is about, e.g. ``{"biome": "boreal", "depth_class": "subsoil"}``;
        keys among biome, ecosystem, depth_class, mechanism. Missing or None: no
        indirectness rating.
    pooled : PoolResult, optional
        The pooled effect of the rows' effect sizes, if already computed; else they are
        pooled here (REML, or Paule-Mandel when REML does not converge).

    Returns
    -------
    Certainty

    Raises
    ------
    EvidenceError
        If ``evidence`` is empty or lacks a ``direction`` column.

    Notes
    -----
    Levels: 4 High, 3 Moderate, 2 Low, 1 Very low; never below 1. A study takes a side
    when its signed rows all agree (rows without a sign, e.g. qualifies or no_change, do
    not count); a study found on both sides counts for neither, as it votes ``mixed`` in
    :func:`evidence.synthesis.synthesize`.

    * Start: the best kind of evidence among studies that take a side (for or against;
      all studies when none does): experimental 4, synthesis (meta-analyses, reviews)
      3, observational 2, model 2, expert opinion and unclassified 1. As in GRADE, where
      non-randomised evidence starts Low, models and observations cannot start higher.
    * Inconsistency (at most 2 levels): studies on both sides rate down 1, or 2 when the
      minority side holds at least a third of the signed studies; I^2 >= 50 % among the
      effect sizes rates down 1.
    * Imprecision (at most 2): no study taking a side rates down 2; fewer than 3
      studies that take a side rates down 1; a
      pooled confidence interval that includes 0 rates down 1; without effect sizes, a
      two-sided sign test of the studies for against those against with p >= 0.05 rates
      down 1 (so direction-only evidence needs 6 concordant studies to escape it).
    * Indirectness (at most 2): for each scope facet, when more than half of the studies
      are outside it (a different value, or none recorded), rate down 1. A study matches
      when its value equals the scope, or is arctic or boreal for a high_latitude scope,
      or is whole_profile (which samples both) for a topsoil or subsoil scope.
    * Publication bias (1): Egger's regression test with p < 0.10, tested only with at
      least 10 effect sizes.

    No rating up (large effects, dose-response) is attempted.

    References
    ----------
    Guyatt, G. H. et al. (2011). GRADE guidelines. Journal of Clinical Epidemiology, 64.
    Sterne, J. A. C. et al. (2011). Recommendations for examining and interpreting funnel
    plot asymmetry in meta-analyses of randomised controlled trials. BMJ, 343, d4002.
    """
    studies = _per_study(_checked(evidence))
    start, start_reason = _start(studies)
    result = _pooled(evidence, pooled)
    reasons = [start_reason, _inconsistency(studies, result),
               _imprecision(studies, result), _indirectness(studies, scope),
               _publication_bias(evidence)]
    level = max(1, start + sum(r.levels for r in reasons[1:]))
    n_for, n_against = int((studies["sign"] > 0).sum()), int((studies["sign"] < 0).sum())
    return Certainty(GRADES[level - 1], level, GRADES[start - 1], len(studies), n_for,
                     n_against, tuple(reasons))


def _checked(evidence):
    if not isinstance(evidence, pd.DataFrame) or evidence.empty:
        raise EvidenceError("grade_certainty needs a non-empty DataFrame of evidence rows.")
    if "direction" not in evidence:
        raise EvidenceError("evidence must have a 'direction' column (increase/decrease/... "
                            "or supports/contradicts/qualifies).")
    return evidence


def _per_study(evidence):
    """One row per study: its kind, its side (see :func:`_side`) and facets."""
    frame = evidence.copy()
    if "study_id" not in frame:
        frame["study_id"] = np.arange(len(frame))
    frame["sign"] = [_sign(d, i) for i, d in enumerate(frame["direction"])]
    facets = [c for c in ("evidence_kind", *SCOPE_FACETS.values()) if c in frame]
    grouped = frame.groupby("study_id", sort=False)
    studies = grouped[facets].first() if facets else pd.DataFrame(index=grouped.size().index)
    studies["sign"] = grouped["sign"].agg(_side)
    return studies


def _side(signs):
    """+1 or -1 when a study's signed rows agree; 0 when they disagree or none is signed."""
    signed = set(signs) - {0}
    return signed.pop() if len(signed) == 1 else 0


def _sign(direction, position):
    if direction is None or (isinstance(direction, float) and np.isnan(direction)):
        return 0
    if direction not in SIGNS:
        raise EvidenceError(f"evidence direction at row {position} is {direction!r}; "
                            f"must be one of {list(SIGNS)}.")
    return SIGNS[direction]


def _start(studies):
    kinds = studies.get("evidence_kind", pd.Series(index=studies.index, dtype=object))
    sided = kinds[studies["sign"] != 0]
    pool_of = sided if len(sided) else kinds
    levels = pool_of.map(lambda k: START_LEVELS.get(k, 1))
    start = int(levels.max())
    best = pool_of[levels == start]
    # observations and models share a level: name every kind at it, not just the first
    named = " and ".join(sorted(set(best.dropna()))) or "unclassified"
    if best.isna().any() and best.notna().any():
        named += " and unclassified"
    text = (f"starts {GRADES[start - 1]}: best evidence is {named} "
            f"({len(best)} of {_studies(len(pool_of))}{' taking a side' if len(sided) else ''})")
    return start, Reason("start", start, text)


def _inconsistency(studies, result):
    n_for, n_against = (studies["sign"] > 0).sum(), (studies["sign"] < 0).sum()
    down, notes = 0, []
    if n_for and n_against:
        minority = min(n_for, n_against) / (n_for + n_against)
        down = 2 if minority >= MINORITY_SERIOUS else 1
        notes.append(f"{_studies(n_for)} for and {n_against} against")
    if result is not None and result.k > 1 and result.i2 >= I2_SERIOUS:
        down = max(down, 1)
        notes.append(f"I² = {result.i2:.0f}% among {result.k} effects")
    text = "; ".join(notes) or "directions agree" + ("" if result is None else " and I² < 50%")
    return Reason("inconsistency", -min(down, 2), text)


def _imprecision(studies, result):
    signed = int((studies["sign"] != 0).sum())
    notes = []
    if signed < FEW_STUDIES:
        notes.append(f"only {_studies(signed)} take{'s' if signed == 1 else ''} a side")
    if result is not None and result.ci_low <= 0 <= result.ci_high:
        notes.append(f"the pooled CI [{result.ci_low:.3g}, {result.ci_high:.3g}] includes 0")
    elif result is None and signed:
        p = _sign_test(studies["sign"])
        if p >= SIGN_TEST_ALPHA:
            notes.append(f"no effect sizes and the sign test does not establish a direction "
                         f"(p = {p:.2g})")
    down = len(notes)
    if signed == 0:  # nothing points either way: as imprecise as it gets
        notes, down = ["no study takes a side"] + notes[1:], 2
    if not notes:
        notes.append(f"{_studies(signed)} take a side; " + (
            "the pooled CI excludes 0" if result is not None else "sign test p < 0.05"))
    return Reason("imprecision", -min(down, 2), "; ".join(notes))


def _sign_test(signs):
    from .votes import vote_count

    votes = ["increase" if s > 0 else "decrease" for s in signs if s != 0]
    return vote_count(votes).pvalue


def _indirectness(studies, scope):
    wanted = {k: v for k, v in (scope or {}).items() if k in SCOPE_FACETS and _known(v)}
    if not wanted:
        return Reason("indirectness", 0, "no scope to compare with")
    failing = [f"{off}/{len(studies)} studies outside {facet} '{value}'"
               for facet, value in wanted.items()
               for off in [_off_scope(studies, SCOPE_FACETS[facet], value)]
               if off / len(studies) > MAJORITY_OFF_SCOPE]
    text = "; ".join(failing) or "most studies within the scope " + ", ".join(
        f"{k}={v}" for k, v in wanted.items())
    return Reason("indirectness", -min(len(failing), 2), text)


def _off_scope(studies, column, value):
    if column not in studies:
        return len(studies)
    accepted = {value} | SCOPE_MATCHES.get(value, set())
    if column == "mechanisms":
        return sum(not (isinstance(m, list | tuple) and accepted & set(m)) for m in studies[column])
    return int((~studies[column].isin(accepted)).sum())


def _publication_bias(evidence):
    y, v = _effects(evidence)
    if len(y) < EGGER_MIN_K:
        return Reason("publication bias", 0, f"not testable ({len(y)} effect sizes; "
                      f"Egger's test needs {EGGER_MIN_K})")
    from .bias import egger_test

    try:
        p = egger_test(y, v).pvalue
    except EvidenceError as exc:  # e.g. all variances equal: the test is undefined
        return Reason("publication bias", 0, f"not testable ({exc})")
    if p < EGGER_ALPHA:
        return Reason("publication bias", -1, f"funnel asymmetry (Egger p = {p:.3g})")
    return Reason("publication bias", 0, f"no funnel asymmetry (Egger p = {p:.3g})")


def _effects(evidence):
    if "yi" not in evidence or "vi" not in evidence:
        return np.empty(0), np.empty(0)
    y = pd.to_numeric(evidence["yi"], errors="coerce").to_numpy(float)
    v = pd.to_numeric(evidence["vi"], errors="coerce").to_numpy(float)
    ok = np.isfinite(y) & np.isfinite(v) & (v > 0)
    return y[ok], v[ok]


def _pooled(evidence, pooled):
    """The given pooled result, else a REML pool of the rows' effect sizes (None without)."""
    if pooled is not None:
        return pooled
    y, v = _effects(evidence)
    if not len(y):
        return None
    from .errors import ConvergenceError
    from .pooling import pool

    try:
        return pool(y, v)
    except ConvergenceError:  # REML can fail where the Paule-Mandel root still exists
        return pool(y, v, method="PM")


def _studies(n):
    return f"{n} stud{'y' if n == 1 else 'ies'}"


def _known(value):
    return value is not None and value == value and value != "not_reported"
