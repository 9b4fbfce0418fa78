"""pool_multilevel() and pool_nested() against metafor's rma.mv, robust_pool() (CR1) against
robust(), plus bad input. CR2 is tested in test_robust_cr2.py."""

import re

import metafor_multilevel_golden as mv
import numpy as np
import pandas as pd
import pytest
from metafor_bias_golden import GOLD, ML_ATOL, ML_RTOL, assert_close, case_id, cluster, data

from evidence import EvidenceError, NestedResult, pool, pool_multilevel, pool_nested, robust_pool
from evidence.multilevel import (
    LEVELS,
    MultilevelResult,
    RobustResult,
    _evaluate,
    estimable_levels,
)

ML_FIELDS = ("estimate", "se", "statistic", "pvalue", "ci_low", "ci_high", "pi_low", "pi_high",
             "q", "q_pvalue", "loglik", "sigma2")
ROBUST_FIELDS = ("estimate", "se", "statistic", "pvalue", "ci_low", "ci_high", "tau2", "df")


def fit(case):
    name = case["data"]
    return pool_multilevel(*data(name), cluster(name), method=case["method"], test=case["test"])


@pytest.mark.parametrize("case", GOLD["multilevel"], ids=case_id)
def test_multilevel_matches_rma_mv(case):
    res = fit(case)
    for name in ML_FIELDS:
        assert_close(getattr(res, name), case[name], f"{name} ({case['call']})",
                     rtol=ML_RTOL, atol=ML_ATOL)
    assert (res.k, res.n_clusters) == (case["k"], case["n_clusters"])


@pytest.mark.parametrize("case", GOLD["multilevel"], ids=case_id)
def test_multilevel_likelihood_is_at_least_metafors(case):
    # the optimum we report must be as good as metafor's, not merely close to it
    assert fit(case).loglik >= case["loglik"] - 1e-10


def test_golden_covers_boundary_and_both_methods():
    cases = GOLD["multilevel"]
    assert {(c["method"], c["test"]) for c in cases} == {("REML", "z"), ("ML", "z"), ("REML", "t"), ("ML", "t")}
    assert any(c["boundary"] for c in cases) and not all(c["boundary"] for c in cases)


def _dense_loglik(y, v, labels, sigma2, reml):
    """The (restricted) log-likelihood with explicit k x k matrices, as metafor computes it."""
    same = np.equal.outer(labels, labels).astype(float)
    V = np.diag(v + sigma2[1]) + sigma2[0] * same
    Vinv = np.linalg.inv(V)
    one = np.ones(len(y))
    info = one @ Vinv @ one
    r = y - (one @ Vinv @ y) / info
    ll = -0.5 * (np.linalg.slogdet(V)[1] + r @ Vinv @ r)
    if reml:
        return ll - 0.5 * ((len(y) - 1) * np.log(2 * np.pi) + np.log(info)) + 0.5 * np.log(len(y))
    return ll - 0.5 * len(y) * np.log(2 * np.pi)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_sherman_morrison_likelihood_equals_dense_computation(method):
    yi, vi = data("konstantopoulos2011")
    labels = np.array(cluster("konstantopoulos2011"))
    res = pool_multilevel(yi, vi, labels, method=method)
    dense = _dense_loglik(yi, vi, labels, res.sigma2, method == "REML")
    np.testing.assert_allclose(res.loglik, dense, rtol=1e-12)


def test_result_does_not_depend_on_row_order_or_label_type():
    yi, vi = data("synthetic_clustered")
    labels = np.array(cluster("synthetic_clustered"))
    base = pool_multilevel(yi, vi, labels)
    perm = np.random.default_rng(7).permutation(len(yi))
    shuffled = pool_multilevel(yi[perm], vi[perm], [f"site-{c}" for c in labels[perm]])
    np.testing.assert_allclose([shuffled.estimate, shuffled.se, *shuffled.sigma2],
                               [base.estimate, base.se, *base.sigma2], rtol=1e-8, atol=1e-12)


def test_homogeneous_data_gives_zero_components_and_the_fixed_effect_estimate():
    yi, vi = data("synthetic_hom")
    res = pool_multilevel(yi, vi, cluster("synthetic_hom"))
    assert res.sigma2 == (0.0, 0.0)
    np.testing.assert_allclose(res.estimate, pool(yi, vi, method="FE").estimate, rtol=1e-13)


