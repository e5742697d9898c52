"""Opening Redis connections the same way in every role, with clients whose outages raise
StoreUnavailable (store/outages.py)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from arq.connections import RedisSettings
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from acceptd.core.jsonenc import parse_stored
from acceptd.core.settings import Settings
from acceptd.store.batching import CommandBatches, batchable
from acceptd.store.outages import AS_UNAVAILABLE
from acceptd.store.packing import our_connection
from acceptd.store.shards import Shards


class RedisNotConfiguredError(RuntimeError):
    pass


class StorePipeline(Pipeline):
    """A StoreClient's pipeline or transaction: an outage raises StoreUnavailable, from
    `execute` (the scripts it loads first included) and from the commands sent at once
    while keys are watched (WATCH and what follows it until MULTI)."""

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        with AS_UNAVAILABLE:
            return await super().execute(raise_on_error)

    async def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        with AS_UNAVAILABLE:
            return await super().immediate_execute_command(*args, **options)  # type: ignore[no-untyped-call]


# How long a client's close waits for its batches under way (store/batching.py) to end.
CLOSE_SETTLE_SECONDS = 2.0


class StoreClient(Redis):
    """The client of every role's store (`connect`, a cluster's tags: store/cluster.py,
    arq's pool: queue/leanworker.py): an outage raises StoreUnavailable (store/outages.py),
    any other error what redis-py raised. Told apart here, above redis-py's Retry: it still
    reconnects on a dropped connection, and a cluster connection's retries still see MOVED,
    TRYAGAIN and CLUSTERDOWN as themselves. Scripts run through `execute_command` (EVALSHA,
    and on NOSCRIPT the SCRIPT LOAD and EVALSHA again: a NoScriptError is no outage, so
    the script's caller, store/tracedscript.py or redis-py's script, still sees it).
    Pub/sub connections are their own (PubSub): their readers (store/shardchannels.py,
    store/changes.py) take any error for a lost subscription."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pool = self.connection_pool
        # Before its first connection is made: every connection of the pool packs in C.
        pool.connection_class = our_connection(pool.connection_class)
        self._batches = CommandBatches(self, self._send_alone)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        # Sent with the other commands of this turn of the loop (store/batching.py).
        if batchable(args[0]):
            return await self._batches.send(args, options)
        return await self._send_alone(*args, **options)

    async def _send_alone(self, *args: Any, **options: Any) -> Any:
        with AS_UNAVAILABLE:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> StorePipeline:
        return StorePipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        # The batches under way first: their commands were sent before the close.
        await self._batches.settle(CLOSE_SETTLE_SECONDS)
        # Closing times out on a server that stopped answering: an outage too.
        with AS_UNAVAILABLE:
            await super().aclose(close_connection_pool)


def redis_url(settings: Settings) -> str:
    if not settings.redis_url:
        raise RedisNotConfiguredError(
            "ACCEPTD_REDIS_URL is not set (only `acceptd dev` starts a server of its own)"
        )
    return settings.redis_url


SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}  # scheme -> TLS


@dataclass(frozen=True)
class SentinelTarget:
    """A Sentinel-managed primary: `redis+sentinel://[[user]:password@]host:port[,host:port…]
    /<primary-name>[/<db>][?sentinel_password=…]`. The userinfo is the primary's (and its
    replicas'); sentinels that require a password of their own take `sentinel_password`."""

    sentinels: tuple[tuple[str, int], ...]
    primary: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    tls: bool = False


# scheme://[userinfo@]host:port[,host:port…]/<primary>[/<db>][?query]: hosts and the path
# hold no `@`, `/`, `?` or `#`; the userinfo is the shortest prefix ending in `@` after which
# the rest has that shape, so an unencoded `@`, `/`, `?` or `#` in a password is its own,
# and an `@` in the query (a sentinel password) is never taken for the userinfo's end.
_SENTINEL_URL = re.compile(
    r"(?:(?P<userinfo>.*?)@)?(?P<hosts>[^@/?#]+)/(?P<path>[^@?#]*)(?:\?(?P<query>[^#]*))?(?:#.*)?",
    re.DOTALL,
)
_MAX_DB = 2**31 - 1


