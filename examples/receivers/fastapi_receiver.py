"""A FastAPI (Starlette) receiver for acceptd webhooks."""

from __future__ import annotations

import json
import os

from fastapi import FastAPI, Request, Response

from acceptd.webhooks.receiver import WebhookVerificationError, verify_event

SECRETS = os.environ["ACCEPTD_WEBHOOK_SECRET"].split()
handled: set[str] = set()  # use your database in production

app = FastAPI()


@app.post("/webhooks")
async def webhooks(request: Request) -> Response:
    body = await request.body()  # the raw bytes: the signature covers exactly these
    try:
        event = verify_event(SECRETS, request.headers, body)
    except WebhookVerificationError as exc:
        return Response(str(exc), status_code=401)
    if event.id not in handled:
        handled.add(event.id)
        # Your work here; keep it short or hand it to a queue, and answer quickly.
        print(json.dumps({"recipe": "fastapi", "type": event.type, "webhook_id": event.id,
                          "subject": event.data.get("id")}), flush=True)  # fmt: skip
    return Response(status_code=204)
