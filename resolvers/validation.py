"""Input rules. Each check names the field it rejects and says how to fix it."""

import math
import re

from resolvers.errors import BadUserInput
from resolvers.languages import ISO_639_1

HANDLE = re.compile(r"^[a-z0-9_]{3,30}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
TAG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
RESERVED_HANDLES = frozenset(
    [
        "admin",
        "administrator",
        "anonymous",
        "api",
        "about",
        "account",
        "graphql",
        "help",
        "login",
        "logout",
        "me",
        "moderator",
        "null",
        "undefined",
        "register",
        "root",
        "settings",
        "signin",
        "signup",
        "staff",
        "support",
        "system",
        "viewer",
        "www",
    ]
)
MIN_PASSWORD = 10
# argon2 hashes any length, but hashing megabytes per attempt is a cheap denial of service.
MAX_PASSWORD = 1024
MAX_DISPLAY_NAME = 80
MAX_BIO = 1000
MAX_TITLE = 200
MAX_SUMMARY = 500
MAX_BODY = 100_000
MAX_TAGS = 10
MAX_PREFERENCE_TAGS = 200
MAX_MUTED_AUTHORS = 500
MAX_LANGUAGES = 20


def normalize_handle(value: str) -> str:
    """How a handle is stored: lowercase, without '@'. Lookups use it unvalidated."""
    return value.strip().lstrip("@").lower()


def normalize_tag(value: str) -> str:
    """How a tag name is stored: lowercase, no '#', spaces and '_' as '-'."""
    return re.sub(r"[\s_]+", "-", value.strip().lstrip("#").lower())


def handle(value: str, *, field: str = "handle") -> str:
    normalized = normalize_handle(value)
    if not HANDLE.match(normalized):
        raise BadUserInput(
            f"`{field}` must be 3 to 30 characters of a-z, 0-9 and underscore", field=field
        )
    if normalized in RESERVED_HANDLES:
        raise BadUserInput(f"`{field}` @{normalized} is reserved: choose another", field=field)
    return normalized


def email(value: str) -> str:
    normalized = value.strip().lower()
    if len(normalized) > 254 or not EMAIL.match(normalized):
        raise BadUserInput("`email` must be an address like name@example.com", field="email")
    return normalized


def password(value: str, *, handle: str, field: str = "password") -> str:
    if len(value) < MIN_PASSWORD:
        raise BadUserInput(f"`{field}` must be at least {MIN_PASSWORD} characters", field=field)
    if len(value) > MAX_PASSWORD:
        raise BadUserInput(f"`{field}` must be at most {MAX_PASSWORD} characters", field=field)
    if value.strip().lower() == handle:
        raise BadUserInput(f"`{field}` must not be your handle", field=field)
    return value


def text(value: str, *, field: str, maximum: int, required: bool = True) -> str:
    stripped = value.strip()
    if required and not stripped:
        raise BadUserInput(f"`{field}` must not be empty", field=field)
    if len(stripped) > maximum:
        raise BadUserInput(
            f"`{field}` must be at most {maximum:,} characters (got {len(stripped):,})", field=field
        )
    return stripped


def tag_name(value: str, *, field: str = "tags") -> str:
    normalized = normalize_tag(value)
    if not TAG.match(normalized):
        raise BadUserInput(
            f"`{field}`: {value!r} is not a tag name: use 1 to 40 of a-z, 0-9 and '-', "
            "starting with a letter or digit",
            field=field,
        )
    return normalized


def tag_names(values: list[str], *, field: str = "tags", maximum: int = MAX_TAGS) -> list[str]:
    """Normalized, without duplicates, in the order given."""
    names = list(dict.fromkeys(tag_name(v, field=field) for v in values))
    if len(names) > maximum:
        raise BadUserInput(
            f"`{field}` takes at most {maximum} tags (got {len(names)})", field=field
        )
    return names


def language(value: str, *, field: str = "language") -> str:
    normalized = value.strip().lower()
    if normalized not in ISO_639_1:
        raise BadUserInput(
            f"`{field}`: {value!r} is not an ISO 639-1 language code such as 'en' or 'de'",
            field=field,
        )
    return normalized


def languages(values: list[str]) -> list[str]:
    codes = list(dict.fromkeys(language(v, field="languages") for v in values))
    if len(codes) > MAX_LANGUAGES:
        raise BadUserInput(f"`languages` takes at most {MAX_LANGUAGES} codes", field="languages")
    return codes


def weight(value: float, *, tag: str) -> float:
    if not math.isfinite(value) or not -1.0 <= value <= 1.0:
        raise BadUserInput(
            f"`followedTags`: the weight of #{tag} must be between -1 and 1 (got {value})",
            field="followedTags",
        )
    return float(value)
