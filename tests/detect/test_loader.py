"""Loading rules: directories, .zip archives, broken files, multi-document files,
correlations, filters, placeholders, rule metadata, validation warnings and the
processing pipelines of rules/pipelines (docs/detection-logsources.md)."""

from __future__ import annotations

import textwrap
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from collectors.parsers import Dispatcher, ParseContext
from soc.detect.engine import Engine
from soc.detect.loader import DEFAULT_PIPELINES, RuleSet, load_rules
from tests.conftest import DATASETS

SIGMAHQ_ZIP = DATASETS / "sigma-rules" / "sigmahq-rules.zip"


@cache
def sigmahq() -> RuleSet:
    """The whole SigmaHQ corpus, loaded once per test session."""
    return load_rules([SIGMAHQ_ZIP])


def rule_text(rule_id: str, title: str = "Test rule", logsource: str = "{product: ioffice}",
              detection: str = "sel: {event.action: delete}\ncondition: sel", extra: str = "") -> str:
    return (f"title: {title}\nid: {rule_id}\n{extra}logsource: {logsource}\ndetection:\n"
            + textwrap.indent(textwrap.dedent(detection).strip(), "    ") + "\n")


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


ID1 = "11111111-1111-4111-8111-111111111111"
ID2 = "22222222-2222-4222-8222-222222222222"
ID3 = "33333333-3333-4333-8333-333333333333"


# --- sources -------------------------------------------------------------------------

