"""A private PostgreSQL cluster in a temp dir (initdb + pg_ctl), never the shared one.

Runs as the ``postgres`` user when we are root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.reliability.server import free_port


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def can_run() -> bool:
    if postgres_bin() is None:
        return False
    if os.geteuid() != 0:
        return True
    return shutil.which("su") is not None and _has_user("postgres")


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class PrivatePostgres:
    def __init__(self) -> None:
        bindir = postgres_bin()
        assert bindir is not None
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="cloudlet-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            import pwd

            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(f"{self.bindir}/initdb -D {self.data} -U postgres -A trust --no-sync -E UTF8")

    def _run(self, command: str) -> None:
        if os.geteuid() == 0:
            argv = ["su", "postgres", "-s", "/bin/sh", "-c", command]
        else:
            argv = shlex.split(command)
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            f"{self.bindir}/pg_ctl -D {self.data} -l {self.root}/pg.log -w -t 60 "
            f"-o {shlex.quote(options)} start"
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(f"{self.bindir}/pg_ctl -D {self.data} -m {mode} -w -t 60 stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
