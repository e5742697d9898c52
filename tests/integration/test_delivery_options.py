"""Endpoint delivery options: Ed25519 signatures (Standard Webhooks `v1a`), verified here by a
verifier written from the specification on `cryptography`'s primitives (not with acceptd's
own signing code, and the official library has no v1a yet), and thin payloads."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from acceptd.dispatcher.signing_secrets import CACHE_SECONDS
from acceptd.webhooks.receiver import verify_event
from acceptd.webhooks.signing import WebhookVerificationError
from tests.support.http import call
from tests.support.receiver import Receiver


def spec_verify(public_key: str, headers: Mapping[str, str], body: bytes) -> int:
    """Standard Webhooks, "Asymmetric signatures": the public key is `whpk_` + base64 of the
    raw 32-byte Ed25519 key; signed content is `{id}.{timestamp}.{body}`; the signature
    header is space-delimited `v1a,<base64 signature>` entries. Returns how many verified."""
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    lowered = {k.lower(): v for k, v in headers.items()}
    content = f"{lowered['webhook-id']}.{lowered['webhook-timestamp']}.".encode() + body
    assert abs(int(lowered["webhook-timestamp"]) - time.time()) < 300
    verified = 0
    for entry in lowered["webhook-signature"].split(" "):
        version, _, signature = entry.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(signature), content)
            verified += 1
        except InvalidSignature:
            pass
    return verified


async def test_v1a_webhooks_verify_with_the_public_key_alone(
    api_url: str,
    worker: None,
    dispatcher: Any,
    receiver: tuple[Receiver, str],
    http: aiohttp.ClientSession,
) -> None:
    recording, url = receiver
    endpoint = await call(http, "POST", f"{api_url}/v1/endpoints", {"url": url, "signing": "v1a"})
    assert endpoint["signing"] == "v1a"
    assert endpoint["public_key"].startswith("whpk_")
    job = await call(
        http, "POST", f"{api_url}/v1/jobs", {"type": "demo.echo", "input": {"value": 1}}
    )
    webhook = (await recording.webhooks_about(job["id"]))[0]
    assert spec_verify(endpoint["public_key"], webhook.headers, webhook.body) == 1
    assert "v1," not in webhook.headers["webhook-signature"]  # no shared secret in use
    with pytest.raises(WebhookVerificationError):  # nor does the HMAC secret verify it
        verify_event(endpoint["secret"], webhook.headers, webhook.body)
    # The receiver helper takes a public key in place of a secret.
    assert (
        verify_event(endpoint["public_key"], webhook.headers, webhook.body).data["id"] == job["id"]
    )
    tampered = webhook.body.replace(b'"value":1', b'"value":2')
    assert spec_verify(endpoint["public_key"], webhook.headers, tampered) == 0
    with pytest.raises(WebhookVerificationError):
        verify_event(endpoint["public_key"], webhook.headers, tampered)


async def test_migrating_signs_both_ways_and_a_rotation_keeps_the_old_key_a_while(
    api_url: str,
    worker: None,
    dispatcher: Any,
    receiver: tuple[Receiver, str],
    http: aiohttp.ClientSession,
) -> None:
    recording, url = receiver
    endpoint = await call(http, "POST", f"{api_url}/v1/endpoints", {"url": url})
    assert endpoint["public_key"] is None
    both = await call(
        http, "PATCH", f"{api_url}/v1/endpoints/{endpoint['id']}", {"signing": "v1+v1a"}
    )
    first_key = both["public_key"]
    job = await call(
        http, "POST", f"{api_url}/v1/jobs", {"type": "demo.echo", "input": {"value": 1}}
    )
    webhook = (await recording.webhooks_about(job["id"]))[0]
    verify_event(endpoint["secret"], webhook.headers, webhook.body)  # v1 still verifies
    assert spec_verify(first_key, webhook.headers, webhook.body) == 1

    rotated = await call(http, "POST", f"{api_url}/v1/endpoints/{endpoint['id']}/rotate-secret")
    assert rotated["public_key"] != first_key
    await asyncio.sleep(CACHE_SECONDS + 0.5)  # the dispatcher's key cache moves on
    later = await call(
        http, "POST", f"{api_url}/v1/jobs", {"type": "demo.echo", "input": {"value": 2}}
    )
    late = (await recording.webhooks_about(later["id"]))[0]
    # Signed with the new key, and with the old one through the window: receivers that
    # still hold the old public key keep verifying.
    assert spec_verify(rotated["public_key"], late.headers, late.body) == 1
    assert spec_verify(first_key, late.headers, late.body) == 1
    verify_event(rotated["secret"], late.headers, late.body)


async def test_thin_payloads_carry_no_job_data(
    api_url: str,
    worker: None,
    dispatcher: Any,
    receiver: tuple[Receiver, str],
    http: aiohttp.ClientSession,
) -> None:
    recording, url = receiver
    thin = {"url": url, "payload": "thin", "events": ["job.succeeded", "job.awaiting_input"]}
    await call(http, "POST", f"{api_url}/v1/endpoints", thin)
    secret_value = "do-not-leak-4b1d"
    echo = {
        "type": "demo.echo",
        "input": {"value": secret_value},
        "metadata": {"note": secret_value},
    }
    job = await call(http, "POST", f"{api_url}/v1/jobs", echo)
    webhook = (await recording.webhooks_about(job["id"]))[0]
    data = webhook.json["data"]
    assert set(data) == {"id", "type", "status", "created_at", "finished_at", "links"}
    assert data["status"] == "succeeded"
    assert secret_value.encode() not in webhook.body
    asking = {"type": "demo.review", "input": {"subject": secret_value}}
    review = await call(http, "POST", f"{api_url}/v1/jobs", asking)
    asked = (await recording.webhooks_about(review["id"]))[0]
    assert asked.json["type"] == "job.awaiting_input"
    assert b"ctk_" not in asked.body  # no completion token either
    assert secret_value.encode() not in asked.body
