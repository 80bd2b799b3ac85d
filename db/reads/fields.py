"""What each entity's fields are in SQL: one registry per entity, from which every read
builds its JSON. A plain column is a field by itself (datetimes written as the API writes
them); the entries below are the fields that are more than a column: global ids, counts,
and what depends on who asks (`personal`). A field reaches clients only when the GraphQL
schema declares it (schema/), under the same name."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import CTE

from db.outreach_tables import DEFAULT_DIGEST, DEFAULT_EMAIL_CHOICES
from db.ranking import RankingWeights
from db.reads import scoring
from db.reads.access import AccessKind, content_visible, visibilities_param
from db.reads.shape import ViewerKind
from db.reads.sql import BIGINT, BIGINTS, FLOATS, global_id, iso, lit, now, param
from db.tables import (
    Content,
    ContentTag,
    EmailSettings,
    Follow,
    FollowedTag,
    MutedAuthor,
    MutedTag,
    Notification,
    Preferences,
    Reaction,
    Tag,
    User,
    Webhook,
)

CONTENTS = Content.__table__  # type: ignore[attr-defined]
USERS = User.__table__  # type: ignore[attr-defined]
TAGS = Tag.__table__  # type: ignore[attr-defined]
CONTENT_TAGS = ContentTag.__table__  # type: ignore[attr-defined]
FOLLOWS = Follow.__table__  # type: ignore[attr-defined]
FOLLOWED_TAGS = FollowedTag.__table__  # type: ignore[attr-defined]
MUTED_TAGS = MutedTag.__table__  # type: ignore[attr-defined]
MUTED_AUTHORS = MutedAuthor.__table__  # type: ignore[attr-defined]
NOTIFICATIONS = Notification.__table__  # type: ignore[attr-defined]
PREFERENCES = Preferences.__table__  # type: ignore[attr-defined]
REACTIONS = Reaction.__table__  # type: ignore[attr-defined]
EMAIL_SETTINGS = EmailSettings.__table__  # type: ignore[attr-defined]
WEBHOOKS = Webhook.__table__  # type: ignore[attr-defined]


class Build:
    """One statement being written: who it is for (its kind; the values are parameters),
    the ranking knobs, and the CTEs its fields asked for.

    `viewer` is who asks, as SQL: the `viewer` parameter, or (`viewers`) a column, when
    one statement answers for many viewers at once (live events, execution/broadcast.py);
    their ids are then the `viewers` parameter."""

    def __init__(
        self, viewer_kind: ViewerKind, weights: RankingWeights, *, viewer: Any = None
    ) -> None:
        self.viewer_kind = viewer_kind
        self.weights = weights
        self.many = viewer is not None
        self.viewer: Any = viewer if viewer is not None else param("viewer", BIGINT)
        self._habits: CTE | None = None
        self._affinities: CTE | None = None
        # A feed's stored candidates by slot, when a first page reads them all.
        self.candidates: dict[int, CTE] = {}
        # Set by a feed's first page that reads a stored head (db/reads/walks.py).
        self.head_habits: CTE | None = None
        self._aliases = 0
        # Writes the statement makes as it reads (a stored walk, a touched state): CTEs
        # at the top of the statement, which Postgres runs whether or not it reads them.
        self.side_effects: list[CTE] = []

    def side_effect(self, cte: CTE) -> None:
        self.side_effects.append(cte)

    @property
    def access(self) -> AccessKind:
        return self.viewer_kind.access

    def alias(self, table: Any) -> Any:
        """A fresh alias: the same table appears at many depths of one statement, and a
        subquery must never be correlated to an outer use of its table by accident."""
        self._aliases += 1
        return table.alias(f"{table.name[:2]}{self._aliases}")

    def visible(self, row: Any) -> ColumnElement[bool]:
        """Whether the viewer may see the contents row `row` (db/reads/access.py)."""
        return content_visible(
            self.access, row, visibilities=visibilities_param(), author=self.viewer
        )

    def _viewers_are(self, user_id: Any) -> ColumnElement[bool]:
        """Whether `user_id` is the statement's viewer (or one of its viewers): for CTEs,
        which cannot read the per-viewer column of the statement around them."""
        if self.many:
            return user_id == sa.any_(param("viewers", BIGINTS))  # type: ignore[no-any-return]
        return user_id == self.viewer  # type: ignore[no-any-return]

    def habits(self) -> CTE:
        """(user_id, tag_id, decayed): the viewer's (or viewers') decayed reactions per
        tag, once per statement: as a feed's stored head keeps them when the statement
        reads one (`head_habits`), else computed from the reactions."""
        return self.head_habits if self.head_habits is not None else self.live_habits()

    def live_habits(self) -> CTE:
        """habits() computed from the reactions."""
        if self._habits is None:
            # MATERIALIZED: read once, not again for each row that looks a tag up in it.
            self._habits = scoring.habits(
                lambda r: self._viewers_are(r.c.user_id), now(), self.weights
            ).prefix_with("MATERIALIZED")
        return self._habits

    def affinities(self) -> CTE:
        """(user_id, tag_ids, affinities): the viewer's (or viewers') tag affinity to every
        tag they weight or have a habit of, as two arrays in step, computed once per
        statement; `affinity` reads a tag's. Arrays, not rows: a content's tags are
        ordered by affinity for every item of a page, and a row per tag made each of
        them scan the whole list of the viewer's habits and weights."""
        if self._affinities is None:
            h = self.habits()
            ft = self.alias(FOLLOWED_TAGS)
            weights = (
                sa.select(ft.c.user_id, ft.c.tag_id, ft.c.weight)
                .where(self._viewers_are(ft.c.user_id))
                .subquery("weights")
            )
            found = weights.join(
                h,
                sa.and_(h.c.user_id == weights.c.user_id, h.c.tag_id == weights.c.tag_id),
                full=True,
            )
            both = (
                sa.select(
                    sa.func.coalesce(weights.c.user_id, h.c.user_id).label("user_id"),
                    sa.func.coalesce(weights.c.tag_id, h.c.tag_id).label("tag_id"),
                    scoring.tag_affinity(weights.c.weight, h.c.decayed, self.weights).label(
                        "affinity"
                    ),
                )
                .select_from(found)
                .subquery("known")
            )
            self._affinities = (
                sa.select(
                    both.c.user_id,
                    sa.func.array_agg(both.c.tag_id, type_=BIGINTS).label("tag_ids"),
                    sa.func.array_agg(both.c.affinity, type_=FLOATS).label("affinities"),
                )
                .group_by(both.c.user_id)
                .cte("affinities")
                .prefix_with("MATERIALIZED")
            )
        return self._affinities

    def affinity(self, tag_id: Any) -> ColumnElement[Any]:
        """The viewer's affinity to the tag `tag_id` (scoring.tag_affinity); 0 when they
        have none. The arrays are read by uncorrelated subqueries, which Postgres runs
        once per statement for a single viewer, not once per tag."""
        ids, values = self.alias(self.affinities()), self.alias(self.affinities())
        tag_ids = sa.select(ids.c.tag_ids).where(ids.c.user_id == self.viewer).scalar_subquery()
        affinities = (
            sa.select(values.c.affinities).where(values.c.user_id == self.viewer).scalar_subquery()
        )
        return sa.func.coalesce(affinities[sa.func.array_position(tag_ids, tag_id)], lit(0.0))


