"""The record vocabulary lives in :mod:`kai_core.records`, outside this package,
so that the client can build records without importing SQLite."""

from __future__ import annotations

from ..records import *  # noqa: F403
from ..records import __all__ as __all__
