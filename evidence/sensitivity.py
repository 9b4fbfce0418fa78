"""Sensitivity analyses of a pooled estimate: leave-one-out, cumulative meta-analysis and
influence diagnostics, as metafor's ``leave1out``, ``cumul`` and ``influence``; and of a
whole synthesis table under alternative assumptions (:func:`synthesis_sensitivity`)."""

import inspect
from collections.abc import Callable
from dataclasses import dataclass

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


# ---------------------------------------------------------------- a synthesis under alternatives

BASE = "base"
#: what a scenario can change in a group's conclusion; a change in any makes the group fragile
CONCLUSIONS = ("sign", "significance", "certainty")
#: what is read from each row of ``synthesize``, by name (``k`` is the older k_effects)
SUMMARY = ("model", "k_effects", "n_sites", "n_sources", "estimate", "ci_low", "ci_high",
           "percent_change", "tau2", "i2", "certainty")
DELTAS = ("delta_estimate", "delta_tau2", "delta_i2")
SITE_COLUMNS = ("scenario", "dropped", *SUMMARY, *DELTAS, "changes", "note")
TABLE_COLUMNS = (*SITE_COLUMNS[:-2], "estimate_min", "estimate_max", "changes", "note",
                 "fragile", "fragile_under")
_COUNTS = ("k_effects", "n_sites", "n_sources")
_TEXT = ("model", "certainty")


@dataclass(frozen=True)
class Scenario:
    """An alternative assumption: a function from the synthesis rows to the rows under it.

    Attributes
    ----------
    transform : callable
        ``transform(rows) -> rows``. It receives a copy of the whole ``rows`` DataFrame given
        to :func:`synthesis_sensitivity` (every response, before grouping) and returns a
        DataFrame of the same kind: some rows dropped, some ``vi`` changed, and so on. It
        may raise :class:`~evidence.EvidenceError`; the message then names the scenario.
    description : str
        One line: what is assumed instead.
    plausible : bool
        Whether a changed conclusion under this scenario makes a group fragile. An
        implausible scenario is shown but never counts.
    """

    transform: Callable
    description: str = ""
    plausible: bool = True


@dataclass(frozen=True)
class LeaveOneSiteOut:
    """A family of scenarios: in each group, each site that has a pooled effect is dropped
    in turn (:func:`leave_one_site_out`)."""

    column: str = "study_id"
    description: str = "each site of the group dropped in turn"
    plausible: bool = True


def scale_variance(factor, where=None, *, description=None):
    """Scenario: the sampling variance ``vi`` of the rows that ``where`` selects, times ``factor``.

    Parameters
    ----------
    factor : float
        A finite number > 0. For example, 1 / n when a stored variance was built from an SD
        as if it were the SE of a mean of n.
    where : callable, optional
        ``where(rows)`` returns one bool per row: a numpy array in row order, or a Series
        on the index of ``rows``. The default selects every row.
    description : str, optional
        One line for the table. The default names the factor.

    Returns
    -------
    Scenario
        Its transform leaves every other row and column exactly as it was.
    """
    factor = _positive(factor, "scale_variance factor")
    where = _callable_or_none(where, "scale_variance where")

    def transform(rows):
        _need_columns(rows, "vi", "scale_variance")
        mask = _mask(where, rows, "scale_variance where")
        vi = pd.to_numeric(rows["vi"], errors="coerce")
        return rows.assign(vi=rows["vi"].where(~mask, vi * factor))

    text = f"vi × {factor:.4g}" + (" on the selected rows" if where else "")
    return Scenario(transform, description or text)


def drop_rows(where, *, description=None):
    """Scenario: the rows that ``where`` selects are left out.

    Parameters
    ----------
    where : callable
        ``where(rows)`` returns one bool per row (True: drop), as for :func:`scale_variance`.
    description : str, optional
        One line for the table.

    Returns
    -------
    Scenario
    """
    if where is None:
        raise EvidenceError("drop_rows needs where: a function rows -> one bool per row.")
    where = _callable_or_none(where, "drop_rows where")

    def transform(rows):
        return rows[~_mask(where, rows, "drop_rows where")]

    return Scenario(transform, description or "selected rows dropped")


