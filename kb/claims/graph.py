"""The claim–evidence graph: a ``networkx.MultiDiGraph`` built from the store.

Nodes are ``claim:…``, ``study:…``, ``source:…``, ``mechanism:…``, ``biome:…`` and
``synthesis:…``, each with a ``kind``. Edges carry a ``relation`` and use it as their key:
``supports`` / ``contradicts`` / ``qualifies`` (study → claim, with the link's quote), the
same plus ``refines`` between claims (other claim → claim), ``involves`` (study →
mechanism), ``located_in`` (study → biome), ``cites`` (study → source) and ``supports`` /
``contradicts`` / ``qualifies`` from a synthesis to a claim that cites it (with ``expects``,
the curator's ``note`` and ``data_relation``, what the data say now). A synthesis node holds
its saved query and its result, run on the data when the graph is built
(:mod:`kb.claims.syntheses`). A claim node's ``aliases`` are the retired ids of claims merged
into it (``;``-joined), and every function that takes a claim id takes an alias too.
Attributes are never None or lists, so the graph writes to GraphML as it is.

The questions it answers — evidence for a claim, contested claims, weak claims, the
studies that bear on the most claims, what a new record changes — are functions that take
either a :class:`~kb.KnowledgeBase` or a graph already built from one.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import networkx as nx
import numpy as np
import pandas as pd

from evidence.certainty import Certainty, grade_certainty

from ..errors import KBError, NotFoundError
from ..records import is_part_of
from . import GRAPH_FORMATS
from . import syntheses as synth

EVIDENCE_RELATIONS = ("supports", "contradicts", "qualifies")
STUDY_ATTRIBUTES = ("study_type", "evidence_kind", "biome", "ecosystem", "site", "depth_class",
                    "depth_top_cm", "depth_bottom_cm", "warming_c", "warming_method", "duration_years", "soc_direction",
                    "respiration_direction", "first_author", "year", "source_key",
                    "evidence_quote", "quote_location")
CLAIM_ATTRIBUTES = ("text", "section", "source_key", "scope_biome", "scope_ecosystem",
                    "scope_mechanism", "scope_depth_class", "quote")
SCOPE_FROM_CLAIM = {"biome": "scope_biome", "ecosystem": "scope_ecosystem",
                    "depth_class": "scope_depth_class", "mechanism": "scope_mechanism"}
SYNTHESIS_ATTRIBUTES = ("title", "response", "filters", "group_by", "group_value", "model",
                        "method", "curator", "origin", "notes")


# -- building ------------------------------------------------------------------------------

def build_graph(store, previous: nx.MultiDiGraph | None = None) -> nx.MultiDiGraph:
    """The claim–evidence graph of everything in ``store``.

    Each saved synthesis is run on the store's data now. ``previous``, a graph built earlier
    from the same base, lends the result of every synthesis whose definition and rows are
    unchanged (what a new record changes builds the graph twice).
    """
    G = nx.MultiDiGraph(name="soc-kb claim–evidence graph")
    for row in _records(store.sources()):
        G.add_node(f"source:{row['key']}", kind="source", label=_source_label(row),
                   **_clean(row, ("title", "year", "doi")))
    kinds = evidence_kinds(store)
    for row in _records(store.studies()):
        _add_study(G, row, kinds)
    for row in _records(store.claims()):
        G.add_node(f"claim:{row['id']}", kind="claim", label=row["id"],
                   **_clean(row, CLAIM_ATTRIBUTES))
    _add_aliases(G, store)
    for row in _records(store.links()):
        _add_link(G, row)
    _add_syntheses(G, store, previous)
    return G


def _add_aliases(G, store) -> None:
    """A claim's aliases (retired ids of claims merged into it) as one ``;``-joined node
    attribute. A stand-in store with only the reads above has none."""
    if not hasattr(store, "claim_aliases"):
        return
    aliases = store.claim_aliases()
    for claim_id, rows in aliases.groupby("claim_id", sort=False):
        if f"claim:{claim_id}" in G:
            G.nodes[f"claim:{claim_id}"]["aliases"] = ";".join(rows["alias"])


def evidence_kinds(store) -> dict[str, str]:
    """study type -> evidence kind (experimental, observational, synthesis, model, expert)."""
    frame = store.vocabulary("study_types")
    return dict(zip(frame["name"], frame["evidence_kind"], strict=True))


def _add_study(G, row: dict, kinds: dict) -> None:
    node = f"study:{row['id']}"
    row = {**row, "evidence_kind": kinds.get(row.get("study_type"))}
    G.add_node(node, kind="study", label=_study_label(row), **_clean(row, STUDY_ATTRIBUTES))
    if _present(row.get("source_key")):
        G.add_edge(node, f"source:{row['source_key']}", key="cites", relation="cites")
    for mechanism in row.get("mechanisms") or []:
        _add_facet(G, node, "mechanism", mechanism, "involves")
    if _present(row.get("biome")):
        _add_facet(G, node, "biome", row["biome"], "located_in")


def _add_facet(G, node: str, kind: str, name: str, relation: str) -> None:
    G.add_node(f"{kind}:{name}", kind=kind, label=name)
    G.add_edge(node, f"{kind}:{name}", key=relation, relation=relation)


def _add_link(G, row: dict) -> None:
    origin = f"study:{row['study_id']}" if _present(row.get("study_id")) else f"claim:{row['other_claim_id']}"
    relation = str(row["relation"])
    G.add_edge(origin, f"claim:{row['claim_id']}", key=relation, relation=relation,
               link_id=int(row["id"]), **_clean(row, ("quote", "note")))


def _add_syntheses(G, store, previous) -> None:
    """Synthesis nodes, with their results now, and their edges to the claims citing them.
    A stand-in store with only the reads above (tests, benchmarks) has none."""
    if not hasattr(store, "syntheses"):
        return
    for record in _records(store.syntheses()):
        node = f"synthesis:{record['id']}"
        definition = _clean(record, SYNTHESIS_ATTRIBUTES)
        rows = synth.selected_rows(store, record)
        G.add_node(node, kind="synthesis", label=str(record["id"]), **definition,
                   **_result(record, rows, definition, _node(previous, node)))
    for row in _records(store.synthesis_links()):
        _add_synthesis_link(G, row)


def _node(G, node: str) -> dict | None:
    return G.nodes[node] if G is not None and node in G else None


def _result(record: dict, rows: pd.DataFrame, definition: dict, old: dict | None) -> dict:
    """The synthesis's result attributes: an earlier graph's when the definition and rows
    are the same, else run now."""
    digest = synth.rows_digest(rows)
    if (old is not None and old.get("rows_digest") == digest
            and {k: old[k] for k in SYNTHESIS_ATTRIBUTES if k in old} == definition):
        return {k: v for k, v in old.items() if k not in ("kind", "label", *SYNTHESIS_ATTRIBUTES)}
    return synth.result_of(record, rows, digest).attributes()


def _add_synthesis_link(G, row: dict) -> None:
    source, relation = f"synthesis:{row['synthesis_id']}", str(row["relation"])
    now = synth.data_relation(relation, row.get("expects"), G.nodes[source].get("sign"))
    attributes = {"relation": relation, "synthesis_link_id": int(row["id"]), "data_relation": now,
                  **_clean(row, ("expects", "note", "curator", "origin"))}
    if relation != "qualifies":
        attributes["agrees"] = now == relation
    G.add_edge(source, f"claim:{row['claim_id']}", key=relation, **attributes)


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.to_dict(orient="records")


def _clean(row: dict, names) -> dict:
    """The named fields that have a value, as plain Python scalars (GraphML-safe)."""
    return {n: _scalar(row[n]) for n in names if n in row and _present(row[n])}


def _present(value) -> bool:
    if value is None or value is pd.NA:
        return False
    return not (isinstance(value, float) and np.isnan(value))


def _scalar(value):
    return value.item() if isinstance(value, np.generic) else value


def _study_label(row: dict) -> str:
    if _present(row.get("first_author")) and _present(row.get("year")):
        return f"{row['first_author']} {int(row['year'])}"
    return str(row["id"])


def _source_label(row: dict) -> str:
    year = f" {int(row['year'])}" if _present(row.get("year")) else ""
    return f"{row.get('first_author') or row['key']}{year}"


def as_graph(store_or_graph) -> nx.MultiDiGraph:
    """A graph given as it is, or built from a knowledge base."""
    return store_or_graph if isinstance(store_or_graph, nx.Graph) else build_graph(store_or_graph)


# -- one claim -----------------------------------------------------------------------------

def claim_node(G, claim_id: str) -> str:
    """The node of a claim given by its id or an alias."""
    return f"claim:{resolve_claim(G, claim_id)}"


def resolve_claim(G, claim_id: str) -> str:
    """The id of the claim ``claim_id`` names in ``G``: itself, or the claim that holds it as
    an alias (the retired id of a claim merged into it)."""
    if f"claim:{claim_id}" in G:
        return claim_id
    canonical = _alias_index(G).get(claim_id)
    if canonical is None:
        raise NotFoundError(f"claims: no record with id '{claim_id}'")
    return canonical


def _alias_index(G) -> dict[str, str]:
    """Alias -> the id of the claim holding it (one pass over the nodes: only ids that are
    not claims' own get here)."""
    return {alias: node.split(":", 1)[1] for node, aliases in G.nodes(data="aliases")
            if isinstance(aliases, str) and G.nodes[node]["kind"] == "claim"
            for alias in aliases.split(";")}


EVIDENCE_COLUMNS = ("study_id", "relation", "via", "label", *STUDY_ATTRIBUTES, "mechanisms", "quote")


def claim_evidence(G, claim_id: str) -> pd.DataFrame:
    """One row per (study, relation) bearing on a claim, with the study's system.

    Direct links come first (``via`` empty). Then the studies that support a claim
    contradicting this one count as contradicting it, with ``via`` naming that claim.
    """
    studies: dict = {}
    rows = []
    kinds = G.nodes(data="kind")  # a view: kind of each node, looked up, not copied
    for study, relation, via, quote in _evidence_links(G, claim_id, counter_claims(G, claim_id), kinds):
        if study not in studies:
            studies[study] = _study_cells(G, study, kinds)
        study_id, label, *attributes, mechanisms, own_quote = studies[study]
        rows.append((study_id, relation, via, label, *attributes, list(mechanisms), quote or own_quote))
    return pd.DataFrame(rows, columns=list(EVIDENCE_COLUMNS))


def _evidence_links(G, claim_id: str, counters: list[str], kinds) -> list[tuple]:
    """(study node, relation, via, link quote) of each row of :func:`claim_evidence`, given
    the claim's counter-claims and node -> kind. Read from the adjacency, in
    ``G.in_edges`` order (the edge views count themselves on every len())."""
    links = [(u, data["relation"], None, data.get("quote"))
             for u, keyed in G.pred[claim_node(G, claim_id)].items() if kinds[u] == "study"
             for data in keyed.values() if data["relation"] in EVIDENCE_RELATIONS]
    for other in counters:
        links += [(u, "contradicts", other, data.get("quote"))
                  for u, keyed in G.pred[f"claim:{other}"].items() if kinds[u] == "study"
                  for data in keyed.values() if data["relation"] == "supports"]
    return links


def _study_cells(G, study_node: str, kinds) -> tuple:
    """(study id, label, STUDY_ATTRIBUTES values, sorted mechanisms, the study's quote)."""
    study = G.nodes[study_node]
    mechanisms = sorted(G.nodes[m]["label"] for m in G.succ[study_node] if kinds[m] == "mechanism")
    return (study_node.split(":", 1)[1], *(study.get(k) for k in ("label", *STUDY_ATTRIBUTES)),
            mechanisms, study.get("evidence_quote"))


def counter_claims(G, claim_id: str) -> list[str]:
    """Claims joined to this one by a ``contradicts`` link, in either direction."""
    node = claim_node(G, claim_id)
    others = {other for adjacency in (G.pred[node], G.succ[node])
              for other, keyed in adjacency.items()
              if any(d["relation"] == "contradicts" for d in keyed.values())}
    return sorted(o.split(":", 1)[1] for o in others if G.nodes[o]["kind"] == "claim")


def _all_counter_claims(G) -> dict[str, list[str]]:
    """:func:`counter_claims` of every claim, from one pass over the links between claims."""
    nodes = G.nodes
    found: dict[str, set] = {node: set() for node, kind in nodes(data="kind") if kind == "claim"}
    for node in found:
        for other, keyed in G.succ[node].items():
            if nodes[other]["kind"] == "claim" and any(
                    d["relation"] == "contradicts" for d in keyed.values()):
                found[node].add(other)
                found[other].add(node)
    return {node.split(":", 1)[1]: sorted(o.split(":", 1)[1] for o in others)
            for node, others in found.items()}


def balance(evidence: pd.DataFrame) -> dict[str, int]:
    """Distinct studies that support, contradict (directly or via a counter-claim), qualify."""
    return {f"n_{r}": int(evidence.loc[evidence["relation"] == r, "study_id"].nunique())
            for r in EVIDENCE_RELATIONS}


def claim_certainty(claim: dict, evidence: pd.DataFrame) -> Certainty | None:
    """The GRADE-like grade of a claim's evidence, in the claim's scope (None without evidence).

    A study reached through several counter-claims is one study against, not several:
    rows are reduced to distinct (study, relation) pairs before grading, so a study that
    supports the claim and also one of its counter-claims counts for neither side.
    """
    if evidence.empty:
        return None
    scope = {facet: claim.get(column) for facet, column in SCOPE_FROM_CLAIM.items()}
    distinct = evidence.drop_duplicates(["study_id", "relation"])
    return grade_certainty(distinct.rename(columns={"relation": "direction"}), scope=scope)


def leaning(certainty: Certainty | None) -> str:
    """Which way the graded evidence points: for, against, split, or neither."""
    if certainty is None:
        return "no evidence"
    if certainty.n_for > certainty.n_against:
        return "for"
    if certainty.n_against > certainty.n_for:
        return "against"
    return "split" if certainty.n_for else "neither (qualifying only)"


#: the columns of a claim's evidence from data (:func:`claim_data`)
DATA_COLUMNS = ("synthesis_id", "link_id", "relation", "expects", "data_relation", "agrees",
                "sign", "basis", "title", "response", "group", "model", "fit", "k_effects",
                "n_sites", "n_sources", "n_studies", "estimate", "ci_low", "ci_high",
                "percent_change", "percent_change_low", "percent_change_high", "n_increase",
                "n_decrease", "sign_test_pvalue", "certainty", "certainty_reasons", "problem",
                "result", "note")
DATA_RELATIONS = ("supports", "contradicts", "inconclusive", "qualifies")
_NO_DATA = pd.DataFrame(columns=list(DATA_COLUMNS))


def claim_data(G, claim_id: str) -> pd.DataFrame:
    """A claim's evidence from data: one row per synthesis it cites, with the synthesis's
    result on the data now (estimate, CI, what stands behind it, its certainty and
    reasons), the sign the data support and what that says of the claim
    (``data_relation``: supports, contradicts, inconclusive, qualifies), by link id."""
    return _data_frame(_data_rows(G, claim_node(G, claim_id)))


def _data_rows(G, node: str) -> list[dict]:
    rows = [_data_row(u, G.nodes[u], data) for u, keyed in G.pred[node].items()
            if G.nodes[u].get("kind") == "synthesis" for data in keyed.values()]
    return sorted(rows, key=lambda r: r["link_id"])


def _data_row(node: str, result: dict, link: dict) -> dict:
    row = {name: result.get(name) for name in DATA_COLUMNS}
    row.update(synthesis_id=node.split(":", 1)[1], link_id=link.get("synthesis_link_id"),
               relation=link["relation"], expects=link.get("expects"),
               data_relation=link.get("data_relation"), agrees=link.get("agrees"),
               note=link.get("note"), result=synth.summary(result))
    return row


def _data_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(DATA_COLUMNS)) if rows else _NO_DATA.copy()


