"""Opening Redis connections the same way in every role."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from arq.connections import RedisSettings
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from acceptd.core.settings import Settings


class RedisNotConfiguredError(RuntimeError):
    pass


def redis_url(settings: Settings) -> str:
    if not settings.redis_url:
        raise RedisNotConfiguredError(
            "ACCEPTD_REDIS_URL is not set (only `acceptd dev` starts a server of its own)"
        )
    return settings.redis_url


def connect(settings: Settings) -> Redis:
    """Our own client: text replies, retries with backoff on a dropped connection."""
    client: Redis = Redis.from_url(
        redis_url(settings),
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=10,
        health_check_interval=15,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=2.0), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return client


_TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")


def arq_settings(settings: Settings) -> RedisSettings:
    """arq's connection settings from the same URL. arq's from_dsn reads only the database
    from the query; the TLS options (a private CA, client certificates) are carried over
    here so arq's connections verify the server exactly as ours do."""
    url = redis_url(settings)
    query = parse_qs(urlsplit(url).query)
    tls: dict[str, Any] = {name: query[name][0] for name in _TLS_OPTIONS if name in query}
    if "ssl_check_hostname" in query:
        tls["ssl_check_hostname"] = query["ssl_check_hostname"][0].lower() in ("1", "true", "yes")
    return replace(RedisSettings.from_dsn(url), **tls)


def serialize_arq(data: dict[str, Any]) -> bytes:
    # arq pickles by default; we never put anything but JSON into the queue.
    return json.dumps(data, default=str, separators=(",", ":")).encode()


def deserialize_arq(raw: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(raw)
    return value
