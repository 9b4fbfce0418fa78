"""Invariances checked with hypothesis, and the input contract shared by every evidence
function (bad input, smallest k, homogeneous data) as parametrised tables."""

import contextlib
import os
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import evidence as ev
from evidence import ConvergenceError, meta_regression, pool

# In CI every run draws the same examples (derandomize) and keeps no example database, so a
# red CI run can be repeated and a green one is not luck; elsewhere examples vary per run.
settings.register_profile("evidence-ci", derandomize=True, database=None, deadline=None)
BASE = settings.get_profile("evidence-ci") if os.environ.get("CI") else settings(deadline=None)

METHODS = ["FE", "DL", "REML", "ML", "PM", "HS", "SJ", "HE", "EB"]
# Iterative estimators stop when tau^2 changes by < 1e-12 (absolute), so two fits of
# equivalent data can differ by that much; 1e-7 relative / 1e-9 absolute is far above it.
RTOL, ATOL = 1e-7, 1e-9


@st.composite
def studies(draw, min_k=2, max_k=30):
    k = draw(st.integers(min_k, max_k))
    finite = {"allow_nan": False, "allow_infinity": False}
    yi = draw(st.lists(st.floats(-3, 3, **finite), min_size=k, max_size=k))
    vi = draw(st.lists(st.floats(1e-3, 1, **finite), min_size=k, max_size=k))
    return np.array(yi), np.array(vi)


def fit_or_skip(yi, vi, method, **kwargs):
    try:
        return pool(yi, vi, method=method, **kwargs)
    except ConvergenceError:
        assume(False)  # e.g. a PM root beyond metafor's tau2_max: not a property failure


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


@settings(BASE, max_examples=60)
@given(studies(), st.sampled_from(METHODS), st.randoms(use_true_random=False))
def test_estimate_does_not_depend_on_study_order(data, method, rnd):
    yi, vi = data
    order = list(range(len(yi)))
    rnd.shuffle(order)
    a, b = fit_or_skip(yi, vi, method), fit_or_skip(yi[order], vi[order], method)
    close([a.estimate, a.se, a.tau2, a.i2, a.q], [b.estimate, b.se, b.tau2, b.i2, b.q])
    close(a.weights[order], b.weights)


@settings(BASE, max_examples=60)
@given(studies(), st.sampled_from(METHODS), st.floats(-10, 10), st.sampled_from(["z", "knha"]))
def test_shifting_effects_shifts_estimate_and_ci_only(data, method, c, test):
    yi, vi = data
    a, b = fit_or_skip(yi, vi, method, test=test), fit_or_skip(yi + c, vi, method, test=test)
    close([a.estimate + c, a.ci_low + c, a.ci_high + c], [b.estimate, b.ci_low, b.ci_high])
    close([a.tau2, a.i2, a.se], [b.tau2, b.i2, b.se])


@settings(BASE, max_examples=60)
@given(studies(), st.sampled_from(METHODS), st.floats(0.1, 10))
def test_scaling_effects_scales_estimate_and_tau2(data, method, scale):
    yi, vi = data
    a, b = fit_or_skip(yi, vi, method), fit_or_skip(yi * scale, vi * scale**2, method)
    close([a.estimate * scale, a.se * scale, a.tau2 * scale**2], [b.estimate, b.se, b.tau2])
    # Fisher scoring stops on an absolute change of 1e-12 in tau^2 (as metafor), so near
    # tau^2 = 0 each fit is exact only to ~1e-12 in its own units; I^2 = 100 tau^2 /
    # (s^2 + tau^2) with s^2 down to ~1e-5 here turns that into up to ~1e-5 percent points
    np.testing.assert_allclose(a.i2, b.i2, rtol=RTOL, atol=1e-5)


@settings(BASE, max_examples=100)
@given(studies(min_k=1), st.sampled_from(METHODS))
def test_tau2_and_i2_are_never_negative(data, method):
    res = fit_or_skip(*data, method)
    assert res.tau2 >= 0 and 0 <= res.i2 <= 100 and res.h2 >= 0
    if method != "FE":  # H^2 = tau^2 / s^2 + 1 for random-effects fits
        assert res.h2 >= 1


@settings(BASE, max_examples=40)
@given(studies(min_k=5), st.sampled_from(["FE", "DL", "REML", "ML", "HE", "SJ"]),
       st.randoms(use_true_random=False))
