"""Synthesis tables: pooled effects, vote counts and certainty per group, and evidence maps.

Pure pandas in, pandas out: the caller supplies one row per effect (or per direction-only
study) with the grouping columns; nothing here knows where the rows came from.

Effects are not independent: one site (``study_id``, a study record) reports several
years or treatments, and one source (``source_key``, a paper or a database study) several
sites. By default every group is fitted as effects nested in sites nested in sources
(:func:`evidence.multilevel.pool_nested`); the table says per row how many effects,
sites and sources stand behind the number.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from . import _checks, _dist
from .certainty import assumed_variance, grade_certainty
from .errors import EvidenceError
from .votes import vote_count

#: warming-magnitude bins (°C): [0, 1), [1, 2), [2, 4), [4, inf); negatives go in the first
WARMING_EDGES = (-np.inf, 1.0, 2.0, 4.0, np.inf)
WARMING_LABELS = ("<1 °C", "1–2 °C", "2–4 °C", "≥4 °C")
MISSING = "not_reported"
RATIO_MEASURES = {"ROM", "ROM_BC"}

#: grouping names that are derived from other columns: name -> (source column, maker)
DERIVED = {"warming_bin": "warming_c", "mechanism": "mechanisms"}

#: the models of :func:`synthesize`
MODELS = ("multilevel", "independent", "robust")
#: estimators and tests each model accepts (the first test is its default)
MODEL_METHODS = {"multilevel": ("REML", "ML"), "independent": _checks.METHODS,
                 "robust": _checks.METHODS}
MODEL_TESTS = {"multilevel": ("z", "t"), "independent": ("z", "knha"), "robust": ("t",)}
SINGLE_SITE = "single site"
VOTES_ONLY = "votes only"

COLUMNS = ("model", "k_effects", "n_sites", "n_sources", "n_studies", "estimate", "ci_low",
           "ci_high", "percent_change", "percent_change_low", "percent_change_high", "pi_low",
           "pi_high", "tau2", "sigma2_source", "sigma2_site", "sigma2_effect", "i2", "q_pvalue",
           "n_assumed_variance", "n_increase", "n_decrease", "n_no_change", "sign_test_pvalue",
           "certainty", "certainty_reasons", "notes")


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


def synthesize(effects, by, response=None, method="REML", test=None, alpha=0.05, scope=None,
               *, model="multilevel"):
    """One row per group: pooled effect, what stands behind it, heterogeneity, vote counts
    and certainty with its reasons.

    Parameters
    ----------
    effects : pandas.DataFrame
        One row per effect size, or per direction-only study. Columns: ``yi`` and ``vi``
        (NaN for direction-only rows), ``study_id`` (the site: a study record),
        ``source_key`` (the paper or database study the site comes from), optional
        ``direction`` (increase, decrease, no_change, mixed, not_reported), ``response``,
        ``measure``, ``variance_note``, ``quality_flag``, ``evidence_kind`` (for the
        certainty columns) and the grouping columns.
    by : str or list of str
        Grouping columns, e.g. ``["biome", "mechanism"]``. ``"mechanism"`` explodes the
        list column ``mechanisms``: a study with several mechanisms counts in each of
        them. ``"warming_bin"`` bins ``warming_c`` with :func:`warming_bins`. Missing
        values form their own group, ``"not_reported"``.
    response : str, optional
        Keep only rows with this ``response``.
    method : str
        Estimator of the variance components: ``"REML"`` or ``"ML"`` for the multilevel
        model; any of :func:`evidence.pool`'s for ``"independent"`` and for the working
        model of ``"robust"``.
    test : str, optional
        ``"z"`` or ``"t"`` (k - 1 df) for the multilevel model, ``"z"`` or ``"knha"`` for
        the independent one; default ``"z"``. The robust model always tests with t on
        Satterthwaite's df: leave ``test`` unset (or ``"t"``).
    alpha : float
        1 - confidence level.
    scope : dict, optional
        The question's scope (biome, ecosystem, depth_class, mechanism, response), passed
        to :func:`evidence.certainty.grade_certainty` for every group.
    model : {"multilevel", "independent", "robust"}
        How effects of one site and one source are pooled; see Notes.

    Returns
    -------
    pandas.DataFrame
        The grouping columns, then :data:`COLUMNS`, sorted by the grouping columns.

    Raises
    ------
    EvidenceError
        On a missing column, an empty selection, an unknown model, or a method or test
        the model does not have (one line naming what to use instead).
    ConvergenceError
        If a group's likelihood cannot be maximised (the message names the group).

    Notes
    -----
    Pooling uses the rows with finite ``yi`` and ``vi > 0`` (:func:`fit_group`):

    * ``"multilevel"`` (default): :func:`evidence.multilevel.pool_nested`, metafor's
      ``rma.mv(yi, vi, random = ~ 1 | source/site/effect)``. ``tau2`` is the sum of the
      components ``sigma2_source``, ``sigma2_site`` and ``sigma2_effect`` (a component
      the group's design cannot identify is NaN, and ``notes`` says why). ``i2`` is the
      multilevel I² of Cheung (2014), as metafor's FAQ computes it:
      100 tau2 / (tau2 + s²), s² = (k - 1) sum(w) / ((sum w)² - sum(w²)), w = 1 / vi,
      the typical sampling variance.
    * ``"independent"``: :func:`evidence.pool` on the effects as if independent
      (``rma(yi, vi)``); ``notes`` says how many effects share a site.
    * ``"robust"``: the random-effects working model ``rma(yi, vi, method)`` with a
      cluster-robust SE by source, clubSandwich's CR2 with a t test on Satterthwaite's
      df (:func:`evidence.robust_pool` with ``vcov="CR2"``). With fewer than 2 sources it
      cannot be computed: the row has no estimate and ``notes`` says so. The prediction
      interval is ``predict.rma``'s on the robust fit: estimate ± t(df) sqrt(se² + tau2).
    * A group with ONE site is that site's own estimate (``model`` = ``"single site"``),
      whatever the model: its effects pooled within the site (``pool_nested``, which is
      then a random-effects pool of the site's effects, for the multilevel model;
      ``pool`` otherwise, with the z test for the robust one). Never a pooled
      multi-study result; its certainty is at most Low.
    * A group without a poolable effect has ``model`` = ``"votes only"``.

    ``k_effects`` counts pooled effects, ``n_sites`` and ``n_sources`` the sites and
    sources behind them (a row without ``source_key`` counts its site as its own source;
    ``notes`` says how many), ``n_studies`` the distinct ``study_id`` of all rows of the
    group, the direction-only ones included. ``n_assumed_variance`` counts the pooled
    effects whose ``variance_note`` says the variance is assumed
    (:func:`evidence.certainty.assumed_variance`). With k = 1 the estimate and a z
    interval come from the single effect; heterogeneity columns and the prediction
    interval are NaN.

    Votes are one per study: the ``direction`` given, else the sign of the study's mean
    ``yi``; a study whose rows disagree votes ``mixed`` (counted in none of the three
    columns). ``sign_test_pvalue`` is :func:`evidence.vote_count`'s two-sided sign test,
    NaN when no study votes increase or decrease. ``percent_change`` = 100 (exp(x) - 1) is
    filled only for log response ratios (``measure`` ROM or ROM_BC, or no ``measure``
    column). ``certainty`` and ``certainty_reasons`` are
    :func:`~evidence.certainty.grade_certainty` on the group's rows with the group's fit
    (needs ``evidence_kind``; else None).

    References
    ----------
    Cheung, M. W.-L. (2014). Modeling dependent effect sizes with three-level
    meta-analyses: a structural equation modeling approach. Psychological Methods, 19,
    211-229.
    """
    by = [by] if isinstance(by, str) else list(by)
    method, test = check_model(model, method, test)
    alpha = _checks.check_alpha(alpha)
    frame = prepare_groups(effects, by, response)
    rows = [_group_row(keys, group, by, model, method, test, alpha, scope)
            for keys, group in frame.groupby(by, sort=True, dropna=False)]
    table = pd.DataFrame(rows, columns=[*by, *COLUMNS])
    return table.sort_values(by, key=_bin_order, kind="stable", ignore_index=True)


def check_model(model, method, test):
    """``(method, test)`` checked for ``model``, with the model's default test filled in.

    Raises
    ------
    EvidenceError
        One line: the model, what was asked, and what to use instead.
    """
    if model not in MODELS:
        raise EvidenceError(f"unknown model {model!r}; must be one of {list(MODELS)}.")
    if not isinstance(method, str) or method.upper() not in {m.upper() for m in _checks.METHODS}:
        raise EvidenceError(f"unknown method {method!r}; must be one of {list(_checks.METHODS)}.")
    method = _checks.check_choice(method, _checks.METHODS, "method")
    if method not in MODEL_METHODS[model]:
        raise EvidenceError(
            f"model='multilevel' is fitted by REML or ML (as rma.mv), not method={method!r}; "
            f"use method='REML' or 'ML', or model='independent' for {method}.")
    tests = MODEL_TESTS[model]
    if test is None:
        return method, tests[0]
    if not isinstance(test, str) or test.lower() not in tests:
        if model == "robust":
            raise EvidenceError(f"model='robust' tests with t on Satterthwaite's df (CR2); "
                                f"got test={test!r}: leave test unset.")
        other = "independent" if model == "multilevel" else "multilevel"
        raise EvidenceError(f"model={model!r} takes test {' or '.join(map(repr, tests))}, not "
                            f"{test!r}" + (f" (that is model={other!r}'s)"
                                           if test in MODEL_TESTS[other] else "") + ".")
    return method, test.lower()


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


def _group_row(keys, group, by, model, method, test, alpha, scope):
    keys = keys if isinstance(keys, tuple) else (keys,)
    row = dict(zip(by, keys, strict=True))
    try:
        fit = fit_group(group, model, method, test, alpha)
    except EvidenceError as exc:
        named = ", ".join(f"{k}={v!r}" for k, v in row.items())
        raise type(exc)(f"group {named}: {exc}") from None
    row.update(_pooled_columns(fit, _is_ratio(group)))
    row.update(_vote_columns(group))
    row["n_studies"] = _study_ids(group).nunique()
    row["n_assumed_variance"] = int(assumed_variance(group[_poolable(group)]).sum())
    certainty = _grade(group, scope, fit)
    row["certainty"] = certainty.grade if certainty else None
    row["certainty_reasons"] = certainty.reasons_line() if certainty else None
    row["notes"] = "; ".join(fit.notes) if fit else "votes only: no effect with a variance"
    return row


# ---------------------------------------------------------------- one group's fit


@dataclass(frozen=True)
class GroupFit:
    """The pooled effect of one group, as :func:`fit_group` fits it.

    ``model`` is ``"multilevel"``, ``"independent"``, ``"robust"`` or ``"single site"``;
    ``sigma2`` is (source, site, effect), NaN where the model has no such component or
    the design cannot identify it; ``tau2`` is their sum (the working model's tau² for
    robust, the between-effect variance for a single site fitted by ``pool``). ``df`` is
    Satterthwaite's for robust rows, else NaN. ``weights`` are the pooled effects' shares
    of the model's weight (GLS weights V⁻¹1, summing to 1), in row order. ``result`` is the
    underlying :class:`~evidence.PoolResult`, ``NestedResult`` or ``RobustResult`` (None
    when the robust SE cannot be computed).
    """

    model: str
    k: int
    n_sites: int
    n_sources: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    tau2: float
    sigma2: tuple
    i2: float
    q_pvalue: float
    df: float
    method: str
    test: str
    notes: tuple = ()
    weights: np.ndarray = field(default=None, repr=False, compare=False)
    result: object = field(default=None, repr=False, compare=False)

    def to_frame(self):
        """One-row DataFrame; ``sigma2`` as one column per level, ``notes`` as one string."""
        row = {name: getattr(self, name) for name in self.__dataclass_fields__
               if name not in ("weights", "result")}
        for level, s2 in zip(("source", "site", "effect"), row.pop("sigma2"), strict=True):
            row[f"sigma2_{level}"] = s2
        row["notes"] = "; ".join(row["notes"])
        return pd.DataFrame([row])


def fit_group(rows, model="multilevel", method="REML", test=None, alpha=0.05):
    """Pool one group's effects with ``model``, keeping track of sites and sources.

    Parameters
    ----------
    rows : pandas.DataFrame
        The group's rows (``yi``, ``vi``, ``study_id``, ``source_key``); rows without a
        finite ``yi`` and ``vi > 0`` are left out.
    model, method, test, alpha
        As for :func:`synthesize`.

    Returns
    -------
    GroupFit or None
        None when no row can be pooled.

    Notes
    -----
    Sites are ``study_id`` values (a row without one is a site of its own); sources are
    ``source_key`` values read as in R's ``source/site`` (a site without a source is its
    own source). See :func:`synthesize` for the models.
    """
    method, test = check_model(model, method, test)
    ok = _poolable(rows)
    if not ok.any():
        return None
    y = pd.to_numeric(rows["yi"], errors="coerce")[ok].to_numpy(float)
    v = pd.to_numeric(rows["vi"], errors="coerce")[ok].to_numpy(float)
    units = _units(rows[ok])
    if units.n_sites == 1:
        return _single_site(y, v, units, model, method, test, alpha)
    return {"multilevel": _multilevel, "independent": _independent,
            "robust": _robust}[model](y, v, units, method, test, alpha)


@dataclass(frozen=True)
class _Units:
    """Integer source and site codes of pooled rows (sites unique across sources)."""

    source: np.ndarray
    site: np.ndarray
    site_source: np.ndarray
    n_sources: int
    n_sites: int
    notes: tuple


def _units(rows):
    n = len(rows)
    site = _codes(rows["study_id"]) if "study_id" in rows else np.full(n, -1, dtype=np.intp)
    notes = []
    if (site < 0).any():  # no study_id: each such row is a site of its own
        notes.append(f"{int((site < 0).sum())} effect(s) without a study_id: each its own site")
        site = np.where(site < 0, site.max(initial=-1) + 1 + np.arange(n), site)
    source = _codes(rows["source_key"]) if "source_key" in rows else np.full(n, -1, dtype=np.intp)
    if "source_key" not in rows:
        notes.append("no source_key: each site counts as its own source")
    elif (source < 0).any():
        lone = int(pd.unique(site[source < 0]).size)
        notes.append(f"{lone} site(s) without a source_key: each counts as its own source")
    source = np.where(source < 0, source.max(initial=-1) + 1 + site, source)
    source = pd.factorize(source)[0].astype(np.intp)
    site = pd.factorize(source.astype(np.int64) * (int(site.max()) + 1) + site)[0].astype(np.intp)
    site_source = np.empty(int(site.max()) + 1, dtype=np.intp)
    site_source[site] = source
    return _Units(source, site, site_source, int(source.max()) + 1, len(site_source), tuple(notes))


def _codes(labels):
    """pandas.factorize codes of labels, -1 for missing ones (None, NaN, empty string)."""
    values = labels.astype(object).where(labels.notna() & (labels.astype(str) != ""), None)
    return pd.factorize(values, use_na_sentinel=True)[0].astype(np.intp)


def _single_site(y, v, units, model, method, test, alpha):
    notes = ["one site: its own estimate, not pooled across sites"]
    if len(y) == 1 and test != "z" and model != "robust":
        notes.append("one effect: z interval")
    if model == "robust":
        notes.append("robust SE needs ≥ 2 sources (1 here): model-based z interval within the site")
    test = "z" if len(y) == 1 or model == "robust" else test
    fit = (_multilevel if model == "multilevel" else _independent)(y, v, units, method, test, alpha)
    return replace(fit, model=SINGLE_SITE, notes=(*units.notes, *notes))


def _multilevel(y, v, units, method, test, alpha):
    from .multilevel import LEVELS, pool_nested

    res = pool_nested(y, v, units.source, units.site, method=method, test=test, alpha=alpha)
    sigma2 = tuple(s if ok else np.nan for s, ok in zip(res.sigma2, res.estimable, strict=True))
    tau2 = float(sum(res.sigma2))
    notes = [_not_estimable(level, j, units, len(y))
             for j, level in enumerate(LEVELS) if not res.estimable[j]]
    s1, s2, s3 = res.sigma2
    weights = _gls_shares(v + s3, s1, s2, units)
    return GroupFit("multilevel", len(y), units.n_sites, units.n_sources, res.estimate, res.se,
                    res.ci_low, res.ci_high, *_spread(res.pi_low, res.pi_high, len(y)), tau2,
                    sigma2, _i2(tau2, v), _q_pvalue(y, v, res.q_pvalue), np.nan, res.method,
                    res.test, (*units.notes, *notes), weights, res)


def _not_estimable(level, j, units, k):
    counts = (units.n_sources, units.n_sites, k)
    if counts[j] == 1:
        return f"σ² {level} not estimable: one {level}"
    outer = ("source", "site")[j - 1]
    return f"σ² {level} not estimable: each {outer} has one {level} (in σ² {outer})"


def _independent(y, v, units, method, test, alpha):
    from .pooling import pool

    res = pool(y, v, method=method, test=test, alpha=alpha)
    shared = len(y) - units.n_sites
    notes = [f"pooled as if independent: {len(y)} effects from {units.n_sites} sites"] if shared else []
    return GroupFit("independent", len(y), units.n_sites, units.n_sources, res.estimate, res.se,
                    res.ci_low, res.ci_high, *_spread(res.pi_low, res.pi_high, len(y)),
                    _when(res.tau2, len(y)), (np.nan,) * 3, _when(res.i2, len(y)),
                    _when(res.q_pvalue, len(y)), np.nan, res.method, res.test,
                    (*units.notes, *notes), res.weights / res.weights.sum(), res)


def _robust(y, v, units, method, test, alpha):
    from .multilevel import robust_pool
    from .pooling import pool

    if units.n_sources < 2:
        working = pool(y, v, method=method, alpha=alpha)
        return GroupFit("robust", len(y), units.n_sites, units.n_sources, *(np.nan,) * 7,
                        (np.nan,) * 3, np.nan, np.nan, np.nan, working.method, "t",
                        (*units.notes, "robust SE needs ≥ 2 sources (1 here): no estimate; "
                                       "use model='multilevel'"),
                        working.weights / working.weights.sum(), None)
    res = robust_pool(y, v, units.source, method=method, alpha=alpha, vcov="CR2")
    crit = float(_dist.t_isf(alpha / 2, res.df))
    half_pi = crit * np.sqrt(res.se**2 + res.tau2)
    w = 1 / (v + res.tau2)
    notes = (*units.notes, f"CR2 SE clustered by {units.n_sources} sources, t test on "
                           f"Satterthwaite df = {res.df:.3g}")
    return GroupFit("robust", len(y), units.n_sites, units.n_sources, res.estimate, res.se,
                    res.ci_low, res.ci_high, res.estimate - half_pi, res.estimate + half_pi,
                    res.tau2, (np.nan,) * 3, _i2(res.tau2, v), _q_pvalue(y, v), res.df,
                    res.method, "t", notes, w / w.sum(), res)


def _spread(low, high, k):
    return (low, high) if k > 1 else (np.nan, np.nan)


def _when(value, k):
    return value if k > 1 else np.nan


def _i2(tau2, v):
    """Multilevel I² (%): total variance over total plus the typical sampling variance."""
    if len(v) < 2:
        return np.nan
    w = 1 / v
    typical = (len(v) - 1) * w.sum() / (w.sum() ** 2 - np.sum(w**2))
    return float(100 * tau2 / (tau2 + typical))


def _q_pvalue(y, v, given=None):
    """Cochran's Q test (weights 1 / vi, k - 1 df), as metafor's QE for these models."""
    if len(y) < 2:
        return np.nan
    if given is not None:
        return given
    w = 1 / v
    q = float(np.sum(w * (y - np.sum(w * y) / w.sum()) ** 2))
    return float(_dist.chi2_sf(q, len(y) - 1))


def _gls_shares(d, s1, s2, units):
    """Each effect's share of the GLS weight 1'V⁻¹ of the nested model."""
    from .robust import WorkingModel, gls_weights

    x = gls_weights(WorkingModel(d, float(s1), float(s2), units.site, units.site_source,
                                 units.n_sources))
    return x / x.sum()


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
        Columns: the grouping columns, ``variance_note``, ``pooled`` (True), ``k``
        (pooled effects of the group carrying that note) and ``assumed`` (the note says
        the variance is assumed: :func:`evidence.certainty.assumed_variance`) — plus one
        row per group and note for effects left out of pooling because they have no
        usable variance (``pooled`` False; they still vote).

    Notes
    -----
    A number shown without the assumption it rests on is not honest; print these rows
    under the table (the CLI does).
    """
    by = [by] if isinstance(by, str) else list(by)
    columns = [*by, "variance_note", "pooled", "k", "assumed"]
    frame = prepare_groups(effects, by, response)
    if "variance_note" not in frame:
        return pd.DataFrame(columns=columns)
    has_effect = pd.to_numeric(frame["yi"], errors="coerce").notna() if "yi" in frame else False
    noted = frame.assign(pooled=_poolable(frame))[has_effect & frame["variance_note"].notna()
                                                  & (frame["variance_note"].astype(str) != "")]
    counts = noted.groupby([*by, "variance_note", "pooled"], sort=False).size()
    table = counts.rename("k").reset_index()
    table["assumed"] = (assumed_variance(table) & table["pooled"]).to_numpy(bool)
    return table.sort_values(["pooled", *by], ascending=[False, *[True] * len(by)],
                             ignore_index=True)[columns]


