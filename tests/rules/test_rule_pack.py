"""The province's Sigma rule pack (``rules/``): every rule parses with pySigma, carries
the metadata analysts and reports rely on, selects events through a log source of the
contract (docs/detection-logsources.md), and every alerting rule has sample events
(``rules/tests/<rule-id>/match.jsonl`` and ``nomatch.jsonl``) that our parsers read.

Whether the samples make the rules fire is checked by ``soc rules test`` with the
detection engine; this file checks everything that does not need the engine.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaRule

import collectors.parsers  # noqa: F401  (registers the parsers)
from collectors.event import PARSE_FAILURE_TAG
from collectors.parsers import Dispatcher, ParseContext
from collectors.parsers.base import known_formats
from collectors.parsers.json_audit import load_json_mappings
from tests.conftest import REPO

RULES = REPO / "rules"
TESTS = RULES / "tests"
IOC_BAD_IPS = RULES / "iocs" / "bad_ips.txt"
RULE_DIRS = ("linux", "web", "windows", "network", "mail", "apps")

# Log sources of the contract (docs/detection-logsources.md), as (product, service,
# category) with None for "not set". `product: windows, service/category: <other>` are
# allowed by the contract through SigmaHQ's thor.yml; the pack uses the ones listed.
ALLOWED_LOGSOURCES: set[tuple[str | None, str | None, str | None]] = {
    ("windows", "security", None),
    ("windows", "system", None),
    ("windows", "sysmon", None),
    ("windows", "powershell", None),
    ("windows", "windefend", None),
    ("windows", None, "process_creation"),
    ("windows", None, "process_access"),
    ("windows", None, "ps_script"),
    ("windows", None, "ps_module"),
    ("windows", None, "image_load"),
    ("windows", None, "network_connection"),
    ("windows", None, "file_event"),
    ("windows", None, "registry_set"),
    ("windows", None, "dns_query"),
    ("linux", "sshd", None),
    ("linux", "sudo", None),
    ("linux", "su", None),
    ("linux", "auth", None),
    ("linux", None, None),
    (None, None, "webserver"),
    (None, None, "firewall"),
    ("fortigate", None, None),
    ("fortios", None, None),
    ("cisco", "asa", None),
    (None, None, "dns"),
    ("suricata", None, None),
    (None, None, "ids"),
    ("postfix", None, None),
    ("dovecot", None, None),
    ("zimbra", None, None),
    ("ioffice", None, None),
    ("dvc_portal", None, None),
}
LEVELS = {"informational", "low", "medium", "high", "critical"}
TECHNIQUE = re.compile(r"^attack\.t\d{4}(\.\d{3})?$")
TACTIC = re.compile(r"^attack\.[a-z]+([_-][a-z]+)*$")
PLACEHOLDERS = {"ioc_bad_ips"}
"""``expand`` placeholders the detection engine must fill (config placeholders)."""
DOCUMENTATION_NETS = [ipaddress.ip_network(n) for n in
                      ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]


# --- loading -------------------------------------------------------------------------


def _rule_files() -> list[Path]:
    return sorted(p for d in RULE_DIRS for p in (RULES / d).rglob("*.yml"))


@cache
def _collection(path: Path) -> SigmaCollection:
    collection = SigmaCollection.from_yaml(path.read_text(encoding="utf-8"), collect_errors=True)
    collection.resolve_rule_references()
    return collection


@cache
def _documents(path: Path) -> tuple[dict[str, Any], ...]:
    return tuple(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)


def _all_rules() -> list[tuple[Path, SigmaRule | SigmaCorrelationRule]]:
    return [(path, rule) for path in _rule_files() for rule in _collection(path).rules]


def _silenced(path: Path) -> set[str]:
    """Ids of the rules of a file that only feed a correlation with ``generate: false``
    (the Sigma default): they never alert alone, so they have no samples of their own."""
    out: set[str] = set()
    for rule in _collection(path).rules:
        if isinstance(rule, SigmaCorrelationRule) and not rule.generate:
            for ref in rule.rules or []:
                out.add(str(ref.rule.id))
    return out


def _alerting() -> list[tuple[Path, SigmaRule | SigmaCorrelationRule]]:
    return [(path, rule) for path, rule in _all_rules() if str(rule.id) not in _silenced(path)]


def _ids(items: list[tuple[Path, SigmaRule | SigmaCorrelationRule]]) -> list[str]:
    return [f"{path.relative_to(RULES)}::{rule.title}" for path, rule in items]


@cache
def _system_ids() -> frozenset[str]:
    data = yaml.safe_load((REPO / "config" / "systems" / "province.yaml").read_text(encoding="utf-8"))
    return frozenset(s["id"] for s in data["systems"])


@cache
def _mappings() -> dict[str, Any]:
    return load_json_mappings(REPO / "config" / "json_mappings")


# --- the pack as a whole -------------------------------------------------------------


def test_pack_has_at_least_40_alerting_rules() -> None:
    assert len(_alerting()) >= 40, len(_alerting())


def test_every_rule_folder_holds_rules() -> None:
    for folder in RULE_DIRS:
        assert list((RULES / folder).glob("*.yml")), folder


def test_ids_are_fixed_unique_uuids_and_names_unique() -> None:
    ids = [str(rule.id) for _, rule in _all_rules()]
    assert len(ids) == len(set(ids))
    for _, rule in _all_rules():
        assert rule.id is not None and isinstance(rule.id, uuid.UUID), rule.title
    names = [rule.name for _, rule in _all_rules() if rule.name]
    assert len(names) == len(set(names)), "rule names must be unique across the pack (correlations refer to them)"


def test_no_sample_folder_without_an_alerting_rule() -> None:
    alerting = {str(rule.id) for _, rule in _alerting()}
    stale = [d.name for d in TESTS.iterdir() if d.is_dir() and d.name not in alerting]
    assert not stale


# --- each rule -----------------------------------------------------------------------


@pytest.mark.parametrize("path", _rule_files(), ids=lambda p: str(p.relative_to(RULES)))
def test_file_parses_with_pysigma(path: Path) -> None:
    collection = _collection(path)
    errors = list(collection.errors) + [e for rule in collection.rules for e in rule.errors]
    assert not errors, errors
    assert collection.rules
    # Correlations refer to rules of the same file, by name.
    names = {rule.name for rule in collection.rules if rule.name}
    for rule in collection.rules:
        if isinstance(rule, SigmaCorrelationRule):
            assert rule.rules, rule.title
            for ref in rule.rules:
                assert ref.reference in names, (rule.title, ref.reference)


@pytest.mark.parametrize(("path", "rule"), _all_rules(), ids=_ids(_all_rules()))
def test_rule_metadata(path: Path, rule: SigmaRule | SigmaCorrelationRule) -> None:
    assert rule.title
    assert rule.status is not None and str(rule.status) == "test"
    assert rule.level is not None and str(rule.level) in LEVELS
    assert rule.author and rule.date is not None
    assert rule.falsepositives
    description = rule.description or ""
    assert "Bảo vệ" in description and "Protects" in description, "bilingual, names the protected system"
    tags = [str(tag) for tag in rule.tags]
    assert any(TECHNIQUE.match(tag) for tag in tags), tags
    assert any(TACTIC.match(tag) and not TECHNIQUE.match(tag) for tag in tags), tags
    for reference in rule.references:
        assert reference.startswith("https://"), reference


@pytest.mark.parametrize(("path", "rule"), _all_rules(), ids=_ids(_all_rules()))
def test_logsource_from_contract(path: Path, rule: SigmaRule | SigmaCorrelationRule) -> None:
    if isinstance(rule, SigmaCorrelationRule):
        for ref in rule.rules or []:
            assert ref.rule is not None, ref.reference
        return
    source = rule.logsource
    key = (source.product, source.service, source.category)
    assert key in ALLOWED_LOGSOURCES, key


@pytest.mark.parametrize("path", _rule_files(), ids=lambda p: str(p.relative_to(RULES)))
def test_correlations_state_generate_and_base_rules_are_named(path: Path) -> None:
    for doc in _documents(path):
        if "correlation" in doc:
            assert isinstance(doc["correlation"].get("generate"), bool), doc["title"]
            assert doc["correlation"].get("timespan"), doc["title"]
        else:
            assert "detection" in doc and "logsource" in doc, doc["title"]


def _expand_values(node: Any) -> list[str]:
    """Values of detection items with the ``expand`` modifier."""
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and "expand" in key.split("|")[1:]:
                out.extend(str(v) for v in (value if isinstance(value, list) else [value]))
            else:
                out.extend(_expand_values(value))
    elif isinstance(node, list):
        for value in node:
            out.extend(_expand_values(value))
    return out


@pytest.mark.parametrize("path", _rule_files(), ids=lambda p: str(p.relative_to(RULES)))
def test_only_known_placeholders(path: Path) -> None:
    for doc in _documents(path):
        for value in _expand_values(doc.get("detection", {})):
            found = set(re.findall(r"%([A-Za-z0-9_]+)%", value))
            assert found and found <= PLACEHOLDERS, (doc["title"], value)


# --- sample events -------------------------------------------------------------------


def _sample_lines(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [orjson.loads(line) for line in lines]


@pytest.mark.parametrize(("path", "rule"), _alerting(), ids=_ids(_alerting()))
@pytest.mark.parametrize("kind", ["match", "nomatch"])
def test_samples_exist_and_parse(path: Path, rule: SigmaRule | SigmaCorrelationRule, kind: str) -> None:
    sample = TESTS / str(rule.id) / f"{kind}.jsonl"
    assert sample.is_file(), f"missing {sample.relative_to(REPO)}"
    items = _sample_lines(sample)
    assert items, f"{sample.relative_to(REPO)} is empty"
    formats = set(known_formats())
    dispatcher = Dispatcher()
    ctx = ParseContext(json_mappings=_mappings())
    for n, item in enumerate(items, start=1):
        where = f"{sample.relative_to(REPO)}:{n}"
        assert isinstance(item, dict) and (("raw" in item) != ("event" in item)), where
        if "event" in item:
            assert isinstance(item["event"], dict) and item["event"].get("@timestamp"), where
            continue
        assert isinstance(item["raw"], str) and item["raw"], where
        fmt = item.get("format")
        if fmt is not None:
            assert fmt.split(":", 1)[0] in formats, (where, fmt)
        system = item.get("system")
        if system is not None:
            assert system in _system_ids(), (where, system)
        event = dispatcher.parse(item["raw"], fmt, ctx)
        assert PARSE_FAILURE_TAG not in event.get("tags", ()), (where, event.get("error"))
        assert event.get("@timestamp"), where


# --- IOC list ------------------------------------------------------------------------


def test_bad_ips_list() -> None:
    text = IOC_BAD_IPS.read_text(encoding="utf-8")
    assert text.startswith("#"), "the file opens with a comment header explaining the format"
    values = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    values = [v for v in values if v]
    assert values
    for value in values:
        address = ipaddress.ip_address(value)  # single addresses: `expand` compares whole values
        assert any(address in net for net in DOCUMENTATION_NETS), value
