"""Alerts the SOC raises about itself (a spool filling up): stored through the
normal alert path, one alert per thing while it is open, said in both languages."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from soc.alerts.internal import KEY_FIELD, internal_rule_id, is_internal_rule, raise_internal_alert
from soc.alerts.models import Alert
from soc.alerts.store import AlertStore
from soc.db import make_session_factory, write_session
from soc.pipeline.alarm import SpoolAlarmEvent, spool_alert_handler

HOST = socket.gethostname()
FULL: dict[str, Any] = {
    "kind": "spool-full",
    "title_vi": "Spool của sink store đã đầy",
    "title_en": "Spool of sink store is full",
    "level": "critical",
    "key": "store",
}


def _raise(store: AlertStore, **fields: Any) -> str:
    result = raise_internal_alert(store, fields=fields or {"spool.bytes": 2048}, **FULL)
    return result.alert_ids[0]


def _get(store: AlertStore, alert_id: str) -> Alert:
    alert = store.get(alert_id)
    assert alert is not None
    return alert


def test_an_internal_alert_is_stored_under_a_reserved_rule_id_without_tactics(engine: Engine) -> None:
    store = AlertStore(engine)
    alert = _get(store, _raise(store))
    assert (alert.rule_id, alert.level, alert.status, alert.count) == ("soc-internal-spool-full", "critical", "new", 1)
    assert (alert.tactics, alert.techniques) == ([], [])
    assert alert.rule_title == "Spool của sink store đã đầy / Spool of sink store is full"


def test_it_is_listed_like_any_alert(engine: Engine) -> None:
    store = AlertStore(engine)
    alert_id = _raise(store)
    assert [a.id for a in store.list_alerts(rule_id="soc-internal-spool-full")] == [alert_id]


def test_its_fields_and_key_are_kept_on_the_alert(engine: Engine) -> None:
    store = AlertStore(engine)
    alert = _get(store, _raise(store, **{"spool.bytes": 2048, "error.message": "ConnectionError: cluster unreachable"}))
    assert alert.key_fields[KEY_FIELD] == "store"
    assert alert.key_fields["spool.bytes"] == 2048
    assert alert.key_fields["error.message"] == "ConnectionError: cluster unreachable"


def test_the_summary_says_what_happened_and_where_in_both_languages(engine: Engine) -> None:
    store = AlertStore(engine)
    alert = _get(store, _raise(store))
    assert alert.summary == (f"Spool của sink store đã đầy trên máy {HOST} (1 sự kiện) / "
                             f"Spool of sink store is full on host {HOST} (1 event)")


def test_raising_it_again_while_open_grows_the_same_alert(engine: Engine) -> None:
    store = AlertStore(engine)
    first = _raise(store)
    again = raise_internal_alert(store, fields={"spool.bytes": 4096}, **FULL)
    assert (again.created, again.updated, again.alert_ids) == (0, 1, [first])
    alert = _get(store, first)
    assert alert.count == 2
    assert alert.summary.endswith(f"on host {HOST} (2 events)")
    assert len(store.list_alerts(rule_id="soc-internal-spool-full")) == 1


def test_the_latest_raise_brings_the_latest_facts(engine: Engine) -> None:
    store = AlertStore(engine)
    first = _raise(store, **{"spool.bytes": 2048})
    _raise(store, **{"spool.bytes": 4096})
    assert _get(store, first).key_fields["spool.bytes"] == 4096


def test_another_key_is_another_alert(engine: Engine) -> None:
    store = AlertStore(engine)
    first = _raise(store)
    other = raise_internal_alert(store, fields={}, **{**FULL, "key": "archive"})
    assert other.created == 1 and other.alert_ids[0] != first


def test_once_closed_the_next_occurrence_opens_a_new_alert(engine: Engine) -> None:
    store = AlertStore(engine)
    first = _raise(store)
    with write_session(make_session_factory(engine)) as session:
        alert = session.get(Alert, first)
        assert alert is not None
        alert.status = "closed"
    again = raise_internal_alert(store, fields={}, **FULL)
    assert again.created == 1 and again.alert_ids[0] != first


def test_kinds_map_into_the_reserved_namespace() -> None:
    assert internal_rule_id("source_silent") == "soc-internal-source-silent"
    assert is_internal_rule("soc-internal-spool-full")
    assert not is_internal_rule("5513deaf-f49a-46c2-a6c8-3f111b5cb453")


@pytest.mark.parametrize("bad", [{"level": "urgent"}, {"kind": "Spool Full!"}, {"title_en": "a / b"},
                                 {"title_vi": " "}])
def test_malformed_requests_are_refused_before_anything_is_stored(engine: Engine, bad: dict[str, str]) -> None:
    store = AlertStore(engine)
    with pytest.raises(ValueError):
        raise_internal_alert(store, fields={}, **{**FULL, **bad})
    assert store.list_alerts() == []


# --- from the spool alarm ---------------------------------------------------------------------

def _alarm(state: str, previous: str = "ok") -> SpoolAlarmEvent:
    return SpoolAlarmEvent(sink="store", state=state, previous=previous,  # type: ignore[arg-type]
                           pending_bytes=2 * 1024**3, max_bytes=2 * 1024**3, fill_ratio=1.0, segments=812,
                           directory=Path("var/spool/store"), last_error="ConnectionError: cluster unreachable")


def test_a_full_spool_raises_a_critical_alert_naming_the_sink_and_its_error(engine: Engine) -> None:
    store = AlertStore(engine)
    spool_alert_handler(store)(_alarm("full", previous="warning"))
    [alert] = store.list_alerts()
    assert (alert.rule_id, alert.level) == ("soc-internal-spool-full", "critical")
    assert "sink store" in alert.rule_title and "2.0 GiB" in alert.rule_title
    assert alert.key_fields["error.message"] == "ConnectionError: cluster unreachable"
    assert alert.key_fields["spool.segments"] == 812


def test_a_spool_warning_raises_a_high_alert(engine: Engine) -> None:
    store = AlertStore(engine)
    spool_alert_handler(store)(_alarm("warning"))
    [alert] = store.list_alerts()
    assert (alert.rule_id, alert.level) == ("soc-internal-spool-warning", "high")


def test_a_cleared_spool_alarm_raises_nothing(engine: Engine) -> None:
    store = AlertStore(engine)
    spool_alert_handler(store)(_alarm("ok", previous="warning"))
    assert store.list_alerts() == []
