"""Standard Webhooks v1 signatures: pure functions, no I/O.

Signed content is `{webhook-id}.{webhook-timestamp}.{body}`, HMAC-SHA256 keyed with the
base64-decoded secret after `whsec_`; the header lists one `v1,<base64>` per valid secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

# generate_secret is re-exported: receivers and tests make secrets with it from here.
from acceptd.core.credentials import WEBHOOK_SECRET_PREFIX as SECRET_PREFIX
from acceptd.core.credentials import generate_secret as generate_secret

TOLERANCE_SECONDS = 300
SIGNATURE_VERSION = "v1"


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
    lowered = {name.lower(): value for name, value in headers.items()}
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
    expected = [sign(decode_secret(s), msg_id, timestamp, body).encode() for s in candidates]
    for offered in signatures.split(" "):
        version, _, _ = offered.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        if any(hmac.compare_digest(offered.encode(), want) for want in expected):
            return timestamp
    raise WebhookVerificationError("no matching signature")
