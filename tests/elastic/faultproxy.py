"""A small HTTP proxy on 127.0.0.1 that injects the failures a busy cluster gives.

It forwards every request to the upstream server and, by plan:

* answers whole requests with 429 or 503 without forwarding them
  (``fail_requests(n, status)``), as a cluster under load or restarting does;
* rejects single documents inside ``_bulk`` requests with 429
  (``reject_items(every)``): those documents are *not* forwarded and the answer
  carries an ``es_rejected_execution_exception`` item at their position, as
  Elasticsearch does when a write thread pool queue is full;
Counters tell the tests what happened.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FaultPlan:
    fail_next: int = 0
    fail_status: int = 503
    reject_every: int = 0
    """Reject every n-th document of bulk requests (0: none)."""
    reject_budget: int = 0
    """How many documents may still be rejected."""


@dataclass
class FaultCounters:
    requests: int = 0
    failed_requests: int = 0
    rejected_items: int = 0
    forwarded_items: int = 0


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.plan = FaultPlan()
        self.counters = FaultCounters()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = proxy._serve(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    # -- plans ---------------------------------------------------------------------
    def fail_requests(self, n: int, status: int = 503) -> None:
        with self._lock:
            self.plan.fail_next, self.plan.fail_status = n, status

    def reject_items(self, every: int, budget: int = 1_000_000) -> None:
        with self._lock:
            self.plan.reject_every, self.plan.reject_budget = every, budget

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the proxy -----------------------------------------------------------------
    def _serve(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.counters.requests += 1
            if self.plan.fail_next > 0:
                self.plan.fail_next -= 1
                self.counters.failed_requests += 1
                status = self.plan.fail_status
                error = {"error": {"type": "es_rejected_execution_exception" if status == 429
                                   else "unavailable_shards_exception", "reason": "injected by the fault proxy"},
                         "status": status}
                return status, {"Content-Type": "application/json"}, json.dumps(error).encode()
            reject_every = self.plan.reject_every
        rejected_at: list[int] = []
        if reject_every and "_bulk" in path.split("?")[0] and method in ("POST", "PUT"):
            body, rejected_at = self._drop_items(body, reject_every)
        status, resp_headers, payload = self._forward(method, path, headers, body)
        if rejected_at and status == 200:
            payload = self._splice_rejections(payload, rejected_at)
        return status, resp_headers, payload

    def _drop_items(self, body: bytes, every: int) -> tuple[bytes, list[int]]:
        lines = [line for line in body.split(b"\n") if line]
        kept: list[bytes] = []
        rejected: list[int] = []
        i = 0
        position = 0
        while i < len(lines):
            action = json.loads(lines[i])
            op = next(iter(action))
            width = 1 if op == "delete" else 2
            with self._lock:
                reject = (position + 1) % every == 0 and self.plan.reject_budget > 0
                if reject:
                    self.plan.reject_budget -= 1
                    self.counters.rejected_items += 1
                else:
                    self.counters.forwarded_items += 1
            if reject:
                rejected.append(position)
            else:
                kept.extend(lines[i:i + width])
            i += width
            position += 1
        return (b"\n".join(kept) + b"\n") if kept else b"", rejected

    @staticmethod
    def _splice_rejections(payload: bytes, rejected_at: list[int]) -> bytes:
        data = json.loads(payload or b"{}")
        items = list(data.get("items") or [])
        for position in rejected_at:
            items.insert(position, {"create": {"status": 429, "error": {
                "type": "es_rejected_execution_exception", "reason": "rejected by the fault proxy"}}})
        data["items"] = items
        data["errors"] = True
        return json.dumps(data).encode()

    def _forward(self, method: str, path: str, headers: dict[str, str],
                 body: bytes) -> tuple[int, dict[str, str], bytes]:
        if not body and "_bulk" in path:
            # Every document of the request was rejected: nothing to send upstream.
            return 200, {"Content-Type": "application/json"}, b'{"errors":false,"items":[],"took":0}'
        keep = {k: v for k, v in headers.items() if k.lower() in ("content-type", "accept", "authorization")}
        req = urllib.request.Request(self.upstream + path, data=body if method not in ("GET", "HEAD") or body
                                     else None, method=method, headers=keep)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
