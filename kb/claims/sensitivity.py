"""How much a synthesis depends on its assumptions: the knowledge base's standard scenarios.

The statistics live in :func:`evidence.sensitivity.synthesis_sensitivity`. The evidence
layer knows nothing of SRDB; this module knows what the shipped data assume.

* The SRDB variance rule (:data:`kb.importers.srdb.VARIANCE_NOTE`) reads ``Rs_annual_err``
  as the SE of each arm's mean. If it is an SD of n replicates, the SE is SD/√n and the
  stored ``vi`` is n times too large. The scenarios "SRDB error is an SD, n = 3, 4, 6"
  divide ``vi`` by n, but only on effects whose ``variance_note`` states that rule
  (:data:`SRDB_RULE`). Claims may not import the importers layer, so the rule is
  recognised by its phrase, and ``tests/test_kb_sensitivity.py`` checks the phrase
  against the importer's note.
* Confounded SRDB contrasts (``quality_flag`` starting ``confounded:``) stay in a
  synthesis (:func:`kb.claims.graph.synthesis_rows`). One scenario drops them.
* Every quality-flagged contrast dropped: the confounded ones and those with SRDB
  Quality_flag codes. ``part of`` breakdowns never enter a synthesis.
* Leave one site out: in each group, each site (``study_id``) dropped in turn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evidence.errors import EvidenceError
from evidence.sensitivity import (
    drop_rows,
    leave_one_site_out,
    scale_variance,
    synthesis_sensitivity,
)

from ..errors import KBError
from ..records import is_part_of

#: replicates per arm under the "SRDB error is an SD" scenarios
SRDB_SD_N = (3, 4, 6)
#: the phrase of the SRDB variance note (kb.importers.srdb.VARIANCE_NOTE) that states the rule
SRDB_RULE = "treats Rs_annual_err as a standard error of each arm's mean"
CONFOUNDED = "confounded:"
LEAVE_ONE_SITE_OUT = "leave one site out"
CONFOUNDED_DROPPED = "confounded contrasts dropped"
FLAGGED_DROPPED = "flagged contrasts dropped"


def srdb_sd_name(n: int) -> str:
    """The name of the scenario that reads the SRDB error as an SD of ``n`` replicates."""
    return f"SRDB error is an SD, n = {n}"


def srdb_variance_rule(rows: pd.DataFrame) -> np.ndarray:
    """True for rows whose ``variance_note`` states the SRDB rule (contains :data:`SRDB_RULE`)."""
    if "variance_note" not in rows:
        return np.zeros(len(rows), dtype=bool)
    return np.array([isinstance(n, str) and SRDB_RULE in n for n in rows["variance_note"]],
                    dtype=bool)


def confounded(rows: pd.DataFrame) -> np.ndarray:
    """True for contrasts whose warming is confounded with another factor."""
    return np.array([isinstance(f, str) and f.startswith(CONFOUNDED) for f in _flags(rows)],
                    dtype=bool)


def flagged(rows: pd.DataFrame) -> np.ndarray:
    """True for rows with a ``quality_flag``, except ``part of`` breakdowns.

    This matches the "flagged contrast" of :func:`evidence.certainty.concerns`.
    """
    return np.array([isinstance(f, str) and f.strip() != "" and not is_part_of(f)
                     for f in _flags(rows)], dtype=bool)


def _flags(rows: pd.DataFrame):
    return rows["quality_flag"].tolist() if "quality_flag" in rows else [None] * len(rows)


#: families of the standard scenarios, by a short name (``soc-kb synth --scenarios``)
SCENARIO_FAMILIES = {
    "variance": [srdb_sd_name(n) for n in SRDB_SD_N],
    "contrasts": [CONFOUNDED_DROPPED, FLAGGED_DROPPED],
    "sites": [LEAVE_ONE_SITE_OUT],
}


def standard_scenarios(n_values=SRDB_SD_N) -> dict:
    """The knowledge base's standard scenarios, name -> scenario, in table order.

    Parameters
    ----------
    n_values : iterable of int
        Replicates per arm for the "SRDB error is an SD" scenarios, each an integer >= 2.

    Returns
    -------
    dict
        ``"SRDB error is an SD, n = <n>"`` for each n, ``"confounded contrasts dropped"``,
        ``"flagged contrasts dropped"`` and ``"leave one site out"``. All are plausible.
    """
    scenarios = {srdb_sd_name(n): scale_variance(
        1 / n, srdb_variance_rule,
        description=f"Rs_annual_err is an SD of {n} replicates per arm: SE = SD/√{n}, so the "
                    f"vi of effects with the SRDB variance note is divided by {n}; no other "
                    "effect changes") for n in _checked_n(n_values)}
    scenarios[CONFOUNDED_DROPPED] = drop_rows(
        confounded, description="contrasts whose warming is confounded with another factor "
                                "(quality_flag 'confounded: …') left out")
    scenarios[FLAGGED_DROPPED] = drop_rows(
        flagged, description="every contrast with a quality_flag left out (confounded ones and "
                             "SRDB Quality_flag codes); 'part of' breakdowns never enter a "
                             "synthesis")
    scenarios[LEAVE_ONE_SITE_OUT] = leave_one_site_out(
        description="each site (study) of the group dropped in turn; fragile only if dropping "
                    "one site changes the conclusion")
    return scenarios


def _checked_n(n_values) -> list[int]:
    values = list(n_values)
    bad = [n for n in values if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2]
    if bad or not values:
        raise KBError(f"SRDB replicates n: {bad[0] if bad else values!r:.40} is not allowed; "
                      "give whole numbers >= 2, e.g. (3, 4, 6)")
    return [int(n) for n in values]


def sensitivity_table(kb, response: str, by, *, scenarios=None, model=None, method=None,
                      test=None, alpha=None, scope=None, **filters):
    """The synthesis of ``response`` by ``by`` under the standard scenarios.

    Parameters
    ----------
    kb : KnowledgeBase
    response : str
        E.g. ``"soil_respiration"``. The rows are those of
        :func:`kb.claims.graph.synthesis_rows`.
    by : str or list of str
        Grouping columns, as for :func:`evidence.synthesize`.
    scenarios : list of str or dict, optional
        Names from :func:`standard_scenarios` (default: all of them, in order), or a dict
        of name -> scenario for :func:`evidence.sensitivity.synthesis_sensitivity`.
    model, method, test, alpha, scope
        Passed to :func:`evidence.synthesize` when given. Otherwise its defaults apply.
    **filters
        Study filters, as for ``kb.effects`` (e.g. ``biome="boreal"``).

    Returns
    -------
    evidence.sensitivity.SensitivityResult

    Raises
    ------
    KBError
        One line: an unknown scenario name, filters that match nothing, or anything the
        synthesis refuses.
    """
    from .graph import synthesis_rows

    chosen = _chosen(scenarios)
    rows = synthesis_rows(kb, response=response, **filters)
    if rows.empty:
        raise KBError(f"no effects or direction-only studies on {response!r} match; widen the "
                      "filters or choose another response")
    options = {k: v for k, v in (("model", model), ("method", method), ("test", test),
                                 ("alpha", alpha), ("scope", scope)) if v is not None}
    try:
        return synthesis_sensitivity(rows, by, chosen, response=response, **options)
    except EvidenceError as exc:
        raise KBError(str(exc)) from None


def _chosen(scenarios) -> dict:
    if isinstance(scenarios, dict):
        return scenarios
    standard = standard_scenarios()
    if scenarios is None:
        return standard
    names = [scenarios] if isinstance(scenarios, str) else list(scenarios)
    unknown = [n for n in names if n not in standard]
    if unknown or not names:
        raise KBError(f"scenario {unknown[0] if unknown else names!r:.60} is not one of "
                      f"{', '.join(repr(n) for n in standard)}")
    return {name: standard[name] for name in names}
