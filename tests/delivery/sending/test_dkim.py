"""Messages signed here verify with dkimpy, for RSA and Ed25519, and tampering breaks them."""

import hashlib
from email.message import EmailMessage
from email.policy import SMTP

import dkim as dkimpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.sending.dkim import DkimError, KeyPair, Signer, _simple_body_hash, generate

RSA = generate("rsa-sha256")
ED25519 = generate("ed25519-sha256")


def _message(
    subject: str = "Your cart", body: str = "Hello Ann,\n\nyour cart is waiting.\n"
) -> bytes:
    message = EmailMessage()
    message["From"] = "Shop <news@shop.example>"
    message["To"] = "ann@example.org"
    message["Subject"] = subject
    message["Date"] = "Wed, 02 Dec 2026 12:00:00 +0000"
    message["Message-ID"] = "<abc@shop.example>"
    message["List-Unsubscribe"] = "<https://cdp.example/unsubscribe/t>, <mailto:u@shop.example>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(body)
    message.add_alternative(f"<p>{body}</p>", subtype="html")
    return message.as_bytes(policy=SMTP)


def _dns(keys: dict[str, KeyPair]):  # type: ignore[no-untyped-def]
    def lookup(name: bytes, timeout: int = 5) -> bytes:
        selector = name.decode().split("._domainkey.")[0]
        return keys[selector].dns_value().encode()

    return lookup


def _verify(signed: bytes, keys: dict[str, KeyPair]) -> bool:
    return bool(dkimpy.verify(signed, dnsfunc=_dns(keys)))


@pytest.mark.parametrize("pair", [RSA, ED25519], ids=["rsa", "ed25519"])
def test_a_signed_message_verifies_with_dkimpy_and_covers_the_unsubscribe_headers(pair):
    signer = Signer.load("shop.example", "s1", pair.algorithm, pair.private_pem)
    signed = signer.sign(_message())
    assert _verify(signed, {"s1": pair})
    header = signed.split(b"\r\n", 1)[0].decode()
    tags = dict(t.strip().split("=", 1) for t in header.split(":", 1)[1].split(";"))
    assert tags["d"] == "shop.example"
    assert tags["a"] == pair.algorithm
    signed_headers = tags["h"].split(":")
    assert "list-unsubscribe" in signed_headers
    assert "list-unsubscribe-post" in signed_headers
    assert {"from", "to", "subject", "date", "message-id", "mime-version", "content-type"} <= set(
        signed_headers
    )


def test_both_signatures_on_one_message_verify():
    rsa_signer = Signer.load("shop.example", "r1", "rsa-sha256", RSA.private_pem)
    ed_signer = Signer.load("shop.example", "e1", "ed25519-sha256", ED25519.private_pem)
    signed = ed_signer.sign(rsa_signer.sign(_message()))
    keys = {"r1": RSA, "e1": ED25519}
    assert dkimpy.DKIM(signed).verify(idx=0, dnsfunc=_dns(keys))
    assert dkimpy.DKIM(signed).verify(idx=1, dnsfunc=_dns(keys))


def test_a_changed_subject_or_body_no_longer_verifies():
    signer = Signer.load("shop.example", "s1", "rsa-sha256", RSA.private_pem)
    signed = signer.sign(_message())
    assert not _verify(signed.replace(b"Subject: Your cart", b"Subject: Your carT"), {"s1": RSA})
    assert not _verify(
        signed.replace(b"your cart is waiting", b"your cart is wa1ting"), {"s1": RSA}
    )
    other = generate("rsa-sha256")
    assert not _verify(signed, {"s1": other})


@settings(max_examples=40, deadline=None)
@given(
    subject=st.text(
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=120
    ),
    body=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400),
)
def test_any_subject_and_body_verify(subject, body):
    signer = Signer.load("shop.example", "s1", "rsa-sha256", RSA.private_pem)
    assert _verify(signer.sign(_message(subject, body)), {"s1": RSA})


def test_a_key_of_the_wrong_kind_or_a_message_without_from_is_refused():
    with pytest.raises(DkimError):
        Signer.load("shop.example", "s1", "ed25519-sha256", RSA.private_pem)
    signer = Signer.load("shop.example", "s1", "rsa-sha256", RSA.private_pem)
    with pytest.raises(DkimError):
        signer.sign(b"To: a@b.example\r\nSubject: x\r\n\r\nbody\r\n")
    with pytest.raises(DkimError):
        signer.sign(b"From: a@b.example\nSubject: x\n\nbody\n")


def _rfc_simple_body(body: bytes) -> bytes:
    """RFC 6376 section 3.4.3, as written: "*CRLF" at the end becomes one CRLF, and a body
    without a CRLF at its end gets one."""
    lines = body.split(b"\r\n")
    while len(lines) > 1 and lines[-1] == b"":
        lines.pop()
    return b"\r\n".join(lines) + b"\r\n"


@settings(max_examples=500, deadline=None)
@given(body=st.binary(max_size=60).map(lambda b: bytes(c for c in b if c in b"ab =\t\r\n")))
def test_the_body_is_canonicalized_as_the_rfc_says(body):
    # Bare CR or LF are not line ends; they stay inside a line as they are.
    assert _simple_body_hash(body) == hashlib.sha256(_rfc_simple_body(body)).digest()
