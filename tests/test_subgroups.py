"""subgroups() against per-group rma() plus an FE model on the group estimates ("separate")
and rma(mods = ~ factor(group)) ("common"), plus bad input."""

import numpy as np
import pytest
from metafor_golden import GOLD, arr, assert_close, case_id, data

from evidence import EvidenceError
from evidence.subgroups import SubgroupResult, subgroups  # see report: name = module name

SUB_CASES = GOLD["subgroups"]
SEPARATE = {"k": "k", "estimate": "estimate", "se": "se", "ci_low": "ci_low",
            "ci_high": "ci_high", "tau2": "tau2_groups", "i2": "I2", "q": "QE", "q_pvalue": "QEp"}
COMMON = {"estimate": "estimate", "se": "se", "ci_low": "ci_low", "ci_high": "ci_high",
          "tau2": "tau2_common", "i2": "I2"}


def fit(case):
    g = GOLD["groups"][case["dataset"]]
    yi, vi = data(g["data"])
    return subgroups(yi, vi, g["groups"], method=case["method"], tau2=case["tau2"],
                     test=case["test"])


@pytest.mark.parametrize("case", SUB_CASES, ids=case_id)
def test_matches_metafor(case):
    res = fit(case)
    table = res.table
    assert table["group"].tolist() == case["groups"]
    fields = SEPARATE if case["tau2"] == "separate" else COMMON
    for ours, theirs in fields.items():
        expected = np.broadcast_to(arr(case[theirs]), len(table))
        assert_close(table[ours].to_numpy(float), expected, case["method"], f"{ours} ({case['call']})")
    if case["method"] != "FE":  # metafor gives no prediction interval for FE models
        assert_close(table[["pi_low", "pi_high"]].to_numpy(float).T,
                     [case["pi_low"], case["pi_high"]], case["method"], "prediction intervals")
    assert_close([res.q_between, res.q_between_pvalue], [case["Q_between"], case["Q_between_p"]],
                 case["method"], f"between-group test ({case['call']})")
    assert res.q_between_df == case["Q_between_df"]


def test_single_study_groups_are_allowed():
    yi, vi = data("bcg")
    groups = ["solo"] + ["rest"] * 12
    res = subgroups(yi, vi, groups)
    solo = res.table.set_index("group").loc["solo"]
    assert solo["k"] == 1 and solo["tau2"] == 0  # k = 1 sets tau^2 = 0 by rule (metafor alike)
    # a one-study pool is (w y) / w: the study's effect but for a rounding or two
    assert solo["estimate"] == pytest.approx(yi[0], rel=4 * np.finfo(float).eps)
    assert isinstance(res, SubgroupResult) and res.to_frame().shape == (2, 12)


@pytest.mark.parametrize(("groups", "kwargs", "message"), [
    (["a"] * 13, {}, "groups has a single level"),
    (["a", "b"] * 6, {}, "groups has 12 labels but yi has 13"),
    (["a", None] + ["b"] * 11, {}, "groups is missing at position 1"),
    (["a", "b"] * 6 + ["a"], {"tau2": "pooled"}, "unknown tau2 'pooled'"),
    (["solo"] + ["b"] * 12, {"test": "knha"}, "test='knha' with 1 coefficient(s) needs at least 2"),
])
def test_bad_input(groups, kwargs, message):
    yi, vi = data("bcg")
    with pytest.raises(EvidenceError) as info:
        subgroups(yi, vi, groups, **kwargs)
    assert message in str(info.value)
