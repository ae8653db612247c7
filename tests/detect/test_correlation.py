"""The correlation engine: every Sigma correlation type, windows in event time,
lateness, group keys, aliases, chaining, bounds — and a brute force found in real
OpenSSH logs."""

from __future__ import annotations

import re
from collections import defaultdict, deque
from datetime import UTC, datetime

import pytest
import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaRule

from collectors.event import Event, iso_from_epoch, set_field
from collectors.parsers import Dispatcher, ParseContext
from soc.detect.correlation import CorrelationEngine, split_range_condition
from soc.detect.model import Detection, RuleInfo
from tests.conftest import DATASETS

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC).timestamp()

FAILED = """
title: SSH login failed
id: 0b3a3a8e-0000-4000-8000-000000000001
name: failed_login
logsource: {product: linux, service: sshd}
detection:
  sel: {event.action: ssh_login, event.outcome: failure}
  condition: sel
"""
SUCCESS = """
title: SSH login succeeded
id: 0b3a3a8e-0000-4000-8000-000000000002
name: successful_login
logsource: {product: linux, service: sshd}
detection:
  sel: {event.action: ssh_login, event.outcome: success}
  condition: sel
"""
SUDO = """
title: Sudo to root
id: 0b3a3a8e-0000-4000-8000-000000000003
name: sudo_root
logsource: {product: linux, service: sudo}
detection:
  sel: {event.action: sudo}
  condition: sel
"""
CORR_ID = "0b3a3a8e-0000-4000-8000-0000000000c1"


def correlation(body: str, *, cid: str = CORR_ID, name: str = "corr", extra: str = "") -> str:
    indented = "\n".join("  " + line for line in body.strip().splitlines())
    return f"title: Correlation {name}\nid: {cid}\nname: {name}\n{extra}correlation:\n{indented}\n"


class Rules:
    """A rule collection as the engine receives it, with RuleInfo by rule name."""

    def __init__(self, *docs: str, ranges: bool = False, **options: float) -> None:
        text = "\n---\n".join(doc.strip() for doc in docs)
        if ranges:
            dicts = [split_range_condition(d) for d in yaml.safe_load_all(text)]
            collection = SigmaCollection.from_dicts(dicts)
        else:
            collection = SigmaCollection.from_yaml(text)
        collection.resolve_rule_references()
        self.info: dict[str, RuleInfo] = {}
        correlations: list[tuple[SigmaCorrelationRule, RuleInfo]] = []
        for rule in collection:
            assert isinstance(rule, SigmaRule | SigmaCorrelationRule)
            is_corr = isinstance(rule, SigmaCorrelationRule)
            info = RuleInfo(id=str(rule.id), title=rule.title, name=rule.name,
                            kind="correlation" if is_corr else "detection")
            self.info[rule.name or str(rule.id)] = info
            if isinstance(rule, SigmaCorrelationRule):
                correlations.append((rule, info))
        self.engine = CorrelationEngine(correlations, **options)  # type: ignore[arg-type]

    def feed(self, rule: str, *events: Event) -> list[Detection]:
        out: list[Detection] = []
        for event in events:
            out.extend(self.engine.observe(self.info[rule], event))
        return out


_ids = iter(range(1, 1_000_000))


def ev(t: float, **fields: object) -> Event:
    """An ECS event ``t`` seconds after T0; keyword ``source_ip`` sets ``source.ip``."""
    event: Event = {"@timestamp": iso_from_epoch(T0 + t), "event": {"id": f"e{next(_ids)}"}}
    for name, value in fields.items():
        set_field(event, name.replace("_", "."), value)
    return event


def ids(detection: Detection, events: list[Event]) -> bool:
    return detection.event_ids == [e["event"]["id"] for e in events]


# -- event_count ------------------------------------------------------------------------

COUNT3 = correlation("""
type: event_count
rules: [failed_login]
group-by: [source.ip]
timespan: 1m
condition: {gte: 3}
""")


def test_event_count_fires_at_threshold_not_below() -> None:
    rules = Rules(FAILED, COUNT3)
    events = [ev(i, source_ip="10.0.0.1") for i in range(3)]
    assert rules.feed("failed_login", *events[:2]) == []
    [hit] = rules.feed("failed_login", events[2])
    assert hit.rule.id == CORR_ID and hit.rule.kind == "correlation"
    assert hit.value == 3 and hit.event_count == 3
    assert hit.group == {"source.ip": "10.0.0.1"}
    assert ids(hit, events)
    assert hit.first_seen == events[0]["@timestamp"] and hit.last_seen == events[2]["@timestamp"]


