"""The offline GraphiQL explorer: the page loads only local assets, served safely."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
from graphql import OperationDefinitionNode, parse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.types import Message

from gateway.explorer import (
    ASSET_NAMES,
    ASSETS_PREFIX,
    ASSETS_VERSION,
    DEFAULT_QUERY,
    asset_route,
    explorer_html,
)
from gateway.explorer.assets import load_asset

CONTENT_TYPES = {
    ".js": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
HOSTILE = "</script><script>alert(1)</script><!--"


class _References(HTMLParser):
    """Collects every URL the page would make the browser load."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.urls.append(value)


def _references(page: str) -> list[str]:
    parser = _References()
    parser.feed(page)
    parser.close()
    return parser.urls


def _local_assets(page: str) -> list[str]:
    # The favicon is an inline data: URL, there only to stop the browser asking for one.
    return [url for url in _references(page) if not url.startswith("data:")]


def _content_type(name: str) -> str:
    return CONTENT_TYPES[name[name.rfind(".") :]]


def _app() -> Starlette:
    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(explorer_html(default_query=DEFAULT_QUERY))

    return Starlette(routes=[asset_route(ASSETS_PREFIX), Route("/graphql", page)])


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_page_loads_only_local_assets(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql")
    assert response.status_code == 200
    assets = _local_assets(response.text)

    assert len(assets) >= 4
    for url in assets:
        assert url.startswith(f"{ASSETS_PREFIX}/"), url
        parts = urlsplit(url)
        name = parts.path.removeprefix(f"{ASSETS_PREFIX}/")
        assert name in ASSET_NAMES
        # Cached as immutable, so the URL itself has to change when the package does.
        assert parts.query == f"v={ASSETS_VERSION}"
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.content
        assert asset.headers["content-type"] == _content_type(name)


async def test_page_has_no_external_urls(client: httpx.AsyncClient) -> None:
    page = (await client.get("/graphql")).text

    assert "http://" not in page
    assert "https://" not in page
    for url in _references(page):
        assert not url.startswith("//"), url
    for host_hint in ("cdn", "unpkg", "jsdelivr"):
        assert host_hint not in page.lower()


async def test_page_configures_graphiql(client: httpx.AsyncClient) -> None:
    page = (await client.get("/graphql")).text

    assert "<title>Content gateway — GraphiQL</title>" in page
    assert "GraphiQL.createFetcher(" in page
    assert "graphqlWs.createClient(" in page
    assert "isHeadersEditorEnabled: true" in page
    assert "shouldPersistHeaders: true" in page
    # The load order matters: GraphiQL needs React, the explorer plugin needs GraphiQL.
    scripts = [urlsplit(url).path for url in _local_assets(page)]
    order = [f"{ASSETS_PREFIX}/{name}" for name in ("react.production.min.js", "graphiql.min.js")]
    assert scripts.index(order[0]) < scripts.index(order[1])


@pytest.mark.parametrize("name", sorted(ASSET_NAMES))
async def test_every_allow_listed_asset_is_served(client: httpx.AsyncClient, name: str) -> None:
    response = await client.get(f"{ASSETS_PREFIX}/{name}")

    assert response.status_code == 200
    assert response.content
    assert response.headers["content-type"] == _content_type(name)
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert re.fullmatch(r'"[0-9a-f]{32}"', response.headers["etag"])


@pytest.mark.parametrize(
    "path",
    [
        "nope.js",
        "__init__.py",
        "views.py",
        "graphiql.min.js.map",
        "GRAPHIQL.MIN.JS",
        "..%2F..%2Fviews.py",
        "%2e%2e%2f%2e%2e%2f__init__.py",
        "static%2Fgraphene_django_graphiql_static%2Fgraphiql.min.js",
        "..%5Cviews.py",
    ],
)
async def test_unknown_assets_are_not_found(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(f"{ASSETS_PREFIX}/{path}")

    assert response.status_code == 404


async def _raw_get(path: str) -> int:
    """GET with the path exactly as given; httpx would normalise the dot segments away."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
    }
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    await _app()(scope, receive, send)
    status: int = messages[0]["status"]
    return status


@pytest.mark.parametrize(
    "path",
    [
        f"{ASSETS_PREFIX}/../../pyproject.toml",
        f"{ASSETS_PREFIX}/../assets/views.py",
        f"{ASSETS_PREFIX}/./graphiql.min.js/..",
        f"{ASSETS_PREFIX}/..",
        f"{ASSETS_PREFIX}/",
    ],
)
async def test_path_traversal_is_not_found(path: str) -> None:
    assert await _raw_get(path) == 404


def test_load_asset_refuses_names_outside_the_allow_list() -> None:
    with pytest.raises(KeyError):
        load_asset("../views.py")


async def test_etag_revalidation(client: httpx.AsyncClient) -> None:
    url = f"{ASSETS_PREFIX}/graphiql.min.css"
    etag = (await client.get(url)).headers["etag"]

    for if_none_match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = await client.get(url, headers={"If-None-Match": if_none_match})
        assert response.status_code == 304, if_none_match
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"

    stale = await client.get(url, headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200
    assert stale.content


def _boot_config(page: str) -> object:
    match = re.search(r"^  var config = (.*);$", page, re.MULTILINE)
    assert match is not None
    return json.loads(match.group(1))


def test_hostile_values_cannot_break_out_of_the_script() -> None:
    page = explorer_html(
        endpoint=f"/graphql?{HOSTILE}",
        default_query=f"# {HOSTILE}\n{{ __typename }}",
        default_headers=json.dumps({"Authorization": HOSTILE}),
    )

    assert HOSTILE not in page
    assert "<script>alert" not in page
    assert "<!--" not in page
    # Five asset scripts and the boot script: nothing was injected.
    assert page.count("<script") == 6
    assert page.count("</script>") == 6
    # The escaping is JSON-level, so GraphiQL still receives the exact strings.
    assert _boot_config(page) == {
        "endpoint": f"/graphql?{HOSTILE}",
        "defaultQuery": f"# {HOSTILE}\n{{ __typename }}",
        "defaultHeaders": json.dumps({"Authorization": HOSTILE}),
    }


def test_hostile_assets_prefix_is_attribute_escaped() -> None:
    page = explorer_html(assets_prefix='/x"><script>alert(1)</script>', default_query="{ a }")

    assert "<script>alert" not in page
    assert all(url.startswith('/x"><script>') for url in _local_assets(page))


def test_custom_endpoint_and_prefix() -> None:
    page = explorer_html(
        endpoint="/api/graphql",
        assets_prefix="/static/graphiql/",
        default_query="{ a }",
        default_headers='{"Authorization": "Bearer t"}',
    )

    assets = _local_assets(page)
    assert assets
    assert all(url.startswith("/static/graphiql/") and "//" not in url for url in assets)
    assert _boot_config(page) == {
        "endpoint": "/api/graphql",
        "defaultQuery": "{ a }",
        "defaultHeaders": '{"Authorization": "Bearer t"}',
    }


def test_default_query_is_valid_graphql() -> None:
    document = parse(DEFAULT_QUERY)

    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert [op.name.value for op in operations if op.name] == ["Explore"]
