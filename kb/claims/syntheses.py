"""Saved syntheses run on the data of the moment: a claim's *evidence from data*.

A synthesis (:class:`kb.records.SynthesisRecord`) is a saved query — a response, the study
filters of ``KnowledgeBase.studies``, an optional group (one facet = one value) and the
model. Its result is never stored. :func:`run` takes the rows
:func:`kb.claims.graph.synthesis_rows` gives for the response and filters, pools them with
:func:`evidence.synthesize` and keeps the group's row, so a claim citing the synthesis
moves whenever the data under it change.

The rules that turn a result into evidence on a claim (docs/synthesis.md, "Claims backed
by syntheses"):

* **Sign of the data.** With a pooled CI: ``increase`` when it lies above 0, ``decrease``
  when below, ``none`` when it holds 0. Without one (effects without variances: votes
  only): the majority direction when the sign test's p is below
  :data:`evidence.certainty.SIGN_TEST_ALPHA`, else ``none``.
* **What the data say of the claim** (:func:`data_relation`). A link ``supports`` or
  ``contradicts`` carries ``expects``, the direction the claim's words predict for the
  response. The data *support* the claim when their sign is ``expects``, *contradict* it
  when it is the other direction, and are *inconclusive* when it is ``none``. A
  ``qualifies`` link never counts for or against. ``agrees`` says whether the data now
  bear out the relation the curator recorded.
* **Certainty** (:func:`overall`): each body of evidence has a level — the literature its
  GRADE level (:func:`kb.claims.graph.claim_certainty`), each synthesis linked
  ``supports``/``contradicts`` its row's ``certainty``. The claim's grade is the best
  level, one level lower (not below Very low) when bodies point opposite ways. It leans
  the way the best bodies lean.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from evidence.certainty import GRADES, SIGN_TEST_ALPHA

#: the group of a synthesis without ``group_by``: every row it selects
ALL = "all"
_GROUP = "synthesis_group"  # the constant column a synthesis of all rows is grouped by
SIDES = {"supports": "for", "contradicts": "against"}


@dataclass(frozen=True)
class SynthesisResult:
    """A saved synthesis run now: its group's row of :func:`evidence.synthesize`, the sign
    the data support and what the rows were. Missing numbers are None."""

    synthesis_id: str
    response: str
    group: str
    fit: str | None = None  # the row's model column: multilevel, single site, votes only, ...
    k_effects: int = 0
    n_sites: int | None = None
    n_sources: int | None = None
    n_studies: int = 0
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    percent_change: float | None = None
    percent_change_low: float | None = None
    percent_change_high: float | None = None
    n_increase: int = 0
    n_decrease: int = 0
    sign_test_pvalue: float | None = None
    certainty: str | None = None
    certainty_reasons: str | None = None
    sign: str = "none"  # increase, decrease or none
    basis: str = "no data"  # pooled CI, sign test or no data
    n_rows: int = 0
    rows_digest: str = ""  # changes whenever the rows under the result change
    problem: str | None = None  # why there is no result

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(self)])

    def attributes(self) -> dict:
        """The result as graph attributes: plain scalars, the missing ones left out."""
        return {k: v for k, v in asdict(self).items()
                if v is not None and k not in ("synthesis_id", "response")}

    def summary(self) -> str:
        """One line, e.g. ``+16.3 % [6.3, 27.2], 75 effects, 26 sites, 20 sources
        (multilevel); certainty Low; data: increase``."""
        return summary(asdict(self))


def summary(result: dict) -> str:
    """:meth:`SynthesisResult.summary` of a result given as a mapping (graph attributes)."""
    if result.get("problem"):
        return f"no result: {result['problem']}"
    if _number(result.get("ci_low")) is not None:
        if _number(result.get("percent_change_low")) is not None:
            number = (f"{result['percent_change']:+.1f} % [{result['percent_change_low']:.1f}, "
                      f"{result['percent_change_high']:.1f}]")
        else:
            number = f"{result['estimate']:+.3g} [{result['ci_low']:.3g}, {result['ci_high']:.3g}]"
        behind = [_count(result.get("k_effects", 0), "effect")] + [
            _count(result[k], w) for k, w in (("n_sites", "site"), ("n_sources", "source"))
            if result.get(k) is not None]
        fit = f" ({result['fit']})" if result.get("fit") else ""
        head = f"{number}, {', '.join(behind)}{fit}"
    else:
        p = _number(result.get("sign_test_pvalue"))
        test = f", sign test p = {p:.2g}" if p is not None else ""
        head = (f"votes only: {result.get('n_increase', 0)} up, {result.get('n_decrease', 0)} down "
                f"of {_count(result.get('n_studies', 0), 'study', 'studies')}{test}")
    return f"{head}; certainty {result.get('certainty') or 'not graded'}; data: {result.get('sign', 'none')}"


def _count(n, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


# -- running a synthesis ----------------------------------------------------------------------

def run(store, record: dict) -> SynthesisResult:
    """Run one saved synthesis (a row of ``store.syntheses()`` or ``store.synthesis(id)``) on
    the data of the moment."""
    rows = selected_rows(store, record)
    return result_of(record, rows)


def selected_rows(store, record: dict) -> pd.DataFrame:
    """The rows the synthesis pools: :func:`kb.claims.graph.synthesis_rows` of its response
    and filters."""
    from .graph import synthesis_rows

    return synthesis_rows(store, record["response"], **filters_of(record))


def filters_of(record: dict) -> dict:
    filters = record.get("filters")
    if isinstance(filters, str):
        return json.loads(filters)
    return dict(filters or {})


def group_label(record: dict) -> str:
    """``ecosystem=forest``, or ``all``."""
    by = record.get("group_by")
    return f"{by}={record.get('group_value')}" if _present(by) else ALL


def rows_digest(rows: pd.DataFrame) -> str:
    """A fingerprint of the rows (every value of every column, in order): equal rows give
    the same result, so a result may be reused while the fingerprint stays the same."""
    frame = rows.reindex(sorted(rows.columns), axis=1)
    if "mechanisms" in frame:  # the one list column: lists do not hash
        frame = frame.assign(mechanisms=frame["mechanisms"].map(
            lambda m: ";".join(m) if isinstance(m, list | tuple) else m))
    digest = hashlib.sha256(repr(list(frame.columns)).encode("utf-8"))
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def result_of(record: dict, rows: pd.DataFrame, digest: str | None = None) -> SynthesisResult:
    """The synthesis's result on ``rows`` (what :func:`selected_rows` gave; ``digest``, their
    :func:`rows_digest` when already known)."""
    base = {"synthesis_id": record["id"], "response": record["response"], "group": group_label(record),
            "n_rows": len(rows), "rows_digest": digest or rows_digest(rows)}
    if rows.empty:
        return SynthesisResult(**base, problem="no effects or direction-only studies match its filters")
    from evidence import EvidenceError, synthesize

    by = record["group_by"] if _present(record.get("group_by")) else _GROUP
    try:
        table = synthesize(rows.assign(**{_GROUP: ALL}), by, response=record["response"],
                           method=record.get("method") or "REML", **_model_option(synthesize, record))
    except (EvidenceError, ArithmeticError, ValueError) as exc:  # a fit that fails is a result too
        return SynthesisResult(**base, problem=" ".join(str(exc).split())[:200])
    wanted = record["group_value"] if by != _GROUP else ALL
    chosen = table[table[by].astype(str) == str(wanted)]
    if chosen.empty:
        return SynthesisResult(**base, problem=f"no rows in the group {base['group']}")
    return SynthesisResult(**base, **_row_fields(chosen.iloc[0].to_dict()))


def _model_option(synthesize, record: dict) -> dict:
    """``model=`` when this evidence release has models (an older one pools effects as
    independent, and has no such option)."""
    takes_model = "model" in inspect.signature(synthesize).parameters
    return {"model": record.get("model") or "multilevel"} if takes_model else {}


def _row_fields(row: dict) -> dict:
    """The synthesis row's columns, read by name (and the older ``k`` for ``k_effects``)."""
    k = row.get("k_effects", row.get("k"))
    fields = {
        "fit": _text(row.get("model")), "k_effects": _int(k) or 0,
        "n_sites": _int(row.get("n_sites")), "n_sources": _int(row.get("n_sources")),
        "n_studies": _int(row.get("n_studies")) or 0,
        "n_increase": _int(row.get("n_increase")) or 0, "n_decrease": _int(row.get("n_decrease")) or 0,
        "certainty": _text(row.get("certainty")), "certainty_reasons": _text(row.get("certainty_reasons")),
        **{name: _number(row.get(name)) for name in (
            "estimate", "ci_low", "ci_high", "percent_change", "percent_change_low",
            "percent_change_high", "sign_test_pvalue")}}
    fields["sign"], fields["basis"] = data_sign(fields)
    return fields