def leave_one_site_out(column="study_id", *, description=None):
    """Scenario family: in each group, each of its sites dropped in turn.

    Parameters
    ----------
    column : str
        The column naming each row's site. ``synthesize`` counts sites by ``study_id``.
    description : str, optional
        One line for the table.

    Returns
    -------
    LeaveOneSiteOut
        See :func:`synthesis_sensitivity` for how the refits are summarised and when they
        make a group fragile.
    """
    if not isinstance(column, str) or not column:
        raise EvidenceError(f"leave_one_site_out column must be a column name; got {column!r:.60}.")
    return LeaveOneSiteOut(column, description or LeaveOneSiteOut.description)


@dataclass(frozen=True, eq=False)
class SensitivityResult:
    """Result of :func:`synthesis_sensitivity`.

    Attributes
    ----------
    by : tuple of str
        The grouping columns.
    table : pandas.DataFrame
        One row per (group, scenario). The grouping columns, then :data:`TABLE_COLUMNS`.
        The ``base`` row of each group comes first and the scenarios follow in the order
        given.
    groups : pandas.DataFrame
        One row per group. The grouping columns, then the base ``estimate``, ``ci_low``,
        ``ci_high`` and ``certainty``, then ``fragile`` and ``fragile_under``.
    sites : pandas.DataFrame
        Every leave-one-site-out refit, one row per (group, dropped site). The grouping
        columns, then :data:`SITE_COLUMNS`.
    scenarios : pandas.DataFrame
        ``name``, ``kind`` (``rows`` or ``leave one site out``), ``description`` and
        ``plausible``, in the order given.
    base : pandas.DataFrame
        The base ``synthesize`` table, as it returned it.
    """

    by: tuple
    table: pd.DataFrame
    groups: pd.DataFrame
    sites: pd.DataFrame
    scenarios: pd.DataFrame
    base: pd.DataFrame

    def to_frame(self):
        """The (group, scenario) table: a copy of :attr:`table`."""
        return self.table.copy()


def synthesis_sensitivity(rows, by, scenarios, *, response=None, **synthesize_options):
    """Re-run a synthesis under alternative assumptions and flag the groups whose
    conclusion depends on them.

    Parameters
    ----------
    rows : pandas.DataFrame
        The rows for :func:`evidence.synthesize` (one per effect or direction-only study).
    by : str or list of str
        Grouping columns, as for :func:`evidence.synthesize`.
    scenarios : dict
        Name -> scenario, in the order the table shows them. A scenario is a
        :class:`Scenario` (:func:`scale_variance`, :func:`drop_rows`), a plain function
        ``rows -> rows`` (taken as a plausible :class:`Scenario`), or
        :func:`leave_one_site_out`. ``"base"`` is reserved.
    response : str, optional
        Passed to :func:`evidence.synthesize`.
    **synthesize_options
        Passed to :func:`evidence.synthesize` unchanged for the base fit and for every
        refit. Examples are ``model``, ``method``, ``test``, ``alpha`` and ``scope``.

    Returns
    -------
    SensitivityResult

    Raises
    ------
    EvidenceError
        One line. Raised for a scenario that is not one of the kinds above, an empty or
        reserved name, an option ``synthesize`` does not take, a scenario whose transform
        fails or returns something other than a DataFrame, or anything ``synthesize``
        refuses (e.g. no rows). The message names the scenario.

    Notes
    -----
    The base row of a group is ``synthesize(rows, by, response, **options)``. A row-wise
    scenario's row is the same group in ``synthesize(transform(rows), by, response,
    **options)``: a direct refit, so the table can be checked against one. Only the
    groups of the base table are reported. A group with no rows left gets NaN numbers and
    a ``note``.

    Leave one site out refits each group once for every site (``column`` value) that has
    a pooled effect (finite ``yi``, ``vi`` > 0) in that group. All of the site's rows in
    the group are dropped, its votes included. Each refit is the group's row in
    ``synthesize`` of the rows without that site, and :attr:`SensitivityResult.sites`
    lists them all. The group's row in ``table`` shows the refit whose estimate moves
    furthest from the base (``dropped`` names that site; ties go to the first in sorted
    order). ``estimate_min`` and ``estimate_max`` give the range over all refits, and
    ``changes`` lists every change of conclusion and the site whose removal causes it. A
    group with fewer than 2 such sites is not refitted (``note``).

    A scenario row's ``changes`` are those of :data:`CONCLUSIONS` that differ from the
    base row:

    * ``sign``: both estimates are finite and nonzero, with opposite signs, and at least one
      of the two CIs excludes 0 (a flip between two intervals that both include 0 leaves
      the conclusion "no clear effect" as it was).
    * ``significance``: both CIs are finite, and one excludes 0 while the other does not.
    * ``certainty``: both grades are given, and they differ.

    A lost estimate or grade (no rows or no poolable effect left) is a ``note``, not a
    change. A group is ``fragile`` when any plausible scenario changes its conclusion.
    For leave one site out, this means dropping a single site changes it. ``fragile_under``
    names each such scenario with its changes. ``delta_*`` columns are the scenario
    minus the base. ``tau2`` is what ``synthesize`` reports: the total of the variance
    components for the multilevel model.
    """
    from .synthesis import prepare_groups, synthesize

    by = [by] if isinstance(by, str) else list(by)
    named = _checked_scenarios(scenarios)
    _check_options(synthesize, synthesize_options)
    base_table = synthesize(rows, by, response=response, **synthesize_options)
    base = {_key(r, by): _summary(r) for r in base_table.to_dict(orient="records")}
    rows_of = {key: [_scenario_row(BASE, "", b, b)] for key, b in base.items()}
    site_rows = []
    for name, scenario in named.items():
        if isinstance(scenario, LeaveOneSiteOut):
            prepared = prepare_groups(rows, by, response)
            found, sites = _leave_sites_out(name, scenario, prepared, by, base,
                                            lambda f: synthesize(f, by, **synthesize_options))
            site_rows += sites
        else:
            table = _refit_all(name, scenario, rows, by, response,
                               lambda f: synthesize(f, by, response=response, **synthesize_options))
            found = {key: _scenario_row(name, "", b, table.get(key)) for key, b in base.items()}
        for key in base:
            rows_of[key].append(found[key])
    return _result(by, rows_of, site_rows, named, base_table)


