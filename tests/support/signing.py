"""Webhooks signed as the dispatcher signs them, for receiver tests."""

from __future__ import annotations

import json
import time
from typing import Any

from acceptd.dispatcher.sender import webhook_headers


def sign_event(
    secret: str, payload: dict[str, Any], *, msg_id: str = "msg_test", at: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """A webhook as the dispatcher would sign it, for receiver tests."""
    body = json.dumps(payload).encode()
    return body, webhook_headers(msg_id, body, [secret], at or int(time.time()))
