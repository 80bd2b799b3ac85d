"""Several replicas behind a real HAProxy (Debian's package), configured by the file
docs/deployment.md shows (docs/haproxy.cfg): one gateway is restarted while clients keep
sending requests, and none of them is lost. On SIGTERM a gateway first fails its
readiness check while it still serves, then leaves. Behind the balancer each client keeps
an address, and so a rate budget, of its own."""

import asyncio
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET, FreshDatabases
from tests.live_server import GatewayProcess, free_port, stop_process
from tests.test_subscriptions import publish, register

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "docs" / "haproxy.cfg"
QUERY = {"query": "query Listing { contents(first: 5) { totalCount edges { node { title } } } }"}
DRAIN = "2"
# Where the balancer connects to the gateways from. Clients come from other loopback
# addresses (all of 127.0.0.0/8 is this host's), as they would from other hosts.
BALANCER = "127.0.0.1"
# The gateways believe the balancer's X-Forwarded-For, as docs/deployment.md says to set.
BEHIND_THE_BALANCER = {"GATEWAY_TRUSTED_PROXIES": BALANCER}


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.fail("haproxy is not installed: .ci/run installs Debian's package `haproxy`")
    return found


def render(port: int, servers: list[int]) -> str:
    """docs/haproxy.cfg with this test's addresses, and nothing else changed."""
    text = CONFIG.read_text()
    text, binds = re.subn(r"bind 127\.0\.0\.1:\d+", f"bind 127.0.0.1:{port}", text)
    assert binds == 1
    ports = iter(servers)
    text, found = re.subn(
        r"(server \S+) 127\.0\.0\.1:\d+", lambda m: f"{m.group(1)} 127.0.0.1:{next(ports)}", text
    )
    assert found == len(servers)
    return text


