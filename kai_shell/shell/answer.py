"""An answer streaming in a task of its own, so that it can wait, parked, for a decision.

On kai-agent the stream of an answer stays open while a tool waits for
approval, and the same stream then carries the tool's output and the rest
of the answer (protocol.md C.3b). Ctrl-C at the approval question must
therefore not close the stream, or ``/approve`` could send the decision but
never show what follows. So the answer runs in a task of the shell's
nursery: the prompt loop *follows* it (waits for it, Ctrl-C cancels it) until
it ends or parks. It parks when the user puts a question off with Ctrl-C:
the session's ``ask`` then waits on a :class:`Deferred` while the prompt is
back; ``/approve`` or ``/deny`` settles the deferred and follows the answer
again, which goes on in the same stream, recorded in the log as it arrives.
On kai-assistant the session asks after its stream ended, and the same
parking lets the decision start the continuation.
"""

from __future__ import annotations

import trio

from kai_core.policy import ApprovalDecision

__all__ = ["Deferred", "RunningAnswer"]


class Deferred:
    """A decision the user put off: the session's ``ask`` waits on it."""

    def __init__(self, tool_name: str) -> None:
        self.tool_name = tool_name
        self._event = trio.Event()
        self._decision: ApprovalDecision | None = None

    def settle(self, decision: ApprovalDecision) -> None:
        """Hand the decision to the waiting ``ask``."""
        self._decision = decision
        self._event.set()

    async def wait(self) -> ApprovalDecision:
        """The decision, once given."""
        await self._event.wait()
        assert self._decision is not None
        return self._decision


class RunningAnswer:
    """The state of one answer task: its cancel scope, how it ended, whether it is parked.

    :ivar scope: cancels the answer (Ctrl-C while it is followed; a new message
        or another chat while it is parked).
    :ivar can_park: False for an answer run outside the shell's nursery (it
        cannot outlive the call that started it; Ctrl-C then stops it).
    """

    def __init__(self, *, can_park: bool) -> None:
        self.scope = trio.CancelScope()
        self.can_park = can_park
        self.done = False
        self.parked = False
        self.error: BaseException | None = None
        self.deferred: dict[str, Deferred] = {}
        self._changed = trio.Event()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def finish(self) -> None:
        """The task ended (completed, failed or cancelled)."""
        self.done = True
        self._wake()

    def park(self, tool_call_id: str, deferred: Deferred) -> None:
        """The answer waits for a decision the user put off."""
        self.deferred[tool_call_id] = deferred
        self.parked = True
        self._wake()

    def settle(self, tool_call_id: str, decision: ApprovalDecision) -> bool:
        """Give a put-off decision to the parked answer; False if none waits for it.

        The answer is unparked here, in the same step, not when its task next
        runs: whoever follows the answer right after must see it going on, or
        it would return at once and a second prompt would read the terminal
        while the answer asks its next question.
        """
        deferred = self.deferred.pop(tool_call_id, None)
        if deferred is None:
            return False
        self.parked = False
        deferred.settle(decision)
        return True

    async def settled(self) -> None:
        """Return once the answer has ended or parked."""
        while not (self.done or self.parked):
            await self._changed.wait()