def test_directories_are_read_recursively_yml_and_yaml(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", rule_text(ID1))
    write(tmp_path, "sub/dir/b.yaml", rule_text(ID2))
    write(tmp_path, "notes.txt", "not a rule")
    ruleset = load_rules([tmp_path])
    assert sorted(r.info.id for r in ruleset.rules) == [ID1, ID2]
    assert ruleset.skipped == []
    assert {Path(r.info.path or "").name for r in ruleset.rules} == {"a.yml", "b.yaml"}


def test_zip_archives_are_read_without_unpacking(tmp_path: Path) -> None:
    archive = tmp_path / "pack.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("rules/a.yml", rule_text(ID1))
        zf.writestr("rules/deep/b.yml", rule_text(ID2))
        zf.writestr("README.md", "# rules")
    ruleset = load_rules([archive])
    assert sorted(r.info.id for r in ruleset.rules) == [ID1, ID2]
    assert all(str(r.info.path).startswith(str(archive)) for r in ruleset.rules)
    assert not list(tmp_path.glob("rules"))


def test_a_broken_file_is_skipped_with_its_line_and_the_others_load(tmp_path: Path) -> None:
    write(tmp_path, "good.yml", rule_text(ID1))
    write(tmp_path, "broken.yml", "title: x\ndetection:\n  sel: [a\n  condition: sel\n")
    ruleset = load_rules([tmp_path])
    assert [r.info.id for r in ruleset.rules] == [ID1]
    (skipped,) = ruleset.skipped
    assert skipped.path.endswith("broken.yml")
    assert "YAML error at line" in skipped.reason


@pytest.mark.parametrize(("detection", "reason"), [
    ("sel: {Image|nomodifier: x}\ncondition: sel", "Unknown modifier"),
    ("sel: {Image: x}", "condition"),
    ("sel: {Image: x}\ncondition: sel and other", "not defined"),
    ("sel: {Image|expand: '%unknown%'}\ncondition: sel", "placeholder %unknown%"),
])
def test_unusable_rules_are_skipped_with_a_reason(tmp_path: Path, detection: str, reason: str) -> None:
    write(tmp_path, "bad.yml", rule_text(ID1, detection=detection))
    write(tmp_path, "good.yml", rule_text(ID2))
    ruleset = load_rules([tmp_path])
    assert [r.info.id for r in ruleset.rules] == [ID2]
    (skipped,) = ruleset.skipped
    assert skipped.rule_id == ID1 and skipped.title == "Test rule"
    assert reason in skipped.reason, skipped.reason


def test_non_uuid_ids_are_rejected_as_sigma_does(tmp_path: Path) -> None:
    write(tmp_path, "r.yml", rule_text("soc-0001"))
    (skipped,) = load_rules([tmp_path]).skipped
    assert "UUID" in skipped.reason


def test_multi_document_files_and_collection_actions(tmp_path: Path) -> None:
    text = textwrap.dedent(f"""\
        action: global
        title: Shared title
        logsource: {{product: ioffice}}
        detection:
            condition: sel
        ---
        id: {ID1}
        detection:
            sel: {{event.action: delete}}
        ---
        id: {ID2}
        detection:
            sel: {{event.action: export}}
        ---
        id: {ID3}
        title: broken one
        detection:
            sel: {{event.action|nomodifier: x}}
        """)
    write(tmp_path, "multi.yml", text)
    ruleset = load_rules([tmp_path])
    assert sorted(r.info.id for r in ruleset.rules) == [ID1, ID2]
    assert all(r.info.title == "Shared title" for r in ruleset.rules)
    (skipped,) = ruleset.skipped
    assert skipped.rule_id == ID3 and "document at line 15" in skipped.reason
    engine = Engine(ruleset)
    event = {"event": {"dataset": "ioffice.audit", "action": "export"}}
    assert [r.id for r in engine.match(event)] == [ID2]


def test_duplicate_ids_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", rule_text(ID1))
    write(tmp_path, "b.yml", rule_text(ID1, title="Again"))
    ruleset = load_rules([tmp_path])
    assert len(ruleset.rules) == 1
    assert "duplicate rule id" in ruleset.skipped[0].reason


def test_the_pipelines_folder_next_to_the_rules_is_not_read_as_rules(tmp_path: Path) -> None:
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    for source in DEFAULT_PIPELINES.glob("*.yml"):
        (pipelines / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    write(tmp_path, "r.yml", rule_text(ID1))
    ruleset = load_rules([tmp_path], pipelines=pipelines)
    assert [r.info.id for r in ruleset.rules] == [ID1] and ruleset.skipped == []


def test_missing_path_is_reported(tmp_path: Path) -> None:
    (skipped,) = load_rules([tmp_path / "nowhere"]).skipped
    assert "no such file" in skipped.reason


# --- metadata -----------------------------------------------------------------------

def test_rule_info(tmp_path: Path) -> None:
    extra = textwrap.dedent("""\
        name: failed_logon
        status: test
        description: Logon failures
        references:
            - https://example.org/4625
        tags:
            - attack.credential-access
            - attack.t1110.001
        falsepositives:
            - Typos
        level: high
        """)
    write(tmp_path, "r.yml", rule_text(ID1, title="Failed logon", extra=extra,
                                       logsource="{product: windows, service: security}",
                                       detection="sel: {EventID: 4625}\ncondition: sel"))
    (rule,) = load_rules([tmp_path]).rules
    info = rule.info
    assert (info.id, info.title, info.level, info.kind, info.name, info.status) == (
        ID1, "Failed logon", "high", "detection", "failed_logon", "test")
    assert info.tags == ("attack.credential-access", "attack.t1110.001")
    assert info.tactics == ["Credential Access"] and info.techniques == ["T1110.001"]
    assert info.logsource == {"product": "windows", "service": "security"}
    assert info.references == ("https://example.org/4625",) and info.falsepositives == ("Typos",)
    assert info.description == "Logon failures" and str(info.path).endswith("r.yml")


# --- correlations, filters, placeholders ---------------------------------------------------

def test_correlations_resolve_references_across_files_and_get_ecs_group_fields(tmp_path: Path) -> None:
    write(tmp_path, "base.yml", rule_text(ID1, title="SSH failure", extra="name: ssh_failure\n",
                                          logsource="{product: linux, service: sshd}",
                                          detection="sel: {event.outcome: failure}\ncondition: sel"))
    write(tmp_path, "corr/brute.yml", textwrap.dedent(f"""\
        title: SSH brute force
        id: {ID2}
        level: high
        correlation:
            type: event_count
            rules: [ssh_failure]
            group-by: [rhost]
            timespan: 5m
            condition: {{gte: 10, lt: 1000}}
        """))
    ruleset = load_rules([tmp_path])
    assert ruleset.skipped == []
    ((corr, info),) = ruleset.correlations
    assert info.kind == "correlation" and info.id == ID2 and info.level == "high"
    assert corr.group_by == ["source.ip"]  # the Linux field name, renamed by the pipeline
    assert [ref.rule.title for ref in corr.rules] == ["SSH failure"]
    assert corr.custom_attributes["x-soc-condition"] == {"gte": 10, "lt": 1000}
    assert {i.id for i in ruleset.infos()} == {ID1, ID2}


def test_a_correlation_over_a_missing_rule_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, "corr.yml", textwrap.dedent(f"""\
        title: Orphan
        id: {ID2}
        correlation:
            type: event_count
            rules: [nothing_by_this_name]
            timespan: 5m
            condition: {{gte: 2}}
        """))
    ruleset = load_rules([tmp_path])
    assert ruleset.correlations == []
    assert "not loaded" in ruleset.skipped[0].reason


def test_filters_apply_to_the_rules_they_name(tmp_path: Path) -> None:
    write(tmp_path, "r.yml", rule_text(ID1, detection="sel: {event.action: delete}\ncondition: sel"))
    write(tmp_path, "f.yml", textwrap.dedent(f"""\
        title: Archive robot deletes
        id: {ID3}
        logsource: {{product: ioffice}}
        filter:
            rules: [{ID1}]
            selection:
                user.name: archive-bot
            condition: not selection
        """))
    ruleset = load_rules([tmp_path])
    assert ruleset.skipped == [] and ruleset.warnings == []
    engine = Engine(ruleset)
    base = {"event": {"dataset": "ioffice.audit", "action": "delete"}}
    assert engine.match({**base, "user": {"name": "alice"}})
    assert not engine.match({**base, "user": {"name": "archive-bot"}})


def test_placeholders_expand_from_configuration(tmp_path: Path) -> None:
    write(tmp_path, "r.yml", rule_text(ID1, detection="sel: {user.name|expand: '%admins%'}\ncondition: sel"))
    ruleset = load_rules([tmp_path], placeholders={"admins": ["root", "adm*"]})
    engine = Engine(ruleset)
    event: dict[str, Any] = {"event": {"dataset": "ioffice.audit"}}
    assert engine.match({**event, "user": {"name": "ROOT"}})
    assert engine.match({**event, "user": {"name": "administrator"}})
    assert not engine.match({**event, "user": {"name": "bob"}})
    assert "placeholder %admins%" in load_rules([tmp_path]).skipped[0].reason


# --- validation warnings ----------------------------------------------------------------

def test_a_log_source_we_do_not_parse_is_a_warning_and_the_rule_never_runs(tmp_path: Path) -> None:
    write(tmp_path, "aws.yml", rule_text(ID1, logsource="{product: aws, service: cloudtrail}",
                                         detection="keywords: [DeleteTrail]\ncondition: keywords"))
    ruleset = load_rules([tmp_path])
    (rule,) = ruleset.rules
    assert not rule.active and ruleset.active == []
    (warning,) = ruleset.warnings
    assert warning.rule_id == ID1 and "selects no events" in warning.message
    assert Engine(ruleset).match({"message": "DeleteTrail called"}) == []


def test_a_field_our_parsers_never_emit_is_a_warning(tmp_path: Path) -> None:
    write(tmp_path, "web.yml", rule_text(ID1, logsource="{category: webserver}",
                                         detection="sel: {cs-cookie|contains: 'x'}\ncondition: sel"))
    write(tmp_path, "ok.yml", rule_text(ID2, logsource="{category: webserver}",
                                        detection="sel: {cs-uri-query|contains: '/etc/passwd'}\ncondition: sel"))
    ruleset = load_rules([tmp_path])
    (warning,) = ruleset.warnings
    assert warning.rule_id == ID1 and "cs-cookie" in warning.message


# --- pipelines: log sources and field names (docs/detection-logsources.md) -------------------

def windows_event(channel: str, event_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """A Windows record in the evtx package's shape, through our parser."""
    record = {"Event": {"System": {"Provider": {"#attributes": {"Name": "x"}}, "EventID": event_id,
                                   "Channel": channel, "Computer": "pc1",
                                   "TimeCreated": {"#attributes": {"SystemTime": "2024-05-01T10:00:00.000Z"}}},
                        "EventData": data}}
    import json

    return Dispatcher().parse(json.dumps(record), None, ParseContext())


SYSMON = "Microsoft-Windows-Sysmon/Operational"


def test_process_creation_covers_sysmon_1_and_security_4688(tmp_path: Path) -> None:
    write(tmp_path, "r.yml", rule_text(ID1, logsource="{product: windows, category: process_creation}",
                                       detection=r"""
        sel:
            Image|endswith: '\certutil.exe'
            CommandLine|contains: 'urlcache'
        filter_parent_null:
            ParentImage: null
        condition: sel and not 1 of filter_*
        """))
    engine = Engine(load_rules([tmp_path]))
    cli = "certutil -urlcache -f http://x/a.exe"
    sysmon = windows_event(SYSMON, 1, {"Image": r"C:\Windows\System32\certutil.exe", "CommandLine": cli,
                                       "ParentImage": r"C:\Windows\System32\cmd.exe"})
    security = windows_event("Security", 4688, {"NewProcessName": r"C:\Windows\System32\certutil.exe",
                                                "CommandLine": cli, "ParentProcessName": r"C:\x\cmd.exe"})
    network = windows_event(SYSMON, 3, {"Image": r"C:\Windows\System32\certutil.exe", "CommandLine": cli,
                                        "ParentImage": r"C:\x.exe"})
    orphan = windows_event(SYSMON, 1, {"Image": r"C:\Windows\System32\certutil.exe", "CommandLine": cli})
    assert engine.match(sysmon) and engine.match(security)
    assert not engine.match(network)
    assert not engine.match(orphan)  # ParentImage: null holds there, and only there


def test_windows_services_select_channels_and_event_ids_match_as_numbers(tmp_path: Path) -> None:
    write(tmp_path, "r.yml", rule_text(ID1, logsource="{product: windows, service: security}",
                                       detection="sel: {EventID: 4625, TargetUserName: admin}\ncondition: sel"))
    engine = Engine(load_rules([tmp_path]))
    assert engine.match(windows_event("Security", 4625, {"TargetUserName": "Admin"}))
    assert not engine.match(windows_event("System", 4625, {"TargetUserName": "Admin"}))
    assert not engine.match(windows_event("Security", 4624, {"TargetUserName": "Admin"}))


def test_registry_delete_needs_a_delete_event_type(tmp_path: Path) -> None:
    write(tmp_path, "r.yml", rule_text(ID1, logsource="{product: windows, category: registry_delete}",
                                       detection=r"sel: {TargetObject|endswith: '\RunMRU'}" + "\ncondition: sel"))
    engine = Engine(load_rules([tmp_path]))
    key = r"HKU\S-1\Software\Microsoft\Windows\CurrentVersion\Explorer\RunMRU"
    assert engine.match(windows_event(SYSMON, 12, {"EventType": "DeleteKey", "TargetObject": key}))
    assert not engine.match(windows_event(SYSMON, 12, {"EventType": "CreateKey", "TargetObject": key}))


def test_linux_sshd_and_field_names(tmp_path: Path) -> None:
    write(tmp_path, "r.yml", rule_text(ID1, logsource="{product: linux, service: sshd}",
                                       detection="sel: {User: root, rhost: 203.0.113.9}\ncondition: sel"))
    engine = Engine(load_rules([tmp_path]))
    event = {"process": {"name": "sshd"}, "user": {"name": "root"}, "source": {"ip": "203.0.113.9"}}
    assert engine.match(event)
    assert not engine.match({**event, "process": {"name": "sudo"}})


def test_webserver_fields_and_selection(tmp_path: Path) -> None:
    write(tmp_path, "r.yml", rule_text(ID1, logsource="{category: webserver}", detection="""
        sel:
            cs-method: GET
            cs-uri-query|contains: '../../etc/passwd'
            sc-status: 200
        condition: sel
        """))
    engine = Engine(load_rules([tmp_path]))
    event = {"event": {"category": ["web"], "type": ["access"]}, "http": {"request": {"method": "GET"},
             "response": {"status_code": 200}}, "url": {"original": "/x?f=../../etc/passwd"}}
    assert engine.match(event)
    assert not engine.match({**event, "event": {"category": ["web"], "type": ["error"]}})


def test_cisco_ios_keyword_rules_select_ios_messages(tmp_path: Path) -> None:
    write(tmp_path, "r.yml", rule_text(ID1, logsource="{product: cisco, service: aaa}",
                                       detection="keywords: ['no dot1x port-control']\ncondition: keywords"))
    engine = Engine(load_rules([tmp_path]))
    line = "172.16.5.10 6705: Feb 17 13:40:03.673: %PARSER-5-CFGLOG_LOGGEDCMD: User:admin logged command:" \
           "no dot1x port-control"
    event = Dispatcher().parse(line, None, ParseContext())
    assert engine.match(event)
    assert not engine.match({"event": {"original": "sshd: no dot1x port-control"}})


# --- the SigmaHQ corpus -------------------------------------------------------------------

def test_the_whole_sigmahq_corpus_loads_and_every_skip_has_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    ruleset = sigmahq()
    with zipfile.ZipFile(SIGMAHQ_ZIP) as zf:
        files = sum(1 for name in zf.namelist() if name.endswith(".yml"))
    loaded, skipped = len(ruleset.rules) + len(ruleset.correlations), len(ruleset.skipped)
    with capsys.disabled():
        print(f"\nSigmaHQ corpus: {files} files, {loaded} rules loaded ({len(ruleset.active)} active), "
              f"{skipped} skipped, {len(ruleset.warnings)} warnings")
        for s in ruleset.skipped:
            print(f"  skipped {s.path.rsplit('/', 1)[-1]}: {s.reason}")
    assert loaded + skipped == files
    assert all(s.reason for s in ruleset.skipped)
    assert skipped <= 0.01 * files
    assert len(ruleset.active) > 2800
