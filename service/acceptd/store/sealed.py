"""Signing secrets stored sealed, with the previous one kept valid through a rotation window."""

from __future__ import annotations

from collections.abc import Sequence

from acceptd.core.clock import now_ms
from acceptd.core.secretbox import SecretBox

ROTATION_OVERLAP_SECONDS = 24 * 3600
# Where a tenant's hash holds its secret: the secret, its predecessor, and when that stops
# signing. An endpoint holds two secrets, each in fields of its own (store/layouts.py).
SECRET_FIELDS = ["secret", "previous_secret", "previous_until"]


def open_secrets(
    box: SecretBox, context: str, current: str | None, previous: str | None, until: str | None
) -> list[str]:
    """The current secret, then the previous one while its window lasts."""
    found = [box.decrypt(current, context)] if current else []
    if previous and until and int(until) > now_ms():
        found.append(box.decrypt(previous, context))
    return found


def rotation_fields(
    box: SecretBox,
    context: str,
    new_secret: str,
    old_sealed: str | None,
    names: Sequence[str] = SECRET_FIELDS,
) -> dict[str, str]:
    """The fields to write for `new_secret`, named `names` (as SECRET_FIELDS: the secret,
    its predecessor, the end of the predecessor's window)."""
    current, previous, until = names
    fields = {current: box.encrypt(new_secret, context)}
    if old_sealed:
        fields[previous] = old_sealed
        fields[until] = str(now_ms() + ROTATION_OVERLAP_SECONDS * 1000)
    return fields
