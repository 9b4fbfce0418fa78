"""Shared access to tests/golden/metafor_moderators.json (made by make_metafor_moderators.R
with metafor) and the tolerances for nested meta-regressions.

Tolerances. R and Python use the same data (rounded to 15 significant digits in R before
fitting) and the same model; differences come from where the iterations stop and from
summation order.

* MV_RTOL = 1e-6 (with the absolute floor MV_ATOL = 1e-8) for every value of a case
  whose rma.mv fit met nlminb's rel.tol = 1e-12 on the log-likelihood: coefficients, SEs,
  statistics, p-values, CI and prediction bounds, QM, sigma2, weights all depend on the
  variance components, which a stop at relative change 1e-12 of a flat likelihood leaves
  uncertain at about its square root. Observed worst: 1.9e-7 (sigma2 of a null model),
  2.5e-8 for everything else.
* FALLBACK_RTOL = 1e-5 for the "fallback" cases, where nlminb could not meet 1e-12 (a
  component near 0, or two confounded) and stopped at the default rel.tol = 1e-10, whose
  square root is 1e-5; in all of them our log-likelihood is at least metafor's. Observed
  worst: 3.8e-6 (a prediction bound), 1.3e-6 (a z statistic of an intercept near 0).
* QE does not depend on sigma2 (the fixed-effect fit with weights 1 / vi): QE_RTOL = 1e-10
  (observed worst: 2.7e-15).
* R2_ATOL = 2e-3 percentage points for the pseudo-R^2 = 100 (1 - s / s0), computed from two
  fits whose sums s and s0 may each be off by FALLBACK_RTOL: 100 * 2 * 1e-5. Observed
  worst: 4.1e-5.
* Our log-likelihood must not be below metafor's by more than LOGLIK_SLACK = 1e-10
  (observed: at most 2.7e-13 below, rounding).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from metafor_golden import arr

GOLDEN = Path(__file__).parent / "golden" / "metafor_moderators.json"
MV_RTOL = 1e-6
FALLBACK_RTOL = 1e-5
MV_ATOL = 1e-8
QE_RTOL = 1e-10
R2_ATOL = 2e-3
LOGLIK_SLACK = 1e-10

with GOLDEN.open() as fh:
    GOLD = json.load(fh)


def data(name):
    """(yi, vi, source, site, moderators DataFrame) of a golden data set."""
    d = GOLD["data"][name]
    mods = pd.DataFrame({key: pd.Series(values) for key, values in d["moderators"].items()})
    return arr(d["yi"]), arr(d["vi"]), d["source"], d["site"], mods


def inputs(case):
    """(yi, vi, moderators of the case, source, site), in meta_regression_nested's order."""
    yi, vi, source, site, mods = data(case["data"])
    return yi, vi, mods[case["mods"]], source, site


def new_rows(case):
    """The moderator values R predicted at."""
    return pd.DataFrame({key: pd.Series(values) for key, values in case["new"].items()})


def case_id(case):
    """A readable pytest id for a golden case."""
    return "-".join([case["data"], "+".join(case["mods"]), "/".join(case["levels"]),
                     case["method"], case["test"]])


def rtol(case, null=False):
    """The relative tolerance for a case's values (``null``: of its intercept-only fit)."""
    return FALLBACK_RTOL if case["null_fallback" if null else "fallback"] else MV_RTOL


def assert_close(actual, expected, what, rtol=MV_RTOL, atol=MV_ATOL):
    """assert_allclose against a golden value; R's NA (null) must be NaN here too."""
    np.testing.assert_allclose(np.asarray(actual, dtype=float), arr(expected), rtol=rtol,
                               atol=atol, equal_nan=True, err_msg=what)
