"""How a feed is ranked for a viewer: the weights, the formula, and the reasons.

The formula is evaluated in Postgres (db/queries/feed.py) from these same weights;
`score` below is the identical formula in Python, for tests and the worked example in
docs/ranking.md, and `reasons` turns a ranked item's factors into words."""

import math
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RankingWeights:
    followed_author: float = 1.0
    # Multiplies the sum of the viewer's explicit weights (each in [-1, 1]) of the tags.
    tag: float = 1.0
    # Multiplies the strongest learned affinity (in [0, 1)) among tags without a weight.
    habit: float = 0.6
    popularity: float = 0.5
    freshness: float = 1.0
    # Freshness halves every this many hours.
    fresh_half_life_hours: float = 24.0
    # A reaction's pull on the viewer's habits halves every this many days.
    habit_half_life_days: float = 30.0
    # Learned affinity = decayed reactions / (decayed reactions + this): 0.5 at this many.
    habit_saturation: float = 3.0
    # Popularity = ln(1 + reactions) / ln(1 + this), so this many reactions count 1.0.
    popular_reference: int = 100
    # Search: relevance x (1 + this x the viewer's affinity to the item, in [-1, 1]).
    search_affinity: float = 0.5
    # Candidates: content this recent, plus the newest of each followed tag and author.
    window_days: int = 30
    per_source_limit: int = 300
    # How many ranked items one walk through the feed can reach.
    walk_size: int = 500


@dataclass(frozen=True, slots=True)
class Factors:
    """Everything that moved one item's score, as the feed query returns it."""

    reactions: int
    published_at: datetime
    followed_author: str | None = None  # the author's handle when the viewer follows them
    tag_weights: dict[str, float] = field(default_factory=dict)  # explicit, by tag name
    habit_tag: str | None = None  # the strongest learned tag
    habit_affinity: float = 0.0


def learned_affinity(decayed_reactions: float, weights: RankingWeights) -> float:
    if decayed_reactions <= 0:
        return 0.0
    return decayed_reactions / (decayed_reactions + weights.habit_saturation)


def popularity(reactions: int, weights: RankingWeights) -> float:
    return math.log1p(max(reactions, 0)) / math.log1p(weights.popular_reference)


def freshness(published_at: datetime, now: datetime, weights: RankingWeights) -> float:
    age_hours = max((now - published_at).total_seconds() / 3600, 0.0)
    # Capped like the SQL form, where Postgres would otherwise raise on underflow.
    return float(0.5 ** min(age_hours / weights.fresh_half_life_hours, 200.0))


def score(factors: Factors, now: datetime, weights: RankingWeights) -> float:
    return (
        weights.followed_author * (1.0 if factors.followed_author else 0.0)
        + weights.tag * sum(factors.tag_weights.values())
        + weights.habit * factors.habit_affinity
        + weights.popularity * popularity(factors.reactions, weights)
        + weights.freshness * freshness(factors.published_at, now, weights)
    )


def _age(published_at: datetime, now: datetime) -> str:
    seconds = max((now - published_at).total_seconds(), 0)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def reasons(factors: Factors, now: datetime) -> list[str]:
    """One human-readable reason per factor that moved the score, strongest kinds first."""
    found: list[str] = []
    if factors.followed_author:
        found.append(f"you follow @{factors.followed_author}")
    for name, weight in sorted(factors.tag_weights.items(), key=lambda kv: (-abs(kv[1]), kv[0])):
        if weight:
            found.append(f"tag #{name} ({weight:+.1f})")
    if factors.habit_tag and factors.habit_affinity > 0:
        found.append(f"you often react to #{factors.habit_tag}")
    if factors.reactions > 0:
        noun = "reaction" if factors.reactions == 1 else "reactions"
        found.append(f"popular: {factors.reactions} {noun}")
    found.append(f"published {_age(factors.published_at, now)}")
    return found