def test_event_count_gt_needs_one_more() -> None:
    rules = Rules(FAILED, COUNT3.replace("gte: 3", "gt: 3"))
    assert rules.feed("failed_login", *[ev(i, source_ip="a") for i in range(3)]) == []
    assert len(rules.feed("failed_login", ev(3, source_ip="a"))) == 1


def test_group_by_separates_keys() -> None:
    rules = Rules(FAILED, COUNT3)
    assert rules.feed("failed_login", ev(0, source_ip="a"), ev(1, source_ip="b"), ev(2, source_ip="a"),
                      ev(3, source_ip="b")) == []
    [hit] = rules.feed("failed_login", ev(4, source_ip="b"))
    assert hit.group == {"source.ip": "b"}


def test_missing_group_field_is_its_own_group() -> None:
    rules = Rules(FAILED, COUNT3)
    assert rules.feed("failed_login", ev(0), ev(1), ev(2, source_ip="a")) == []
    [hit] = rules.feed("failed_login", ev(3))
    assert hit.group == {"source.ip": None}


def test_timespan_expiry() -> None:
    rules = Rules(FAILED, COUNT3)
    # 0 s falls out of the 60 s window once the event at 70 s arrives.
    assert rules.feed("failed_login", ev(0, source_ip="a"), ev(30, source_ip="a"), ev(70, source_ip="a")) == []
    [hit] = rules.feed("failed_login", ev(85, source_ip="a"))
    assert hit.value == 3 and hit.first_seen == iso_from_epoch(T0 + 30)


def test_window_edge_is_inclusive() -> None:
    rules = Rules(FAILED, COUNT3)
    assert len(rules.feed("failed_login", ev(0, source_ip="a"), ev(30, source_ip="a"), ev(60, source_ip="a"))) == 1


def test_key_resets_after_firing() -> None:
    rules = Rules(FAILED, COUNT3)
    hits = rules.feed("failed_login", *[ev(i, source_ip="a") for i in range(8)])
    assert len(hits) == 2 and rules.engine.stats["fired"] == 2


def test_same_event_from_two_rules_counts_once() -> None:
    other = FAILED.replace("000000000001", "000000000009").replace("failed_login", "failed_login_2")
    rules = Rules(FAILED, other, COUNT3.replace("[failed_login]", "[failed_login, failed_login_2]"))
    events = [ev(i, source_ip="a") for i in range(3)]
    for event in events[:2]:
        assert rules.feed("failed_login", event) == [] and rules.feed("failed_login_2", event) == []
    assert len(rules.feed("failed_login", events[2])) == 1


def test_eq_fires_when_reached() -> None:
    rules = Rules(FAILED, COUNT3.replace("gte: 3", "eq: 2"))
    assert rules.feed("failed_login", ev(0, source_ip="a")) == []
    assert len(rules.feed("failed_login", ev(1, source_ip="a"))) == 1


# -- value types --------------------------------------------------------------------------


def test_value_count_counts_distinct_values() -> None:
    rules = Rules(FAILED, correlation("""
type: value_count
rules: [failed_login]
group-by: [source.ip]
timespan: 5m
condition: {field: user.name, gte: 3}
"""))
    users = ["root", "root", "admin", "admin", "root"]
    assert rules.feed("failed_login", *[ev(i, source_ip="a", user_name=u) for i, u in enumerate(users)]) == []
    assert rules.feed("failed_login", ev(6, source_ip="a")) == []  # no user: no value
    [hit] = rules.feed("failed_login", ev(7, source_ip="a", user_name="oracle"))
    assert hit.value == 3 and hit.event_count == 6


def test_value_sum_ignores_non_numeric() -> None:
    rules = Rules(FAILED, correlation("""
type: value_sum
rules: [failed_login]
group-by: [source.ip]
timespan: 5m
condition: {field: source.bytes, gt: 1000}
"""))
    assert rules.feed("failed_login", ev(0, source_ip="a", source_bytes=400), ev(1, source_ip="a", source_bytes="x"),
                      ev(2, source_ip="a", source_bytes="500"), ev(3, source_ip="a", source_bytes=100)) == []
    [hit] = rules.feed("failed_login", ev(4, source_ip="a", source_bytes=1))
    assert hit.value == 1001 and hit.event_count == 4


