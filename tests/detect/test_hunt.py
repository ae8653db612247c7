"""Retro-hunts over the embedded store: a rule run over stored history finds what the
live engine finds on the same events, only inside the range, and its alerts stay apart
from the live ones.

The events are the 1,000 real loghub OpenSSH lines (a brute force and a dictionary
attack from several addresses), parsed as the pipeline parses them and spread over
four days (each quarter of the log one day later), half of them on each of two systems.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from collectors.event import Event, get_field, iso_utc, parse_iso, set_field, stable_id
from collectors.parsers import Dispatcher, ParseContext
from soc.alerts.store import AlertStore
from soc.cli.main import app
from soc.config import load_config
from soc.db import make_engine, migrate
from soc.detect.engine import Engine as RuleEngine
from soc.detect.hunt import (
    HuntError,
    HuntPlan,
    HuntWindow,
    SqliteHuntSource,
    plan_hunt,
    run_hunt,
    select_rules,
)
from soc.detect.loader import RuleSet, load_rules
from soc.detect.model import Detection
from soc.detect.runner import Detector
from soc.store.base import EventStore, TimeRange
from soc.store.sqlite import SqliteEventStore
from tests.conftest import DATASETS, REPO

OPENSSH = DATASETS / "logs" / "loghub" / "OpenSSH" / "OpenSSH_2k.log.part1"
BRUTE_FORCE = "77240479-9b83-468c-a9b2-7e1638e29dc1"
"""event_count ≥ 10 per source.ip in 5 minutes, over a generate: false base rule."""
SPRAY = "f4a73f6d-d575-4dc4-8ac8-ac192c9d90ae"
"""value_count of user.name ≥ 5 per source.ip in 10 minutes."""
FAILURE_BASE = "linux_sshd_auth_failure_burst_base"
"""A single-event rule (one failed SSH login), by its Sigma name."""
DAY = timedelta(days=1)
FIRST_DAY = datetime(2025, 12, 9, tzinfo=UTC)
"""The log's first day (UTC); the events run over this day and the three after it."""
EVERYTHING = HuntWindow(FIRST_DAY - DAY, FIRST_DAY + 10 * DAY)


# --- the data ----------------------------------------------------------------------