def data_sign(result: dict) -> tuple[str, str]:
    """(increase / decrease / none, the basis): the pooled CI when there is one, else the
    sign test of the votes. A pooled estimate of a single site does not outweigh the votes
    of many: when other study records vote too, the sign test decides."""
    low, high = result.get("ci_low"), result.get("ci_high")
    up, down = result.get("n_increase") or 0, result.get("n_decrease") or 0
    fit = result.get("fit") or result.get("model")  # the row's model column
    one_site_of_many = fit == "single site" and up + down > 1
    if low is not None and high is not None and not one_site_of_many:
        return ("increase" if low > 0 else "decrease" if high < 0 else "none"), "pooled CI"
    p = result.get("sign_test_pvalue")
    if up + down and p is not None:
        if p < SIGN_TEST_ALPHA and up != down:
            return ("increase" if up > down else "decrease"), "sign test"
        return "none", "sign test"
    return "none", "no data"


def data_relation(relation: str, expects: str | None, sign: str | None) -> str:
    """What the data now say of the claim: supports, contradicts, inconclusive — or
    qualifies for a ``qualifies`` link, which never counts for or against."""
    if relation == "qualifies":
        return "qualifies"
    if sign not in ("increase", "decrease"):
        return "inconclusive"
    return "supports" if sign == expects else "contradicts"


