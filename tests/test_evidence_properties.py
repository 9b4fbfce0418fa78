"""Invariances of pool() and meta_regression() checked with hypothesis."""

import numpy as np
import pandas as pd
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from evidence import ConvergenceError, meta_regression, pool

METHODS = ["FE", "DL", "REML", "ML", "PM", "HS", "SJ", "HE", "EB"]
# Iterative estimators stop when tau^2 changes by < 1e-12 (absolute), so two fits of
# equivalent data can differ by that much; 1e-7 relative / 1e-9 absolute is far above it.
RTOL, ATOL = 1e-7, 1e-9


@st.composite
def studies(draw, min_k=2, max_k=30):
    k = draw(st.integers(min_k, max_k))
    finite = {"allow_nan": False, "allow_infinity": False}
    yi = draw(st.lists(st.floats(-3, 3, **finite), min_size=k, max_size=k))
    vi = draw(st.lists(st.floats(1e-3, 1, **finite), min_size=k, max_size=k))
    return np.array(yi), np.array(vi)


def fit_or_skip(yi, vi, method, **kwargs):
    try:
        return pool(yi, vi, method=method, **kwargs)
    except ConvergenceError:
        assume(False)  # e.g. a PM root beyond metafor's tau2_max: not a property failure


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


@settings(max_examples=60, deadline=None)
@given(studies(), st.sampled_from(METHODS), st.randoms(use_true_random=False))
def test_estimate_does_not_depend_on_study_order(data, method, rnd):
    yi, vi = data
    order = list(range(len(yi)))
    rnd.shuffle(order)
    a, b = fit_or_skip(yi, vi, method), fit_or_skip(yi[order], vi[order], method)
    close([a.estimate, a.se, a.tau2, a.i2, a.q], [b.estimate, b.se, b.tau2, b.i2, b.q])
    close(a.weights[order], b.weights)


@settings(max_examples=60, deadline=None)
@given(studies(), st.sampled_from(METHODS), st.floats(-10, 10), st.sampled_from(["z", "knha"]))
def test_shifting_effects_shifts_estimate_and_ci_only(data, method, c, test):
    yi, vi = data
    a, b = fit_or_skip(yi, vi, method, test=test), fit_or_skip(yi + c, vi, method, test=test)
    close([a.estimate + c, a.ci_low + c, a.ci_high + c], [b.estimate, b.ci_low, b.ci_high])
    close([a.tau2, a.i2, a.se], [b.tau2, b.i2, b.se])


@settings(max_examples=60, deadline=None)
@given(studies(), st.sampled_from(METHODS), st.floats(0.1, 10))
def test_scaling_effects_scales_estimate_and_tau2(data, method, scale):
    yi, vi = data
    a, b = fit_or_skip(yi, vi, method), fit_or_skip(yi * scale, vi * scale**2, method)
    close([a.estimate * scale, a.se * scale, a.tau2 * scale**2, a.i2],
          [b.estimate, b.se, b.tau2, b.i2])


@settings(max_examples=100, deadline=None)
@given(studies(min_k=1), st.sampled_from(METHODS))
def test_tau2_and_i2_are_never_negative(data, method):
    res = fit_or_skip(*data, method)
    assert res.tau2 >= 0 and 0 <= res.i2 <= 100 and res.h2 >= 0
    if method != "FE":  # H^2 = tau^2 / s^2 + 1 for random-effects fits
        assert res.h2 >= 1


@settings(max_examples=40, deadline=None)
@given(studies(min_k=5), st.sampled_from(["FE", "DL", "REML", "ML", "HE", "SJ"]),
       st.randoms(use_true_random=False))
def test_meta_regression_does_not_depend_on_study_order(data, method, rnd):
    yi, vi = data
    x = np.linspace(0, 1, len(yi)) ** 2
    order = list(range(len(yi)))
    rnd.shuffle(order)
    a = meta_regression(yi, vi, pd.Series(x, name="x"), method=method)
    b = meta_regression(yi[order], vi[order], pd.Series(x[order], name="x"), method=method)
    close(a.coefficients.to_numpy(), b.coefficients.to_numpy())
    close([a.tau2, a.qm, a.qe, a.r2], [b.tau2, b.qm, b.qe, b.r2])
    assert a.tau2 >= 0 and 0 <= a.r2 <= 100 and a.i2 >= 0
