"""The CDP's core types: no I/O here."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

MessageType = Literal["identify", "track", "page", "screen", "group", "alias"]
MESSAGE_TYPES: tuple[MessageType, ...] = ("identify", "track", "page", "screen", "group", "alias")

USER_ID = "user_id"
ANONYMOUS_ID = "anonymous_id"
EMAIL = "email"
PHONE = "phone"
BUILTIN_KINDS = (USER_ID, ANONYMOUS_ID, EMAIL, PHONE)


class Identifier(NamedTuple):
    """A normalized identifier: email lower-cased, phone in E.164, and so on.

    A named tuple, not a dataclass: a batch hashes, compares and sorts thousands
    of them, which a tuple does in C and a dataclass in Python.
    """

    kind: str
    value: str


# Not frozen: bulk paths make one per item, and a frozen one is slower to build (bench/README.md).
@dataclass(slots=True)
class Message:
    """One validated Segment-spec message, its timestamp already corrected for clock skew."""

    type: MessageType
    message_id: str
    timestamp: datetime
    received_at: datetime
    user_id: str | None = None
    anonymous_id: str | None = None
    previous_id: str | None = None
    group_id: str | None = None
    name: str | None = None  # track event name; page/screen name
    traits: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
