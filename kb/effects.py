"""Effect sizes of stored contrasts: computed with :mod:`evidence` from the arm numbers when given.

A record with means, SDs and ns gets ``yi`` and ``vi`` from the measure it names (ROM =
log response ratio, SMD = Hedges' g, MD = mean difference). A record with means only gets
``yi`` and no ``vi`` (it still counts in vote counting). A record that states ``yi`` as
well as the numbers it came from must agree with them.
"""

from __future__ import annotations

import math

from .errors import RecordError

_ARMS = ("mean_t", "sd_t", "n_t", "mean_c", "sd_c", "n_c")
_TOLERANCE = 1e-6  # yi stored with fewer digits than a float (e.g. from a paper's table)


def complete_effect(row: dict) -> dict:
    """``row`` with yi/vi filled from its arm numbers; refuses a stated yi that disagrees."""
    computed = _from_arms(row)
    if computed is None:
        return row
    yi, vi = computed
    if "yi" in row and not math.isclose(row["yi"], yi, rel_tol=_TOLERANCE, abs_tol=_TOLERANCE):
        raise RecordError(f"{row['yi']:g} does not match the arm numbers, which give "
                          f"{yi:.6g} for measure {row['measure']}", table="effects",
                          record=row.get("id"), field="yi", value=row["yi"],
                          allowed="leave yi empty to compute it, or correct the means")
    filled = dict(row, yi=yi)
    if vi is not None and "vi" not in row:
        filled["vi"] = vi
    return filled


def _from_arms(row: dict) -> tuple[float, float | None] | None:
    measure = row.get("measure")
    if measure is None or row.get("mean_t") is None or row.get("mean_c") is None:
        return None
    if all(row.get(name) is not None for name in _ARMS):
        return _full(measure, row)
    if measure == "ROM":
        return math.log(row["mean_t"] / row["mean_c"]), None
    if measure == "MD":
        return row["mean_t"] - row["mean_c"], None
    return None  # SMD needs the SDs


def _full(measure: str, row: dict) -> tuple[float, float | None]:
    import evidence

    function = {"ROM": evidence.log_response_ratio, "SMD": evidence.standardized_mean_difference,
                "MD": evidence.mean_difference}[measure]
    yi, vi = function(*(row[name] for name in _ARMS))
    vi = float(vi)
    return float(yi), (vi if vi > 0 else None)