def data_balance(data: pd.DataFrame) -> dict[str, int]:
    """Syntheses whose data now support, contradict, leave open (inconclusive) or qualify a claim."""
    return {f"n_data_{r}": int((data["data_relation"] == r).sum()) for r in DATA_RELATIONS}


def data_state(data: pd.DataFrame) -> str:
    """A claim's evidence from data in one line: ``id: result`` per synthesis, `` | `` between."""
    return " | ".join(f"{i}: {r}" for i, r in zip(data["synthesis_id"], data["result"], strict=True))


@dataclass
class ClaimReport:
    """Everything the knowledge base says about one claim: its evidence from the literature
    (studies: ``evidence``, ``balance``, their grade ``certainty``) and from data (cited
    syntheses run now: ``data``), and the certainty of both together (``overall``)."""

    claim_id: str
    claim: dict
    evidence: pd.DataFrame
    balance: dict
    counter_claims: list
    contested: list
    certainty: Certainty | None = field(default=None)
    data: pd.DataFrame = field(default_factory=_NO_DATA.copy)
    overall: synth.Overall | None = field(default=None)

    def to_frame(self) -> pd.DataFrame:
        """The evidence rows (from the literature)."""
        return self.evidence

    @property
    def grade(self) -> str:
        """The claim's certainty from all its evidence (the literature's alone without data)."""
        if self.overall is not None:
            return self.overall.grade
        return self.certainty.grade if self.certainty else "no evidence"

    @property
    def leaning(self) -> str:
        """``for``, ``against``, ``split`` or ``neither``: where the graded evidence points."""
        return self.overall.leaning if self.overall is not None else leaning(self.certainty)

    @property
    def data_balance(self) -> dict:
        return data_balance(self.data)

    def to_dict(self) -> dict:
        reasons = self.certainty.to_frame().to_dict(orient="records") if self.certainty else []
        evidence = self.evidence.astype(object).where(self.evidence.notna(), None)
        data = self.data.astype(object).where(self.data.notna(), None)
        return {"claim": self.claim, "balance": self.balance, "counter_claims": self.counter_claims,
                "contested": self.contested, "certainty": self.grade, "leaning": self.leaning,
                "certainty_from": list(self.overall.reasons) if self.overall else [],
                "literature_certainty": self.certainty.grade if self.certainty else "no evidence",
                "reasons": reasons,
                "evidence": evidence.to_dict(orient="records"),
                "data_balance": self.data_balance, "data": data.to_dict(orient="records")}

    def to_markdown(self) -> str:
        """The report as Markdown. A claim citing syntheses: the claim, its certainty from all
        its evidence with how the bodies combine, then its evidence from the literature
        (balance, grade with reasons, studies) and its evidence from data (the cited syntheses
        run now) as two sections side by side. A claim citing none: the literature alone (the
        claim, balance, certainty with reasons, studies), as before there were syntheses."""
        if self.data.empty:
            return self._literature_markdown()
        lines = [f"### Claim `{self.claim_id}`", "", f"> {self.claim.get('text', '')}", "",
                 f"**Certainty: {self.grade}**{_overall_words(self)}", ""]
        if self.overall is not None and self.overall.reasons:
            lines += [f"- {reason}" for reason in self.overall.reasons] + [""]
        if self.contested:
            lines += ["**Contested:** " + "; ".join(self.contested), ""]
        return "\n".join(lines + _literature_section(self) + _data_section(self.data))

    def _literature_markdown(self) -> str:
        lines = [f"### Claim `{self.claim_id}`", "", f"> {self.claim.get('text', '')}", "",
                 _balance_line(self), "", f"**Certainty: {self.grade}**{_leaning_words(self)}", ""]
        if self.certainty:
            lines += [f"- {r.domain}: {r.text}{_levels(r)}" for r in self.certainty.reasons] + [""]
        if self.contested:
            lines += ["**Contested:** " + "; ".join(self.contested), ""]
        if not self.evidence.empty:
            lines += [_evidence_table(self.evidence), ""]
        return "\n".join(lines)


