"""Real Redis topologies from the embedded valkey-server: a Valkey Cluster (with replicas),
a Sentinel-managed primary with replicas, and a proxy that can hold a replica's link.

For the test suite's cluster and failover tests, and for `acceptd dev --cluster` (see
`dev_cluster`). There is no valkey-cli: the cluster is assembled with CLUSTER MEET,
ADDSLOTSRANGE and REPLICATE over redis-py. Everything listens on loopback, every wait has a
deadline, and every process dies with its parent (see `embedded`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import redis
from redis.crc import key_slot

from acceptd.cli.embedded import (
    DEFAULT_MAXMEMORY,
    EmbeddedServerError,
    EmbeddedValkey,
    StartedInWith,
    free_port,
)

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
SLOTS = 16384
# Short, so that a killed primary is declared failed (and replaced) within seconds: the
# tests' failovers take ~3 s with it. Production clusters use 15 s.
CLUSTER_NODE_TIMEOUT_MS = 2000
READY_TIMEOUT_SECONDS = 30.0
FAILOVER_TIMEOUT_SECONDS = 30.0
_POLL_SECONDS = 0.05

# A primary waits 5 s by default before a diskless full sync, for more replicas to join it:
# every replica here would pay it at start.
_REPLICATION_CONFIG = {"repl-diskless-sync-delay": "0"}

T = TypeVar("T")
Role = Literal["primary", "replica"]


class TopologyError(EmbeddedServerError):
    pass


def _connect(host: str, port: int, password: str | None) -> redis.Redis:
    return redis.Redis(
        host=host,
        port=port,
        password=password,
        decode_responses=True,
        socket_timeout=2.0,
        socket_connect_timeout=1.0,
    )


def _command(host: str, port: int, password: str | None, *args: str | int) -> Any:
    with _connect(host, port, password) as conn:
        return conn.execute_command(*args)


def _info(host: str, port: int, password: str | None, section: str) -> dict[str, Any]:
    with _connect(host, port, password) as conn:
        info: dict[str, Any] = conn.info(section)
        return info


def _wait_for(what: str, check: Callable[[], T | None], timeout: float) -> T:
    """Polls `check` (connection errors count as "not yet") until it returns something
    other than None; raises TopologyError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
        except (redis.RedisError, OSError) as error:
            value, last = None, error
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TopologyError(f"{what} not reached within {timeout}s (last: {last!r})")
        time.sleep(_POLL_SECONDS)


# --- Cluster -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _NodeView:
    """One line of CLUSTER NODES: how one node sees another."""

    node_id: str
    port: int
    flags: frozenset[str]
    primary_id: str | None
    slots: tuple[tuple[int, int], ...]

    @property
    def is_primary(self) -> bool:
        return "master" in self.flags

    @property
    def failed(self) -> bool:
        return bool(self.flags & {"fail", "fail?", "noaddr", "handshake"})


def _parse_cluster_nodes(text: str) -> list[_NodeView]:
    views = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        # addr is ip:port@cport[,hostname]
        address = fields[1].split("@", 1)[0]
        slots = []
        for item in fields[8:]:
            if item.startswith("["):  # a slot being migrated or imported
                continue
            first, _, last = item.partition("-")
            slots.append((int(first), int(last or first)))
        views.append(
            _NodeView(
                node_id=fields[0],
                port=int(address.rsplit(":", 1)[1] or 0),
                flags=frozenset(fields[2].split(",")),
                primary_id=None if fields[3] == "-" else fields[3],
                slots=tuple(slots),
            )
        )
    return views


@dataclass
class ClusterNode:
    """One valkey-server of an EmbeddedCluster. `role` and `primary_id` are as of the last
    look (`EmbeddedCluster.refresh`); a failover changes them."""

    index: int
    server: EmbeddedValkey
    bus_port: int
    role: Role
    node_id: str = ""
    primary_id: str | None = None
    alive: bool = field(default=True)

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    def client(self) -> redis.Redis:
        """A plain (non-cluster) connection to this node, for setup and inspection."""
        return _connect(self.host, self.port, self.server.password)


