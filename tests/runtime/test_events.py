"""Events: declared, with a severity, logged once per episode."""

from __future__ import annotations

import logging

import pytest

from runtime.events import DECLARED, Events, Severity


def test_an_episode_is_logged_once_at_its_start_and_once_at_its_end(caplog: pytest.LogCaptureFixture) -> None:
    ev = Events()
    with caplog.at_level(logging.DEBUG, logger="runtime.events"):
        for _ in range(300):  # e.g. 10 s of frames without a camera
            ev.raise_("camera.stalled", "no frame")
        ev.clear("camera.stalled")
        ev.clear("camera.stalled")  # clearing an inactive event is silent
    lines = [r for r in caplog.records if "camera.stalled" in r.getMessage()]
    assert len(lines) == 2
    assert lines[0].levelno == logging.WARNING and "no frame" in lines[0].getMessage()
    assert "cleared" in lines[1].getMessage() and "300 occurrences" in lines[1].getMessage()


def test_summary_counts_episodes_and_occurrences() -> None:
    ev = Events()
    for _ in range(2):
        ev.raise_("backend.error", "boom")
        ev.raise_("backend.error", "boom")
        ev.clear("backend.error")
    ev.raise_("backend.error", "again")
    s = ev.summary()
    assert s["backend.error"] == {
        "severity": "error", "episodes": 3, "occurrences": 5, "active": True, "last_detail": "again",
    }
    assert "camera.stalled" not in s  # only what happened


def test_health_follows_unhealthy_events() -> None:
    ev = Events()
    assert ev.healthy()
    ev.raise_("camera.ended")  # informational: still healthy
    assert ev.healthy()
    ev.raise_("link.error", "port gone")
    assert not ev.healthy() and ev.active_names() == ["camera.ended", "link.error"]
    ev.clear("link.error")
    assert ev.healthy()


def test_undeclared_events_are_refused() -> None:
    with pytest.raises(KeyError):
        Events().raise_("camera.on_fire")


def test_every_declared_event_has_a_severity_and_description() -> None:
    for name, e in DECLARED.items():
        assert e.name == name and isinstance(e.severity, Severity) and e.description