def test_value_avg() -> None:
    rules = Rules(FAILED, correlation("""
type: value_avg
rules: [failed_login]
group-by: [source.ip]
timespan: 5m
condition: {field: source.bytes, gte: 100}
"""))
    low = [ev(0, source_ip="a", source_bytes=50), ev(1, source_ip="a", source_bytes=120)]
    assert rules.feed("failed_login", *low) == []
    [hit] = rules.feed("failed_login", ev(2, source_ip="a", source_bytes=130))
    assert hit.value == 100


def test_value_percentile_and_median() -> None:
    body = """
type: {kind}
rules: [failed_login]
group-by: [source.ip]
timespan: 5m
condition: {{field: source.bytes, gte: 90{extra}}}
"""
    pct = Rules(FAILED, correlation(body.format(kind="value_percentile", extra=", percentile: 75")))
    med = Rules(FAILED, correlation(body.format(kind="value_median", extra="")))
    sizes = [10, 20, 100, 100]
    # p75 of [10, 20, 100, 100] (linear) = 100 — fires on the 4th; the median 60 does not.
    hits = pct.feed("failed_login", *[ev(i, source_ip="a", source_bytes=s) for i, s in enumerate(sizes)])
    assert [h.value for h in hits] == [100]
    assert med.feed("failed_login", *[ev(i, source_ip="a", source_bytes=s) for i, s in enumerate(sizes)]) == []
    [hit] = med.feed("failed_login", ev(5, source_ip="a", source_bytes=200))
    assert hit.value == 100


# -- temporal ----------------------------------------------------------------------------

TEMPORAL = correlation("""
type: temporal
rules: [failed_login, successful_login, sudo_root]
group-by: [host.name]
timespan: 5m
""")


def test_temporal_needs_every_rule_within_timespan() -> None:
    rules = Rules(FAILED, SUCCESS, SUDO, TEMPORAL)
    assert rules.feed("sudo_root", ev(0, host_name="web1")) == []
    assert rules.feed("successful_login", ev(10, host_name="web1")) == []
    assert rules.feed("failed_login", ev(20, host_name="web2")) == []  # other host
    [hit] = rules.feed("failed_login", ev(30, host_name="web1"))
    assert hit.value == 3 and hit.event_count == 3 and hit.group == {"host.name": "web1"}


def test_temporal_expires() -> None:
    rules = Rules(FAILED, SUCCESS, SUDO, TEMPORAL)
    assert rules.feed("sudo_root", ev(0, host_name="h")) == []
    assert rules.feed("successful_login", ev(10, host_name="h")) == []
    assert rules.feed("failed_login", ev(301, host_name="h")) == []  # sudo at 0 is 301 s old


def test_temporal_ordered_requires_listed_order() -> None:
    ordered = TEMPORAL.replace("type: temporal", "type: temporal_ordered")
    rules = Rules(FAILED, SUCCESS, SUDO, ordered)
    assert rules.feed("sudo_root", ev(0, host_name="h")) == []
    assert rules.feed("failed_login", ev(1, host_name="h")) == []
    assert rules.feed("successful_login", ev(2, host_name="h")) == []  # sudo came first: out of order
    [hit] = rules.feed("sudo_root", ev(3, host_name="h"))
    assert hit.value == 3


def test_temporal_count_condition() -> None:
    rules = Rules(FAILED, SUCCESS, SUDO, TEMPORAL.replace("timespan: 5m", "timespan: 5m\n  condition: {gte: 2}"))
    assert rules.feed("sudo_root", ev(0, host_name="h"), ev(1, host_name="h")) == []
    assert [h.value for h in rules.feed("failed_login", ev(2, host_name="h"))] == [2]


def test_temporal_extended_condition() -> None:
    rules = Rules(FAILED, SUCCESS, SUDO, correlation("""
type: temporal
group-by: [host.name]
timespan: 5m
condition: successful_login and (sudo_root or failed_login)
"""))
    assert rules.feed("sudo_root", ev(0, host_name="h"), ev(1, host_name="h")) == []
    assert len(rules.feed("successful_login", ev(2, host_name="h"))) == 1


