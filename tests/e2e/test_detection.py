"""End to end: a brute force sent to ``soc run`` over syslog becomes one alert within
seconds, visible with ``soc alerts list``."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.harness import Service, admin_token, free_port, soc, wait_for, write_config

BRUTE_FORCE_RULE = "77240479-9b83-468c-a9b2-7e1638e29dc1"  # rules/linux/ssh_bruteforce.yml


def _alerts(config: Path) -> list[dict]:  # type: ignore[type-arg]
    out = soc(["alerts", "list", "--json"], config).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_ssh_brute_force_over_syslog_raises_one_alert_quickly(tmp_path: Path) -> None:
    api_port, syslog_port = free_port(), free_port()
    config = write_config(tmp_path, api_port=api_port, syslog_port=syslog_port, detect=True)
    service = Service(config, api_port, admin_token(config), tmp_path / "soc.log")
    try:
        service.wait_ready()
        start = datetime.now(UTC) - timedelta(seconds=30)
        lines = [
            f"<38>1 {(start + timedelta(seconds=2 * i)).isoformat()} web01 sshd 4242 - - "
            f"Failed password for invalid user admin{i} from 198.51.100.77 port {40000 + i} ssh2"
            for i in range(15)
        ]
        sent = time.monotonic()
        with socket.create_connection(("127.0.0.1", syslog_port)) as sock:
            sock.sendall("".join(f"{line}\n" for line in lines).encode())
        wait_for(lambda: any(a["rule_id"] == BRUTE_FORCE_RULE for a in _alerts(config)), timeout=30, interval=0.2)
        assert time.monotonic() - sent < 30
        alerts = [a for a in _alerts(config) if a["rule_id"] == BRUTE_FORCE_RULE]
    finally:
        service.stop()
    assert len(alerts) == 1
    alert = alerts[0]
    assert "198.51.100.77" in json.dumps(alert)
    assert "Credential Access" in alert["tactics"]
    assert "T1110" in " ".join(alert["techniques"])
