"""What a search query must hold before it reaches the database: a word to find.

Search takes Postgres's websearch syntax: words, "quoted phrases", OR, and -exclusions.
A query made only of exclusions (`-a -b`), or with an OR branch that is (`rust or -go`),
matches nearly every row, and Postgres has to read them all to find out: seconds for
one request, whatever its `first`. Such queries are refused here, before any SQL, with
a message that says what to add. (What this check cannot see, such as a branch made only
of one language's stop words, the database drops from the query itself: migration
0015's gateway_search_tsquery.)"""

import re

from resolvers.errors import BadUserInput

# websearch_to_tsquery's tokens: an optionally negated "phrase" (closed or not), or an
# optionally negated run of other characters.
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(-?)([^\s"]+)')
# Postgres's parser makes lexemes of letters and digits; the rest separates them.
_WORD = re.compile(r"[^\W_]")


def require_searchable(query: str) -> None:
    """BAD_USER_INPUT unless every OR branch of `query` has a word it looks for."""
    branches: list[list[bool]] = [[]]
    for match in _TOKEN.finditer(query):
        phrase_negated, phrase, word_negated, word = match.groups()
        if phrase is None and word.lower() == "or" and not word_negated:
            branches.append([])
            continue
        text, negated = (phrase, phrase_negated) if phrase is not None else (word, word_negated)
        if _WORD.search(text):
            branches[-1].append(not negated)
    branches = [branch for branch in branches if branch]  # a dangling OR joins nothing
    if not branches:
        raise BadUserInput(
            "`query` has no word to search for: use letters or digits, e.g. `postgres`",
            field="query",
        )
    if len(branches) == 1 and not any(branches[0]):
        raise BadUserInput(
            "`query` only excludes words: add a word to find, as in `postgres -mysql`",
            field="query",
        )
    if not all(any(branch) for branch in branches):
        raise BadUserInput(
            "`query` needs a word to find on each side of OR, not only words to exclude: "
            "`-word` narrows a search, as in `postgres or mysql -oracle`",
            field="query",
        )
