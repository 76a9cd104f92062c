"""Moved to `core.errors` (a temporary re-export while the importers move)."""

from core.errors import *  # noqa: F403
from core.errors import ApplicationError, NotFoundError, error_body  # noqa: F401
