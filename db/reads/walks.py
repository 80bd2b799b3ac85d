"""Ranked lists that are walked page by page: the feed and search results.

A first page ranks (the feed from the viewer's stored candidates and the shared popular
items, docs/ranking.md; search from its matches) and, when the client reads cursors,
stores the ranking as a walk in the same statement; later pages read their slice of the
stored walk. So a walk never repeats an item and never skips one that ranked ahead of
its cursor, whatever changes meanwhile; content hidden since is left out.

Each page row is [position, score, reasons, item]: `reasons` are the facts the edge's
reasons are worded from (resolvers/ranking.py), or null when nobody asked for them."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import CTE

from db.reads import scoring
from db.reads.fields import (
    CONTENT_TAGS,
    CONTENTS,
    FOLLOWED_TAGS,
    FOLLOWS,
    MUTED_AUTHORS,
    MUTED_TAGS,
    PREFERENCES,
    TAGS,
    USERS,
    Build,
)
from db.reads.shape import FeedStart, SearchStart, WalkPage
from db.reads.sources import Rows, slot_param
from db.reads.sql import BIGINTS, FLOATS, INT, TEXT, epoch, iso, lit, now
from db.tables import FeedEntry, FeedJob, FeedShared, FeedSnapshot, FeedState

ENTRIES = FeedEntry.__table__  # type: ignore[attr-defined]
SHARED = FeedShared.__table__  # type: ignore[attr-defined]
SNAPSHOTS = FeedSnapshot.__table__  # type: ignore[attr-defined]
STATE = FeedState.__table__  # type: ignore[attr-defined]
JOBS = FeedJob.__table__  # type: ignore[attr-defined]

WALK_LIFETIME_SECONDS = 3600
# How far apart two processes' clocks may be, for comparing a stored shared list's scores.
SKEW_SECONDS = 60.0
# Who may see the items of a shared list: anonymous viewers, or any member.
SHARED_AUDIENCES = {"anonymous": ("PUBLIC",), "members": ("PUBLIC", "MEMBERS")}
EMPTY_IDS: ColumnElement[Any] = sa.literal_column("'{}'::bigint[]")
EMPTY_TEXTS: ColumnElement[Any] = sa.literal_column("'{}'::text[]")
# What a shared list holds of each item, in its order.
SHARED_COLUMNS = [
    "position",
    "content_id",
    "author_id",
    "published_at",
    "language",
    "tag_ids",
    "reactions",
    "score",
]


def _ago(seconds: float) -> ColumnElement[Any]:
    return now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, lit(float(seconds)))


def _content_columns(c: Any) -> list[Any]:
    return [column for column in c.c if column.name != "search_vector"]


def _published_visible(c: Any, b: Build) -> list[ColumnElement[bool]]:
    return [c.c.status == lit("PUBLISHED"), b.visible(c)]


def _tag_ids(content_id: Any, b: Build) -> ColumnElement[Any]:
    ct = b.alias(CONTENT_TAGS)
    found = sa.select(sa.func.array_agg(ct.c.tag_id)).where(ct.c.content_id == content_id)
    return sa.func.coalesce(found.scalar_subquery(), EMPTY_IDS)


# --- the shared list -------------------------------------------------------------------


def shared_list(b: Build, audience: str, bucket: Any, *, top: int | None = None) -> CTE:
    """The audience's popular and fresh items of this minute (`bucket`), ranked by what
    every viewer's score shares (the first `top` of them when given). The first request
    of a minute ranks them (~10 ms) and stores them for everyone; the feed worker
    usually did already. Two first requests at once each use their own ranking; one of
    them is stored."""
    return sa.union_all(*shared_parts(b, audience, bucket, top=top)).cte(f"{audience}_shared")


def shared_parts(b: Build, audience: str, bucket: Any, *, top: int | None = None) -> list[Any]:
    """shared_list as its two parts, the stored list and the one this statement ranks
    when none is stored yet (one of them is empty), each a select of SHARED_COLUMNS."""
    w = b.weights
    c = b.alias(CONTENTS)
    window = sa.func.make_interval(0, 0, 0, lit(w.window_days))
    recent = (
        sa.select(c.c.id)
        .where(
            c.c.status == lit("PUBLISHED"), c.c.listed_at <= now(), c.c.listed_at > now() - window
        )
        .order_by(c.c.listed_at.desc())
        .limit(lit(w.per_source_limit * 2))
    )
    p = b.alias(CONTENTS)
    popular = (
        sa.select(p.c.id)
        .where(p.c.status == lit("PUBLISHED"), p.c.listed_at <= now())
        .order_by(p.c.reaction_count.desc(), p.c.id.desc())
        .limit(lit(w.per_source_limit))
    )
    candidates = sa.union(recent, popular).subquery(f"{audience}_candidates")
    k = b.alias(CONTENTS)
    score = scoring.shared_score(k.c.reaction_count, k.c.published_at, w, now())
    stored = sa.exists(sa.select(lit(1)).select_from(SHARED).where(SHARED.c.bucket == bucket))
    ranked = (
        sa.select(
            sa.func.row_number().over(order_by=[score.desc(), k.c.id.desc()]).label("position"),
            k.c.id.label("content_id"),
            k.c.author_id,
            k.c.published_at,
            k.c.language,
            _tag_ids(k.c.id, b).label("tag_ids"),
            k.c.reaction_count.label("reactions"),
            score.label("score"),
        )
        .select_from(candidates.join(k, k.c.id == candidates.c.id))
        .where(
            k.c.status == lit("PUBLISHED"),
            k.c.visibility.in_([lit(v) for v in SHARED_AUDIENCES[audience]]),
            ~stored,
        )
        .order_by(score.desc(), k.c.id.desc())
        .limit(lit(w.walk_size))
        .cte(f"{audience}_ranked")
    )
    columns = SHARED_COLUMNS
    b.side_effect(
        insert(SHARED)
        .from_select(["bucket", *columns], sa.select(bucket, *(ranked.c[n] for n in columns)))
        .on_conflict_do_nothing()
        .cte(f"{audience}_stored")
    )
    existing = _stored_shared(bucket, None)
    fresh = sa.select(*(ranked.c[n] for n in columns))
    if top is not None:
        # Here, not on the union: Postgres does not push a condition on a window
        # function's result (`position` of the fresh ranking) into a union's branches,
        # and the stored list is then read whole, through its (bucket, position) key.
        existing = _stored_shared(bucket, top)
        fresh = fresh.where(ranked.c.position <= lit(top))
    return [existing, fresh]


def _stored_shared(bucket: Any, top: int | None) -> Any:
    """The shared list stored for `bucket` (its first `top` items when given)."""
    found = sa.select(*(SHARED.c[n] for n in SHARED_COLUMNS)).where(SHARED.c.bucket == bucket)
    return found if top is None else found.where(SHARED.c.position <= lit(top))


# --- reasons ---------------------------------------------------------------------------


def reasons(
    c: Any, b: Build, *, habit_tag_id: Any = None, habit_decayed: Any = None
) -> ColumnElement[Any]:
    """What an item's reasons are worded from: [the author's handle if the viewer follows
    them, {tag: the viewer's weight}, the habit tag that counted, its learned affinity,
    reactions, publication time]."""
    reactions = c.c.reaction_count
    published = iso(c.c.published_at)
    if not b.viewer_kind.signed_in:
        return sa.func.json_build_array(
            sa.null(), sa.null(), sa.null(), lit(0.0), reactions, published
        )
    u, f = b.alias(USERS), b.alias(FOLLOWS)
    followed = (
        sa.select(u.c.handle)
        .where(
            u.c.id == c.c.author_id,
            sa.exists(
                sa.select(lit(1))
                .select_from(f)
                .where(f.c.follower_id == b.viewer, f.c.followee_id == c.c.author_id)
            ),
        )
        .scalar_subquery()
    )
    ct, ft, t = b.alias(CONTENT_TAGS), b.alias(FOLLOWED_TAGS), b.alias(TAGS)
    weights = (
        sa.select(sa.func.json_object_agg(t.c.name, ft.c.weight))
        .select_from(
            ct.join(ft, sa.and_(ft.c.tag_id == ct.c.tag_id, ft.c.user_id == b.viewer)).join(
                t, t.c.id == ct.c.tag_id
            )
        )
        .where(ct.c.content_id == c.c.id)
        .scalar_subquery()
    )
    if habit_tag_id is None:
        return sa.func.json_build_array(
            followed, weights, sa.null(), lit(0.0), reactions, published
        )
    h = b.alias(TAGS)
    habit = sa.select(h.c.name).where(h.c.id == habit_tag_id).scalar_subquery()
    learned = scoring.learned(sa.func.coalesce(habit_decayed, lit(0.0)), b.weights)
    return sa.func.json_build_array(followed, weights, habit, learned, reactions, published)


# --- the feed's first page ---------------------------------------------------------------


def _languages(b: Build) -> ColumnElement[Any]:
    """The viewer's languages; empty (every language) when they chose none."""
    p = b.alias(PREFERENCES)
    chosen = sa.select(p.c.languages).where(p.c.user_id == b.viewer).scalar_subquery()
    return sa.func.coalesce(chosen, EMPTY_TEXTS)


