"""``soc rules …`` and ``soc alerts …``: the detection engine from the command line."""

from __future__ import annotations

import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from soc.cli.common import ConfigOpt, console, err_console, fail, load
from soc.config import SocConfig
from soc.i18n import t

rules_app = typer.Typer(help="Luật phát hiện Sigma / Sigma detection rules", no_args_is_help=True)
alerts_app = typer.Typer(help="Cảnh báo / Alerts", no_args_is_help=True)

RulesOpt = Annotated[
    list[Path] | None,
    typer.Option("--rules", "-r", help="Thư mục hoặc .zip luật / rule directory or .zip (repeatable)"),
]


def _detect_options(cfg: SocConfig) -> Any:
    from soc.detect.stage import DetectOptions, resolve_options
    from soc.pipeline.stages import StageContext

    for spec in cfg.transforms:
        if spec.type == "detect":
            return resolve_options(StageContext(None, cfg.tz, {}, spec.options, cfg))  # type: ignore[arg-type]
    return resolve_options(StageContext(None, cfg.tz, {}, DetectOptions().model_dump(), cfg))  # type: ignore[arg-type]


def _ruleset(cfg: SocConfig, rules: list[Path] | None) -> Any:
    from soc.detect.loader import load_rules
    from soc.detect.stage import read_placeholders

    options = _detect_options(cfg)
    paths = [p.resolve() for p in rules] if rules else options.rules
    for path in paths:
        if not path.exists():
            raise fail(t("rules.missing", path=path))
    return load_rules(paths, placeholders=read_placeholders(options.placeholders))


def _infos(ruleset: Any) -> list[Any]:
    return [*(r.info for r in ruleset.rules), *(info for _, info in ruleset.correlations)]


@rules_app.command("list")
def rules_list(rules: RulesOpt = None, config: ConfigOpt = None) -> None:
    """Liệt kê luật / List the loaded rules."""
    ruleset = _ruleset(load(config), rules)
    table = Table()
    for col in ("id", "title", "level", "kind", "logsource", "ATT&CK"):
        table.add_column(col, overflow="fold")
    for info in sorted(_infos(ruleset), key=lambda i: i.title):
        logsource = "/".join(f"{k}:{v}" for k, v in info.logsource.items())
        table.add_row(info.id, info.title, info.level, info.kind, logsource,
                      ", ".join([*info.tactics, *info.techniques]))
    console.print(table)
    console.print(t("rules.loaded", rules=len(ruleset.rules), correlations=len(ruleset.correlations),
                    skipped=len(ruleset.skipped)))


@rules_app.command("validate")
def rules_validate(path: Annotated[list[Path] | None, typer.Argument(help="rules (default: configured)")] = None,
                   config: ConfigOpt = None) -> None:
    """Kiểm tra luật / Validate rules: what loads, what is skipped and why, what cannot match."""
    ruleset = _ruleset(load(config), path)
    console.print(t("rules.loaded", rules=len(ruleset.rules), correlations=len(ruleset.correlations),
                    skipped=len(ruleset.skipped)))
    for skipped in ruleset.skipped:
        console.print(f"[red]{t('rules.skipped')}[/red] {skipped.path}: {skipped.rule_id or '-'} "
                      f"{skipped.title or ''} — {skipped.reason}", highlight=False, soft_wrap=True)
    for warning in ruleset.warnings:
        console.print(f"[yellow]{t('rules.warning')}[/yellow] {warning.path}: {warning.rule_id or '-'} — "
                      f"{warning.message}", highlight=False, soft_wrap=True)
    if ruleset.skipped:
        raise typer.Exit(1)