def test_temporal_extended_not_is_judged_at_window_close() -> None:
    rules = Rules(FAILED, SUCCESS, SUDO, correlation("""
type: temporal
group-by: [host.name]
timespan: 1m
condition: sudo_root and not successful_login
"""), lateness=0)
    assert rules.feed("sudo_root", ev(0, host_name="quiet"), ev(0, host_name="loud")) == []
    assert rules.feed("successful_login", ev(30, host_name="loud")) == []
    assert rules.engine.advance() == []  # watermark 30 s: windows still open
    assert rules.feed("failed_login", ev(100, host_name="x")) == []  # unrelated rule: no watermark
    rules.feed("sudo_root", ev(100, host_name="other"))
    [hit] = rules.engine.advance()
    assert hit.group == {"host.name": "quiet"}


# -- conditions judged when the window closes ------------------------------------------------

FEW = correlation("""
type: event_count
rules: [successful_login]
group-by: [user.name]
timespan: 1m
condition: {lt: 3}
""")


def test_lt_fires_when_window_closes() -> None:
    rules = Rules(SUCCESS, FEW, lateness=10)
    assert rules.feed("successful_login", ev(0, user_name="few"), ev(5, user_name="few")) == []
    assert rules.feed("successful_login", *[ev(i, user_name="many") for i in range(3)]) == []
    assert rules.engine.advance() == []
    # 65 s: the windows (end 60 s) are complete only once the watermark (65 - 10) passes 60.
    rules.feed("successful_login", ev(65, user_name="late-comer"))
    assert rules.engine.advance() == []
    rules.feed("successful_login", ev(71, user_name="late-comer"))
    [hit] = rules.engine.advance()
    assert hit.group == {"user.name": "few"} and hit.value == 2 and hit.event_count == 2


def test_lt_window_closes_on_next_event_of_its_key() -> None:
    rules = Rules(SUCCESS, FEW, lateness=10)
    assert rules.feed("successful_login", ev(0, user_name="u")) == []
    [hit] = rules.feed("successful_login", ev(61, user_name="u"))
    assert hit.value == 1 and hit.last_seen == iso_from_epoch(T0)


def test_flush_judges_open_windows() -> None:
    rules = Rules(SUCCESS, FEW)
    rules.feed("successful_login", ev(0, user_name="u"))
    assert [h.value for h in rules.engine.flush()] == [1]
    assert rules.engine.stats["keys"] == 0


def test_wall_clock_closes_idle_windows_only() -> None:
    rules = Rules(SUCCESS, FEW, lateness=10)
    now = T0 + 3600  # a live clock an hour past the events
    rules.feed("successful_login", ev(0, user_name="idle"))
    assert rules.engine.advance(now) == []  # first tick: nobody has been idle for a whole tick yet
    rules.feed("successful_login", ev(1, user_name="busy"))
    [hit] = rules.engine.advance(now + 5)
    assert hit.group == {"user.name": "idle"}
    assert [h.group for h in rules.engine.advance(now + 10)] == [{"user.name": "busy"}]


def test_range_condition() -> None:
    rules = Rules(SUCCESS, FEW.replace("{lt: 3}", "{gt: 1, lte: 3}"), ranges=True)
    rules.feed("successful_login", *[ev(i, user_name="one") for i in range(1)])
    rules.feed("successful_login", *[ev(i, user_name="three") for i in range(3)])
    rules.feed("successful_login", *[ev(i, user_name="four") for i in range(4)])
    assert [(h.group["user.name"], h.value) for h in rules.engine.flush()] == [("three", 3)]


def test_neq_is_judged_at_close() -> None:
    rules = Rules(SUCCESS, FEW.replace("{lt: 3}", "{neq: 2}"))
    rules.feed("successful_login", *[ev(i, user_name="two") for i in range(2)])
    rules.feed("successful_login", *[ev(i, user_name="one") for i in range(1)])
    assert [h.group["user.name"] for h in rules.engine.flush()] == ["one"]


# -- time ----------------------------------------------------------------------------------


def test_out_of_order_within_lateness_counts_beyond_is_late() -> None:
    rules = Rules(FAILED, COUNT3, lateness=60)
    assert rules.feed("failed_login", ev(100, source_ip="a")) == []
    assert rules.feed("failed_login", ev(50, source_ip="a")) == []  # 50 s late: counted
    assert rules.feed("failed_login", ev(30, source_ip="a")) == []  # 70 s late: ignored
    assert rules.engine.stats["late_events"] == 1
    [hit] = rules.feed("failed_login", ev(45, source_ip="a"))
    assert hit.first_seen == iso_from_epoch(T0 + 45) and hit.last_seen == iso_from_epoch(T0 + 100)


