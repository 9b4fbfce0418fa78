"""Effect sizes against metafor's escalc() (and Lajeunesse 2015 written out in R), plus
conversions and bad input."""

import math

import numpy as np
import pandas as pd
import pytest
from metafor_golden import CLOSED_RTOL, GOLD, arr

from evidence import (
    EvidenceError,
    lnrr_from_percent_change,
    log_response_ratio,
    mean_difference,
    percent_change_from_lnrr,
    sd_from_se,
    se_from_ci,
    standardized_mean_difference,
    vi_from_ci,
)

FUNCTIONS = {
    "ROM": log_response_ratio,
    "ROM_BC": lambda *a: log_response_ratio(*a, bias_corrected=True),
    "SMD": standardized_mean_difference,
    "MD": mean_difference,
}


def inputs(name):
    d = GOLD["effect_size_inputs"][name]
    return [pd.Series(d[key], dtype=float) for key in ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")]


@pytest.mark.parametrize("case", GOLD["effect_sizes"], ids=lambda c: f"{c['dataset']}-{c['measure']}")
def test_matches_escalc(case):
    yi, vi = FUNCTIONS[case["measure"]](*inputs(case["dataset"]))
    np.testing.assert_allclose(yi, arr(case["yi"]), rtol=CLOSED_RTOL, err_msg=case["call"])
    np.testing.assert_allclose(vi, arr(case["vi"]), rtol=CLOSED_RTOL, err_msg=case["call"])


def test_scalars_in_give_floats_out():
    res = log_response_ratio(12.0, 2.0, 5, 10.0, 2.5, 5)
    assert isinstance(res.yi, float) and isinstance(res.vi, float)
    assert math.isclose(res.yi, math.log(1.2))
    assert res.measure == "ROM"


def test_to_frame_and_broadcasting():
    res = mean_difference([1.0, 2.0], 1.0, 10, 0.5, 1.0, 10)
    frame = res.to_frame()
    assert frame.columns.tolist() == ["yi", "vi", "measure"] and len(frame) == 2


def test_missing_sd_allowed_only_on_request():
    res = log_response_ratio([2.0, 3.0], [np.nan, 1.0], 5, [1.0, 1.0], [0.5, 0.5], 5,
                             allow_missing_sd=True)
    assert np.isnan(res.vi[0]) and np.isfinite(res.vi[1]) and np.isfinite(res.yi[0])


def test_conversions_round_trip():
    pct = np.array([-50.0, 0.0, 25.0])
    np.testing.assert_allclose(percent_change_from_lnrr(lnrr_from_percent_change(pct)), pct)
    assert math.isclose(sd_from_se(0.5, 16), 2.0)
    se = se_from_ci(-1.96, 1.96)
    assert math.isclose(se, 1.96 / 1.959963984540054)
    assert math.isclose(vi_from_ci(0.5, 2.0, log=True), (math.log(4) / (2 * 1.959963984540054)) ** 2)


GROUPS = dict(mean_t=[2.0, 3.0], sd_t=[1.0, 1.0], n_t=[5, 5], mean_c=[1.0, 1.0],
              sd_c=[0.5, 0.5], n_c=[5, 5])


def groups(**changes):
    return {**GROUPS, **changes}


@pytest.mark.parametrize(("func", "kwargs", "message"), [
    (log_response_ratio, groups(mean_c=[1.0, 0.0]), "mean_c must be > 0 for a log response ratio; position 1"),
    (log_response_ratio, groups(mean_t=[-2.0, 3.0]), "mean_t must be > 0 for a log response ratio; position 0"),
    (log_response_ratio, groups(sd_t=[1.0, -1.0]), "sd_t must be >= 0; position 1"),
    (log_response_ratio, groups(sd_c=[np.nan, 1.0]), "sd_c is missing at position 0"),
    (log_response_ratio, groups(n_t=[0, 5]), "n_t must be > 0; position 0"),
    (log_response_ratio, groups(mean_t=[2.0, np.nan]), "mean_t must be finite; position 1"),
    (log_response_ratio, groups(n_c=[5, 5, 5]), "n_c has 3"),
    (mean_difference, groups(sd_t=["x", 1.0]), "sd_t must contain numbers only"),
    (standardized_mean_difference, groups(n_t=[1, 5], n_c=[1, 5]), "needs n_t + n_c >= 4; position 0"),
])
def test_bad_group_summaries(func, kwargs, message):
    with pytest.raises(EvidenceError) as info:
        func(**kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: lnrr_from_percent_change(-100), "pct must be > -100; position 0"),
    (lambda: se_from_ci([1.0], [0.5]), "high must be >= low; position 0"),
    (lambda: se_from_ci(0.0, 2.0, log=True), "low must be > 0; position 0"),
    (lambda: sd_from_se(-0.1, 10), "se must be >= 0; position 0"),
    (lambda: percent_change_from_lnrr([0.1, np.inf]), "yi must be finite; position 1"),
])
def test_bad_conversions(call, message):
    with pytest.raises(EvidenceError) as info:
        call()
    assert message in str(info.value)
