"""Opaque, type-safe global ids (Relay): base64url of "Type:number", unpadded.

Each object has exactly one id. Any other spelling of it (padding, "Content:007", "+5",
" 5", "1_0", other scripts' digits, a number beyond what a row can hold) names nothing:
null or NOT_FOUND like any id of something missing, never a second way in."""

import base64
import binascii
import re

from resolvers.errors import BadUserInput

NODE_TYPES = ("User", "Content", "Tag", "Notification", "Webhook")
# Primary keys are Postgres bigints.
MAX_PK = 2**63 - 1
_NUMBER = re.compile(r"[1-9][0-9]{0,18}")
_NOT_BASE64URL = re.compile(r"[^A-Za-z0-9_-]")


def encode_id(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def decode_id(global_id: str, *, argument: str = "id") -> tuple[str, int | None]:
    """(type name, primary key); the key is None when the id is not spelled as this API
    issues it (it names nothing). BAD_USER_INPUT when `global_id` is not an id at all."""
    # Characters outside base64url (a space, padding) are passed over when decoding, so a
    # mis-spelled id still reads as the id it resembles, and names nothing (below) rather
    # than being "not an id".
    cleaned = _NOT_BASE64URL.sub("", global_id)
    try:
        padded = cleaned + "=" * (-len(cleaned) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise BadUserInput(
            f"`{argument}` is not a valid id: use an id returned by this API"
        ) from None
    type_name, colon, number = text.partition(":")
    if not colon or type_name not in NODE_TYPES:
        raise BadUserInput(f"`{argument}` is not a valid id: use an id returned by this API")
    if not _NUMBER.fullmatch(number) or int(number) > MAX_PK:
        return type_name, None
    pk = int(number)
    return type_name, pk if encode_id(type_name, pk) == global_id else None


def decode_id_of(global_id: str, type_name: str, *, argument: str = "id") -> int | None:
    """The primary key if `global_id` names a `type_name`, else None (an id of another type
    names nothing of this type: not found, not an error)."""
    found_type, pk = decode_id(global_id, argument=argument)
    return pk if found_type == type_name else None
