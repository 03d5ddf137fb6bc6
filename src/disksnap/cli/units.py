"""Values typed on the command line: sizes with units and ``k=v,k2=v2`` label lists.

Sizes count in powers of two whatever the spelling, as Yandex Cloud does for disks
(a "10 GB" disk holds 10 * 2**30 bytes): ``4GiB`` = ``4GB`` = ``4G`` = 4294967296. A
number without a unit is bytes, the unit of the API. Fractions are allowed when the
result is a whole number of bytes (``1.5GiB``).
"""

from __future__ import annotations

import argparse
import re
from decimal import Decimal

_UNITS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}
_SIZE = re.compile(
    r"\s*(?P<number>\d+(?:\.\d+)?)\s*(?:(?P<unit>[kmgtp])(?:i?b)?|b)?\s*", re.IGNORECASE
)


class InvalidValue(argparse.ArgumentTypeError, ValueError):
    """A command-line value that cannot be used; the text says what is expected (as an
    ``ArgumentTypeError``, argparse shows that text when a ``type=`` converter raises it)."""


def parse_size(text: str) -> int:
    """Bytes of ``10GB``, ``4GiB``, ``512M``, ``4194304``; InvalidValue otherwise."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise InvalidValue(
            f"invalid size {text!r}: expected a number of bytes or a number with a unit "
            "(K, M, G, T, P; KB/KiB, MB/MiB, … all count in powers of 1024)"
        )
    exact = Decimal(match["number"]) * (1 << (10 * _UNITS[(match["unit"] or "").upper()]))
    if exact != exact.to_integral_value():
        raise InvalidValue(f"invalid size {text!r}: not a whole number of bytes")
    return int(exact)


def format_size(size: int) -> str:
    """``size`` in the largest binary unit that divides it exactly (``16 MiB``, ``1000 B``)."""
    for unit, power in (("PiB", 5), ("TiB", 4), ("GiB", 3), ("MiB", 2), ("KiB", 1)):
        step = 1 << (10 * power)
        if size and size % step == 0:
            return f"{size // step} {unit}"
    return f"{size} B"


def parse_labels(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` as a dict; ``""`` is no labels (to clear them on update)."""
    labels: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidValue(f"invalid label {item!r}: expected key=value")
        if key.strip() in labels:
            raise InvalidValue(f"label {key.strip()!r} is given twice")
        labels[key.strip()] = value.strip()
    return labels
