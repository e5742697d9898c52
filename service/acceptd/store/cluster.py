"""The store on a Redis/Valkey Cluster: a plain client per hash tag, reaching the primary that
holds the tag's slot now.

Plain clients, not redis-py's RedisCluster: the store runs MULTI/EXEC transactions and
EVALSHA scripts, and arq's worker wants a plain client; every key of one call carries one
tag (store/keys.py), so a plain connection to the slot's primary runs it as is.

Like redis-py's Sentinel-managed connections, each connection looks up its node when it
connects, in a slot map every tag shares (`SlotMap`). The map is read from CLUSTER SLOTS,
corrected by each MOVED reply, and read again (at most once a second) when a node cannot be
reached or says the cluster is down: after a failover the next connection goes to the
promoted replica. redis-py's Retry does the reconnecting: a MOVED, TRYAGAIN or CLUSTERDOWN
reply means the command was not run, so it is sent again, like one cut by a dropped
connection. Each tag's client is a StoreClient (store/connection.py): what is left of an
outage once those retries are spent leaves it as StoreUnavailable.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, ClassVar

from redis.asyncio import Redis
from redis.asyncio.connection import (
    Connection,
    ConnectionPool,
    DefaultParser,
    SSLConnection,
)
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import (
    AskError,
    ClusterCrossSlotError,
    ClusterDownError,
    MasterDownError,
    MovedError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from acceptd.core.settings import Settings
from acceptd.store.connection import (
    StoreClient,
    connect,
    is_cluster_node,
    redis_url,
    sentinel_target,
)
from acceptd.store.outages import StoreUnavailable, describe
from acceptd.store.shards import OneServer, Shards, tag_of

log = logging.getLogger(__name__)

Address = tuple[str, int]

# A failing connection asks for the map again at most this often (every process, all tags
# together): soon enough to find a promoted replica within seconds of the failover, rarely
# enough that an outage of every node costs the survivors nothing.
REFRESH_INTERVAL_SECONDS = 1.0
# How long one reading of the map may take, over every node it tries, and per node.
REFRESH_BUDGET_SECONDS = 5.0
_NODE_CONNECT_SECONDS = 1.0
_NODE_READ_SECONDS = 2.0
# How long telling a cluster from one server may take when the server does not answer
# (the client's own retries, each bounded by its socket timeouts, come first).
PROBE_SECONDS = 10.0


# ---- cluster replies, with their error code kept ---------------------------------------
#
# redis-py's cluster parser turns `CLUSTERDOWN The cluster is down` into
# ClusterDownError("The cluster is down"): the code is dropped, and store/outages.py, which
# knows these replies by their code, would take it for a bug. These keep redis-py's classes
# (so Retry and callers can match them) and the server's words (so is_outage and describe
# can read them).


class ClusterDown(ClusterDownError):
    def __init__(self, resp: str) -> None:
        super().__init__(f"CLUSTERDOWN {resp}")  # type: ignore[no-untyped-call]


class MasterDown(MasterDownError):
    def __init__(self, resp: str) -> None:
        super().__init__(f"MASTERDOWN {resp}")  # type: ignore[no-untyped-call]


class TryAgain(TryAgainError):
    def __init__(self, resp: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.args = (f"TRYAGAIN {resp}",)


class Moved(MovedError):
    def __init__(self, resp: str) -> None:
        super().__init__(resp)  # type: ignore[no-untyped-call]  # parses "slot host:port"
        self.args = (f"MOVED {resp}",)


class Ask(AskError):
    def __init__(self, resp: str) -> None:
        super().__init__(resp)  # type: ignore[no-untyped-call]
        self.args = (f"ASK {resp}",)


class CrossSlot(ClusterCrossSlotError):
    def __init__(self, resp: str) -> None:
        super().__init__(f"CROSSSLOT {resp}")


class ClusterReplyParser(DefaultParser):  # type: ignore[valid-type,misc]
    EXCEPTION_CLASSES: ClassVar[dict[str, Any]] = {
        **DefaultParser.EXCEPTION_CLASSES,
        "ASK": Ask,
        "CLUSTERDOWN": ClusterDown,
        "CROSSSLOT": CrossSlot,
        "MASTERDOWN": MasterDown,
        "MOVED": Moved,
        "TRYAGAIN": TryAgain,
    }


# Retried like a dropped connection: the server ran nothing. ASK is not among them: it comes
# while a slot's keys are being migrated, for the keys that already left, so a pipeline that
# met it may have run its other commands; and following it needs ASKING on the other node.
RETRIED_CLUSTER_ERRORS: tuple[type[RedisError], ...] = (MovedError, TryAgainError, ClusterDownError)


# ---- the slot map ------------------------------------------------------------------------


class SlotMap:
    """Which primary holds each slot, as the cluster last said; what every tag's
    connections look up when they connect. `seeds`: the nodes to ask when no other answers
    (the URL's). `node_options`: how to open a connection to any node (credentials, TLS)."""

    def __init__(
        self,
        seeds: Sequence[Address],
        connection_class: type[Connection],
        node_options: dict[str, Any],
    ) -> None:
        self._owners: list[Address | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        self._seeds = list(seeds)
        self._known: list[Address] = list(seeds)
        self._connection_class = connection_class
        self._node_options = node_options
        self._lock = asyncio.Lock()
        self._refreshed_at = -math.inf
        self.loaded = False

    def owner(self, slot: int) -> Address | None:
        return self._owners[slot]

    def address_for(self, slot: int) -> Address:
        """Where to connect for `slot`: its primary, or (slot not known) the first seed,
        whose MOVED reply then says where it is."""
        return self._owners[slot] or self._seeds[0]

    def moved(self, slot: int, address: Address) -> None:
        if self._owners[slot] != address:
            log.info("slot %d moved to %s:%d", slot, *address)
        self._owners[slot] = address
        self._remember([address])

    async def refresh(self, *, unreachable: Address | None = None) -> None:
        """Reads the map from the first node that answers (`unreachable`, the node that just
        failed, last); at most once per REFRESH_INTERVAL_SECONDS, bounded by
        REFRESH_BUDGET_SECONDS. Never raises: the caller's own error says what failed."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            if loop.time() - self._refreshed_at < REFRESH_INTERVAL_SECONDS:
                return  # a caller that waited on the lock gets the reading just made
            self._refreshed_at = loop.time()  # before asking: a failed reading is rate-limited too
            candidates = [node for node in self._known if node != unreachable]
            if unreachable is not None and unreachable in self._known:
                candidates.append(unreachable)
            try:
                async with asyncio.timeout(REFRESH_BUDGET_SECONDS):
                    for node in candidates:
                        try:
                            reply = await self._cluster_slots(node)
                        except (RedisError, OSError) as error:
                            log.debug("cluster node %s:%d did not say its slots: %r", *node, error)
                            continue
                        if self._apply(reply, asked=node):
                            return
            except TimeoutError:
                pass
            log.warning("no cluster node said which primary holds which slot; keeping the last map")

    async def _cluster_slots(self, node: Address) -> Any:
        options = {
            **self._node_options,
            "host": node[0],
            "port": node[1],
            "socket_connect_timeout": _NODE_CONNECT_SECONDS,
            "socket_timeout": _NODE_READ_SECONDS,
            "health_check_interval": 0,
            "retry": Retry(NoBackoff(), 0),
            "retry_on_error": [],
        }
        pool = ConnectionPool(connection_class=self._connection_class, **options)
        client = Redis.from_pool(pool)
        try:
            # CLUSTER SLOTS rather than CLUSTER SHARDS: every version and managed service has it.
            return await client.execute_command("CLUSTER SLOTS")  # type: ignore[no-untyped-call]
        finally:
            await client.aclose()

    def _apply(self, reply: Any, *, asked: Address) -> bool:
        """Takes a CLUSTER SLOTS reply ([start, end, primary, *replicas], each node
        [host, port, id, …]) as the map; False when it names no slot (a node not in a
        cluster yet, or one that lost its view)."""
        owners: list[Address | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        primaries: list[Address] = []
        replicas: list[Address] = []
        for entry in reply or ():
            start, end, primary, *others = entry
            address = _node_address(primary, asked)
            owners[int(start) : int(end) + 1] = [address] * (int(end) - int(start) + 1)
            primaries.append(address)
            replicas += [_node_address(node, asked) for node in others]
        if not primaries:
            return False
        changed = sum(1 for old, new in zip(self._owners, owners, strict=True) if old != new)
        if changed and self.loaded:
            log.info("cluster map read from %s:%d: %d slots changed primary", *asked, changed)
        self._owners = owners
        self._known = []
        self._remember([*primaries, *replicas, *self._seeds])
        self.loaded = True
        return True

    def _remember(self, nodes: Iterable[Address]) -> None:
        for node in nodes:
            if node not in self._known:
                self._known.append(node)


def _node_address(node: Sequence[Any], asked: Address) -> Address:
    # A node announced with an unknown endpoint (NULL, "" or "?") is reached at the address
    # the reply came from, on the port it gives.
    host = node[0]
    if host is None or str(host) in ("", "?"):
        return asked[0], int(node[1])
    return str(host), int(node[1])


# ---- connections that find their slot's primary ------------------------------------------


class SlotConnection(Connection):
    """A connection for one slot: it connects to the slot's primary of the moment."""

    def __init__(self, *, slot_map: SlotMap, slot: int, **kwargs: Any) -> None:
        self.slot_map = slot_map
        self.slot = slot
        # Its own list: redis-py appends to the one it is given (retry_on_timeout).
        super().__init__(**{**kwargs, "retry_on_error": list(kwargs.get("retry_on_error", ()))})

    async def _connect(self) -> None:
        if not self.slot_map.loaded:
            await self.slot_map.refresh()
        self.host, self.port = self.slot_map.address_for(self.slot)
        try:
            await super()._connect()  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError):
            # A node that is gone: the map may already name its successor, and then this
            # connects there at once (redis-py opens a pooled connection outside its Retry:
            # nothing else would). Not for a client that never retries (the durability
            # confirmer): a connection it opens must reach the node that took the write.
            gone = (self.host, self.port)
            await self.slot_map.refresh(unreachable=gone)
            successor = self.slot_map.address_for(self.slot)
            if successor == gone or not self.retry._retries:
                raise
            self.host, self.port = successor
            await super()._connect()  # type: ignore[no-untyped-call]

    async def read_response(
        self,
        disable_decoding: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109 - redis-py's signature
        *,
        disconnect_on_error: bool = True,
        push_request: bool | None = False,
    ) -> Any:
        try:
            return await super().read_response(
                disable_decoding=disable_decoding,
                timeout=timeout,
                disconnect_on_error=disconnect_on_error,
                push_request=push_request,
            )
        except MovedError as moved:
            # The slot named (in a pipeline, maybe another tag's) is served elsewhere: the
            # retry that follows connects there.
            self.slot_map.moved(moved.slot_id, (moved.host or self.host, moved.port))
            raise
        except ClusterDownError:
            # This node may be cut off from a majority that has promoted a replica already.
            await self.slot_map.refresh(unreachable=(self.host, self.port))
            raise


class SlotSSLConnection(SlotConnection, SSLConnection):
    pass


class IdleConnections:
    """The idle connections of every tag's pool, kept per node: a process holds about as
    many connections to a node as it has commands in flight there at once, however many
    shards the node holds (a pool per tag would keep each tag's own, S times as many)."""

    def __init__(self) -> None:
        self._by_node: dict[Address, list[SlotConnection]] = {}

    def take(self, node: Address) -> SlotConnection | None:
        idle = self._by_node.get(node)
        return idle.pop() if idle else None

    def give(self, connection: SlotConnection) -> None:
        """Kept under the node it is connected to now (a failover may have moved it); a
        closed one is dropped."""
        if connection.is_connected:
            self._by_node.setdefault(_address_of(connection), []).append(connection)

    async def aclose(self) -> None:
        idle = [connection for found in self._by_node.values() for connection in found]
        self._by_node = {}
        await asyncio.gather(*(c.disconnect() for c in idle), return_exceptions=True)


class SlotPool(ConnectionPool):
    """The pool of one tag's client: it lends idle connections to the node that holds the
    tag's slot, shared with the other tags' pools (IdleConnections), and makes new ones
    for the slot."""

    def __init__(
        self, *, slot_map: SlotMap, slot: int, idle: IdleConnections, **kwargs: Any
    ) -> None:
        super().__init__(slot_map=slot_map, slot=slot, **kwargs)
        self.slot_map = slot_map
        self.slot = slot
        self._idle = idle

    async def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        owner = self.slot_map.owner(self.slot) or self.slot_map.address_for(self.slot)
        connection = self._idle.take(owner) or self.make_connection()  # type: ignore[no-untyped-call]
        connection.slot = self.slot  # its reconnects follow this tag's slot
        self._in_use_connections.add(connection)
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def release(self, connection: Any) -> None:
        self._in_use_connections.discard(connection)
        self._idle.give(connection)

    async def ensure_connection(self, connection: Any) -> None:
        # A connection left open to the slot's former primary (the map changed while it sat
        # in the pool) would only be told MOVED: it reconnects now instead.
        owner = self.slot_map.owner(self.slot)
        if connection.is_connected and owner is not None and owner != _address_of(connection):
            await connection.disconnect()
        await super().ensure_connection(connection)


def _address_of(connection: Connection) -> Address:
    return connection.host, connection.port


# ---- the shards ----------------------------------------------------------------------------


class ClusterShards(Shards):
    """Every tag's client on a cluster: one plain client per tag (at most 1024 shards and
    the control plane), each reaching the primary that holds the tag's slot, their idle
    connections shared per node."""

    def __init__(
        self,
        count: int,
        *,
        seeds: Sequence[Address],
        connection_class: type[Connection],
        options: dict[str, Any],
    ) -> None:
        super().__init__(count)
        self._options = options
        self._tls = issubclass(connection_class, SSLConnection)
        self.slot_map = SlotMap(seeds, connection_class, options)
        self._clients: dict[str, Redis] = {}
        self._idle = IdleConnections()

    @classmethod
    def from_settings(cls, settings: Settings, *, retries: int = 3) -> ClusterShards:
        """Seeded from ACCEPTD_REDIS_URL's node; every node is opened with that URL's
        credentials, TLS options and query options, and with the timeouts and retries of
        store.connection.connect() (read from a client it builds, so they cannot drift)."""
        if sentinel_target(redis_url(settings)) is not None:
            raise ValueError("a Sentinel URL names no cluster")
        template = connect(settings, retries=retries).connection_pool
        options = dict(template.connection_kwargs)
        if int(options.pop("db", 0) or 0) != 0:
            raise ValueError("a Redis/Valkey Cluster has database 0 only: drop the URL's /<db>")
        host, port = str(options.pop("host", "localhost")), int(options.pop("port", 6379))
        options["retry_on_error"] = [*options.get("retry_on_error", ()), *RETRIED_CLUSTER_ERRORS]
        options["parser_class"] = ClusterReplyParser
        # connect() built a Connection (redis://) or an SSLConnection (rediss://).
        connection_class: type[Connection] = template.connection_class  # type: ignore[assignment]
        return cls(
            settings.shards,
            seeds=[(host, port)],
            connection_class=connection_class,
            options=options,
        )

    def for_tag(self, tag: str) -> Redis:
        client = self._clients.get(tag)
        if client is None:
            slot = key_slot(tag.encode())
            pool = SlotPool(
                slot_map=self.slot_map,
                slot=slot,
                idle=self._idle,
                connection_class=SlotSSLConnection if self._tls else SlotConnection,
                host=self.slot_map.address_for(slot)[0],
                port=self.slot_map.address_for(slot)[1],
                **self._options,
            )
            client = self._clients[tag] = StoreClient.from_pool(pool)
        return client

    def node_of(self, key: str) -> Hashable:
        """The primary holding the key's slot, as the map has it now (Shards.pipelined
        sends one pipeline per primary; a stale map costs a MOVED and a resend)."""
        tag = tag_of(key)
        return self.slot_map.owner(key_slot(tag.encode())) or tag

    async def refresh(self) -> None:
        """Reads the slot map now (a connection reads it too, when it finds none)."""
        await self.slot_map.refresh()

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(client.aclose() for client in clients))
        await self._idle.aclose()


