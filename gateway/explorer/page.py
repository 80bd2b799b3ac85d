"""The GraphiQL page, wired to the locally served assets in :mod:`gateway.explorer.assets`."""

from __future__ import annotations

import json
from html import escape
from typing import Final

from gateway.explorer.assets import ASSETS_PREFIX, ASSETS_VERSION

TITLE: Final = "Content gateway — GraphiQL"

DEFAULT_QUERY: Final = """\
# Welcome to the content gateway.
# Press the run button (or Ctrl-Enter).
#
# This query works without signing in. To see
# what a signed-in viewer sees, open "Headers"
# below and paste:
#   {"Authorization": "Bearer <token>"}
#
# Things to try:
# - Ctrl-Space in a selection set lists fields.
# - Pass pageInfo.endCursor as `after:` to get
#   the next page.
# - The book icon on the left opens the docs;
#   the folder icon builds queries by clicking.
query Explore {
  contents(first: 5, orderBy: NEWEST) {
    totalCount
    edges {
      cursor
      node {
        id
        title
        summary
        publishedAt
        reactionCount
        author {
          handle
          displayName
        }
        tags {
          name
        }
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
  tags(first: 10) {
    edges {
      node {
        name
        contentCount
      }
    }
  }
}
"""

# Load order matters: each UMD bundle reads the globals defined by the ones before it.
_STYLESHEETS: Final = ("graphiql.min.css", "style.css")
_SCRIPTS: Final = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "graphql-ws.min.js",
    "graphiql-plugin-explorer.umd.js",
)

# Kept free of Python formatting so the JavaScript braces need no doubling; the config object
# is spliced in with str.replace.
_BOOT_SCRIPT: Final = """\
(function () {
  "use strict";
  var config = __CONFIG__;

  function createFetcher() {
    var httpUrl = new URL(config.endpoint, window.location.href);
    var wsUrl = new URL(httpUrl.href);
    wsUrl.protocol = httpUrl.protocol === "https:" ? "wss:" : "ws:";
    // GraphiQL does not hand the headers pane to a wsClient, so subscriptions would always run
    // anonymously. graphql-ws evaluates connectionParams on every (re)connect, and its lazy
    // client reconnects once the last subscription ends, so this carries the latest headers.
    var latestHeaders = {};
    var wsClient = graphqlWs.createClient({
      url: wsUrl.href,
      connectionParams: function () { return latestHeaders; }
    });
    var graphiqlFetcher = GraphiQL.createFetcher({
      url: httpUrl.href,
      subscriptionUrl: wsUrl.href,
      wsClient: wsClient
    });
    return function fetcher(params, options) {
      latestHeaders = (options && options.headers) || {};
      return graphiqlFetcher(params, options);
    };
  }

  function start(root) {
    var h = React.createElement;
    var fetcher = createFetcher();
    function Explorer() {
      // Undefined at first so GraphiQL restores the query from the previous visit and only
      // falls back to defaultQuery on a first visit; the explorer plugin needs it controlled.
      var state = React.useState(undefined);
      var query = state[0];
      var setQuery = state[1];
      var explorerPlugin = GraphiQLPluginExplorer.useExplorerPlugin({
        query: query === undefined ? "" : query,
        onEdit: setQuery,
        showAttribution: false
      });
      return h(GraphiQL, {
        fetcher: fetcher,
        defaultQuery: config.defaultQuery,
        query: query,
        onEditQuery: setQuery,
        defaultHeaders: config.defaultHeaders,
        isHeadersEditorEnabled: true,
        shouldPersistHeaders: true,
        defaultEditorToolsVisibility: config.defaultHeaders ? "headers" : undefined,
        plugins: [explorerPlugin]
      });
    }
    ReactDOM.render(h(Explorer), root);
  }

  var root = document.getElementById("graphiql");
  try {
    start(root);
  } catch (error) {
    // Without this a missing or broken asset leaves a blank page and no hint why.
    root.textContent = "GraphiQL failed to start: " + error;
    throw error;
  }
})();
"""


def _js_literal(value: object) -> str:
    # json.dumps alone is not enough inside <script>: "</script>" or "<!--" in a value would end
    # or confuse the element. Escaping <, > and & as \u003c-style escapes keeps the same value.
    # U+2028/U+2029 are already escaped because ensure_ascii is on by default.
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def explorer_html(
    *,
    endpoint: str = "/graphql",
    assets_prefix: str = ASSETS_PREFIX,
    default_query: str,
    default_headers: str = "",
) -> str:
    """Render the GraphiQL page; it loads nothing but the assets under ``assets_prefix``."""
    prefix = assets_prefix.rstrip("/")

    def url(name: str) -> str:
        return escape(f"{prefix}/{name}?v={ASSETS_VERSION}")

    stylesheets = "\n".join(f'    <link rel="stylesheet" href="{url(n)}">' for n in _STYLESHEETS)
    scripts = "\n".join(f'    <script src="{url(n)}"></script>' for n in _SCRIPTS)
    config = _js_literal(
        {"endpoint": endpoint, "defaultQuery": default_query, "defaultHeaders": default_headers}
    )
    boot = _BOOT_SCRIPT.replace("__CONFIG__", config)
    return f"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="referrer" content="no-referrer">
    <link rel="icon" href="data:,">
    <title>{escape(TITLE)}</title>
    <style>
      html, body, #graphiql {{ height: 100%; margin: 0; width: 100%; overflow: hidden; }}
    </style>
{stylesheets}
{scripts}
  </head>
  <body>
    <div id="graphiql"></div>
    <script>
{boot}    </script>
  </body>
</html>
"""
