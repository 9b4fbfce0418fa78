"""``import evidence`` stays cheap: it must not load scipy.stats (~1 s of the explorer's
first render) or scipy.optimize (~0.3 s), and the scipy.special stand-ins in ``evidence._dist`` must agree with
scipy.stats wherever the package uses them."""

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from evidence import _dist

# Both sides call the same scipy.special routine on the same arguments, so agreement is
# to the last bit in practice; 1e-12 leaves room for a differently rounded negation.
RTOL = 1e-12
X = np.array([-np.inf, -1e4, -40.0, -10.0, -1.96, -1e-300, 0.0, 1e-300, 1e-8, 0.5, 1.0,
              1.96, 3.0, 10.0, 40.0, 1e4, np.inf, np.nan])
Q = np.array([0.0, 1e-300, 1e-100, 1e-16, 1e-3, 0.025, 0.5, 0.975, 1 - 1e-16, 1.0,
              -0.1, 1.1, np.nan])
DF = [1, 2, 30, 1e6, 0.5, 0.0, -1.0, np.nan]  # the last three are invalid: nan on both sides

CASES = [
    ("norm_cdf", lambda df: _dist.norm_cdf(X), lambda df: stats.norm.cdf(X)),
    ("norm_sf", lambda df: _dist.norm_sf(X), lambda df: stats.norm.sf(X)),
    ("norm_isf", lambda df: _dist.norm_isf(Q), lambda df: stats.norm.isf(Q)),
    ("t_sf", lambda df: _dist.t_sf(X, df), lambda df: stats.t.sf(X, df)),
    ("t_isf", lambda df: _dist.t_isf(Q, df), lambda df: stats.t.isf(Q, df)),
    ("chi2_cdf", lambda df: _dist.chi2_cdf(X, df), lambda df: stats.chi2.cdf(X, df)),
    ("chi2_sf", lambda df: _dist.chi2_sf(X, df), lambda df: stats.chi2.sf(X, df)),
    ("chi2_ppf", lambda df: _dist.chi2_ppf(Q, df), lambda df: stats.chi2.ppf(Q, df)),
    ("chi2_isf", lambda df: _dist.chi2_isf(Q, df), lambda df: stats.chi2.isf(Q, df)),
    *[(f"f_sf dfd={dfd}", lambda df, d=dfd: _dist.f_sf(X, df, d),
       lambda df, d=dfd: stats.f.sf(X, df, d)) for dfd in DF],
]


@pytest.mark.parametrize("module", ["scipy.stats", "scipy.optimize"])
@pytest.mark.parametrize("package", ["evidence", "evidence.synthesis"])  # synthesis: evidence map
def test_import_does_not_load(package, module):
    code = f"import {package}, sys; print({module!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("df", DF)
@pytest.mark.parametrize(("name", "ours", "theirs"), CASES, ids=[c[0] for c in CASES])
def test_dist_matches_scipy_stats(name, ours, theirs, df):
    with np.errstate(all="ignore"):
        got, want = np.asarray(ours(df)), np.asarray(theirs(df))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=0, equal_nan=True)


@pytest.mark.parametrize(("func", "args"), [
    (_dist.norm_sf, (1.0,)), (_dist.norm_isf, (0.025,)), (_dist.t_sf, (1.0, 3)),
    (_dist.t_isf, (0.025, 3)), (_dist.chi2_sf, (3.0, 2)), (_dist.chi2_isf, (0.025, 2)),
    (_dist.chi2_ppf, (0.025, 2)), (_dist.f_sf, (2.0, 1, 3)),
])
def test_scalar_in_scalar_out(func, args):
    # callers format these as numbers and call float() on them; a 0-d array would leak out
    assert np.ndim(func(*args)) == 0