def test_to_frame_splits_sigma2():
    res = pool_multilevel(*data("konstantopoulos2011"), cluster("konstantopoulos2011"))
    frame = res.to_frame()
    assert isinstance(res, MultilevelResult) and len(frame) == 1
    assert frame.loc[0, "sigma2_between"] == res.sigma2[0]
    assert frame.loc[0, "sigma2_within"] == res.sigma2[1]
    assert "sigma2" not in frame.columns


def test_hundred_thousand_effects_are_fitted():
    rng = np.random.default_rng(3)
    k = 100_000
    labels = rng.integers(0, k // 5, k)
    vi = rng.uniform(0.01, 0.05, k)
    yi = 0.3 + rng.normal(0, 0.2, k // 5)[labels] + rng.normal(0, np.sqrt(0.01 + vi))
    res = pool_multilevel(yi, vi, labels)
    # large-sample consistency: the truth is mu = 0.3, sigma2 = (0.04, 0.01)
    np.testing.assert_allclose([res.estimate, *res.sigma2], [0.3, 0.04, 0.01], atol=0.01)


MULTILEVEL_ERRORS = [
    ("length mismatch", [0.1, 0.2, 0.3], [0.01, 0.02, 0.03], [1, 1], {},
     "yi has 3 and cluster has 2"),
    ("NaN effect", [0.1, np.nan, 0.3], [0.01, 0.02, 0.03], [1, 1, 2], {}, "yi must be finite; position 1"),
    ("zero variance", [0.1, 0.2, 0.3], [0.01, 0.0, 0.03], [1, 1, 2], {}, "vi must be > 0; position 1"),
    ("missing cluster", [0.1, 0.2, 0.3], [0.01, 0.02, 0.03], [1, None, 2], {},
     "cluster must not be missing; position 1"),
    ("one cluster", [0.1, 0.2, 0.3], [0.01, 0.02, 0.03], ["a", "a", "a"], {},
     "needs at least 2 clusters; all 3 effects are in one cluster"),
    ("only singletons", [0.1, 0.2, 0.3], [0.01, 0.02, 0.03], [1, 2, 3], {},
     "every cluster has one, so between- and within-cluster variance are not identifiable"),
    ("unknown method", [0.1, 0.2, 0.3], [0.01, 0.02, 0.03], [1, 1, 2], {"method": "DL"},
     "unknown method 'DL'; must be one of ['REML', 'ML']"),
    ("knha is not an rma.mv test", [0.1, 0.2, 0.3], [0.01, 0.02, 0.03], [1, 1, 2],
     {"test": "knha"}, "unknown test 'knha'; must be one of ['z', 't']"),
    ("bad alpha", [0.1, 0.2, 0.3], [0.01, 0.02, 0.03], [1, 1, 2], {"alpha": 1.5},
     "alpha must be a number between 0 and 1"),
]


@pytest.mark.parametrize("case,yi,vi,labels,kwargs,message", MULTILEVEL_ERRORS,
                         ids=[c[0] for c in MULTILEVEL_ERRORS])
def test_pool_multilevel_refuses_bad_input(case, yi, vi, labels, kwargs, message):
    with pytest.raises(EvidenceError, match=re.escape(message)):
        pool_multilevel(yi, vi, labels, **kwargs)


# ---------------------------------------------------------------- nested: source / site / effect

NESTED_FIELDS = ("estimate", "se", "statistic", "pvalue", "ci_low", "ci_high", "pi_low",
                 "pi_high", "q", "q_pvalue", "loglik")


def fit_nested(case):
    yi, vi, source, site = mv.data(case["data"])
    return pool_nested(yi, vi, source, site, method=case["method"], test=case["test"])


@pytest.mark.parametrize("case", mv.GOLD["nested"], ids=mv.case_id)
def test_nested_matches_rma_mv(case):
    res = fit_nested(case)
    for name in NESTED_FIELDS:
        mv.assert_close(getattr(res, name), case[name], f"{name} ({case['call']})",
                        rtol=mv.MV_RTOL, atol=mv.MV_ATOL)
    counts = (res.n_sources, res.n_sites, res.k)
    # where two levels are confounded metafor splits their variance; compare the sums
    expected = mv.merged_sigma2(case["sigma2"], res.estimable, counts)
    mv.assert_close(res.sigma2, expected, f"sigma2 ({case['call']})", rtol=mv.MV_RTOL,
                    atol=mv.MV_ATOL)
    assert list(counts[: len(case["n_levels"])]) == case["n_levels"]
    # a single-level factor metafor fixes at 0 is not estimable here either
    assert not any(res.estimable[j] for j, fixed in enumerate(case["sigma2_fixed"]) if fixed)


@pytest.mark.parametrize("case", mv.GOLD["nested"], ids=mv.case_id)
def test_nested_likelihood_is_at_least_metafors(case):
    assert fit_nested(case).loglik >= case["loglik"] - mv.LOGLIK_SLACK


def test_nested_golden_covers_methods_tests_and_degenerate_designs():
    cases = mv.GOLD["nested"]
    full = [c for c in cases if c["data"] == "synthetic_nested"]
    assert {(c["method"], c["test"]) for c in full} == {("REML", "z"), ("ML", "z"), ("REML", "t"),
                                                       ("ML", "t")}
    assert any(c["fallback"] for c in cases) and not all(c["fallback"] for c in cases)
    flags = {fit_nested(c).estimable for c in cases}
    # all identified; effects confounded with sites; sites with sources; a single source
    assert {(True, True, True), (True, True, False), (True, False, True),
            (False, True, True)} <= flags


def _dense_nested_loglik(res, yi, vi, sigma2):
    """The (restricted) log-likelihood with explicit k x k matrices, as metafor computes it."""
    data = res._model.data
    same_source = np.equal.outer(data.source, data.source)
    same_site = np.equal.outer(data.site, data.site)
    V = np.diag(vi + sigma2[2]) + sigma2[1] * same_site + sigma2[0] * same_source
    Vinv = np.linalg.inv(V)
    one = np.ones(len(yi))
    info = one @ Vinv @ one
    r = yi - (one @ Vinv @ yi) / info
    ll = -0.5 * (np.linalg.slogdet(V)[1] + r @ Vinv @ r)
    if res.method == "REML":
        return ll - 0.5 * ((len(yi) - 1) * np.log(2 * np.pi) + np.log(info)) + 0.5 * np.log(len(yi))
    return ll - 0.5 * len(yi) * np.log(2 * np.pi)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_nested_woodbury_likelihood_is_a_maximum_of_the_dense_one(method):
    yi, vi, source, site = mv.data("synthetic_nested")
    res = pool_nested(yi, vi, source, site, method=method)
    best = _dense_nested_loglik(res, yi, vi, np.array(res.sigma2))
    # the O(k) computation equals the k x k one to rounding (condition number ~1e3)
    np.testing.assert_allclose(res.loglik, best, rtol=1e-12)
    for j in range(3):  # and no small move of one component improves it
        for step in (-1e-4, 1e-4):
            moved = np.array(res.sigma2)
            moved[j] = max(moved[j] + step, 0.0)
            assert _dense_nested_loglik(res, yi, vi, moved) < best


@pytest.mark.parametrize("seed", range(6))
def test_nested_fit_is_the_global_maximum_on_random_designs(seed):
    # small random designs, some with components at 0: no optimiser started anywhere on a
    # grid finds a higher (restricted) likelihood than pool_nested's
    from scipy import optimize

    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 10))
    source = np.repeat(np.arange(n), rng.integers(1, 8, n))
    site = rng.integers(0, 3, len(source))
    vi = rng.uniform(0.005, 0.1, len(source))
    truth = rng.choice([0.0, 0.02, 0.05], 3)
    yi = (rng.normal(0, np.sqrt(truth[0]), n)[source]
          + rng.normal(0, np.sqrt(truth[1]), (n, 3))[source, site]
          + rng.normal(0, np.sqrt(truth[2] + vi)))
    for method in ("REML", "ML"):
        res = pool_nested(yi, vi, source, site, method=method)
        data = res._model.data
        free = np.array(res.estimable)

        def negll(x, data=data, free=free):
            return -_evaluate(data, np.where(free, x, 0.0), order=0).loglik

        for start in (0.001, 0.3):
            other = optimize.minimize(negll, np.full(3, start), method="L-BFGS-B",
                                      bounds=[(0, None)] * 3)
            # L-BFGS-B stops at ~1e-9 relative; it may reach, never beat, the maximum
            assert -other.fun <= res.loglik + 1e-9 * abs(res.loglik)


