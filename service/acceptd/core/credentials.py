"""Every credential acceptd makes: API keys, webhook signing secrets, the master key."""

from __future__ import annotations

import base64
import binascii
import math
import os
import secrets
from collections import Counter

API_KEY_PREFIX = "acc_"
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
WEBHOOK_SECRET_BYTES = 32
MASTER_KEY_BYTES = 32


def generate_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def generate_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and base64 of 32 random bytes."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(os.urandom(WEBHOOK_SECRET_BYTES)).decode()


# Standard Webhooks asymmetric (v1a) keys: the private key only ever lives sealed in Redis
# and in the dispatcher's memory; receivers get the public key.
SIGNING_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"


def generate_signing_key() -> tuple[str, str]:
    """A new Ed25519 key pair: (`whsk_` + base64 of the 32-byte private key,
    `whpk_` + base64 of the 32-byte public key)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return (
        SIGNING_KEY_PREFIX + base64.b64encode(seed).decode(),
        PUBLIC_KEY_PREFIX + base64.b64encode(public).decode(),
    )


def generate_master_key() -> str:
    """An ACCEPTD_MASTER_KEY: base64 of 32 random bytes."""
    return base64.b64encode(os.urandom(MASTER_KEY_BYTES)).decode()


# What an operator-chosen credential (ACCEPTD_BOOTSTRAP_*) must at least be. A key is judged
# by its length and by how its characters are spread (Shannon entropy of its own characters
# times its length): a cheap guard against `changeme`, `aaaa…` and `passwordpassword…`, not a
# proof of randomness, so `acceptd keygen`-style generated values are still what to use.
MIN_API_KEY_CHARS = 32
MIN_API_KEY_BITS = 80
MIN_SECRET_BYTES = 24


def api_key_weakness(key: str) -> str | None:
    """Why `key` is too weak to be an API key, or None if it is not."""
    if len(key) < MIN_API_KEY_CHARS:
        return f"is {len(key)} characters; an API key needs at least {MIN_API_KEY_CHARS}"
    if (key + key).find(key, 1) < len(key):
        return "repeats a shorter string; use a random key (`acc_` + 32 random bytes)"
    counts = Counter(key)
    bits = -sum(n * math.log2(n / len(key)) for n in counts.values())
    if bits < MIN_API_KEY_BITS:
        return "has too few different characters to be random; use a random key"
    return None


def secret_weakness(secret: str) -> str | None:
    """Why `secret` is not a usable signing secret (`whsec_` + base64 of at least 24
    bytes), or None if it is."""
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        return "must start with whsec_"
    try:
        raw = base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        return "must be whsec_ followed by base64"
    if len(raw) < MIN_SECRET_BYTES:
        return f"decodes to {len(raw)} bytes; a signing secret needs at least {MIN_SECRET_BYTES}"
    return None
