"""egger_test, rank_test, trim_and_fill and fail_safe_n against metafor's regtest, ranktest,
trimfill and fsn, plus bad input."""

import itertools
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


def sorted_data(name):
    """A golden data set ordered by (yi, vi), as the trimfill cases fed it to metafor."""
    yi, vi = data(name)
    order = np.lexsort((vi, yi))
    return yi[order], vi[order]


@pytest.mark.parametrize("case", GOLD["trimfill"], ids=case_id)
def test_trim_and_fill_matches_trimfill(case):
    # metafor breaks ties in yi by row order and we by vi: on rows sorted by (yi, vi) both
    # orders agree (see make_metafor_bias.R; hackshaw1998 FE Q0 gives k0 = 10 in metafor on
    # the shipped row order and 9 on the sorted one)
    res = trim_and_fill(*sorted_data(case["data"]), method=case["method"],
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


def test_balanced_funnel_needs_no_filling():
    # effects spread evenly around ~0.006, no ties: sorted |yi - centre| alternate sides
    # (gaps >= 0.028), so on either side and with every estimator k0 = 0 with a clear
    # margin (L0 and Q0 give unrounded k0 of 0.18, R0 gives -1)
    yi = np.array([-0.32, -0.15, -0.03, 0.07, 0.21, 0.27])
    vi = np.array([0.04, 0.02, 0.01, 0.012, 0.025, 0.045])
    fit = pool(yi, vi)
    for estimator, side in itertools.product(("L0", "R0", "Q0"), (None, "left", "right")):
        res = trim_and_fill(yi, vi, estimator=estimator, side=side)
        assert res.k0 == 0 and not res.points["filled"].any(), (estimator, side)
        # with nothing filled the refit is pool() on the same studies, so only summation
        # order can differ: 1e-12 relative is far above that and far below any real change
        np.testing.assert_allclose([res.estimate, res.se, res.tau2],
                                   [fit.estimate, fit.se, fit.tau2], rtol=1e-12, atol=1e-15)
    assert "points" not in trim_and_fill(yi, vi).to_frame().columns


# An exactly symmetric funnel: a study at the centre and mirrored pairs with equal variances.
# Centred, the effects tie in |yi - centre| and the middle one is 0 -- but only up to the
# rounding noise of the centre (~1e-17), whose sign used to decide k0 (1 or 0). Ties and
# zeros are now judged at 100 machine epsilons of the effects' size, so k0 = 0 always
# (the exact-arithmetic answer: L0 = 2/9, Q0 = 0.23, R0 = 0 before rounding).
SYMMETRIC_Y = np.array([-0.2, -0.1, 0.0, 0.1, 0.2])
SYMMETRIC_V = np.array([0.04, 0.01, 0.02, 0.01, 0.04])


@pytest.mark.parametrize("shift", [0.0, 0.3, -1.7, 1e3])  # shifts add rounding noise
@pytest.mark.parametrize("side", [None, "left", "right"])
@pytest.mark.parametrize("estimator", ["L0", "R0", "Q0"])
def test_symmetric_funnel_needs_no_filling_whatever_the_rounding(estimator, side, shift):
    for method in ("REML", "FE", "DL"):
        res = trim_and_fill(SYMMETRIC_Y + shift, SYMMETRIC_V, method=method,
                            estimator=estimator, side=side)
        assert res.k0 == 0, (method, res.side)
        if side is None:  # the slope on sqrt(vi) is 0 up to rounding: metafor's "left"
            assert res.side == "left"


def test_symmetric_funnel_ignores_noise_in_the_last_bits():
    # each effect moved by one unit in the last place, up or down (|change| ~ 3e-17)
    rng = np.random.default_rng(7)
    for _ in range(20):
        nudged = np.nextafter(SYMMETRIC_Y, SYMMETRIC_Y + rng.choice([-1.0, 1.0], 5))
        assert trim_and_fill(nudged, SYMMETRIC_V).k0 == 0


@pytest.mark.parametrize(("name", "method", "estimator"), [
    ("konstantopoulos2011", "REML", "L0"),  # tied yi with different vi among filled studies
    ("hackshaw1998", "FE", "Q0"),  # metafor: k0 = 10 in the shipped row order, 9 sorted
    ("synthetic_ties", "DL", "R0"),  # effects rounded to 0.1: many ties
])
def test_trim_and_fill_does_not_depend_on_row_order(name, method, estimator):
    yi, vi = data(name)
    ref = trim_and_fill(yi, vi, method=method, estimator=estimator)
    filled = ref.points[ref.points["filled"]].sort_values(["yi", "vi"]).to_numpy(float)
    rng = np.random.default_rng(3)
    for _ in range(5):
        order = rng.permutation(len(yi))
        res = trim_and_fill(yi[order], vi[order], method=method, estimator=estimator)
        assert (res.k0, res.side) == (ref.k0, ref.side)
        # the same studies in another order: summation order changes the last bits only
        np.testing.assert_allclose([res.estimate, res.se, res.tau2],
                                   [ref.estimate, ref.se, ref.tau2], rtol=1e-10, atol=1e-12)
        observed = res.points[~res.points["filled"]]
        np.testing.assert_array_equal(observed["yi"], yi[order])  # observed rows: input order
        again = res.points[res.points["filled"]].sort_values(["yi", "vi"]).to_numpy(float)
        np.testing.assert_allclose(again, filled, rtol=1e-10, atol=1e-12)


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
