"""Op rules: how channels flow through functions and tensor methods (add, cat, view, chunk...).

Layer types have :mod:`prunekit.rules`; functional calls have this registry. The built-in
rules live in one module per family (:mod:`.elementwise`, :mod:`.cat_split`, :mod:`.reshape`,
:mod:`.reduce`, :mod:`.spatial`, :mod:`.norm`, :mod:`.sizes`; :mod:`.aten` for ``torch.export`` graphs) and
register themselves on import. Register your own with :func:`register_op_rule`.
"""

from prunekit.graph.ops import cat_split, elementwise, norm, reduce, reshape, sizes, spatial  # noqa: F401  (registers)
from prunekit.graph.ops.dispatch import handle_call
from prunekit.graph.ops.registry import (
    OpRule,
    OpTarget,
    get_op_rule,
    op_rule,
    register_op_rule,
    registered_op_rules,
    unregister_op_rule,
)

__all__ = [
    "OpRule",
    "OpTarget",
    "handle_call",
    "get_op_rule",
    "op_rule",
    "register_op_rule",
    "registered_op_rules",
    "unregister_op_rule",
]