Expr = Callable[[Any, Build], ColumnElement[Any]]


@dataclass(frozen=True, slots=True)
class Field:
    sql: Expr
    # Depends on who asks: live fan-out groups subscribers by what such fields need.
    personal: bool = False


@dataclass(frozen=True, slots=True)
class Relation:
    """How an object's related rows are found: `rows(parent, build)` gives the related
    entity's row alias, what to select it from, the conditions, and (for lists) the
    order; `many` says whether it is a list."""

    entity: str
    rows: Callable[[Any, Build], tuple[Any, Any, list[Any], list[Any]]]
    many: bool = False
    personal: bool = False


@dataclass(frozen=True, slots=True)
class Entity:
    name: str
    table: Any
    fields: Mapping[str, Field]
    relations: Mapping[str, Relation] = field(default_factory=dict)


def _columns(table: Any, *, hidden: frozenset[str] = frozenset()) -> dict[str, Field]:
    """Every column as a field of its own name; timestamps as the API writes them."""
    found: dict[str, Field] = {}
    for column in table.columns:
        if column.name in hidden:
            continue
        found[column.name] = Field(_column(column.name, isinstance(column.type, sa.DateTime)))
    return found


def _column(name: str, timestamp: bool) -> Expr:
    def sql(row: Any, _b: Build) -> ColumnElement[Any]:
        value: ColumnElement[Any] = row.c[name]
        return iso(value) if timestamp else value

    return sql


