"""A Flask receiver for acceptd webhooks."""

from __future__ import annotations

import json
import os

from flask import Flask, request

from acceptd.webhooks.receiver import WebhookVerificationError, verify_event

SECRETS = os.environ["ACCEPTD_WEBHOOK_SECRET"].split()
handled: set[str] = set()  # use your database in production

app = Flask(__name__)


@app.post("/webhooks")
def webhooks() -> tuple[str, int]:
    body = request.get_data()  # the raw bytes: the signature covers exactly these
    try:
        event = verify_event(SECRETS, dict(request.headers), body)
    except WebhookVerificationError as exc:
        return str(exc), 401
    if event.id not in handled:
        handled.add(event.id)
        # Your work here; keep it short or hand it to a queue, and answer quickly.
        print(json.dumps({"recipe": "flask", "type": event.type, "webhook_id": event.id,
                          "subject": event.data.get("id")}), flush=True)  # fmt: skip
    return "", 204
