"""Moved to `core.charts` (a temporary re-export while the importers move)."""

from core.charts import *  # noqa: F403
