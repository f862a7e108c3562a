"""The plugin manager keeps pluggy's meaning: wrappers are refused, ``has`` asks for implementations."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pluggy
import pytest

from kai_core.hookspecs import hookimpl
from kai_core.plugins import Plugins
from kai_core.policy import AnswerInfo, VoteDecision

ANSWER = AnswerInfo(chat_id="c1", message_id="m1", text="Hi", finish_reason="stop")


class OldStyleWrapper:
    @hookimpl(hookwrapper=True)
    def kai_vote(self, answer: AnswerInfo) -> Generator[None, Any, None]:
        yield


class NewStyleWrapper:
    @hookimpl(wrapper=True)
    def kai_vote(self, answer: AnswerInfo) -> Generator[None, Any, Any]:
        return (yield)


class UpVoter:
    @hookimpl
    def kai_vote(self, answer: AnswerInfo) -> VoteDecision:
        return VoteDecision.up()


class BrokenObserver:
    @hookimpl
    def kai_observe_event(self, record: Any) -> None:
        raise RuntimeError("observer bug")


@pytest.mark.parametrize("wrapper", [OldStyleWrapper, NewStyleWrapper])
def test_a_wrapper_is_refused_at_registration(wrapper: type) -> None:
    reports: list[str] = []
    plugins = Plugins(load_entry_points=False, report=reports.append)
    plugins.register(UpVoter(), name="up")
    with pytest.raises(pluggy.PluginValidationError) as caught:
        plugins.register(wrapper(), name="wrapping")
    assert "'wrapping' implements kai_vote as a wrapper" in str(caught.value)
    assert "plain @hookimpl" in str(caught.value)
    # Nothing of it stays registered; the other plugins work as before.
    assert plugins.names() == ["up"]
    found = plugins.call_first("kai_vote", answer=ANSWER)
    assert found is not None and found[0] == "up" and found[1].type == "up"
    assert reports == []


def test_has_tells_whether_a_hook_has_implementations() -> None:
    plugins = Plugins(load_entry_points=False, report=lambda message: None)
    assert not plugins.has("kai_vote")
    assert not plugins.has("kai_observe_event")
    plugins.register(UpVoter(), name="up")
    plugins.register(BrokenObserver(), name="broken")
    assert plugins.has("kai_vote")
    assert plugins.has("kai_observe_event")
    # An implementation that raised is disabled: the hook has none left.
    assert plugins.call_each("kai_observe_event", record=None) == []
    assert not plugins.has("kai_observe_event")
    plugins.unregister("up")
    assert not plugins.has("kai_vote")


def test_has_names_only_real_hooks() -> None:
    with pytest.raises(AttributeError):
        Plugins(load_entry_points=False).has("kai_no_such_hook")
