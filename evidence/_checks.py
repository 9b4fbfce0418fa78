"""Input validation shared by the ``evidence`` modules.

Every helper raises :class:`~evidence.errors.EvidenceError` with one sentence that names
the argument, the offending value and its position, and what to do instead.
"""

import numpy as np

from .errors import EvidenceError

METHODS = ("REML", "DL", "ML", "PM", "HS", "SJ", "HE", "EB", "FE")  # the default first
TESTS = ("z", "knha")


def as_float_array(values, name):
    """Return ``values`` as a 1-d float array; scalars become length-1 arrays.

    Parameters
    ----------
    values : array-like or scalar
        Numbers (list, tuple, numpy array, pandas Series or a single number).
    name : str
        Argument name used in error messages.

    Returns
    -------
    numpy.ndarray
        1-d float64 array (a copy is made only when needed).
    """
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise EvidenceError(
            f"{name} must contain numbers only; could not convert it to float ({exc})."
        ) from None
    if arr.ndim > 1:
        raise EvidenceError(f"{name} must be one-dimensional; got an array of shape {arr.shape}.")
    return np.atleast_1d(arr)


def check_finite(arr, name):
    """Raise if ``arr`` holds NaN or infinite values, naming the first bad position."""
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise EvidenceError(
            f"{name} must be finite; position {i} is {float(arr[i])!r} "
            f"({int(bad.sum())} non-finite value(s)); drop or impute those studies first."
        )
    return arr


def check_same_length(**arrays):
    """Raise unless all keyword arrays have the same length."""
    lengths = {name: len(arr) for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise EvidenceError(f"inputs must have the same length, but {listed}; pass one value per study.")


def check_positive(arr, name, strict=True):
    """Raise if ``arr`` has values <= 0 (``strict``) or < 0, naming the first bad position."""
    bad = arr <= 0 if strict else arr < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        need = "> 0" if strict else ">= 0"
        raise EvidenceError(f"{name} must be {need}; position {i} is {float(arr[i])!r}.")
    return arr


def as_effects(yi, vi):
    """Validate effect sizes and sampling variances for a meta-analysis.

    Parameters
    ----------
    yi : array-like
        Observed effect sizes, one per study.
    vi : array-like
        Sampling variances, one per study; each must be > 0.

    Returns
    -------
    yi, vi : numpy.ndarray
        1-d float64 arrays of equal length k >= 1.
    """
    yi = check_finite(as_float_array(yi, "yi"), "yi")
    vi = as_float_array(vi, "vi")
    check_same_length(yi=yi, vi=vi)
    if len(yi) == 0:
        raise EvidenceError("yi is empty; at least one study is needed.")
    check_finite(vi, "vi")
    bad = vi <= 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise EvidenceError(
            f"vi must be > 0; position {i} is {float(vi[i])!r}; a zero or negative sampling "
            "variance usually means a missing SD or a typo."
        )
    return yi, vi


def check_choice(value, allowed, name):
    """Return ``value`` if it is one of ``allowed`` (case-insensitive for str), else raise."""
    if isinstance(value, str):
        for option in allowed:
            if value.upper() == option.upper():
                return option
    raise EvidenceError(f"unknown {name} {value!r}; must be one of {list(allowed)}.")


def check_alpha(alpha):
    """Raise unless 0 < alpha < 1."""
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise EvidenceError(f"alpha must be a number between 0 and 1 (e.g. 0.05); got {alpha!r}.")
    return float(alpha)


def check_k(k, p, method, test):
    """Raise if ``k`` studies are too few for ``p`` coefficients with ``method``/``test``.

    Notes
    -----
    As metafor's ``rma.uni``: a fixed-effect model needs k >= p, a random-effects model
    k >= p + 1 (an intercept-only model with k = 1 is allowed, with tau^2 = 0). The
    Knapp-Hartung test needs k - p >= 1 residual degrees of freedom.
    """
    if p == 1 and k == 1 and test != "knha":
        return
    need = p if method == "FE" else p + 1
    if test == "knha":
        need = max(need, p + 1)
    if k < need:
        what = f"test='{test}'" if test == "knha" and k < p + 1 else f"method='{method}'"
        raise EvidenceError(
            f"{what} with {p} coefficient(s) needs at least {need} studies, got k={k}; "
            "add studies, drop moderators, or use test='z'."
        )