@rules_app.command("test")
def rules_test(rule: Annotated[str | None, typer.Argument(help="rule id or title (default: all)")] = None,
               rules: RulesOpt = None, config: ConfigOpt = None) -> None:
    """Chạy sự kiện mẫu của từng luật / Run every rule's sample events; fail on any miss."""
    from soc.detect.ruletest import SampleReader, run_rule_tests
    from soc.pipeline.build import load_mappings
    from soc.systems import load_registry

    cfg = load(config)
    ruleset = _ruleset(cfg, rules)
    roots = [p for p in (rules or _detect_options(cfg).rules) if p.is_dir()]
    reader = SampleReader(load_registry(cfg.systems_dir, cfg.data_dir), cfg.tz, load_mappings(cfg))
    results = []
    for root in roots:
        results += run_rule_tests(ruleset, root / "tests", reader, only=rule)
    table = Table()
    for col in ("rule", "title", "sample", "result", "fired"):
        table.add_column(col, overflow="fold")
    for r in results:
        verdict = "[green]PASS[/green]" if r.passed else f"[red]FAIL[/red] {r.error or ''}"
        table.add_row(r.rule_id, r.title, r.kind, verdict, ", ".join(r.fired))
    console.print(table)
    failed = [r for r in results if not r.passed]
    console.print(t("rules.test_summary", passed=len(results) - len(failed), failed=len(failed)))
    if failed or not results:
        raise typer.Exit(1)


@rules_app.command("convert")
def rules_convert(
    rule: Annotated[Path, typer.Argument(help="rule file")],
    target: Annotated[str, typer.Option(help="lucene | esql | eql")] = "lucene",
) -> None:
    """Chuyển luật cho Kibana / Convert a rule for Elasticsearch users (pySigma backend + our pipelines)."""
    from soc.detect.convert import convert_rule

    if not rule.is_file():
        raise fail(t("ingest.missing", path=rule))
    try:
        for query in convert_rule(rule, target):
            console.print(query, highlight=False, soft_wrap=True)
    except ValueError as exc:
        raise fail(str(exc)) from None


@rules_app.command("scan")
def rules_scan(
    paths: Annotated[list[Path], typer.Argument(help="log files (.log, .gz, .evtx, NDJSON)")],
    rules: RulesOpt = None,
    format: Annotated[str | None, typer.Option("--format", "-f", help="format (default: auto)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one match per line")] = False,
    profile: Annotated[bool, typer.Option("--profile", help="print the rules that cost the most time")] = False,
    config: ConfigOpt = None,
) -> None:
    """Quét tệp log bằng luật, không cần dịch vụ / Run the rules over log files offline."""
    from collectors.sources.evtx import is_evtx_file, iter_evtx_batches
    from collectors.sources.file_tail import iter_file_batches
    from soc.detect.runner import Detector
    from soc.pipeline.build import load_mappings
    from soc.pipeline.stages import EnrichStage, ParseStage
    from soc.systems import load_registry

    cfg = load(config)
    for path in paths:
        if not path.is_file():
            raise fail(t("ingest.missing", path=path))
    ruleset = _ruleset(cfg, rules)
    detector = Detector(ruleset, profile=profile)
    parse = ParseStage(cfg.tz, load_mappings(cfg))
    enrich = EnrichStage(load_registry(cfg.systems_dir, cfg.data_dir))
    out = sys.stdout.buffer
    counts: Counter[str] = Counter()
    events_seen = 0
    started = time.perf_counter()

    def emit(detections: list[Any]) -> None:
        for d in detections:
            counts[d.rule.id] += 1
            if as_json:
                first = d.events[0] if d.events else {}
                out.write(orjson.dumps({
                    "rule_id": d.rule.id, "title": d.rule.title, "level": d.rule.level, "kind": d.rule.kind,
                    "timestamp": d.last_seen, "event_ids": d.event_ids, "event_count": d.event_count,
                    "group": d.group, "event.original": (first.get("event") or {}).get("original"),
                    "tactics": d.rule.tactics, "techniques": d.rule.techniques,
                }, default=str) + b"\n")
            else:
                first = d.events[0] if d.events else {}
                original = str((first.get("event") or {}).get("original", ""))[:160]
                console.print(f"[bold]{d.rule.level:<8}[/bold] {d.last_seen} {d.rule.title} [{d.rule.id}] "
                              f"{d.event_count}× {original}", highlight=False, soft_wrap=True)

    for path in paths:
        if is_evtx_file(path):
            batches = iter_evtx_batches(path, batch_size=2000, source="scan")
        else:
            batches = iter_file_batches(path, batch_size=2000, source="scan", format=format)
        for batch in batches:
            events, _ = parse.run(batch)
            events = enrich.apply(events, batch.origin)
            events_seen += len(events)
            emit(detector.process(events))
    emit(detector.flush())
    out.flush()
    elapsed = time.perf_counter() - started
    summary = t("rules.scan_summary", events=events_seen, matches=sum(counts.values()), rules=len(counts),
                seconds=elapsed)
    err_console.print(summary, highlight=False)
    if profile:
        table = Table(title=t("rules.profile"))
        for col in ("rule", "title", "seconds", "evaluations", "matches"):
            table.add_column(col, overflow="fold")
        for info, seconds, evaluations, matches in detector.engine.profile_report()[:20]:
            table.add_row(info.id, info.title, f"{seconds:.4f}", str(evaluations), str(matches))
        err_console.print(table)


