"""Effect sizes of stored contrasts: computed with :mod:`evidence` from the arm numbers when given.

A record with means, SDs and ns gets ``yi`` and ``vi`` from the measure it names (ROM =
log response ratio, SMD = Hedges' g, MD = mean difference). A record with means only gets
``yi`` and no ``vi`` (it still counts in vote counting). A record that states ``yi`` as
well as the numbers it came from must agree with them. Numbers that give an infinite or
undefined ``yi`` or ``vi`` (overflow, underflow, too few observations) are refused before
anything is written: a stored infinity could not be exported and imported again.
"""

from __future__ import annotations

import math

from .errors import RecordError

_ARMS = ("mean_t", "sd_t", "n_t", "mean_c", "sd_c", "n_c")
_TOLERANCE = 1e-6  # yi stored with fewer digits than a float (e.g. from a paper's table)


def complete_effect(row: dict, label: str | None = None) -> dict:
    """``row`` with yi/vi filled from its arm numbers; refuses a stated yi that disagrees.

    ``label`` names the record in messages (default: its id).
    """
    record = label or row.get("id")
    computed = _from_arms(row, record)
    if computed is None:
        return row
    yi, vi = computed
    if "yi" in row and not math.isclose(row["yi"], yi, rel_tol=_TOLERANCE, abs_tol=_TOLERANCE):
        raise RecordError(f"{row['yi']:g} does not match the arm numbers, which give "
                          f"{yi:.6g} for measure {row['measure']}", table="effects",
                          record=record, field="yi", value=row["yi"],
                          allowed="leave yi empty to compute it, or correct the means")
    filled = dict(row, yi=yi)
    if vi is not None and "vi" not in row:
        filled["vi"] = vi
    return filled


def _from_arms(row: dict, record) -> tuple[float, float | None] | None:
    measure = row.get("measure")
    if measure is None or row.get("mean_t") is None or row.get("mean_c") is None:
        return None
    if all(row.get(name) is not None for name in _ARMS):
        return _full(measure, row, record)
    if measure == "ROM":
        ratio = row["mean_t"] / row["mean_c"]
        yi = math.log(ratio) if 0 < ratio < math.inf else (math.inf if ratio else -math.inf)
    elif measure == "MD":
        yi = row["mean_t"] - row["mean_c"]
    else:
        return None  # SMD needs the SDs
    _check_finite(row, record, yi, None, ("mean_t", "mean_c"))
    return yi, None


def _full(measure: str, row: dict, record) -> tuple[float, float | None]:
    import numpy as np

    import evidence
    from evidence.errors import EvidenceError

    function = {"ROM": evidence.log_response_ratio, "SMD": evidence.standardized_mean_difference,
                "MD": evidence.mean_difference}[measure]
    try:
        with np.errstate(all="ignore"):  # overflow shows as inf/nan, refused just below
            yi, vi = function(*(row[name] for name in _ARMS))
    except EvidenceError as exc:
        problem = str(exc).rstrip(".")
        raise RecordError(f"the arm numbers give no {measure} effect size: {problem}",
                          table="effects", record=record, field="n_t",
                          allowed="check the arm numbers") from None
    yi, vi = float(yi), float(vi)
    _check_finite(row, record, yi, vi, _ARMS)
    if vi > 0:
        return yi, vi
    if row["sd_t"] > 0 or row["sd_c"] > 0:  # positive SDs, variance rounded to 0: an underflow
        _refuse(row, record, "vi", vi, _ARMS)
    return yi, None  # both SDs 0: no sampling variance to state


def _check_finite(row: dict, record, yi: float, vi: float | None, fields) -> None:
    if not math.isfinite(yi):
        _refuse(row, record, "yi", yi, fields)
    if vi is not None and not math.isfinite(vi):
        _refuse(row, record, "vi", vi, fields)


def _refuse(row: dict, record, name: str, value: float, fields) -> None:
    numbers = ", ".join(f"{f}={row[f]:g}" for f in fields)
    raise RecordError(f"the arm numbers ({numbers}) give {name} = {value:g} for measure "
                      f"{row['measure']}; an effect size and its variance must be finite "
                      "(and the variance > 0)", table="effects", record=record, field=name,
                      allowed="check the units and magnitudes of the means and SDs")
