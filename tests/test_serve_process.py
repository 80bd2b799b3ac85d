"""The serve command as a newcomer runs it: a real uvicorn process on an empty data
folder brings up embedded Postgres, migrates, seeds demo data and serves it."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gateway(data_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "GATEWAY_"))}
    env["GATEWAY_DATA_DIR"] = str(data_dir)
    # A file, not a pipe: a full pipe would block the server while the test waits on it.
    log = (data_dir / f"{args[0]}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return process


def _output(data_dir: Path, command: str) -> str:
    return (data_dir / f"{command}.log").read_text(errors="replace")


def _postmaster_pid(data_dir: Path) -> int | None:
    pid_file = data_dir / "postgres" / "postmaster.pid"
    if not pid_file.exists():
        return None
    return int(pid_file.read_text().split()[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_ready(
    url: str, process: subprocess.Popen[bytes], data_dir: Path, deadline: float
) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gateway exited with {process.returncode}:\n{_output(data_dir, 'serve')}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail("gateway did not become ready in time")


def _stop(process: subprocess.Popen[bytes], how: int = signal.SIGINT) -> None:
    if process.poll() is None:
        process.send_signal(how)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# SIGTERM is what Docker and systemd send; SIGINT is Ctrl-C.
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_from_an_empty_folder_serves_demo_data_and_shares_its_database(tmp_path, how) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = _gateway(tmp_path, "serve", "--port", str(port))
    try:
        _wait_ready(url, server, tmp_path, time.monotonic() + 180)
        body = httpx.post(
            f"{url}/graphql",
            json={
                "query": "{ contents(first: 5) { totalCount edges { node { title author { handle } } } } }"
            },
            timeout=10,
        ).json()
        assert "errors" not in body, body
        assert len(body["data"]["contents"]["edges"]) == 5
        assert body["data"]["contents"]["totalCount"] > 100
        page = httpx.get(f"{url}/graphql", headers={"Accept": "text/html"}, timeout=10)
        assert "graphiql" in page.text.lower()

        postgres = _postmaster_pid(tmp_path)
        assert postgres is not None and _alive(postgres)
        # A second process on the same folder joins the running server.
        second = _gateway(tmp_path, "migrate")
        assert second.wait(timeout=60) == 0, _output(tmp_path, "migrate")
        assert _postmaster_pid(tmp_path) == postgres and _alive(postgres)
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    finally:
        _stop(server, how)
    assert "demo logins" in _output(tmp_path, "serve")
    _assert_postgres_talks_to_its_log_files(tmp_path, _output(tmp_path, "serve"))
    # The last process using the folder stops its server.
    deadline = time.monotonic() + 30
    while postgres and _alive(postgres) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(postgres), "embedded Postgres outlived the last gateway process"


def _assert_postgres_talks_to_its_log_files(data_dir: Path, terminal: str) -> None:
    """serve names the embedded server's log files, and what the server and its setup
    (initdb, pg_ctl) say goes there, not between the gateway's own lines."""
    pgdata = (data_dir / "postgres").resolve()
    started = (data_dir / "pgserver.log").resolve()
    assert f"(its log: {pgdata / 'log'}; starting it: {started})" in terminal, terminal
    server_says = "database system is ready to accept connections"
    initdb_says = "The files belonging to this database system"
    assert server_says in (pgdata / "log").read_text()
    assert initdb_says in started.read_text()
    for line in (server_says, initdb_says, "pg_ctl"):
        assert line not in terminal, f"{line!r} reached the terminal:\n{terminal}"
