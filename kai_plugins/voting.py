"""An example rule-based voter: thumbs down for answers that failed, up otherwise.

This module is the ``voting`` plugin of the ``kai`` entry-point group. It
votes only when enabled, by ``KAI_RULE_VOTER=1`` in the environment (an
embedding app can instead register a :class:`RuleVoter` itself). The
interactive vote prompt is not a hook: the front end asks (``kai chat
--vote``) when no voting plugin has decided.

The rules: an answer that finished with ``finish_reason`` ``error``, or
during which the server reported an error, gets ``down``; any other
finished answer gets ``up``.
"""

from __future__ import annotations

import os

from kai_core.hookspecs import hookimpl
from kai_core.policy import AnswerInfo, VoteDecision

__all__ = ["DECIDED_BY", "ENV_RULE_VOTER", "RuleVoter", "kai_vote", "rule_vote"]

ENV_RULE_VOTER = "KAI_RULE_VOTER"
DECIDED_BY = "rule-voter"


def rule_vote(answer: AnswerInfo) -> VoteDecision:
    """The vote the rules give ``answer``: ``down`` when it failed, else ``up``."""
    failed = answer.finish_reason == "error" or bool(answer.errors)
    return VoteDecision(type="down" if failed else "up", decided_by=DECIDED_BY)


class RuleVoter:
    """A voting plugin that always applies :func:`rule_vote` (register it to enable it)."""

    @hookimpl
    def kai_vote(self, answer: AnswerInfo) -> VoteDecision | None:
        """Vote by the rules."""
        return rule_vote(answer)


def _enabled() -> bool:
    return os.environ.get(ENV_RULE_VOTER, "").strip().lower() in {"1", "true", "yes", "on"}


@hookimpl
def kai_vote(answer: AnswerInfo) -> VoteDecision | None:
    """Vote by the rules when ``KAI_RULE_VOTER`` is set, else no opinion."""
    if not _enabled():
        return None
    return rule_vote(answer)
