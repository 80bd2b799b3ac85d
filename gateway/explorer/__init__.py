"""An offline GraphiQL explorer: the page and the routes serving its assets."""

from gateway.explorer.assets import ASSET_NAMES, ASSETS_PREFIX, ASSETS_VERSION, asset_route
from gateway.explorer.page import DEFAULT_QUERY, explorer_html

__all__ = [
    "ASSETS_PREFIX",
    "ASSETS_VERSION",
    "ASSET_NAMES",
    "DEFAULT_QUERY",
    "asset_route",
    "explorer_html",
]
