"""Start the real ``soc`` service and CLI as child processes on loopback ports."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import orjson

from tests.conftest import REPO


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (syslog listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return int(port)
    raise RuntimeError("no free port")


def write_config(directory: Path, *, api_port: int, syslog_port: int, inbox: Path | None = None,
                 detect: bool = False) -> Path:
    """A configuration for a test service; the inventory is the shipped example."""
    sources = [
        f"  syslog_udp: {{type: syslog_udp, host: 127.0.0.1, port: {syslog_port}}}",
        f"  syslog_tcp: {{type: syslog_tcp, host: 127.0.0.1, port: {syslog_port}}}",
        "  http: {type: http_ingest}",
    ]
    if inbox is not None:
        sources.append(f"  inbox: {{type: file, include: ['{inbox}/*.log'], poll_interval: 0.1}}")
    text = "\n".join([
        f"data_dir: {directory / 'var'}",
        f"systems_dir: {REPO / 'config' / 'systems'}",
        f"json_mappings_dir: {REPO / 'config' / 'json_mappings'}",
        f"api: {{host: 127.0.0.1, port: {api_port}}}",
        "pipeline: {status_interval: 5}",
        "sources:",
        *sources,
    ]) + "\n"
    if detect:
        rules = REPO / "rules"
        text += (
            "transforms:\n  - {type: parse}\n  - {type: enrich}\n"
            f"  - {{type: detect, options: {{rules: ['{rules}'], exceptions_dir: null,"
            f" placeholders: {{ioc_bad_ips: '{rules / 'iocs' / 'bad_ips.txt'}'}}}}}}\n"
        )
    path = directory / "soc.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def child_env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOC_")}
    env.update({"SOC_CONFIG": str(config), "SOC_LANG": "en", "PYTHONUNBUFFERED": "1", "COLUMNS": "200"})
    return env


def soc(args: Sequence[str], config: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the ``soc`` CLI as a user would."""
    return subprocess.run([sys.executable, "-m", "soc.cli.main", *args], env=child_env(config),
                          capture_output=True, text=True, check=check, timeout=300)


def admin_token(config: Path) -> str:
    """A working bearer token of the first administrator (created on the first call)."""
    out = soc(["admin", "token", "--reset"], config).stdout
    tokens = re.findall(r"soc_api_[A-Za-z0-9_-]+", out)
    assert len(tokens) == 1, out
    return tokens[0]


def ingest_key(config: Path, system: str) -> str:
    out = soc(["systems", "key", system], config).stdout
    match = re.search(r"soc_ingest_[A-Za-z0-9_-]+", out)
    assert match, out
    return match.group(0)


def search_json(config: Path, query: str = "*") -> list[dict]:  # type: ignore[type-arg]
    out = soc(["events", "search", query, "--json", "--limit", "1000000"], config).stdout
    return [orjson.loads(line) for line in out.splitlines() if line.strip()]


def count(config: Path, query: str = "*") -> int:
    return int(soc(["events", "search", query, "--count"], config).stdout.strip())


class Service:
    """``soc run`` in a child process."""

    def __init__(self, config: Path, api_port: int, token: str, log_path: Path) -> None:
        self.config, self.api_port, self.token = config, api_port, token
        self._log = open(log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([sys.executable, "-m", "soc.cli.main", "run"], env=child_env(config),
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self.log_path = log_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"soc run exited: {self.log_path.read_text(errors='replace')}")
            try:
                if httpx.get(f"{self.url}/healthz", headers=self.headers(), timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(self.log_path.read_text(errors="replace"))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def wait_for(predicate, timeout: float = 60, interval: float = 0.3) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError("condition not met in time")
