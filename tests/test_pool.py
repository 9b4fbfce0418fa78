"""pool() against metafor's rma.uni, predict() and confint(), plus bad-input cases."""

import math

import numpy as np
import pandas as pd
import pytest
from metafor_golden import GOLD, assert_close, case_id, data

from evidence import ConvergenceError, EvidenceError, PoolResult, pool

POOL_CASES = GOLD["pool"]

FIELDS = {  # PoolResult field -> metafor value
    "estimate": "estimate", "se": "se", "statistic": "statistic", "pvalue": "pvalue",
    "ci_low": "ci_low", "ci_high": "ci_high", "tau2": "tau2", "i2": "I2", "h2": "H2",
    "q": "QE", "q_pvalue": "QEp", "weights": "weights",
}


@pytest.fixture(scope="module")
def fits():
    return {case_id(c): pool(*data(c["dataset"]), method=c["method"], test=c["test"])
            for c in POOL_CASES}


@pytest.mark.parametrize("case", POOL_CASES, ids=case_id)
def test_matches_metafor(case, fits):
    res = fits[case_id(case)]
    for ours, theirs in FIELDS.items():
        assert_close(getattr(res, ours), case[theirs], case["method"], f"{ours} ({case['call']})")
    assert res.k == len(data(case["dataset"])[0])


@pytest.mark.parametrize("case", [c for c in POOL_CASES if c["pi_low"] is not None], ids=case_id)
def test_prediction_interval_matches_predict(case, fits):
    res = fits[case_id(case)]
    assert_close([res.pi_low, res.pi_high], [case["pi_low"], case["pi_high"]], case["method"],
                 f"prediction interval ({case['call']})")


@pytest.mark.parametrize("case", [c for c in POOL_CASES if c["confint"]], ids=case_id)
def test_q_profile_matches_confint(case, fits):
    ci = fits[case_id(case)].tau2_conf_int()
    gold = case["confint"]
    for ours, theirs in (("tau2", "tau2"), ("i2", "I2"), ("h2", "H2")):
        got = [getattr(ci, f"{ours}_low"), getattr(ci, f"{ours}_high")]
        # Q-profile bounds come from root finding on both sides: iterative tolerance
        assert_close(got, gold[theirs], "PM", f"{ours} bounds ({case['call']})")


@pytest.mark.parametrize("case", [c for c in POOL_CASES if c["confint"]], ids=case_id)
def test_q_profile_at_another_level_matches_confint(case, fits):
    # the fit used alpha = 0.05; tau2_conf_int(alpha) must redo the profile at 90 %
    ci = fits[case_id(case)].tau2_conf_int(alpha=0.10)
    gold = case["confint90"]
    assert ci.alpha == 0.10
    for ours, theirs in (("tau2", "tau2"), ("i2", "I2"), ("h2", "H2")):
        got = [getattr(ci, f"{ours}_low"), getattr(ci, f"{ours}_high")]
        assert_close(got, gold[theirs], "PM", f"{ours} 90% bounds ({case['confint90_call']})")


def test_golden_covers_every_estimator_and_test():
    combos = {(c["method"], c["test"]) for c in POOL_CASES}
    assert len(combos) == 18
    assert {c["dataset"] for c in POOL_CASES} >= {"bcg", "curtis1998", "k1", "k2", "synthetic_hom"}


EPS = np.finfo(float).eps
# tau^2 on its boundary: truncated to exactly 0, or where Fisher scoring approaches 0 from
# above, stopped within its 1e-12 threshold (metafor alike); 1e-10 is the golden ATOL
ZERO_TAU2 = 1e-10


def test_homogeneous_data_gives_zero_tau2_for_every_estimator():
    yi, vi = data("synthetic_hom")
    for method in ("DL", "REML", "ML", "PM", "EB", "HE", "SJ", "HS"):
        res = pool(yi, vi, method=method)
        assert res.tau2 >= 0 and res.i2 >= 0  # truncation at 0 makes these exact
    # untruncated REML starts from HE = -0.050 and its first Fisher step is -0.033: far
    # below 0, not a boundary case
    assert pool(yi, vi, method="REML").tau2 <= ZERO_TAU2


def test_identical_effects_give_zero_heterogeneity():
    vi = np.array([0.01, 0.02, 0.03, 0.04, 0.05])
    res = pool([0.2] * 5, vi)
    assert res.tau2 <= ZERO_TAU2 and res.i2 <= 100 * ZERO_TAU2 / vi.min()
    # the residuals 0.2 - estimate are rounding errors of the weighted mean, below 100
    # machine epsilons of 0.2, so Q = sum(r^2 / vi) is at most sum(1 / vi) times their square
    assert 0 <= res.q <= np.sum(1 / vi) * (100 * EPS * 0.2) ** 2
    assert math.isclose(res.estimate, 0.2, rel_tol=100 * EPS)


