"""What the webhook verifiers need to know: each provider's key or credentials.

Every field is optional, and a provider whose secret is missing refuses every
request (`BadSignature`): nothing is ever accepted unsigned. SES needs only
the certificate source; its topic allow-list is optional but closes the door
to notifications from SNS topics in other AWS accounts. Secrets stay out of
`repr`, so the config can be logged.
"""

import base64
import binascii
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from delivery.deliverability.webhooks.certificates import CertificateSource


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookConfig:
    sendgrid_public_key: str | None = field(default=None, repr=False)
    postmark_username: str | None = field(default=None, repr=False)
    postmark_password: str | None = field(default=None, repr=False)
    generic_secret: str | None = field(default=None, repr=False)
    ses_topic_arns: frozenset[str] | None = None
    certificate_source: CertificateSource | None = None

    def __post_init__(self) -> None:
        if self.sendgrid_public_key is not None:
            sendgrid_key(self.sendgrid_public_key)


@lru_cache(maxsize=4)
def sendgrid_key(text: str) -> ec.EllipticCurvePublicKey:
    """The verification key SendGrid shows (base64 DER), or the same key as PEM."""
    try:
        if text.lstrip().startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        raise ValueError("the SendGrid verification key is not a public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        # A key of the wrong kind in the settings is a bad value, not a programming error.
        raise ValueError("the SendGrid verification key is not an ECDSA P-256 key")  # noqa: TRY004
    return key
