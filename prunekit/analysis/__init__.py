"""Analysis before pruning: how sensitive each layer is (Li et al. 2017; Distiller's ``--sense``).

``sensitivity_analysis`` evaluates the model with each prunable group pruned alone at increasing
sparsity; ``suggest_sparsities`` / ``suggest_for_macs`` turn the curves into per-layer
sparsities, ``schedule_config`` + ``write_schedule`` into a ready-to-run YAML schedule, and
``plot_sensitivity`` (matplotlib, imported lazily) into a PNG.
"""

from prunekit.analysis.sensitivity import DEFAULT_SPARSITIES, SensitivityPoint, SensitivityResult, sensitivity_analysis
from prunekit.analysis.suggest import (
    prune_options,
    schedule_config,
    suggest_for_macs,
    suggest_sparsities,
    write_schedule,
)
from prunekit.reporting.plots import plot_sensitivity

__all__ = [
    "DEFAULT_SPARSITIES",
    "SensitivityPoint",
    "SensitivityResult",
    "sensitivity_analysis",
    "suggest_sparsities",
    "suggest_for_macs",
    "schedule_config",
    "write_schedule",
    "prune_options",
    "plot_sensitivity",
]
