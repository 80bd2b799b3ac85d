"""CSRF prevention: no request a browser sends cross-site without a CORS preflight
executes.

A page on another site can make a browser POST with a "simple" content type (a form,
or fetch with text/plain) and no preflight. Those are refused unless they carry a
header a browser only sends after a preflight the gateway never approves (it sends no
CORS headers). `Authorization` does not count: browsers attach remembered Basic
credentials to cross-site requests by themselves. GET runs only queries (a mutation
over GET is 405), and queries change nothing.
"""

from collections.abc import Mapping

SIMPLE_CONTENT_TYPES = frozenset(
    {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}
)
# Apollo's clients send the first two; GraphQL Yoga's the third.
PREFLIGHT_HEADERS = (
    "apollo-require-preflight",
    "x-apollo-operation-name",
    "graphql-require-preflight",
)


def csrf_refusal(method: str, headers: Mapping[str, str]) -> str | None:
    """Why this request is refused, or None when it may go on."""
    if method != "POST":
        return None
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type and media_type not in SIMPLE_CONTENT_TYPES:
        return None
    if any(headers.get(name, "").strip() for name in PREFLIGHT_HEADERS):
        return None
    sent = f"Content-Type {media_type}" if media_type else "no Content-Type"
    return (
        f"This POST has {sent}, which a page on any site can make a browser send, so it "
        "is refused to prevent cross-site request forgery: send Content-Type: "
        "application/json (or a non-empty `apollo-require-preflight` header)."
    )
