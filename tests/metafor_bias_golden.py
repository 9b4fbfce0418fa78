"""Shared access to tests/golden/metafor_bias.json (made by make_metafor_bias.R) and the
tolerances for multilevel, robust, bias, sensitivity and vote-counting results.

Tolerances. R and Python use the same data (rounded to 15 significant digits in R before
fitting) and the same formulas; differences come from summation order and from where the
iterations stop.

* CLOSED_RTOL = 1e-10 for results without iteration or with rma.uni's Fisher scoring
  (robust, regtest, ranktest, trimfill, fsn, leave1out, cumul, influence, binom.test):
  both sides stop Fisher scoring when tau^2 changes by < 1e-12, so tau^2 is the same to
  ~1e-12 relative. Observed worst: 2.5e-13 (a regtest p-value), 1.7e-14 (a Clopper-Pearson
  bound); 1e-10 leaves room for other BLAS/libm builds and still fails on a wrong formula.
* ML_RTOL = 1e-6 and ML_ATOL = 1e-8 for rma.mv (pool_multilevel): metafor stops nlminb at a
  relative change of 1e-12 in the log-likelihood, and a flat likelihood leaves the variance
  components uncertain at about the square root of that: observed |sigma2 - metafor| up to
  1.8e-9 (our log-likelihood is never lower than metafor's). That moves estimates and CI
  bounds by ~1e-9 absolute (1.1e-7 relative for a bound near 0) and p-values of |z| > 10 by
  up to 5e-6 relative but < 1e-40 absolute; where a component is at its boundary metafor
  stops near 0 (2.8e-10) and we return 0, inside ML_ATOL.
* ATOL = 1e-10 absolute floor for values that are (near) zero: tau^2 at 0, statistics of
  estimates close to 0, p-values near 0.
"""

import json
from pathlib import Path

import numpy as np
from metafor_golden import arr

GOLDEN = Path(__file__).parent / "golden" / "metafor_bias.json"
CLOSED_RTOL = 1e-10
ML_RTOL = 1e-6
ML_ATOL = 1e-8
ATOL = 1e-10

with GOLDEN.open() as fh:
    GOLD = json.load(fh)


def data(name):
    """(yi, vi) of a golden data set."""
    d = GOLD["data"][name]
    return arr(d["yi"]), arr(d["vi"])


def cluster(name):
    """The cluster labels of a golden data set."""
    return GOLD["data"][name]["cluster"]


def case_id(case):
    """A readable pytest id for a golden case."""
    keys = ("data", "model", "type", "method", "estimator", "predictor", "test", "side_arg",
            "adjust", "ordered", "alpha", "target_arg")
    return "-".join(str(case[key]) for key in keys if key in case and case[key] is not None)


def assert_close(actual, expected, what, rtol=CLOSED_RTOL, atol=ATOL):
    """assert_allclose against a golden value; R's NA (null) must be NaN here too."""
    np.testing.assert_allclose(np.asarray(actual, dtype=float), arr(expected), rtol=rtol,
                               atol=atol, equal_nan=True, err_msg=what)
