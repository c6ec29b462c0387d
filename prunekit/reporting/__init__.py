"""Reports of a prune run: ``report.json``, ``report.md`` and PNG plots.

``write_report(out_dir, model_before=..., model_after=..., example_inputs=...)`` writes them all.
matplotlib is imported only when plots are drawn (``pip install 'prunekit[report]'``).
"""

from prunekit.reporting.history import accuracy_points, read_history
from prunekit.reporting.tables import LayerRow, compare_layers, markdown_table, requested_sparsity
from prunekit.reporting.writer import REPORT_VERSION, versions, write_report

__all__ = [
    "write_report",
    "compare_layers",
    "requested_sparsity",
    "LayerRow",
    "markdown_table",
    "read_history",
    "accuracy_points",
    "versions",
    "REPORT_VERSION",
]