def _viewer_filters(row: Any, b: Build) -> list[ColumnElement[bool]]:
    """What the viewer's preferences take out (docs/ranking.md: filtered, never ranked
    low): their own content, muted tags and authors, languages they did not choose."""
    mt, ma = b.alias(MUTED_TAGS), b.alias(MUTED_AUTHORS)
    muted_tags = sa.select(sa.func.array_agg(mt.c.tag_id)).where(mt.c.user_id == b.viewer)
    muted_authors = sa.select(sa.func.array_agg(ma.c.author_id)).where(ma.c.user_id == b.viewer)
    languages = _languages(b)
    return [
        row.c.author_id != b.viewer,
        ~row.c.tag_ids.op("&&", return_type=sa.Boolean)(
            sa.func.coalesce(muted_tags.scalar_subquery(), EMPTY_IDS)
        ),
        ~(row.c.author_id == sa.any_(sa.func.coalesce(muted_authors.scalar_subquery(), EMPTY_IDS))),
        sa.or_(sa.func.cardinality(languages) == lit(0), row.c.language == sa.any_(languages)),
    ]


# A stored candidate's columns besides its viewer: what rebuilds and fan-out write and
# first pages read.
ENTRY_COLUMNS = (
    "content_id",
    "author_id",
    "published_at",
    "language",
    "tag_ids",
    "affinity",
    "reactions",
    "habit_tag_id",
    "habit_decayed",
)


