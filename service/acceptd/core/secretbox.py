"""Encryption at rest for stored webhook secrets (AES-256-GCM under ACCEPTD_MASTER_KEY)."""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"


class SecretBoxError(Exception):
    pass


class SecretBox:
    """`context` binds a ciphertext to its record, so one cannot be swapped for another."""

    def __init__(self, master_key_b64: str) -> None:
        self._aead = AESGCM(base64.b64decode(master_key_b64))

    def encrypt(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return f"{_VERSION}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, context: str) -> str:
        version, _, body = token.partition(":")
        if version != _VERSION:
            raise SecretBoxError(f"unknown ciphertext version {version!r}")
        raw = base64.b64decode(body)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag as exc:
            raise SecretBoxError(
                "cannot decrypt a stored secret: is ACCEPTD_MASTER_KEY the key it was stored with?"
            ) from exc
