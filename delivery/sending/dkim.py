"""DKIM (RFC 6376) signatures with `cryptography`, and the keys and DNS records behind them.

dkimpy signs in pure Python, far too slowly for a campaign (the architecture
guide has the figures); `cryptography` does the RSA in OpenSSL, so the
signer is written here against the RFC and the tests verify its messages
with dkimpy. Both RSA-SHA256 and Ed25519-SHA256 (RFC 8463) are supported,
with relaxed canonicalization of the headers, which survives relays that
rewrap them, and simple canonicalization of the body. The bodies signed
here are quoted-printable (`mime.py`): lines under 77 characters with no
space at their ends, which relays have no cause to touch, so the body is
hashed as it is sent instead of with every run of spaces folded first, the
largest cost of relaxed canonicalization (bench/README.md, "Sending").

A message is signed as the bytes that go on the wire: `sign` takes them and
returns them with the DKIM-Signature header in front.
"""

import base64
import hashlib
import re
import time
from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

Algorithm = Literal["rsa-sha256", "ed25519-sha256"]
RSA_BITS = 2048
# What the signature covers, when present (RFC 6376 section 5.4.1, and RFC 8058
# for the one-click unsubscribe headers, which mailbox providers require signed).
SIGNED_HEADERS = (
    "from", "to", "cc", "reply-to", "subject", "date", "message-id",
    "list-unsubscribe", "list-unsubscribe-post", "feedback-id",
    "mime-version", "content-type", "content-transfer-encoding",
)  # fmt: skip
_WSP = re.compile(rb"[ \t]+")


class DkimError(ValueError):
    """The message or the key cannot be signed as given."""


@dataclass(frozen=True)
class KeyPair:
    algorithm: Algorithm
    private_pem: bytes  # PKCS#8, unencrypted: seal it before it is stored
    public_b64: str  # the `p=` of the DNS record

    def dns_value(self) -> str:
        return dns_value(self.algorithm, self.public_b64)


def generate(algorithm: Algorithm = "rsa-sha256") -> KeyPair:
    """A new key pair: RSA-2048, or Ed25519 for the second signature RFC 8463 allows."""
    if algorithm == "rsa-sha256":
        key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = rsa.generate_private_key(
            public_exponent=65537, key_size=RSA_BITS
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return KeyPair(algorithm, pem, base64.b64encode(public).decode())


def dns_value(algorithm: Algorithm, public_b64: str) -> str:
    """The TXT record to publish at `selector._domainkey.domain`."""
    kind = "rsa" if algorithm == "rsa-sha256" else "ed25519"
    return f"v=DKIM1; k={kind}; p={public_b64}"


@dataclass(frozen=True)
class Signer:
    """One domain's key, loaded once, signing any number of messages."""

    domain: str
    selector: str
    algorithm: Algorithm
    private_key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

    @classmethod
    def load(cls, domain: str, selector: str, algorithm: Algorithm, private_pem: bytes) -> "Signer":
        key = serialization.load_pem_private_key(private_pem, password=None)
        expected = rsa.RSAPrivateKey if algorithm == "rsa-sha256" else ed25519.Ed25519PrivateKey
        if not isinstance(key, expected):
            raise DkimError(f"the key is not a {algorithm} key")
        return cls(domain.lower(), selector, algorithm, key)

    def sign(self, message: bytes, *, now: float | None = None) -> bytes:
        """`message` (CRLF line ends, as sent) with a DKIM-Signature header in front."""
        head, body = _split(message)
        fields = _fields(head)
        present = {name for name, _ in fields}
        names = [n for n in SIGNED_HEADERS if n in present]
        if "from" not in names:
            raise DkimError("a message without From cannot be signed")
        body_hash = base64.b64encode(_simple_body_hash(body)).decode()
        tags = (
            f"v=1; a={self.algorithm}; c=relaxed/simple; d={self.domain}; "
            f"s={self.selector}; t={int(time.time() if now is None else now)}; "
            f"h={':'.join(names)}; bh={body_hash}; b="
        )
        signed = b"".join(_relaxed_header(n, v) + b"\r\n" for n, v in _chosen(fields, names))
        signed += _relaxed_header("dkim-signature", tags.encode())
        signature = base64.b64encode(self._signature(signed)).decode()
        return f"DKIM-Signature: {tags}{signature}\r\n".encode() + message

    def _signature(self, data: bytes) -> bytes:
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        # RFC 8463: Ed25519 signs the SHA-256 digest of the canonicalized data.
        return self.private_key.sign(hashlib.sha256(data).digest())


def _split(message: bytes) -> tuple[bytes, bytes]:
    head, separator, body = message.partition(b"\r\n\r\n")
    if not separator:
        raise DkimError("the message must have CRLF line ends and a blank line before its body")
    return head + b"\r\n", body


def _fields(head: bytes) -> list[tuple[str, bytes]]:
    """The header fields in order: (lower-case name, raw value with its folding)."""
    fields: list[tuple[str, bytes]] = []
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
            continue
        raw_name, colon, raw_value = line.partition(b":")
        if not colon:
            raise DkimError(f"not a header line: {line[:40]!r}")
        fields.append((raw_name.decode("ascii").strip().lower(), raw_value))
    return fields


def _chosen(fields: list[tuple[str, bytes]], names: list[str]) -> list[tuple[str, bytes]]:
    """For each name, the last instance of that field (RFC 6376 section 5.4.2)."""
    last = dict(fields)  # a later field of the same name replaces an earlier one
    return [(name, last[name]) for name in names]


def _relaxed_header(name: str, value: bytes) -> bytes:
    unfolded = value.replace(b"\r\n", b"")
    if b"\t" in unfolded or b"  " in unfolded:
        unfolded = _WSP.sub(b" ", unfolded)
    return name.encode() + b":" + unfolded.strip(b" \t")


def _simple_body_hash(body: bytes) -> bytes:
    """SHA-256 of the body canonicalized as RFC 6376 section 3.4.3 has it: the empty lines at
    the end go, and the body ends with one CRLF (an empty body is a CRLF)."""
    end = len(body)
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    digest = hashlib.sha256(memoryview(body)[:end])  # hashed in place, not copied first
    digest.update(b"\r\n")
    return digest.digest()