def hunt_events() -> list[Event]:
    """The OpenSSH log parsed, quarter k moved k days later, systems alternating by
    quarter (portal, ioffice, portal, ioffice); stable event ids."""
    lines = OPENSSH.read_text(encoding="utf-8").splitlines()
    ctx = ParseContext(now=datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    dispatcher = Dispatcher()
    events: list[Event] = []
    for i, line in enumerate(lines):
        event = dispatcher.parse(line, None, ctx)
        quarter = i * 4 // len(lines)
        event["@timestamp"] = iso_utc(parse_iso(event["@timestamp"]) + quarter * DAY)
        set_field(event, "event.id", stable_id("hunt-test", OPENSSH.name, i))
        event["gov"] = {"system": {"id": "portal" if quarter % 2 == 0 else "ioffice"}, "classification": 3}
        events.append(event)
    return events


def in_time_order(events: Iterable[Event]) -> list[Event]:
    """The order the store hands events over: time, then id."""
    return sorted(events, key=lambda e: (parse_iso(e["@timestamp"]), e["event"]["id"]))


def inside(events: Iterable[Event], window: HuntWindow) -> list[Event]:
    return [e for e in events if window.since <= parse_iso(e["@timestamp"]) < window.until
            and (not window.systems or get_field(e, "gov.system.id") in window.systems)]


def signature(detections: Iterable[Detection]) -> list[tuple[Any, ...]]:
    """What makes two detections the same finding."""
    return sorted((d.rule.id, d.first_seen, d.last_seen, tuple(d.event_ids), tuple(sorted(d.group.items())),
                   d.event_count) for d in detections)


def live(ruleset: RuleSet, events: list[Event], rule_id: str) -> list[Detection]:
    """What the stream's detector raises for one rule over these events."""
    detector = Detector(ruleset)
    found = detector.process(in_time_order(events)) + detector.flush()
    return [d for d in found if d.rule.id == rule_id]


def matched_ids(ruleset: RuleSet, events: list[Event], rule_id: str) -> list[str]:
    """Ids of the events the live rule engine matches with one rule."""
    engine = RuleEngine(ruleset)
    return sorted(e["event"]["id"] for e in events if any(r.id == rule_id for r in engine.match(e)))


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_rules([REPO / "rules"], placeholders={"ioc_bad_ips": ["198.51.100.1"]})


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return hunt_events()


@pytest.fixture(scope="module")
def store(events: list[Event], tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteEventStore]:
    db = SqliteEventStore(tmp_path_factory.mktemp("hunt") / "events.db")
    db.write([dict(e) for e in events])
    yield db
    db.close()


@pytest.fixture
def alerts(tmp_path: Path) -> Iterator[AlertStore]:
    url = f"sqlite:///{tmp_path / 'soc.db'}"
    migrate(url)
    engine: Engine = make_engine(url)
    yield AlertStore(engine)
    engine.dispose()


def plan(ruleset: RuleSet, selector: str) -> HuntPlan:
    return plan_hunt(ruleset, select_rules(ruleset, selector))


def failure_id(ruleset: RuleSet) -> str:
    return select_rules(ruleset, FAILURE_BASE)[0].id


# --- what a hunt finds ---------------------------------------------------------------

def test_a_single_event_rule_hunt_hits_the_events_the_live_engine_matches(
        ruleset: RuleSet, store: SqliteEventStore, events: list[Event]) -> None:
    result = run_hunt(plan(ruleset, FAILURE_BASE), SqliteHuntSource(store), EVERYTHING)
    expected = matched_ids(ruleset, events, failure_id(ruleset))
    assert len(expected) == 218
    assert sorted(i for d in result.detections for i in d.event_ids) == expected
    assert result.scanned == result.total == len(events)


@pytest.mark.parametrize("rule_id", [BRUTE_FORCE, SPRAY])
def test_a_correlation_hunt_fires_as_the_live_detector_does(
        ruleset: RuleSet, store: SqliteEventStore, events: list[Event], rule_id: str) -> None:
    result = run_hunt(plan(ruleset, rule_id), SqliteHuntSource(store), EVERYTHING)
    expected = live(ruleset, events, rule_id)
    assert expected
    assert signature(result.detections) == signature(expected)


def test_events_outside_the_range_are_not_hunted(ruleset: RuleSet, store: SqliteEventStore,
                                                 events: list[Event]) -> None:
    window = HuntWindow(FIRST_DAY + DAY, FIRST_DAY + 3 * DAY)
    result = run_hunt(plan(ruleset, FAILURE_BASE), SqliteHuntSource(store), window)
    hit_ids = sorted(i for d in result.detections for i in d.event_ids)
    assert hit_ids == matched_ids(ruleset, inside(events, window), failure_id(ruleset))
    assert 0 < len(hit_ids) < len(matched_ids(ruleset, events, failure_id(ruleset)))
    assert all(window.since <= parse_iso(d.first_seen) < window.until for d in result.detections)


def test_a_correlation_over_part_of_history_counts_only_the_events_of_that_part(
        ruleset: RuleSet, store: SqliteEventStore, events: list[Event]) -> None:
    window = HuntWindow(FIRST_DAY + DAY, FIRST_DAY + 3 * DAY)
    result = run_hunt(plan(ruleset, BRUTE_FORCE), SqliteHuntSource(store), window)
    expected = live(ruleset, inside(events, window), BRUTE_FORCE)
    assert expected
    assert signature(result.detections) == signature(expected)
    assert len(result.detections) < len(live(ruleset, events, BRUTE_FORCE))


def test_the_system_filter_hunts_only_that_systems_events(ruleset: RuleSet, store: SqliteEventStore,
                                                          events: list[Event]) -> None:
    window = HuntWindow(EVERYTHING.since, EVERYTHING.until, ("ioffice",))
    result = run_hunt(plan(ruleset, FAILURE_BASE), SqliteHuntSource(store), window)
    assert result.detections
    assert {get_field(d.events[0], "gov.system.id") for d in result.detections} == {"ioffice"}
    assert sorted(i for d in result.detections for i in d.event_ids) == matched_ids(
        ruleset, inside(events, window), failure_id(ruleset))


def test_the_limit_stops_the_hunt_after_that_many_hits(ruleset: RuleSet, store: SqliteEventStore) -> None:
    result = run_hunt(plan(ruleset, FAILURE_BASE), SqliteHuntSource(store), EVERYTHING, limit=3, batch=100)
    assert result.hits == 3 and result.limited
    assert result.scanned < result.total


def test_progress_is_reported_up_to_every_event_scanned(ruleset: RuleSet, store: SqliteEventStore) -> None:
    seen: list[tuple[int, int]] = []
    run_hunt(plan(ruleset, BRUTE_FORCE), SqliteHuntSource(store), EVERYTHING, batch=300,
             progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 1000), (300, 1000), (600, 1000), (900, 1000), (1000, 1000)]


