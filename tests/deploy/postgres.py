"""A private PostgreSQL server for tests: Debian's binaries, a data directory and socket under a temporary
directory owned by the ``postgres`` system user (PostgreSQL refuses to run as root), a free port on loopback."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PG_BIN_ROOT = Path("/usr/lib/postgresql")
SYSTEM_USER = "postgres"
DATABASE = "prefect"


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    versions = sorted(
        (p for p in PG_BIN_ROOT.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return versions[-1] if versions else None


def missing_reason() -> str | None:
    if pg_bin() is None:
        return (
            f"PostgreSQL is not installed under {PG_BIN_ROOT} (apt-get install postgresql; `make test` does)"
        )
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        return f"no {SYSTEM_USER!r} system user (Debian's postgresql package creates it)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Postgres:
    port: int
    socket_dir: Path
    database: str

    @property
    def postmaster_pid(self) -> int:
        """The server's main process (its backends are its children): the first line of postmaster.pid."""
        return int((self.socket_dir.parent / "data" / "postmaster.pid").read_text().split()[0])

    @property
    def url(self) -> str:
        """An SQLAlchemy URL for Prefect (asyncpg over TCP on loopback; trust auth for the local user)."""
        return f"postgresql+asyncpg://{SYSTEM_USER}@127.0.0.1:{self.port}/{self.database}"


def _as_postgres(*argv: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    prefix = [] if os.geteuid() != 0 else ["runuser", "-u", SYSTEM_USER, "--"]
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [*prefix, *map(str, argv)], check=True, capture_output=True, text=True, **kwargs
    )


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    """Start a throw-away PostgreSQL with the ``pg_trgm`` extension in database ``prefect``; stop it after."""
    bin_dir = pg_bin()
    assert bin_dir is not None, missing_reason()
    # Not under pytest's tmp dirs: those are private to root, and the server runs as `postgres`.
    top = Path(tempfile.mkdtemp(prefix="codex-pg-"))
    user = pwd.getpwnam(SYSTEM_USER)
    if os.geteuid() == 0:
        os.chown(top, user.pw_uid, user.pw_gid)
    data, sockets = top / "data", top / "sock"
    _as_postgres("mkdir", sockets)
    _as_postgres(bin_dir / "initdb", "-D", data, "-U", SYSTEM_USER, "--auth=trust", "-E", "UTF8", "--no-sync")
    port = _free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    _as_postgres(bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", top / "server.log", "-w", "start")
    try:
        psql: list[str | Path] = [bin_dir / "psql", "-h", sockets, "-p", str(port), "-U", SYSTEM_USER]
        psql += ["-v", "ON_ERROR_STOP=1"]
        _as_postgres(*psql, "-d", "postgres", "-c", f"CREATE DATABASE {DATABASE}")
        _as_postgres(*psql, "-d", DATABASE, "-c", "CREATE EXTENSION IF NOT EXISTS pg_trgm")
        yield Postgres(port=port, socket_dir=sockets, database=DATABASE)
    finally:
        subprocess.run(
            [
                *(["runuser", "-u", SYSTEM_USER, "--"] if os.geteuid() == 0 else []),
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(top, ignore_errors=True)
