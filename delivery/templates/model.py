"""Templates as data: what an author writes, what a recipient brings, what comes out. No I/O."""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# Gmail clips a message whose HTML is larger than this.
GMAIL_CLIP_BYTES = 102 * 1024
# Longer subjects are cut off in most inboxes (RFC 5322 also advises 78 characters a line).
SUBJECT_MAX = 78


@dataclass(frozen=True)
class TemplateContent:
    """One version as its author wrote it: Liquid in the subject, preheader, MJML and text."""

    subject: str
    mjml: str
    preheader: str | None = None
    text: str | None = None  # generated from the HTML when None


@dataclass(frozen=True)
class TemplateWarning:
    code: str
    message: str
    line: int | None = None


class TemplateError(ValueError):
    """The template cannot be compiled; `field` names the part, `line` its line when known."""

    def __init__(self, message: str, *, field: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.line = line

    def __str__(self) -> str:
        where = f"{self.field}, line {self.line}" if self.line is not None else self.field
        return f"{where}: {self.message}"


class RenderError(RuntimeError):
    """A render stopped: a loop ran too long, or the output grew too large."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    preheader: str | None
    html: str
    text: str


class RecipientProfile(Mapping[str, Any]):
    """`profile` as templates see it: `id`, `traits`, `computed`, and `segments`, the names of
    the segments it belongs to (`{% if profile.segments contains "VIP" %}`)."""

    __slots__ = ("_values",)

    def __init__(
        self,
        profile_id: str,
        traits: Mapping[str, Any],
        computed: Mapping[str, Any],
        segments: Iterable[str] = (),
    ) -> None:
        self._values = {
            "id": profile_id, "traits": traits, "computed": computed, "segments": sorted(segments),
        }  # fmt: skip

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


@dataclass(frozen=True)
class Sender:
    """The workspace's part of every message."""

    name: str
    postal_address: str | None = None


@dataclass(frozen=True)
class Recipient:
    """One recipient's data for one message."""

    profile: RecipientProfile
    unsubscribe_url: str = ""
    preferences_url: str = ""
    event: Mapping[str, Any] | None = None
    recommendations: Mapping[str, Any] = field(default_factory=dict)


# `profile.computed.X`: the computed traits by their GraphQL names.
COMPUTED_NAMES = frozenset(
    {"firstSeen", "lastSeen", "lastProductViewed", "cart", "orderCount", "totalRevenue",
     "averageOrderValue", "lastOrderAt"}
)  # fmt: skip

# The names a template may use (API.md, "Templates"); any other is UNKNOWN_VARIABLE.
SCOPE: dict[str, frozenset[str] | None] = {
    "profile": frozenset({"id", "traits", "computed", "segments"}),
    "event": frozenset({"name", "properties"}),
    "unsubscribe_url": None,
    "preferences_url": None,
    "workspace": frozenset({"name", "postal_address"}),
    "recommendations": frozenset({"recently_viewed", "popular"}),
}