def _count(table: Any, condition: Callable[[Any, Any], Any]) -> Expr:
    def sql(row: Any, b: Build) -> ColumnElement[Any]:
        other = b.alias(table)
        return (
            sa.select(sa.func.count())
            .select_from(other)
            .where(condition(other, row))
            .scalar_subquery()
        )

    return sql


def _personal(signed_in: Expr, anonymous: ColumnElement[Any]) -> Field:
    """A field that depends on who asks; anonymous viewers get `anonymous`."""

    def sql(row: Any, b: Build) -> ColumnElement[Any]:
        return signed_in(row, b) if b.viewer_kind.signed_in else anonymous

    return Field(sql, personal=True)


def _exists(table: Any, condition: Callable[[Any, Any, Any], Any]) -> Expr:
    """Whether a row of `table` meets `condition(that row, this row, the viewer)`."""

    def sql(row: Any, b: Build) -> ColumnElement[Any]:
        other = b.alias(table)
        return sa.exists(
            sa.select(lit(1)).select_from(other).where(condition(other, row, b.viewer))
        )

    return sql


def _own_or_admin(value: Callable[[Any], ColumnElement[Any]]) -> Field:
    """resolvers/policy.py can_see_email: what only the user themself, or an admin, sees."""

    def sql(row: Any, b: Build) -> ColumnElement[Any]:
        if b.viewer_kind is ViewerKind.ADMIN:
            return value(row)
        if not b.viewer_kind.signed_in:
            return sa.null()
        return sa.case((row.c.id == b.viewer, value(row)), else_=sa.null())

    return Field(sql, personal=True)


def _tag_affinity(row: Any, b: Build) -> ColumnElement[Any]:
    return b.affinity(row.c.id)


def _tag_content_count(row: Any, b: Build) -> ColumnElement[Any]:
    """Published content the viewer may see that carries the tag (an author's own drafts
    are visible to them but do not count)."""
    ct, c = b.alias(CONTENT_TAGS), b.alias(CONTENTS)
    return (
        sa.select(sa.func.count())
        .select_from(ct.join(c, c.c.id == ct.c.content_id))
        .where(ct.c.tag_id == row.c.id, c.c.status == lit("PUBLISHED"), b.visible(c))
        .scalar_subquery()
    )


def _author(parent: Any, b: Build) -> tuple[Any, Any, list[Any], list[Any]]:
    u = b.alias(USERS)
    return u, u, [u.c.id == parent.c.author_id], []


def _content_tags(parent: Any, b: Build) -> tuple[Any, Any, list[Any], list[Any]]:
    """A content's tags, the viewer's favourites first (by tag affinity), then by name
    as Python sorts it."""
    ct, tags = b.alias(CONTENT_TAGS), b.alias(TAGS)
    # Each tag found by its key: joined as a table, Postgres's generic plan hashed all
    # the tags once per content (0.5 ms of a 1.3 ms signed-in feed page of 20).
    t = sa.select(tags).where(tags.c.id == ct.c.tag_id).limit(lit(1)).lateral(f"{tags.name}k")
    by_name = t.c.name.collate("C")
    source = ct.join(t, sa.true())
    if not b.viewer_kind.signed_in:
        return t, source, [ct.c.content_id == parent.c.id], [by_name]
    order = b.affinity(ct.c.tag_id)
    return t, source, [ct.c.content_id == parent.c.id], [order.desc(), by_name]


def _visible_content(
    parent_column: str,
) -> Callable[[Any, Build], tuple[Any, Any, list[Any], list[Any]]]:
    def rows(parent: Any, b: Build) -> tuple[Any, Any, list[Any], list[Any]]:
        c = b.alias(CONTENTS)
        return c, c, [c.c.id == parent.c[parent_column], b.visible(c)], []

    return rows