def test_every_effect_in_its_own_source_is_the_random_effects_model():
    yi, vi, _, _ = mv.data("synthetic_nested")
    k = len(yi)
    for method in ("REML", "ML"):
        res = pool_nested(yi, vi, np.arange(k), np.zeros(k), method=method)
        fit = pool(yi, vi, method=method)
        assert res.estimable == (True, False, False)
        # both iterate to a relative change of ~1e-12 in tau^2
        np.testing.assert_allclose([res.estimate, res.se, res.sigma2[0], res.pi_low],
                                   [fit.estimate, fit.se, fit.tau2, fit.pi_low], rtol=1e-9)


def test_pool_multilevel_is_pool_nested_with_one_effect_per_site():
    yi, vi = data("synthetic_clustered")
    labels = cluster("synthetic_clustered")
    two = pool_multilevel(yi, vi, labels)
    nested = pool_nested(yi, vi, labels, np.arange(len(yi)))
    assert nested.estimable == (True, True, False)
    # same likelihood, two parametrisations of the iteration: equal to convergence
    np.testing.assert_allclose([nested.estimate, nested.se, *nested.sigma2[:2], nested.loglik],
                               [two.estimate, two.se, *two.sigma2, two.loglik], rtol=1e-9)


def test_site_labels_are_read_within_their_source():
    yi, vi, source, site = mv.data("synthetic_nested")
    res = pool_nested(yi, vi, source, site)
    unique_sites = [f"{s}-{t}" for s, t in zip(source, site, strict=True)]
    again = pool_nested(yi, vi, source, unique_sites)
    assert res.n_sites == len(set(unique_sites)) < len(yi) and res.n_sites > len(set(site))
    assert (again.estimate, again.sigma2, again.loglik) == (res.estimate, res.sigma2, res.loglik)