class EmbeddedCluster(StartedInWith):
    """A Valkey Cluster of `primaries` primaries with `replicas_per_primary` replicas each,
    its slots spread evenly over the primaries.

    `ports` fixes each node's (client port, cluster bus port), primaries first; without it
    both are picked free. A data dir that already holds this cluster (same ports, from a
    persistent earlier run) is started as it is instead of being assembled again.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        primaries: int = 3,
        replicas_per_primary: int = 0,
        password: str | None = None,
        persistent: bool = True,
        maxmemory: str | None = DEFAULT_MAXMEMORY,
        ports: Sequence[tuple[int, int]] | None = None,
        node_timeout_ms: int = CLUSTER_NODE_TIMEOUT_MS,
    ) -> None:
        if primaries < 1 or replicas_per_primary < 0:
            raise ValueError("a cluster needs a primary, and replicas cannot be negative")
        total = primaries * (1 + replicas_per_primary)
        if ports is not None and len(ports) != total:
            raise ValueError(f"{total} nodes need {total} port pairs, got {len(ports)}")
        self.data_dir = data_dir.resolve()
        self.primaries = primaries
        self.replicas_per_primary = replicas_per_primary
        self.password = password
        self.nodes: list[ClusterNode] = []
        for index in range(total):
            port, bus_port = ports[index] if ports else (free_port(HOST), free_port(HOST))
            config = {
                "cluster-enabled": "yes",
                "cluster-config-file": "nodes.conf",
                "cluster-port": str(bus_port),
                "cluster-node-timeout": str(node_timeout_ms),
                # A replica that lost its primary a while ago may still take over: in tests
                # the alternative is a cluster that stays down.
                "cluster-replica-validity-factor": "0",
                # Each replica stays with the primary it was given, so tests know who takes over.
                "cluster-allow-replica-migration": "no",
                **_REPLICATION_CONFIG,
            }
            if password is not None:
                config["masterauth"] = password
            server = EmbeddedValkey(
                self.data_dir / f"node-{index}",
                port=port,
                host=HOST,
                persistent=persistent,
                maxmemory=maxmemory,
                password=password,
                extra_config=config,
            )
            role: Role = "primary" if index < primaries else "replica"
            self.nodes.append(ClusterNode(index, server, bus_port, role))

    @property
    def url(self) -> str:
        """A redis:// URL of the first primary (any node's URL finds the whole cluster)."""
        auth = f":{self.password}@" if self.password else ""
        first = self.nodes[0]
        return f"redis://{auth}{first.host}:{first.port}"

    @property
    def ports(self) -> list[tuple[int, int]]:
        return [(node.port, node.bus_port) for node in self.nodes]

    def start(self) -> None:
        """Starts every node, assembles the cluster if it is new, and returns once every
        node says cluster_state:ok and every replica is in sync."""
        started = time.monotonic()
        try:
            for node in self.nodes:
                node.server.start()
                node.alive = True
                node.node_id = str(self._on(node, "CLUSTER", "MYID"))
            if not self._assembled():
                self._assemble()
            self._wait_healthy(READY_TIMEOUT_SECONDS)
        except BaseException:
            self.stop()
            raise
        log.info(
            "embedded Valkey cluster ready at %s: %d nodes in %.1fs",
            self.url.replace(f":{self.password}@", ":***@") if self.password else self.url,
            len(self.nodes),
            time.monotonic() - started,
        )

    def stop(self) -> None:
        for node in self.nodes:
            node.server.stop()
            node.alive = False

    def kill(self, node: ClusterNode) -> None:
        """SIGKILL one node, as a crash: its replica takes over after the node timeout."""
        node.server.kill()
        node.alive = False

    def primary_for_slot(self, slot: int) -> ClusterNode:
        """The node serving `slot` now, as a live node sees it."""
        for view in self._view():
            serves = any(first <= slot <= last for first, last in view.slots)
            if serves and view.is_primary and not view.failed:
                return self._by_id(view.node_id)
        raise TopologyError(f"no primary serves slot {slot}")

    def primary_for_key(self, key: str | bytes) -> ClusterNode:
        return self.primary_for_slot(key_slot(key.encode() if isinstance(key, str) else key))

    def key_on(self, node: ClusterNode, prefix: str = "key") -> str:
        """A key (prefix:N) whose slot `node` serves: to write on a chosen primary."""
        ranges = next((v.slots for v in self._view() if v.node_id == node.node_id), ())
        for number in range(100_000):
            key = f"{prefix}:{number}"
            slot = key_slot(key.encode())
            if any(first <= slot <= last for first, last in ranges):
                return key
        raise TopologyError(f"node {node.index} serves no slot")

    def refresh(self) -> None:
        """Reads every node's role and primary from a live node's view."""
        views = {view.node_id: view for view in self._view()}
        for node in self.nodes:
            view = views.get(node.node_id)
            if view is not None:
                node.role = "primary" if view.is_primary else "replica"
                node.primary_id = view.primary_id

    def wait_for_failover(
        self,
        old_primary: ClusterNode,
        timeout: float = FAILOVER_TIMEOUT_SECONDS,
    ) -> ClusterNode:
        """Waits until a replica of `old_primary` (killed) serves its slots and every live
        node says cluster_state:ok; returns the promoted node."""
        replicas = {
            node.node_id
            for node in self.nodes
            if node.role == "replica" and node.primary_id == old_primary.node_id and node.alive
        }
        if not replicas:
            raise TopologyError(f"node {old_primary.index} has no live replica to take over")

        def promoted() -> ClusterNode | None:
            for view in self._view():
                if view.node_id in replicas and view.is_primary and view.slots:
                    node = self._by_id(view.node_id)
                    if self._role_of(node) == "master" and self._all_ok():
                        return node
            return None

        node = _wait_for(f"failover of node {old_primary.index}", promoted, timeout)
        self.refresh()
        return node

    # -- assembling ---------------------------------------------------------------------

    def _on(self, node: ClusterNode, *args: str | int) -> Any:
        return _command(node.host, node.port, self.password, *args)

    def _cluster_info(self, node: ClusterNode) -> dict[str, str]:
        text = str(self._on(node, "CLUSTER", "INFO"))
        pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
        return {key: value.strip() for key, value in pairs}

    def _assembled(self) -> bool:
        """Whether the nodes already form this cluster (a persistent data dir, restarted)."""
        known = [int(self._cluster_info(node)["cluster_known_nodes"]) for node in self.nodes]
        if all(count == 1 for count in known):
            return False
        if all(count == len(self.nodes) for count in known):
            self.refresh()
            return True
        raise TopologyError(
            f"the nodes under {self.data_dir} hold another cluster (known nodes: {known}); "
            "remove that directory to start a new one"
        )

    def _assemble(self) -> None:
        # Distinct config epochs up front (as valkey-cli does): no epoch collision to resolve.
        for epoch, node in enumerate(self.nodes, start=1):
            self._on(node, "CLUSTER", "SET-CONFIG-EPOCH", epoch)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            self._on(first, "CLUSTER", "MEET", node.host, node.port, node.bus_port)
        _wait_for("every node knowing every other", self._all_met, READY_TIMEOUT_SECONDS)
        for index, node in enumerate(self.nodes[: self.primaries]):
            low = index * SLOTS // self.primaries
            high = (index + 1) * SLOTS // self.primaries - 1
            self._on(node, "CLUSTER", "ADDSLOTSRANGE", low, high)
        for index, node in enumerate(self.nodes[self.primaries :]):
            primary = self.nodes[index // self.replicas_per_primary]
            self._on(node, "CLUSTER", "REPLICATE", primary.node_id)
            node.primary_id = primary.node_id

    def _all_met(self) -> bool | None:
        for node in self.nodes:
            views = _parse_cluster_nodes(str(self._on(node, "CLUSTER", "NODES")))
            if len(views) != len(self.nodes) or any(view.failed for view in views):
                return None
        return True

    def _wait_healthy(self, timeout: float) -> None:
        # Most of a start is spent here: a primary turns cluster_state:ok only 2 s after its
        # process started (Valkey's CLUSTER_WRITABLE_DELAY), whatever we do.
        def healthy() -> bool | None:
            if not self._all_ok():
                return None
            self.refresh()
            for node in self.nodes:
                if node.role == "replica":
                    link = _info(node.host, node.port, self.password, "replication")
                    if link.get("master_link_status") != "up":
                        return None
            return True

        _wait_for("cluster_state:ok with replicas in sync", healthy, timeout)

    # -- looking ------------------------------------------------------------------------

    def _live(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.alive]

    def _all_ok(self) -> bool:
        return all(self._cluster_info(node)["cluster_state"] == "ok" for node in self._live())

    def _view(self) -> list[_NodeView]:
        for node in self._live():
            with contextlib.suppress(redis.RedisError, OSError):
                return _parse_cluster_nodes(str(self._on(node, "CLUSTER", "NODES")))
        raise TopologyError("no live node answers")

    def _role_of(self, node: ClusterNode) -> str:
        return str(_info(node.host, node.port, self.password, "replication")["role"])

    def _by_id(self, node_id: str) -> ClusterNode:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise TopologyError(f"unknown node id {node_id}")


def dev_cluster(data_dir: Path, *, password: str | None, primaries: int = 3) -> EmbeddedCluster:
    """The cluster of `acceptd dev --cluster` (not started): `primaries` persistent primaries
    without replicas. Its ports are kept in the data dir, because a cluster's nodes find each
    other again after a restart only on the ports they had; when one is taken now, this says
    so rather than start over and drop the data."""
    data_dir.mkdir(parents=True, exist_ok=True)
    remembered = data_dir / "ports.json"
    ports: list[tuple[int, int]] | None = None
    if remembered.exists():
        ports = [(int(port), int(bus)) for port, bus in json.loads(remembered.read_text())]
        taken = [port for pair in ports for port in pair if not _port_free(port)]
        if taken or len(ports) != primaries:
            raise TopologyError(
                f"the cluster in {data_dir} needs {primaries} nodes on ports {ports}"
                f" ({taken or 'another size'}); free them, or remove {data_dir} to start anew"
            )
    cluster = EmbeddedCluster(data_dir, primaries=primaries, password=password, ports=ports)
    remembered.write_text(json.dumps(cluster.ports), encoding="utf-8")
    return cluster


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As valkey-server binds: a port whose last connections linger in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


# --- Sentinel ----------------------------------------------------------------------------


class EmbeddedSentinel(EmbeddedValkey):
    """valkey-server in Sentinel mode, watching one primary."""

    config_name = "sentinel.conf"  # rewritten by the sentinel as it learns
    log_name = "sentinel.log"
    mode_args = ("--sentinel",)

    def __init__(
        self,
        data_dir: Path,
        *,
        primary_name: str,
        primary_port: int,
        quorum: int,
        password: str | None = None,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 5000,
    ) -> None:
        super().__init__(data_dir, host=HOST, persistent=False, maxmemory=None, password=password)
        self.primary_name = primary_name
        self.primary_port = primary_port
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms

    def _config(self) -> str:
        name = self.primary_name
        lines = [
            f"bind {self.host}",
            f"port {self.port}",
            f"dir {self.data_dir}",
            "daemonize no",
            'logfile "sentinel.log"',
            f"sentinel monitor {name} {HOST} {self.primary_port} {self.quorum}",
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {name} 1",
        ]
        if self.password is not None:
            lines += [
                f"requirepass {self.password}",
                # To the primary and replicas, and to the other sentinels (same password).
                f"sentinel auth-pass {name} {self.password}",
                f"sentinel sentinel-pass {self.password}",
            ]
        return "".join(f"{line}\n" for line in lines)


def _pairs(reply: Sequence[Any]) -> dict[str, str]:
    """A flat [key, value, …] reply (SENTINEL REPLICAS items) as a dict."""
    return {str(reply[i]): str(reply[i + 1]) for i in range(0, len(reply) - 1, 2)}


class EmbeddedSentinelGroup(StartedInWith):
    """A primary, `replicas` replicas and `sentinels` sentinels watching them as
    `primary_name` (quorum: a majority of the sentinels)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        replicas: int = 1,
        sentinels: int = 1,
        primary_name: str = "acceptd",
        password: str | None = None,
        persistent: bool = False,
        maxmemory: str | None = DEFAULT_MAXMEMORY,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.primary_name = primary_name
        self.password = password
        shared = dict(_REPLICATION_CONFIG)
        if password is not None:
            shared["masterauth"] = password  # each server may be a replica after a failover
        # servers[0] is the first primary; after a failover any of them may be.
        self.servers: list[EmbeddedValkey] = [
            EmbeddedValkey(
                self.data_dir / "primary",
                host=HOST,
                persistent=persistent,
                maxmemory=maxmemory,
                password=password,
                extra_config=shared,
            )
        ]
        for index in range(replicas):
            self.servers.append(
                EmbeddedValkey(
                    self.data_dir / f"replica-{index}",
                    host=HOST,
                    persistent=persistent,
                    maxmemory=maxmemory,
                    password=password,
                    extra_config={**shared, "replicaof": f"{HOST} {self.servers[0].port}"},
                )
            )
        self.sentinels = [
            EmbeddedSentinel(
                self.data_dir / f"sentinel-{index}",
                primary_name=primary_name,
                primary_port=self.servers[0].port,
                quorum=sentinels // 2 + 1,
                password=password,
            )
            for index in range(sentinels)
        ]
        self._killed: set[int] = set()

    @property
    def url(self) -> str:
        """redis+sentinel://[:password@]host:port[,host:port…]/<primary-name>"""
        auth = f":{self.password}@" if self.password else ""
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinel_addresses)
        return f"redis+sentinel://{auth}{hosts}/{self.primary_name}"

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [(sentinel.host, sentinel.port) for sentinel in self.sentinels]

    def start(self) -> None:
        """Starts the servers, then the sentinels; returns once the replicas are in sync and
        every sentinel knows every replica and every other sentinel."""
        started = time.monotonic()
        try:
            for server in self.servers:
                server.start()
            _wait_for("replicas in sync", self._replicas_synced, READY_TIMEOUT_SECONDS)
            for sentinel in self.sentinels:
                sentinel.start()
            _wait_for("sentinels discovering", self._discovered, READY_TIMEOUT_SECONDS)
        except BaseException:
            self.stop()
            raise
        took = time.monotonic() - started
        log.info("embedded Sentinel group %s ready in %.1fs", self.primary_name, took)

    def stop(self) -> None:
        for process in [*self.sentinels, *self.servers]:
            process.stop()

    def primary(self) -> tuple[str, int]:
        """Where the sentinels say the primary is (the first one that answers)."""
        for address in self.sentinel_addresses:
            with contextlib.suppress(redis.RedisError, OSError):
                return self._asked(address)
        raise TopologyError("no sentinel answers")

    def primary_server(self) -> EmbeddedValkey:
        _, port = self.primary()
        return next(server for server in self.servers if server.port == port)

    def kill_primary(self) -> EmbeddedValkey:
        """SIGKILL the current primary; returns it (its port stays known to the sentinels)."""
        server = self.primary_server()
        server.kill()
        self._killed.add(server.port)
        return server

    def wait_for_failover(self, timeout: float = FAILOVER_TIMEOUT_SECONDS) -> EmbeddedValkey:
        """Waits until every sentinel names a live server as the primary and that server
        says it is one; returns it."""

        def promoted() -> EmbeddedValkey | None:
            answers = {self._asked(address) for address in self.sentinel_addresses}
            if len(answers) != 1:
                return None
            (_, port) = next(iter(answers))
            if port in self._killed:
                return None
            server = next(server for server in self.servers if server.port == port)
            role = _info(server.host, server.port, self.password, "replication")["role"]
            return server if role == "master" else None

        return _wait_for("sentinel failover", promoted, timeout)

    def _asked(self, sentinel: tuple[str, int]) -> tuple[str, int]:
        """One sentinel's answer: where is the primary?"""
        host, port = sentinel
        reply = _command(
            host, port, self.password, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.primary_name
        )
        return str(reply[0]), int(reply[1])

    def _replicas_synced(self) -> bool | None:
        for server in self.servers[1:]:
            info = _info(server.host, server.port, self.password, "replication")
            if info.get("master_link_status") != "up":
                return None
        return True

    def _discovered(self) -> bool | None:
        expected_replicas = len(self.servers) - 1
        for host, port in self.sentinel_addresses:
            name = self.primary_name
            known = [
                _pairs(item)
                for item in _command(host, port, self.password, "SENTINEL", "REPLICAS", name)
            ]
            healthy = [
                r for r in known if r["flags"] == "slave" and r["master-link-status"] == "ok"
            ]
            others = _command(host, port, self.password, "SENTINEL", "SENTINELS", name)
            if len(healthy) != expected_replicas or len(others) != len(self.sentinels) - 1:
                return None
        return True


# --- A link that can be held -------------------------------------------------------------


class HoldingProxy(StartedInWith):
    """A loopback TCP proxy to `target_port` that can hold: while held, no byte goes through
    in either direction and no connection is closed, as when a network partition leaves
    both ends waiting. Put it between a replica and its primary (replicaof the proxy)."""

    def __init__(self, target_port: int, *, target_host: str = HOST) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.1)  # so that the accept loop sees stop()
        self.port: int = self._listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        self._spawn(self._accept_loop)

    def hold(self) -> None:
        """Stops forwarding (bytes already read wait in the proxy; the rest in the kernel)."""
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    def stop(self) -> None:
        self._closed.set()
        self._flowing.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        for thread in self._threads:
            thread.join(timeout=2)

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                downstream, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            downstream.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                downstream.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [downstream, upstream]
            self._spawn(self._pump, downstream, upstream)
            self._spawn(self._pump, upstream, downstream)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                while not self._flowing.wait(timeout=0.1):
                    pass
                if self._closed.is_set():
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