def _literature_section(report: ClaimReport) -> list[str]:
    grade = report.certainty.grade if report.certainty else "no evidence"
    lines = ["#### Evidence from the literature", "", _balance_line(report), "",
             f"Certainty of the literature: {grade}{_leaning_words(report)}", ""]
    if report.certainty:
        lines += [f"- {r.domain}: {r.text}{_levels(r)}" for r in report.certainty.reasons] + [""]
    if not report.evidence.empty:
        lines += [_evidence_table(report.evidence), ""]
    return lines


def _data_section(data: pd.DataFrame) -> list[str]:
    lines = ["#### Evidence from data", ""]
    b = data_balance(data)
    lines += [f"Data: {b['n_data_supports']} supporting, {b['n_data_contradicts']} contradicting, "
              f"{b['n_data_inconclusive']} inconclusive, {b['n_data_qualifies']} qualifying "
              "syntheses, run on the data now.", "", _data_table(data), ""]
    lines += [f"- `{r['synthesis_id']}` certainty {r['certainty']}: {r['certainty_reasons']}"
              for r in data.to_dict(orient="records")
              if _present(r["certainty"]) and _present(r["certainty_reasons"])]
    return lines + [""]


def _data_table(data: pd.DataFrame) -> str:
    rows = data.to_dict(orient="records")
    shown = pd.DataFrame({
        "link": data["relation"], "synthesis": data["synthesis_id"],
        "response": [f"{r['response']} ({r['group']})" if _present(r["group"]) else r["response"] for r in rows],
        "expects": data["expects"].fillna(""),
        "result now": [synth.summary(r).rsplit("; certainty", 1)[0] for r in rows],
        "certainty": data["certainty"].fillna("not graded"),
        "the data say": [_verdict(r) for r in rows],
        "why linked": data["note"].map(lambda q: _short(q, 90))})
    return shown.to_markdown(index=False)


