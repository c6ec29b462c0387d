"""Physical surgery: selection, plans, and transactional application."""

from prunekit.surgery.apply import apply_plan
from prunekit.surgery.plan import PrunePlan, make_plan
from prunekit.surgery.selection import removal_count, select_channels

__all__ = ["PrunePlan", "make_plan", "apply_plan", "removal_count", "select_channels"]