def _hunt_key(detection: Any) -> str:
    """What a hit is about: the correlation group, else the first event's actor and target."""
    from collectors.event import get_field

    if detection.group:
        return ", ".join(f"{k}={v}" for k, v in detection.group.items())
    first = detection.events[0] if detection.events else {}
    parts = [f"{name}={value}" for name in ("source.ip", "user.name", "host.name", "destination.ip")
             if (value := get_field(first, name)) not in (None, "")]
    return ", ".join(parts)


@rules_app.command("hunt")
def rules_hunt(
    rule: Annotated[str, typer.Argument(help="id, name, tiêu đề hoặc tệp luật / rule id, name, title or file")],
    since: Annotated[str, typer.Option(help="30d, 24h hoặc ISO 8601 / 30d, 24h or ISO 8601")] = "30d",
    until: Annotated[str | None, typer.Option(help="ISO 8601 hoặc tương đối, mặc định: bây giờ / default: now")
                     ] = None,
    system: Annotated[list[str] | None, typer.Option(
        "--system", "-s", help="Chỉ hệ thống này (lặp lại được) / only this system (repeatable)")] = None,
    limit: Annotated[int | None, typer.Option(
        min=1, help="Dừng sau N kết quả / stop after N hits")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Chỉ in kết quả, không tạo cảnh báo / print hits, raise no alert")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Mỗi dòng một kết quả, rồi tổng kết / one hit per line, then a summary line")] = False,
    full_scan: Annotated[bool, typer.Option(
        "--full-scan", help="Elasticsearch: đọc mọi sự kiện, không lọc trước / read every event, no pre-filter")
                         ] = False,
    rules: RulesOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Săn lại trên dữ liệu đã lưu / Retro-hunt: run a rule over stored history and raise its hits as alerts."""
    from datetime import UTC

    from elasticsearch import ApiError, TransportError
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from collectors.event import get_field
    from soc.detect.hunt import (
        HuntError,
        HuntWindow,
        hit_dict,
        open_hunt_source,
        plan_hunt,
        run_hunt,
        say,
        select_rules,
    )
    from soc.detect.loader import load_rules
    from soc.detect.stage import open_alert_store, read_placeholders
    from soc.store.base import QueryError, StoreUnavailable
    from soc.timeparse import parse_time

    cfg = load(config)
    options = _detect_options(cfg)
    paths = [p.resolve() for p in rules] if rules else list(options.rules)
    for path in paths:
        if not path.exists():
            raise fail(t("rules.missing", path=path))
    candidate = Path(rule)
    if candidate.is_file() and not any(candidate.resolve().is_relative_to(p) for p in paths if p.is_dir()):
        # A rule file outside the rule directories is hunted with them (for its references).
        paths.append(candidate.resolve())
    ruleset = load_rules(paths, placeholders=read_placeholders(options.placeholders))
    now = datetime.now(UTC)
    try:
        start = parse_time(since, now=now, tz=cfg.tz)
        end = parse_time(until, now=now, tz=cfg.tz) if until is not None else now
    except ValueError:
        raise fail(t("search.bad_time", value=until if until is not None else since)) from None
    try:
        plan = plan_hunt(ruleset, select_rules(ruleset, rule))
        window = HuntWindow(start, end, tuple(system or ()))
    except HuntError as exc:
        raise fail(str(exc)) from None
    try:
        source = open_hunt_source(cfg, full_scan=full_scan)
    except (ApiError, TransportError, ValueError) as exc:
        raise fail(say(f"Không kết nối được Elasticsearch: {exc}", f"Cannot reach Elasticsearch: {exc}")) from None
    alerts = None if dry_run else open_alert_store(cfg, options)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=err_console, transient=True) as bar:
            task = bar.add_task(say("Săn lại", "Retro-hunt"), total=None)

            def advance(scanned: int, total: int) -> None:
                bar.update(task, completed=scanned, total=total)

            result = run_hunt(plan, source, window, alerts=alerts, dry_run=dry_run, limit=limit,
                              progress=advance, max_keys=options.max_keys, lateness=options.lateness,
                              max_events_per_alert=options.max_events_per_alert)
    except (HuntError, QueryError, StoreUnavailable) as exc:
        raise fail(str(exc)) from None
    except (ApiError, TransportError) as exc:
        raise fail(say(f"Elasticsearch lỗi khi săn lại: {exc}", f"Elasticsearch failed during the hunt: {exc}")
                   ) from None
    finally:
        source.close()
    if as_json:
        out = sys.stdout.buffer
        for detection in result.detections:
            out.write(orjson.dumps({"type": "hit", "hunt_id": result.hunt_id, **hit_dict(detection)},
                                   default=str) + b"\n")
        out.write(orjson.dumps({"type": "summary", **result.as_dict()}, default=str) + b"\n")
        out.flush()
        return
    titles = "; ".join(f"{i.title} [{i.id}]" for i in result.targets)
    console.print(say(f"Săn lại {result.hunt_id}: {titles}", f"Retro-hunt {result.hunt_id}: {titles}"),
                  highlight=False, soft_wrap=True)
    console.print(f"{window.since.isoformat()} → {window.until.isoformat()} ({result.source})", highlight=False)
    if result.detections:
        table = Table()
        for col in ("last seen", "level", "rule", "events", "system", "key", "event"):
            table.add_column(col, overflow="fold")
        for d in result.detections:
            first = d.events[0] if d.events else {}
            original = str((first.get("event") or {}).get("original", ""))[:120]
            system_id = str(get_field(first, "gov.system.id") or "")
            table.add_row(d.last_seen, d.rule.level, d.rule.title, str(d.event_count), system_id, _hunt_key(d),
                          original)
        console.print(table)
    for note in result.notes:
        console.print(f"[yellow]{say('ghi chú', 'note')}[/yellow]: {note}", highlight=False, soft_wrap=True)
    if result.limited:
        console.print(say(f"Dừng ở giới hạn {limit} kết quả: phần sau của khoảng chưa được đọc",
                          f"Stopped at the limit of {limit} hits: the rest of the range was not read"),
                      highlight=False)
    console.print(say(
        f"Đã quét {result.scanned} sự kiện, {result.hits} kết quả, {result.created} cảnh báo mới, "
        f"{result.updated} cảnh báo cập nhật, trong {result.seconds:.1f} giây",
        f"Scanned {result.scanned} events, {result.hits} hits, {result.created} alerts raised, "
        f"{result.updated} alerts updated, in {result.seconds:.1f} s"), highlight=False)
    if dry_run:
        console.print(say("Chạy thử: không tạo cảnh báo nào", "Dry run: no alerts raised"), highlight=False)


@alerts_app.command("list")
def alerts_list(
    since: Annotated[str | None, typer.Option(help="24h, 7d or ISO 8601")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="one alert per line")] = False,
    config: ConfigOpt = None,
) -> None:
    """Liệt kê cảnh báo / List alerts, newest first."""
    from soc.alerts.store import AlertStore
    from soc.db import database_url, make_engine, migrate
    from soc.timeparse import parse_time

    cfg = load(config)
    when: datetime | None = None
    if since is not None:
        try:
            when = parse_time(since, tz=cfg.tz)
        except ValueError:
            raise fail(t("search.bad_time", value=since)) from None
    url = database_url(cfg)
    migrate(url)
    alerts = AlertStore(make_engine(url)).list_alerts(since=when, limit=limit)
    if as_json:
        for alert in alerts:
            sys.stdout.buffer.write(orjson.dumps(alert.as_dict(), default=str) + b"\n")
        return
    table = Table()
    for col in ("last seen", "level", "rule", "count", "system", "status", "summary"):
        table.add_column(col, overflow="fold")
    for a in alerts:
        table.add_row(str(a.last_seen), a.level, a.rule_title, str(a.count), a.system_id or "", a.status,
                      a.summary)
    console.print(table)
    console.print(t("alerts.count", count=len(alerts)))
