"""GraphiQL's static files, served from the pinned ``graphene-django-graphiql-static`` wheel.

The explorer must work without internet access, so nothing is fetched from a CDN; the files
are read from package data instead of being vendored into this repository.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib.metadata import version
from importlib.resources import files
from typing import Final

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

ASSETS_PREFIX: Final = "/graphql/assets"

_PACKAGE: Final = "graphene_django_graphiql_static"

# Responses are cached as immutable, so browsers never revalidate them: after an upgrade only a
# different URL gets them the new files. The page appends this to every asset URL for that.
ASSETS_VERSION: Final = version("graphene-django-graphiql-static")

# An explicit allow-list rather than "whatever is in the folder": the request path never
# reaches the filesystem, which rules out traversal and serving the package's other files.
ASSET_NAMES: Final = frozenset(
    {
        "fetch.umd.js",
        "graphiql-plugin-explorer.umd.js",
        "graphiql.min.css",
        "graphiql.min.js",
        "graphql-ws.min.js",
        "react-dom.production.min.js",
        "react.production.min.js",
        "style.css",
    }
)

_MEDIA_TYPES: Final = {
    ".js": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}

# The bytes only change with the package version, which is part of the URLs the page uses.
_CACHE_CONTROL: Final = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


# A memo of a pure function, bounded by the allow-list of asset names.
@functools.cache
def load_asset(name: str) -> Asset:
    """Return an allow-listed asset, reading it from package data only the first time."""
    if name not in ASSET_NAMES:
        raise KeyError(name)
    body = (files(_PACKAGE) / "static" / _PACKAGE / name).read_bytes()
    suffix = name[name.rfind(".") :]
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    return Asset(body=body, media_type=_MEDIA_TYPES[suffix], etag=etag)


def _etag_matches(if_none_match: str, etag: str) -> bool:
    # If-None-Match uses the weak comparison (RFC 9110 13.1.2), so a W/ prefix still matches.
    candidates = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
    return any(tag in ("*", etag) for tag in candidates)


async def _serve_asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSET_NAMES:
        return PlainTextResponse("Not Found", status_code=404)
    asset = load_asset(name)
    headers = {"ETag": asset.etag, "Cache-Control": _CACHE_CONTROL}
    if _etag_matches(request.headers.get("if-none-match", ""), asset.etag):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def asset_route(prefix: str = ASSETS_PREFIX) -> Route:
    """A route answering ``GET {prefix}/{name}`` for the allow-listed GraphiQL files."""
    return Route(
        f"{prefix.rstrip('/')}/{{name}}",
        _serve_asset,
        methods=["GET", "HEAD"],
        name="graphiql_asset",
    )
