"""One HTTP attempt of one delivery: sign, POST, classify. No retries and no storage here."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

import aiohttp

from acceptd.core.ssrf import (
    AddressPolicy,
    PinnedTarget,
    UnsafeUrlError,
    check_literal,
    parse_callback_url,
    pinned_target,
)
from acceptd.dispatcher.egress import WebhookProxy
from acceptd.dispatcher.retry_policy import RETRY_AFTER_STATUSES, parse_retry_after
from acceptd.webhooks import signing

# What an attempt keeps of the receiver's answer: each attempt is stored (and counted in the
# tenant's bytes), and a manual retry adds one more.
RESPONSE_SNIPPET_BYTES = 1024
USER_AGENT = "acceptd-webhooks/1"


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    latency_ms: float
    error: str | None
    response: str | None
    retry_after: float | None = None
    refused: bool = False  # the URL itself is not allowed: retrying cannot help
    # The forward proxy could not be reached or refused our credentials: an outage of ours,
    # not the receiver's (the attempt is not counted: attempts.py).
    proxy_failed: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


# Userinfo in any URL (`redis://:pw@host`, `http://user:pw@proxy`): never shown to a tenant.
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@]*@")


def redact_credentials(text: str) -> str:
    return _URL_CREDENTIALS.sub(r"\1***@", text)


def network_error(exc: BaseException) -> str:
    """What a failed attempt shows its tenant: the failure and the receiver's host, from
    the exception's parts rather than its text (which may name anything the library met),
    with any credentials in a URL masked, at most 500 characters."""
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        text = f"{name}: cannot connect to {exc.host}:{exc.port}: {reason}"
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        text = f"{name}: the receiver closed the connection before answering"
    elif isinstance(exc, aiohttp.ClientResponseError):
        text = f"{name}: HTTP {exc.status}"
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{name}: {exc.strerror}"
    else:
        text = name
    return redact_credentials(text)[:500]


def webhook_headers(msg_id: str, body: bytes, keys: list[str], timestamp: int) -> dict[str, str]:
    """`keys`: whsec_ secrets (v1) and whsk_ signing keys (v1a), one signature each."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signatures_for(keys, msg_id, timestamp, body),
    }


async def send(
    session: aiohttp.ClientSession,
    url: str,
    msg_id: str,
    body: bytes,
    secrets: list[str],
    *,
    timeout: float,  # noqa: ASYNC109 - passed to aiohttp as the request budget
    policy: AddressPolicy,
    traceparent: str | None = None,
    extra_headers: dict[str, str] | None = None,
    proxy: WebhookProxy | None = None,
) -> AttemptResult:
    """`extra_headers`: the endpoint's own (never a name the protocol sets: the API refuses
    those, and the protocol's are applied after them all the same). `proxy`: sent through
    it, to the receiver's checked address (dispatcher/egress.py)."""
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 3)

    headers = {**(extra_headers or {}), **webhook_headers(msg_id, body, secrets, int(time.time()))}
    if traceparent is not None:
        headers["traceparent"] = traceparent  # the receiver's trace joins the job's
    try:
        target = PinnedTarget(parse_callback_url(url))
        if proxy is None:
            check_literal(target.url, policy)  # IP literals never reach the guarded resolver
        else:
            target = await pinned_target(target.url, policy, proxy.resolver)
    except UnsafeUrlError as exc:
        return AttemptResult(None, elapsed(), f"refused: {exc}", None, refused=True)
    if target.host is not None:
        headers["Host"] = target.host
    try:
        async with session.post(
            target.url,
            data=body,
            headers=headers,
            allow_redirects=False,  # a redirect is a failure: never follow it somewhere else
            timeout=aiohttp.ClientTimeout(total=timeout),
            proxy=proxy.url if proxy is not None else None,
            server_hostname=target.server_hostname,
        ) as response:
            snippet = await response.content.read(RESPONSE_SNIPPET_BYTES)
            latency = elapsed()
            status = response.status
            retry_after = (
                parse_retry_after(response.headers.get("Retry-After"))
                if status in RETRY_AFTER_STATUSES
                else None
            )
    except (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError) as exc:
        if isinstance(exc, aiohttp.ClientProxyConnectionError) or exc.status == 407:
            return AttemptResult(
                None, elapsed(), "the webhook proxy failed", None, proxy_failed=True
            )
        return AttemptResult(
            None, elapsed(), f"the proxy could not reach it: HTTP {exc.status}", None
        )
    except TimeoutError:
        return AttemptResult(None, elapsed(), f"timed out after {timeout:g} s", None)
    except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
        return AttemptResult(None, elapsed(), network_error(exc), None)
    except ValueError:
        # aiohttp refuses what it cannot write (a control character in a header): the
        # request can never be sent, so it is refused for good rather than run again.
        return AttemptResult(
            None, elapsed(), "refused: a header it cannot send", None, refused=True
        )
    text = snippet.decode("utf-8", errors="replace")
    error = None if 200 <= status < 300 else f"HTTP {status}"
    return AttemptResult(status, latency, error, text, retry_after)
