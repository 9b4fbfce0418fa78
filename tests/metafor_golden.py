"""Shared access to tests/golden/metafor_core.json (made by make_metafor_core.R) and the
tolerances used to compare with it.

Tolerances. R and Python use the same data (rounded to 15 significant digits in R before
fitting, so the JSON holds exactly R's inputs) and the same algorithms, so differences come
from floating-point summation order and from where the iterations stop.

* CLOSED_RTOL = 1e-10 for closed-form results (FE, DL, HE, HS, SJ, effect sizes):
  the observed worst relative error is 1.3e-14 (a Knapp-Hartung p-value); 1e-10 leaves
  room for other BLAS/libm builds while still failing on any real formula difference.
* ITER_RTOL = 1e-8 for iterative results (REML, ML, PM, EB, Q-profile CI bounds): both
  sides stop when tau^2 changes by < 1e-12 (Fisher scoring) or bracket the root to
  1e-12 (R's uniroot, tol = 1e-12) / 1e-14 (scipy brentq); tau^2 is O(0.01-1) in these
  data, so the stop alone can move tau^2 by ~1e-10 relative, and everything downstream
  by less. Observed worst: 2e-11 (EB, which metafor iterates and we solve by root finding).
* ATOL = 1e-10 absolute floor, for values that are (near) zero: tau^2 = 0 on the boundary,
  I^2 = 0, and statistics of estimates close to 0.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

GOLDEN = Path(__file__).parent / "golden" / "metafor_core.json"
CLOSED_RTOL = 1e-10
ITER_RTOL = 1e-8
ATOL = 1e-10
ITERATIVE = {"REML", "ML", "PM", "EB"}


def load():
    """The parsed golden file."""
    with GOLDEN.open() as fh:
        return json.load(fh)


GOLD = load()


def arr(value):
    """A JSON number/list (null = R's NA) as a 1-d float array with NaN for NA."""
    return np.atleast_1d(np.array(value, dtype=float))


def data(name):
    """(yi, vi) of a golden data set."""
    d = GOLD["data"][name]
    return arr(d["yi"]), arr(d["vi"])


def rtol(method):
    """The relative tolerance for a tau^2 estimator (see module docstring)."""
    return ITER_RTOL if method in ITERATIVE else CLOSED_RTOL


def moderators(name, which="columns"):
    """Moderator columns (or the 'new' prediction rows) of a meta-regression case."""
    return pd.DataFrame(GOLD["moderators"][name][which])


def case_id(case):
    """A readable pytest id for a golden case."""
    return "-".join(str(case[key]) for key in ("dataset", "tau2", "method", "test") if key in case)


def assert_close(actual, expected, method, what):
    """assert_allclose with the tolerance of ``method``; NA in R must be NaN here too."""
    np.testing.assert_allclose(actual, arr(expected), rtol=rtol(method), atol=ATOL,
                               equal_nan=True, err_msg=what)
