"""A delivery's message: the bulk-sender headers, DKIM over both list headers, a VERP return path."""

import uuid
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import dkim as dkimpy
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.sending import message
from delivery.sending.dkim import Signer, generate
from delivery.sending.message import Addressing, build, delivery_of, return_path
from delivery.templates.model import RenderedEmail

SECRET = "s" * 40
KEY = generate("rsa-sha256")
EMAIL = RenderedEmail("Your cart, Ann", "Saved for you", "<p>Hi Ann &amp; co</p>", "Hi Ann & co\n")


def _build(delivery_id: uuid.UUID) -> bytes:
    signer = Signer.load("shop.example", "s1", "rsa-sha256", KEY.private_pem)
    envelope = build(
        EMAIL,
        Addressing("news@shop.example", "ann@example.org", "Shoe Shop", "help@shop.example"),
        delivery_id=delivery_id, domain="shop.example",
        unsubscribe_url="https://cdp.example/unsubscribe/tok", feedback_id="c1:w1:cdp",
        at=datetime(2026, 12, 2, 12, tzinfo=UTC), secret=SECRET, signers=[signer],
    )  # fmt: skip
    assert envelope.recipient == "ann@example.org"
    assert delivery_of(SECRET, envelope.sender) == delivery_id
    return envelope.data


def test_the_message_has_the_bulk_sender_headers_and_a_signature_over_them():
    delivery_id = uuid.uuid4()
    data = _build(delivery_id)
    parsed = message_from_bytes(data, policy=default)
    assert parsed["From"] == "Shoe Shop <news@shop.example>"
    assert parsed["Reply-To"] == "help@shop.example"
    assert parsed["Message-ID"] == f"<{delivery_id}@shop.example>"
    unsubscribe = parsed["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://cdp.example/unsubscribe/tok>, <mailto:b-")
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Feedback-ID"] == "c1:w1:cdp"
    assert parsed.get_body(("plain",)).get_content().splitlines() == ["Hi Ann & co"]
    assert "<p>Hi Ann &amp; co</p>" in parsed.get_body(("html",)).get_content()

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        return KEY.dns_value().encode()

    assert dkimpy.verify(data, dnsfunc=lookup)
    signature = parsed["DKIM-Signature"]
    signed = signature.split("h=")[1].split(";")[0].split(":")
    assert "list-unsubscribe" in signed
    assert "list-unsubscribe-post" in signed


def test_a_return_path_names_its_delivery_and_cannot_be_forged():
    delivery_id = uuid.uuid4()
    address = return_path(SECRET, delivery_id, "shop.example")
    local, _, host = address.partition("@")
    assert host == "bounces.shop.example"
    assert len(local) <= 64
    assert delivery_of(SECRET, address) == delivery_id
    assert delivery_of(SECRET, f"<{address.upper()}>") == delivery_id
    assert delivery_of("t" * 40, address) is None
    other = return_path(SECRET, uuid.uuid4(), "shop.example").partition("-")[2].partition("-")[0]
    forged = f"b-{other}-{local.rsplit('-', 1)[1]}@bounces.shop.example"
    assert delivery_of(SECRET, forged) is None
    for junk in ("postmaster@shop.example", "b-!!-??@x", "b-@x", ""):
        assert delivery_of(SECRET, junk) is None


@settings(max_examples=300, deadline=None)
@given(
    at=st.datetimes(
        min_value=datetime(1970, 1, 2),  # noqa: DTZ001 - hypothesis takes naive bounds
        max_value=datetime(9998, 12, 31),  # noqa: DTZ001
        timezones=st.sampled_from([UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")]),
    )
)
def test_the_date_header_is_what_the_standard_library_writes_in_utc(at):
    assert message.date_header(at) == format_datetime(at.astimezone(UTC))
