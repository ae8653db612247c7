"""A file is tailed while the service is killed mid-way and started again: every
line is stored exactly once."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path

from tests.conftest import DATASETS
from tests.e2e.harness import Service, admin_token, count, free_port, search_json, wait_for, write_config

SSHD = DATASETS / "logs" / "loghub" / "OpenSSH" / "OpenSSH_2k.log.part1"


def _append_slowly(path: Path, lines: list[str], per_chunk: int, pause: float) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for start in range(0, len(lines), per_chunk):
            fh.write("".join(f"{line}\n" for line in lines[start:start + per_chunk]))
            fh.flush()
            time.sleep(pause)


def test_killed_and_restarted_service_stores_every_tailed_line_once(tmp_path: Path) -> None:
    lines = SSHD.read_text(encoding="utf-8").splitlines()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    log_file = inbox / "auth.log"
    log_file.write_text("", encoding="utf-8")
    api_port, syslog_port = free_port(), free_port()
    config = write_config(tmp_path, api_port=api_port, syslog_port=syslog_port, inbox=inbox)
    token = admin_token(config)

    first = Service(config, api_port, token, tmp_path / "first.log")
    first.wait_ready()
    writer = threading.Thread(target=_append_slowly, args=(log_file, lines, 20, 0.05))
    writer.start()
    wait_for(lambda: count(config, "input.type:file") >= 200, timeout=60, interval=0.1)
    first.stop(signal.SIGKILL)  # a crash, mid-file: no graceful flush of checkpoints
    writer.join()

    second = Service(config, api_port, token, tmp_path / "second.log")
    try:
        second.wait_ready()
        wait_for(lambda: count(config, "input.type:file") >= len(lines), timeout=120)
        time.sleep(1.0)  # anything re-read late would show up now
        stored = search_json(config, "input.type:file")
    finally:
        second.stop()
    assert Counter(e["event"]["original"] for e in stored) == Counter(lines)
    assert len({e["event"]["id"] for e in stored}) == len(lines)


def test_graceful_stop_and_restart_neither_loses_nor_repeats(tmp_path: Path) -> None:
    lines = SSHD.read_text(encoding="utf-8").splitlines()[:400]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    log_file = inbox / "auth.log"
    log_file.write_text("".join(f"{line}\n" for line in lines[:200]), encoding="utf-8")
    api_port, syslog_port = free_port(), free_port()
    config = write_config(tmp_path, api_port=api_port, syslog_port=syslog_port, inbox=inbox)
    token = admin_token(config)

    first = Service(config, api_port, token, tmp_path / "first.log")
    first.wait_ready()
    wait_for(lambda: count(config, "input.type:file") >= 200)
    assert first.stop(signal.SIGTERM) == 0
    _append_slowly(log_file, lines[200:], 200, 0)

    second = Service(config, api_port, token, tmp_path / "second.log")
    try:
        second.wait_ready()
        wait_for(lambda: count(config, "input.type:file") >= len(lines))
        time.sleep(1.0)
        stored = search_json(config, "input.type:file")
    finally:
        second.stop()
    assert Counter(e["event"]["original"] for e in stored) == Counter(lines)
