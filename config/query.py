"""Moved to `core.query` (a temporary re-export while the importers move)."""

from core.query import *  # noqa: F403
from core.query import (  # noqa: F401
    MAX_BIGINT,
    AsciiIntegerField,
    PublicIdField,
    StrictQueryMixin,
    count_parameter,
    id_parameter,
    query_error_responses,
)