def _verdict(row: dict) -> str:
    """``supports (data: increase)``, and when the curator's relation is not borne out now,
    what it was."""
    basis = f", by the {row['basis']}" if _present(row.get("basis")) and row["basis"] != "pooled CI" else ""
    words = f"{row['data_relation']} (data: {row['sign']}{basis})"
    if _present(row["agrees"]) and not row["agrees"]:
        words += f"; the link says {row['relation']}"
    return words


def _balance_line(report: ClaimReport) -> str:
    b = report.balance
    line = (f"Evidence: {b['n_supports']} supporting, {b['n_contradicts']} contradicting, "
            f"{b['n_qualifies']} qualifying studies")
    if report.counter_claims:
        plural = "s" if len(report.counter_claims) > 1 else ""
        line += f"; contradicted by claim{plural} " + ", ".join(f"`{c}`" for c in report.counter_claims)
    return line + "."


_LEANING_WORDS = {"for": "supports the claim", "against": "goes against the claim",
                  "split": "is split evenly"}


def _leaning_words(report: ClaimReport) -> str:
    """How the literature's graded evidence leans, with its counts."""
    c = report.certainty
    if c is None:
        return ""
    words = _LEANING_WORDS.get(leaning(c), "takes no side")
    studies = f"{c.n_studies} stud{'y' if c.n_studies == 1 else 'ies'}"
    return f" — the graded evidence ({c.n_for} for, {c.n_against} against, {studies}) {words}."


def _overall_words(report: ClaimReport) -> str:
    """How all the evidence (literature and data) leans."""
    if report.grade == "no evidence":
        return ""
    bodies = "the literature and the data" if report.certainty else "the data"
    return f" — {bodies} together: the evidence {_LEANING_WORDS.get(report.leaning, 'takes no side')}."


def _levels(reason) -> str:
    if reason.domain == "start" or not reason.levels:
        return ""
    return f" (−{-reason.levels})"


def _evidence_table(evidence: pd.DataFrame) -> str:
    shown = evidence.assign(
        study=evidence["label"], via=evidence["via"].fillna(""),
        system=[_system(r) for r in evidence.to_dict(orient="records")],
        quote=evidence["quote"].map(lambda q: _short(q, 90)))
    shown["direction"] = [_directions(r) for r in evidence.to_dict(orient="records")]
    columns = ["relation", "study", "via", "evidence_kind", "system", "direction", "quote"]
    return shown[columns].fillna("").to_markdown(index=False)


def _system(row: dict) -> str:
    """Where and what: biome, ecosystem, depth (class and cm) and warming."""
    parts = [row.get(k) for k in ("biome", "ecosystem", "depth_class")]
    top, bottom = row.get("depth_top_cm"), row.get("depth_bottom_cm")
    if _present(top) and _present(bottom):
        parts.append(f"{top:g}–{bottom:g} cm")
    warming = row.get("warming_c")
    parts.append(f"+{warming:g} °C" if _present(warming) else None)
    return ", ".join(str(p) for p in parts if _present(p))


def _directions(row: dict) -> str:
    """The study's stated directions, e.g. ``SOC decrease; Rs increase``."""
    named = (("SOC", row.get("soc_direction")), ("Rs", row.get("respiration_direction")))
    return "; ".join(f"{name} {value}" for name, value in named
                     if _present(value) and value != "not_reported")


def _short(text, width: int) -> str:
    text = "" if not _present(text) else str(text)
    return text if len(text) <= width else text[:width - 1] + "…"


def claim_report(store_or_graph, claim_id: str) -> ClaimReport:
    """The evidence on a claim, its balance, contest and certainty with reasons."""
    G = as_graph(store_or_graph)
    claim_id = resolve_claim(G, claim_id)
    claim = _claim(G, claim_id)
    evidence = claim_evidence(G, claim_id)
    data = claim_data(G, claim_id)
    certainty = claim_certainty(claim, evidence)
    return ClaimReport(claim_id, claim, evidence, balance(evidence), counter_claims(G, claim_id),
                       contest_reasons(G, claim_id, evidence, data), certainty, data,
                       synth.overall(certainty, leaning(certainty), data))


def _claim(G, claim_id: str) -> dict:
    """The claim's record as the graph holds it, with its (canonical) id."""
    claim_id = resolve_claim(G, claim_id)
    attrs = G.nodes[claim_node(G, claim_id)]
    return {"id": claim_id, **{k: v for k, v in attrs.items() if k not in ("kind", "label")}}


# -- contest, reach, weakness --------------------------------------------------------------

def contest_reasons(G, claim_id: str, evidence: pd.DataFrame | None = None,
                    data: pd.DataFrame | None = None) -> list[str]:
    """Why a claim is contested, computed from its links (empty when it is not): studies on
    both sides, a contradicting claim, a study supporting both, or evidence from data
    against the other evidence (:func:`kb.claims.syntheses.contest_from_data`)."""
    evidence = claim_evidence(G, claim_id) if evidence is None else evidence
    data = claim_data(G, claim_id) if data is None else data
    direct = evidence[evidence["via"].isna()]
    n_for = direct.loc[direct["relation"] == "supports", "study_id"].nunique()
    n_against = direct.loc[direct["relation"] == "contradicts", "study_id"].nunique()
    return (_reasons(n_for, n_against, counter_claims(G, claim_id), _double_supporters(evidence))
            + synth.contest_from_data(n_for, n_against, data))


