"""A real headless Chromium (the Debian package `chromium`, which .ci/run installs),
driven over the DevTools protocol: open a page, type into fields, submit forms, read
the text and the accessibility tree, take screenshots."""

import asyncio
import base64
import contextlib
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect


class Chromium:
    def __init__(self, profile: Path) -> None:
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if binary is None:
            raise RuntimeError(
                "Chromium is not installed: `apt-get install chromium` (.ci/run does it)"
            )
        profile.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                f"--user-data-dir={profile}", "about:blank",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError("Chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        self.port = int(port_file.read_text().split()[0])

    async def page(self) -> "Page":
        async with httpx.AsyncClient() as client:
            targets = (await client.get(f"http://127.0.0.1:{self.port}/json/list")).json()
        target = next(t for t in targets if t["type"] == "page")
        page = Page(await connect(target["webSocketDebuggerUrl"], max_size=50_000_000))
        await page.call("Page.enable")
        await page.call("Runtime.enable")
        return page

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Page:
    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self._ids = 0
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._loaded = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.socket:
            message = json.loads(frame)
            if "id" in message and message["id"] in self._waiting:
                self._waiting.pop(message["id"]).set_result(message)
            elif message.get("method") == "Page.loadEventFired":
                self._loaded.set()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._ids += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[self._ids] = future
        await self.socket.send(json.dumps({"id": self._ids, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return dict(answer.get("result", {}))

    async def goto(self, url: str) -> None:
        self._loaded.clear()
        await self.call("Page.navigate", url=url)
        await asyncio.wait_for(self._loaded.wait(), 30)

    async def evaluate(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        return result["result"].get("value")

    async def type_into(self, selector: str, text: str) -> None:
        """Focuses the field, clears it, and types as a keyboard would."""
        await self.evaluate(
            f"(e => {{ e.focus(); e.value = ''; }})(document.querySelector({json.dumps(selector)}))"
        )
        await self.call("Input.insertText", text=text)

    async def press_button(self, name: str) -> None:
        """Clicks the button of that accessible name and waits for the next page."""
        box = await self.evaluate(
            "(() => { const b = [...document.querySelectorAll('button')]"
            f".find(b => b.textContent.trim() === {json.dumps(name)});"
            " if (!b) return null; b.scrollIntoView({block: 'center'});"
            " const r = b.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        assert box is not None, f"no button {name!r} on the page"
        self._loaded.clear()
        for kind in ("mousePressed", "mouseReleased"):
            await self.call(
                "Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left",
                clickCount=1,
            )  # fmt: skip
        await asyncio.wait_for(self._loaded.wait(), 30)

    async def text(self) -> str:
        return str(await self.evaluate("document.body.innerText"))

    async def accessible(self) -> list[tuple[str, str]]:
        """(role, name) of every named node of the accessibility tree."""
        tree = await self.call("Accessibility.getFullAXTree")
        found = []
        for node in tree["nodes"]:
            if node.get("ignored"):
                continue
            role = (node.get("role") or {}).get("value", "")
            name = (node.get("name") or {}).get("value", "")
            found.append((str(role), str(name)))
        return found

    async def screenshot(self) -> bytes:
        """The page as a PNG (to look at while writing a test)."""
        shot = await self.call("Page.captureScreenshot", format="png")
        return base64.b64decode(shot["data"])

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.socket.close()