def _refit_all(name, scenario, rows, by, response, fit):
    """The scenario's synthesize rows by group key ({} when no row is left)."""
    try:
        changed = scenario.transform(rows.copy())
    except EvidenceError as exc:
        raise type(exc)(f"scenario {name!r}: {exc}") from None
    if not isinstance(changed, pd.DataFrame):
        raise EvidenceError(f"scenario {name!r} returned {type(changed).__name__}, "
                            "not a DataFrame of rows.")
    if response is not None and "response" in changed:
        if not (changed["response"] == response).any():
            return {}
    elif changed.empty:
        return {}
    table = _fit_named(name, fit, changed)
    return {_key(r, by): _summary(r) for r in table.to_dict(orient="records")}


def _fit_named(name, fit, frame):
    try:
        return fit(frame)
    except EvidenceError as exc:
        raise type(exc)(f"scenario {name!r}: {exc}") from None


def _leave_sites_out(name, family, prepared, by, base, fit):
    """({key: the group's summary row}, [every refit as a row]) for leave one site out."""
    if family.column not in prepared:
        raise EvidenceError(f"scenario {name!r}: leave_one_site_out needs a {family.column!r} "
                            f"column naming each row's site; columns are {list(prepared.columns)[:12]}.")
    groups = {_as_tuple(k): g for k, g in prepared.groupby(by, sort=False, dropna=False)}
    found, site_rows = {}, []
    for key, b in base.items():
        group = groups[key]
        labels = _site_labels(group, family.column)
        pooled = sorted(set(labels[_poolable(group)]))
        if len(pooled) < 2:
            found[key] = _scenario_row(name, "", b, None, note=f"{len(pooled)} site(s) with a pooled "
                              "effect: leave one site out needs 2 or more")
            continue
        refits = [_scenario_row(name, site, b, _one_group(name, fit, group[labels != site]))
                  for site in pooled]
        site_rows += [{**dict(zip(by, key, strict=True)), **r} for r in refits]
        found[key] = _most_moved(refits, len(pooled))
    return found, site_rows