def test_meta_regression_does_not_depend_on_study_order(data, method, rnd):
    yi, vi = data
    x = np.linspace(0, 1, len(yi)) ** 2
    order = list(range(len(yi)))
    rnd.shuffle(order)
    try:
        a = meta_regression(yi, vi, pd.Series(x, name="x"), method=method)
        b = meta_regression(yi[order], vi[order], pd.Series(x[order], name="x"), method=method)
    except ConvergenceError:
        assume(False)  # Fisher scoring oscillates; metafor stops with the same error there
    close(a.coefficients.to_numpy(), b.coefficients.to_numpy())
    close([a.tau2, a.qm, a.qe], [b.tau2, b.qm, b.qe])
    # R^2 = 100 (tau2_0 - tau2) / tau2_0 is a ratio of rounding noise when the intercept-only
    # tau2_0 sits at the boundary (~1e-13, as in metafor), and NaN (metafor's NA) when that
    # fit does not converge; compare it only when tau2_0 > 1e-4 (then the 1e-12 stop of
    # Fisher scoring moves R^2 by < 1e-6 percent points)
    tau2_0 = fit_or_skip(yi, vi, method).tau2
    if method == "FE" or tau2_0 > 1e-4:
        np.testing.assert_allclose(a.r2, b.r2, rtol=RTOL, atol=ATOL, equal_nan=True)
    assert a.tau2 >= 0 and a.i2 >= 0 and (np.isnan(a.r2) or 0 <= a.r2 <= 100)


# ---------------------------------------------------------------- the input contract of every function
# Every public function that takes (yi, vi) validates them the same way, refuses too few
# studies with one EvidenceError, and works on homogeneous data. Extra arguments (clusters,
# groups, moderators) are built to fit the number of studies.


