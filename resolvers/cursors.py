"""Opaque, tamper-evident page cursors: a signed position in one kind of list."""

import base64
import binascii
import hashlib
import hmac
from datetime import datetime
from typing import Any

import orjson

from resolvers.errors import BadUserInput

_SIGNATURE_BYTES = 12


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"cursor:" + secret.encode()).digest()

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]

    def encode(self, kind: str, position: tuple[Any, ...]) -> str:
        values = [v.isoformat() if isinstance(v, datetime) else v for v in position]
        payload = orjson.dumps([kind, values])
        return base64.urlsafe_b64encode(payload + self._sign(payload)).decode().rstrip("=")

    def decode(self, cursor: str, kind: str, *, argument: str = "after") -> list[Any]:
        """The position's values (datetimes as ISO strings); BAD_USER_INPUT unless `cursor`
        came from this gateway for a list of this `kind`."""
        problem = BadUserInput(
            f"`{argument}` is not a cursor of this list: pass an endCursor this list returned"
        )
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise problem from None
        payload, signature = raw[:-_SIGNATURE_BYTES], raw[-_SIGNATURE_BYTES:]
        if len(raw) <= _SIGNATURE_BYTES or not hmac.compare_digest(signature, self._sign(payload)):
            raise problem
        found_kind, values = orjson.loads(payload)
        if found_kind != kind:
            raise problem
        return list(values)


def parse_datetime(value: Any, *, argument: str = "after") -> datetime:
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise BadUserInput(f"`{argument}` is not a cursor of this list") from None
