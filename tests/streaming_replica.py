"""A primary and a real streaming standby for tests: the primary is an embedded server
(pgserver), the standby a pg_basebackup of it run with the binaries the pgserver wheel
bundles, both on Unix sockets only. Postgres refuses to run as root, so as root both run
as the system user pgserver creates for itself."""

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from db.embedded import EmbeddedPostgres

PG_USER = "pgserver"


def _bin(name: str) -> str:
    import pgserver

    return str(Path(pgserver.__file__).parent / "pginstall" / "bin" / name)


class StreamingPair:
    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="gateway-replica-"))
        self.workdir.chmod(0o777)
        self.primary = EmbeddedPostgres(self.workdir)
        primary = make_url(self.primary.url("postgres"))
        self.primary_socket = str(primary.query["host"])
        self.port = primary.port or 5432
        self.standby_dir = self.workdir / "standby"
        self.standby_socket = self.workdir / "standby-socket"
        self.run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            entry = pwd.getpwnam(PG_USER)
            self.run_as = {"user": entry.pw_uid, "group": entry.pw_gid}
        for folder in (self.standby_dir, self.standby_socket):
            folder.mkdir()
            if self.run_as:
                os.chown(folder, self.run_as["user"], self.run_as["group"])
        self.standby_dir.chmod(0o700)
        self.standby_socket.chmod(0o777)
        self.standby_running = False

    def _run(self, *command: str) -> None:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, **self.run_as)
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {result.stdout}\n{result.stderr}")

    def primary_url(self, database: str) -> str:
        return self.primary.url(database)

    def standby_url(self, database: str) -> str:
        url = make_url(self.primary.url(database))
        return url.set(query={"host": str(self.standby_socket)}).render_as_string(
            hide_password=False
        )

    def make_standby(self) -> None:
        """A base backup of the primary as it is now, set up to stream from it (-R)."""
        self._run(
            _bin("pg_basebackup"), "-D", str(self.standby_dir), "-h", self.primary_socket,
            "-p", str(self.port), "-U", "postgres", "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip

    def start_standby(self) -> None:
        self._run(
            _bin("pg_ctl"), "-D", str(self.standby_dir), "-w", "-l",
            str(self.standby_dir / "log"),
            "-o", f"-h '' -k {self.standby_socket} -p {self.port}", "start",
        )  # fmt: skip
        self.standby_running = True

    def stop_standby(self) -> None:
        if self.standby_running:
            self._run(_bin("pg_ctl"), "-D", str(self.standby_dir), "-w", "-m", "fast", "stop")
            self.standby_running = False

    def close(self) -> None:
        try:
            self.stop_standby()
        finally:
            self.primary.stop()
            shutil.rmtree(self.workdir, ignore_errors=True)
