"""Which media type a GraphQL-over-HTTP response uses, from the request's Accept.

application/graphql-response+json when the client prefers it (its status codes then
follow the GraphQL-over-HTTP spec: 4xx for a request that never executed),
application/json otherwise, as older clients and plain `*/*` expect.
"""

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
# Most specific first: an exact type outranks application/*, which outranks */*.
_RANGES = {GRAPHQL_RESPONSE_JSON: 3, JSON: 3, "application/*": 2, "*/*": 1}


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0


def negotiate(accept: str | None) -> str | None:
    """The media type to answer with, or None when Accept allows neither (406)."""
    if accept is None or not accept.strip():
        return JSON
    best: dict[str, tuple[int, float]] = {}  # type -> (specificity, quality)
    for part in accept.split(","):
        media_range, _, params = part.partition(";")
        media_range = media_range.strip().lower()
        specificity = _RANGES.get(media_range)
        if specificity is None:
            continue
        quality = _quality(params)
        targets = [media_range] if specificity == 3 else [GRAPHQL_RESPONSE_JSON, JSON]
        for target in targets:
            if best.get(target, (0, 0.0))[0] < specificity:
                best[target] = (specificity, quality)
    new = best.get(GRAPHQL_RESPONSE_JSON, (0, 0.0))
    old = best.get(JSON, (0, 0.0))
    if new[1] <= 0 and old[1] <= 0:
        return None
    # A tie goes to the new type only when the client named it; wildcards keep JSON.
    if new[1] > old[1] or (new[1] == old[1] and new[0] == 3):
        return GRAPHQL_RESPONSE_JSON
    return JSON
