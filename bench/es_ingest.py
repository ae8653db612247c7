"""Shipping to Elasticsearch: the full pipeline against elasticsearch-py's own bulk helper.

Side by side, in one run, on the same server and the same events:

* **pipeline**: raw log lines (sshd syslog, nginx, FortiGate, Windows JSON — real
  samples from ``../shared/datasets``, re-timed to read like live logs) through the
  SOC's whole topology — parse → enrich → detect (the Sigma rule pack) → the
  Elasticsearch store (bulk, retries, dead letters);
* **ceiling**: ``elasticsearch.helpers.streaming_bulk`` shipping the very documents
  the pipeline produced, pre-built, to the same indices with the same templates.

The server is ``osmem-server`` (an in-memory OpenSearch-compatible server; no real
Elasticsearch can run here), driven through the tests' transport adapter. Each
side runs twice, alternating, on a fresh copy-on-write clone; the better run of
each is reported (this VM's speed drifts). Ends with one JSON line of the figures.

    .venv/bin/python bench/es_ingest.py                # 10,000 events
    .venv/bin/python bench/es_ingest.py --events 50000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import ingest as ingest_bench  # noqa: E402
import orjson  # noqa: E402
from elasticsearch import helpers  # noqa: E402
from osmem_server import OsmemServer  # noqa: E402

from tests.elastic.osmem import OsmemNode  # noqa: E402

MIX = ("sshd_syslog", "nginx", "fortigate", "windows_json")


def _inputs(n: int, directory: Path) -> list[tuple[str, Path]]:
    per = max(n // len(MIX), 1)
    return [(fmt, ingest_bench.write_input(fmt, per, directory)) for fmt in MIX]


def _topology(directory: Path, url: str, sinks: str | None = None) -> Any:
    os.environ["SOC_DATA_DIR"] = str(directory)
    os.environ["SOC_ELASTICSEARCH_URL"] = url
    from soc.config import FileSinkConfig, load_config
    from soc.pipeline.build import build_topology

    cfg = load_config(REPO / "config" / "soc.yaml")
    if sinks == "file":
        cfg = cfg.model_copy(update={"sinks": {"archive": FileSinkConfig(type="file", path=Path("events.ndjson"))}})
    return cfg, build_topology(cfg)


def _feed(topo: Any, inputs: list[tuple[str, Path]], batch_size: int) -> tuple[int, int, float]:
    from collectors.sources.file_tail import iter_file_batches

    iterators = [iter_file_batches(path, batch_size=batch_size, source="bench",
                                   format=ingest_bench.FORMATS[fmt][0]) for fmt, path in inputs]
    received = stored = 0
    start = time.perf_counter()
    # Interleave the formats batch by batch, as a live SOC receives them.
    while iterators:
        for it in list(iterators):
            batch = next(it, None)
            if batch is None:
                iterators.remove(it)
                continue
            result = topo.pipeline.process(batch)
            received += result.received
            stored += result.stored
    return received, stored, time.perf_counter() - start


def prebuild(inputs: list[tuple[str, Path]], directory: Path, batch_size: int) -> list[dict[str, Any]]:
    """The documents the pipeline ships, built once without a server (file sink)."""
    from soc.store.elastic.store import ElasticEventStore

    cfg, topo = _topology(directory / "prebuild", "http://127.0.0.1:9", sinks="file")
    _feed(topo, inputs, batch_size)
    topo.pipeline.close()
    namer = ElasticEventStore(cfg.elasticsearch)
    actions = []
    with open(cfg.data_dir / "events.ndjson", "rb") as fh:
        for line in fh:
            event = orjson.loads(line)
            actions.append({"_op_type": "create", "_index": namer.stream_for(event),
                            "_id": event["event"]["id"], "_source": event})
    return actions


def run_ceiling(server: OsmemServer, actions: list[dict[str, Any]], batch_size: int) -> dict[str, float]:
    from soc.config import ElasticsearchConfig
    from soc.store.elastic import templates
    from soc.store.elastic.connection import cluster_info, connect

    clone = server.clone()
    try:
        cfg = ElasticsearchConfig(url=[clone.url], request_timeout=120)
        client = connect(cfg)
        templates.install(client, cluster_info(client), cfg)
        start = time.perf_counter()
        ok = 0
        for success, _item in helpers.streaming_bulk(client, actions, chunk_size=batch_size,
                                                     max_chunk_bytes=cfg.bulk.max_bytes, raise_on_error=False):
            ok += bool(success)
        elapsed = time.perf_counter() - start
        return {"events": len(actions), "stored": ok, "seconds": elapsed, "eps": len(actions) / elapsed}
    finally:
        clone.close()


def run_pipeline(server: OsmemServer, inputs: list[tuple[str, Path]], directory: Path,
                 batch_size: int) -> dict[str, float]:
    clone = server.clone()
    try:
        _cfg, topo = _topology(directory, clone.url)
        _ = topo.store.info  # connect and install templates before the clock starts
        received, stored, elapsed = _feed(topo, inputs, batch_size)
        stats = topo.store.stats()
        topo.pipeline.close()
        topo.store.close()
        return {"events": received, "stored": stored, "seconds": elapsed, "eps": received / elapsed,
                "dead_lettered": stats["dead_lettered"], "retried": stats["retried"]}
    finally:
        clone.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000, help="events per run (default 10,000)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side, alternating (default 2)")
    args = parser.parse_args()
    from soc.runtime import tune_gc
    from soc.store.elastic.connection import set_node_class

    set_node_class(OsmemNode)
    tune_gc()
    batch_size = 2000
    with tempfile.TemporaryDirectory(prefix="soc-es-bench-") as tmp_name:
        tmp = Path(tmp_name)
        inputs = _inputs(args.events, tmp)
        print(f"building {args.events:,} documents once for the ceiling …", flush=True)
        actions = prebuild(inputs, tmp, batch_size)
        server = OsmemServer.start(japanese=False)
        try:
            ceilings, pipelines = [], []
            for round_no in range(args.rounds):
                ceilings.append(run_ceiling(server, actions, batch_size))
                print(f"round {round_no + 1}: streaming_bulk {ceilings[-1]['eps']:,.0f} events/s", flush=True)
                pipelines.append(run_pipeline(server, inputs, tmp / f"run{round_no}", batch_size))
                print(f"round {round_no + 1}: pipeline       {pipelines[-1]['eps']:,.0f} events/s", flush=True)
        finally:
            server.close()
    ceiling = max(ceilings, key=lambda r: r["eps"])
    pipeline = max(pipelines, key=lambda r: r["eps"])
    ratio = pipeline["eps"] / ceiling["eps"] if ceiling["eps"] else 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(f"{'':34}{'events':>10}{'stored':>10}{'seconds':>10}{'events/s':>12}")
    print(f"{'pipeline parse→detect→ship':34}{pipeline['events']:>10,}{pipeline['stored']:>10,}"
          f"{pipeline['seconds']:>10.2f}{pipeline['eps']:>12,.0f}")
    print(f"{'helpers.streaming_bulk (ceiling)':34}{ceiling['events']:>10,}{ceiling['stored']:>10,}"
          f"{ceiling['seconds']:>10.2f}{ceiling['eps']:>12,.0f}")
    print(f"pipeline / ceiling: {ratio:.0%}  (aim ≥ 70 %)   dead letters: {pipeline['dead_lettered']}   "
          f"peak RSS of this process: {peak:.0f} MB")
    print(json.dumps({"events": pipeline["events"], "pipeline_eps": round(pipeline["eps"]),
                      "streaming_bulk_eps": round(ceiling["eps"]), "ratio": round(ratio, 3),
                      "dead_lettered": pipeline["dead_lettered"], "peak_rss_mb": round(peak)}))


if __name__ == "__main__":
    main()
