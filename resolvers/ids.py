"""Opaque, type-safe global ids (Relay): base64url of "Type:number"."""

import base64
import binascii

from resolvers.errors import BadUserInput

NODE_TYPES = ("User", "Content", "Tag", "Notification", "Webhook")


def encode_id(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def decode_id(global_id: str, *, argument: str = "id") -> tuple[str, int]:
    """(type name, primary key); BAD_USER_INPUT when `global_id` is not an id we issued."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        type_name, _, pk = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        number = int(pk)
    except (binascii.Error, UnicodeError, ValueError):
        raise BadUserInput(
            f"`{argument}` is not a valid id: use an id returned by this API"
        ) from None
    if type_name not in NODE_TYPES or number <= 0:
        raise BadUserInput(f"`{argument}` is not a valid id: use an id returned by this API")
    return type_name, number


def decode_id_of(global_id: str, type_name: str, *, argument: str = "id") -> int | None:
    """The primary key if `global_id` names a `type_name`, else None (an id of another type
    names nothing of this type: not found, not an error)."""
    found_type, pk = decode_id(global_id, argument=argument)
    return pk if found_type == type_name else None
