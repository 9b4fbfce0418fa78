"""Normal, Student t, chi-square and F tail functions on ``scipy.special``.

``scipy.stats`` costs about 1 s to import, most of the time an explorer page needs before
its first render; these one-liners call the same ``scipy.special`` routines that
``scipy.stats`` 1.17 uses for these distributions (``_continuous_distns.py``), so results
agree with ``scipy.stats`` to rounding (checked in ``tests/test_evidence_imports.py``).
Like ``scipy.stats``, invalid parameters (df <= 0, probabilities outside [0, 1]) give nan;
unlike it, infinite df give nan for chi-square and F (this package never uses them).
"""

import numpy as np
from scipy import special


def norm_cdf(x):
    """Standard normal distribution function, as ``scipy.stats.norm.cdf``."""
    return special.ndtr(x)


def norm_sf(x):
    """Standard normal upper tail P(Z > x), as ``scipy.stats.norm.sf``."""
    return special.ndtr(np.negative(x))


def norm_isf(q):
    """Standard normal upper quantile z with P(Z > z) = q, as ``scipy.stats.norm.isf``."""
    return np.negative(special.ndtri(q))


def t_sf(x, df):
    """Student t upper tail P(T > x) with ``df`` degrees of freedom, as ``scipy.stats.t.sf``."""
    return special.stdtr(_positive(df), np.negative(x))


def t_isf(q, df):
    """Student t upper quantile with ``df`` degrees of freedom, as ``scipy.stats.t.isf``."""
    # stdtrit(df, 0) is +inf, not -inf (scipy 1.17), so its sign is already the isf's there
    lower = special.stdtrit(_positive(df), q)
    return np.where(np.equal(q, 0), lower, np.negative(lower))[()]


def chi2_cdf(x, df):
    """Chi-square distribution function with ``df`` degrees of freedom, as ``scipy.stats.chi2.cdf``."""
    return special.chdtr(_positive(df), _support(x))


def chi2_sf(x, df):
    """Chi-square upper tail with ``df`` degrees of freedom, as ``scipy.stats.chi2.sf``."""
    return special.chdtrc(_positive(df), _support(x))


def chi2_ppf(q, df):
    """Chi-square lower quantile with ``df`` degrees of freedom, as ``scipy.stats.chi2.ppf``."""
    return 2 * special.gammaincinv(_positive(df) / 2, q)


def chi2_isf(q, df):
    """Chi-square upper quantile with ``df`` degrees of freedom, as ``scipy.stats.chi2.isf``."""
    return special.chdtri(_positive(df), q)


def f_sf(x, dfn, dfd):
    """F upper tail with ``dfn`` and ``dfd`` degrees of freedom, as ``scipy.stats.f.sf``."""
    return special.fdtrc(_positive(dfn), _positive(dfd), _support(x))


def _positive(df):
    """``df`` with values <= 0 replaced by nan: scipy.stats returns nan there, special may not."""
    return np.where(np.asarray(df, dtype=float) > 0, df, np.nan)


def _support(x):
    """``x`` clipped at 0: below the support scipy.stats gives cdf 0 / sf 1, special gives nan."""
    return np.maximum(x, 0.0)
