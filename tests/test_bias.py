"""egger_test, rank_test, trim_and_fill and fail_safe_n against metafor's regtest, ranktest,
trimfill and fsn, plus bad input."""

import re

import numpy as np
import pytest
from metafor_bias_golden import GOLD, assert_close, case_id, data
from scipy import stats

from evidence import EvidenceError, egger_test, fail_safe_n, pool, rank_test, trim_and_fill
from evidence.bias import _kendall_exact_p


def _na(value):
    return np.nan if value is None else value


# ---------------------------------------------------------------- Egger


@pytest.mark.parametrize("case", GOLD["regtest"], ids=case_id)
def test_egger_matches_regtest(case):
    res = egger_test(*data(case["data"]), method=case["method"], model=case["model"],
                     predictor=case["predictor"], test=case["test"])
    for ours, theirs in (("statistic", "statistic"), ("pvalue", "pvalue"), ("df", "df"),
                         ("limit_estimate", "limit_estimate"), ("limit_ci_low", "limit_ci_low"),
                         ("limit_ci_high", "limit_ci_high")):
        assert_close(getattr(res, ours), _na(case[theirs]), f"{ours} ({case['call']})")


def test_egger_z_and_t_properties_follow_the_model():
    yi, vi = data("hackshaw1998")
    rma, lm = egger_test(yi, vi), egger_test(yi, vi, model="lm")
    assert rma.z == rma.statistic and np.isnan(rma.t) and np.isnan(rma.df)
    assert lm.t == lm.statistic and np.isnan(lm.z) and lm.df == len(yi) - 2
    assert list(rma.to_frame().columns)[:3] == ["statistic", "df", "pvalue"]


# ---------------------------------------------------------------- rank test


@pytest.mark.parametrize("case", GOLD["ranktest"], ids=case_id)
def test_rank_test_matches_ranktest(case):
    res = rank_test(*data(case["data"]))
    assert_close([res.tau, res.pvalue], [case["tau"], case["pvalue"]], case["call"])


def test_rank_test_uses_exact_p_without_ties_and_normal_with_ties():
    assert rank_test(*data("curtis1998")).exact  # k = 102 > 50: still exact, as metafor
    assert not rank_test(*data("konstantopoulos2011")).exact  # tied variances


@pytest.mark.parametrize("n", [3, 7, 12, 30])
def test_exact_kendall_p_equals_scipys_exact_test(n):
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=n), rng.normal(size=n)
    ref = stats.kendalltau(x, y, method="exact")
    np.testing.assert_allclose(_kendall_exact_p(ref.statistic, n), ref.pvalue, rtol=1e-12)


# ---------------------------------------------------------------- trim and fill


@pytest.mark.parametrize("case", GOLD["trimfill"], ids=case_id)
def test_trim_and_fill_matches_trimfill(case):
    res = trim_and_fill(*data(case["data"]), method=case["method"],
                        estimator=case["estimator"], side=case["side_arg"])
    assert (res.k0, res.side, res.k) == (case["k0"], case["side"], case["k"])
    for name in ("se_k0", "p_k0", "estimate", "se", "statistic", "pvalue", "ci_low", "ci_high",
                 "tau2"):
        assert_close(getattr(res, name), _na(case[name]), f"{name} ({case['call']})")
    assert_close(res.points["yi"], case["yi"], f"filled yi ({case['call']})")
    assert_close(res.points["vi"], case["vi"], f"filled vi ({case['call']})")
    assert res.points["filled"].tolist() == case["filled"]


def test_golden_trim_and_fill_covers_filling_and_both_sides():
    cases = GOLD["trimfill"]
    for estimator in ("L0", "R0", "Q0"):
        filled = {c["side"] for c in cases if c["k0"] > 0 and c["estimator"] == estimator}
        assert filled == {"left", "right"}, estimator
    assert {c["side_arg"] for c in cases if c["k0"] > 0} == {None, "left", "right"}
    assert any(c["k0"] == 0 for c in cases)


def test_symmetric_funnel_needs_no_filling():
    yi = np.array([-0.2, -0.1, 0.0, 0.1, 0.2])
    vi = np.array([0.04, 0.01, 0.02, 0.01, 0.04])
    res = trim_and_fill(yi, vi)
    fit = pool(yi, vi)
    assert res.k0 == 0 and not res.points["filled"].any()
    assert (res.estimate, res.se, res.tau2) == (fit.estimate, fit.se, fit.tau2)
    assert "points" not in res.to_frame().columns


