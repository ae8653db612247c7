"""Ingest throughput: parse → normalize → enrich → store, per format, on one core.

For each format the benchmark writes a file of N real lines (cycled from
``../shared/datasets``, each given a fresh timestamp so that the file reads like a
month of live logs in time order), then pushes it through the same pipeline ``soc ingest``
uses into a fresh embedded SQLite store, in a child process pinned to one CPU so
each format's peak memory is its own. It prints events/s, peak RSS and the RSS
growth between 10 % and 100 % of the input (memory must not grow with input size),
and ends with one JSON line of all figures.

    .venv/bin/python bench/ingest.py              # 1,000,000 lines per format
    .venv/bin/python bench/ingest.py --lines 100000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import cycle, islice
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATASETS = REPO.parent / "shared" / "datasets"

FORMATS: dict[str, tuple[str, list[str]]] = {
    # name: (declared format, sample files)
    "sshd_syslog": ("syslog", ["logs/loghub/OpenSSH/OpenSSH_2k.log.part1"]),
    "nginx": ("nginx", ["web/elastic-examples/apache_logs.part1"]),
    "fortigate": ("fortigate", ["firewall/elastic/test-fortinet.odd-lines.log"]),
    "windows_json": ("windows", [str(p.relative_to(DATASETS)) for p in sorted((DATASETS / "evtx").rglob("*.jsonl"))
                                 if p.name != "index.jsonl"]),
}


def _sample_lines(files: list[str]) -> list[str]:
    lines: list[str] = []
    for rel in files:
        with open(DATASETS / rel, encoding="utf-8", errors="replace") as fh:
            lines += [line.rstrip("\n") for line in fh if line.strip()]
    if not lines:
        raise SystemExit(f"no sample lines in {files}")
    return lines


def _fortigate_lines() -> list[str]:
    lines = _sample_lines(FORMATS["fortigate"][1])
    wazuh = DATASETS / "firewall/wazuh/fortigate.jsonl"
    lines += [json.loads(line)["log"] for line in wazuh.read_text(encoding="utf-8").splitlines()]
    return lines


_CLF_TIME = re.compile(r"\[\d{1,2}/\w{3}/\d{4}:[^\]]+\]")
_FGT_DATE = re.compile(r"date=\S+ time=\S+")
_FGT_EVENTTIME = re.compile(r"eventtime=\d+")
_WIN_TIME = re.compile(r'"SystemTime":"[^"]+"')


def retime(fmt: str, line: str, when: datetime) -> str:
    """The line with its own timestamp replaced by ``when``: live logs arrive in time
    order, while cycling a few thousand samples would repeat the same days a
    thousand times over and turn the store's time index into random inserts."""
    if fmt == "nginx":
        return _CLF_TIME.sub(when.strftime("[%d/%b/%Y:%H:%M:%S +0000]"), line, count=1)
    if fmt == "sshd_syslog":
        return when.strftime("%b %e %H:%M:%S") + line[15:]
    if fmt == "fortigate":
        line = _FGT_DATE.sub(when.strftime("date=%Y-%m-%d time=%H:%M:%S"), line, count=1)
        return _FGT_EVENTTIME.sub(f"eventtime={int(when.timestamp())}", line, count=1)
    return _WIN_TIME.sub(when.strftime('"SystemTime":"%Y-%m-%dT%H:%M:%S.%fZ"'), line, count=1)


def write_input(fmt: str, n: int, directory: Path) -> Path:
    samples = _fortigate_lines() if fmt == "fortigate" else _sample_lines(FORMATS[fmt][1])
    path = directory / f"{fmt}.log"
    # A month of logs, ending a day ago, evenly spread.
    start = datetime.now(UTC) - timedelta(days=31)
    step = timedelta(days=30) / max(n, 1)
    with open(path, "w", encoding="utf-8") as out:
        for i, line in enumerate(islice(cycle(samples), n)):
            out.write(retime(fmt, line, start + i * step))
            out.write("\n")
    return path


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def run_one(fmt: str, path: str, n: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    # One core, and not CPU 0, which takes most interrupts on these machines.
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    from collectors.sources.file_tail import iter_file_batches
    from soc.config import load_config
    from soc.pipeline.build import build_topology

    data_dir = Path(path).parent / f"data-{fmt}"
    os.environ["SOC_DATA_DIR"] = str(data_dir)
    from soc.runtime import tune_gc

    cfg = load_config(REPO / "config" / "soc.yaml")
    topo = build_topology(cfg)
    tune_gc()  # as `soc run` and `soc ingest` do
    declared = FORMATS[fmt][0]
    batches: Iterator = iter_file_batches(Path(path), batch_size=cfg.pipeline.batch_size, source="bench",
                                          format=declared)
    done = stored = failed = 0
    rss_at_10 = 0.0
    start = time.perf_counter()
    for batch in batches:
        result = topo.pipeline.process(batch)
        done += result.received
        stored += result.stored
        failed += result.failed
        if not rss_at_10 and done >= n // 10:
            rss_at_10 = _rss_mb()
    elapsed = time.perf_counter() - start
    rss_end = _rss_mb()
    topo.pipeline.close()
    topo.store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put({"format": fmt, "events": done, "stored": stored, "failed": failed, "seconds": elapsed,
             "eps": done / elapsed if elapsed else 0.0, "peak_rss_mb": peak,
             "rss_growth_mb": rss_end - rss_at_10,
             "store_mb": cfg.store_path.stat().st_size / 1e6})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines per format (default 1,000,000)")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset")
    args = parser.parse_args()
    results = []
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="soc-bench-") as tmp:
        for fmt in args.formats.split(","):
            path = write_input(fmt, args.lines, Path(tmp))
            queue = ctx.Queue()
            proc = ctx.Process(target=run_one, args=(fmt, str(path), args.lines, queue))
            proc.start()
            result = queue.get()
            proc.join()
            results.append(result)
            print(f"{fmt:<13} {result['events']:>10,} events  {result['eps']:>10,.0f} events/s  "
                  f"failed {result['failed']:>7,}  peak RSS {result['peak_rss_mb']:>7.1f} MB  "
                  f"RSS growth 10%→100% {result['rss_growth_mb']:>+6.1f} MB  store {result['store_mb']:>8.1f} MB",
                  flush=True)
            path.unlink()
    figures: dict[str, float] = {}
    for r in results:
        figures[f"{r['format']}_eps"] = round(r["eps"], 1)
        figures[f"{r['format']}_peak_rss_mb"] = round(r["peak_rss_mb"], 1)
        figures[f"{r['format']}_rss_growth_mb"] = round(r["rss_growth_mb"], 1)
        figures[f"{r['format']}_failed"] = r["failed"]
    figures["lines_per_format"] = args.lines
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