def _pairs(k):
    return [i // 2 for i in range(k)]


FUNCTIONS = {  # name -> (call(yi, vi), smallest k that works, message when k is one less)
    "pool": (lambda y, v: ev.pool(y, v), 1, "yi is empty"),
    "meta_regression": (lambda y, v: ev.meta_regression(y, v, {"x": np.arange(len(y), dtype=float)}),
                        3, "method='REML' with 2 coefficient(s) needs at least 3 studies, got k=2"),
    "subgroups": (lambda y, v: ev.subgroups(y, v, ["a", "b"] * (len(y) // 2) + ["a"] * (len(y) % 2)),
                  2, "groups has a single level"),
    "pool_multilevel": (lambda y, v: ev.pool_multilevel(y, v, [0] * (len(y) - 1) + [1]), 3,
                        "pool_multilevel needs a cluster with 2 or more effects; every cluster has one"),
    "robust_pool": (lambda y, v: ev.robust_pool(y, v, np.arange(len(y))), 2,
                    "robust_pool needs at least 2 clusters; all 1 effects are in one cluster"),
    "egger_test rma": (lambda y, v: ev.egger_test(y, v), 3, "egger_test needs at least 3 studies, got k=2"),
    "egger_test lm": (lambda y, v: ev.egger_test(y, v, model="lm"), 3, "egger_test needs at least 3 studies"),
    "rank_test": (lambda y, v: ev.rank_test(y, v), 3, "rank_test needs at least 3 studies, got k=2"),
    "trim_and_fill": (lambda y, v: ev.trim_and_fill(y, v), 3,
                      "trim_and_fill without side needs at least 3 studies, got k=2"),
    "fail_safe_n": (lambda y, v: ev.fail_safe_n(y, v), 1, "yi is empty"),
    "fail_safe_n Orwin": (lambda y, v: ev.fail_safe_n(y, v, method="Orwin"), 1, "yi is empty"),
    "leave_one_out": (lambda y, v: ev.leave_one_out(y, v), 2, "leave_one_out needs at least 2 studies, got k=1"),
    "cumulative": (lambda y, v: ev.cumulative(y, v), 2, "cumulative needs at least 2 studies, got k=1"),
    "influence": (lambda y, v: ev.influence(y, v), 2, "influence needs at least 2 studies, got k=1"),
}
YI = [0.12, 0.31, -0.05, 0.44, 0.27, 0.08]
VI = [0.010, 0.025, 0.040, 0.015, 0.030, 0.020]
BAD = [  # (case, yi, vi, message fragment)
    ("lengths differ", YI, VI[:-1], "inputs must have the same length, but yi has 6, vi has 5"),
    ("NaN effect", YI[:2] + [np.nan] + YI[3:], VI, "yi must be finite; position 2"),
    ("infinite effect", [np.inf] + YI[1:], VI, "yi must be finite; position 0"),
    ("NaN variance", YI, VI[:4] + [np.nan] + VI[5:], "vi must be finite; position 4"),
    ("zero variance", YI, VI[:1] + [0.0] + VI[2:], "vi must be > 0; position 1 is"),
    ("negative variance", YI, VI[:3] + [-0.02] + VI[4:], "vi must be > 0; position 3 is"),
    ("text effect", ["0.1"] * 5 + ["high"], VI, "yi must contain numbers only"),
    ("2-d effects", [YI], [VI], "yi must be one-dimensional"),
]


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("case,yi,vi,message", BAD, ids=[b[0] for b in BAD])
def test_every_function_refuses_bad_effects_with_one_clear_error(name, case, yi, vi, message):
    with pytest.raises(ev.EvidenceError, match=re.escape(message)):
        FUNCTIONS[name][0](yi, vi)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_works_at_its_smallest_k_and_refuses_one_fewer(name):
    call, k_min, message = FUNCTIONS[name]
    call(YI[:k_min], VI[:k_min])
    with pytest.raises(ev.EvidenceError, match=re.escape(message)):
        call(YI[: k_min - 1], VI[: k_min - 1])


def _heterogeneity_fields(result):
    """tau2/i2/sigma2 values wherever a result (or result table) reports them."""
    if isinstance(result, pd.DataFrame):
        return {c: result[c].to_numpy() for c in ("tau2", "i2", "tau2_del") if c in result}
    if isinstance(result, ev.SubgroupResult):
        return {c: result.table[c].to_numpy() for c in ("tau2", "i2")}
    names = ("tau2", "i2", "sigma2")
    return {n: np.atleast_1d(getattr(result, n)) for n in names if hasattr(result, n)}


# Zero heterogeneity, up to how each estimate reaches its boundary: tau^2 is truncated at 0
# or stopped by Fisher scoring within 1e-12 of it; pool_multilevel's optimiser stops within
# ML_ATOL = 1e-8 of a variance component at 0 (tests/metafor_bias_golden.py); I^2 (percent)
# = 100 tau^2 / (s^2 + tau^2) with s^2 >= min(VI) = 0.01 turns 1e-10 into 1e-6.
ZERO_ATOL = {"tau2": 1e-10, "tau2_del": 1e-10, "sigma2": 1e-8, "i2": 1e-6}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_homogeneous_data_work_and_report_zero_heterogeneity(name):
    # identical effects with unequal variances: no heterogeneity at all
    result = FUNCTIONS[name][0]([0.2] * 6, VI)
    for field, values in _heterogeneity_fields(result).items():
        finite = values[~np.isnan(values)]
        assert np.all(np.abs(finite) <= ZERO_ATOL[field]), f"{name}: {field} = {values}"


@settings(BASE, max_examples=40)
@given(studies(min_k=4))
def test_no_function_reports_negative_heterogeneity(data):
    yi, vi = data
    for name in ("meta_regression", "subgroups", "pool_multilevel", "leave_one_out", "influence"):
        try:
            result = FUNCTIONS[name][0](yi, vi)
        except ev.ConvergenceError:
            continue
        except ev.EvidenceError as exc:  # collinear draws (e.g. all vi equal) only
            assert "collinear" in str(exc) or "differ" in str(exc)
            continue
        for field, values in _heterogeneity_fields(result).items():
            assert np.all(values[~np.isnan(values)] >= 0), f"{name}: {field} = {values}"


@settings(BASE, max_examples=40)
@given(studies(min_k=4), st.randoms(use_true_random=False))
def test_bias_and_robust_results_do_not_depend_on_study_order(data, rnd):
    # Kendall's tau (rank_test) jumps when two values swap order, so values that differ
    # only in the last bits could swap with the summation order: keep 3 decimals, which
    # leaves exact ties or clearly separated values
    yi, vi = np.round(data[0], 3), np.maximum(np.round(data[1], 3), 1e-3)
    # identical effects make Egger's lm fit exact: slope and its SE are both rounding noise
    # (R's lm warns "essentially perfect fit"); the table test above covers that case
    assume(np.ptp(vi) > 0 and np.ptp(yi) > 1e-6)
    order = list(range(len(yi)))
    rnd.shuffle(order)
    clusters = np.array(_pairs(len(yi)))
    pairs = [
        (ev.egger_test(yi, vi, model="lm"), ev.egger_test(yi[order], vi[order], model="lm"),
         ("statistic", "limit_estimate")),
        (ev.rank_test(yi, vi), ev.rank_test(yi[order], vi[order]), ("tau", "pvalue")),
        (ev.fail_safe_n(yi, vi, method="Rosenberg"),
         ev.fail_safe_n(yi[order], vi[order], method="Rosenberg"), ("n", "mean_effect")),
        (ev.robust_pool(yi, vi, clusters, method="DL"),
         ev.robust_pool(yi[order], vi[order], clusters[order], method="DL"), ("estimate", "se")),
    ]
    # rounded draws tie often: trim-and-fill must rank ties the same in any order (a k0
    # that cycles raises ConvergenceError, as metafor stops: not an order question)
    with contextlib.suppress(ev.ConvergenceError):
        pairs.append((ev.trim_and_fill(yi, vi, method="DL"),
                      ev.trim_and_fill(yi[order], vi[order], method="DL"),
                      ("k0", "estimate", "tau2")))
    for a, b, names in pairs:
        close([getattr(a, n) for n in names], [getattr(b, n) for n in names])