def _reasons(n_for: int, n_against: int, counters: list, doubles: list) -> list[str]:
    """The contest rules, given the distinct direct supporters and contradictors, the
    counter-claims and the (study, counter-claim) pairs of double supporters."""
    reasons = []
    if n_for and n_against:
        reasons.append(f"{n_for} stud{'y supports' if n_for == 1 else 'ies support'} it and "
                       f"{n_against} contradict{'s' if n_against == 1 else ''} it")
    reasons += [f"claim '{other}' contradicts it" for other in counters]
    reasons += [f"study '{s}' supports both it and claim '{other}'" for s, other in doubles]
    return reasons


def _double_supporters(evidence: pd.DataFrame) -> list[tuple[str, str]]:
    """(study, counter-claim) pairs where one study supports this claim and its contradiction."""
    direct = set(evidence.loc[evidence["via"].isna() & (evidence["relation"] == "supports"), "study_id"])
    via = evidence[evidence["via"].notna()]
    return [(s, o) for s, o in zip(via["study_id"], via["via"], strict=True) if s in direct]


def claim_ids(G) -> list[str]:
    return [n.split(":", 1)[1] for n, kind in G.nodes(data="kind") if kind == "claim"]


def contested_claims(store_or_graph) -> pd.DataFrame:
    """Claims with evidence on both sides or a contradicting claim, with the reasons."""
    G = as_graph(store_or_graph)
    summary = _summaries(_walk(G))
    rows = [{"id": claim_id, "text": G.nodes[f"claim:{claim_id}"].get("text"), **s["balance"],
             "counter_claims": ", ".join(s["counter_claims"]), "reasons": "; ".join(s["reasons"])}
            for claim_id, s in summary.items() if s["reasons"]]
    return pd.DataFrame(rows, columns=["id", "text", "n_supports", "n_contradicts", "n_qualifies",
                                       "counter_claims", "reasons"])


def study_claims(store_or_graph, study_id: str) -> pd.DataFrame:
    """The claims one study bears on, with the relation and the link's quote."""
    G = as_graph(store_or_graph)
    node = f"study:{study_id}"
    if node not in G:
        raise NotFoundError(f"studies: no record with id '{study_id}'")
    rows = [{"claim_id": v.split(":", 1)[1], "relation": d["relation"],
             "text": G.nodes[v].get("text"), "quote": d.get("quote")}
            for _, v, d in G.out_edges(node, data=True) if d["relation"] in EVIDENCE_RELATIONS]
    return pd.DataFrame(rows, columns=["claim_id", "relation", "text", "quote"])


def top_studies(store_or_graph, n: int = 10) -> pd.DataFrame:
    """The studies that bear on the most claims (distinct claims, then supports, then id)."""
    G = as_graph(store_or_graph)
    rows = [_reach(G, node) for node, kind in G.nodes(data="kind") if kind == "study"]
    frame = pd.DataFrame(rows, columns=["study_id", "label", "study_type", "n_claims",
                                        *(f"n_{r}" for r in EVIDENCE_RELATIONS)])
    frame = frame.sort_values(["n_claims", "n_supports", "study_id"], ascending=[False, False, True])
    return frame.head(n).reset_index(drop=True)


def _reach(G, node: str) -> dict:
    edges = [(v, d["relation"]) for _, v, d in G.out_edges(node, data=True)
             if d["relation"] in EVIDENCE_RELATIONS]
    attrs = G.nodes[node]
    return {"study_id": node.split(":", 1)[1], "label": attrs.get("label"),
            "study_type": attrs.get("study_type"), "n_claims": len({v for v, _ in edges}),
            **{f"n_{r}": sum(rel == r for _, rel in edges) for r in EVIDENCE_RELATIONS}}


def weak_claims(store_or_graph) -> pd.DataFrame:
    """Claims whose support rests on a single study, or only on model evidence."""
    G = as_graph(store_or_graph)
    walk = _walk(G)
    supporters: dict[str, dict] = {}  # claim -> {study id: evidence kind}, first row first
    for claim_id, (study, relation, via, _) in zip(walk.claims, walk.links, strict=True):
        if relation == "supports" and via is None:
            supporters.setdefault(claim_id, {}).setdefault(
                study.split(":", 1)[1], G.nodes[study].get("evidence_kind"))
    rows = []
    for claim_id in walk.ids:
        support = supporters.get(claim_id, {})
        reason = _weakness(list(support), list(support.values()))
        if reason:
            rows.append({"id": claim_id, "text": G.nodes[f"claim:{claim_id}"].get("text"),
                         "n_supports": len(support),
                         "evidence_kinds": ", ".join(sorted({k for k in support.values() if _present(k)})),
                         "reason": reason})
    return pd.DataFrame(rows, columns=["id", "text", "n_supports", "evidence_kinds", "reason"])


def _weakness(studies: list[str], kinds: list) -> str | None:
    """Why the distinct supporting ``studies`` (with their evidence ``kinds``) are weak."""
    if not studies:
        return None
    if all(_present(k) and k == "model" for k in kinds):
        return f"only model evidence ({len(studies)} stud{'y' if len(studies) == 1 else 'ies'})"
    if len(studies) == 1:
        return f"a single supporting study ({studies[0]})"
    return None


# -- all claims at once --------------------------------------------------------------------
#
# The whole-graph questions ask what claim_report asks of one claim, for every claim. They
# walk each claim's links once (the rows of claim_evidence, without building a frame per
# claim) and count the contest rules on that walk; the study columns are looked up only
# where they are read (grading). tests/test_graph.py holds them equal to claim_report.

class _Walk(NamedTuple):
    """The rows of :func:`claim_evidence` of ``ids``, claim after claim: ``claims[i]`` is the
    claim of ``links[i]`` = (study node, relation, via, link quote); ``counters`` maps each
    id to its :func:`counter_claims`; ``data`` each id that cites syntheses to its
    :func:`claim_data`."""

    ids: list[str]
    counters: dict[str, list[str]]
    claims: list[str]
    links: list[tuple]
    data: dict[str, pd.DataFrame]


def _walk(G, ids: list[str] | None = None) -> _Walk:
    """Walk the evidence links of ``ids`` (None: every claim, counter-claims in one pass)."""
    if ids is None:
        ids, counters = claim_ids(G), _all_counter_claims(G)
    else:
        counters = {claim_id: counter_claims(G, claim_id) for claim_id in ids}
    kinds = dict(G.nodes(data="kind"))  # one copy: cheaper than a view lookup per edge
    claims, links = [], []
    for claim_id in ids:
        found = _evidence_links(G, claim_id, counters[claim_id], kinds)
        claims += [claim_id] * len(found)
        links += found
    return _Walk(ids, counters, claims, links, _claims_data(G, ids, kinds))


