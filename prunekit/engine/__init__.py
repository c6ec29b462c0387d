"""The pruning engine: one options object, planning, budget search and report filling.

Every way of pruning (``prune_``, ``mask_``, reconstruction, sensitivity, schedules, recipes)
goes through these functions, so an option means the same thing everywhere.
"""

from prunekit.engine.budget import MAX_SPARSITY, search_sparsity
from prunekit.engine.macs import analyse, fast_count_macs, fast_macs_per_module
from prunekit.engine.options import Override, PruneOptions, option_flags, resolve_options
from prunekit.engine.planning import (
    GroupSparsity,
    build_criterion,
    candidates,
    check_model_options,
    criterion_with_data,
    global_counts,
    group_sparsity,
    plan_pruning,
    score_group,
)
from prunekit.engine.report import (
    Snapshot,
    build_report,
    fill_report,
    layer_params,
    report_config,
    snapshot,
    warn_unmet,
)
from prunekit.engine.reuse import pruned_graph, rule_views, shape_key

__all__ = [
    "PruneOptions",
    "Override",
    "resolve_options",
    "option_flags",
    "plan_pruning",
    "candidates",
    "group_sparsity",
    "global_counts",
    "score_group",
    "build_criterion",
    "criterion_with_data",
    "check_model_options",
    "GroupSparsity",
    "search_sparsity",
    "MAX_SPARSITY",
    "fill_report",
    "layer_params",
    "report_config",
    "Snapshot",
    "snapshot",
    "build_report",
    "warn_unmet",
    "analyse",
    "fast_macs_per_module",
    "fast_count_macs",
    "pruned_graph",
    "shape_key",
    "rule_views",
]
