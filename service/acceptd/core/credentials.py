"""Every credential acceptd makes: API keys, webhook signing secrets, the master key."""

from __future__ import annotations

import base64
import os
import secrets

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
