"""Tag ids are a function of the tag's name: migration 0006's gateway_tag_id(), which a
trigger applies to every inserted tag. Writers that set ids themselves (the seed, with
COPY) use this to know them in advance."""

import hashlib

_POSITIVE_63_BITS = 2**63 - 1


def tag_id(name: str) -> int:
    digest = hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()
    return max(1, int(digest[:16], 16) & _POSITIVE_63_BITS)