def _claims_data(G, ids: list[str], kinds: dict) -> dict[str, pd.DataFrame]:
    """:func:`claim_data` of the claims among ``ids`` that cite a synthesis, from one pass
    over the synthesis nodes."""
    wanted, rows = set(ids), {}
    for node in (n for n, kind in kinds.items() if kind == "synthesis"):
        for claim, keyed in G.succ[node].items():
            claim_id = claim.split(":", 1)[1]
            if claim_id in wanted:
                rows.setdefault(claim_id, []).extend(
                    _data_row(node, G.nodes[node], data) for data in keyed.values())
    return {claim_id: _data_frame(sorted(found, key=lambda r: r["link_id"]))
            for claim_id, found in rows.items()}


def _summaries(walk: _Walk) -> dict[str, dict]:
    """Per claim: its ``balance``, ``counter_claims`` and contest ``reasons``, as
    :func:`balance` and :func:`contest_reasons` give them for one claim."""
    studies = {claim_id: {r: set() for r in EVIDENCE_RELATIONS} for claim_id in walk.ids}
    direct = {claim_id: {r: set() for r in EVIDENCE_RELATIONS} for claim_id in walk.ids}
    doubles: dict[str, list] = {claim_id: [] for claim_id in walk.ids}
    # a claim's direct rows come before its rows via counter-claims, so the direct
    # supporters are all known when the first row via a counter-claim is read
    for claim_id, (study, relation, via, _) in zip(walk.claims, walk.links, strict=True):
        study_id = study.split(":", 1)[1]
        studies[claim_id][relation].add(study_id)
        if via is None:
            direct[claim_id][relation].add(study_id)
        elif study_id in direct[claim_id]["supports"]:
            doubles[claim_id].append((study_id, via))
    return {claim_id: {
        "balance": {f"n_{r}": len(studies[claim_id][r]) for r in EVIDENCE_RELATIONS},
        "counter_claims": walk.counters[claim_id],
        "reasons": _reasons(len(direct[claim_id]["supports"]), len(direct[claim_id]["contradicts"]),
                            walk.counters[claim_id], doubles[claim_id])
        + synth.contest_from_data(len(direct[claim_id]["supports"]),
                                  len(direct[claim_id]["contradicts"]),
                                  walk.data.get(claim_id, _NO_DATA))}
        for claim_id in walk.ids}


def _table(G, walk: _Walk) -> pd.DataFrame:
    """The walk as one frame: a ``claim_id`` column, then :data:`EVIDENCE_COLUMNS`. Each
    study's cells are made once, and the frame is built column by column."""
    kinds = dict(G.nodes(data="kind"))
    position: dict[str, int] = {}  # study node -> its row in `cells`
    cells = []
    for study, *_ in walk.links:
        if study not in position:
            position[study] = len(cells)
            cells.append(_study_cells(G, study, kinds))
    study_columns = ["study_id", "label", *STUDY_ATTRIBUTES, "mechanisms", "own_quote"]
    rows = [position[study] for study, *_ in walk.links]
    studies = pd.DataFrame(cells, columns=study_columns).take(rows).reset_index(drop=True)
    table = studies.assign(
        claim_id=walk.claims, relation=[link[1] for link in walk.links],
        via=[link[2] for link in walk.links],
        # a fresh list per row: a caller editing one row's mechanisms must not edit another's
        mechanisms=[list(m) for m in studies["mechanisms"]],
        quote=[link[3] or own for link, own in zip(walk.links, studies["own_quote"], strict=True)])
    return table[["claim_id", *EVIDENCE_COLUMNS]]


def evidence_table(store_or_graph, ids=None) -> pd.DataFrame:
    """:func:`claim_evidence` of many claims (default all) as one frame with a ``claim_id``
    column first: the same rows with the same values in the same order, claim after claim
    (a column's dtype can differ from one claim's frame, e.g. float where one claim's
    studies all give integers)."""
    G = as_graph(store_or_graph)
    if ids is not None:
        ids = [claim_node(G, i).split(":", 1)[1] for i in ids]
    return _table(G, _walk(G, ids))


# -- what a new record changes -------------------------------------------------------------

STATE_COLUMNS = ("n_supports", "n_contradicts", "n_qualifies", "certainty", "contested")
#: a claim's evidence from data in its state: the syntheses by what their data say now,
#: and ``data`` (:func:`data_state`), which moves whenever a cited synthesis's result does
DATA_STATE_COLUMNS = (*(f"n_data_{r}" for r in DATA_RELATIONS), "data")


def claim_states(store_or_graph, ids=None) -> pd.DataFrame:
    """Balance, certainty grade (from all evidence: literature and data), contest, leaning
    and evidence from data of claims (default all), indexed by claim id."""
    G = as_graph(store_or_graph)
    if ids is not None:
        ids = list(dict.fromkeys(i for i in ids if f"claim:{i}" in G))
    walk = _walk(G, ids)
    summary = _summaries(walk)
    # grading stays one claim at a time: it is evidence.certainty's rule, given the rows
    # claim_report gives it (the claim's slice of the table, without the claim_id column)
    slices = {claim_id: rows.drop(columns="claim_id").reset_index(drop=True)
              for claim_id, rows in _table(G, walk).groupby("claim_id", sort=False)}
    rows = {}
    for claim_id in walk.ids:
        evidence = slices.get(claim_id)
        certainty = None if evidence is None else claim_certainty(_claim(G, claim_id), evidence)
        data = walk.data.get(claim_id, _NO_DATA)
        grade = synth.overall(certainty, leaning(certainty), data)
        rows[claim_id] = {**summary[claim_id]["balance"], "certainty": grade.grade,
                          "contested": bool(summary[claim_id]["reasons"]), "leaning": grade.leaning,
                          **data_balance(data), "data": data_state(data)}
    return pd.DataFrame.from_dict(rows, orient="index",
                                  columns=[*STATE_COLUMNS, "leaning", *DATA_STATE_COLUMNS])


@dataclass
class ImpactReport:
    """The claims a batch of records touches and how their balance and certainty move."""

    rows: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.rows

    @property
    def changed(self) -> pd.DataFrame:
        """Only the claims whose balance, certainty, contest or evidence from data moved."""
        moved = (self.rows["balance_moved"] | self.rows["certainty_moved"] | self.rows["contest_moved"]
                 | self.rows["data_moved"])
        return self.rows[moved]

    def summary(self) -> str:
        """One line per touched claim, e.g. ``c1: 3/0/1 -> 3/1/1, Moderate -> Low, now contested``."""
        if self.rows.empty:
            return "no claim touched"
        return "\n".join(_impact_line(r) for r in self.rows.to_dict(orient="records"))


