"""robust_pool(vcov="CR2") and NestedResult.robust() against clubSandwich (through metafor's
robust(fit, cluster, clubSandwich = TRUE)), against a k x k transcription of clubSandwich's
CR2 and Satterthwaite formulas, against closed forms, plus CR1 for the nested working
model and bad input."""

import re

import metafor_multilevel_golden as mv
import numpy as np
import pytest
from scipy import linalg

from evidence import EvidenceError, pool, pool_nested, robust_pool
from evidence import robust as rb
from evidence.multilevel import RobustResult

FIELDS = ("estimate", "se", "statistic", "pvalue", "ci_low", "ci_high", "df")


def fit(case):
    yi, vi, source, site = mv.data(case["data"])
    site = site if case["working"] == "nested" else None
    return robust_pool(yi, vi, source, method=case["method"], adjust=case["adjust"],
                       alpha=case["alpha"], vcov=case["vcov"], site=site)


@pytest.mark.parametrize("case", mv.GOLD["robust"], ids=mv.case_id)
def test_robust_matches_metafor_and_clubsandwich(case):
    res = fit(case)
    # the nested working model inherits rma.mv's optimiser tolerance (see the golden module)
    rtol, atol = (mv.CR2_RTOL, mv.ATOL) if case["working"] == "RE" else (mv.MV_RTOL, mv.MV_ATOL)
    for name in FIELDS:
        mv.assert_close(getattr(res, name), case[name], f"{name} ({case['call']})", rtol, atol)
    assert (res.n_clusters, res.vcov) == (case["n_clusters"], case["vcov"])
    assert res.working == ("RE" if case["working"] == "RE" else "source/site/effect")


def test_robust_golden_covers_both_working_models_and_estimators():
    cases = mv.GOLD["robust"]
    assert {(c["working"], c["vcov"]) for c in cases} == {("RE", "CR2"), ("nested", "CR2"),
                                                         ("nested", "CR1")}
    assert {c["method"] for c in cases if c["working"] == "RE"} == {"REML", "DL", "FE"}
    assert {c["method"] for c in cases if c["working"] == "nested"} == {"REML", "ML"}
    assert any(c["alpha"] == 0.1 for c in cases)


def test_nested_result_robust_is_robust_pool_with_sites():
    yi, vi, source, site = mv.data("synthetic_nested")
    res = pool_nested(yi, vi, source, site)
    for vcov in ("CR2", "CR1"):
        assert res.robust(vcov=vcov) == robust_pool(yi, vi, source, vcov=vcov, site=site)
    rob = res.robust()
    assert rob.sigma2 == res.sigma2 and rob.tau2 == pytest.approx(sum(res.sigma2))
    assert isinstance(rob, RobustResult) and rob.adjust is False
    assert {"vcov", "working", "df"} <= set(rob.to_frame().columns)


# ---------------------------------------------------------------- clubSandwich, transcribed


def clubsandwich_cr2(yi, V, cluster):
    """CR2 SE and Satterthwaite df of the GLS intercept with k x k matrices, step by step as
    clubSandwich 0.5.8 computes them for rma fits (vcov_CR, CR2, get_GH, get_P_array)."""
    k = len(yi)
    W = np.linalg.inv(V)
    one = np.ones(k)
    M = 1 / (one @ W @ one)  # bread / v_scale
    e = yi - M * (one @ W @ yi)
    meat, g_rows, h = [], [], []
    for label in np.unique(cluster):
        j = np.flatnonzero(cluster == label)
        theta = V[np.ix_(j, j)]
        Wj = np.linalg.inv(theta)  # weightMatrix: the block of V^-1 (V is block-diagonal)
        T = linalg.cholesky(theta)  # R's chol(): upper triangular, T'T = theta
        X = np.ones((len(j), 1))
        IH = np.eye(len(j)) - X @ (M * X.T @ Wj)
        G = T @ IH @ theta @ T.T
        values, vectors = np.linalg.eigh(G)
        A = T.T @ (vectors * values**-0.5) @ vectors.T @ T  # matrix_power(G, -1/2)
        E = X.T @ Wj @ A
        meat.append((E @ e[j])[0])
        g_rows.append(M * E @ T.T)
        h.append((M * E @ X)[0, 0] * np.sqrt(M))
    se = np.sqrt(M * M * np.sum(np.square(meat)))
    h = np.array(h)
    P = -np.outer(h, h) + np.diag([np.sum(g**2) for g in g_rows])
    return se, np.trace(P) ** 2 / np.sum(P**2)


def _random_design(rng):
    """Clusters of 1-12 effects in 1-3 sites, sampling variances over two decades."""
    n = int(rng.integers(3, 9))
    cluster = np.repeat(np.arange(n), rng.integers(1, 13, n))
    k = len(cluster)
    site = cluster * 3 + rng.integers(0, 3, k)
    vi = 10 ** rng.uniform(-3, -1, k)
    yi = rng.normal(0.2, 0.3, n)[cluster] + rng.normal(0, np.sqrt(vi + 0.01))
    return yi, vi, cluster, site


@pytest.mark.parametrize("seed", range(6))
def test_cr2_equals_the_transcribed_computation(seed):
    yi, vi, cluster, site = _random_design(np.random.default_rng(seed))
    re_fit = pool(yi, vi)
    nested = pool_nested(yi, vi, cluster, site)
    s1, s2, s3 = nested.sigma2
    same_site = np.equal.outer(site, site)
    same_cluster = np.equal.outer(cluster, cluster)
    for res, V in [(robust_pool(yi, vi, cluster, vcov="CR2"), np.diag(vi + re_fit.tau2)),
                   (nested.robust(), np.diag(vi + s3) + s2 * same_site + s1 * same_cluster)]:
        se, df = clubsandwich_cr2(yi, V, cluster)
        # both are exact to rounding: eigh on matrices with condition number <= ~1e4 and
        # the quadrature (~1e-13); observed agreement ~1e-15
        np.testing.assert_allclose([res.se, res.df], [se, df], rtol=1e-10)