# ---------------------------------------------------------------- fail-safe N


@pytest.mark.parametrize("case", GOLD["fsn"], ids=case_id)
def test_fail_safe_n_matches_fsn(case):
    res = fail_safe_n(*data(case["data"]), method=case["type"], alpha=case["alpha"],
                      target=case["target_arg"])
    for ours, theirs in (("n", "fsnum"), ("pvalue", "pvalue"), ("mean_effect", "mean_effect"),
                         ("target", "target")):
        assert_close(getattr(res, ours), _na(case[theirs]), f"{ours} ({case['call']})")


def test_orwin_with_target_zero_is_infinite():
    assert fail_safe_n([0.2, 0.4], [0.01, 0.02], method="Orwin", target=0).n == np.inf


# ---------------------------------------------------------------- bad input

Y3, V3 = [0.1, 0.3, 0.2], [0.01, 0.02, 0.04]
BIAS_ERRORS = [
    ("egger k=2", egger_test, ([0.1, 0.2], [0.01, 0.02]), {}, "egger_test needs at least 3 studies, got k=2"),
    ("egger equal variances", egger_test, ([0.1, 0.2, 0.3], [0.02] * 3), {},
     "egger_test needs sampling variances that differ"),
    ("egger unknown model", egger_test, (Y3, V3), {"model": "glm"},
     "unknown model 'glm'; must be one of ['rma', 'lm']"),
    ("egger unknown predictor", egger_test, (Y3, V3), {"predictor": "ni"},
     "unknown predictor 'ni'; must be one of ['sei', 'vi']"),
    ("egger NaN", egger_test, ([0.1, np.nan, 0.2], V3), {}, "yi must be finite; position 1"),
    ("egger lengths", egger_test, ([0.1, 0.2], V3), {}, "yi has 2, vi has 3"),
    ("rank k=2", rank_test, ([0.1, 0.2], [0.01, 0.02]), {}, "rank_test needs at least 3 studies"),
    ("rank equal variances", rank_test, ([0.1, 0.2, 0.3], [0.02] * 3), {},
     "rank_test needs sampling variances that differ"),
    ("rank zero variance", rank_test, (Y3, [0.01, 0.0, 0.02]), {}, "vi must be > 0; position 1"),
    ("trimfill k=1", trim_and_fill, ([0.1], [0.01]), {"side": "left"},
     "trim_and_fill needs at least 2 studies, got k=1"),
    ("trimfill k=2 without side", trim_and_fill, ([0.1, 0.2], [0.01, 0.02]), {},
     "trim_and_fill without side needs at least 3 studies"),
    ("trimfill equal variances without side", trim_and_fill, ([0.1, 0.2, 0.3], [0.02] * 3), {},
     "trim_and_fill cannot choose the side when all vi are equal"),
    ("trimfill unknown estimator", trim_and_fill, (Y3, V3), {"estimator": "T0"},
     "unknown estimator 'T0'; must be one of ['L0', 'R0', 'Q0']"),
    ("trimfill unknown side", trim_and_fill, (Y3, V3), {"side": "up"},
     "unknown side 'up'; must be one of ['left', 'right']"),
    ("trimfill unknown method", trim_and_fill, (Y3, V3), {"method": "XX", "side": "left"},
     "unknown method 'XX'"),
    ("fsn unknown method", fail_safe_n, (Y3, V3), {"method": "REM"},
     "unknown method 'REM'; must be one of ['Rosenthal', 'Orwin', 'Rosenberg']"),
    ("fsn target without Orwin", fail_safe_n, (Y3, V3), {"target": 0.1},
     "target is used only by method='Orwin'"),
    ("fsn bad alpha", fail_safe_n, (Y3, V3), {"alpha": 0}, "alpha must be a number between 0 and 1"),
]


@pytest.mark.parametrize("case,func,args,kwargs,message", BIAS_ERRORS, ids=[c[0] for c in BIAS_ERRORS])
def test_bias_functions_refuse_bad_input(case, func, args, kwargs, message):
    with pytest.raises(EvidenceError, match=re.escape(message)):
        func(*args, **kwargs)
