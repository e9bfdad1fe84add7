"""A throwaway PostgreSQL cluster from the system binaries, for the tests and the benchmarks.

``Cluster.start()`` runs ``initdb`` into a fresh temporary folder, starts the server with ``pg_ctl`` on a
free loopback port (its unix socket in that same folder), and ``stop()`` stops it and removes the
folder. No PostgreSQL service has to be running beforehand, and nothing outside the folder is touched.

PostgreSQL refuses to run as root, and these machines run the tests as root: then every server command
runs as the ``postgres`` user (``runuser -u postgres --``) in a folder that user owns. As anyone else
the commands run directly.

The binaries are looked for on ``PATH``, then in ``pg_config --bindir``, then in
``/usr/lib/postgresql/<version>/bin`` (newest first). When none is found, ``MissingBinaries`` says how to
install them: a test that needs PostgreSQL fails loudly rather than skipping (issue 15).

This module imports no database driver and no pytest, so that ``bench/pg_driver.py`` starts the very
same cluster; ``tests/pg_fixtures.py`` wraps it in fixtures.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MIN_VERSION = 15
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres, psql; version 15 or later) were not found on PATH, in "
    "`pg_config --bindir` or in /usr/lib/postgresql/*/bin. Install them with "
    "`apt-get install -y postgresql` (Debian/Ubuntu) or run `bash .ci/run`, which does."
)
# For tests only: nothing here has to survive a crash of the machine, so the server never waits for
# the disk. The benchmark passes durable=True to measure with the settings a hub would run with.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "checkpoint_timeout": "30min",
}
COMMON_SETTINGS = {
    "max_connections": "60",
    "shared_buffers": "128MB",
    # Nothing a test leaves open should hang the suite: a forgotten transaction is ended after a minute.
    "idle_in_transaction_session_timeout": "60s",
    "log_min_messages": "warning",
}


class MissingBinaries(RuntimeError):
    """No usable PostgreSQL server binaries on this machine; the message says how to install them."""


def _version_of(bindir: Path) -> int:
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    return int(match.group(1)) if match else 0


def find_bindir(candidates: Sequence[Path] | None = None) -> Path:
    """The folder holding initdb, pg_ctl and postgres, version 15 or later."""
    if candidates is None:
        found: list[Path] = []
        on_path = shutil.which("initdb")
        if on_path:
            # /usr/local/bin/initdb is often a link into the versioned folder: that folder holds pg_ctl too.
            found.append(Path(on_path).resolve().parent)
        if shutil.which("pg_config"):
            with contextlib.suppress(OSError, subprocess.CalledProcessError):
                out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
                found.append(Path(out.stdout.strip()))

        def version_key(p: Path) -> int:
            return int(p.parent.name) if p.parent.name.isdigit() else 0

        found += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version_key, reverse=True)
        candidates = found
    too_old: list[str] = []
    for bindir in candidates:
        if all((bindir / name).is_file() for name in ("initdb", "pg_ctl", "postgres", "psql")):
            version = _version_of(bindir)
            if version >= MIN_VERSION:
                return bindir
            too_old.append(f"{bindir} is version {version}")
    raise MissingBinaries(INSTALL_HINT + (f" (found only: {'; '.join(too_old)})" if too_old else ""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_root() -> bool:
    return os.geteuid() == 0


def _base_folder() -> str:
    """The system temporary folder, not pytest's: as root, the postgres user must be able to reach the
    cluster's folder, and pytest's folders (or a private $TMPDIR) are root's alone; /tmp then."""
    base = Path(tempfile.gettempdir())
    if _as_root() and not all(p.stat().st_mode & 0o001 for p in [base, *base.parents]):
        return "/tmp"
    return str(base)