def sentinel_target(url: str) -> SentinelTarget | None:
    """The Sentinel target a URL names, or None for a `redis://`/`rediss://` URL. No error
    repeats any part of the URL: it may hold passwords."""
    scheme, _, rest = url.partition("://")
    if scheme not in SENTINEL_SCHEMES:
        return None
    shape = _SENTINEL_URL.fullmatch(rest)
    if shape is None:
        raise ValueError(
            "a Sentinel URL is redis+sentinel://[user:password@]host:port[,host:port…]"
            "/<primary-name>[/<db>] (percent-encode a password's special characters)"
        )
    sentinels = []
    for position, host_port in enumerate(shape["hosts"].split(","), start=1):
        host, _, port = unquote(host_port.strip()).rpartition(":")
        bracketed = host.startswith("[") == host.endswith("]")
        if not host or not bracketed or not _is_number(port) or not 1 <= int(port) <= 65535:
            raise ValueError(
                f"Sentinel address {position} must be host:port with a port of 1-65535 "
                "(percent-encode a password's special characters)"
            )
        sentinels.append((host.strip("[]"), int(port)))
    segments = [segment for segment in shape["path"].split("/") if segment]
    if (
        not segments
        or len(segments) > 2
        or (len(segments) == 2 and not (_is_number(segments[1]) and int(segments[1]) <= _MAX_DB))
    ):
        raise ValueError("a Sentinel URL ends with /<primary-name>, optionally /<db>")
    username, _, password = (shape["userinfo"] or "").partition(":")
    query = parse_qs(shape["query"] or "")
    return SentinelTarget(
        sentinels=tuple(sentinels),
        primary=unquote(segments[0]),
        db=int(segments[1]) if len(segments) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_password=query.get("sentinel_password", [None])[0],
        tls=SENTINEL_SCHEMES[scheme],
    )


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def connect(settings: Settings, *, retries: int = 3) -> StoreClient:
    """Our own client (StoreClient): text replies, `retries` with backoff on a dropped
    connection, an outage raised as StoreUnavailable once they are spent. Behind
    Sentinel, every new connection asks the sentinels where the primary is, so a failover
    is followed by reconnecting, with no restart."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": 2,
        "socket_timeout": 10,
        "health_check_interval": 15,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=2.0), retries=retries),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }
    url = redis_url(settings)
    target = sentinel_target(url)
    if target is None:
        client: StoreClient = StoreClient.from_url(url, **options)
        return client
    primary: StoreClient = _sentinel(target).master_for(
        target.primary,
        redis_class=StoreClient,
        db=target.db,
        username=target.username,
        password=target.password,
        ssl=target.tls,
        **options,
    )
    return primary


async def open_shards(settings: Settings, *, retries: int = 3) -> Shards:
    """The store's clients for ACCEPTD_REDIS_URL: one server, a Sentinel-managed primary, or
    (detected from the server) a cluster's primaries, each shard's on its own."""
    from acceptd.store.cluster import connect_shards  # it builds on this module

    return await connect_shards(settings, retries=retries)


def _sentinel(target: SentinelTarget) -> Sentinel:
    return Sentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels),
        sentinel_kwargs={
            "password": target.sentinel_password,
            "ssl": target.tls,
            "socket_connect_timeout": 2,
            "socket_timeout": 2,
        },
    )


def is_cluster_node(info: dict[str, object]) -> bool:
    """Whether INFO (its `cluster` section, or all of it) comes from a cluster node."""
    return str(info.get("cluster_enabled", "0")) == "1"


_TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")


def arq_settings(settings: Settings) -> RedisSettings:
    """arq's connection settings from the same URL. arq's from_dsn reads only the database
    from the query; the TLS options (a private CA, client certificates) are carried over
    here so arq's connections verify the server exactly as ours do. Behind Sentinel, arq
    asks the same sentinels for the same primary (arq cannot pass sentinels a password)."""
    url = redis_url(settings)
    target = sentinel_target(url)
    if target is not None:
        if target.sentinel_password is not None:
            raise ValueError(
                "arq cannot authenticate to sentinels: leave sentinel_password out of "
                "ACCEPTD_REDIS_URL (the primary's own password is passed on)"
            )
        return RedisSettings(
            host=list(target.sentinels),
            sentinel=True,
            sentinel_master=target.primary,
            database=target.db,
            username=target.username,
            password=target.password,
            ssl=target.tls,
        )
    query = parse_qs(urlsplit(url).query)
    tls: dict[str, Any] = {name: query[name][0] for name in _TLS_OPTIONS if name in query}
    if "ssl_check_hostname" in query:
        tls["ssl_check_hostname"] = query["ssl_check_hostname"][0].lower() in ("1", "true", "yes")
    return replace(RedisSettings.from_dsn(url), **tls)


def serialize_arq(data: dict[str, Any]) -> bytes:
    # arq pickles by default; we never put anything but JSON into the queue.
    return json.dumps(data, default=str, separators=(",", ":")).encode()


def deserialize_arq(raw: bytes) -> dict[str, Any]:
    value: dict[str, Any] = parse_stored(raw)  # every run's payload: the fast parser
    return value