def _pooled_columns(fit, ratio):
    if fit is None:
        return {"model": VOTES_ONLY, "k_effects": 0, "n_sites": 0, "n_sources": 0}
    pct = (100 * np.expm1([fit.estimate, fit.ci_low, fit.ci_high]) if ratio
           else (np.nan,) * 3)
    heterogeneity = {"tau2": fit.tau2, "sigma2_source": fit.sigma2[0], "sigma2_site": fit.sigma2[1],
                     "sigma2_effect": fit.sigma2[2], "i2": fit.i2, "q_pvalue": fit.q_pvalue}
    if fit.k == 1:
        heterogeneity = dict.fromkeys(heterogeneity, np.nan)
    return {"model": fit.model, "k_effects": fit.k, "n_sites": fit.n_sites,
            "n_sources": fit.n_sources, "estimate": fit.estimate, "ci_low": fit.ci_low,
            "ci_high": fit.ci_high, "percent_change": float(pct[0]),
            "percent_change_low": float(pct[1]), "percent_change_high": float(pct[2]),
            "pi_low": fit.pi_low, "pi_high": fit.pi_high, **heterogeneity}


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


def _grade(group, scope, fit):
    if "evidence_kind" not in group:
        return None
    evidence = group.assign(direction=_row_directions(group))
    return grade_certainty(evidence, scope=scope, pooled=fit)


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