@dataclass
class Cluster:
    """One temporary cluster: ``root`` holds ``data/`` (the cluster), the socket and ``server.log``."""

    durable: bool = False
    settings: dict[str, str] = field(default_factory=dict)
    bindir: Path | None = None
    root: Path | None = None
    port: int = 0

    # -- running the server's own commands --------------------------------------------------------

    def _run(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        assert self.bindir is not None and self.root is not None
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        if _as_root():
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        # cwd is the cluster's folder: the postgres user may not be allowed into the caller's folder.
        env = {**os.environ, "LC_ALL": "C", "PGTZ": "UTC"}
        run = subprocess.run(cmd, cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout)
        if run.returncode != 0:
            log = self.server_log()
            raise RuntimeError(f"`{' '.join(cmd)}` failed ({run.returncode}):\n{run.stdout}{run.stderr}{log}")
        return run

    def server_log(self) -> str:
        path = self.root / "server.log" if self.root else None
        if path is None or not path.exists():
            return ""
        return "\n--- server.log (end) ---\n" + path.read_text(errors="replace")[-3000:]

    # -- life cycle ---------------------------------------------------------------------------------

    def start(self) -> Cluster:
        self.bindir = self.bindir or find_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="sanji-pg-", dir=_base_folder()))
        try:
            if _as_root():
                shutil.chown(self.root, "postgres", "postgres")
            self._run(
                [
                    "initdb",
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                    *([] if self.durable else ["--no-sync"]),
                ]
            )
            self._start_server()
        except BaseException:
            self.remove()
            raise
        return self

    def _start_server(self) -> None:
        settings = {**COMMON_SETTINGS, **({} if self.durable else FAST_SETTINGS), **self.settings}
        # A free port can be taken by someone else between asking and binding: try a few.
        last: Exception | None = None
        for _ in range(3):
            self.port = free_port()
            options = [f"-p {self.port}", f"-k {self.root}", "-c listen_addresses=127.0.0.1"]
            options += [f"-c {k}={v}" for k, v in settings.items()]
            try:
                start = ["pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log_path)]
                self._run([*start, "-o", " ".join(options)])
                return
            except RuntimeError as exc:
                last = exc
        raise RuntimeError(f"PostgreSQL did not start in {self.root}: {last}")

    def stop(self) -> None:
        """Stop the server (fast: nothing here is kept) and remove the folder. Safe to call twice."""
        if self.root is None:
            return
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(["pg_ctl", "stop", "-w", "-t", "60", "-m", "immediate", "-D", str(self.data)])
        finally:
            self.remove()

    def remove(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    # -- where it is --------------------------------------------------------------------------------

    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        assert self.root is not None
        return self.root / "server.log"

    def dsn(self, database: str = "postgres") -> str:
        """Over loopback TCP, as hub processes on other machines will connect."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def socket_dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.root}&port={self.port}"

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])

    # -- databases ----------------------------------------------------------------------------------

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with the cluster's own psql (no driver needed); returns its unaligned output."""
        where = ["-h", str(self.root), "-p", str(self.port), "-U", "postgres", "-d", database]
        run = self._run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", *where, "-c", sql])
        return run.stdout.strip()

    def create_database(self, name: str, template: str = "template0") -> str:
        _check_name(name)
        _check_name(template)
        self.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        _check_name(name)
        # FORCE: a test that failed may have left a connection open; it must not keep the database.
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # -- backups, as a DBA takes them (the disaster-recovery tests) --------------------------------

    def dump(self, database: str, name: str) -> Path:
        """``pg_dump --format=custom`` of ``database`` into ``name`` in the cluster's folder (which the
        postgres user may write); its path."""
        _check_name(name)
        path = self.data.parent / f"{name}.dump"
        where = ["-h", str(self.root), "-p", str(self.port), "-U", "postgres"]
        self._run(["pg_dump", *where, "--format=custom", "--file", str(path), database])
        return path

    def restore(self, database: str, dump: Path) -> None:
        """Put ``dump`` back as README's disaster recovery says: the database dropped, made again empty,
        and ``pg_restore`` into it."""
        self.drop_database(database)
        self.create_database(database)
        where = ["-h", str(self.root), "-p", str(self.port), "-U", "postgres"]
        self._run(["pg_restore", *where, "--exit-on-error", "--dbname", database, str(dump)])


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"not a plain database name: {name!r}")


@contextlib.contextmanager
def running(*, durable: bool = False, settings: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A started cluster, stopped and removed afterwards whatever happens inside."""
    cluster = Cluster(durable=durable, settings=dict(settings or {}))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
