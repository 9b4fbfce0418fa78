"""Shared access to tests/golden/metafor_multilevel.json (made by make_metafor_multilevel.R
with metafor and clubSandwich) and the tolerances for nested and robust results.

Tolerances. R and Python use the same data (rounded to 15 significant digits in R before
fitting) and the same model; differences come from where the iterations stop and from
summation order.

* MV_RTOL = 1e-6 and MV_ATOL = 1e-8 for everything that depends on rma.mv's variance
  components (pool_nested, and robust results with the nested working model): metafor
  stops nlminb at a relative change of 1e-12 in the log-likelihood, or 1e-10 where it
  cannot meet that (the "fallback" cases: a component near 0, or two confounded), and a
  flat likelihood leaves sigma2 uncertain at about the square root of that. Observed:
  |sigma2 - metafor| / sigma2 up to 3e-6 (synthetic_nosite, ML, a fallback case) with our
  log-likelihood higher than metafor's by up to 8e-12; downstream relative differences
  up to 1e-5 in p-values near 1e-5 (2e-10 absolute, inside MV_ATOL) and 1e-7 elsewhere.
  Our log-likelihood must not be below metafor's by more than LOGLIK_SLACK = 1e-10
  (observed: at most 9e-14 below, rounding).
* CR2_RTOL = 1e-10 for clubSandwich's CR2 with the random-effects working model, whose
  tau^2 comes from rma.uni's Fisher scoring (both sides stop when tau^2 changes by
  < 1e-12): the quadrature in evidence.robust is accurate to ~1e-13 relative, and
  clubSandwich's eigen-decomposition to ~1e-14 on these data. Observed worst: 1.6e-13
  (a confidence bound). 1e-10 leaves room for other BLAS/libm builds and still fails on a
  wrong formula.
* ATOL = 1e-12 absolute floor for values that are (near) zero in the CR2 cases.
"""

import json
from pathlib import Path

import numpy as np
from metafor_golden import arr

GOLDEN = Path(__file__).parent / "golden" / "metafor_multilevel.json"
MV_RTOL = 1e-6
MV_ATOL = 1e-8
LOGLIK_SLACK = 1e-10
CR2_RTOL = 1e-10
ATOL = 1e-12
LEVELS = ("source", "site", "effect")

with GOLDEN.open() as fh:
    GOLD = json.load(fh)


def data(name):
    """(yi, vi, source, site) of a golden data set."""
    d = GOLD["data"][name]
    return arr(d["yi"]), arr(d["vi"]), d["source"], d["site"]


def case_id(case):
    """A readable pytest id for a golden case."""
    keys = ("data", "working", "method", "test", "vcov")
    parts = [str(case[key]) for key in keys if key in case]
    if "levels" in case:
        parts.insert(1, "/".join(case["levels"]))
    if case.get("vcov") == "CR1":
        parts.append(f"adjust={case['adjust']}")
    if case.get("alpha", 0.05) != 0.05:
        parts.append(f"alpha={case['alpha']:g}")
    return "-".join(parts)


def merged_sigma2(sigma2, estimable, counts):
    """Variance components summed over confounded levels, as (source, site, effect).

    A level fixed at 0 because each of its units holds one unit of the next outer level
    is one level with that outer one: its variance (which metafor splits arbitrarily
    between the two) is added to the outer level's.
    """
    out = np.array(sigma2, dtype=float)
    for j in (2, 1):
        if not estimable[j] and counts[j] > 1 and counts[j] == counts[j - 1]:
            out[j - 1] += out[j]
            out[j] = 0.0
    return out


def assert_close(actual, expected, what, rtol, atol):
    """assert_allclose against a golden value; R's NA (null) must be NaN here too."""
    np.testing.assert_allclose(np.asarray(actual, dtype=float), arr(expected), rtol=rtol,
                               atol=atol, equal_nan=True, err_msg=what)
