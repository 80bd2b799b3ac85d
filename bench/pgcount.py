"""Counts the statements a server sends to Postgres: a Unix-socket proxy in front of
the embedded server that reads the frontend side of the wire protocol and counts every
simple Query ('Q') and every Execute ('E', with the SQL of the prepared statement behind
its portal). It sees what Postgres sees, whatever the client library does: BEGIN and
ROLLBACK, pool pings and resets included, so nothing needs to run inside the server
under test. Only for a counting phase: relaying every byte through Python is not free."""

import asyncio
import contextlib
import struct
from collections import Counter
from pathlib import Path

_NO_TYPE_REQUESTS = {80877103, 80877104}  # SSLRequest, GSSENCRequest: answered by one byte
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "START TRANSACTION")


def kind_of(sql: str) -> str:
    """'control' (transaction control), 'ping' (an empty statement or SELECT 1: pool
    liveness checks), 'reset' (session reset on pool return) or 'query'."""
    text = sql.strip().rstrip(";").strip().upper()
    if text.startswith(_CONTROL):
        return "control"
    if text in ("", "SELECT 1"):
        return "ping"
    if text.startswith(("RESET ALL", "SELECT PG_ADVISORY_UNLOCK_ALL", "DISCARD")):
        return "reset"
    return "query"


class StatementCounter:
    def __init__(self, upstream_socket: Path, directory: Path) -> None:
        self.upstream = upstream_socket
        self.directory = directory
        self.counts: Counter[str] = Counter()
        self.queries: list[str] = []
        self._server: asyncio.AbstractServer | None = None

    @property
    def socket_path(self) -> Path:
        # libpq's naming, so a URL with host=<directory> and the default port finds it.
        return self.directory / ".s.PGSQL.5432"

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.socket_path))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def snapshot(self) -> Counter[str]:
        return Counter(self.counts)

    def _record(self, sql: str) -> None:
        kind = kind_of(sql)
        self.counts[kind] += 1
        if kind == "query":
            self.queries.append(sql)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_unix_connection(str(self.upstream))
        back = asyncio.create_task(_pipe(server_r, client_w))
        try:
            await self._frontend(client_r, server_w)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            server_w.close()
            await asyncio.gather(back, return_exceptions=True)
            client_w.close()

    async def _frontend(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Startup: untyped messages until the StartupMessage itself.
        while True:
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            writer.write(head + await reader.readexactly(length - 8))
            await writer.drain()
            if code not in _NO_TYPE_REQUESTS:
                break
        statements: dict[bytes, str] = {}
        portals: dict[bytes, bytes] = {}
        while True:
            head = await reader.readexactly(5)
            kind = head[:1]
            (length,) = struct.unpack("!i", head[1:])
            body = await reader.readexactly(length - 4)
            if kind == b"Q":
                self._record(body[:-1].decode())
            elif kind == b"P":
                name, _, rest = body.partition(b"\0")
                statements[name] = rest.partition(b"\0")[0].decode()
            elif kind == b"B":
                portal, _, rest = body.partition(b"\0")
                portals[portal] = rest.partition(b"\0")[0]
            elif kind == b"E":
                portal = body.partition(b"\0")[0]
                self._record(statements.get(portals.get(portal, b""), "?"))
            elif kind == b"C" and body[:1] == b"S":
                statements.pop(body[1:].partition(b"\0")[0], None)
            writer.write(head + body)
            await writer.drain()
            if kind == b"X":
                return


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