# -- aliases and chaining ------------------------------------------------------------------------


def test_aliases_map_group_field_per_rule() -> None:
    rules = Rules(FAILED, SUCCESS, correlation("""
type: temporal
rules: [failed_login, successful_login]
group-by: [attacker]
timespan: 5m
aliases:
  attacker:
    failed_login: source.ip
    successful_login: destination.ip
"""))
    assert rules.feed("failed_login", ev(0, source_ip="6.6.6.6", destination_ip="10.0.0.1")) == []
    assert rules.feed("successful_login", ev(1, source_ip="6.6.6.6", destination_ip="10.0.0.2")) == []
    [hit] = rules.feed("successful_login", ev(2, source_ip="10.0.0.9", destination_ip="6.6.6.6"))
    assert hit.group == {"attacker": "6.6.6.6"}


CHAIN = correlation("""
type: event_count
rules: [failed_login]
group-by: [user.name]
timespan: 10m
condition: {gte: 3}
""", cid="0b3a3a8e-0000-4000-8000-0000000000c2", name="many_failed_logins")
SUCCESS_AFTER_FAILURES = correlation("""
type: temporal_ordered
rules: [many_failed_logins, successful_login]
group-by: [user.name]
timespan: 10m
""", name="success_after_failures", extra="level: high\n")


def test_chained_correlation_success_after_failures() -> None:
    rules = Rules(FAILED, SUCCESS, CHAIN, SUCCESS_AFTER_FAILURES)
    engine = rules.engine
    assert engine.base_rules_silenced() == {rules.info[n].id for n in
                                            ("failed_login", "successful_login", "many_failed_logins")}
    # Success with no failures before it, then failures for another user: nothing.
    assert rules.feed("successful_login", ev(0, user_name="alice")) == []
    failures = [ev(10 + i, user_name="bob", source_ip="6.6.6.6") for i in range(3)]
    assert rules.feed("failed_login", *failures) == []  # the inner correlation fired, silenced
    assert engine.stats["fired"] == 1
    success = ev(60, user_name="bob")
    [hit] = rules.feed("successful_login", success)
    assert hit.rule.id == CORR_ID and hit.group == {"user.name": "bob"}
    assert hit.event_count == 4 and ids(hit, [*failures, success])
    assert hit.first_seen == failures[0]["@timestamp"] and hit.last_seen == success["@timestamp"]


def test_chained_success_before_failures_does_not_fire() -> None:
    rules = Rules(FAILED, SUCCESS, CHAIN, SUCCESS_AFTER_FAILURES)
    assert rules.feed("successful_login", ev(0, user_name="bob")) == []
    assert rules.feed("failed_login", *[ev(10 + i, user_name="bob") for i in range(3)]) == []


def test_generate_true_keeps_inner_alerts() -> None:
    outer = SUCCESS_AFTER_FAILURES.replace("timespan: 10m", "timespan: 10m\n  generate: true")
    rules = Rules(FAILED, SUCCESS, CHAIN, outer)
    assert rules.info["many_failed_logins"].id not in rules.engine.base_rules_silenced()
    hits = rules.feed("failed_login", *[ev(i, user_name="bob") for i in range(3)])
    assert [h.rule.name for h in hits] == ["many_failed_logins"]


# -- bounds ------------------------------------------------------------------------------------


def test_key_eviction_bound() -> None:
    rules = Rules(FAILED, COUNT3, max_keys=2)
    rules.feed("failed_login", ev(0, source_ip="a"), ev(1, source_ip="a"), ev(2, source_ip="b"),
               ev(3, source_ip="c"))  # "a" is least recently updated: evicted for "c"
    assert rules.engine.stats["keys"] == 2 and rules.engine.stats["evictions"] == 1
    assert rules.feed("failed_login", ev(4, source_ip="a")) == []  # its two earlier events are gone


def test_detection_lists_bounded_events_and_true_count() -> None:
    rules = Rules(FAILED, COUNT3.replace("gte: 3", "gte: 12"), max_events_per_alert=5)
    events = [ev(i, source_ip="a") for i in range(12)]
    [hit] = rules.feed("failed_login", *events)
    assert hit.event_count == 12 and hit.value == 12
    assert hit.events == events[-5:] and ids(hit, events[-5:])
    assert hit.first_seen == events[0]["@timestamp"]