def test_k1_is_the_study_itself():
    res = pool([0.4], [0.04], method="REML")
    # the estimate is (w y) / w and se sqrt(1 / w): exact but for a rounding or two
    assert res.estimate == pytest.approx(0.4, rel=4 * EPS)
    assert res.se == pytest.approx(0.2, rel=4 * EPS)
    assert (res.tau2, res.q_df) == (0.0, 0)  # k = 1 sets tau^2 = 0 by rule (metafor alike)


def test_percent_change_back_transforms_estimate_and_ci():
    res = pool(*data("curtis1998"))
    pct = res.percent_change()
    np.testing.assert_allclose(pct, 100 * np.expm1([res.estimate, res.ci_low, res.ci_high]))
    assert pct[1] < pct[0] < pct[2]


def test_result_is_frozen_and_frames():
    res = pool(*data("bcg"))
    assert isinstance(res, PoolResult)
    with pytest.raises(AttributeError):
        res.tau2 = 1.0
    frame = res.to_frame()
    # the frame holds the same float, copied (not recomputed): exact equality is right
    assert frame.shape[0] == 1 and frame.loc[0, "estimate"] == res.estimate
    assert "tau^2" in res.summary() and "REML" in res.summary()


def test_accepts_pandas_and_lists():
    yi, vi = data("bcg")
    a = pool(pd.Series(yi), pd.Series(vi))
    b = pool(list(yi), list(vi))
    # the same numbers in another container: equal up to rounding (1e-13 leaves room for
    # a different memory alignment of the converted arrays in numpy's SIMD sums)
    np.testing.assert_allclose([a.estimate, a.se, a.tau2], [b.estimate, b.se, b.tau2], rtol=1e-13)


BAD_INPUT = [
    # (yi, vi, kwargs, error class, message fragment)
    ([0.1, np.nan], [0.1, 0.1], {}, EvidenceError, "yi must be finite; position 1"),
    ([0.1, 0.2], [0.1, np.inf], {}, EvidenceError, "vi must be finite; position 1"),
    ([0.1, 0.2], [0.1, 0.0], {}, EvidenceError, "vi must be > 0; position 1"),
    ([0.1, 0.2], [-0.1, 0.1], {}, EvidenceError, "vi must be > 0; position 0"),
    ([0.1, 0.2, 0.3], [0.1, 0.1], {}, EvidenceError, "yi has 3, vi has 2"),
    ([], [], {}, EvidenceError, "yi is empty"),
    (["a", "b"], [0.1, 0.1], {}, EvidenceError, "yi must contain numbers only"),
    ([[0.1], [0.2]], [0.1, 0.1], {}, EvidenceError, "yi must be one-dimensional"),
    ([0.1, 0.2], [0.1, 0.1], {"method": "BOGUS"}, EvidenceError, "unknown method 'BOGUS'"),
    ([0.1, 0.2], [0.1, 0.1], {"test": "t"}, EvidenceError, "unknown test 't'"),
    ([0.1, 0.2], [0.1, 0.1], {"alpha": 1.5}, EvidenceError, "alpha must be a number between 0 and 1"),
    ([0.1], [0.1], {"test": "knha"}, EvidenceError, "test='knha' with 1 coefficient(s) needs at least 2"),
]


@pytest.mark.parametrize(("yi", "vi", "kwargs", "error", "message"), BAD_INPUT)
def test_bad_input_is_rejected_with_a_clear_message(yi, vi, kwargs, error, message):
    with pytest.raises(error) as info:
        pool(yi, vi, **kwargs)
    assert message in str(info.value)


def test_method_names_are_case_insensitive():
    yi, vi = data("bcg")
    assert pool(yi, vi, method="reml").method == "REML"


def test_pm_root_above_search_limit_raises_convergence_error():
    # mad(yi) = 0 keeps metafor's tau2_max at 100 while two outliers need tau^2 ~ 5e6
    yi = np.r_[np.zeros(38), 1e4, -1e4]
    with pytest.raises(ConvergenceError, match="tau2_max"):
        pool(yi, np.full(40, 1e-6), method="PM")


@pytest.mark.parametrize("scale", [1.0, 30.0])  # 30: the root (~900) lies above 100
def test_pm_tau2_solves_the_q_equation(scale):
    # Paule-Mandel's tau^2 is the root of Q(tau2) = k - 1 in [0, max(100, 10 mad(yi)^2)];
    # a root above 100 needs the mad-based limit (found after a first search up to 100)
    rng = np.random.default_rng(5)
    vi = rng.uniform(0.01, 0.2, 40)
    yi = scale * rng.normal(size=40)
    tau2 = pool(yi, vi, method="PM").tau2
    assert (tau2 > 100) == (scale > 1)
    w = 1 / (vi + tau2)
    q = np.sum(w * (yi - np.sum(w * yi) / w.sum()) ** 2)
    # tau^2 is found to 1e-14 (absolute), which moves Q by far less than 1e-10 relative
    assert q == pytest.approx(len(yi) - 1, rel=1e-10)


def test_tau2_conf_int_needs_random_effects():
    with pytest.raises(EvidenceError, match="random-effects fit"):
        pool(*data("bcg"), method="FE").tau2_conf_int()
