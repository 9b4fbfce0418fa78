"""GRADE for this field: the certainty of a body of evidence, computed only from the rows given.

One row per piece of evidence (a study's link to a claim, or an effect size); the grade
starts from the kind of evidence and is rated down for risk of bias, inconsistency,
indirectness, imprecision and publication bias, each with a written reason. Some
reasons also cap the grade (one site, fewer than 3 effects, direction votes only: at
most Low) whatever the start. The rubric is tabulated in ``docs/synthesis.md`` and tested
case by case in ``tests/test_certainty_rubric.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import ConvergenceError, EvidenceError

GRADES = ("Very low", "Low", "Moderate", "High")  # index + 1 = level
LOW = 2

#: evidence kind -> starting level (4 High ... 1 Very low)
START_LEVELS = {"experimental": 4, "synthesis": 3, "observational": 2, "model": 2, "expert": 1}

#: direction words -> sign: +1 for, -1 against, 0 neither
SIGNS = {"increase": 1, "supports": 1, "decrease": -1, "contradicts": -1,
         "no_change": 0, "mixed": 0, "qualifies": 0, "not_reported": 0}

# risk of bias
RISK_SERIOUS = 0.5     # share of the weight (or of the studies) with a concern at or above: -1;
#                        the same share on effects with two or more concerns: -2
ASSUMED_WORD = "assum"  # a variance_note containing it ("assumed", "assumption") marks an assumed vi
# inconsistency
I2_SERIOUS = 50.0      # I^2 (%) at or above this: inconsistent
MINORITY_SERIOUS = 1 / 3  # share of the minority direction: very serious inconsistency
# imprecision
FEW_EFFECTS = 3        # fewer pooled effects than this: at most Low
FEW_SOURCES = 3        # fewer sources than this behind a pooled CI: -1
FEW_STUDIES = 3        # votes only: fewer signed studies than this: -1
SIGN_TEST_ALPHA = 0.05  # without effect sizes: a direction needs a sign test below this
# publication bias
EGGER_MIN_K = 10       # Egger's test only with at least this many effects or sites (Sterne et al. 2011)
EGGER_ALPHA = 0.10
# indirectness
MAJORITY_OFF_SCOPE = 0.5  # share of studies outside the scope above which: indirect
SCOPE_FACETS = {"biome": "biome", "ecosystem": "ecosystem", "depth_class": "depth_class",
                "mechanism": "mechanisms", "response": "response"}
#: a scope value -> other study values that are still direct evidence for it
SCOPE_MATCHES = {"high_latitude": {"arctic", "boreal"}, "topsoil": {"whole_profile"},
                 "subsoil": {"whole_profile"}}
DOMAINS = ("start", "risk of bias", "inconsistency", "indirectness", "imprecision",
           "publication bias")


@dataclass(frozen=True)
class Reason:
    """One step of the grading: a domain, how many levels it moves the grade, and why.

    ``cap`` is the highest level the domain allows (2 = Low), None when it sets none.
    """

    domain: str
    levels: int
    text: str
    cap: int | None = None


@dataclass(frozen=True)
class Certainty:
    """Result of :func:`grade_certainty`.

    ``level`` is 1 (Very low) to 4 (High); ``reasons`` lists the start and every domain
    (:data:`DOMAINS` order), including those that did not move the grade (``levels == 0``
    and no ``cap``).
    """

    grade: str
    level: int
    start: str
    n_studies: int
    n_for: int
    n_against: int
    reasons: tuple[Reason, ...]

    @property
    def cap(self):
        """The lowest cap any domain sets (4 = none)."""
        return min([r.cap for r in self.reasons if r.cap], default=len(GRADES))

    def to_frame(self):
        """One row per reason: domain, levels (negative = rated down), cap and text."""
        return pd.DataFrame([vars(r) for r in self.reasons],
                            columns=["domain", "levels", "cap", "text"])

    def reasons_line(self):
        """The start and every domain that rates down or caps, as one line:
        ``"starts High: …; risk of bias −1: …; imprecision, at most Low: …"``."""
        steps = [self.reasons[0].text]
        for r in self.reasons[1:]:
            if r.levels or r.cap:
                moves = f" −{-r.levels}" if r.levels else ""
                capped = f", at most {GRADES[r.cap - 1]}" if r.cap else ""
                steps.append(f"{r.domain}{moves}{capped}: {r.text}")
        if len(steps) == 1:
            steps.append("no domain rates down")
        return "; ".join(steps)

    def explain(self):
        """The grade and its reasons as one short paragraph."""
        return f"{self.grade} certainty ({self.reasons_line()})."


def grade_certainty(evidence, scope=None, pooled=None):
    """Grade the certainty of a body of evidence: GRADE, with rules for this field.

    Parameters
    ----------
    evidence : pandas.DataFrame
        One row per piece of evidence. Columns used: ``evidence_kind`` (experimental,
        observational, synthesis, model, expert; missing = unclassified), ``direction``
        (increase / decrease / no_change / mixed / not_reported, or a claim relation
        supports / contradicts / qualifies), ``study_id`` (a site; rows of one study count
        once; default: each row is a study), optional ``source_key`` (the paper), ``yi``
        and ``vi`` (effect sizes), ``variance_note``, ``quality_flag`` and the scope
        facets ``biome``, ``ecosystem``, ``depth_class``, ``response`` and ``mechanisms``
        (a list).
    scope : dict, optional
        What the question is about, e.g. ``{"biome": "boreal", "depth_class": "subsoil"}``;
        keys among biome, ecosystem, depth_class, mechanism, response. Missing or None:
        no indirectness rating.
    pooled : GroupFit or PoolResult, optional
        The pooled effect of the rows' effect sizes, if already computed
        (:func:`evidence.synthesis.fit_group`; a :class:`~evidence.PoolResult` is read as
        the independent model); else the rows with effect sizes are fitted here with the
        multilevel model (sites = ``study_id``, sources = ``source_key``), REML.

    Returns
    -------
    Certainty

    Raises
    ------
    EvidenceError
        If ``evidence`` is empty or lacks a ``direction`` column.

    Notes
    -----
    Levels: 4 High, 3 Moderate, 2 Low, 1 Very low. The grade is the start plus the
    levels of every domain, never below 1 and never above the lowest cap. A study takes
    a side when its signed rows all agree (rows without a sign, e.g. qualifies or
    no_change, do not count); a study found on both sides counts for neither, as it votes
    ``mixed`` in :func:`evidence.synthesis.synthesize`. "Weight" below is each pooled
    effect's share of the fitted model's weight (GLS weights V⁻¹1); without effect
    sizes, shares are of the studies taking a side (all studies when none does).

    * Start: the best kind of evidence among studies that take a side: experimental 4,
      synthesis (meta-analyses, reviews) 3, observational 2, model 2, expert opinion and
      unclassified 1. As in GRADE, where non-randomised evidence starts Low, models and
      observations cannot start higher.
    * Risk of bias (at most 2): a pooled effect has a concern for each of: its
      ``variance_note`` says the variance is assumed (:func:`assumed_variance`); its
      ``quality_flag`` is set and does not start with ``part of `` (a confounded contrast
      or a source's quality flag); its ``evidence_kind`` is model. Effects with a concern
      carrying at least half the weight rate down 1; effects with two or more concerns
      carrying at least half, 2.
    * Inconsistency (at most 2): studies on both sides rate down 1, or 2 when the
      minority side holds at least a third of the signed studies. With at least 2 sites:
      I² >= 50 % among the effects, or a prediction interval that crosses 0 while the CI
      does not, rates down 1 (not on top of the directions).
    * Indirectness (at most 2): for each scope facet, when more than half of the studies
      are outside it (a different value, or none recorded), rate down 1. A study matches
      when its value equals the scope, or is arctic or boreal for a high_latitude scope,
      or is whole_profile (which samples both) for a topsoil or subsoil scope.
    * Imprecision (at most 2, and caps): one site, fewer than 3 pooled effects, a pooled
      result without a CI (robust SE with one source), or no effect size at all (direction
      votes only) cap the grade at Low. With effect sizes: a CI that includes 0 rates
      down 1; fewer than 3 sources behind a multi-site CI rates down 1; effects of one site
      pooled as independent (model "independent", more effects than sites) rate down 1,
      as that CI is too narrow. With votes only: fewer than 3 studies taking a side rates
      down 1, a two-sided sign test with p >= 0.05 rates down 1, no study taking a side
      rates down 2.
    * Publication bias (1): Egger's regression test with p < 0.10. On the effects when
      each site has one effect, tested with at least 10 effects; when effects are nested
      in sites, on site means (one inverse-variance mean per site, variance 1 / sum w) with
      at least 10 sites, so that one site's many effects do not make a funnel.

    No rating up (large effects, dose-response) is attempted.

    References
    ----------
    Guyatt, G. H. et al. (2011). GRADE guidelines. Journal of Clinical Epidemiology, 64.
    Sterne, J. A. C. et al. (2011). Recommendations for examining and interpreting funnel
    plot asymmetry in meta-analyses of randomised controlled trials. BMJ, 343, d4002.
    """
    studies = _per_study(_checked(evidence))
    start, start_reason = _start(studies)
    fit = _fit(evidence, pooled)
    reasons = [start_reason, _risk_of_bias(evidence, studies, fit), _inconsistency(studies, fit),
               _indirectness(studies, scope), _imprecision(studies, fit),
               _publication_bias(evidence)]
    cap = min([r.cap for r in reasons if r.cap], default=len(GRADES))
    level = max(1, min(cap, start + sum(r.levels for r in reasons[1:])))
    n_for, n_against = int((studies["sign"] > 0).sum()), int((studies["sign"] < 0).sum())
    return Certainty(GRADES[level - 1], level, GRADES[start - 1], len(studies), n_for,
                     n_against, tuple(reasons))


def assumed_variance(rows):
    """True for rows with a usable variance whose ``variance_note`` says it is assumed.

    Parameters
    ----------
    rows : pandas.DataFrame

    Returns
    -------
    pandas.Series of bool
        Aligned with ``rows``: the note contains "assum" (as in "assumed", "assumption",
        the importers' word for a variance that is not data) and, when ``rows`` has a
        ``vi`` column, ``vi`` is finite and > 0 (a row without a variance cannot rest on
        an assumed one, whatever its note says). All False without a ``variance_note``
        column.
    """
    if "variance_note" not in rows:
        return pd.Series(False, index=rows.index)
    notes = rows["variance_note"]
    said = notes.notna() & notes.astype(str).str.lower().str.contains(ASSUMED_WORD, regex=False)
    if "vi" in rows:
        vi = pd.to_numeric(rows["vi"], errors="coerce")
        said &= np.isfinite(vi) & (vi > 0)
    return said


CONCERNS = ("assumed variance", "flagged contrast", "model output")


def concerns(rows):
    """Risk-of-bias concerns per row: a DataFrame of three bool columns (:data:`CONCERNS`).

    ``assumed variance`` (:func:`assumed_variance`), ``flagged contrast`` (a
    ``quality_flag`` not starting with ``part of ``) and ``model output``
    (``evidence_kind`` model).
    """
    return pd.DataFrame(_concern_matrix(rows), columns=list(CONCERNS), index=rows.index)


def _concern_matrix(rows):
    """:func:`concerns` as a (k, 3) bool array (numpy only where a column is absent)."""
    out = np.zeros((len(rows), len(CONCERNS)), dtype=bool)
    if "variance_note" in rows:
        out[:, 0] = assumed_variance(rows).to_numpy(bool)
    if "quality_flag" in rows:
        flags = rows["quality_flag"]
        text = flags.astype(str)
        out[:, 1] = (flags.notna() & (text.str.strip() != "")
                     & ~text.str.startswith("part of ")).to_numpy(bool)
    if "evidence_kind" in rows:
        out[:, 2] = rows["evidence_kind"].to_numpy(object) == "model"
    return out


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


# ---------------------------------------------------------------- the pooled fit


def _fit(evidence, pooled):
    """The group's fit as a GroupFit: given, converted from a PoolResult, or fitted here."""
    from .pooling import PoolResult
    from .synthesis import _poolable

    if pooled is None:
        has_effects = "yi" in evidence and "vi" in evidence and _poolable(evidence).any()
        return _own_fit(evidence) if has_effects else None
    if isinstance(pooled, PoolResult):
        return _from_pool(evidence, pooled)
    return pooled


def _own_fit(evidence):
    from .synthesis import fit_group

    try:
        return fit_group(evidence, "multilevel")
    except ConvergenceError:  # REML can fail where the independent Paule-Mandel root exists
        fit = fit_group(evidence, "independent", method="PM")
        return _replace(fit, notes=(*fit.notes, "the multilevel fit did not converge"))


def _from_pool(evidence, result):
    from .synthesis import GroupFit, _poolable, _units

    rows = evidence[_poolable(evidence)]
    units = _units(rows) if len(rows) else None
    n_sites, n_sources = (units.n_sites, units.n_sources) if units else (result.k, result.k)
    weights = result.weights / result.weights.sum() if len(result.weights) == len(rows) else None
    return GroupFit("independent", result.k, n_sites, n_sources, result.estimate, result.se,
                    result.ci_low, result.ci_high, result.pi_low, result.pi_high, result.tau2,
                    (np.nan,) * 3, result.i2, result.q_pvalue, np.nan, result.method,
                    result.test, (), weights, result)


def _replace(fit, **changes):
    from dataclasses import replace

    return replace(fit, **changes)


# ---------------------------------------------------------------- domains


def _risk_of_bias(evidence, studies, fit):
    if fit is not None and fit.weights is not None:
        from .synthesis import _poolable

        flags = _concern_matrix(evidence[_poolable(evidence)])
        weights, unit = fit.weights, "of the pooled weight"
    else:  # shares of the studies taking a side (all studies when none does)
        flags = _per_study_concerns(evidence, len(studies))
        sided = studies["sign"].to_numpy() != 0
        if sided.any():
            flags = flags[sided]
        weights = np.full(len(flags), 1 / len(flags))
        unit = "of the studies" + (" taking a side" if sided.any() else "")
    shares = weights @ flags
    count = flags.sum(axis=1)
    any_share, two_share = float(weights @ (count >= 1)), float(weights @ (count >= 2))
    named = [f"{name} {100 * share:.0f} %" for name, share in zip(CONCERNS, shares, strict=True)
             if share > 0]
    if not named:
        return Reason("risk of bias", 0, "no assumed variance, flagged contrast or model output")
    down = 2 if two_share >= RISK_SERIOUS else 1 if any_share >= RISK_SERIOUS else 0
    text = ", ".join(named) + f" {unit}"
    if down == 2:
        text += f"; {100 * two_share:.0f} % carries two or more of these"
    elif not down:
        text += f" (under {100 * RISK_SERIOUS:.0f} %: not serious)"
    return Reason("risk of bias", -down, text)


def _per_study_concerns(evidence, n_studies):
    """(n_studies, 3): whether any row of each study has each concern, in the study order
    of :func:`_per_study` (first appearance)."""
    ids = evidence["study_id"] if "study_id" in evidence else np.arange(len(evidence))
    codes = pd.factorize(ids, use_na_sentinel=True)[0]
    rows = _concern_matrix(evidence)
    keep = codes >= 0  # a row without a study_id is in no study (groupby drops it too)
    return np.column_stack([np.bincount(codes[keep], weights=rows[keep, j], minlength=n_studies) > 0
                            for j in range(len(CONCERNS))])


def _inconsistency(studies, fit):
    n_for, n_against = (studies["sign"] > 0).sum(), (studies["sign"] < 0).sum()
    down, notes = 0, []
    if n_for and n_against:
        minority = min(n_for, n_against) / (n_for + n_against)
        down = 2 if minority >= MINORITY_SERIOUS else 1
        notes.append(f"{_studies(n_for)} for and {n_against} against")
    spread = fit is not None and fit.k > 1 and fit.n_sites > 1
    if spread and fit.i2 >= I2_SERIOUS:
        down = max(down, 1)
        notes.append(f"I² = {fit.i2:.0f} % ({fit.model}) among {fit.k} effects")
    if spread and _crosses(fit.pi_low, fit.pi_high) and not _crosses(fit.ci_low, fit.ci_high):
        down = max(down, 1)
        notes.append(f"the prediction interval [{fit.pi_low:.3g}, {fit.pi_high:.3g}] includes 0")
    if not notes:
        notes.append("directions agree" + (" and I² < 50 %" if spread else ""))
    return Reason("inconsistency", -min(down, 2), "; ".join(notes))


def _crosses(low, high):
    return bool(np.isfinite(low) and np.isfinite(high) and low <= 0 <= high)


def _imprecision(studies, fit):
    if fit is None:
        return _votes_imprecision(studies)
    caps = []
    if fit.n_sites == 1:
        caps.append("one site")
    if fit.k < FEW_EFFECTS:
        caps.append(f"k = {fit.k} effect{'s' if fit.k > 1 else ''}")
    if not np.isfinite(fit.ci_low):
        caps.append("no CI (robust SE needs ≥ 2 sources)")
    notes = []
    if _crosses(fit.ci_low, fit.ci_high):
        notes.append(f"the pooled CI [{fit.ci_low:.3g}, {fit.ci_high:.3g}] includes 0")
    if fit.n_sites > 1 and fit.n_sources < FEW_SOURCES and np.isfinite(fit.ci_low):
        notes.append(f"the CI rests on {fit.n_sources} source{'s' if fit.n_sources > 1 else ''} "
                     f"(fewer than {FEW_SOURCES})")
    if fit.model == "independent" and fit.k > fit.n_sites:
        notes.append(f"the CI treats {fit.k} effects from {fit.n_sites} sites as independent "
                     "(too narrow)")
    down = min(len(notes), 2)
    if not notes and not caps:
        notes.append(f"{fit.k} effects from {fit.n_sites} sites in {fit.n_sources} sources; "
                     "the pooled CI excludes 0")
    return Reason("imprecision", -down, "; ".join(caps + notes), LOW if caps else None)


def _votes_imprecision(studies):
    signed = int((studies["sign"] != 0).sum())
    notes = []
    if signed < FEW_STUDIES:
        notes.append(f"only {_studies(signed)} take{'s' if signed == 1 else ''} a side")
    if signed:
        p = _sign_test(studies["sign"])
        if p >= SIGN_TEST_ALPHA:
            notes.append(f"the sign test does not establish a direction (p = {p:.2g})")
    down = len(notes)
    if signed == 0:  # nothing points either way: as imprecise as it gets
        notes, down = ["no study takes a side"], 2
    if not notes:
        notes.append(f"{_studies(signed)} take a side; sign test p < {SIGN_TEST_ALPHA:g}")
    return Reason("imprecision", -min(down, 2), "votes only, no effect size; " + "; ".join(notes),
                  LOW)


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
    from .synthesis import _poolable, _units

    if "yi" not in evidence or "vi" not in evidence:
        return Reason("publication bias", 0, "not testable (no effect sizes)")
    rows = evidence[_poolable(evidence)]
    if rows.empty:
        return Reason("publication bias", 0, "not testable (no effect sizes)")
    y = pd.to_numeric(rows["yi"]).to_numpy(float)
    v = pd.to_numeric(rows["vi"]).to_numpy(float)
    units = _units(rows)
    if units.n_sites == len(y):
        what, need = f"{len(y)} effects, one per site", "effects"
    else:  # one inverse-variance mean per site: a site's many effects are not a funnel
        w = np.bincount(units.site, weights=1 / v)
        y, v = np.bincount(units.site, weights=y / v) / w, 1 / w
        what, need = f"{len(y)} site means (effects nested in sites)", "sites"
    if len(y) < EGGER_MIN_K:
        return Reason("publication bias", 0, f"not testable ({what}; Egger's test needs "
                      f"{EGGER_MIN_K} {need})")
    from .bias import egger_test

    try:
        p = egger_test(y, v).pvalue
    except EvidenceError as exc:  # e.g. all variances equal: the test is undefined
        return Reason("publication bias", 0, f"not testable on {what} ({exc})")
    if p < EGGER_ALPHA:
        return Reason("publication bias", -1, f"funnel asymmetry (Egger p = {p:.3g} on {what})")
    return Reason("publication bias", 0, f"no funnel asymmetry (Egger p = {p:.3g} on {what})")


def _studies(n):
    return f"{n} stud{'y' if n == 1 else 'ies'}"


def _known(value):
    return value is not None and value == value and value != "not_reported"
