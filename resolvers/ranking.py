"""Why an item ranks where it does, in words. The formula itself is SQL, written once
(db/reads/scoring.py); its knobs are db/ranking.py's RankingWeights."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from db.ranking import RankingWeights

__all__ = ["Facts", "RankingWeights", "reasons"]


@dataclass(frozen=True, slots=True)
class Facts:
    """What moved one item's score, as the ranking statement reports it."""

    reactions: int
    published_at: datetime
    followed_author: str | None = None  # the author's handle when the viewer follows them
    tag_weights: dict[str, float] = field(default_factory=dict)  # explicit, by tag name
    habit_tag: str | None = None  # the strongest learned tag
    habit_affinity: float = 0.0

    @classmethod
    def of(cls, row: list[Any]) -> "Facts":
        """From db/reads/walks.py `reasons`: [followed handle, {tag: weight}, habit tag,
        learned affinity, reactions, published at]."""
        followed, weights, habit, learned, reactions, published = row
        return cls(
            reactions=int(reactions),
            published_at=datetime.fromisoformat(published),
            followed_author=followed,
            tag_weights={k: float(v) for k, v in (weights or {}).items()},
            habit_tag=habit,
            habit_affinity=float(learned or 0.0),
        )


def _age(published_at: datetime, now: datetime) -> str:
    seconds = max((now - published_at).total_seconds(), 0)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def reasons(facts: Facts, now: datetime) -> list[str]:
    """One human-readable reason per factor that moved the score, strongest kinds first."""
    found: list[str] = []
    if facts.followed_author:
        found.append(f"you follow @{facts.followed_author}")
    for name, weight in sorted(facts.tag_weights.items(), key=lambda kv: (-abs(kv[1]), kv[0])):
        if weight:
            found.append(f"tag #{name} ({weight:+.1f})")
    if facts.habit_tag and facts.habit_affinity > 0:
        found.append(f"you often react to #{facts.habit_tag}")
    if facts.reactions > 0:
        noun = "reaction" if facts.reactions == 1 else "reactions"
        found.append(f"popular: {facts.reactions} {noun}")
    found.append(f"published {_age(facts.published_at, now)}")
    return found
