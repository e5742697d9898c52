"""Standard Webhooks v1: the official vectors, and agreement with the official library."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from acceptd.webhooks import signing
from acceptd.webhooks.signing import WebhookVerificationError
from tests.support.constants import VECTORS

SPEC = json.loads(VECTORS.read_text())


@pytest.mark.parametrize("vector", SPEC["vectors"])
def test_official_vectors_are_reproduced(vector: dict[str, object]) -> None:
    key = signing.decode_secret(str(vector["secret"]))
    payload = str(vector["payload"]).encode()
    assert (
        signing.sign(key, str(vector["msg_id"]), int(str(vector["timestamp"])), payload)
        == vector["expected"]
    )


@pytest.mark.parametrize("vector", SPEC["vectors"])
def test_official_vectors_verify_and_must_fail_is_rejected(vector: dict[str, object]) -> None:
    timestamp = int(str(vector["timestamp"]))
    headers = {"webhook-id": str(vector["msg_id"]), "webhook-timestamp": str(timestamp)}
    payload = str(vector["payload"]).encode()
    good = {**headers, "webhook-signature": str(vector["expected"])}
    assert signing.verify(str(vector["secret"]), good, payload, now=timestamp) == timestamp
    bad = {**headers, "webhook-signature": str(vector["must_fail"])}
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        signing.verify(str(vector["secret"]), bad, payload, now=timestamp)


@pytest.mark.parametrize("secret", SPEC["unpadded_secrets_that_must_be_accepted"])
def test_unpadded_secrets_are_accepted(secret: str) -> None:
    key = signing.decode_secret(secret)
    assert key
    assert signing.decode_secret("whsec_" + secret) == key


def test_generated_secrets_have_at_least_24_random_bytes() -> None:
    secrets = {signing.generate_secret() for _ in range(50)}
    assert len(secrets) == 50
    assert all(s.startswith("whsec_") and len(signing.decode_secret(s)) >= 24 for s in secrets)


def _signed(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    key = signing.decode_secret(secret)
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header([key], "msg_1", timestamp, body),
    }


def test_the_official_library_verifies_our_signatures() -> None:
    secret, body, now = signing.generate_secret(), b'{"type":"job.succeeded"}', int(time.time())
    Webhook(secret).verify(body, _signed(secret, body, now))


def test_we_verify_the_official_librarys_signatures() -> None:
    secret, body = signing.generate_secret(), '{"hello":"world"}'
    moment = datetime.now(tz=UTC)
    signature = Webhook(secret).sign("msg_2", moment, body)
    headers = {
        "webhook-id": "msg_2",
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
    }
    signing.verify(secret, headers, body.encode())


def test_rotation_header_carries_one_signature_per_secret_and_either_verifies() -> None:
    old, new, body, now = (
        signing.generate_secret(),
        signing.generate_secret(),
        b"{}",
        int(time.time()),
    )
    keys = [signing.decode_secret(new), signing.decode_secret(old)]
    headers = {
        "webhook-id": "msg_3",
        "webhook-timestamp": str(now),
        "webhook-signature": signing.signature_header(keys, "msg_3", now, body),
    }
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(body, headers)
        signing.verify(secret, headers, body)
    with pytest.raises(WebhookVerificationError):
        signing.verify(signing.generate_secret(), headers, body)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: h.pop("webhook-signature"), "missing"),
        (lambda h: h.pop("webhook-id"), "missing"),
        (lambda h: h.update({"webhook-timestamp": "soon"}), "not an integer"),
        (lambda h: h.update({"webhook-timestamp": str(int(time.time()) - 301)}), "too old"),
        (lambda h: h.update({"webhook-timestamp": str(int(time.time()) + 301)}), "future"),
        (lambda h: h.update({"webhook-signature": "v2,abc v1a,xyz"}), "no matching"),
        (lambda h: h.update({"webhook-id": "msg_other"}), "no matching"),
    ],
)
def test_forged_stale_and_incomplete_webhooks_are_refused(change: object, message: str) -> None:
    secret, body = signing.generate_secret(), b'{"a":1}'
    headers = _signed(secret, body, int(time.time()))
    change(headers)  # type: ignore[operator]
    with pytest.raises(WebhookVerificationError, match=message):
        signing.verify(secret, headers, body)


def test_a_changed_body_is_refused() -> None:
    secret = signing.generate_secret()
    headers = _signed(secret, b'{"amount":1}', int(time.time()))
    with pytest.raises(WebhookVerificationError):
        signing.verify(secret, headers, b'{"amount":100}')


def test_header_names_are_case_insensitive() -> None:
    secret, body = signing.generate_secret(), b"{}"
    headers = {k.upper(): v for k, v in _signed(secret, body, int(time.time())).items()}
    signing.verify(secret, headers, body)