def _pool(b: Build, slot: int, *, walk: bool, lean: bool = False) -> CTE:
    """The viewer's stored candidates, and the top of the members' shared list that is
    not among them (with no affinity: whatever the viewer has an affinity to reached
    their stored feed when it was published or rebuilt).

    Without a walk to store, only the head is ranked, and of the shared list only its
    first `head` items the viewer keeps can reach it: with no affinity of their own,
    they score in the list's order. They are read in that order and the reading stops
    there, instead of checking all `shared_candidates` of them against the stored feed
    (a third of a first page's ranking). A lean page (shape.FeedStart) reads only the
    stored head and the stored list, and the list only down to the head's floor
    (`_reach_head`)."""
    if walk:
        mine: list[Any] = [
            sa.select(*(ENTRIES.c[n] for n in ENTRY_COLUMNS)).where(ENTRIES.c.viewer_id == b.viewer)
        ]
    else:
        mine = _mine_for_head(b, slot, lean=lean)
    top = b.weights.shared_candidates
    bucket = slot_param(slot, "bucket", TEXT)
    parts = [_stored_shared(bucket, top)] if lean else shared_parts(b, "members", bucket, top=top)
    theirs: list[Any] = []
    for index, part in enumerate(parts if not walk else [sa.union_all(*parts)]):
        shared = part.subquery(f"shared{slot}_{index}")
        e = b.alias(ENTRIES)
        unseen = sa.select(
            shared.c.content_id,
            shared.c.author_id,
            shared.c.published_at,
            shared.c.language,
            shared.c.tag_ids,
            lit(0.0).label("affinity"),
            shared.c.reactions,
            sa.cast(sa.null(), sa.BigInteger).label("habit_tag_id"),
            lit(0.0).label("habit_decayed"),
        ).where(
            ~sa.exists(
                sa.select(lit(1))
                .select_from(e)
                .where(e.c.viewer_id == b.viewer, e.c.content_id == shared.c.content_id)
            ),
        )
        if not walk:
            unseen = (
                unseen.where(*_viewer_filters(shared, b))
                .order_by(shared.c.position)
                .limit(slot_param(slot, "head", INT))
            )
        if lean:
            unseen = unseen.where(*_reach_head(b, slot, bucket, shared))
        theirs.append(unseen.subquery(f"unseen{slot}_{index}").select())
    return sa.union_all(*mine, *theirs).cte(f"pool{slot}")


def _reach_head(b: Build, slot: int, bucket: Any, shared: Any) -> list[Any]:
    """Which shared items a lean page reads: those listed with a score of at least the
    head's floor (the head-th best score the head's own candidates keep until it
    expires). An item's score now is at most the one it was listed with (the same
    reaction count; freshness only falls), so below the floor that many of the viewer's
    own candidates beat it: it cannot reach the head. When even the list's first cannot,
    the list is not read at all (the bench viewer's case: a floor of 3.7, the list's best
    at 1.1). A list is ranked as of its minute's start, never later than it is read; the
    floor is lowered by a minute of freshness all the same, for clocks that differ
    between processes."""
    w = b.weights
    s = b.alias(STATE)
    slack = w.freshness * (1 - 0.5 ** (SKEW_SECONDS / (w.fresh_half_life_hours * 3600)))
    found = sa.select(s.c.head_floor - lit(slack)).where(s.c.viewer_id == b.viewer)
    floor = sa.func.coalesce(found.scalar_subquery(), sa.literal_column("'-Infinity'::float8"))
    best = (
        sa.select(SHARED.c.score)
        .where(SHARED.c.bucket == bucket, SHARED.c.position == lit(1))
        .scalar_subquery()
    )
    return [best >= floor, shared.c.score >= floor]


