"""What a read asks for, without GraphQL: entities with the fields to put in each JSON
object under which output keys, related objects, and paged lists with where they start.
A `Statement` is everything one request reads; its text depends only on these values
(never on a request's parameters), so each distinct one is compiled once."""

from dataclasses import dataclass
from enum import StrEnum

from db.reads.access import AccessKind


class ViewerKind(StrEnum):
    ANONYMOUS = "anonymous"
    MEMBER = "member"
    ADMIN = "admin"

    @property
    def signed_in(self) -> bool:
        return self is not ViewerKind.ANONYMOUS

    @property
    def access(self) -> AccessKind:
        """The content access decision every viewer of this kind gets (resolvers/policy.py
        `content_filter` decides the values; the kind decides the statement's text)."""
        if self is ViewerKind.ADMIN:
            return AccessKind.EVERYTHING
        return AccessKind.PUBLISHED_OR_OWN if self.signed_in else AccessKind.PUBLISHED


class Order(StrEnum):
    NEWEST = "NEWEST"
    OLDEST = "OLDEST"
    POPULAR = "POPULAR"


@dataclass(frozen=True, slots=True)
class Scalar:
    key: str
    field: str


@dataclass(frozen=True, slots=True)
class Constant:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Related:
    """A related object (or list of them, by the relation), built with `obj`."""

    key: str
    relation: str
    obj: "Obj"


@dataclass(frozen=True, slots=True)
class Paged:
    """A page of a list: its rows (each with its keyset position and, when `node` is
    given, the item's object), whether more follow, and (`count`) how many there are."""

    key: str
    source: "Source"
    node: "Obj | None"
    count: bool = False


Member = Scalar | Constant | Related | Paged


@dataclass(frozen=True, slots=True)
class Obj:
    entity: str
    members: tuple[Member, ...]


# --- where lists and lookups start -------------------------------------------------------
# `slot` numbers the list within its statement: its parameters are named after it.


@dataclass(frozen=True, slots=True)
class ContentList:
    slot: int
    order: Order = Order.NEWEST
    # Which of the filters are given: author_id, author_handle, tags, status, language.
    filters: frozenset[str] = frozenset()
    after: bool = False


@dataclass(frozen=True, slots=True)
class AuthorContents:
    """A user's content, newest first (the user is the object this list sits in)."""

    slot: int
    after: bool = False


@dataclass(frozen=True, slots=True)
class TagList:
    slot: int
    after: bool = False


@dataclass(frozen=True, slots=True)
class NotificationList:
    slot: int
    unread_only: bool = False
    after: bool = False


@dataclass(frozen=True, slots=True)
class FeedStart:
    """A feed's first page: ranked now; with `store`, the ranking is kept as a walk that
    later pages read (db/reads/walks.py); with `reasons`, each row carries what its
    reasons are worded from."""

    slot: int
    signed_in: bool
    store: bool
    reasons: bool = False
    # Read only the viewer's stored head and the stored shared list (walks.py `_lean`):
    # the page then says whether both were there ("served"); else it is asked again
    # without `lean`, which ranks every candidate and stores a head.
    lean: bool = False


@dataclass(frozen=True, slots=True)
class SearchStart:
    slot: int
    store: bool
    count: bool = False


@dataclass(frozen=True, slots=True)
class WalkPage:
    """A later page of a stored walk: a feed's (`feed`; anonymous viewers walk the shared
    list, `shared`) or a search's (`search_count` counts its matches too)."""

    slot: int
    feed: bool
    shared: bool = False
    reasons: bool = False
    search_count: bool = False


Source = (
    ContentList | AuthorContents | TagList | NotificationList | FeedStart | SearchStart | WalkPage
)


class By(StrEnum):
    ID = "id"
    HANDLE = "handle"
    VIEWER = "viewer"
    # Many objects by a list of ids: a JSON array in the list's order, null where none.
    IDS = "ids"
    # Every one the viewer may see, by id: a JSON array (a short list, never paged).
    ALL = "all"


@dataclass(frozen=True, slots=True)
class Lookup:
    """One object of `obj.entity` found by id, by handle, or the viewer themself (or, by
    ids or ALL, a list of them)."""

    key: str
    slot: int
    by: By
    obj: Obj


Root = Lookup | Paged


@dataclass(frozen=True, slots=True)
class Statement:
    """Everything one request reads. With `per_viewer`, the roots are answered once for
    each of many viewers of one kind (their ids are the `viewers` parameter): how one
    statement serves every subscriber of a live event. With `checks_token`, the statement
    also says whether its viewer still has the token version and role it was compiled
    for (the `token_version` and `role` parameters): a signed-in read checks its token
    in the same statement instead of one of its own."""

    viewer: ViewerKind
    roots: tuple[Root, ...]
    per_viewer: bool = False
    checks_token: bool = False
