"""Contents, their tags and the reactions to them.

Contents are generated in time order (ids ascend with created_at, as on a real
site). The contents pass decides everything later passes need (tags, when each
item became readable, how many reactions it gets) and keeps it in compact arrays,
about 30 bytes per content, instead of holding rows: reaction_count is then known
before the reactions are written, so the per-row trigger can stay off.
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field

from db.seed.base import CONTENT_SPAN, DAY, USER_SPAN, SeedPlan, Ticker, pick, stream, timestamp
from db.seed.population import Population, Row, tag_cumulative
from db.seed.texts import CODE_SNIPPETS, LANGUAGES, Language
from db.seed.words import TAG_IDS, TAGS, tag_label

CONTENT_COLUMNS = (
    "id", "author_id", "title", "summary", "body", "status", "visibility", "language",
    "reaction_count", "created_at", "updated_at", "published_at",
)  # fmt: skip
CONTENT_TAG_COLUMNS = ("content_id", "tag_id")
TAG_COLUMNS = ("id", "name", "created_at")
REACTION_COLUMNS = ("user_id", "content_id", "created_at")

TAG_COUNT_WEIGHTS = (0.2, 0.3, 0.25, 0.15, 0.1)  # 1 to 5 tags per content
MAX_REACTIONS = 5_000
NOT_READABLE = -1  # in Catalogue.readable: drafts, archived and private items
PARAGRAPHS_PER_LANGUAGE = 600


@dataclass(slots=True)
class Catalogue:
    author: array[int] = field(default_factory=lambda: array("l"))  # user index
    readable: array[int] = field(default_factory=lambda: array("q"))  # unix seconds
    reactions: array[int] = field(default_factory=lambda: array("l"))
    tag_counts: bytearray = field(default_factory=bytearray)
    tags: array[int] = field(default_factory=lambda: array("H"))  # flat tag indexes

    @property
    def reaction_total(self) -> int:
        return sum(self.reactions)


def tag_rows(plan: SeedPlan) -> list[Row]:
    # All tags exist from the site's first day, a minute apart in popularity order.
    opened = int(plan.reference.timestamp()) - USER_SPAN
    return [(TAG_IDS[i], name, timestamp(opened + 60 * i)) for i, name in enumerate(TAGS)]


def _paragraphs(rng: random.Random, language: Language) -> list[str]:
    def sentence() -> str:
        subject, predicate = rng.choice(language.subjects), rng.choice(language.predicates)
        return f"{subject} {predicate} {rng.choice(language.endings)}"

    return [
        " ".join(sentence() for _ in range(rng.randint(2, 3)))
        for _ in range(PARAGRAPHS_PER_LANGUAGE)
    ]


def _body(rng: random.Random, language: Language, pool: list[str]) -> str:
    """A markdown post of about 700 characters: intro, one or two sections, sometimes
    a list or a code block. Short on purpose: Postgres computes search_vector for
    every row it loads, and that parse is most of the cost of loading contents."""
    parts = [rng.choice(pool)]
    for _ in range(rng.randint(1, 2)):
        parts.append("## " + rng.choice(language.headings))
        parts.append(rng.choice(pool))
        extra = rng.random()
        if extra < 0.2:
            parts.append("\n".join("- " + item for item in rng.sample(language.list_items, 3)))
        elif extra < 0.3 and language.code == "en":
            parts.append(rng.choice(CODE_SNIPPETS))
        elif extra < 0.45:
            parts.append(rng.choice(pool))
    return "\n\n".join(parts)


def _language(rng: random.Random, own: int) -> int:
    if own == 0:
        return 0 if rng.random() < 0.98 else rng.randrange(1, len(LANGUAGES))
    return own if rng.random() < 0.8 else 0


def _reaction_count(rng: random.Random, author_rank: int, readers: int) -> int:
    # Pareto: most items get a few reactions, a few get thousands; big authors more.
    boost = 3.0 if author_rank < 100 else 1.5 if author_rank < 1_000 else 1.0
    wanted = int((rng.paretovariate(1.5) - 1.0) * 2.0 * boost)
    return min(wanted, readers - 1, MAX_REACTIONS)


def content_rows(pop: Population, catalogue: Catalogue, ticker: Ticker) -> Iterator[Row]:
    plan = pop.plan
    rng = stream(plan, "contents")
    pools = [_paragraphs(stream(plan, f"paragraphs/{lang.code}"), lang) for lang in LANGUAGES]
    tag_cum = tag_cumulative()
    labels = [tag_label(tag) for tag in TAGS]
    reference = int(plan.reference.timestamp())
    start = reference - CONTENT_SPAN
    total = plan.contents
    for i in range(total):
        # An exponent below one spaces early items out: the site gets busier over time.
        created = start + int(CONTENT_SPAN * ((i + rng.random()) / total) ** 0.75)
        author = pick(rng, pop.author_cum, bisect_right(pop.joined, created))

        count = rng.choices(range(1, 6), TAG_COUNT_WEIGHTS)[0]
        first = pop.favourite_tag[author] if rng.random() < 0.6 else pick(rng, tag_cum)
        chosen = dict.fromkeys([first, *(pick(rng, tag_cum) for _ in range(count - 1))])
        catalogue.tags.extend(sorted(chosen))
        catalogue.tag_counts.append(len(chosen))
        topic = labels[first]

        language_index = _language(rng, pop.language[author])
        language = LANGUAGES[language_index]
        title = rng.choice(language.titles).replace("{topic}", topic)
        title = title[0].upper() + title[1:]
        summary = None
        if rng.random() < 0.85:
            summary = rng.choice(language.summaries).replace("{topic}", topic)
        body = _body(rng, language, pools[language_index]).replace("{topic}", topic)

        roll = rng.random()
        status = "PUBLISHED" if roll < 0.85 else "DRAFT" if roll < 0.95 else "ARCHIVED"
        roll = rng.random()
        visibility = "PUBLIC" if roll < 0.8 else "MEMBERS" if roll < 0.95 else "PRIVATE"
        published: int | None = None
        if status == "PUBLISHED" or (status == "ARCHIVED" and rng.random() < 0.7):
            published = min(created + int(rng.expovariate(1 / (6 * 3600))), reference - 1)
        updated = published or created
        if rng.random() < 0.2:
            updated = rng.randint(updated, reference - 1)

        reactions = 0
        readable = NOT_READABLE
        if status == "PUBLISHED" and visibility != "PRIVATE":
            assert published is not None
            readable = published
            readers = bisect_right(pop.joined, published)
            reactions = _reaction_count(rng, pop.author_rank[author], readers)
        catalogue.author.append(author)
        catalogue.readable.append(readable)
        catalogue.reactions.append(reactions)
        yield (
            i + 1, author + 1, title, summary, body, status, visibility, language.code,
            reactions, timestamp(created), timestamp(updated),
            None if published is None else timestamp(published),
        )  # fmt: skip
        ticker.step()


def content_tag_rows(catalogue: Catalogue, ticker: Ticker) -> Iterator[Row]:
    tags = catalogue.tags
    at = 0
    for content, count in enumerate(catalogue.tag_counts):
        for tag in tags[at : at + count]:
            yield (content + 1, TAG_IDS[tag])
        at += count
        ticker.step(count)


def reaction_rows(pop: Population, catalogue: Catalogue, ticker: Ticker) -> Iterator[Row]:
    """Exactly catalogue.reactions[c] distinct readers per content, drawn with a
    skew towards active readers, all of whom had joined before it was published."""
    rng = stream(pop.plan, "reactions")
    reference = int(pop.plan.reference.timestamp())
    mean_delay = 1.5 * DAY
    for content, wanted in enumerate(catalogue.reactions):
        if not wanted:
            continue
        published = catalogue.readable[content]
        author = catalogue.author[content]
        readers = bisect_right(pop.joined, published)
        chosen: set[int] = set()
        for _ in range(3 * wanted + 20):
            if len(chosen) >= wanted:
                break
            reader = pick(rng, pop.reader_cum, readers)
            if reader != author:
                chosen.add(reader)
        if len(chosen) < wanted:
            # Nearly everyone reacted: fill up from whoever is left.
            rest = [u for u in range(readers) if u != author and u not in chosen]
            chosen.update(rng.sample(rest, wanted - len(chosen)))
        for reader in sorted(chosen):
            at = min(published + int(rng.expovariate(1 / mean_delay)), reference - 1)
            yield (reader + 1, content + 1, timestamp(at))
        ticker.step(wanted)
