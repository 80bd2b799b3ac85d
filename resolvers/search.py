"""What a search's arguments mean, checked."""

import hashlib

from resolvers.errors import BadUserInput
from resolvers.search_terms import require_searchable

MAX_QUERY = 200


def check_query(query: str) -> str:
    text = query.strip()
    if not text:
        raise BadUserInput("`query` must not be empty", field="query")
    if len(text) > MAX_QUERY:
        raise BadUserInput(f"`query` must be at most {MAX_QUERY} characters", field="query")
    require_searchable(text)
    return text


def kind_of(text: str) -> str:
    """Cursors name their query: one from another search means nothing here."""
    return "search:" + hashlib.sha256(text.encode()).hexdigest()[:16]
