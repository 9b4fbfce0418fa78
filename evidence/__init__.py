"""Evidence synthesis for soc-kb: effect sizes, random-effects pooling, heterogeneity,
subgroups, meta-regression, multilevel and robust models, bias and sensitivity checks,
and vote counting: pure functions on arrays and DataFrames, checked against R's metafor.

``evidence`` never imports ``kb``, streamlit or sqlite.
"""

from importlib import import_module

from ._checks import METHODS
from .effect_sizes import (
    EffectSizes,
    lnrr_from_percent_change,
    log_response_ratio,
    mean_difference,
    percent_change_from_lnrr,
    sd_from_se,
    se_from_ci,
    standardized_mean_difference,
    vi_from_ci,
)
from .errors import ConvergenceError, EvidenceError
from .pooling import PoolResult, pool
from .regression import MetaRegressionResult, meta_regression
from .subgroups import SubgroupResult, subgroups  # the function, not the module of that name

# name -> module, imported on first use
_EXPORTS = {
    "pool_multilevel": "multilevel",
    "robust_pool": "multilevel",
    "pool_nested": "multilevel",
    "NestedResult": "multilevel",
    "meta_regression_nested": "moderators",
    "moderator_analysis": "moderators",
    "NestedRegressionResult": "moderators",
    "ModeratorAnalysis": "moderators",
    "egger_test": "bias",
    "rank_test": "bias",
    "trim_and_fill": "bias",
    "fail_safe_n": "bias",
    "leave_one_out": "sensitivity",
    "cumulative": "sensitivity",
    "influence": "sensitivity",
    "synthesis_sensitivity": "sensitivity",
    "SensitivityResult": "sensitivity",
    "Scenario": "sensitivity",
    "scale_variance": "sensitivity",
    "drop_rows": "sensitivity",
    "leave_one_site_out": "sensitivity",
    "vote_count": "votes",
    "VoteCountResult": "votes",
    "synthesize": "synthesis",
    "evidence_map": "synthesis",
    "warming_bins": "synthesis",
    "variance_notes": "synthesis",
    "fit_group": "synthesis",
    "GroupFit": "synthesis",
    "grade_certainty": "certainty",
    "Certainty": "certainty",
}

__all__ = [
    "METHODS", "ConvergenceError", "EffectSizes", "EvidenceError", "MetaRegressionResult", "PoolResult",
    "SubgroupResult", "lnrr_from_percent_change", "log_response_ratio", "mean_difference",
    "meta_regression", "percent_change_from_lnrr", "pool", "sd_from_se", "se_from_ci",
    "standardized_mean_difference", "subgroups", "vi_from_ci", *_EXPORTS,
]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'evidence' has no attribute {name!r}")