def feed_start(source: FeedStart, b: Build) -> Rows:
    if not source.signed_in:
        return _shared_feed(source, b)
    w = b.weights
    slot = source.slot
    pool = _pool(b, slot, walk=source.store, lean=source.lean)
    approx_score = pool.c.affinity + scoring.shared_score(
        pool.c.reactions, pool.c.published_at, w, now()
    )
    order = [approx_score.desc(), pool.c.content_id.desc()]
    head_size = slot_param(slot, "head", INT)
    if source.store:
        approx = (
            sa.select(
                *pool.c,
                approx_score.label("approx"),
                sa.func.row_number().over(order_by=order).label("rank"),
            )
            .where(*_viewer_filters(pool, b))
            .order_by(*order)
            .limit(lit(w.walk_size))
            .cte(f"approx{slot}")
        )
        in_head: list[ColumnElement[bool]] = [approx.c.rank <= head_size]
    else:
        # No walk to store: only the head is read, and the best few of the candidates
        # are found without numbering and sorting all of them.
        # The pool's parts are filtered already (`_pool`).
        approx = sa.select(*pool.c).order_by(*order).limit(head_size).cte(f"approx{slot}")
        in_head = []
    # The best of them again with what changes by the second: live reactions, and
    # whether the viewer may still see the item.
    c = b.alias(CONTENTS)
    live = approx.c.affinity + scoring.shared_score(
        c.c.reaction_count, approx.c.published_at, w, now()
    )
    head = (
        sa.select(
            *_content_columns(c),
            live.label("walk_score"),
            sa.func.row_number()
            .over(order_by=[live.desc(), approx.c.content_id.desc()])
            .label("walk_position"),
            approx.c.habit_tag_id.label("walk_habit_tag"),
            approx.c.habit_decayed.label("walk_habit_decayed"),
        )
        .select_from(approx.join(c, c.c.id == approx.c.content_id))
        .where(*in_head, *_published_visible(c, b))
        .cte(f"head{slot}")
    )
    extra: list[tuple[str, Any]] = []
    if source.store:
        _store_walk(b, slot, head, approx)
        touch_state(b)
    elif source.lean:
        # Read-only: what reading writes is sent apart when due (db/feed/jobs.py `touch`).
        extra.append(("touch", _touch_due(b)))
        if b.head_habits is None:
            b.head_habits = _stored_habits(b, slot).cte(f"head_habits{slot}")
        extra.append(("served", _lean_served(b, slot)))
    else:
        touch_state(b, head=_head(b, slot))
        if b.head_habits is None:
            b.head_habits = _head_habits(b, slot)
    select = sa.select(head).order_by(head.c.walk_position).limit(slot_param(slot, "fetch", INT))
    state = sa.select(
        sa.and_(
            ~STATE.c.stale,
            STATE.c.built_at.is_not(None),
            STATE.c.seen_at > _ago(w.inactive_days * 86400),
        )
    ).where(STATE.c.viewer_id == b.viewer)
    return Rows(
        select,
        lambda page: [page.c.walk_position],
        lambda page: [
            page.c.walk_position,
            page.c.walk_score,
            reasons(
                page, b, habit_tag_id=page.c.walk_habit_tag, habit_decayed=page.c.walk_habit_decayed
            )
            if source.reasons
            else sa.null(),
        ],
        None,
        extra=[("fresh", sa.func.coalesce(state.scalar_subquery(), sa.false())), *extra],
    )


def _store_walk(b: Build, slot: int, head: CTE, approx: CTE) -> None:
    """The walk: the live-scored head first, then the rest in their stored-score order."""
    walk = sa.union_all(
        sa.select(
            head.c.id.label("content_id"),
            head.c.walk_score.label("score"),
            lit(0).label("part"),
            head.c.walk_position.label("at"),
        ),
        sa.select(approx.c.content_id, approx.c.approx, lit(1), approx.c.rank).where(
            approx.c.rank > slot_param(slot, "head", INT)
        ),
    ).subquery(f"walk{slot}")
    _store_snapshot(
        b, slot, walk.c.content_id, walk.c.score, [walk.c.part, walk.c.at], f"walk{slot}_stored"
    )


def _store_snapshot(
    b: Build, slot: int, content_id: Any, score: Any, order: list[Any], name: str
) -> None:
    """Stores a walk (feed or search) as the slot's snapshot: its ids and scores in
    `order`, which later pages read by position."""
    b.side_effect(
        insert(SNAPSHOTS)
        .from_select(
            ["id", "viewer_id", "content_ids", "scores"],
            sa.select(
                slot_param(slot, "walk", TEXT),
                b.viewer,
                sa.func.coalesce(
                    sa.func.array_agg(aggregate_order_by(content_id, *order)), EMPTY_IDS
                ),
                sa.func.coalesce(
                    sa.func.array_agg(aggregate_order_by(score, *order)),
                    sa.literal_column("'{}'::float8[]"),
                ),
            ),
        )
        .cte(name)
    )


def touch_state(b: Build, *, head: dict[str, Any] | None = None) -> None:
    """Reading the feed keeps the viewer active (to the hour: one write an hour at most),
    and a feed older than refresh_hours is rebuilt in the background. With `head` (the
    values of a head to store, when the stored one no longer serves), the same write
    stores it: one row cannot be updated twice in a statement."""
    w = b.weights
    away = STATE.c.seen_at < _ago(3600)
    touched = sa.update(STATE).where(STATE.c.viewer_id == b.viewer)
    if head is None:
        touched = touched.where(away).values(seen_at=now())
    else:
        stale = head.pop("stale")
        touched = touched.where(
            sa.or_(away, stale),
            # Not if the row changed since this statement's snapshot: a fan-out or a
            # rebuild that committed meanwhile cleared the head because this statement's
            # candidates are no longer the feed's, and its head must not be stored.
            sa.literal_column("feed_state.xmin::text") == _snapshot_version(b),
        ).values(
            seen_at=sa.case((away, now()), else_=STATE.c.seen_at),
            **{name: sa.case((stale, value), else_=STATE.c[name]) for name, value in head.items()},
        )
    b.side_effect(touched.cte("seen"))
    old = sa.exists(
        sa.select(lit(1)).where(
            STATE.c.viewer_id == b.viewer, STATE.c.built_at < _ago(w.refresh_hours * 3600)
        )
    )
    b.side_effect(
        insert(JOBS)
        .from_select(["kind", "target"], sa.select(lit("rebuild"), b.viewer).where(old))
        .on_conflict_do_nothing()
        .cte("refresh")
    )