def test_nested_result_does_not_depend_on_row_order_or_label_type():
    yi, vi, source, site = mv.data("synthetic_nested")
    base = pool_nested(yi, vi, source, site)
    perm = np.random.default_rng(11).permutation(len(yi))
    src = [f"paper {source[i]}" for i in perm]
    shuffled = pool_nested(yi[perm], vi[perm], src, np.asarray(site)[perm].astype(float))
    # summation order changes the last bits; the optimum moves by far less than 1e-8
    np.testing.assert_allclose([shuffled.estimate, shuffled.se, *shuffled.sigma2],
                               [base.estimate, base.se, *base.sigma2], rtol=1e-8, atol=1e-12)


LABEL_KINDS = {
    "numpy int": lambda labels: np.asarray(labels),
    "negative ints": lambda labels: -7 - np.asarray(labels),
    "strings": lambda labels: [f"study {x}" for x in labels],
    "pandas Int64": lambda labels: pd.Series(labels, dtype="Int64"),
    "categorical": lambda labels: pd.Categorical([str(x) for x in labels]),
    "series with its own index": lambda labels: pd.Series(labels, index=np.arange(len(labels)) + 100),
}


@pytest.mark.parametrize("kind", LABEL_KINDS)
def test_any_kind_of_labels_gives_the_same_fit(kind):
    yi, vi, source, site = mv.data("synthetic_nested")
    base = pool_nested(yi, vi, list(source), list(site))
    other = pool_nested(yi, vi, LABEL_KINDS[kind](source), LABEL_KINDS[kind](site))
    # codes may come in another order, which only reorders sums
    np.testing.assert_allclose([other.estimate, other.se, *other.sigma2],
                               [base.estimate, base.se, *base.sigma2], rtol=1e-9, atol=1e-15)
    assert (other.n_sources, other.n_sites) == (base.n_sources, base.n_sites)


ESTIMABLE = [  # (n_sources, n_sites, k) -> identified (source, site, effect) components
    ((30, 80, 234), (True, True, True)),
    ((11, 56, 56), (True, True, False)),  # one effect per site
    ((25, 25, 91), (True, False, True)),  # one site per source
    ((1, 8, 36), (False, True, True)),  # a single source
    ((1, 1, 5), (False, False, True)),
    ((5, 5, 5), (True, False, False)),  # every effect its own source: pool()
    ((1, 5, 5), (False, True, False)),
    ((1, 1, 1), (False, False, False)),
]