# --- alerts ----------------------------------------------------------------------------

def test_hunt_alerts_are_marked_retro_with_the_hunt_id(ruleset: RuleSet, store: SqliteEventStore,
                                                       alerts: AlertStore) -> None:
    result = run_hunt(plan(ruleset, BRUTE_FORCE), SqliteHuntSource(store), EVERYTHING, alerts=alerts)
    raised = alerts.list_alerts(limit=1000)
    assert result.created == len(raised) > 0
    assert all(a.retro and a.hunt_id == result.hunt_id and a.rule_id == BRUTE_FORCE for a in raised)
    assert sorted(a.id for a in raised) == sorted(result.alert_ids)


def test_hunt_alerts_are_not_merged_into_live_alerts(ruleset: RuleSet, store: SqliteEventStore,
                                                     events: list[Event], alerts: AlertStore) -> None:
    alerts.raise_detections(live(ruleset, events, BRUTE_FORCE))
    before = {a.id: (a.count, a.event_ids, a.version) for a in alerts.list_alerts(limit=1000)}
    result = run_hunt(plan(ruleset, BRUTE_FORCE), SqliteHuntSource(store), EVERYTHING, alerts=alerts)
    after = alerts.list_alerts(limit=1000)
    assert result.created == len(before) and result.updated + result.duplicates + result.created == result.hits
    assert {a.id: (a.count, a.event_ids, a.version) for a in after if not a.retro} == before
    assert len([a for a in after if a.retro]) == len(before)


def test_hunting_the_same_history_twice_raises_nothing_new(ruleset: RuleSet, store: SqliteEventStore,
                                                           alerts: AlertStore) -> None:
    first = run_hunt(plan(ruleset, BRUTE_FORCE), SqliteHuntSource(store), EVERYTHING, alerts=alerts)
    again = run_hunt(plan(ruleset, BRUTE_FORCE), SqliteHuntSource(store), EVERYTHING, alerts=alerts)
    assert first.created > 0
    assert again.created == again.updated == 0 and again.duplicates == again.hits == first.hits


def test_a_dry_run_raises_no_alert(ruleset: RuleSet, store: SqliteEventStore, alerts: AlertStore) -> None:
    result = run_hunt(plan(ruleset, BRUTE_FORCE), SqliteHuntSource(store), EVERYTHING, alerts=alerts, dry_run=True)
    assert result.hits > 0 and result.created == 0
    assert alerts.list_alerts() == []


# --- which rules -------------------------------------------------------------------------

def test_a_rule_is_named_by_id_name_title_or_file(ruleset: RuleSet) -> None:
    by_id = select_rules(ruleset, BRUTE_FORCE)
    assert [i.id for i in by_id] == [BRUTE_FORCE]
    assert select_rules(ruleset, "ssh brute force against provincial linux servers") == by_id
    assert [i.name for i in select_rules(ruleset, FAILURE_BASE)] == [FAILURE_BASE]
    in_file = select_rules(ruleset, str(REPO / "rules" / "linux" / "ssh_bruteforce.yml"))
    assert sorted(i.kind for i in in_file) == ["correlation", "detection"]


def test_an_unknown_rule_is_an_error_that_names_it(ruleset: RuleSet) -> None:
    with pytest.raises(HuntError, match="no-such-rule"):
        select_rules(ruleset, "no-such-rule")


def test_a_chained_correlation_brings_its_inner_correlation_and_base_rules(ruleset: RuleSet) -> None:
    chain = plan(ruleset, "5a065169-ed53-4597-8781-23a4cb5f23a1")
    assert sorted(i.name or i.id for i in chain.helpers) == [
        "linux_sshd_failure_burst_for_chain", "linux_sshd_failure_for_chain", "linux_sshd_login_success_for_chain"]
    assert len(chain.ruleset.rules) == 2 and len(chain.ruleset.correlations) == 2


