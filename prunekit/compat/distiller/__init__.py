"""Distiller's schedule files, read as Distiller meant them.

``schema`` parses and validates the YAML (pruners, extensions, lr_schedulers, policies) into
plain dataclasses; ``groups`` maps Distiller's per-parameter names onto prunekit's coupled
groups; ``recipe`` runs a parsed schedule as a :class:`~prunekit.schedules.Recipe`.
"""

from prunekit.compat.distiller.recipe import DistillerRecipe
from prunekit.compat.distiller.schema import DistillerSchedule, parse_distiller

__all__ = ["DistillerRecipe", "DistillerSchedule", "parse_distiller"]
