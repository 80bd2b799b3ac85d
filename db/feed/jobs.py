"""The feed's jobs (db/tables.py FeedJob), taken by any number of workers at once: each
claims a few with SKIP LOCKED, does each job's work and deletes it in one transaction.
A job claimed by a worker that died is taken up again after CLAIM_TIMEOUT."""

import logging
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from db.feed import fanout, rebuild
from db.ranking import RankingWeights
from db.reads.sql import lit
from db.reads.walks import JOBS, SHARED, SNAPSHOTS, WALK_LIFETIME_SECONDS
from db.session import Database

log = logging.getLogger("gateway.feed")

CLAIM_TIMEOUT = timedelta(minutes=5)


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


async def prune(db: Database) -> None:
    """Walks and shared lists past their hour (they are a cache)."""
    expired = sa.func.now() - sa.func.make_interval(
        0, 0, 0, 0, 0, 0, lit(float(WALK_LIFETIME_SECONDS))
    )
    async with db.session() as session:
        connection = await session.connection()
        await connection.execute(sa.delete(SNAPSHOTS).where(SNAPSHOTS.c.created_at < expired))
        await connection.execute(sa.delete(SHARED).where(SHARED.c.created_at < expired))
        await session.commit()