# -- a claim's bodies of evidence -------------------------------------------------------------

@dataclass(frozen=True)
class Overall:
    """A claim's certainty from all its bodies of evidence (literature, data)."""

    grade: str
    level: int  # 1 (Very low) to 4 (High); 0 without evidence
    leaning: str
    reasons: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"reason": list(self.reasons)})


def overall(literature, literature_leaning: str, data: pd.DataFrame) -> Overall:
    """Combine the literature's grade (a :class:`evidence.certainty.Certainty` or None, and
    which way it leans) with the claim's evidence from data (rows of
    :func:`kb.claims.graph.claim_data`).

    Without data links this is the literature's grade and leaning unchanged. Otherwise
    each body — the literature, each ``supports``/``contradicts`` synthesis with a graded
    result — has a level and a side (for, against, or neither: a split literature, an
    inconclusive synthesis). The grade is the best level, one lower (not below Very low)
    when one body is for and another against. The leaning is that of the best bodies:
    for or against when those that take a side agree, split when they do not.
    """
    if data.empty:
        if literature is None:
            return Overall("no evidence", 0, literature_leaning)
        return Overall(literature.grade, literature.level, literature_leaning)
    bodies = _bodies(literature, literature_leaning, data)
    if not bodies:
        return Overall("no evidence", 0, literature_leaning,
                       ("qualifying syntheses are shown with the claim but do not grade it",))
    best = max(level for _, level, _ in bodies)
    sides = {side for _, _, side in bodies if side in ("for", "against")}
    level = max(1, best - 1) if len(sides) == 2 else best
    reasons = [f"{name}: {GRADES[lvl - 1]}, {side}" for name, lvl, side in bodies]
    reasons.append(f"the best body of evidence is {GRADES[best - 1]}")
    if len(sides) == 2:
        reasons.append("bodies of evidence point opposite ways: one level lower (−1)")
    leaning = _leaning([side for _, lvl, side in bodies if lvl == best])
    return Overall(GRADES[level - 1], level, leaning, tuple(reasons))


def _bodies(literature, literature_leaning: str, data: pd.DataFrame) -> list[tuple[str, int, str]]:
    """(name, level, side) of each body that grades the claim."""
    bodies = []
    if literature is not None:
        bodies.append(("evidence from the literature", literature.level, literature_leaning))
    for row in data.to_dict(orient="records"):
        if row["relation"] == "qualifies" or row.get("certainty") not in GRADES:
            continue
        side = SIDES.get(row["data_relation"], "neither (inconclusive)")
        bodies.append((f"data of synthesis '{row['synthesis_id']}'", GRADES.index(row["certainty"]) + 1, side))
    return bodies


def _leaning(sides: list[str]) -> str:
    taken = {s for s in sides if s in ("for", "against")}
    if len(taken) == 2 or (not taken and "split" in sides):
        return "split"
    return taken.pop() if taken else sides[0]


def contest_from_data(n_for: int, n_against: int, data: pd.DataFrame) -> list[str]:
    """Contest reasons the evidence from data adds, given the distinct studies directly
    for and against the claim: data against it while studies or other data support it,
    or data for it while studies contradict it."""
    if data.empty:
        return []
    support = data.loc[data["data_relation"] == "supports", "synthesis_id"].tolist()
    against = data.loc[data["data_relation"] == "contradicts", "synthesis_id"].tolist()
    reasons = []
    if against and (n_for or support):
        who = _joined([_studies(n_for)] * bool(n_for) + [_syntheses(support)] * bool(support))
        reasons.append(f"the data of {_syntheses(against)} go against it while {who} support it")
    elif support and n_against:
        reasons.append(f"the data of {_syntheses(support)} support it while {_studies(n_against)} "
                       f"contradict{'s' if n_against == 1 else ''} it")
    return reasons


def _syntheses(ids: list[str]) -> str:
    return f"synthesis{'' if len(ids) == 1 else 'es'} " + ", ".join(f"'{i}'" for i in ids)


def _studies(n: int) -> str:
    return f"{n} stud{'y' if n == 1 else 'ies'}"


def _joined(parts: list[str]) -> str:
    return " and ".join(parts)


# -- plain values -------------------------------------------------------------------------------

def _present(value) -> bool:
    return value is not None and value is not pd.NA and not (isinstance(value, float) and math.isnan(value))


def _number(value) -> float | None:
    if not _present(value) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _text(value) -> str | None:
    if not _present(value):
        return None
    return str(value.item() if isinstance(value, np.generic) else value)
