"""A throwaway PostgreSQL server that a test (or the replica drill) can stop and start again.

The same recipe as scripts/postgres.sh: a cluster of its own in a temp dir (initdb, trust
auth), listening on 127.0.0.1 only on a free port, run by pg_ctl, as the `postgres` user
when running as root (PostgreSQL refuses root). `stop` and `start` keep the port and the
data, so a client keeps the same URL across a restart. The directory is under the system
temp dir (the `postgres` user cannot enter pytest's, which belongs to root with mode 700).

`PostgresCluster.missing()` says why none can run here (no initdb/pg_ctl, no postgres
user), for a clean skip.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _bindir() -> Path | None:
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(pg_ctl).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name, reverse=True)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresError(RuntimeError):
    """The cluster could not be created, started or stopped (the log's tail says why)."""


class PostgresCluster:
    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            raise PostgresError("initdb/pg_ctl not found")
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="fournil-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._as_root = os.geteuid() == 0
        if self._as_root:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.root.chmod(0o700)

    @staticmethod
    def missing() -> str | None:
        """Why no cluster can run here, or None."""
        if _bindir() is None:
            return "PostgreSQL binaries (initdb, pg_ctl) not found"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no postgres user to run the server"
        return None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_root else []
        return subprocess.run(
            [*prefix, *command], cwd="/", capture_output=True, text=True, timeout=timeout, check=False
        )

    def _fail(self, what: str, result: subprocess.CompletedProcess[str]) -> PostgresError:
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        return PostgresError(f"{what} failed: {result.stderr.strip()[-2000:]} {tail}".strip())

    def init(self) -> PostgresCluster:
        initdb = self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip
        if initdb.returncode != 0:
            raise self._fail("initdb", initdb)
        for _ in range(3):  # a port found free can be taken before the server binds it
            self.port = _free_port()
            try:
                self.start()
                return self
            except PostgresError:
                continue
        raise PostgresError(f"the server did not start: {self.log.read_text(errors='replace')[-2000:]}")

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        started = self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
            "-o", options, "start",
        )  # fmt: skip
        if started.returncode != 0:
            raise self._fail("pg_ctl start", started)

    def stop(self, mode: str = "fast") -> None:
        """`fast`: sessions are ended and the server shuts down cleanly; `immediate`: like a crash."""
        pg_ctl = str(self.bindir / "pg_ctl")
        stopped = self._run(pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        if stopped.returncode != 0:
            raise self._fail("pg_ctl stop", stopped)

    def create_database(self, name: str) -> str:
        """A new, empty database on this server; its URL."""
        createdb = self.bindir / "createdb"
        made = self._run(str(createdb), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        if made.returncode != 0:
            raise self._fail(f"createdb {name}", made)
        return self.url(name)

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        """Stops the server if it runs (whatever it takes) and deletes its directory."""
        if self.running:
            try:
                self.stop("immediate")
            except (PostgresError, subprocess.TimeoutExpired):
                pid_file = self.data / "postmaster.pid"
                try:
                    os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGKILL)
                    time.sleep(0.5)
                except (OSError, ValueError, IndexError):
                    pass
        shutil.rmtree(self.root, ignore_errors=True)
