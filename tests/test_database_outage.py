"""While the database is unreachable the gateway answers 503 SERVICE_UNAVAILABLE and
says so on /readyz; once it is back the gateway serves again without a restart."""

import httpx

from gateway.app import create_app
from gateway.settings import Settings
from tests.conftest import TEST_SECRET
from tests.tcp_proxy import TcpProxy

QUERY = {"query": "{ contents(first: 1) { totalCount } }"}


async def test_outage_is_reported_and_recovered_from(fresh_database_url, tmp_path) -> None:
    proxy = TcpProxy(fresh_database_url)
    await proxy.start()
    settings = Settings(
        database_url=proxy.url(fresh_database_url),
        secret_key=TEST_SECRET,
        data_dir=tmp_path,
        db_connect_timeout=2.0,
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            assert (await client.get("/readyz")).status_code == 200
            assert (await client.post("/graphql", json=QUERY)).json() == {
                "data": {"contents": {"totalCount": 0}}
            }

            await proxy.cut()
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "unavailable"
            down = await client.post("/graphql", json=QUERY)
            assert down.status_code == 503
            assert down.headers["retry-after"]
            (error,) = down.json()["errors"]
            assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            assert "127.0.0.1" not in error["message"]
            assert (await client.get("/healthz")).status_code == 200, "the process is alive"

            await proxy.restore()
            assert (await client.get("/readyz")).status_code == 200
            up = await client.post("/graphql", json=QUERY)
            assert up.status_code == 200
            assert up.json() == {"data": {"contents": {"totalCount": 0}}}
    finally:
        await app.state.database.dispose()
        await proxy.cut()


async def test_readyz_says_when_the_database_is_not_migrated(fresh_database_url, tmp_path) -> None:
    from db import migrate
    from db.session import create_engine

    engine = create_engine(fresh_database_url)
    await migrate.downgrade(engine, "base")
    await engine.dispose()
    settings = Settings(database_url=fresh_database_url, secret_key=TEST_SECRET, data_dir=tmp_path)
    app = create_app(settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw"
        ) as client:
            ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert "gateway migrate" in ready.json()["reason"]
    finally:
        await app.state.database.dispose()