def _impact_line(r: dict) -> str:
    def counts(when):
        return "/".join(str(r[f"{n}_{when}"]) for n in ("n_supports", "n_contradicts", "n_qualifies"))

    if r.get("new_claim"):
        parts = [f"{r['claim_id']} (new claim): for/against/qualifying {counts('after')}",
                 f"certainty {r['certainty_after']}"]
        return ", ".join(parts + (["contested"] if r["contested_after"] else []))
    parts = [f"{r['claim_id']}: for/against/qualifying {counts('before')} -> {counts('after')}"]
    parts.append(f"certainty {r['certainty_before']} -> {r['certainty_after']}"
                 if r["certainty_moved"] else f"certainty {r['certainty_after']} (unchanged)")
    if r["contest_moved"]:
        parts.append("now contested" if r["contested_after"] else "no longer contested")
    if r.get("leaning_before") != r.get("leaning_after") and _present(r.get("leaning_before")):
        parts.append(f"evidence now leans {r['leaning_after']} (was {r['leaning_before']})")
    return ", ".join(parts + _data_moves(r))


def _data_moves(r: dict) -> list[str]:
    """``data srdb-rs: <result before> -> <result after>`` for each cited synthesis whose
    result moved; ``data unchanged (through …)`` when the records fall in a cited
    synthesis without moving its result."""
    before, after = _by_synthesis(r.get("data_before")), _by_synthesis(r.get("data_after"))
    moves = [f"data {i}: {before.get(i, 'not cited')} -> {after.get(i, 'not cited')}"
             for i in dict.fromkeys([*before, *after]) if before.get(i) != after.get(i)]
    if not moves and r.get("through"):
        moves = [f"data unchanged (the records fall in synthesis {r['through']})"]
    return moves


def _by_synthesis(state) -> dict[str, str]:
    if not isinstance(state, str) or not state:
        return {}
    return dict(part.split(": ", 1) for part in state.split(" | "))


def what_changes(store, records: dict[str, list[dict]]) -> ImpactReport:
    """What adding ``records`` would change, computed inside a transaction rolled back.

    Nothing is written. Raises the store's :class:`~kb.errors.RecordError` for a bad batch.
    """
    G = build_graph(store)
    with store.trial():
        store.add_records(copy.deepcopy(records))
        H = build_graph(store, previous=G)
    return _impact_of(G, H, records)


def add_and_report(store, records: dict[str, list[dict]], **options) -> tuple[dict, ImpactReport]:
    """Add ``records`` for good and report the claims they moved: (counts, impact)."""
    G = build_graph(store)
    counts = store.add_records(records, **options)
    H = build_graph(store, previous=G)
    return counts, _impact_of(G, H, records)


def _impact_of(G, H, records: dict) -> ImpactReport:
    through = claims_through_data(G, H)
    ids = affected_claims(G, records) | affected_claims(H, records) | set(through)
    named = _canonical(G, _named_claims(records)) | _canonical(H, _named_claims(records))
    return impact(claim_states(G, ids), claim_states(H, ids), records, through, named)


def _canonical(G, names) -> set[str]:
    """The ids of the claims ``names`` (ids or aliases) name in ``G``; unknown names dropped."""
    found = {name for name in names if f"claim:{name}" in G}
    rest = [name for name in names if name not in found]
    if rest:
        owners = _alias_index(G)
        found |= {owners[name] for name in rest if name in owners}
    return found


def claims_through_data(G, H) -> dict[str, str]:
    """Claims reached through syntheses: claim id -> the cited syntheses (``'a', 'b'``) whose
    definition, rows or result differ between the graphs ``G`` (before) and ``H`` (after)."""
    nodes = {n for graph in (G, H) for n, kind in graph.nodes(data="kind") if kind == "synthesis"}
    found: dict[str, list[str]] = {}
    for node in sorted(nodes):
        if _node(G, node) == _node(H, node):
            continue
        for graph in (G, H):
            for claim in (graph.succ[node] if node in graph else ()):
                names = found.setdefault(claim.split(":", 1)[1], [])
                if node.split(":", 1)[1] not in names:
                    names.append(node.split(":", 1)[1])
    return {claim: ", ".join(f"'{n}'" for n in names) for claim, names in found.items()}


def affected_claims(G, records: dict) -> set[str]:
    """Claims whose evidence the records can change: the claims they name or link, the
    claims linked to studies they name, and the counter-claims of all those."""
    studies = {r.get("id") for r in records.get("studies") or []} | {
        r.get("study_id") for r in records.get("claim_links") or []}
    ids = _named_claims(records) | {
        v.split(":", 1)[1] for s in studies if f"study:{s}" in G for v in G.successors(f"study:{s}")
        if G.nodes[v]["kind"] == "claim"}
    ids = _canonical(G, ids)
    return ids | {c for i in ids for c in counter_claims(G, i)}


def impact(before: pd.DataFrame, after: pd.DataFrame, records: dict,
           through: dict[str, str] | None = None, named: set[str] | None = None) -> ImpactReport:
    """Compare claim states; keep claims the records name (``named``: their canonical ids,
    when the records name some by an alias), claims reached ``through`` a cited synthesis
    they fall in (claim id -> the syntheses, :func:`claims_through_data`) and claims whose
    state moved."""
    joined = before.add_suffix("_before").join(after.add_suffix("_after"), how="outer")
    counts = ("n_supports", "n_contradicts", "n_qualifies", *DATA_STATE_COLUMNS[:-1])
    for name in counts:
        if f"{name}_before" in joined:
            joined[[f"{name}_before", f"{name}_after"]] = joined[[f"{name}_before", f"{name}_after"]].fillna(0).astype(int)
    for when in ("before", "after"):
        if f"data_{when}" in joined:
            joined[f"data_{when}"] = joined[f"data_{when}"].fillna("")
    joined["data_moved"] = (joined["data_before"] != joined["data_after"]) if "data_before" in joined else False
    joined["through"] = joined.index.map((through or {}).get).fillna("") if len(joined) else ""
    moved = {name: joined[f"{name}_before"] != joined[f"{name}_after"] for name in STATE_COLUMNS}
    joined["balance_moved"] = moved["n_supports"] | moved["n_contradicts"] | moved["n_qualifies"]
    joined["certainty_moved"] = moved["certainty"]
    joined["new_claim"] = ~joined.index.isin(before.index)
    # a new claim was not contested before it existed: only a contested one is news
    joined["contest_moved"] = moved["contested"].where(~joined["new_claim"],
                                                       joined["contested_after"].astype(bool))
    named = (joined.index.isin(list(_named_claims(records) if named is None else named))
             | joined.index.isin(list(through or {})))
    keep = (named | joined["balance_moved"] | joined["certainty_moved"] | joined["contest_moved"]
            | joined["data_moved"])
    rows = joined[keep].rename_axis("claim_id").reset_index()
    return ImpactReport(rows)


def _named_claims(records: dict) -> set[str]:
    links = records.get("claim_links") or []
    claims = records.get("claims") or []
    cited = records.get("synthesis_links") or []
    return ({link.get("claim_id") for link in links} | {link.get("other_claim_id") for link in links}
            | {c.get("id") for c in claims} | {link.get("claim_id") for link in cited}) - {None}


# -- exports -------------------------------------------------------------------------------

