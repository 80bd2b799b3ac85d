"""Real gateway processes (uvicorn) on 127.0.0.1 for tests that need several of them, and
a small graphql-transport-ws client."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(process: "subprocess.Popen[bytes]") -> None:
    """SIGINT (a graceful shutdown), then SIGKILL if it has not ended in 20 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class GatewayProcess:
    def __init__(
        self,
        database_url: str,
        secret: str,
        log_path: Path,
        *,
        serve_args: tuple[str, ...] = (),
        port: int | None = None,
        **settings: Any,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/graphql"
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "GATEWAY_"))
        }
        env |= {
            "DATABASE_URL": database_url,
            "GATEWAY_SECRET_KEY": secret,
            "GATEWAY_DATA_DIR": str(log_path.parent),
            # Tests sign many people up from 127.0.0.1, on servers sharing one database
            # (the limit lives there); tests of the limit itself set their own.
            "GATEWAY_SIGNUPS_PER_ADDRESS": "1000000",
            **settings,
        }
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "gateway.cli", "serve",
                    "--host", "127.0.0.1", "--port", str(self.port), *serve_args,
                ],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited:\n{self.log_path.read_text()}")
            try:
                body = httpx.get(f"{self.url}/readyz", timeout=2).json()
                if body.get("events") == "listening":
                    return
            except (httpx.TransportError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gateway not ready:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        stop_process(self.process)

    def log_holding(self, text: str, timeout: float = 5) -> str:
        """The log once it holds `text`. Lines below WARNING reach the file up to
        gateway.logs.FLUSH_SECONDS after they are logged (a line per request is not a
        system call per request)."""
        deadline = time.monotonic() + timeout
        while True:
            logged = self.log_path.read_text()
            if text in logged or time.monotonic() > deadline:
                return logged
            time.sleep(0.05)

    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
            headers=headers, timeout=30,
        )  # fmt: skip
        body = response.json()
        assert "errors" not in body, body
        return body["data"]


class TransportWsClient:
    """graphql-transport-ws, as a client speaks it."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        # Messages that arrived while `handled` waited for its pong.
        self._held: list[dict[str, Any]] = []

    @classmethod
    async def open(
        cls,
        url: str,
        token: str | None = None,
        protocol: str = "graphql-transport-ws",
        **connect_options: Any,
    ) -> "TransportWsClient":
        """`connect_options` go to the socket (e.g. `local_addr` to come from another
        loopback address, which per-address limits count apart)."""
        socket = await connect(url, subprotocols=[protocol], **connect_options)  # type: ignore[list-item]
        client = cls(socket)
        payload = {"authorization": f"Bearer {token}"} if token else {}
        await client.send({"type": "connection_init", "payload": payload})
        return client

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(message))

    async def receive(self, within: float = 10) -> dict[str, Any]:
        if self._held:
            return self._held.pop(0)
        frame = await asyncio.wait_for(self.socket.recv(), within)
        # Browser clients JSON.parse a frame's data: a binary frame breaks them.
        assert isinstance(frame, str), f"a binary frame: {frame!r}"
        return dict(json.loads(frame))

    async def receive_type(self, *types: str, within: float = 10) -> dict[str, Any]:
        """The next message of one of `types`, skipping keep-alive pings."""
        while True:
            message = await self.receive(within)
            if message["type"] == "ping":
                await self.send({"type": "pong"})
                continue
            if message["type"] in types:
                return message
            raise AssertionError(f"expected {types}, got {message}")

    async def subscribe(
        self, op_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        await self.send(
            {
                "id": op_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables or {}},
            }
        )

    async def handled(self) -> None:
        """Returns once the server has handled every message sent before: it reads a
        socket's messages in order and answers a ping after them, and a subscription
        joins the live events while its message is handled, so nothing published after
        this is missed. What arrives before the pong is kept for `receive`."""
        await self.send({"type": "ping"})
        while True:
            frame = await asyncio.wait_for(self.socket.recv(), 10)
            assert isinstance(frame, str), f"a binary frame: {frame!r}"
            message = dict(json.loads(frame))
            if message["type"] == "pong":
                return
            self._held.append(message)

    async def nothing_for(self, seconds: float) -> None:
        """Asserts that no data arrives for a while (pings are fine)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                message = await self.receive(within=left)
            except TimeoutError:
                return
            assert message["type"] in ("ping", "pong"), message

    async def close(self) -> None:
        await self.socket.close()