def _touch_due(b: Build) -> ColumnElement[bool]:
    """Whether reading the feed now has something to write (`touch_state`): the viewer's
    last read is an hour old, or the feed is older than refresh_hours and its rebuild
    not queued yet."""
    s, j = b.alias(STATE), b.alias(JOBS)
    queued = sa.exists(sa.select(lit(1)).where(j.c.kind == lit("rebuild"), j.c.target == b.viewer))
    old = sa.and_(s.c.built_at < _ago(b.weights.refresh_hours * 3600), ~queued)
    due = sa.or_(s.c.seen_at < _ago(3600), old)
    return sa.exists(sa.select(lit(1)).where(s.c.viewer_id == b.viewer, due))


def _snapshot_version(b: Build) -> ColumnElement[Any]:
    """The version of the viewer's feed_state row this statement's snapshot sees."""
    s = b.alias(STATE)
    return (
        sa.select(sa.literal_column(f"{s.name}.xmin::text"))
        .where(s.c.viewer_id == b.viewer)
        .scalar_subquery()
    )


# --- heads ----------------------------------------------------------------------------
#
# A first page without a walk ranks only the best `head` candidates (the page and the
# live margin). Of the viewer's stored candidates, which can be among them changes only
# as they age: the stored part of a score (affinity, popularity with the stored count)
# is fixed, and freshness only falls, every item's by the same factor. So a candidate
# whose score now is below the head-th best of the scores all of them will have in
# `head_minutes` cannot reach the head in that time (the head-th best candidate then
# still beats it), and the head is the rest: usually a few more than `head`. The first
# page that finds no head ranks every candidate and stores it on feed_state; the next
# ones read only those rows. Whatever changes the stored candidates clears it (db/feed/).


def _head_fits(state: Any, slot: int) -> ColumnElement[bool]:
    return sa.and_(state.c.head_until > now(), state.c.head_size >= slot_param(slot, "head", INT))


def _lean_served(b: Build, slot: int) -> ColumnElement[bool]:
    """Whether a lean first page found what it reads: the viewer's head, of its size and
    still serving, and this minute's shared list."""
    s = b.alias(STATE)
    head = sa.exists(sa.select(lit(1)).where(s.c.viewer_id == b.viewer, _head_fits(s, slot)))
    shared = sa.exists(sa.select(lit(1)).where(SHARED.c.bucket == slot_param(slot, "bucket", TEXT)))
    return sa.and_(head, shared)


def _mine_for_head(b: Build, slot: int, *, lean: bool = False) -> list[Any]:
    """The viewer's stored candidates that can reach the head: the stored head while it
    serves, else every candidate the viewer keeps (`_candidates`), one part empty; a
    lean page reads the head only."""
    s = b.alias(STATE)
    rows = (
        sa.func.unnest(
            s.c.head_ids,
            s.c.head_published,
            s.c.head_affinity,
            s.c.head_reactions,
            s.c.head_habit_tags,
            s.c.head_habit_decayed,
        )
        .table_valued(
            "content_id", "published_at", "affinity", "reactions", "habit_tag_id", "habit_decayed"
        )
        .render_derived(name=f"heads{slot}")
    )
    # Filtered when the head was stored; any filter's change makes the feed stale,
    # and its rebuild clears the head.
    stored = sa.select(
        rows.c.content_id,
        sa.cast(sa.null(), sa.BigInteger).label("author_id"),
        rows.c.published_at,
        sa.cast(sa.null(), sa.Text).label("language"),
        sa.cast(sa.null(), BIGINTS).label("tag_ids"),
        rows.c.affinity,
        rows.c.reactions,
        rows.c.habit_tag_id,
        rows.c.habit_decayed,
    ).select_from(s.join(rows, sa.true()))
    stored = stored.where(s.c.viewer_id == b.viewer, _head_fits(s, slot))
    if lean:
        return [stored]
    every = _candidates(b, slot)
    return [stored, sa.select(*(every.c[n] for n in ENTRY_COLUMNS))]


def _candidates(b: Build, slot: int) -> CTE:
    """Every stored candidate the viewer keeps, read only when no head serves."""
    found = b.candidates.get(slot)
    if found is None:
        s = b.alias(STATE)
        serves = sa.select(_head_fits(s, slot)).where(s.c.viewer_id == b.viewer)
        found = b.candidates[slot] = (
            sa.select(*(ENTRIES.c[n] for n in ENTRY_COLUMNS))
            .where(
                ENTRIES.c.viewer_id == b.viewer,
                *_viewer_filters(ENTRIES, b),
                ~sa.func.coalesce(serves.scalar_subquery(), sa.false()),
            )
            .cte(f"candidates{slot}")
        )
    return found


