"""The GraphiQL page, wired to the locally served assets in :mod:`gateway.explorer.assets`."""

from __future__ import annotations

import json
from html import escape
from typing import Final

from gateway.explorer.assets import ASSETS_PREFIX

TITLE: Final = "Content gateway — GraphiQL"

DEFAULT_QUERY: Final = """\
# Welcome to the content gateway. Press the run button (or Ctrl-Enter).
#
# This query works without signing in. To see what a signed-in viewer sees,
# open the "Headers" pane below and paste:
#   {"Authorization": "Bearer <token>"}
#
# Things to try:
#   - Ctrl-Space inside a selection set lists the fields you can add.
#   - Pass pageInfo.endCursor as `after:` to fetch the next page.
#   - The docs icon on the left browses the whole schema.
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
  var httpUrl = new URL(config.endpoint, window.location.href);
  var wsUrl = new URL(httpUrl.href);
  wsUrl.protocol = httpUrl.protocol === "https:" ? "wss:" : "ws:";

  // GraphiQL does not pass the headers pane to a wsClient, so subscriptions would always run
  // anonymously. graphql-ws evaluates connectionParams on every (re)connect and its lazy
  // client reconnects after the last subscription ends, so this carries the latest headers.
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
  function fetcher(params, options) {
    latestHeaders = (options && options.headers) || {};
    return graphiqlFetcher(params, options);
  }

  var h = React.createElement;
  function Explorer() {
    // Left undefined at first so GraphiQL restores the query from the previous visit
    // and only falls back to defaultQuery on a first visit.
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
  var root = document.getElementById("graphiql");
  try {
    ReactDOM.render(h(Explorer), root);
  } catch (error) {
    // Without this, a missing or broken asset leaves a blank page with no hint why.
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
    stylesheets = "\n".join(
        f'    <link rel="stylesheet" href="{escape(f"{prefix}/{name}")}">' for name in _STYLESHEETS
    )
    scripts = "\n".join(
        f'    <script src="{escape(f"{prefix}/{name}")}"></script>' for name in _SCRIPTS
    )
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
