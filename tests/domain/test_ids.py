"""Resource ids and request ids: shape, and that unseeded ones do not repeat."""

from __future__ import annotations

import collections
import os
import random
import re

from disksnap.domain.ids import ALPHABET, ID_LENGTH, IdGenerator, characters, new_request_id

ID = re.compile(rf"fd8[{ALPHABET}]{{{ID_LENGTH - 3}}}")


def test_unseeded_ids_have_the_shape_and_do_not_repeat() -> None:
    ids = [IdGenerator().new("fd8") for _ in range(5000)]
    assert all(ID.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_random_bytes_map_to_every_character_equally() -> None:
    counts = collections.Counter(characters(bytes(range(256))))
    assert set(counts) == set(ALPHABET)
    assert set(counts.values()) == {7}  # 252 of the 256 byte values, 7 per character


def test_seeded_ids_repeat_with_the_seed() -> None:
    first = [IdGenerator(random.Random(1)).new("b1g") for _ in range(3)]
    assert first == [IdGenerator(random.Random(1)).new("b1g") for _ in range(3)]


def test_request_ids_are_128_random_bits_in_hex() -> None:
    ids = [new_request_id() for _ in range(1000)]  # more than one block of entropy
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_does_not_reuse_its_parents_random_bytes() -> None:
    new_request_id()  # the parent's block is filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert child != new_request_id()
