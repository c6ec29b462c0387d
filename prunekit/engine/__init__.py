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
)
from prunekit.engine.report import Snapshot, build_report, fill_report, layer_params, report_config, snapshot
from prunekit.engine.reuse import pruned_graph, rule_views, shape_key

__all__ = [
    "PruneOptions",
    "Override",
    "resolve_options",
    "option_flags",
    "GroupSparsity",
    "check_model_options",
    "build_criterion",
    "criterion_with_data",
    "candidates",
    "group_sparsity",
    "plan_pruning",
    "global_counts",
    "search_sparsity",
    "MAX_SPARSITY",
    "fill_report",
    "layer_params",
    "report_config",
    "Snapshot",
    "snapshot",
    "build_report",
    "analyse",
    "fast_macs_per_module",
    "fast_count_macs",
    "pruned_graph",
    "shape_key",
    "rule_views",
]
