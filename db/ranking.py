"""The knobs of the ranking formula (docs/ranking.md): how much each signal counts, how
fast freshness and habits fade, and how large the stored feeds and walks are. Settings
build one of these (GATEWAY_RANK_*); every statement that scores reads it."""

from dataclasses import dataclass


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
    # Stored candidates per viewer (feed_entries): what a first page ranks from.
    feed_cap: int = 300
    # Popular and fresh items everyone may see, mixed into every signed-in first page.
    shared_candidates: int = 200
    # A first page re-scores this many of its best candidates beyond the page with live
    # reaction counts and access (the rest use the counts they were stored with).
    live_margin: int = 40
    # A first page without a walk stores which candidates can reach its head for this
    # long (db/reads/walks.py `_head`), and the next ones read only those.
    head_minutes: float = 10.0
    # Viewers who have not read their feed for this long are not fanned out to; their
    # feed is rebuilt when they return.
    inactive_days: int = 14
    # A feed older than this is rebuilt in the background when its viewer reads it.
    refresh_hours: float = 6.0
