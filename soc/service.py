"""``soc run``: the pipeline, its sources, the API and the scheduler in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from rich.console import Console

from collectors.sources.base import Source
from collectors.sources.es_tail import ElasticTailSource
from collectors.sources.evtx_inbox import EvtxInboxSource
from collectors.sources.file_tail import FileTailSource
from collectors.sources.syslog import SyslogTcpSource, SyslogUdpSource
from soc.alerts.mirror import AlertMirror
from soc.alerts.store import AlertStore
from soc.api.app import create_app
from soc.api.state import AppState
from soc.auth import FirstAdmin, ensure_first_admin
from soc.config import (
    ConfigError,
    EvtxSource,
    FileSource,
    HttpIngestSource,
    SocConfig,
    TlsConfig,
)
from soc.config import (
    ElasticTailSource as ElasticTailConfig,
)
from soc.config import (
    SyslogTcpSource as SyslogTcpConfig,
)
from soc.config import (
    SyslogUdpSource as SyslogUdpConfig,
)
from soc.db import Database, open_database
from soc.i18n import t
from soc.inventory.activity import ActivityTracker
from soc.inventory.silence import schedule as schedule_source_health
from soc.notify.dispatcher import schedule as schedule_notifications
from soc.pipeline.alarm import spool_alert_handler
from soc.pipeline.build import Topology, build_topology
from soc.pipeline.core import AsyncPipeline
from soc.store.base import StoreUnavailable
from soc.store.elastic.connection import cluster_info, connect
from soc.store.elastic.store import ElasticEventStore

log = logging.getLogger("soc.service")


def _tls_context(tls: TlsConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(tls.cert), str(tls.key))
    if tls.ca is not None:
        ctx.load_verify_locations(str(tls.ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def build_sources(cfg: SocConfig) -> list[Source]:
    """The network and file sources of the topology (HTTP ingest lives in the API)."""
    sources: list[Source] = []
    for name, spec in cfg.sources.items():
        fmt = None if spec.format == "auto" else spec.format
        if isinstance(spec, SyslogUdpConfig):
            sources.append(SyslogUdpSource(name, host=spec.host, port=spec.port, format=fmt,
                                           system_id=spec.system))
        elif isinstance(spec, SyslogTcpConfig):
            sources.append(SyslogTcpSource(name, host=spec.host, port=spec.port, format=fmt,
                                           system_id=spec.system, framing=spec.framing,
                                           max_message_size=spec.max_message_bytes,
                                           tls=_tls_context(spec.tls) if spec.tls else None))
        elif isinstance(spec, FileSource):
            sources.append(FileTailSource(name, include=spec.include, exclude=spec.exclude,
                                          checkpoint_path=cfg.checkpoints_dir / f"{name}.json",
                                          format=fmt, system_id=spec.system, read_from=spec.read_from,
                                          poll_interval=spec.poll_interval))
        elif isinstance(spec, EvtxSource):
            sources.append(EvtxInboxSource(name, include=spec.include,
                                           checkpoint_path=cfg.checkpoints_dir / f"{name}.json",
                                           system_id=spec.system, poll_interval=spec.poll_interval,
                                           batch_size=cfg.pipeline.batch_size))
        elif isinstance(spec, ElasticTailConfig):
            sources.append(_tail_source(cfg, name, spec))
    return sources


def _tail_source(cfg: SocConfig, name: str, spec: ElasticTailConfig) -> ElasticTailSource:
    urls = spec.url or None

    def client() -> Any:
        return connect(cfg.elasticsearch, urls=urls)

    return ElasticTailSource(name, index=spec.index, mapping=spec.mapping,
                             checkpoint_path=cfg.checkpoints_dir / f"{name}.json", client_factory=client,
                             describe=cluster_info, timestamp_field=spec.timestamp_field,
                             settle_seconds=spec.settle_seconds, start_from=spec.start_from,
                             poll_interval=spec.poll_interval, page_size=spec.page_size, system_id=spec.system)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def serve(cfg: SocConfig, console: Console) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # Alembic announces each of its plugins at start; the migrations it runs stay logged.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # One line per HTTP request to the cluster is noise; failures are reported by the store.
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    asyncio.run(_serve(cfg, console))


async def _serve(cfg: SocConfig, console: Console) -> None:
    db = open_database(cfg)
    topo = build_topology(cfg, db=db)
    runner = AsyncPipeline(topo.pipeline, cfg.pipeline.queue_batches)
    runner.start()
    sources = build_sources(cfg)
    for source in sources:
        await source.start()
    http_name, http_format = _http_source(cfg)
    tracker = ActivityTracker(learn_min_samples=cfg.health.learn_min_samples,
                              log_sources={name: spec.log_source for name, spec in cfg.sources.items()
                                           if spec.log_source})
    topo.pipeline.activity = tracker
    state = AppState(cfg=cfg, store=topo.store, registry=topo.registry, metrics=topo.metrics,
                     submit=runner.submit, db=db, ingest_source=http_name, ingest_format=http_format,
                     activity=tracker)
    _register_gauges(topo, runner, sources)
    alerts = _alert_store(db, topo)
    topo.set_on_alarm(spool_alert_handler(alerts))
    api_socket = socket.socket(socket.AF_INET6 if ":" in cfg.api.host else socket.AF_INET)
    api_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        api_socket.bind((cfg.api.host, cfg.api.port))
    except OSError as exc:
        raise ConfigError(cfg.config_path or "config/soc.yaml", "api.port", f"cannot listen: {exc}",
                          "chọn cổng khác (SOC_API_PORT) / pick another port (SOC_API_PORT)") from exc
    server = _Server(uvicorn.Config(create_app(state), log_level="warning", access_log=False, lifespan="off"))
    first_admin = ensure_first_admin(db)
    _print_banner(cfg, console, sources, api_socket.getsockname()[1], first_admin)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    scheduler = AsyncIOScheduler(timezone=cfg.timezone)
    scheduler.add_job(_status, "interval", seconds=cfg.pipeline.status_interval, args=[console, topo, runner],
                      id="status")
    scheduler.add_job(runner.call, "interval", seconds=cfg.pipeline.spool_replay_interval,
                      args=[topo.pipeline.replay_spools], id="spool-replay")
    scheduler.add_job(_retention, "interval", hours=1, args=[cfg, topo, runner], id="retention",
                      next_run_time=datetime.now(UTC) + timedelta(seconds=30))
    _schedule_detection(scheduler, topo, runner)
    _schedule_alert_mirror(scheduler, cfg, alerts)
    schedule_source_health(scheduler, state, alerts=alerts)
    schedule_notifications(scheduler, state)
    scheduler.start()

    tasks = [asyncio.create_task(s.run(runner.submit), name=f"source-{s.name}") for s in sources]
    tasks.append(asyncio.create_task(server.serve(sockets=[api_socket]), name="api"))
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not stopper and task.exception() is not None:
            log.error("%s stopped: %r", task.get_name(), task.exception())

    console.print(t("run.stopping"))
    scheduler.shutdown(wait=False)
    for source in sources:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(source.stop(), timeout=10)
    server.should_exit = True
    await asyncio.wait(tasks, timeout=10)
    for task in tasks:
        task.cancel()
    await runner.drain_and_stop()
    with contextlib.suppress(Exception):
        tracker.flush(db)
    topo.store.close()
    db.dispose()


def _schedule_detection(scheduler: AsyncIOScheduler, topo: Topology, runner: AsyncPipeline) -> None:
    """What streams cannot do alone: close correlation windows on time (``lt``
    conditions, quiet sources), reload changed rules, pick up exception changes and
    drop expired exceptions. All of it runs on the pipeline thread, between batches."""
    for transform in topo.pipeline.transforms:
        if transform.name != "detect":
            continue
        stage: Any = transform
        scheduler.add_job(runner.call, "interval", seconds=5, args=[stage.tick], id="correlation-windows")
        scheduler.add_job(runner.call, "interval", seconds=10, args=[stage.reload_if_changed], id="rules-reload")
        scheduler.add_job(runner.call, "interval", minutes=10, args=[stage.reload_exceptions],
                          id="exceptions-reload")


def _alert_store(db: Database, topo: Topology) -> AlertStore:
    """The SOC database's alert store: the detect stage's own, or one on ``db``."""
    for transform in topo.pipeline.transforms:
        store = getattr(transform, "alerts", None)
        if isinstance(store, AlertStore):
            return store
    return AlertStore(db.engine)


def _schedule_alert_mirror(scheduler: AsyncIOScheduler, cfg: SocConfig, alerts: AlertStore) -> None:
    """Alerts follow the SOC database into Elasticsearch for Kibana (the database
    stays the source of truth; a cluster outage only delays the copy)."""
    if cfg.store.type != "elasticsearch" or not cfg.elasticsearch.mirror_alerts:
        return
    mirror = AlertMirror.from_config(cfg, connect(cfg.elasticsearch), alerts.engine)

    async def sync() -> None:
        result = await asyncio.to_thread(mirror.sync)
        while result.more and not result.failed:
            result = await asyncio.to_thread(mirror.sync)

    scheduler.add_job(sync, "interval", seconds=5, id="alerts-mirror", max_instances=1, coalesce=True)


def _http_source(cfg: SocConfig) -> tuple[str, str | None]:
    for name, spec in cfg.sources.items():
        if isinstance(spec, HttpIngestSource):
            return name, None if spec.format == "auto" else spec.format
    return "http", None


def _register_gauges(topo: Topology, runner: AsyncPipeline, sources: list[Source]) -> None:
    gauges = topo.metrics.gauges
    gauges["pipeline_queue_batches"] = lambda: runner.depth
    for source in sources:
        topo.metrics.sources[source.name] = source.stats
    gauges["store_events"] = lambda: float(_store_stat(topo, "rows"))


def _store_stat(topo: Topology, key: str) -> Any:
    stats = getattr(topo.store, "stats", None)
    return stats().get(key, 0) if callable(stats) else 0


def _print_banner(cfg: SocConfig, console: Console, sources: list[Source], api_port: int,
                  first_admin: FirstAdmin | None) -> None:
    console.rule(f"[bold green]{t('run.started')}")
    rows: list[tuple[str, str]] = [(t("run.api"), f"http://{cfg.api.host}:{api_port}")]
    syslog_port = None
    for source in sources:
        if isinstance(source, SyslogUdpSource | SyslogTcpSource):
            proto = "UDP" if isinstance(source, SyslogUdpSource) else ("TLS" if source.tls else "TCP")
            rows.append((t("run.syslog", proto=proto), f"{source.host}:{source.bound_port}"))
            syslog_port = syslog_port or source.bound_port
        elif isinstance(source, FileTailSource):
            rows.append((t("run.files"), ", ".join(source.include)))
        elif isinstance(source, EvtxInboxSource):
            rows.append((t("run.evtx"), ", ".join(source.include)))
    if cfg.store.type == "elasticsearch":
        rows.append((t("run.store"), f"Elasticsearch {', '.join(cfg.elasticsearch.url)}"))
    else:
        rows.append((t("run.store"), f"SQLite {cfg.store_path}"))
    rows.append((t("run.data_dir"), str(cfg.data_dir)))
    for label, value in rows:
        console.print(f"[bold]{label}[/bold]: {value}", highlight=False, soft_wrap=True)
    if first_admin is not None:
        console.print(f"[bold yellow]{t('run.first_admin')}[/bold yellow]", highlight=False)
        for label, value in first_admin.lines():
            console.print(f"  [bold]{label}[/bold]: {value}", highlight=False, soft_wrap=True)
    else:
        console.print(t("run.admin_exists"))
    if syslog_port:
        line = ("<38>$(date '+%b %e %H:%M:%S') web01 sshd[4242]: "
                "Failed password for root from 203.0.113.7 port 50022 ssh2")
        console.print(f"[bold]{t('run.first_log')}[/bold]:\n  echo \"{line}\" > /dev/udp/127.0.0.1/{syslog_port}",
                      highlight=False, soft_wrap=True)
        console.print(f"[bold]{t('run.then_search')}[/bold]:\n  .venv/bin/soc events search 'source.ip:203.0.113.7'",
                      highlight=False, soft_wrap=True)


async def _status(console: Console, topo: Topology, runner: AsyncPipeline) -> None:
    m = topo.metrics
    dropped = m.total("dropped")
    console.print(t("run.status", received=m.total("received"), parsed=m.total("parsed"),
                    failed=m.total("parse_failures"), stored=m.total("stored"), spooled=m.total("spooled"),
                    dropped=dropped, rate=m.rate(), queue=runner.depth), highlight=False)


async def _retention(cfg: SocConfig, topo: Topology, runner: AsyncPipeline) -> None:
    cutoff = datetime.now(UTC) - timedelta(days=cfg.store.retention_days)
    if isinstance(topo.store, ElasticEventStore):
        # Per security level: ILM on Elasticsearch, our own deletes on OpenSearch.
        try:
            removed = await runner.call(topo.store.apply_retention)
        except StoreUnavailable as exc:
            log.warning("retention skipped, store unavailable / bỏ qua lưu giữ, kho không sẵn sàng: %s", exc)
            return
    else:
        removed = await runner.call(topo.store.delete_before, cutoff)
    if removed:
        log.info("retention: removed %d events older than %s", removed, cutoff.isoformat())
