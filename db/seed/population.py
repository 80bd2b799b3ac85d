"""Users and what hangs off them: the follow graph and saved preferences.

Users are numbered in the order they joined (id = index + 1), so "everyone who had
joined by time t" is always a prefix of the id range; later stages rely on that to
pick authors and readers who existed at the moment they act.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from db.seed.base import (
    DAY,
    USER_SPAN,
    SeedPlan,
    Ticker,
    cumulative,
    pick,
    stream,
    timestamp,
    zipf_cumulative,
)
from db.seed.texts import LANGUAGE_WEIGHTS, LANGUAGES
from db.seed.words import (
    BIOS,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    TAG_IDS,
    TAGS,
    tag_label,
)

# The demo accounts: always the first users, so their ids are 1, 2, 3.
# ada is an ADMIN and the most prolific author; grace and alan are MEMBERs with
# saved preferences, grace following ada and alan following both.
DEMO_USERS: tuple[tuple[str, str, str], ...] = (
    ("ada", "Ada Lovelace", "ADMIN"),
    ("grace", "Grace Hopper", "MEMBER"),
    ("alan", "Alan Turing", "MEMBER"),
)
# Author ranks given to the demo users, so they have posts, followers and reactions.
DEMO_AUTHOR_RANKS = (0, 3, 200)
DEMO_EMAIL_DOMAIN = "example.com"
ADMIN_SHARE = 0.0005
AUTHOR_SHARE = 0.35  # the rest only read, react and follow

USER_COLUMNS = (
    "id", "handle", "email", "password_hash", "display_name", "bio", "role",
    "token_version", "created_at", "updated_at",
)  # fmt: skip
FOLLOW_COLUMNS = ("follower_id", "followee_id", "created_at")

Row = tuple[Any, ...]


def tag_cumulative() -> list[float]:
    return zipf_cumulative(len(TAGS), 1.1, 2.0)


@dataclass(slots=True)
class Population:
    """What later stages need to know about every user, kept in compact arrays."""

    plan: SeedPlan
    joined: array[int]  # unix seconds, ascending with id
    language: bytearray  # index into LANGUAGES
    favourite_tag: array[int]  # index into TAGS
    author_rank: array[int]
    author_cum: list[float]  # author weights by user index (zero for non-authors)
    reader_cum: list[float]  # how much each user reads and reacts

    @property
    def size(self) -> int:
        return len(self.joined)


def build_population(plan: SeedPlan) -> Population:
    rng = stream(plan, "population")
    n = plan.users
    end = int(plan.reference.timestamp()) - 7 * DAY
    start = end - USER_SPAN + 7 * DAY
    # An exponent below one makes sign-ups sparse early and denser later: a growing site.
    joined = array(
        "q", (start + int((end - start) * ((i + rng.random()) / n) ** 0.8) for i in range(n))
    )
    language = bytearray(rng.choices(range(len(LANGUAGES)), LANGUAGE_WEIGHTS, k=n))
    for demo in range(min(n, len(DEMO_USERS))):
        language[demo] = 0
    tag_cum = tag_cumulative()
    favourite = array("l", (pick(rng, tag_cum) for _ in range(n)))

    ranks = list(range(n))
    rng.shuffle(ranks)
    for demo, rank in enumerate(DEMO_AUTHOR_RANKS[:n]):
        if rank < n:
            swap = ranks.index(rank)
            ranks[demo], ranks[swap] = ranks[swap], ranks[demo]
    authors = max(1, int(n * AUTHOR_SHARE))
    # ada (user 0, rank 0) writes, so every prefix of users has someone to pick as author.
    author_weights = [(r + 30.0) ** -1.0 if r < authors else 0.0 for r in ranks]
    reader_ranks = list(range(n))
    rng.shuffle(reader_ranks)
    return Population(
        plan=plan,
        joined=joined,
        language=language,
        favourite_tag=favourite,
        author_rank=array("l", ranks),
        author_cum=cumulative(author_weights),
        reader_cum=cumulative([(r + 50.0) ** -0.8 for r in reader_ranks]),
    )


def _handle(rng: random.Random, first: str, last: str, taken: set[str]) -> str:
    f, l_ = first.lower(), last.lower()
    patterns = (f"{f}_{l_}", f"{f}{l_}", f"{f[0]}{l_}", f"{l_}_{f}", f"{f}{rng.randint(1, 99)}")
    handle = rng.choice(patterns)[:30]
    while handle in taken:
        handle = f"{handle[:24]}_{rng.randint(2, 9999)}"
    taken.add(handle)
    return handle


def user_rows(pop: Population, password_hash: str, ticker: Ticker) -> Iterator[Row]:
    rng = stream(pop.plan, "users")
    taken: set[str] = set()
    reference = int(pop.plan.reference.timestamp())
    for i in range(pop.size):
        joined = pop.joined[i]
        if i < len(DEMO_USERS):
            handle, name, role = DEMO_USERS[i]
            taken.add(handle)
        else:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            handle = _handle(rng, first, last, taken)
            name = first if rng.random() < 0.1 else f"{first} {last}"
            role = "ADMIN" if rng.random() < ADMIN_SHARE else "MEMBER"
        bio = None
        if rng.random() < 0.75:
            bio = rng.choice(BIOS).replace("{topic}", tag_label(TAGS[pop.favourite_tag[i]]))
        domain = rng.choice(EMAIL_DOMAINS)
        # Demo accounts get an address the CLI can print without looking it up.
        email = f"{handle}@{DEMO_EMAIL_DOMAIN if i < len(DEMO_USERS) else domain}"
        updated = joined if rng.random() < 0.6 else rng.randint(joined, reference - 1)
        yield (
            i + 1, handle, email, password_hash, name, bio, role, 0,
            timestamp(joined), timestamp(updated),
        )  # fmt: skip
        ticker.step()


def follow_rows(pop: Population, ticker: Ticker) -> Iterator[Row]:
    """Who follows whom: most people follow a handful, a few follow hundreds, and
    followees are mostly the prolific authors."""
    rng = stream(pop.plan, "follows")
    n = pop.size
    reference = int(pop.plan.reference.timestamp())
    for u in range(n):
        wanted = min(n - 1, int(rng.lognormvariate(1.6, 1.0)))
        chosen: set[int] = set()
        if u == 1:
            chosen.add(0)
        elif u == 2:
            chosen.update((0, 1))
        for _ in range(4 * wanted + 10):
            if len(chosen) >= wanted:
                break
            v = pick(rng, pop.author_cum) if rng.random() < 0.85 else rng.randrange(n)
            if v != u:
                chosen.add(v)
        for v in sorted(chosen):
            since = max(pop.joined[u], pop.joined[v])
            yield (u + 1, v + 1, timestamp(rng.randint(since, reference - 1)))
        ticker.step()


@dataclass(slots=True)
class Preferences:
    preferences: list[Row]
    followed_tags: list[Row]
    muted_tags: list[Row]
    muted_authors: list[Row]


def preference_rows(pop: Population, ticker: Ticker) -> Preferences:
    """Saved preferences for about a third of users; small enough to hold in memory
    (a few rows per such user) so the four tables can be copied one after another."""
    rng = stream(pop.plan, "preferences")
    tag_cum = tag_cumulative()
    reference = int(pop.plan.reference.timestamp())
    out = Preferences([], [], [], [])
    for u in range(pop.size):
        ticker.step()
        if u not in (1, 2) and rng.random() >= 0.3:
            continue
        own = LANGUAGES[pop.language[u]].code
        languages: list[str] = []
        if rng.random() < 0.3:
            languages = [own] if own == "en" or rng.random() < 0.5 else [own, "en"]
        updated = timestamp(rng.randint(pop.joined[u], reference - 1))
        out.preferences.append((u + 1, languages, updated))
        followed = {pop.favourite_tag[u]}
        for _ in range(rng.randint(0, 7)):
            followed.add(pick(rng, tag_cum))
        for tag in sorted(followed):
            if rng.random() < 0.15:
                weight = round(rng.uniform(-1.0, -0.2), 2)
            else:
                weight = round(rng.uniform(0.2, 1.0), 2)
            out.followed_tags.append((u + 1, TAG_IDS[tag], weight))
        if rng.random() < 0.25:
            muted = {rng.randrange(len(TAGS)) for _ in range(rng.randint(1, 2))} - followed
            out.muted_tags.extend((u + 1, TAG_IDS[tag]) for tag in sorted(muted))
        if rng.random() < 0.1 and pop.size > 1:
            authors = {pick(rng, pop.author_cum) for _ in range(rng.randint(1, 2))} - {u}
            out.muted_authors.extend((u + 1, a + 1) for a in sorted(authors))
    return out
