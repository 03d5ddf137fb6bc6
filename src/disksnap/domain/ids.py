"""Resource ids: 20 characters of ``[a-z0-9]`` with a 3-character prefix per kind.

Randomness is read here and nowhere else; tests pass a seeded ``random.Random``.
"""

from __future__ import annotations

import random
import re
import secrets
import string

ALPHABET = string.ascii_lowercase + string.digits
ID_LENGTH = 20
# Engine-level names (disk ids, snapshot ids) are used in file and object names, so they
# are validated against this pattern before any path or key is built from them.
SAFE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,49}")

PREFIX_SNAPSHOT = "fd8"
PREFIX_FOLDER = "b1g"
PREFIX_SUBJECT = "aje"


class IdGenerator:
    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng

    def new(self, prefix: str) -> str:
        n = ID_LENGTH - len(prefix)
        if self._rng is None:
            tail = "".join(secrets.choice(ALPHABET) for _ in range(n))
        else:
            tail = "".join(self._rng.choice(ALPHABET) for _ in range(n))
        return prefix + tail


def is_safe_id(value: str) -> bool:
    return SAFE_ID.fullmatch(value) is not None
