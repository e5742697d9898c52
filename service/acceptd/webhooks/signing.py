"""Standard Webhooks signatures: pure functions, no I/O.

Signed content is `{webhook-id}.{webhook-timestamp}.{body}`. `v1`: HMAC-SHA256 keyed with
the base64-decoded secret after `whsec_`. `v1a`: Ed25519 with the private key `whsk_…`;
receivers verify with the public key `whpk_…` and hold no secret. The header lists one
signature per valid key, space-separated. Ed25519 needs `cryptography` (imported only then).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

# generate_secret is re-exported: receivers and tests make secrets with it from here.
from acceptd.core.credentials import PUBLIC_KEY_PREFIX, SIGNING_KEY_PREFIX
from acceptd.core.credentials import WEBHOOK_SECRET_PREFIX as SECRET_PREFIX
from acceptd.core.credentials import generate_secret as generate_secret

TOLERANCE_SECONDS = 300
SIGNATURE_VERSION = "v1"
ASYMMETRIC_VERSION = "v1a"


class WebhookVerificationError(Exception):
    """The webhook is not authentic, or not fresh. The message says which check failed."""


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a secret; accepts it with or without `whsec_` and without padding."""
    body = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("webhook secret is not valid base64") from exc


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    content = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_header(keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(key, msg_id, timestamp, body) for key in keys)


def _raw(value: str, prefix: str) -> bytes:
    body = value.removeprefix(prefix)
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{prefix}… key is not valid base64") from exc
    if len(raw) != 32:
        raise ValueError(f"{prefix}… key must be 32 bytes")
    return raw


def sign_v1a(signing_key: str, msg_id: str, timestamp: int, body: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.from_private_bytes(_raw(signing_key, SIGNING_KEY_PREFIX))
    content = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    return f"{ASYMMETRIC_VERSION},{base64.b64encode(private.sign(content)).decode()}"


def signatures_for(keys: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header for every key: `whsec_…` signs v1, `whsk_…` signs v1a."""
    signed = [
        sign_v1a(key, msg_id, timestamp, body)
        if key.startswith(SIGNING_KEY_PREFIX)
        else sign(decode_secret(key), msg_id, timestamp, body)
        for key in keys
    ]
    return " ".join(signed)


def _v1a_matches(public_key: str, signature: str, content: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw_signature = base64.b64decode(signature, validate=True)
        Ed25519PublicKey.from_public_bytes(_raw(public_key, PUBLIC_KEY_PREFIX)).verify(
            raw_signature, content
        )
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


WEBHOOK_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def webhook_headers_of(headers: Mapping[str, str]) -> dict[str, str]:
    """Every header by its lower-case name; a webhook header sent twice is refused: one
    reader would check the signature of one copy and another dedupe on the other."""
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in lowered and key in WEBHOOK_HEADERS:
            raise WebhookVerificationError(f"the {key} header is repeated")
        lowered[key] = value
    return lowered


def verify(
    secrets: str | Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> int:
    """Check a received webhook against one or more secrets; returns its timestamp.

    Verify the raw body, before parsing it. Raises WebhookVerificationError.
    """
    lowered = webhook_headers_of(headers)
    msg_id = lowered.get("webhook-id")
    raw_timestamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not msg_id or not raw_timestamp or not signatures:
        raise WebhookVerificationError(
            "missing webhook-id, webhook-timestamp or webhook-signature header"
        )
    try:
        timestamp = int(raw_timestamp)
    except ValueError as exc:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from exc
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise WebhookVerificationError("webhook-timestamp is too old (possible replay)")
    if timestamp > current + tolerance:
        raise WebhookVerificationError("webhook-timestamp is too far in the future")
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    public_keys = [c for c in candidates if c.startswith(PUBLIC_KEY_PREFIX)]
    expected = [
        sign(decode_secret(s), msg_id, timestamp, body).encode()
        for s in candidates
        if not s.startswith(PUBLIC_KEY_PREFIX)
    ]
    content = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    for offered in signatures.split(" "):
        version, _, value = offered.partition(",")
        matched = (
            version == SIGNATURE_VERSION
            and any(hmac.compare_digest(offered.encode(), want) for want in expected)
        ) or (
            version == ASYMMETRIC_VERSION
            and any(_v1a_matches(key, value, content) for key in public_keys)
        )
        if matched:
            return timestamp
    raise WebhookVerificationError("no matching signature")