@pytest.mark.parametrize("counts,expected", ESTIMABLE, ids=[str(c) for c, _ in ESTIMABLE])
def test_estimable_levels(counts, expected):
    assert estimable_levels(*counts) == expected


def test_degenerate_designs_say_why_a_component_is_zero():
    yi, vi, source, site = mv.data("synthetic_one_site")
    res = pool_nested(yi, vi, source, site)
    # a component fixed (not estimated) is exactly 0 by construction
    assert res.estimable == (True, False, True) and res.sigma2[1] == 0
    assert res.notes == ("sigma2_site fixed at 0: every source has one site, so the two "
                         "components are confounded and their sum is reported as "
                         "sigma2_source (metafor splits it equally between them).",)
    one = pool_nested(*mv.data("synthetic_one_source"))
    assert one.estimable[0] is False and one.sigma2[0] == 0  # fixed, as above
    assert one.notes == ("sigma2_source fixed at 0: there is only one source.",)
    single = pool_nested([0.3], [0.01], ["a"], ["x"])
    assert (single.estimate, single.se, single.sigma2) == (0.3, pytest.approx(0.1), (0.0,) * 3)


def test_nested_homogeneous_data_give_zero_components_and_the_fixed_effect_estimate():
    yi, vi = data("synthetic_hom")
    labels = cluster("synthetic_hom")
    res = pool_nested(yi, vi, labels, [i % 2 for i in range(len(yi))])
    assert res.sigma2 == (0.0, 0.0, 0.0)
    np.testing.assert_allclose(res.estimate, pool(yi, vi, method="FE").estimate, rtol=1e-13)


def test_nested_to_frame_names_every_level():
    res = pool_nested(*mv.data("synthetic_one_site"))
    frame = res.to_frame()
    assert isinstance(res, NestedResult) and len(frame) == 1
    for j, level in enumerate(LEVELS):
        assert frame.loc[0, f"sigma2_{level}"] == res.sigma2[j]
        assert frame.loc[0, f"estimable_{level}"] == res.estimable[j]
    assert {"k", "n_sites", "n_sources", "notes", "pi_low"} <= set(frame.columns)
    assert "sigma2" not in frame.columns and "_model" not in frame.columns


def test_hundred_thousand_nested_effects_are_fitted():
    rng = np.random.default_rng(4)
    k, n_sources = 100_000, 5_000
    source = rng.integers(0, n_sources, k)
    site = rng.integers(0, 4, k)
    vi = rng.uniform(0.01, 0.05, k)
    yi = (0.3 + rng.normal(0, 0.2, n_sources)[source]
          + rng.normal(0, np.sqrt(0.02), (n_sources, 4))[source, site]
          + rng.normal(0, np.sqrt(0.01 + vi)))
    res = pool_nested(yi, vi, source, site)
    # large-sample consistency: the truth is mu = 0.3, sigma2 = (0.04, 0.02, 0.01); the
    # SE of sigma2_source with 5,000 sources is ~0.001
    np.testing.assert_allclose([res.estimate, *res.sigma2], [0.3, 0.04, 0.02, 0.01], atol=0.006)
    assert (res.k, res.n_sources) == (k, n_sources) and res.n_sites > 0.9 * 4 * n_sources


