"""Evidence synthesis for soc-kb: effect sizes, random-effects pooling, heterogeneity,
subgroups, meta-regression, multilevel and robust models, bias and sensitivity checks,
and vote counting: pure functions on arrays and DataFrames, checked against R's metafor.

``evidence`` never imports ``kb``, streamlit or sqlite.
"""

from importlib import import_module

from .errors import ConvergenceError, EvidenceError

# name -> module; filled lazily so each module can be developed and imported on its own
_EXPORTS = {
    "log_response_ratio": "effect_sizes",
    "standardized_mean_difference": "effect_sizes",
    "mean_difference": "effect_sizes",
    "sd_from_se": "effect_sizes",
    "se_from_ci": "effect_sizes",
    "vi_from_ci": "effect_sizes",
    "lnrr_from_percent_change": "effect_sizes",
    "percent_change_from_lnrr": "effect_sizes",
    "pool": "pooling",
    "PoolResult": "pooling",
    "meta_regression": "regression",
    "MetaRegressionResult": "regression",
    "subgroups": "subgroups",
    "SubgroupResult": "subgroups",
    "pool_multilevel": "multilevel",
    "robust_pool": "multilevel",
    "egger_test": "bias",
    "rank_test": "bias",
    "trim_and_fill": "bias",
    "fail_safe_n": "bias",
    "leave_one_out": "sensitivity",
    "cumulative": "sensitivity",
    "influence": "sensitivity",
    "vote_count": "votes",
    "VoteCountResult": "votes",
}

__all__ = ["ConvergenceError", "EvidenceError", *_EXPORTS]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'evidence' has no attribute {name!r}")
