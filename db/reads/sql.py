"""Small pieces every read statement is written with: named parameters, and values
written the way the API returns them (global ids, timestamps)."""

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

# json_build_object takes at most 100 arguments: 50 key/value pairs.
MAX_PAIRS = 50
_KEY = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")

BIGINT = sa.BigInteger()
TEXT = sa.Text()
FLOAT = sa.Float()
INT = sa.Integer()
BOOL = sa.Boolean()
TIMESTAMP = sa.DateTime(timezone=True)
BIGINTS = ARRAY(sa.BigInteger)
TEXTS = ARRAY(sa.Text)
FLOATS = ARRAY(sa.Float)


def lit(value: str | int | float) -> ColumnElement[Any]:
    """A constant written into the statement's text (our own constants only: values from
    requests are always parameters)."""
    if isinstance(value, str):
        return sa.literal_column("'" + value.replace("'", "''") + "'", sa.Text)
    return sa.literal_column(repr(value), sa.Float if isinstance(value, float) else sa.BigInteger)


def param(name: str, type_: Any) -> sa.BindParameter[Any]:
    """A value supplied at execution under `name`: statements are compiled once per shape
    and run with each request's values."""
    return sa.bindparam(name, type_=type_)


def viewer() -> sa.BindParameter[Any]:
    return param("viewer", BIGINT)


def now() -> sa.BindParameter[Any]:
    return param("now", TIMESTAMP)


def key(name: str) -> ColumnElement[Any]:
    """An output key written into the SQL; only names (GraphQL's, or ours) get there."""
    if not _KEY.fullmatch(name):
        raise ValueError(f"not a name: {name!r}")
    return sa.literal_column(f"'{name}'")


def json_object(pairs: Sequence[tuple[str, ColumnElement[Any]]]) -> ColumnElement[Any]:
    """A JSON object of (key, value) pairs in order. More pairs than one json_build_object
    takes become an array of objects, which the reader merges in order."""
    chunks = [
        sa.func.json_build_object(
            *(part for k, v in pairs[i : i + MAX_PAIRS] for part in (key(k), v))
        )
        for i in range(0, max(len(pairs), 1), MAX_PAIRS)
    ]
    return chunks[0] if len(chunks) == 1 else sa.func.json_build_array(*chunks)


def iso(ts: ColumnElement[Any]) -> ColumnElement[Any]:
    """Python's isoformat() of a timestamptz read as UTC (microseconds only when there
    are any), which is how the API writes every DateTime."""
    utc = sa.func.timezone(lit("UTC"), ts)
    micros = sa.cast(sa.func.date_part(lit("microseconds"), ts), sa.BigInteger) % lit(1_000_000)
    fraction = sa.case(
        (micros != lit(0), sa.func.to_char(utc, lit(".US"), type_=sa.Text)), else_=lit("")
    )
    whole = sa.func.to_char(utc, lit('YYYY-MM-DD"T"HH24:MI:SS'), type_=sa.Text)
    return concat(whole, fraction, lit("+00:00"))


def concat(*parts: Any) -> ColumnElement[Any]:
    """`a || b || ...`: NULL when any part is (concat() would treat it as '')."""
    out: ColumnElement[Any] = parts[0]
    for part in parts[1:]:
        out = out.op("||", return_type=sa.Text)(part)
    return out


def global_id(type_name: str, pk: ColumnElement[Any]) -> ColumnElement[Any]:
    """resolvers/ids.py `encode_id` in SQL (tests hold the two equal): base64url of
    "Type:pk" without padding; ids are short, so Postgres's base64 never wraps a line."""
    raw = sa.func.convert_to(concat(lit(f"{_type(type_name)}:"), sa.cast(pk, sa.Text)), lit("UTF8"))
    encoded = sa.func.translate(sa.func.encode(raw, lit("base64")), lit("+/"), lit("-_"))
    return sa.func.rtrim(encoded, lit("="), type_=sa.Text)


def _type(name: str) -> str:
    if not _KEY.fullmatch(name):
        raise ValueError(f"not a type name: {name!r}")
    return name


def epoch(ts: ColumnElement[Any]) -> ColumnElement[Any]:
    """Seconds since 1970 as double precision: extract() returns numeric, whose
    arithmetic costs several times more per row in ranking expressions."""
    return sa.func.date_part(lit("epoch"), ts, type_=sa.Float)