def _user_by(parent_column: str) -> Callable[[Any, Build], tuple[Any, Any, list[Any], list[Any]]]:
    def rows(parent: Any, b: Build) -> tuple[Any, Any, list[Any], list[Any]]:
        u = b.alias(USERS)
        return u, u, [u.c.id == parent.c[parent_column]], []

    return rows


def _own_preferences(parent: Any, b: Build) -> tuple[Any, Any, list[Any], list[Any]]:
    """Preferences describe a person's habits: only they see them (not even admins).
    The preferences object is read off the user's own row."""
    u = b.alias(USERS)
    if not b.viewer_kind.signed_in:
        return u, u, [sa.false()], []
    return u, u, [u.c.id == parent.c.id, u.c.id == b.viewer], []


def _followed_tags(parent: Any, b: Build) -> tuple[Any, Any, list[Any], list[Any]]:
    ft, t = b.alias(FOLLOWED_TAGS), b.alias(TAGS)
    source = ft.join(t, t.c.id == ft.c.tag_id)
    return ft, source, [ft.c.user_id == parent.c.id], [ft.c.weight.desc(), t.c.name.collate("C")]


def _muted_tags(parent: Any, b: Build) -> tuple[Any, Any, list[Any], list[Any]]:
    mt, t = b.alias(MUTED_TAGS), b.alias(TAGS)
    return (
        t,
        mt.join(t, t.c.id == mt.c.tag_id),
        [mt.c.user_id == parent.c.id],
        [t.c.name.collate("C")],
    )


def _muted_authors(parent: Any, b: Build) -> tuple[Any, Any, list[Any], list[Any]]:
    ma, u = b.alias(MUTED_AUTHORS), b.alias(USERS)
    return u, ma.join(u, u.c.id == ma.c.author_id), [ma.c.user_id == parent.c.id], [u.c.handle]


def _tag_of_weight(parent: Any, b: Build) -> tuple[Any, Any, list[Any], list[Any]]:
    t = b.alias(TAGS)
    return t, t, [t.c.id == parent.c.tag_id], []


def _same_user(parent: Any, b: Build) -> tuple[Any, Any, list[Any], list[Any]]:
    u = b.alias(USERS)
    return u, u, [u.c.id == parent.c.id], []


def _email_choice(column: str, default: str) -> Field:
    """A user's email setting; what everyone gets until they change it (no row)."""

    def sql(row: Any, b: Build) -> ColumnElement[Any]:
        es = b.alias(EMAIL_SETTINGS)
        chosen = sa.select(es.c[column]).where(es.c.user_id == row.c.id).scalar_subquery()
        return sa.func.coalesce(chosen, lit(default))

    return Field(sql)


def _webhook_events(row: Any, _b: Build) -> ColumnElement[Any]:
    """Stored as Standard Webhooks names them (content.published); the API's enum names
    are CONTENT_PUBLISHED."""
    event = sa.func.unnest(row.c.events).column_valued("event")
    return sa.func.array(
        sa.select(sa.func.upper(sa.func.replace(event, lit("."), lit("_")))).scalar_subquery()
    )


def _saved(column: str) -> Expr:
    def sql(row: Any, b: Build) -> ColumnElement[Any]:
        p = b.alias(PREFERENCES)
        return sa.select(p.c[column]).where(p.c.user_id == row.c.id).scalar_subquery()

    return sql


CONTENT = Entity(
    "content",
    CONTENTS,
    {
        **_columns(CONTENTS, hidden=frozenset({"search_vector"})),
        "id": Field(lambda row, _b: global_id("Content", row.c.id)),
        # The primary key, for what reads rows outside GraphQL (db/feed/digest.py).
        "row_id": Field(lambda row, _b: row.c.id),
        "viewer_has_reacted": _personal(
            _exists(REACTIONS, lambda r, c, v: sa.and_(r.c.user_id == v, r.c.content_id == c.c.id)),
            sa.false(),
        ),
    },
    {
        "author": Relation("user", _author),
        "tags": Relation("tag", _content_tags, many=True, personal=True),
    },
)

