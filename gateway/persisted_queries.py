"""Documents sent by hash: automatic persisted queries (Apollo's protocol), and the
trusted-documents mode where only the documents of a manifest may run at all.

A request names a document with extensions.persistedQuery = {version: 1, sha256Hash}.
With APQ, an unknown hash without a query answers PERSISTED_QUERY_NOT_FOUND (message
"PersistedQueryNotFound", which Apollo's clients look for), and the client sends hash
and query together, which registers the query once it parses and validates.
"""

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import PersistedQueryNotFound
from resolvers.errors import BadUserInput

_SHA256 = re.compile(r"^[0-9a-f]{64}$")

NOT_TRUSTED = (
    "This server runs only trusted documents and this one is not among them: send a "
    "document from the manifest, by its sha256Hash or its exact text."
)


def sha256_of(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def requested_hash(extensions: Mapping[str, Any] | None) -> str | None:
    """The sha256Hash a request names in extensions.persistedQuery, if any."""
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise BadUserInput(
            "`extensions.persistedQuery` must be {version: 1, sha256Hash: <hex>}; "
            "only version 1 is supported"
        )
    sha = persisted.get("sha256Hash")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise BadUserInput(
            "`extensions.persistedQuery.sha256Hash` must be 64 lowercase hex characters"
        )
    return sha


class PersistedQueries:
    """The APQ store: registered documents by hash, least recently used dropped first
    (a client whose hash was dropped just sends the query again)."""

    def __init__(self, maxsize: int = 1000) -> None:
        self.maxsize = maxsize
        self._queries: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._queries)

    def get(self, sha: str) -> str | None:
        query = self._queries.get(sha)
        if query is not None:
            self._queries.move_to_end(sha)
        return query

    def register(self, sha: str, query: str) -> None:
        self._queries[sha] = query
        self._queries.move_to_end(sha)
        if len(self._queries) > self.maxsize:
            self._queries.popitem(last=False)


class TrustedDocuments:
    """The documents a manifest ({sha256: query}) allows; nothing else runs."""

    def __init__(self, by_hash: Mapping[str, str]) -> None:
        self.by_hash = dict(by_hash)
        self.texts = frozenset(self.by_hash.values())

    @classmethod
    def load(cls, path: Path) -> "TrustedDocuments":
        """Reads and checks a manifest; raises ValueError saying what is wrong with it."""
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ValueError(
                f"cannot read the trusted documents manifest {path}: {error}"
            ) from None
        if not isinstance(manifest, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in manifest.items()
        ):
            raise ValueError(f"{path} must hold a JSON object of sha256 hash -> document text")
        for sha, query in manifest.items():
            if sha256_of(query) != sha.lower():
                raise ValueError(f"{path}: {sha} is not the sha256 of its document")
        return cls({sha.lower(): query for sha, query in manifest.items()})

    def require_text(self, query: str) -> None:
        if query not in self.texts:
            raise PersistedQueryNotFound(NOT_TRUSTED)


@dataclass(frozen=True, slots=True)
class ResolvedDocument:
    query: str | None
    # Set when the request registers its query under this hash (APQ), which happens
    # only once the query has parsed and validated.
    register_as: str | None = None


def resolve_document(
    query: str | None,
    extensions: Mapping[str, Any] | None,
    *,
    store: PersistedQueries,
    trusted: TrustedDocuments | None,
) -> ResolvedDocument:
    """The text a request runs, from its query and its persistedQuery extension."""
    sha = requested_hash(extensions)
    if sha is None:
        return ResolvedDocument(query)
    if query is not None and sha256_of(query) != sha:
        raise BadUserInput(
            "`extensions.persistedQuery.sha256Hash` is not the sha256 of `query`: "
            "provided sha does not match query"
        )
    if trusted is not None:
        known = trusted.by_hash.get(sha)
        if known is None:
            raise PersistedQueryNotFound(NOT_TRUSTED)
        return ResolvedDocument(known)
    if query is not None:
        return ResolvedDocument(query, register_as=sha)
    known = store.get(sha)
    if known is None:
        raise PersistedQueryNotFound()
    return ResolvedDocument(known)
