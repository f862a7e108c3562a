"""The event log: every chat in SQLite, projections, search, replay, export.

``from kai_core.log import EventLog, LogRecord``. See ``docs/event-log.md``.
"""

from __future__ import annotations

from ._db import APPLICATION_ID as APPLICATION_ID
from ._db import MIGRATIONS as MIGRATIONS
from ._db import default_log_path as default_log_path
from ._html import LARGE_TOOL_OUTPUT as LARGE_TOOL_OUTPUT
from ._html import render_html as render_html
from ._log import EventLog as EventLog
from ._output import check_output as check_output
from ._output import private_output as private_output
from ._output import write_private as write_private
from ._records import APPROVAL as APPROVAL
from ._records import CANCELLED as CANCELLED
from ._records import CLIENT_RECORD_TYPES as CLIENT_RECORD_TYPES
from ._records import DELETE_CHAT as DELETE_CHAT
from ._records import IMPORTED_MESSAGE as IMPORTED_MESSAGE
from ._records import RESUME as RESUME
from ._records import STREAM_ERROR as STREAM_ERROR
from ._records import USER_MESSAGE as USER_MESSAGE
from ._records import VOTE as VOTE
from ._records import LogRecord as LogRecord
from ._records import Origin as Origin
from ._records import StoredEvent as StoredEvent
from ._replay import Replay as Replay
from ._replay import ReplayStep as ReplayStep
from ._search import SearchHit as SearchHit
from ._search import safe_query as safe_query
from ._validate import SkippedRecordWarning as SkippedRecordWarning
from ._views import LocalChat as LocalChat
from ._views import LocalChatDetail as LocalChatDetail
from ._views import LocalMessage as LocalMessage
from ._views import LocalToolCall as LocalToolCall
from ._views import LogStats as LogStats

__all__ = [
    "APPLICATION_ID",
    "APPROVAL",
    "CANCELLED",
    "CLIENT_RECORD_TYPES",
    "DELETE_CHAT",
    "IMPORTED_MESSAGE",
    "LARGE_TOOL_OUTPUT",
    "MIGRATIONS",
    "RESUME",
    "STREAM_ERROR",
    "USER_MESSAGE",
    "VOTE",
    "EventLog",
    "LocalChat",
    "LocalChatDetail",
    "LocalMessage",
    "LocalToolCall",
    "LogRecord",
    "LogStats",
    "Origin",
    "Replay",
    "ReplayStep",
    "SearchHit",
    "SkippedRecordWarning",
    "StoredEvent",
    "check_output",
    "default_log_path",
    "private_output",
    "render_html",
    "safe_query",
    "write_private",
]