USER = Entity(
    "user",
    USERS,
    {
        **_columns(
            USERS,
            hidden=frozenset({"password_hash", "token_version", "email", "email_verified_at"}),
        ),
        "id": Field(lambda row, _b: global_id("User", row.c.id)),
        "email": _own_or_admin(lambda row: row.c.email),
        "email_verified": _own_or_admin(lambda row: row.c.email_verified_at.is_not(None)),
        "follower_count": Field(_count(FOLLOWS, lambda f, u: f.c.followee_id == u.c.id)),
        "following_count": Field(_count(FOLLOWS, lambda f, u: f.c.follower_id == u.c.id)),
        "viewer_follows": _personal(
            _exists(
                FOLLOWS, lambda f, u, v: sa.and_(f.c.follower_id == v, f.c.followee_id == u.c.id)
            ),
            sa.false(),
        ),
    },
    {"preferences": Relation("preferences", _own_preferences, personal=True)},
)

TAG = Entity(
    "tag",
    TAGS,
    {
        **_columns(TAGS),
        "id": Field(lambda row, _b: global_id("Tag", row.c.id)),
        "content_count": Field(_tag_content_count, personal=True),
        "viewer_affinity": _personal(_tag_affinity, lit(0.0)),
    },
)

NOTIFICATION = Entity(
    "notification",
    NOTIFICATIONS,
    {
        **_columns(NOTIFICATIONS),
        "id": Field(lambda row, _b: global_id("Notification", row.c.id)),
        "read": Field(lambda row, _b: row.c.read_at.is_not(None)),
    },
    {
        "actor": Relation("user", _user_by("actor_id")),
        "content": Relation("content", _visible_content("content_id"), personal=True),
    },
)

# A user's preferences, read off their own users row (users who never saved any get
# the defaults: every language, nothing followed or muted, updated when they joined).
PREFERENCES_ENTITY = Entity(
    "preferences",
    USERS,
    {
        "languages": Field(
            lambda row, b: sa.func.coalesce(_saved("languages")(row, b), sa.text("'{}'::text[]"))
        ),
        "updated_at": Field(
            lambda row, b: iso(sa.func.coalesce(_saved("updated_at")(row, b), row.c.created_at))
        ),
    },
    {
        "followed_tags": Relation("tag_weight", _followed_tags, many=True),
        "muted_tags": Relation("tag", _muted_tags, many=True),
        "muted_authors": Relation("user", _muted_authors, many=True),
        "email": Relation("email_settings", _same_user),
    },
)

# Read off the user's own row too: users who never changed them have no row.
EMAIL_SETTINGS_ENTITY = Entity(
    "email_settings",
    USERS,
    {
        **{name: _email_choice(name, choice) for name, choice in DEFAULT_EMAIL_CHOICES.items()},
        "digest": _email_choice("digest", DEFAULT_DIGEST),
    },
)

# Only admins see webhooks (db/reads/sources.py finds none for anyone else).
WEBHOOK = Entity(
    "webhook",
    WEBHOOKS,
    {
        **_columns(WEBHOOKS, hidden=frozenset({"secret", "created_by", "consecutive_failures"})),
        "id": Field(lambda row, _b: global_id("Webhook", row.c.id)),
        "events": Field(_webhook_events),
    },
)

TAG_WEIGHT = Entity(
    "tag_weight",
    FOLLOWED_TAGS,
    {"weight": Field(lambda row, _b: row.c.weight)},
    {"tag": Relation("tag", _tag_of_weight)},
)

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        CONTENT,
        USER,
        TAG,
        NOTIFICATION,
        PREFERENCES_ENTITY,
        TAG_WEIGHT,
        EMAIL_SETTINGS_ENTITY,
        WEBHOOK,
    )
}


def aggregate(obj_json: ColumnElement[Any], order: list[Any]) -> ColumnElement[Any]:
    """json_agg of a list's objects in `order`; an empty list is [] (not null)."""
    collected = (
        sa.func.json_agg(aggregate_order_by(obj_json, *order))
        if order
        else sa.func.json_agg(obj_json)
    )
    return sa.func.coalesce(collected, sa.text("'[]'::json"))