def _head_habits(b: Build, slot: int) -> CTE:
    """The viewer's habits as their stored head keeps them (`_stored_habits`), or
    computed from the reactions when no head serves."""
    live = b.live_habits()
    t = b.alias(STATE)
    serves = sa.select(_head_fits(t, slot)).where(t.c.viewer_id == b.viewer).scalar_subquery()
    computed = sa.select(live.c.user_id, live.c.tag_id, live.c.decayed).where(
        ~sa.func.coalesce(serves, sa.false())
    )
    both = sa.union_all(_stored_habits(b, slot), computed)
    return both.cte(f"head_habits{slot}").prefix_with("MATERIALIZED")


def _stored_habits(b: Build, slot: int) -> Any:
    """The viewer's habits as their stored head keeps them, decayed to now (each reaction
    halves every half-life, so their sum per tag does too). A reaction of the viewer
    clears their head (its trigger)."""
    s = b.alias(STATE)
    rows = (
        sa.func.unnest(s.c.head_learned_tags, s.c.head_learned_decayed)
        .table_valued("tag_id", "decayed")
        .render_derived(name=f"learned{slot}")
    )
    since = scoring.seconds(now()) - epoch(s.c.head_at)
    factor = scoring.decay(since, b.weights.habit_half_life_days * scoring.SECONDS_A_DAY)
    stored = (
        sa.select(
            s.c.viewer_id.label("user_id"),
            rows.c.tag_id,
            (rows.c.decayed * factor).label("decayed"),
        )
        .select_from(s.join(rows, sa.true()))
        .where(s.c.viewer_id == b.viewer, _head_fits(s, slot))
    )
    return stored


def _head(b: Build, slot: int) -> dict[str, Any]:
    """feed_state's head columns as a first page that ranked every candidate stores
    them, and under "stale" when it does."""
    w = b.weights
    every = _candidates(b, slot)
    later = now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, lit(float(w.head_minutes * 60)))
    now_score = every.c.affinity + scoring.shared_score(
        every.c.reactions, every.c.published_at, w, now()
    )
    later_score = every.c.affinity + scoring.shared_score(
        every.c.reactions, every.c.published_at, w, later
    )
    scored = sa.select(*every.c, now_score.label("now"), later_score.label("later")).cte(
        f"scored{slot}"
    )
    size = slot_param(slot, "head", INT)
    bar = (
        sa.select(scored.c.later)
        .order_by(scored.c.later.desc())
        .offset(size - lit(1))
        .limit(lit(1))
        .scalar_subquery()
    )
    floor = sa.func.coalesce(bar, sa.literal_column("'-Infinity'::float8"))
    kept = sa.select(scored).where(scored.c.now >= floor).cte(f"kept{slot}")

    def listed(column: str) -> Any:
        return sa.select(sa.func.array_agg(kept.c[column])).scalar_subquery()

    stale = sa.or_(
        STATE.c.head_until.is_(None),
        STATE.c.head_until <= now(),
        STATE.c.head_size < size,
    )
    return {
        "stale": stale,
        "head_ids": sa.func.coalesce(listed("content_id"), EMPTY_IDS),
        "head_published": listed("published_at"),
        "head_affinity": listed("affinity"),
        "head_reactions": listed("reactions"),
        "head_habit_tags": listed("habit_tag_id"),
        "head_habit_decayed": listed("habit_decayed"),
        "head_size": size,
        "head_until": later,
        "head_floor": floor,
        "head_at": now(),
        "head_learned_tags": _learned(b, "tag_id"),
        "head_learned_decayed": _learned(b, "decayed"),
    }


def _learned(b: Build, column: str) -> Any:
    live = b.live_habits()
    found = sa.select(sa.func.array_agg(aggregate_order_by(live.c[column], live.c.tag_id)))
    return found.where(live.c.user_id == b.viewer).scalar_subquery()


def _shared_feed(source: FeedStart, b: Build) -> Rows:
    """Anonymous viewers have no signals: their feed is the shared list itself, and its
    bucket is their walk (nothing is stored per request)."""
    slot = source.slot
    shared = shared_list(b, "anonymous", slot_param(slot, "bucket", TEXT))
    c = b.alias(CONTENTS)
    select = (
        sa.select(
            *_content_columns(c),
            shared.c.position.label("walk_position"),
            shared.c.score.label("walk_score"),
        )
        .select_from(shared.join(c, c.c.id == shared.c.content_id))
        .where(*_published_visible(c, b))
        .order_by(shared.c.position)
        .limit(slot_param(slot, "fetch", INT))
    )
    return Rows(
        select,
        lambda page: [page.c.walk_position],
        lambda page: [
            page.c.walk_position,
            page.c.walk_score,
            reasons(page, b) if source.reasons else sa.null(),
        ],
        None,
    )


# Search's totalCount counts at most this many matches (docs/ranking.md): an exact count
# of a common word reads every match, and search ranks only the newest matches anyway.
SEARCH_COUNT_LIMIT = 10_000