class HAProxy:
    def __init__(self, workdir: Path, servers: list[int]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "haproxy.cfg"
        config.write_text(render(self.port, servers))
        check = subprocess.run([haproxy_binary(), "-c", "-f", str(config)], capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log_path = workdir / "haproxy.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [haproxy_binary(), "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
            )

    def wait_serving(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.post(f"{self.url}/graphql", json=QUERY, timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"haproxy not serving:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        stop_process(self.process)


def publish_something(gateway: GatewayProcess) -> None:
    """Something to list."""
    _, token = register(gateway)
    publish(gateway, token, "listed through the load balancer")


async def client_loop(url: str, address: str, stop: asyncio.Event, results: list[str]) -> None:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=30) as client:
        while not stop.is_set():
            try:
                response = await client.post("/graphql", json=QUERY)
            except httpx.HTTPError as error:
                results.append(f"transport error: {error!r}")
                continue
            body = response.json() if response.status_code == 200 else None
            ok = body is not None and "errors" not in body and body["data"]["contents"]["edges"]
            results.append("ok" if ok else f"HTTP {response.status_code}: {response.text[:200]}")


async def test_restarting_a_replica_under_load_loses_no_request(
    server_url, template_url, tmp_path
) -> None:
    databases = FreshDatabases(server_url)
    url = await databases.create()
    ports = [free_port(), free_port()]
    settings = {"GATEWAY_DRAIN_SECONDS": DRAIN, **BEHIND_THE_BALANCER}
    gateways = [
        GatewayProcess(url, TEST_SECRET, tmp_path / f"gateway{i}.log", port=port, **settings)
        for i, port in enumerate(ports)
    ]
    proxy: HAProxy | None = None
    stop = asyncio.Event()
    try:
        for gateway in gateways:
            await asyncio.to_thread(gateway.wait_ready)
        await asyncio.to_thread(publish_something, gateways[0])
        proxy = HAProxy(tmp_path, ports)
        await asyncio.to_thread(proxy.wait_serving)

        results: list[str] = []
        # Six clients, each from an address of its own: each has its own rate budget,
        # which this load stays well inside (one address for all of them would not).
        load = [
            asyncio.create_task(client_loop(proxy.url, f"127.0.0.{10 + i}", stop, results))
            for i in range(6)
        ]
        await asyncio.sleep(2)

        first = gateways[0]
        first.process.send_signal(signal.SIGTERM)
        async with httpx.AsyncClient(base_url=first.url, timeout=10) as direct:
            # Within its drain (2 s) it answers "not ready" once it has seen the signal.
            deadline = time.monotonic() + 1.5
            ready = await direct.get("/readyz")
            while ready.status_code == 200 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
                ready = await direct.get("/readyz")
            assert ready.status_code == 503 and ready.json()["reason"] == "shutting down"
            # Still serving while the load balancer takes it out of rotation.
            served = await direct.post("/graphql", json=QUERY)
            assert served.status_code == 200
            assert served.headers["connection"] == "close"
        assert await asyncio.to_thread(first.process.wait, 30) == 128 + signal.SIGTERM
        served_before = len(results)

        restarted = GatewayProcess(
            url, TEST_SECRET, tmp_path / "gateway0-again.log", port=ports[0], **settings
        )
        gateways.append(restarted)
        await asyncio.to_thread(restarted.wait_ready)
        # The load goes on until the balancer has sent the restarted replica some of it
        # (two passed health checks, 0.5 s apart), however slow the machine.
        await asyncio.to_thread(restarted.log_holding, "query Listing", 30)
        await asyncio.sleep(1)
        stop.set()
        await asyncio.gather(*load)
    finally:
        stop.set()
        if proxy is not None:
            proxy.stop()
        for gateway in gateways:
            gateway.stop()
        await databases.drop_all()

    failures = [r for r in results if r != "ok"]
    assert not failures, f"{len(failures)} of {len(results)} requests failed: {failures[:5]}"
    assert len(results) > served_before > 50
    again = restarted.log_path.read_text()
    assert "query Listing" in again, "the restarted replica was put back into rotation"


async def outcome(proxy: HAProxy, address: str, headers: dict[str, str] | None = None) -> str:
    """ "ok", or the error code of one listing sent from `address` through the balancer."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=proxy.url, transport=transport, timeout=30) as client:
        response = await client.post("/graphql", json=QUERY, headers=headers)
    body = response.json()
    if "errors" in body:
        return str(body["errors"][0]["extensions"]["code"])
    return "ok"


async def test_each_client_behind_the_balancer_has_its_own_budget(
    server_url, template_url, tmp_path
) -> None:
    databases = FreshDatabases(server_url)
    url = await databases.create()
    # The listing costs 21: four fit in a budget of 100, which does not refill in a test.
    limits = {"GATEWAY_RATE_LIMIT_CAPACITY": "100", "GATEWAY_RATE_LIMIT_REFILL": "0.001"}
    gateway = GatewayProcess(
        url, TEST_SECRET, tmp_path / "gateway.log", **BEHIND_THE_BALANCER, **limits
    )
    proxy: HAProxy | None = None
    try:
        await asyncio.to_thread(gateway.wait_ready)
        proxy = HAProxy(tmp_path, [gateway.port, gateway.port])
        await asyncio.to_thread(proxy.wait_serving)

        first = [await outcome(proxy, "127.0.0.2") for _ in range(5)]
        assert first == ["ok"] * 4 + ["RATE_LIMITED"]
        # Another client through the same balancer connection still has its whole budget.
        assert await outcome(proxy, "127.0.0.3") == "ok"
        # A client naming another address itself gains nothing: the balancer appends the
        # address it saw, and the gateway takes that one.
        forged = await outcome(proxy, "127.0.0.2", {"X-Forwarded-For": "127.0.0.4"})
        assert forged == "RATE_LIMITED"
        assert await outcome(proxy, "127.0.0.4") == "ok"
    finally:
        if proxy is not None:
            proxy.stop()
        gateway.stop()
        await databases.drop_all()


def _block(markdown: str, language: str) -> str:
    (found,) = re.findall(rf"```{language}\n(.*?)```", markdown, flags=re.S)
    return str(found)


def _without_header(text: str) -> str:
    lines = text.splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "".join(lines)


def test_the_deployment_guide_shows_the_files_the_tests_use() -> None:
    guide = (ROOT / "docs" / "deployment.md").read_text()
    assert _block(guide, "haproxy") == _without_header(CONFIG.read_text())
    assert _block(guide, "ini") == (ROOT / "docs" / "gateway.service").read_text()