def _one_group(name, fit, frame):
    records = _fit_named(name, fit, frame).to_dict(orient="records")
    return _summary(records[0])


def _most_moved(refits, n_sites):
    """The refit that moves the estimate most, with the range and every change of all."""
    moves = np.array([abs(r["delta_estimate"]) for r in refits], dtype=float)
    estimates = np.array([r["estimate"] for r in refits], dtype=float)
    if np.isfinite(moves).any():
        row = dict(refits[int(np.nanargmax(moves))])
    else:
        row = {**refits[0], "dropped": ""}
    finite = estimates[np.isfinite(estimates)]
    row["estimate_min"] = float(finite.min()) if finite.size else np.nan
    row["estimate_max"] = float(finite.max()) if finite.size else np.nan
    row["changes"] = tuple(f"{c} without {r['dropped']}" for r in refits for c in r["changes"])
    row["note"] = (f"{n_sites} sites dropped in turn; shown: the one that moves the estimate "
                   "most")
    return row


def _site_labels(group, column):
    """Each row's site as text; a row without one is a site of its own (as synthesize)."""
    values = group[column]
    missing = (values.isna() | (values.astype(str) == "")).to_numpy()
    own = np.array([f"row {i}" for i in group.index], dtype=object)
    return np.where(missing, own, values.astype(str).to_numpy(dtype=object))


