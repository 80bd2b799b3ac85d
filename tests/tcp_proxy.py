"""A TCP proxy in front of the test Postgres that a test can cut and restore, to see
what the gateway does while its database is unreachable."""

import asyncio
import contextlib
from urllib.parse import parse_qs, urlsplit


class TcpProxy:
    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        socket_dir = parse_qs(parts.query).get("host", [None])[0]
        self._unix_path = f"{socket_dir}/.s.PGSQL.{parts.port or 5432}" if socket_dir else None
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def _open_target(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._unix_path:
            return await asyncio.open_unix_connection(self._unix_path)
        return await asyncio.open_connection(*self._target)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target_reader, target_writer = await self._open_target()
        self._writers |= {writer, target_writer}
        await asyncio.gather(self._pipe(reader, target_writer), self._pipe(target_reader, writer))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones, as a dead server would."""
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def restore(self) -> None:
        await self.start()

    def url(self, database_url: str) -> str:
        parts = urlsplit(database_url)
        user = parts.username or "postgres"
        return f"postgresql+asyncpg://{user}@127.0.0.1:{self.port}{parts.path}"