Y3, V3 = [0.1, 0.2, 0.3], [0.01, 0.02, 0.03]
NESTED_ERRORS = [
    ("source length", Y3, V3, [1, 1], [1, 2, 3], {}, "yi has 3 and source has 2"),
    ("site length", Y3, V3, [1, 1, 2], [1, 2], {}, "yi has 3 and site has 2"),
    ("missing source", Y3, V3, [1, None, 2], [1, 2, 3], {}, "source must not be missing; position 1"),
    ("missing site", Y3, V3, [1, 1, 2], [1, np.nan, 3], {}, "site must not be missing; position 1 is nan"),
    ("missing nullable integer", Y3, V3, pd.Series([1, 1, None], dtype="Int64"), [1, 2, 3], {},
     "source must not be missing; position 2 is <NA>"),
    ("NaN effect", [0.1, np.nan, 0.3], V3, [1, 1, 2], [1, 2, 3], {}, "yi must be finite; position 1"),
    ("zero variance", Y3, [0.01, 0.0, 0.03], [1, 1, 2], [1, 2, 3], {}, "vi must be > 0; position 1"),
    ("negative variance", Y3, [0.01, 0.02, -0.03], [1, 1, 2], [1, 2, 3], {},
     "vi must be > 0; position 2"),
    ("lengths of yi and vi", Y3, V3[:2], [1, 1, 2], [1, 2, 3], {}, "yi has 3, vi has 2"),
    ("unknown method", Y3, V3, [1, 1, 2], [1, 2, 3], {"method": "DL"},
     "unknown method 'DL'; must be one of ['REML', 'ML']"),
    ("knha is not an rma.mv test", Y3, V3, [1, 1, 2], [1, 2, 3], {"test": "knha"},
     "unknown test 'knha'; must be one of ['z', 't']"),
    ("t test with one effect", [0.1], [0.01], [1], [1], {"test": "t"},
     "test='t' needs at least 2 effects"),
    ("bad alpha", Y3, V3, [1, 1, 2], [1, 2, 3], {"alpha": 0}, "alpha must be a number between 0 and 1"),
]


@pytest.mark.parametrize("case,yi,vi,source,site,kwargs,message", NESTED_ERRORS,
                         ids=[c[0] for c in NESTED_ERRORS])
def test_pool_nested_refuses_bad_input_with_one_line(case, yi, vi, source, site, kwargs, message):
    with pytest.raises(EvidenceError, match=re.escape(message)) as info:
        pool_nested(yi, vi, source, site, **kwargs)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- robust


@pytest.mark.parametrize("case", GOLD["robust"], ids=case_id)
def test_robust_matches_metafor(case):
    name = case["data"]
    res = robust_pool(*data(name), cluster(name), method=case["method"], adjust=case["adjust"])
    for field in ROBUST_FIELDS:
        assert_close(getattr(res, field), case[field], f"{field} ({case['call']})")
    assert res.n_clusters == case["n_clusters"]


def test_robust_without_adjustment_is_smaller_by_the_cr1_factor():
    yi, vi = data("konstantopoulos2011")
    labels = cluster("konstantopoulos2011")
    adj, raw = (robust_pool(yi, vi, labels, adjust=a) for a in (True, False))
    n = adj.n_clusters
    np.testing.assert_allclose(adj.se, raw.se * np.sqrt(n / (n - 1)), rtol=1e-14)


def test_robust_with_one_effect_per_cluster_keeps_the_pooled_estimate():
    yi, vi = data("bcg")
    res = robust_pool(yi, vi, np.arange(len(yi)))
    fit = pool(yi, vi)
    assert isinstance(res, RobustResult)
    assert res.estimate == fit.estimate and res.tau2 == fit.tau2 and res.df == len(yi) - 1
    assert list(res.to_frame().columns)[:3] == ["k", "n_clusters", "estimate"]


def test_robust_with_identical_effects_has_zero_se_and_infinite_t():
    res = robust_pool([0.3] * 6, [0.01, 0.02, 0.03, 0.01, 0.02, 0.05], [1, 1, 2, 2, 3, 3])
    assert (res.estimate, res.se, res.statistic, res.pvalue) == (pytest.approx(0.3), 0.0, np.inf, 0.0)


ROBUST_ERRORS = [
    ("one cluster", [0.1, 0.2, 0.3], [0.01, 0.02, 0.03], [5, 5, 5], {}, "needs at least 2 clusters"),
    ("length mismatch", [0.1, 0.2, 0.3], [0.01, 0.02, 0.03], pd.Series([1, 2]), {},
     "yi has 3 and cluster has 2"),
    ("negative variance", [0.1, 0.2], [0.01, -0.02], [1, 2], {}, "vi must be > 0; position 1"),
    ("unknown method", [0.1, 0.2, 0.3], [0.01, 0.02, 0.03], [1, 2, 3], {"method": "XX"},
     "unknown method 'XX'"),
]


@pytest.mark.parametrize("case,yi,vi,labels,kwargs,message", ROBUST_ERRORS,
                         ids=[c[0] for c in ROBUST_ERRORS])
def test_robust_pool_refuses_bad_input(case, yi, vi, labels, kwargs, message):
    with pytest.raises(EvidenceError, match=re.escape(message)):
        robust_pool(yi, vi, labels, **kwargs)
