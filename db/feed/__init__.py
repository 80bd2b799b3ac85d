"""The stored feed's writes (docs/ranking.md, "The stored feed"): rebuilding a viewer's
candidates, fanning a publication out to the feeds it belongs in, keeping each feed
under its cap, and the jobs that carry this work out after the writes that cause it."""
