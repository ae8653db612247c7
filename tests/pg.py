"""A real PostgreSQL server from Debian's package, started by the tests on loopback.

``initdb`` into a fresh directory, ``pg_ctl start`` on 127.0.0.1 and a free port,
one template database migrated to head once, and a database per test cloned from it
(``CREATE DATABASE … TEMPLATE``: milliseconds, where migrating would take a second).
PostgreSQL refuses to run as root, so as root the server runs as the ``postgres``
user the package creates. fsync is off for tests (their databases are thrown away);
the benchmark starts a durable server (``durable=True``) so its write latencies are real.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BINDIR_ENV = "SOC_TEST_PG_BINDIR"


def find_bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: ``$SOC_TEST_PG_BINDIR``, Debian's
    ``/usr/lib/postgresql/<version>/bin`` (newest) or ``PATH``."""
    env = os.environ.get(BINDIR_ENV)
    if env:
        return Path(env)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (make test installs Debian's postgresql package)")
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="soc-pg-"))
        self.port = _free_port()
        self._names = itertools.count(1)
        self._user: pwd.struct_passwd | None = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._user is not None:
            cmd = ["runuser", "-u", self._user.pw_name, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        os.chmod(self.base, 0o755)
        data, sockets = self.base / "data", self.base / "sock"
        data.mkdir()
        sockets.mkdir()
        if self._user is not None:
            for path in (data, sockets):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
            os.chown(self.base, self._user.pw_uid, self._user.pw_gid)
        self._run("initdb", "-D", str(data), "-U", "soc", "--auth=trust", "-E", "UTF8", "--no-locale")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {sockets} -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        else:
            options += " -c shared_buffers=512MB -c effective_cache_size=4GB -c work_mem=32MB"
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.base / "server.log"), "-w", "start")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.base / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://soc@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE)."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="soc", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self, template: str | None = None) -> str:
        """A new empty database (or a copy of ``template``); returns its name."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        for attempt in range(20):
            try:
                self.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
                return name
            except psycopg.errors.ObjectInUse:
                # Autovacuum may be connected to the template for a moment.
                if attempt == 19:
                    raise
                time.sleep(0.1)
        return name

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