def test_cr2_quadrature_has_converged_on_ill_conditioned_data(monkeypatch):
    # sampling variances over eight decades and a cluster that dominates the weights: the
    # default nodes give the same answer as twice as fine a step and longer tails
    rng = np.random.default_rng(9)
    cluster = np.repeat(np.arange(6), [1, 4, 9, 2, 7, 3])
    vi = 10 ** rng.uniform(-8, 0, len(cluster))
    vi[cluster == 2] *= 1e-3
    yi = rng.normal(0, 0.5, len(cluster))
    site = cluster * 2 + (np.arange(len(cluster)) % 2)
    default = [robust_pool(yi, vi, cluster, vcov="CR2"),
               robust_pool(yi, vi, cluster, vcov="CR2", site=site)]
    monkeypatch.setattr(rb, "STEP", rb.STEP / 2)
    monkeypatch.setattr(rb, "TAIL", rb.TAIL + 5)
    finer = [robust_pool(yi, vi, cluster, vcov="CR2"),
             robust_pool(yi, vi, cluster, vcov="CR2", site=site)]
    for a, b in zip(default, finer, strict=True):
        np.testing.assert_allclose([a.se, a.df], [b.se, b.df], rtol=1e-11)


def test_balanced_clusters_give_cr1_and_n_minus_one_df():
    # equal weights and equal cluster sizes: A_j 1 = (1 - 1/n)^(-1/2) 1, so CR2 is CR1 and
    # Satterthwaite's df is n - 1, in closed form
    rng = np.random.default_rng(3)
    cluster = np.repeat(np.arange(7), 4)
    yi = rng.normal(0.1, 0.3, len(cluster))
    vi = np.full(len(cluster), 0.02)
    cr2 = robust_pool(yi, vi, cluster, vcov="CR2")
    cr1 = robust_pool(yi, vi, cluster, vcov="CR1", adjust=True)
    np.testing.assert_allclose([cr2.se, cr2.df], [cr1.se, 6.0], rtol=1e-12)


def test_cr2_does_not_depend_on_row_order_or_labels():
    yi, vi, source, site = mv.data("synthetic_nested")
    perm = np.random.default_rng(5).permutation(len(yi))
    labels = [f"s{source[i]}" for i in perm]
    for nested in (True, False):
        a = robust_pool(yi, vi, source, vcov="CR2", site=site if nested else None)
        b = robust_pool(yi[perm], vi[perm], labels, vcov="CR2",
                        site=np.asarray(site)[perm] if nested else None)
        # summation order only
        np.testing.assert_allclose([b.estimate, b.se, b.df], [a.estimate, a.se, a.df], rtol=1e-8)


def test_identical_effects_have_zero_cr2_se():
    res = robust_pool([0.3] * 6, [0.01, 0.02, 0.03, 0.01, 0.02, 0.05], [1, 1, 2, 2, 3, 3],
                      vcov="CR2")
    assert (res.estimate, res.se, res.statistic, res.pvalue) == (pytest.approx(0.3), 0.0, np.inf, 0.0)
    assert np.isfinite(res.df) and res.df > 0


Y4, V4 = [0.1, 0.2, 0.3, 0.4], [0.01, 0.02, 0.03, 0.04]
ROBUST_ERRORS = [
    ("one cluster", Y4, V4, ["a"] * 4, {"vcov": "CR2"}, "robust_pool needs at least 2 clusters"),
    ("one source with sites", Y4, V4, ["a"] * 4, {"vcov": "CR2", "site": [1, 1, 2, 2]},
     "robust_pool needs at least 2 clusters"),
    ("unknown vcov", Y4, V4, [1, 1, 2, 2], {"vcov": "CR3"},
     "unknown vcov 'CR3'; must be one of ['CR1', 'CR2']"),
    ("site length", Y4, V4, [1, 1, 2, 2], {"site": [1, 2]}, "yi has 4 and site has 2"),
    ("missing cluster", Y4, V4, [1, None, 2, 2], {"vcov": "CR2"},
     "cluster must not be missing; position 1"),
    ("missing site", Y4, V4, [1, 1, 2, 2], {"site": [1, None, 1, 2]},
     "site must not be missing; position 1"),
    ("zero variance", Y4, [0.01, 0.0, 0.03, 0.04], [1, 1, 2, 2], {"vcov": "CR2"},
     "vi must be > 0; position 1"),
    ("tau2 estimator with sites", Y4, V4, [1, 1, 2, 2], {"site": [1, 2, 1, 2], "method": "DL"},
     "unknown method 'DL'; must be one of ['REML', 'ML']"),
]


@pytest.mark.parametrize("case,yi,vi,labels,kwargs,message", ROBUST_ERRORS,
                         ids=[c[0] for c in ROBUST_ERRORS])
def test_robust_pool_refuses_bad_input_with_one_line(case, yi, vi, labels, kwargs, message):
    with pytest.raises(EvidenceError, match=re.escape(message)) as info:
        robust_pool(yi, vi, labels, **kwargs)
    assert "\n" not in str(info.value)


def test_nested_result_robust_needs_two_sources():
    res = pool_nested(*mv.data("synthetic_one_source"))
    with pytest.raises(EvidenceError, match="NestedResult.robust needs at least 2 clusters"):
        res.robust()
