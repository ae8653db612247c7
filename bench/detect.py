"""Detection throughput and alert latency.

1. events/s of the detector (rules + correlation) with our rule pack on mixed events
   of every kind we parse (sshd, web, FortiGate, Cisco ASA, Windows, Suricata);
2. events/s with every loadable SigmaHQ Windows rule on Windows events;
3. latency from a syslog line's arrival to its alert being stored (p50/p99), with
   `soc run` receiving a steady 5,000 events/s over TCP syslog.

Events are parsed once beforehand (parsing is measured by bench/ingest.py); the
detector runs pinned to one CPU. The peers named by the issue poll on a schedule
(ElastAlert2 every minute by default, Elastic Security rules every 5 minutes): their
latency is that interval plus the query, printed beside ours for comparison.

    .venv/bin/python bench/detect.py [--events 200000] [--latency-seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from itertools import cycle, islice
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATASETS = REPO.parent / "shared" / "datasets"

MIXED = [
    ("logs/loghub/OpenSSH/OpenSSH_2k.log.part1", None),
    ("web/apache-http-logs/acunetix.txt", None),
    ("web/elastic-examples/apache_logs.part1", None),
    ("firewall/elastic/test-fortinet.odd-lines.log", None),
    ("suricata/elastic/test-eve-small.log", None),
]
"""Text samples of the mixed stream (with the Wazuh firewall lines and all EVTX records)."""


def _parse_lines(lines: list[str]) -> list[dict[str, Any]]:
    from zoneinfo import ZoneInfo

    from collectors.batch import Batch, Origin
    from soc.pipeline.stages import ParseStage

    stage = ParseStage(ZoneInfo("Asia/Ho_Chi_Minh"), {})
    events, _ = stage.run(Batch(Origin("bench", "cli"), lines))
    return events


def mixed_events() -> list[dict[str, Any]]:
    lines: list[str] = []
    for rel, _ in MIXED:
        text = (DATASETS / rel).read_text(encoding="utf-8", errors="replace")
        lines += [line for line in text.splitlines() if line.strip()]
    for rel in ("firewall/wazuh/cisco_asa.jsonl", "firewall/wazuh/fortigate.jsonl"):
        lines += [json.loads(line)["log"] for line in (DATASETS / rel).read_text(encoding="utf-8").splitlines()]
    return _parse_lines(lines) + windows_events()


def windows_events() -> list[dict[str, Any]]:
    lines: list[str] = []
    for path in sorted((DATASETS / "evtx").rglob("*.jsonl")):
        if path.name != "index.jsonl":
            lines += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return _parse_lines(lines)


def throughput(ruleset: Any, events: list[dict[str, Any]], n: int) -> tuple[float, int]:
    from soc.detect.runner import Detector

    detector = Detector(ruleset)
    stream = list(islice(cycle(events), n))
    fired = 0
    start = time.perf_counter()
    for i in range(0, n, 1000):
        fired += len(detector.process(stream[i:i + 1000]))
    elapsed = time.perf_counter() - start
    return n / elapsed, fired


def sigmahq_windows() -> Any:
    from soc.detect.loader import RuleSet, load_rules

    full = load_rules([DATASETS / "sigma-rules" / "sigmahq-rules.zip"])
    windows = [r for r in full.rules if r.info.logsource.get("product") == "windows"]
    return RuleSet(rules=windows), len(full.rules), len(full.skipped)


# --- latency -------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def latency(seconds: float, rate: int) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="soc-bench-latency-"))
    api_port, syslog_port = _free_port(), _free_port()
    config = tmp / "soc.yaml"
    config.write_text("\n".join([
        f"data_dir: {tmp / 'var'}",
        f"systems_dir: {REPO / 'config' / 'systems'}",
        f"json_mappings_dir: {REPO / 'config' / 'json_mappings'}",
        f"api: {{host: 127.0.0.1, port: {api_port}}}",
        "sources:",
        f"  syslog_tcp: {{type: syslog_tcp, host: 127.0.0.1, port: {syslog_port}}}",
        "transforms:",
        "  - {type: parse}",
        "  - {type: enrich}",
        f"  - {{type: detect, options: {{rules: ['{REPO / 'rules'}'], exceptions_dir: null,"
        f" placeholders: {{ioc_bad_ips: '{REPO / 'rules' / 'iocs' / 'bad_ips.txt'}'}}}}}}",
    ]) + "\n")
    env = {**os.environ, "SOC_CONFIG": str(config), "SOC_LANG": "en"}
    log = open(tmp / "soc.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([sys.executable, "-m", "soc.cli.main", "run"], env=env, stdout=log, stderr=log)
    try:
        deadline = time.time() + 60
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", syslog_port))
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError((tmp / "soc.log").read_text()) from None
                time.sleep(0.2)
        background = [line.split(": ", 1)[1] for line in
                      (DATASETS / "logs/loghub/OpenSSH/OpenSSH_2k.log.part1").read_text().splitlines()
                      if ": " in line]
        feed = cycle(background)
        markers = 0
        tick = 0.01
        per_tick = max(1, rate // 100)
        start = time.time()
        next_tick = start
        while time.time() - start < seconds:
            now = datetime.now(UTC)
            stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
            chunk = [f"<38>1 {stamp} srv-bench sshd 4242 - - {next(feed)}" for _ in range(per_tick - 1)]
            # One marker a tick: a root login from a new outside address is a new alert.
            markers += 1
            ip = f"203.0.{(markers // 250) % 250}.{markers % 250 + 1}"
            chunk.append(f"<38>1 {stamp} srv-bench sshd 4242 - - Accepted password for root from {ip} "
                         f"port 50022 ssh2")
            sock.sendall("".join(line + "\n" for line in chunk).encode())
            next_tick += tick
            delay = next_tick - time.time()
            if delay > 0:
                time.sleep(delay)
        sent_seconds = time.time() - start
        sock.close()
        time.sleep(3)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()
    db = sqlite3.connect(tmp / "var" / "soc.db")
    rows = db.execute("SELECT first_seen, created_at FROM alerts WHERE rule_id = ?",
                      ("047606cf-fc61-4ab0-a9cd-0dadd3d48151",)).fetchall()
    lat = sorted((_ts(created) - _ts(first)) for first, created in rows)
    if not lat:
        raise RuntimeError("no alert stored: " + (tmp / "soc.log").read_text()[-2000:])
    return {"sent_rate": (markers * per_tick) / sent_seconds, "alerts": len(lat), "markers": markers,
            "p50_ms": 1000 * statistics.median(lat), "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))]}


def _ts(value: str) -> float:
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=5000)
    args = parser.parse_args()
    from soc.detect.loader import load_rules
    from soc.detect.stage import read_placeholders
    from soc.runtime import tune_gc

    placeholders = read_placeholders({"ioc_bad_ips": REPO / "rules" / "iocs" / "bad_ips.txt"})
    pack = load_rules([REPO / "rules"], placeholders=placeholders)
    mixed = mixed_events()
    windows = windows_events()
    hq, hq_loaded, hq_skipped = sigmahq_windows()
    tune_gc()
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    pack_eps, pack_fired = throughput(pack, mixed, args.events)
    print(f"our rule pack ({len(pack.rules)} rules, {len(pack.correlations)} correlations) on mixed events: "
          f"{pack_eps:,.0f} events/s ({pack_fired:,} detections)", flush=True)
    hq_eps, hq_fired = throughput(hq, windows, args.events)
    print(f"SigmaHQ Windows rules ({len(hq.rules)} of {hq_loaded} loaded, {hq_skipped} skipped) on Windows events: "
          f"{hq_eps:,.0f} events/s ({hq_fired:,} detections)", flush=True)
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    lat = latency(args.latency_seconds, args.rate)
    print(f"syslog arrival → alert stored at {lat['sent_rate']:,.0f} events/s: p50 {lat['p50_ms']:.0f} ms, "
          f"p99 {lat['p99_ms']:.0f} ms ({lat['alerts']:.0f} alerts of {lat['markers']:.0f} markers)", flush=True)
    print("peers (query-polling, by their default schedules): ElastAlert2 up to 60,000 ms + query time; "
          "Elastic Security up to 300,000 ms + query time")
    print(json.dumps({
        "pack_rules": len(pack.rules), "pack_correlations": len(pack.correlations), "pack_eps": round(pack_eps, 1),
        "sigmahq_windows_rules": len(hq.rules), "sigmahq_windows_eps": round(hq_eps, 1),
        "latency_rate_eps": round(lat["sent_rate"], 1), "latency_p50_ms": round(lat["p50_ms"], 1),
        "latency_p99_ms": round(lat["p99_ms"], 1), "latency_alerts": lat["alerts"],
        "elastalert2_poll_ms": 60000, "elastic_security_poll_ms": 300000,
    }))


if __name__ == "__main__":
    main()
