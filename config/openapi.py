"""Moved to `core.openapi` (a temporary re-export while the importers move)."""

from core.openapi import *  # noqa: F403
from core.openapi import COMMON_FIELDS, apply_texts, example  # noqa: F401
