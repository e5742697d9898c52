"""The benchmark peer: what a competent Flask + Celery shop would build for the same job.

`app` (Flask, served by gunicorn) answers `POST /v1/jobs` with 202, a `Location` and a
`Retry-After` after `.delay()` of `run_job`; `celery` runs it in a Celery worker (Redis
broker, no result backend) and POSTs a Standard-Webhooks-signed `job.succeeded` to the
job's `callback_url`, signed with the `standardwebhooks` package (the reference library, as
such a shop would pip install) and verified by the bench receiver exactly as acceptd's are.

Configured from the environment, read once at import (both processes import this module):
PEER_REDIS_URL (the broker), PEER_API_KEY (the bearer token submits must carry) and
PEER_SECRET (the endpoint's `whsec_` signing secret). bench/peer.py starts both roles.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import requests
from celery import Celery
from flask import Flask, Response, request
from standardwebhooks import Webhook

REDIS_URL = os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:6379/0")
API_KEY = os.environ.get("PEER_API_KEY", "")
SECRET = os.environ.get("PEER_SECRET", "")

celery = Celery("peer", broker=REDIS_URL)
celery.conf.update(
    task_ignore_result=True,  # no result backend: the webhook is the result
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    # Celery's defaults otherwise: acks on receipt (not acks_late), prefetch multiplier 4.
)

app = Flask(__name__)


def _error(status: int, detail: str) -> Response:
    return Response(json.dumps({"detail": detail}), status=status, mimetype="application/json")


@app.post("/v1/jobs")
def submit() -> Response:
    offered = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if not API_KEY or not hmac.compare_digest(offered.encode(), API_KEY.encode()):
        return _error(401, "unauthorized")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object")
    job_type, job_input = body.get("type"), body.get("input", {})
    callback_url = body.get("callback_url")
    if not isinstance(job_type, str) or not job_type or not isinstance(job_input, dict):
        return _error(422, "type (a string) and input (an object) are required")
    if callback_url is not None and (
        not isinstance(callback_url, str) or not callback_url.startswith(("http://", "https://"))
    ):
        return _error(422, "callback_url must be an http(s) URL")
    created = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    task = run_job.delay(job_type, job_input, callback_url, created)
    job = {"id": task.id, "type": job_type, "status": "queued", "created_at": created}
    return Response(
        json.dumps(job),
        status=202,
        mimetype="application/json",
        headers={"Location": f"/v1/jobs/{task.id}", "Retry-After": "1"},
    )


_local = threading.local()


def _session() -> requests.Session:
    """One keep-alive session per worker process (per thread, should the pool be threads):
    made after the prefork pool forks, never shared across a fork."""
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


_webhook = Webhook(SECRET) if SECRET else None


@celery.task(
    bind=True,
    autoretry_for=(requests.RequestException,),
    retry_backoff=True,
    max_retries=5,
)
def run_job(
    self: Any, job_type: str, job_input: dict[str, Any], callback_url: str | None, created: str
) -> None:
    result = job_input  # demo.echo: the job's work is to return its input
    if callback_url is None:
        return
    assert _webhook is not None, "PEER_SECRET is not set"
    now = datetime.now(UTC)
    finished = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    payload = {
        "type": "job.succeeded",
        "timestamp": finished,
        "data": {
            "id": self.request.id,
            "type": job_type,
            "status": "succeeded",
            "input": job_input,
            "result": result,
            "created_at": created,
            "finished_at": finished,
        },
    }
    body = json.dumps(payload, separators=(",", ":")).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": _webhook.sign(msg_id, now, body),
    }
    response = _session().post(callback_url, data=body, headers=headers, timeout=10)
    response.raise_for_status()
