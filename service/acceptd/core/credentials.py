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


def generate_master_key() -> str:
    """An ACCEPTD_MASTER_KEY: base64 of 32 random bytes."""
    return base64.b64encode(os.urandom(MASTER_KEY_BYTES)).decode()