def _poolable(group):
    """Rows with a finite ``yi`` and ``vi`` > 0, the rows synthesize pools."""
    if "yi" not in group or "vi" not in group:
        return np.zeros(len(group), dtype=bool)
    y = pd.to_numeric(group["yi"], errors="coerce").to_numpy(float)
    v = pd.to_numeric(group["vi"], errors="coerce").to_numpy(float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(y) & np.isfinite(v) & (v > 0)


def _summary(record):
    """The :data:`SUMMARY` values of one synthesize row, whichever version wrote it."""
    out = {name: record.get(name) for name in SUMMARY}
    if out["k_effects"] is None:
        out["k_effects"] = record.get("k")
    for name in SUMMARY:
        if name in _TEXT:
            out[name] = out[name] if isinstance(out[name], str) else None
        else:
            out[name] = _float(out[name])
    return out


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def _blank():
    return {name: None if name in _TEXT else np.nan for name in SUMMARY}


def _scenario_row(name, dropped, base, now, note=None):
    """A scenario's row for one group: its numbers, the change from base, what flipped."""
    present = now is not None
    now = now if present else _blank()
    row = {"scenario": name, "dropped": dropped, **now,
           **{f"delta_{n}": now[n] - base[n] for n in ("estimate", "tau2", "i2")},
           "estimate_min": np.nan, "estimate_max": np.nan,
           "changes": tuple(_conclusion_changes(base, now))}
    if note is None:
        note = "" if present else "no rows of this group left"
        if present and base["k_effects"] > 0 and not now["k_effects"] > 0:
            note = "no poolable effect left (votes only)"
    row["note"] = note
    return row


def _conclusion_changes(base, now):
    """Which of :data:`CONCLUSIONS` differ between two summaries (see the Notes above)."""
    changes = []
    b, s = base["estimate"], now["estimate"]
    was, is_now = _excludes_zero(base), _excludes_zero(now)
    # a flip between two intervals that both include 0 changes no conclusion ("no clear
    # effect" either way); a flip out of or into a clear direction does
    if np.isfinite(b) and np.isfinite(s) and np.sign(b) * np.sign(s) < 0 and (was or is_now):
        changes.append("sign")
    if was is not None and is_now is not None and was != is_now:
        changes.append("significance")
    if base["certainty"] and now["certainty"] and base["certainty"] != now["certainty"]:
        changes.append("certainty")
    return changes


def _excludes_zero(summary):
    low, high = summary["ci_low"], summary["ci_high"]
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    return bool(low > 0 or high < 0)


def _result(by, rows_of, site_rows, named, base_table):
    plausible = {name: s.plausible for name, s in named.items()}
    table, groups = [], []
    for key, rows in rows_of.items():
        under = [f"{r['scenario']} ({', '.join(r['changes'])})" for r in rows[1:]
                 if r["changes"] and plausible[r["scenario"]]]
        keys = dict(zip(by, key, strict=True))
        table += [{**keys, **r, "fragile": bool(under), "fragile_under": "; ".join(under)}
                  for r in rows]
        groups.append({**keys, **{n: rows[0][n] for n in ("estimate", "ci_low", "ci_high",
                                                           "certainty")},
                       "fragile": bool(under), "fragile_under": "; ".join(under)})
    scenario_rows = [{"name": name, "kind": "leave one site out"
                      if isinstance(s, LeaveOneSiteOut) else "rows",
                      "description": s.description, "plausible": s.plausible}
                     for name, s in named.items()]
    return SensitivityResult(
        tuple(by), _frame(table, [*by, *TABLE_COLUMNS]),
        pd.DataFrame(groups, columns=[*by, "estimate", "ci_low", "ci_high", "certainty",
                                      "fragile", "fragile_under"]),
        _frame(site_rows, [*by, *SITE_COLUMNS]),
        pd.DataFrame(scenario_rows, columns=["name", "kind", "description", "plausible"]),
        base_table)


def _frame(rows, columns):
    frame = pd.DataFrame(rows, columns=columns)
    frame["changes"] = frame["changes"].map(lambda c: ", ".join(c) if isinstance(c, tuple) else c)
    for name in _COUNTS:
        frame[name] = pd.to_numeric(frame[name]).astype("Int64")
    return frame


def _key(record, by):
    return tuple(record[b] for b in by)


def _as_tuple(key):
    return key if isinstance(key, tuple) else (key,)


def _checked_scenarios(scenarios):
    """Name -> Scenario or LeaveOneSiteOut, checked; a plain function becomes a Scenario."""
    if not isinstance(scenarios, dict):
        raise EvidenceError(f"scenarios must be a dict of name -> scenario; got "
                            f"{type(scenarios).__name__}.")
    if not scenarios:
        raise EvidenceError("scenarios is empty; give at least one, e.g. "
                            "{'leave one site out': leave_one_site_out()}.")
    named = {}
    for name, scenario in scenarios.items():
        if not isinstance(name, str) or not name.strip() or name == BASE:
            raise EvidenceError(f"scenario name {name!r:.60} must be a non-empty string other "
                                f"than {BASE!r}.")
        if isinstance(scenario, Scenario | LeaveOneSiteOut):
            named[name] = scenario
        elif callable(scenario):
            named[name] = Scenario(scenario)
        else:
            raise EvidenceError(f"scenario {name!r} is a {type(scenario).__name__}; must be a "
                                "function rows -> rows, a Scenario (scale_variance, drop_rows) "
                                "or leave_one_site_out().")
    return named


def _check_options(synthesize, options):
    taken = [p for p in inspect.signature(synthesize).parameters
             if p not in ("effects", "by", "response")]
    for name in options:
        if name not in taken:
            raise EvidenceError(f"synthesize has no option {name!r}; it takes {taken} "
                                "(by and response are arguments of synthesis_sensitivity).")


def _positive(value, what):
    number = np.nan if isinstance(value, bool) else _float(value)
    if not (np.isfinite(number) and number > 0):
        raise EvidenceError(f"{what} must be a finite number > 0; got {value!r:.60}.")
    return number


def _callable_or_none(where, what):
    if where is not None and not callable(where):
        raise EvidenceError(f"{what} must be a function rows -> one bool per row; got "
                            f"{type(where).__name__}.")
    return where


def _need_columns(rows, column, what):
    if not isinstance(rows, pd.DataFrame) or column not in rows:
        raise EvidenceError(f"{what} needs a DataFrame with a {column!r} column.")


def _mask(where, rows, what):
    """``where(rows)`` as a bool array in row order, checked."""
    if where is None:
        return np.ones(len(rows), dtype=bool)
    mask = where(rows)
    if isinstance(mask, pd.Series):
        if not mask.index.equals(rows.index):
            raise EvidenceError(f"{what} returned a Series not on the rows' index.")
        mask = mask.to_numpy()
    values = np.asarray(mask)
    if values.shape != (len(rows),) or values.dtype.kind != "b":
        raise EvidenceError(f"{what} must return one bool per row ({len(rows)}); got "
                            f"dtype {values.dtype} and shape {values.shape}.")
    return values