def _viewer_array(column: Any, order: Any, where: list[Any], type_: Any) -> ColumnElement[Any]:
    """One column of the viewer's rows as an array in `order`: an uncorrelated subquery,
    which Postgres runs once per statement however many rows read it."""
    found = sa.select(sa.func.array_agg(aggregate_order_by(column, order))).where(*where)
    return sa.type_coerce(found.scalar_subquery(), type_)


def _tag_affinity(c: Any, b: Build) -> ColumnElement[Any]:
    """The tags' part of the viewer's affinity to the item: the sum of the viewer's weights
    of its tags, plus the learned affinity of the strongest habit among its other tags.

    The viewer's weights, and the learned affinities of their habits of tags they gave no
    weight, are read once per statement as arrays, so each candidate costs one probe of
    content_tags. Joined row by row instead, Postgres rescanned the candidate's tags once
    per habit (~50 for the bench viewer: 0.17 ms a candidate, of up to 2,400), and the
    learned formula repeated that subquery three times (docs/performance.md). Learned
    affinity grows with the decayed sum, so the strongest habit's is the largest of them."""
    ft, hft = b.alias(FOLLOWED_TAGS), b.alias(FOLLOWED_TAGS)
    habits = b.alias(b.habits())
    mine = [ft.c.user_id == b.viewer]
    weight_ids = _viewer_array(ft.c.tag_id, ft.c.tag_id, mine, BIGINTS)
    weights = _viewer_array(ft.c.weight, ft.c.tag_id, mine, FLOATS)
    weighted = sa.exists(
        sa.select(lit(1))
        .select_from(hft)
        .where(hft.c.user_id == b.viewer, hft.c.tag_id == habits.c.tag_id)
    )
    unweighted = [habits.c.user_id == b.viewer, ~weighted]
    habit_ids = _viewer_array(habits.c.tag_id, habits.c.tag_id, unweighted, BIGINTS)
    learned = scoring.learned(habits.c.decayed, b.weights)
    habit_values = _viewer_array(learned, habits.c.tag_id, unweighted, FLOATS)
    ct = b.alias(CONTENT_TAGS)
    tag_sum = sa.func.sum(weights[sa.func.array_position(weight_ids, ct.c.tag_id)])
    strongest = sa.func.max(habit_values[sa.func.array_position(habit_ids, ct.c.tag_id)])
    return (
        sa.select(sa.func.coalesce(tag_sum, lit(0.0)) + sa.func.coalesce(strongest, lit(0.0)))
        .where(ct.c.content_id == c.c.id)
        .scalar_subquery()
    )


def _follows_author(c: Any, b: Build) -> ColumnElement[Any]:
    f = b.alias(FOLLOWS)
    return sa.exists(
        sa.select(lit(1))
        .select_from(f)
        .where(f.c.follower_id == b.viewer, f.c.followee_id == c.c.author_id)
    )


def _content_filters(c: Any, b: Build) -> list[ColumnElement[bool]]:
    """`_viewer_filters` for contents rows (search keeps the viewer's own content)."""
    ct, mt = b.alias(CONTENT_TAGS), b.alias(MUTED_TAGS)
    muted_tag = sa.exists(
        sa.select(lit(1))
        .select_from(ct.join(mt, mt.c.tag_id == ct.c.tag_id))
        .where(ct.c.content_id == c.c.id, mt.c.user_id == b.viewer)
    )
    ma = b.alias(MUTED_AUTHORS)
    muted_author = sa.exists(
        sa.select(lit(1))
        .select_from(ma)
        .where(ma.c.user_id == b.viewer, ma.c.author_id == c.c.author_id)
    )
    languages = _languages(b)
    return [
        ~muted_tag,
        ~muted_author,
        sa.or_(sa.func.cardinality(languages) == lit(0), c.c.language == sa.any_(languages)),
    ]


def search_query(slot: int) -> ColumnElement[Any]:
    """The query parsed by each language's configuration (migration 0003), so stemmed
    words match in each; NULL (matching nothing) when it has no lexeme at all."""
    return sa.func.gateway_search_tsquery(slot_param(slot, "query", TEXT))