# -- real data ---------------------------------------------------------------------------------

OPENSSH = DATASETS / "logs" / "loghub" / "OpenSSH" / "OpenSSH_2k.log.part1"
_FAILED_LINE = re.compile(r"^(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) .*Failed \S+ for .* from (\d+\.\d+\.\d+\.\d+) port")


def test_brute_force_in_openssh_log(ctx: ParseContext) -> None:
    lines = OPENSSH.read_text(encoding="utf-8").splitlines()

    # Expected independently: IPs with >= 10 "Failed ..." lines within some 300 s.
    times: dict[str, list[float]] = defaultdict(list)
    for line in lines:
        m = _FAILED_LINE.match(line)
        if m:
            month = datetime.strptime(m.group(1), "%b").month
            when = datetime(2000, month, int(m.group(2)), *(int(m.group(i)) for i in (3, 4, 5)))
            times[m.group(6)].append(when.timestamp())
    expected = {ip for ip, ts in times.items() if any(ts[i + 9] - ts[i] <= 300 for i in range(len(ts) - 9))}
    assert len(expected) >= 2

    rules = Rules(FAILED, correlation("""
type: event_count
rules: [failed_login]
group-by: [source.ip]
timespan: 5m
condition: {gte: 10}
"""))
    dispatcher = Dispatcher()
    hits: list[Detection] = []
    by_id: dict[str, Event] = {}
    for n, line in enumerate(lines):
        event = dispatcher.parse(line, None, ctx)
        if (event.get("event") or {}).get("action") == "ssh_login" and event["event"].get("outcome") == "failure":
            event["event"]["id"] = f"line-{n}"
            by_id[event["event"]["id"]] = event
            hits.extend(rules.feed("failed_login", event))
    hits.extend(rules.engine.flush())

    assert {h.group["source.ip"] for h in hits} == expected
    for hit in hits:
        assert hit.event_count >= 10 and len(hit.event_ids) == hit.event_count
        assert {by_id[i]["source"]["ip"] for i in hit.event_ids} == {hit.group["source.ip"]}
        span = datetime.fromisoformat(hit.last_seen) - datetime.fromisoformat(hit.first_seen)
        assert span.total_seconds() <= 300


@pytest.mark.parametrize("lateness", [0.0, 60.0])
def test_brute_force_order_insensitive_within_lateness(lateness: float) -> None:
    # A burst delivered slightly shuffled still fires once.
    rules = Rules(FAILED, COUNT3.replace("gte: 3", "gte: 10").replace("1m", "5m"), lateness=lateness)
    order = deque(range(10))
    order.rotate(3 if lateness else 0)
    hits = rules.feed("failed_login", *[ev(i, source_ip="a") for i in order])
    assert len(hits) == 1 and rules.engine.stats["late_events"] == 0


def test_reference_cycle_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    a = correlation("""
type: event_count
rules: [corr_b]
group-by: [user.name]
timespan: 1m
condition: {gte: 2}
""", cid="0b3a3a8e-0000-4000-8000-0000000000a1", name="corr_a")
    b = correlation("""
type: event_count
rules: [corr_a, failed_login]
group-by: [user.name]
timespan: 1m
condition: {gte: 2}
""", cid="0b3a3a8e-0000-4000-8000-0000000000b1", name="corr_b")
    rules = Rules(FAILED, a, b)
    assert "cycle" in caplog.text
    assert rules.feed("failed_login", *[ev(i, user_name="u") for i in range(5)]) == []
    assert rules.engine.base_rules_silenced() == set()


def test_an_event_from_the_future_does_not_make_current_events_late() -> None:
    rules = Rules(FAILED, COUNT3, lateness=60)
    now = datetime.now(UTC).timestamp()

    def at(t: float, ip: str) -> Event:
        return {"@timestamp": iso_from_epoch(t), "source": {"ip": ip}, "event": {"id": f"e{next(_ids)}"}}

    rules.feed("failed_login", at(now + 8 * 3600, "10.0.0.9"))  # a device clock 8 hours ahead
    hits = rules.feed("failed_login", *(at(now + i, "10.0.0.1") for i in range(3)))
    assert rules.engine.stats["late_events"] == 0
    assert len(hits) == 1
