"""Checking that a resumed stream continues the one that was cut.

kai-assistant resumes a cut answer (``GET /api/chat/{id}/stream``) by
replaying it from its first chunk. The chunks already delivered must not be
handed out twice, and must not be taken on trust either: if the server
replays something else (another answer, a changed one), the events already
shown and the ones to come would not belong together. So the stream keeps a
running CRC-32 of the payloads it delivered, and a resumed stream's first
chunks must give the same count and the same CRC before the rest is let
through; else ``stream:resume_mismatch``.

:class:`ResumeCheck` holds the count, the two CRCs and the replay progress.
"""

from __future__ import annotations

import zlib

from ..exceptions import KaiStreamError

__all__ = ["ResumeCheck"]

_DONE = b"[DONE]"


class ResumeCheck:
    """The chunks delivered so far, and a resumed stream's replay of them checked.

    :attr:`position` counts the chunks of the server's stream read so far;
    :attr:`pending` the chunks a resumed stream still has to repeat (0 when
    not replaying: test it before calling :meth:`drop_replayed`).
    """

    __slots__ = ("_digest", "_replay_digest", "pending", "position")

    def __init__(self) -> None:
        self.position = 0
        self._digest = 0  # CRC-32 of the payloads read, each followed by a NUL
        self.pending = 0
        self._replay_digest = 0

    def advance(self, position: int, payloads: list[bytes] | None) -> None:
        """The stream was read up to chunk ``position``, ``payloads`` (if kept) being the new ones."""
        self.position = position
        if payloads:
            self._digest = zlib.crc32(b"\0", zlib.crc32(b"\0".join(payloads), self._digest))

    def start_replay(self) -> None:
        """A resumed stream starts: it must repeat the :attr:`position` chunks read so far."""
        self.pending = self.position
        self._replay_digest = 0

    def drop_replayed(self, payloads: list[bytes]) -> list[bytes]:
        """Drop what a resumed stream repeats, checking it is what was delivered before.

        Payloads of whitespace only are no chunks: they are passed over.

        :returns: the payloads after the repeated ones.
        :raises KaiStreamError: ``stream:resume_mismatch``; the check stops there.
        """
        for i, payload in enumerate(payloads):
            if payload == _DONE:
                raise self._mismatch()  # it ended before repeating everything
            if not payload.strip():
                continue
            self._replay_digest = zlib.crc32(b"\0", zlib.crc32(payload, self._replay_digest))
            self.pending -= 1
            if not self.pending:
                if self._replay_digest != self._digest:
                    raise self._mismatch()
                return payloads[i + 1 :]
        return []

    def _mismatch(self) -> KaiStreamError:
        self.pending = 0  # stop checking: the stream fails here
        return KaiStreamError(
            f"the resumed stream does not repeat the {self.position} chunks already "
            "delivered, so it cannot be continued; the chat can be reloaded with get_chat",
            code="stream:resume_mismatch",
        )