def search_start(source: SearchStart, b: Build) -> Rows:
    """The best walk_size of the newest per_source_limit x 8 matches: relevance scaled by
    the viewer's affinity to the item, under the feed's access rules and filters. For a
    rare term Postgres reads the GIN index; for a common one it walks the newest-first
    index and stops early (the statement runs with custom plans: db/read_pool.py)."""
    w = b.weights
    slot = source.slot
    query = search_query(slot)
    m = b.alias(CONTENTS)
    matches = (
        sa.select(m.c.id, sa.func.ts_rank_cd(m.c.search_vector, query, lit(32)).label("relevance"))
        .where(
            m.c.search_vector.op("@@")(query),
            m.c.status == lit("PUBLISHED"),
            m.c.listed_at <= now(),
        )
        .order_by(m.c.listed_at.desc(), m.c.id.desc())
        .limit(lit(w.per_source_limit * 8))
        .cte(f"matches{slot}")
    )
    c = b.alias(CONTENTS)
    if b.viewer_kind.signed_in:
        affinity = _tag_affinity(c, b) + sa.case((_follows_author(c, b), lit(0.5)), else_=lit(0.0))
        clamped = sa.func.greatest(lit(-1.0), sa.func.least(lit(1.0), affinity))
        score = matches.c.relevance * (lit(1.0) + lit(w.search_affinity) * clamped)
        filters = _content_filters(c, b)
    else:
        score, filters = matches.c.relevance * lit(1.0), []
    order = [score.desc(), c.c.id.desc()]
    ranked = (
        sa.select(
            *_content_columns(c),
            score.label("walk_score"),
            sa.func.row_number().over(order_by=order).label("walk_position"),
        )
        .select_from(matches.join(c, c.c.id == matches.c.id))
        .where(*_published_visible(c, b), *filters)
        .order_by(*order)
        .limit(lit(w.walk_size))
        .cte(f"ranked{slot}")
    )
    if source.store:
        _store_snapshot(
            b,
            slot,
            ranked.c.id,
            ranked.c.walk_score,
            [ranked.c.walk_position],
            f"ranked{slot}_stored",
        )
    select = (
        sa.select(ranked).order_by(ranked.c.walk_position).limit(slot_param(slot, "fetch", INT))
    )
    return Rows(
        select,
        lambda page: [page.c.walk_position],
        lambda page: [page.c.walk_position, page.c.walk_score, sa.null()],
        search_count(slot, b) if source.count else None,
    )


def search_count(slot: int, b: Build) -> Any:
    """How many matches the viewer may see, counting at most SEARCH_COUNT_LIMIT."""
    c = b.alias(CONTENTS)
    filters = _content_filters(c, b) if b.viewer_kind.signed_in else []
    visible = (
        sa.select(lit(1))
        .where(
            c.c.search_vector.op("@@")(search_query(slot)),
            c.c.listed_at <= now(),
            *_published_visible(c, b),
            *filters,
        )
        .limit(lit(SEARCH_COUNT_LIMIT))
        .subquery(f"counted{slot}")
    )
    return sa.select(sa.func.count()).select_from(visible)


# --- later pages -------------------------------------------------------------------------


def walk_page(source: WalkPage, b: Build) -> Rows:
    """The page of a stored walk after the position `after`, skipping what the viewer may
    no longer see. `found` says whether the walk still exists (walks last an hour) and is
    the viewer's."""
    slot = source.slot
    walk_id = slot_param(slot, "walk", TEXT)
    after = slot_param(slot, "after", INT)
    c = b.alias(CONTENTS)
    if source.shared:
        s = b.alias(SHARED)
        select = (
            sa.select(
                *_content_columns(c),
                s.c.position.label("walk_position"),
                s.c.score.label("walk_score"),
            )
            .select_from(s.join(c, c.c.id == s.c.content_id))
            .where(s.c.bucket == walk_id, s.c.position > after, *_published_visible(c, b))
        )
        found: Any = sa.exists(
            sa.select(lit(1)).select_from(SHARED).where(SHARED.c.bucket == walk_id)
        )
        habit: tuple[Any, Any] | None = None
    else:
        stored = (
            sa.select(SNAPSHOTS.c.content_ids, SNAPSHOTS.c.scores)
            .where(
                SNAPSHOTS.c.id == walk_id,
                SNAPSHOTS.c.viewer_id.is_not_distinct_from(b.viewer),
                SNAPSHOTS.c.created_at >= _ago(WALK_LIFETIME_SECONDS),
            )
            .cte(f"stored{slot}")
        )
        items = (
            sa.func.unnest(stored.c.content_ids, stored.c.scores)
            .table_valued("content_id", "score", with_ordinality="position")
            .render_derived(name=f"items{slot}")
        )
        e = b.alias(ENTRIES)
        source_rows = stored.join(items, sa.true()).join(c, c.c.id == items.c.content_id)
        columns = [
            *_content_columns(c),
            items.c.position.label("walk_position"),
            items.c.score.label("walk_score"),
        ]
        if source.feed and b.viewer_kind.signed_in:
            source_rows = source_rows.outerjoin(
                e, sa.and_(e.c.viewer_id == b.viewer, e.c.content_id == c.c.id)
            )
            columns += [
                e.c.habit_tag_id.label("walk_habit_tag"),
                e.c.habit_decayed.label("walk_habit_decayed"),
            ]
            habit = (None, None)
        else:
            habit = None
        select = (
            sa.select(*columns)
            .select_from(source_rows)
            .where(items.c.position > after, *_published_visible(c, b))
        )
        found = sa.exists(sa.select(lit(1)).select_from(stored))
    select = select.order_by(sa.literal_column("walk_position")).limit(
        slot_param(slot, "fetch", INT)
    )

    def keys(page: Any) -> list[Any]:
        if not source.reasons:
            explained: Any = sa.null()
        elif habit is not None:
            explained = reasons(
                page, b, habit_tag_id=page.c.walk_habit_tag, habit_decayed=page.c.walk_habit_decayed
            )
        else:
            explained = reasons(page, b)
        return [page.c.walk_position, page.c.walk_score, explained]

    return Rows(
        select,
        lambda page: [page.c.walk_position],
        keys,
        search_count(slot, b) if source.search_count else None,
        extra=[("found", found)],
    )