# ---- which one ---------------------------------------------------------------------------


# ACCEPTD_REDIS_URL -> whether it names a cluster node, as found by the process's first ask.
_TOPOLOGY: dict[str, bool] = {}


def forget_topologies() -> None:
    """Ask again on the next connect (tests reuse ports for servers of either kind)."""
    _TOPOLOGY.clear()


# What asking a server meets when it cannot answer now: a StoreClient's outage (unreachable,
# loading, a replica whose primary is down), a plain client's dropped connection, or the
# probe's time running out.
_NOT_ANSWERING = (StoreUnavailable, RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)


async def _answers(redis: Redis) -> bool:
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            await redis.ping()
    except (*_NOT_ANSWERING, ResponseError):
        return False
    return True


async def is_cluster(redis: Redis) -> bool:
    """Whether the server `redis` reaches is a cluster node. False when it cannot be asked
    (unreachable, or not answering within PROBE_SECONDS): see connect_shards."""
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            try:
                info = await redis.info("cluster")
            except ResponseError:
                # INFO refused (an ACL without it): CLUSTER INFO answers on a cluster node
                # and fails on one server.
                try:
                    await redis.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
                except ResponseError:
                    return False
                return True
    except _NOT_ANSWERING as error:
        log.warning("could not ask Redis whether it is a cluster (%s)", describe(error))
        return False
    return is_cluster_node(info)


async def connect_shards(settings: Settings, *, retries: int = 3) -> Shards:
    """The store's clients for ACCEPTD_REDIS_URL: a Sentinel-managed primary or one server
    (OneServer), or a cluster (ClusterShards, its slot map read)."""
    url = redis_url(settings)
    if sentinel_target(url) is not None:
        return OneServer(connect(settings, retries=retries), settings.shards)
    probe = connect(settings, retries=retries)
    # Asked once per process and URL: a role's own clients, opened inside its startup, then
    # do no I/O there (a SIGTERM that cancels a command halfway through leaves redis-py's
    # pool unable to close, and the process hanging). The CLI asks before a role starts.
    known = _TOPOLOGY.get(url)
    if known is None:
        known = await is_cluster(probe)
        # A server that cannot be asked now is taken for one server (not remembered): its
        # client's retries ride out the outage. Should it be a cluster after all, its
        # commands fail with MOVED until the role restarts.
        if known or await _answers(probe):
            _TOPOLOGY[url] = known
    if not known:
        return OneServer(probe, settings.shards)
    await probe.aclose()
    shards = ClusterShards.from_settings(settings, retries=retries)
    await shards.refresh()
    return shards
