"""The example rule-based voter."""

from __future__ import annotations

import pytest

from kai_core.plugins import Plugins
from kai_core.policy import AnswerInfo, VoteDecision
from kai_plugins import voting
from kai_plugins.voting import RuleVoter, rule_vote


def answer(**fields: object) -> AnswerInfo:
    base: dict[str, object] = {
        "chat_id": "c1",
        "message_id": "m1",
        "text": "Hi",
        "finish_reason": "stop",
    }
    base.update(fields)
    return AnswerInfo(**base)  # type: ignore[arg-type]


def test_rules() -> None:
    assert rule_vote(answer()) == VoteDecision(type="up", decided_by="rule-voter")
    assert rule_vote(answer(finish_reason="error")).type == "down"
    assert rule_vote(answer(errors=["Simulated model failure (boom)"])).type == "down"


def test_entry_point_voter_is_off_unless_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAI_RULE_VOTER", raising=False)
    plugins = Plugins()  # built-ins come from entry points
    assert "voting" in plugins.names()
    assert plugins.call_first("kai_vote", answer=answer()) is None
    monkeypatch.setenv("KAI_RULE_VOTER", "1")
    found = plugins.call_first("kai_vote", answer=answer(finish_reason="error"))
    assert found is not None and found[0] == "voting" and found[1].type == "down"


def test_rule_voter_object_always_votes() -> None:
    plugins = Plugins(load_entry_points=False)
    plugins.register(RuleVoter(), name="voter")
    found = plugins.call_first("kai_vote", answer=answer())
    assert found == ("voter", VoteDecision(type="up", decided_by="rule-voter"))
    assert voting.ENV_RULE_VOTER == "KAI_RULE_VOTER"