def exportable(G) -> nx.MultiDiGraph:
    """A copy without None values, lists joined by ';' and numpy scalars made plain
    (GraphML accepts none of them)."""
    H = G.copy()
    for _, data in [*H.nodes(data=True), *((None, d) for *_, d in H.edges(keys=True, data=True))]:
        for key, value in list(data.items()):
            if value is None:
                del data[key]
            elif isinstance(value, list | tuple | set):
                data[key] = ";".join(map(str, value))
            elif isinstance(value, np.generic):
                data[key] = value.item()
    return H


def write_graphml(G, path) -> Path:
    nx.write_graphml(exportable(G), path)
    return Path(path)


def read_graphml(path) -> nx.MultiDiGraph:
    G = nx.read_graphml(path, force_multigraph=True)
    for key in ("node_default", "edge_default"):  # added by the reader, not in the file's graph
        if not G.graph.get(key):
            G.graph.pop(key, None)
    return G


def write_node_link(G, path) -> Path:
    data = nx.node_link_data(exportable(G), edges="edges")
    Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return Path(path)


def read_node_link(path) -> nx.MultiDiGraph:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return nx.node_link_graph(data, edges="edges")


DOT_STYLE = {"claim": ("box", "#fde9c8"), "study": ("ellipse", "#d6e9f8"),
             "source": ("note", "#eeeeee"), "mechanism": ("hexagon", "#dff0d8"),
             "biome": ("octagon", "#f2dede"), "synthesis": ("box3d", "#e6ddf5")}
DOT_EDGE_COLOURS = {"supports": "#2e7d32", "contradicts": "#c62828", "qualifies": "#ef6c00",
                    "refines": "#6a1b9a", "inconclusive": "#9e9e9e"}


def to_dot(G, kinds=None) -> str:
    """DOT text (for ``st.graphviz_chart`` or graphviz): shapes and colours by ``kind``,
    edges labelled by relation; ``kinds`` keeps only nodes of those kinds."""
    nodes = [n for n, k in G.nodes(data="kind") if kinds is None or k in kinds]
    lines = ["digraph soc_kb {", "  rankdir=LR;", '  node [style=filled, fontsize=10];']
    for node in nodes:
        attributes = G.nodes[node]
        shape, colour = DOT_STYLE.get(attributes.get("kind"), ("ellipse", "#ffffff"))
        label = _short(attributes.get("label", node), 40)
        if attributes.get("kind") == "synthesis":  # evidence from data: its result now
            label += "\n" + _short(synth.summary(attributes).rsplit("; data:", 1)[0], 60)
        lines.append(f"  {_q(node)} [label={_q(label)}, shape={shape}, fillcolor={_q(colour)}];")
    keep = set(nodes)
    for u, v, data in G.edges(data=True):
        if u in keep and v in keep:
            colour = DOT_EDGE_COLOURS.get(data.get("data_relation", data["relation"]), "#777777")
            label = data["relation"]
            if "data_relation" in data and data["data_relation"] != data["relation"]:
                label += f" (data now: {data['data_relation']})"
            style = ", style=dashed" if "data_relation" in data else ""
            lines.append(f"  {_q(u)} -> {_q(v)} [label={_q(label)}, color={_q(colour)}{style}];")
    return "\n".join([*lines, "}"]) + "\n"


def write_dot(G, path) -> Path:
    Path(path).write_text(to_dot(G), encoding="utf-8")
    return Path(path)


def _q(text) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def claim_subgraph(store_or_graph, claim_id: str) -> nx.MultiDiGraph:
    """The claim, the studies, syntheses and claims linked to it, and their counter-claims'
    studies."""
    G = as_graph(store_or_graph)
    node = claim_node(G, claim_id)
    near = {node, *G.predecessors(node), *G.successors(node)}
    near |= {u for c in counter_claims(G, claim_id) for u in G.predecessors(f"claim:{c}")
             if G.nodes[u]["kind"] != "synthesis"}  # the counter-claims' data are theirs
    return G.subgraph(n for n in near if G.nodes[n]["kind"] in ("claim", "study", "synthesis")).copy()


def export_graph(store_or_graph, path, fmt: str) -> Path:
    """Write the graph as graphml, json-graph (node-link JSON) or dot; return the path."""
    writers = {"graphml": write_graphml, "json-graph": write_node_link, "dot": write_dot}
    if fmt not in writers:
        raise KBError(f"unknown graph format '{fmt}'; expected one of {', '.join(GRAPH_FORMATS)}")
    return Path(writers[fmt](as_graph(store_or_graph), path))


# -- rows for synthesis tables -------------------------------------------------------------

#: response -> the study column that gives a direction when a study has no such effect
DIRECTION_COLUMN = {"soc_stock": "soc_direction", "soc_concentration": "soc_direction",
                    "soil_respiration": "respiration_direction",
                    "soil_respiration_rate": "respiration_direction",
                    "heterotrophic_respiration": "respiration_direction"}
SIGNED = ("increase", "decrease", "no_change")


def synthesis_rows(store, response: str = "soc_stock", **filters) -> pd.DataFrame:
    """Effects on ``response`` plus one direction-only row per other matching study.

    A study without any effect but with a stated direction (its
    ``soc_direction`` for SOC responses, ``respiration_direction`` for respiration)
    enters as a row with NaN ``yi``/``vi``, so it counts in the vote columns of
    :func:`evidence.synthesis.synthesize`. Every row gets its ``evidence_kind``.

    Effects flagged ``part of <effect id>`` (:func:`kb.records.part_of_flag`, e.g. one
    month of a COSORE season effect) are left out: they repeat the data of the effect
    they break down. Confounded SRDB contrasts (flag ``confounded: ...``) stay in.
    """
    kinds = evidence_kinds(store)
    every_effect = store.effects(**filters)  # one read: this response's rows and who has any
    effects = every_effect[(every_effect["response"] == response)
                           & ~every_effect["quality_flag"].map(is_part_of).astype(bool)]
    rows = [effects.assign(direction=effects["direction"].where(effects["direction"].notna(), None))]
    column = DIRECTION_COLUMN.get(response)
    if column:
        # a study with effects on any response speaks through them, not through its
        # summary direction (an SRDB site with only Rh effects must not vote on annual Rs)
        quantified = set(every_effect["study_id"])
        rows.append(_direction_only(store.studies(**filters), column, quantified, response))
    frame = pd.concat([r for r in rows if not r.empty], ignore_index=True) if any(
        not r.empty for r in rows) else effects
    return frame.assign(evidence_kind=frame["study_type"].map(kinds))


def _direction_only(studies: pd.DataFrame, column: str, with_effects: set, response: str) -> pd.DataFrame:
    chosen = studies[studies[column].isin(SIGNED) & ~studies["id"].isin(with_effects)]
    return chosen.assign(study_id=chosen["id"], response=response, direction=chosen[column],
                         yi=np.nan, vi=np.nan).drop(columns=["id"])