def test_an_empty_range_is_refused() -> None:
    with pytest.raises(HuntError):
        HuntWindow(FIRST_DAY, FIRST_DAY)


# --- reading the store in pages ----------------------------------------------------------

def _ticks(n: int, same: int) -> list[Event]:
    """``n`` events, ``same`` of them sharing each second."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    return [{"@timestamp": iso_utc(base + timedelta(seconds=i // same)), "event": {"id": f"e{i:03d}"}}
            for i in range(n)]


def test_the_sqlite_cursor_pages_through_the_range_in_time_order(tmp_path: Path) -> None:
    with SqliteEventStore(tmp_path / "e.db") as db:
        db.write(list(reversed(_ticks(50, 7))))
        since, until = datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 6, tzinfo=UTC)
        pages = list(db.iter_range(since, until, batch=4))
        ids = [e["event"]["id"] for page in pages for e in page]
    assert ids == [f"e{i:03d}" for i in range(7, 42)]
    assert max(len(p) for p in pages) == 4


def test_the_default_paging_of_any_store_survives_more_ties_than_a_page(tmp_path: Path) -> None:
    with SqliteEventStore(tmp_path / "e.db") as db:
        db.write(_ticks(40, 9))
        ids = [e["event"]["id"] for page in EventStore.iter_range(db, batch=4) for e in page]
    assert ids == [f"e{i:03d}" for i in range(40)]


# --- the command ---------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: list[Event]) -> Path:
    """The configured data directory, holding the events in its SQLite store."""
    monkeypatch.setenv("SOC_CONFIG", str(REPO / "config" / "soc.yaml"))
    monkeypatch.setenv("SOC_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SOC_LANG", "en")
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("SOC_DATABASE_URL", raising=False)
    cfg = load_config(None)
    with SqliteEventStore(cfg.store_path) as db:
        db.write([dict(e) for e in events])
    return tmp_path / "var"


def soc(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_the_command_raises_retro_alerts_and_reports_counts(cli_store: Path, ruleset: RuleSet,
                                                            events: list[Event]) -> None:
    code, out = soc("rules", "hunt", BRUTE_FORCE, "--since", "2025-12-01T00:00:00Z", "--until",
                    "2025-12-31T00:00:00Z", "--json")
    assert code == 0, out
    rows = lines(out)
    hits, summary = [r for r in rows if r["type"] == "hit"], rows[-1]
    assert len(hits) == len(live(ruleset, events, BRUTE_FORCE)) == summary["hits"]
    assert summary["type"] == "summary" and summary["scanned"] == len(events) and summary["alerts_created"] > 0
    code, out = soc("alerts", "list", "--json", "--limit", "1000")
    listed = lines(out)
    assert len(listed) == summary["alerts_created"]
    assert all(a["retro"] and a["hunt_id"] == summary["hunt_id"] for a in listed)


def test_the_command_in_a_dry_run_prints_hits_and_raises_nothing(cli_store: Path) -> None:
    code, out = soc("rules", "hunt", "SSH Brute Force Against Provincial Linux Servers", "--since",
                    "2025-12-01T00:00:00Z", "--until", "2025-12-31T00:00:00Z", "--dry-run")
    assert code == 0, out
    assert "Scanned 1000 events" in out and "Dry run: no alerts raised" in out
    assert "source.ip=" in out
    code, out = soc("alerts", "list", "--json")
    assert lines(out) == []


def test_the_command_names_a_rule_it_cannot_find(cli_store: Path) -> None:
    code, out = soc("rules", "hunt", "no-such-rule", "--since", "30d")
    assert code == 2
    assert "no-such-rule" in out


def test_the_command_reads_only_the_range_asked_for(cli_store: Path, store: SqliteEventStore) -> None:
    since, until = FIRST_DAY + DAY, FIRST_DAY + 2 * DAY
    code, out = soc("rules", "hunt", FAILURE_BASE, "--since", since.isoformat(), "--until", until.isoformat(),
                    "--json", "--dry-run")
    assert code == 0, out
    assert lines(out)[-1]["scanned"] == store.count("*", TimeRange(since, until))
