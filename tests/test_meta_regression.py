"""meta_regression() against metafor's rma.uni(mods = ...) and predict(), plus bad input."""

import numpy as np
import pandas as pd
import pytest
from metafor_golden import GOLD, assert_close, case_id, data, moderators

from evidence import EvidenceError, MetaRegressionResult, meta_regression

REG_CASES = GOLD["meta_regression"]
COEF_FIELDS = {"estimate": "estimate", "se": "se", "statistic": "statistic",
               "pvalue": "pvalue", "ci_low": "ci_low", "ci_high": "ci_high"}
MODEL_FIELDS = {"qm": "QM", "qm_pvalue": "QMp", "qe": "QE", "qe_pvalue": "QEp",
                "tau2": "tau2", "i2": "I2", "h2": "H2", "r2": "R2"}


def fit(case):
    name = case["dataset"]
    yi, vi = data(GOLD["moderators"][name]["data"])
    return meta_regression(yi, vi, moderators(name), method=case["method"], test=case["test"])


@pytest.mark.parametrize("case", REG_CASES, ids=case_id)
def test_coefficients_match_metafor(case):
    res = fit(case)
    assert len(res.coefficients) == len(case["terms"])
    for ours, theirs in COEF_FIELDS.items():
        assert_close(res.coefficients[ours].to_numpy(), case[theirs], case["method"],
                     f"{ours} ({case['call']})")


@pytest.mark.parametrize("case", REG_CASES, ids=case_id)
def test_model_statistics_match_metafor(case):
    res = fit(case)
    for ours, theirs in MODEL_FIELDS.items():
        assert_close(getattr(res, ours), case[theirs], case["method"], f"{ours} ({case['call']})")
    assert res.qm_df == case["QMdf"][0]
    assert res.qe_df == res.k - res.p


@pytest.mark.parametrize("case", REG_CASES, ids=case_id)
def test_predictions_match_metafor(case):
    pred = fit(case).predict(moderators(case["dataset"], "new"))
    gold = case["predict"]
    for column in ("pred", "se", "ci_low", "ci_high"):
        assert_close(pred[column].to_numpy(), gold[column], case["method"], column)
    if gold["pi_low"] is not None:  # metafor gives no prediction interval for FE models
        assert_close(pred[["pi_low", "pi_high"]].to_numpy().T, [gold["pi_low"], gold["pi_high"]],
                     case["method"], "prediction interval")


def test_factor_coding_uses_first_sorted_level_as_reference():
    res = fit({"dataset": "bcg", "method": "REML", "test": "z"})
    assert list(res.coefficients.index) == ["intrcpt", "ablat", "alloc[random]", "alloc[systematic]"]


def test_categorical_order_and_bool_columns():
    yi, vi = data("bcg")
    mods = moderators("bcg")
    cat = pd.Categorical(mods["alloc"], categories=["systematic", "random", "alternate"])
    res = meta_regression(yi, vi, {"alloc": cat, "north": mods["ablat"] > 30})
    assert list(res.coefficients.index) == ["intrcpt", "alloc[random]", "alloc[alternate]",
                                            "north[True]"]


def test_result_object():
    res = fit({"dataset": "curtis1998", "method": "REML", "test": "knha"})
    assert isinstance(res, MetaRegressionResult)
    assert res.to_frame()["term"].tolist() == list(res.coefficients.index)
    assert 0 <= res.r2 <= 100 and res.tau2 >= 0 and res.qm_ddf == res.k - res.p


def test_scales_to_many_studies_without_k_by_k_matrices():
    rng = np.random.default_rng(1)
    k = 100_000
    x = rng.normal(size=k)
    g = rng.choice(["a", "b", "c"], size=k)
    vi = rng.uniform(0.01, 0.1, size=k)
    yi = 0.2 + 0.1 * x + (g == "b") * 0.3 + rng.normal(0, np.sqrt(vi + 0.02))
    res = meta_regression(yi, vi, pd.DataFrame({"x": x, "g": g}))
    # sampling error, not rounding: the standard errors are 0.0008-0.002, so 0.01 is >= 5 SE
    # (the seeded draw lands within 2 SE); tau^2 has an SE of ~1.3 % of 0.02: 10 % is 7 SE
    np.testing.assert_allclose(res.coefficients["estimate"], [0.2, 0.1, 0.3, 0.0], atol=0.01)
    np.testing.assert_allclose(res.tau2, 0.02, rtol=0.1)


YI, VI = data("bcg")
MODS = moderators("bcg")
BAD = [
    ({"moderators": MODS.iloc[:5]}, "moderators has 5 rows but yi has 13"),
    ({"moderators": MODS.assign(ablat=MODS["ablat"].where(MODS.index != 3))},
     "moderator 'ablat' is missing at row 3"),
    ({"moderators": MODS.assign(z=1.0)}, "not of full rank"),
    ({"moderators": MODS.assign(ablat2=2 * MODS["ablat"])}, "not of full rank"),
    ({"moderators": MODS.assign(alloc="random")}, "has a single level 'random'"),
    ({"moderators": pd.DataFrame(index=range(13))}, "moderators has no columns"),
    ({"moderators": MODS, "method": "XX"}, "unknown method 'XX'"),
    ({"moderators": MODS, "test": "F"}, "unknown test 'F'"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD)
def test_bad_input_is_rejected_with_a_clear_message(kwargs, message):
    with pytest.raises(EvidenceError) as info:
        meta_regression(YI, VI, **kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize(("k", "method", "test", "message"), [
    (3, "REML", "z", "method='REML' with 3 coefficient(s) needs at least 4 studies, got k=3"),
    (3, "FE", "knha", "test='knha' with 3 coefficient(s) needs at least 4 studies, got k=3"),
    # fewer studies than coefficients: the model matrix is rank deficient too, but the
    # useful message is the number of studies
    (2, "FE", "z", "method='FE' with 3 coefficient(s) needs at least 3 studies, got k=2"),
])
def test_too_few_studies(k, method, test, message):
    mods = pd.DataFrame({"x": [1.0, 2.0, 4.0, 3.0][:k], "g": ["a", "b", "a", "b"][:k]})
    with pytest.raises(EvidenceError) as info:
        meta_regression(YI[:k], VI[:k], mods, method=method, test=test)
    assert message in str(info.value)


def test_predict_rejects_unknown_levels_and_missing_columns():
    res = fit({"dataset": "bcg", "method": "DL", "test": "z"})
    with pytest.raises(EvidenceError, match="level 'cluster'"):
        res.predict({"ablat": [10], "alloc": ["cluster"]})
    with pytest.raises(EvidenceError, match=r"lacks column\(s\) \['alloc'\]"):
        res.predict({"ablat": [10]})
