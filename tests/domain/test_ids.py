"""UUIDv7 ids: made one at a time, in bulk, or from a supply."""

import time
import uuid

from domain.ids import id_supply, new_id, new_ids_text


def _millis(value: uuid.UUID) -> int:
    return value.int >> 80


def test_every_way_of_making_ids_gives_distinct_version_7_ids_of_now():
    before = time.time_ns() // 1_000_000
    make = id_supply(4)
    supplied = [make() for _ in range(10)]  # more than one draw of the supply
    made = [new_id(), *supplied, *(uuid.UUID(text) for text in new_ids_text(5))]
    after = time.time_ns() // 1_000_000
    assert len(set(made)) == len(made) == 16
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in made)
    assert all(before <= _millis(u) <= after for u in made)
