"""Moved to `core.formatting` (a temporary re-export while the importers move)."""

from core.formatting import *  # noqa: F403
from core.formatting import GIB, gb, gb_text  # noqa: F401
