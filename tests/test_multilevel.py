"""pool_multilevel() against metafor's rma.mv and robust_pool() against robust(), plus bad input."""

import re

import numpy as np
import pandas as pd
import pytest
from metafor_bias_golden import GOLD, ML_ATOL, ML_RTOL, assert_close, case_id, cluster, data

from evidence import EvidenceError, pool, pool_multilevel, robust_pool
from evidence.multilevel import MultilevelResult, RobustResult

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
