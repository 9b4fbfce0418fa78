"""Synthesis tables: pooled effects, vote counts and certainty per group, and evidence maps.

Pure pandas in, pandas out: the caller supplies one row per effect (or per direction-only
study) with the grouping columns; nothing here knows where the rows came from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .certainty import grade_certainty
from .errors import EvidenceError
from .pooling import pool
from .votes import vote_count

#: warming-magnitude bins (°C): [0, 1), [1, 2), [2, 4), [4, inf); negatives go in the first
WARMING_EDGES = (-np.inf, 1.0, 2.0, 4.0, np.inf)
WARMING_LABELS = ("<1 °C", "1–2 °C", "2–4 °C", "≥4 °C")
MISSING = "not_reported"
RATIO_MEASURES = {"ROM", "ROM_BC"}

#: grouping names that are derived from other columns: name -> (source column, maker)
DERIVED = {"warming_bin": "warming_c", "mechanism": "mechanisms"}

COLUMNS = ("k", "n_studies", "estimate", "ci_low", "ci_high", "percent_change",
           "percent_change_low", "percent_change_high", "pi_low", "pi_high", "tau2", "i2",
           "q_pvalue", "n_increase", "n_decrease", "n_no_change", "sign_test_pvalue", "certainty")


def warming_bins(warming_c):
    """Label warming magnitudes (°C) with the bins of :data:`WARMING_LABELS`.

    Parameters
    ----------
    warming_c : array-like of float
        Warming in °C; NaN for unknown.

    Returns
    -------
    pandas.Series of str
        ``"<1 °C"``, ``"1–2 °C"``, ``"2–4 °C"``, ``"≥4 °C"`` (lower bound included,
        upper excluded), or ``"not_reported"`` for NaN.
    """
    values = pd.to_numeric(pd.Series(warming_c), errors="coerce")
    bins = pd.cut(values, WARMING_EDGES, right=False, labels=WARMING_LABELS)
    return bins.astype(object).where(values.notna(), MISSING)


def synthesize(effects, by, response=None, method="REML", test="z", alpha=0.05, scope=None):
    """One row per group: pooled effect, heterogeneity, vote counts and certainty.

    Parameters
    ----------
    effects : pandas.DataFrame
        One row per effect size, or per direction-only study. Columns: ``yi`` and ``vi``
        (NaN for direction-only rows), ``study_id``, optional ``direction`` (increase,
        decrease, no_change, mixed, not_reported), ``response``, ``measure``,
        ``evidence_kind`` (for the certainty column) and the grouping columns.
    by : str or list of str
        Grouping columns, e.g. ``["biome", "mechanism"]``. ``"mechanism"`` explodes the
        list column ``mechanisms``: a study with several mechanisms counts in each of
        them. ``"warming_bin"`` bins ``warming_c`` with :func:`warming_bins`. Missing
        values form their own group, ``"not_reported"``.
    response : str, optional
        Keep only rows with this ``response``.
    method, test, alpha
        Passed to :func:`evidence.pool`.
    scope : dict, optional
        Passed to :func:`evidence.certainty.grade_certainty` for every group.

    Returns
    -------
    pandas.DataFrame
        The grouping columns, then :data:`COLUMNS`, sorted by the grouping columns.

    Raises
    ------
    EvidenceError
        On a missing column, or an empty selection.

    Notes
    -----
    * Pooling uses the rows with finite ``yi`` and ``vi > 0``; ``k`` counts them and
      ``n_studies`` counts distinct ``study_id`` over all rows of the group.
    * k = 1: estimate and CI from the single effect; ``tau2``, ``i2``, ``q_pvalue`` and the
      prediction interval are NaN. A group of direction-only rows has NaN pooled columns.
    * Votes are one per study: the ``direction`` given, else the sign of the study's mean
      ``yi``; a study whose rows disagree votes ``mixed`` (counted in none of the three
      columns). ``sign_test_pvalue`` is :func:`evidence.vote_count`'s two-sided sign test,
      NaN when no study votes increase or decrease.
    * ``percent_change`` = 100 (exp(x) - 1) is filled only for log response ratios
      (``measure`` ROM or ROM_BC, or no ``measure`` column).
    * ``certainty`` is :func:`~evidence.certainty.grade_certainty` on the group's rows
      (needs ``evidence_kind``; else None).
    """
    by = [by] if isinstance(by, str) else list(by)
    frame = prepare_groups(effects, by, response)
    rows = [_group_row(keys, group, by, method, test, alpha, scope)
            for keys, group in frame.groupby(by, sort=True, dropna=False)]
    table = pd.DataFrame(rows, columns=[*by, *COLUMNS])
    return table.sort_values(by, key=_bin_order, kind="stable", ignore_index=True)


def _bin_order(column):
    """Warming bins in numeric order; other columns as they are (missing last)."""
    if column.name == "warming_bin":
        return column.map({label: i for i, label in enumerate(WARMING_LABELS)}).fillna(len(WARMING_LABELS))
    return column.map(lambda v: (v == MISSING, str(v)))


def prepare_groups(effects, by, response=None):
    """The rows of ``effects`` ready to group by ``by``: filtered, exploded, binned, filled."""
    if not isinstance(effects, pd.DataFrame):
        raise EvidenceError("effects must be a pandas DataFrame.")
    frame = effects
    if response is not None:
        if "response" not in frame:
            raise EvidenceError("response given but effects has no 'response' column.")
        frame = frame[frame["response"] == response]
    for name in by:
        frame = _with_column(frame, name)
    if frame.empty:
        raise EvidenceError(f"no effects to synthesize{f' for response {response!r}' if response else ''}.")
    return frame.assign(**{name: frame[name].astype(object).where(frame[name].notna(), MISSING)
                           for name in by})


def _with_column(frame, name):
    if name == "mechanism" and "mechanism" not in frame:
        _need(frame, "mechanisms")
        lists = frame["mechanisms"].map(lambda m: list(m) if isinstance(m, list | tuple) and m else [MISSING])
        return frame.assign(mechanism=lists).explode("mechanism")
    if name == "warming_bin" and "warming_bin" not in frame:
        _need(frame, "warming_c")
        return frame.assign(warming_bin=warming_bins(frame["warming_c"]).to_numpy())
    _need(frame, name)
    return frame


def _need(frame, column):
    if column not in frame:
        raise EvidenceError(f"effects has no column {column!r}; columns are {list(frame.columns)}.")


def _group_row(keys, group, by, method, test, alpha, scope):
    keys = keys if isinstance(keys, tuple) else (keys,)
    row = dict(zip(by, keys, strict=True))
    result = _pool_group(group, method, test, alpha, row)
    row.update(_pooled_columns(result, _is_ratio(group)))
    row.update(_vote_columns(group))
    row["n_studies"] = _study_ids(group).nunique()
    row["certainty"] = _grade(group, scope, result)
    return row


def _pool_group(group, method, test, alpha, keys):
    y, v = _numeric(group)
    if not len(y):
        return None
    # Knapp-Hartung needs k >= 2; one effect gets the z interval
    try:
        return pool(y, v, method=method, test=test if len(y) > 1 else "z", alpha=alpha)
    except EvidenceError as exc:
        named = ", ".join(f"{k}={v!r}" for k, v in keys.items())
        raise type(exc)(f"group {named}: {exc}") from None


def _numeric(group):
    ok = _poolable(group)
    return (pd.to_numeric(group["yi"], errors="coerce")[ok].to_numpy(float),
            pd.to_numeric(group["vi"], errors="coerce")[ok].to_numpy(float))


def _poolable(group):
    """Rows with a finite ``yi`` and a finite ``vi > 0`` (all False without those columns)."""
    if "yi" not in group or "vi" not in group:
        return pd.Series(False, index=group.index)
    y = pd.to_numeric(group["yi"], errors="coerce")
    v = pd.to_numeric(group["vi"], errors="coerce")
    return np.isfinite(y) & np.isfinite(v) & (v > 0)


def variance_notes(effects, by, response=None):
    """The variance assumptions behind a synthesis table: which groups pool how many
    effects whose variance rests on a stated assumption.

    Parameters
    ----------
    effects, by, response
        As for :func:`synthesize`; ``effects`` needs a ``variance_note`` column (else the
        result is empty).

    Returns
    -------
    pandas.DataFrame
        Columns: the grouping columns, ``variance_note``, ``k`` (pooled effects of the group
        carrying that note) and ``pooled`` (True) — plus one row per group and note for
        effects left out of pooling because they have no usable variance (``pooled``
        False; they still vote).

    Notes
    -----
    A number shown without the assumption it rests on is not honest; print these rows
    under the table (the CLI does).
    """
    by = [by] if isinstance(by, str) else list(by)
    columns = [*by, "variance_note", "pooled", "k"]
    frame = prepare_groups(effects, by, response)
    if "variance_note" not in frame:
        return pd.DataFrame(columns=columns)
    has_effect = pd.to_numeric(frame["yi"], errors="coerce").notna() if "yi" in frame else False
    noted = frame.assign(pooled=_poolable(frame))[has_effect & frame["variance_note"].notna()
                                                  & (frame["variance_note"].astype(str) != "")]
    counts = noted.groupby([*by, "variance_note", "pooled"], sort=False).size()
    table = counts.rename("k").reset_index()
    return table.sort_values(["pooled", *by], ascending=[False, *[True] * len(by)],
                             ignore_index=True)[columns]


def _pooled_columns(result, ratio):
    if result is None:
        return {"k": 0}
    pct = result.percent_change() if ratio else (np.nan,) * 3
    spread = ("pi_low", "pi_high", "tau2", "i2", "q_pvalue")
    return {"k": result.k, "estimate": result.estimate, "ci_low": result.ci_low,
            "ci_high": result.ci_high, "percent_change": pct[0], "percent_change_low": pct[1],
            "percent_change_high": pct[2],
            **{name: np.nan if result.k == 1 else getattr(result, name) for name in spread}}


def _is_ratio(group):
    if "measure" not in group:
        return True
    measures = set(group["measure"].dropna())
    return bool(measures) and measures <= RATIO_MEASURES


def _study_ids(group):
    return group["study_id"] if "study_id" in group else pd.Series(range(len(group)))


def study_votes(group):
    """One direction per study: its stated direction, else the sign of its mean ``yi``."""
    frame = pd.DataFrame({"study": _study_ids(group).to_numpy(),
                          "vote": [_row_vote(r) for r in _vote_inputs(group)]})
    return frame.groupby("study", sort=False)["vote"].agg(_one_vote)


def _vote_inputs(group):
    directions = group["direction"] if "direction" in group else pd.Series([None] * len(group))
    yi = pd.to_numeric(group["yi"], errors="coerce") if "yi" in group else pd.Series([np.nan] * len(group))
    return zip(directions.to_numpy(), yi.to_numpy(), strict=True)


def _row_vote(pair):
    direction, yi = pair
    if isinstance(direction, str) and direction:
        return direction
    if yi is None or not np.isfinite(yi):
        return MISSING
    return "increase" if yi > 0 else "decrease" if yi < 0 else "no_change"


def _one_vote(votes):
    known = set(votes) - {MISSING}
    if not known:
        return MISSING
    return known.pop() if len(known) == 1 else "mixed"


def _vote_columns(group):
    votes = study_votes(group)
    counts = votes.value_counts()
    out = {f"n_{d}": int(counts.get(d, 0)) for d in ("increase", "decrease", "no_change")}
    tested = out["n_increase"] + out["n_decrease"]
    out["sign_test_pvalue"] = vote_count(votes.tolist()).pvalue if tested else np.nan
    return out


def _grade(group, scope, result):
    if "evidence_kind" not in group:
        return None
    evidence = group.assign(direction=_row_directions(group))
    return grade_certainty(evidence, scope=scope, pooled=result).grade


def _row_directions(group):
    return [_row_vote(pair) for pair in _vote_inputs(group)]


def evidence_map(frame, rows="biome", columns="mechanism", row_values=None, column_values=None):
    """Counts of distinct studies for every pair of two facets, zeros where evidence is missing.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per study or effect, with ``study_id`` and the two facet columns
        (``"mechanism"`` explodes ``mechanisms``; ``"warming_bin"`` bins ``warming_c``).
    rows, columns : str
        The two facets.
    row_values, column_values : list of str, optional
        All values a facet can take (e.g. a vocabulary), so that facets without any
        study still appear, as rows or columns of zeros.

    Returns
    -------
    pandas.DataFrame
        Index: the ``rows`` values; columns: the ``columns`` values; cells: number of
        distinct studies (a study counts once per cell, in each of its mechanisms).
    """
    if rows == columns:
        raise EvidenceError(f"evidence_map needs two different facets; got {rows!r} twice.")
    data = prepare_groups(frame, [rows, columns])
    data = data.assign(study_id=_study_ids(data).to_numpy())
    table = data.groupby([rows, columns])["study_id"].nunique().unstack(columns, fill_value=0)
    table = table.reindex(index=_values(table.index, row_values),
                          columns=_values(table.columns, column_values), fill_value=0)
    return table.astype(int).rename_axis(index=rows, columns=columns)


def _values(present, wanted):
    if wanted is None:
        return list(present)
    return list(wanted) + [v for v in present if v not in set(wanted)]
