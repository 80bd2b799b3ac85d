"""The feed's jobs (db/tables.py FeedJob), taken by any number of workers at once: each
claims a few with SKIP LOCKED, does each job's work and deletes it in one transaction.
A job claimed by a worker that died is taken up again after CLAIM_TIMEOUT."""

import logging
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from db.feed import fanout, rebuild
from db.ranking import RankingWeights
from db.reads.compile import Compiled, compile_select
from db.reads.fields import Build
from db.reads.shape import ViewerKind
from db.reads.sql import lit
from db.reads.walks import (
    ENTRIES,
    JOBS,
    SHARED,
    SNAPSHOTS,
    STATE,
    WALK_LIFETIME_SECONDS,
    touch_state,
)
from db.session import Database

log = logging.getLogger("gateway.feed")

CLAIM_TIMEOUT = timedelta(minutes=5)
# Inactive viewers' feeds emptied per prune (one every MAINTAIN_SECONDS per process).
INACTIVE_BATCH = 500


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    target: int


async def claim(db: Database, limit: int) -> list[Job]:
    waiting = (
        sa.select(JOBS.c.id)
        .where(
            sa.or_(
                JOBS.c.claimed_at.is_(None),
                JOBS.c.claimed_at
                < sa.func.now()
                - sa.func.make_interval(0, 0, 0, 0, 0, 0, lit(CLAIM_TIMEOUT.total_seconds())),
            )
        )
        .order_by(JOBS.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        sa.update(JOBS)
        .where(JOBS.c.id.in_(waiting.scalar_subquery()))
        .values(claimed_at=sa.func.now())
        .returning(JOBS.c.id, JOBS.c.kind, JOBS.c.target)
    )
    async with db.session() as session:
        rows = (await (await session.connection()).execute(statement)).all()
        await session.commit()
    return [Job(row.id, row.kind, row.target) for row in rows]


async def _done(db: Database, job: Job) -> None:
    async with db.session() as session:
        await (await session.connection()).execute(sa.delete(JOBS).where(JOBS.c.id == job.id))
        await session.commit()


async def run(db: Database, job: Job, weights: RankingWeights) -> None:
    """Does the job's work, then deletes it. A job that fails is logged and deleted
    too: the next change or visit rebuilds what it would have done."""
    try:
        if job.kind == "publish":
            reached = await fanout.publish(db, job.target, weights)
            log.debug("content %s reached %s feeds", job.target, reached)
        elif job.kind == "retract":
            await fanout.retract(db, job.target)
        elif job.kind == "rebuild":
            await rebuild.rebuild(db, job.target, weights)
        else:
            log.warning("unknown feed job %s", job)
    except Exception:
        log.exception("feed job %s failed", job)
    await _done(db, job)


async def run_pending(db: Database, weights: RankingWeights, *, batch: int = 20) -> int:
    """Works through every job waiting now; how many it did."""
    done = 0
    while True:
        jobs = await claim(db, batch)
        if not jobs:
            return done
        for job in jobs:
            await run(db, job, weights)
        done += len(jobs)


async def prune(db: Database, weights: RankingWeights) -> int:
    """Walks and shared lists past their hour (they are a cache), and the stored feeds
    of viewers away longer than `inactive_days` (at most INACTIVE_BATCH of them a call):
    nothing keeps those current, and their viewers' next visit rebuilds them anyway, so
    storage follows the active viewers. How many feeds it emptied."""
    expired = sa.func.now() - sa.func.make_interval(
        0, 0, 0, 0, 0, 0, lit(float(WALK_LIFETIME_SECONDS))
    )
    away = sa.func.now() - sa.func.make_interval(0, 0, 0, lit(weights.inactive_days))
    chosen = (
        sa.select(STATE.c.viewer_id)
        .where(STATE.c.built_at.is_not(None), STATE.c.seen_at < away)
        .limit(lit(INACTIVE_BATCH))
        .with_for_update(skip_locked=True)
        .cte("chosen")
    )
    emptied = (
        sa.update(STATE)
        .where(STATE.c.viewer_id.in_(sa.select(chosen.c.viewer_id)))
        .values(built_at=None, entries=0, head_until=None)
        .returning(STATE.c.viewer_id)
        .cte("emptied")
    )
    dropped = (
        sa.delete(ENTRIES)
        .where(ENTRIES.c.viewer_id.in_(sa.select(emptied.c.viewer_id)))
        .returning(ENTRIES.c.viewer_id)
        .cte("dropped")
    )
    count = sa.select(sa.func.count()).select_from(emptied).add_cte(dropped)
    async with db.session() as session:
        connection = await session.connection()
        await connection.execute(sa.delete(SNAPSHOTS).where(SNAPSHOTS.c.created_at < expired))
        await connection.execute(sa.delete(SHARED).where(SHARED.c.created_at < expired))
        emptied_feeds = int((await connection.execute(count)).scalar_one())
        await session.commit()
    return emptied_feeds


def touch_statement(weights: RankingWeights) -> Compiled:
    """What reading a feed writes, for a lean first page that found it due (other first
    pages' statements write it themselves): the viewer's last read, to the hour, and a
    rebuild of a feed older than refresh_hours (db/reads/walks.py `touch_state`).
    Parameters: viewer, now."""
    b = Build(ViewerKind.MEMBER, weights)
    touch_state(b)
    return compile_select(sa.select(sa.literal(1)).add_cte(*b.side_effects))
