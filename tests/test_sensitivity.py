"""leave_one_out, cumulative and influence against metafor's leave1out, cumul and influence."""

import re

import numpy as np
import pytest
from metafor_bias_golden import ATOL, GOLD, assert_close, case_id, data

from evidence import EvidenceError, cumulative, influence, leave_one_out, pool
from evidence.sensitivity import COLUMNS

INFLUENCE_COLUMNS = ("rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "qe_del", "hat",
                     "weight", "dfbetas")


def _assert_table(frame, case):
    assert list(frame.columns) == list(COLUMNS)
    for name in COLUMNS:
        assert_close(frame[name], case[name], f"{name} ({case['call']})")


@pytest.mark.parametrize("case", GOLD["leave1out"], ids=case_id)
def test_leave_one_out_matches_leave1out(case):
    frame = leave_one_out(*data(case["data"]), method=case["method"], test=case["test"])
    _assert_table(frame, case)
    assert frame.index.name == "omitted" and frame.index.tolist() == list(range(len(frame)))


@pytest.mark.parametrize("case", GOLD["cumul"], ids=case_id)
def test_cumulative_matches_cumul(case):
    order = GOLD["data"][case["data"]]["order"] if case["ordered"] else None
    frame = cumulative(*data(case["data"]), method=case["method"], order=order)
    _assert_table(frame, case)


@pytest.mark.parametrize("case", GOLD["influence"], ids=case_id)
def test_influence_matches_metafor(case):
    frame = influence(*data(case["data"]), method=case["method"])
    for name in INFLUENCE_COLUMNS:
        assert_close(frame[name], case[name], f"{name} ({case['call']})")
    assert frame["inf"].tolist() == case["inf"]


def test_golden_influence_flags_some_studies_but_not_all():
    flags = [flag for case in GOLD["influence"] for flag in case["inf"]]
    assert any(flags) and not all(flags)


def test_cumulative_ends_with_the_full_model_and_reports_the_order():
    yi, vi = data("bcg")
    year = np.array(GOLD["data"]["bcg"]["order"])
    frame = cumulative(yi, vi, order=year)
    assert frame.index.name == "added"
    assert frame.index.tolist() == np.argsort(year, kind="stable").tolist()
    assert frame["estimate"].iloc[-1] == pytest.approx(pool(yi, vi).estimate, rel=1e-12)
    assert frame["tau2"].iloc[0] == 0  # the first step pools k = 1: tau^2 = 0 by rule


def test_knha_rows_that_cannot_be_fitted_are_nan_as_metafor_na():
    frame = cumulative(*data("bcg"), test="knha")
    assert frame.iloc[0].isna().all() and frame.iloc[1:].notna().all().all()


def test_homogeneous_data_keep_tau2_at_zero():
    yi, vi = data("synthetic_hom")
    frame = leave_one_out(yi, vi)
    # tau^2 at its boundary: truncated to 0, or stopped by Fisher scoring within its 1e-12
    # threshold of 0; the golden ATOL (1e-10) bounds both. I^2 = 100 tau^2 / (s^2 + tau^2)
    # with the typical variance s^2 >= min(vi)
    np.testing.assert_allclose(frame["tau2"], 0.0, atol=ATOL)
    np.testing.assert_allclose(frame["i2"], 0.0, atol=100 * ATOL / vi.min())


SENSITIVITY_ERRORS = [
    ("leave one out k=1", leave_one_out, ([0.1], [0.01]), {}, "leave_one_out needs at least 2 studies, got k=1"),
    ("cumulative k=1", cumulative, ([0.1], [0.01]), {}, "cumulative needs at least 2 studies, got k=1"),
    ("influence k=1", influence, ([0.1], [0.01]), {}, "influence needs at least 2 studies, got k=1"),
    ("lengths", leave_one_out, ([0.1, 0.2], [0.01]), {}, "yi has 2, vi has 1"),
    ("NaN variance", influence, ([0.1, 0.2], [0.01, np.nan]), {}, "vi must be finite; position 1"),
    ("order length", cumulative, ([0.1, 0.2, 0.3], [0.01, 0.02, 0.03]), {"order": [1, 2]},
     "order must have one value per study; got shape (2,) for k=3"),
    ("unknown method", leave_one_out, ([0.1, 0.2], [0.01, 0.02]), {"method": "XX"},
     "unknown method 'XX'"),
    ("unknown test", cumulative, ([0.1, 0.2], [0.01, 0.02]), {"test": "t"}, "unknown test 't'"),
]


@pytest.mark.parametrize("case,func,args,kwargs,message", SENSITIVITY_ERRORS,
                         ids=[c[0] for c in SENSITIVITY_ERRORS])
def test_sensitivity_functions_refuse_bad_input(case, func, args, kwargs, message):
    with pytest.raises(EvidenceError, match=re.escape(message)):
        func(*args, **kwargs)
