"""Observers of a batch of records (``Plugins.call_each_over``): looked up once, kept current."""

from __future__ import annotations

from typing import Any

from kai_core.hookspecs import hookimpl
from kai_core.plugins import Plugins


class Seen:
    def __init__(self, fail_at: int | None = None) -> None:
        self.values: list[Any] = []
        self.fail_at = fail_at

    @hookimpl
    def kai_observe_event(self, record: Any) -> None:
        self.values.append(record)
        if record == self.fail_at:
            raise RuntimeError("observer bug")


def test_observers_registered_or_removed_later_are_seen_at_the_next_batch() -> None:
    plugins = Plugins(load_entry_points=False, report=lambda m: None)
    first, second = Seen(), Seen()
    plugins.register(first, name="first")
    plugins.call_each_over("kai_observe_event", "record", [1, 2])
    plugins.register(second, name="second")
    plugins.call_each_over("kai_observe_event", "record", [3])
    plugins.unregister("first")
    plugins.call_each_over("kai_observe_event", "record", [4])
    assert first.values == [1, 2, 3]
    assert second.values == [3, 4]


def test_an_observer_that_raises_is_reported_once_and_the_others_see_everything() -> None:
    reports: list[str] = []
    plugins = Plugins(load_entry_points=False, report=reports.append)
    broken, good = Seen(fail_at=2), Seen()
    plugins.register(broken, name="broken")
    plugins.register(good, name="good")
    plugins.call_each_over("kai_observe_event", "record", [1, 2, 3, 4])
    assert broken.values == [1, 2]
    assert good.values == [1, 2, 3, 4]
    assert len(reports) == 1 and "broken" in reports[0]
