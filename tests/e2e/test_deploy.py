"""deploy/ as shipped: compose run service by service with exactly the environment compose
gives each (no container engine runs here), every Kubernetes manifest validated against the
Kubernetes schemas offline, and the properties operators rely on."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import redis as sync_redis
import yaml
from redis.exceptions import AuthenticationError, ResponseError

from acceptd.cli.config import CLIENT_VARIABLES
from acceptd.cli.embedded import free_port, valkey_binary
from acceptd.client import Client
from acceptd.core.settings import Settings
from acceptd.runtime import metrics
from tests.support.cli import cli_json
from tests.support.cluster import Roles, VerifyingReceiver
from tests.support.compose import (
    MissingVariableError,
    dockerfile_env,
    interpolate,
    merge,
    service_environment,
)
from tests.support.constants import MASTER_KEY, subprocess_env
from tests.support.waiting import healthy, wait_until

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.33"
SETTING_NAMES = {*(f"ACCEPTD_{name.upper()}" for name in Settings.model_fields), *CLIENT_VARIABLES}


def _env_names(value: Any) -> set[str]:
    """Every ACCEPTD_* name mentioned anywhere in a parsed manifest."""
    return set(re.findall(r"ACCEPTD_[A-Z0-9_]+", json.dumps(value)))


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, document)
        for path in sorted(K8S.rglob("*.yaml"))
        if path.name != "kustomization.yaml"
        for document in _documents(path)
    ]


def test_manifests_parse_and_name_only_real_settings() -> None:
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert {p.name for p in files} >= {
        "compose.yaml",
        "api.yaml",
        "worker.yaml",
        "dispatcher.yaml",
        "configmap.yaml",
    }
    for path in files:
        documents = _documents(path)
        assert documents, path
        for document in documents:
            unknown = _env_names(document) - SETTING_NAMES - {"ACCEPTD_REDIS_PASSWORD"}
            assert not unknown, f"{path.name} names settings that do not exist: {unknown}"


def test_every_kubernetes_manifest_validates_against_the_schemas() -> None:
    validated = set()
    for _path, document in _k8s_documents():
        if document["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: checked against our metrics below
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        validated.add(document["kind"])
    assert {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Secret",
        "NetworkPolicy",
    } <= validated


def test_a_broken_manifest_fails_validation() -> None:
    [deployment, *_] = _documents(K8S / "worker.yaml")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def _deployments() -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"].removeprefix("acceptd-"): d
        for _, d in _k8s_documents()
        if d["kind"] == "Deployment"
    }


def test_pods_run_under_the_restricted_profile() -> None:
    for role, deployment in _deployments().items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, role
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, role
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, role
            assert context["capabilities"] == {"drop": ["ALL"]}, role
            assert context["readOnlyRootFilesystem"] is True, role


def test_deployments_probe_health_and_readiness() -> None:
    deployments = _deployments()
    assert set(deployments) == {"api", "worker", "dispatcher"}
    for role, port in (("api", "http"), ("worker", "metrics"), ("dispatcher", "metrics")):
        [container] = deployments[role]["spec"]["template"]["spec"]["containers"]
        assert container["args"] == [role]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
        assert container["resources"]["requests"]


def test_the_image_is_set_by_kustomize_and_the_namespace_comes_first() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["resources"][0] == "namespace.yaml"
    assert "secret.example.yaml" not in kustomization["resources"]
    [image] = kustomization["images"]
    assert image["name"] == "acceptd"
    assert image["newName"]
    assert image["newTag"]
    for deployment in _deployments().values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container["image"] == image["name"]  # so `images:` rewrites every one
    text = (K8S / "kustomization.yaml").read_text()
    assert text.index("namespace.yaml") < text.index("create secret")


def test_api_metrics_stay_off_the_public_service() -> None:
    [service] = [d for _, d in _k8s_documents() if d["kind"] == "Service"]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    [container] = _deployments()["api"]["spec"]["template"]["spec"]["containers"]
    assert {p["name"] for p in container["ports"]} == {"http", "metrics"}


def test_io_bound_roles_scale_on_queues_not_cpu() -> None:
    autoscaled = {
        d["spec"]["scaleTargetRef"]["name"]
        for _, d in _k8s_documents()
        if d["kind"] == "HorizontalPodAutoscaler"
    }
    assert autoscaled == {"acceptd-api"}
    overlay = yaml.safe_load((K8S / "keda" / "kustomization.yaml").read_text())
    assert "../" in overlay["resources"]
    scaled = {
        d["spec"]["scaleTargetRef"]["name"]: d
        for d in _documents(K8S / "keda" / "scaledobjects.yaml")
    }
    assert set(scaled) == {"acceptd-worker", "acceptd-dispatcher"}
    exported = {"acceptd_queue_depth"}
    known_queues = {*metrics.DUE_QUEUES, *metrics.WHOLE_QUEUES, "events"}
    for document in scaled.values():
        for trigger in document["spec"]["triggers"]:
            query = trigger["metadata"]["query"]
            assert set(re.findall(r"acceptd_[a-z_]+", query)) <= exported, query
            assert set(re.findall(r'queue="([a-z_]+)"', query)) <= known_queues, query


def _policies() -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d["spec"]
        for _, d in _k8s_documents()
        if d["kind"] == "NetworkPolicy"
    }


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector's verdict (matchLabels, and matchExpressions with In)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    return all(labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", []))


def test_network_policies_leave_only_the_api_open_and_metrics_to_monitoring() -> None:
    """Another pod of the cluster (a compromised neighbour) cannot read /metrics or call
    a worker or dispatcher; only acceptd's pods reach Redis."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "networkpolicy.yaml" in kustomization["resources"]
    policies = _policies()
    monitoring = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    for role, deployment in _deployments().items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        [spec] = [p for p in policies.values() if _selects(p["podSelector"], labels)]
        assert spec["policyTypes"] == ["Ingress"], role
        by_port = {
            port["port"]: rule.get("from") for rule in spec["ingress"] for port in rule["ports"]
        }
        assert by_port["metrics"] == [monitoring], role
        expected = {"metrics", "http"} if role == "api" else {"metrics"}
        assert set(by_port) == expected, role
        if role == "api":
            assert by_port["http"] is None  # from anywhere: the Ingress decides
    redis = policies["redis-from-acceptd-only"]
    assert redis["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "redis"}}
    [rule] = redis["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "acceptd"}}}]


def test_metrics_listen_where_probes_and_prometheus_reach_them() -> None:
    """The metrics port listens on loopback by default; in a pod the ConfigMap opens it to
    the pod network (the NetworkPolicy above says who may use that)."""
    assert Settings.model_fields["metrics_host"].default == "127.0.0.1"
    [configmap] = _documents(K8S / "configmap.yaml")
    assert configmap["data"]["ACCEPTD_METRICS_HOST"] == "0.0.0.0"


def test_compose_names_no_job_modules_by_default() -> None:
    """Production compose never runs the demo job types silently: the operator names the
    modules (a trial names acceptd.jobs.demo itself)."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    shell = {"ACCEPTD_MASTER_KEY": MASTER_KEY, "ACCEPTD_REDIS_PASSWORD": "pw"}
    with pytest.raises(MissingVariableError, match="ACCEPTD_JOB_MODULES"):
        service_environment(compose["services"]["worker"], shell)
    assert "REPLACE" in (K8S / "configmap.yaml").read_text()


@pytest.mark.parametrize("name", ["compose.yaml", "compose.cluster.yaml"])
def test_compose_puts_no_password_on_a_command_line(name: str) -> None:
    """Neither the server nor valkey-cli (healthchecks, the cluster's assembly) is handed
    the password as an argument: `ps` shows those to every user of the host."""
    text = (DEPLOY / name).read_text()
    for service_name, service in yaml.safe_load(text)["services"].items():
        for field in ("command", "entrypoint"):
            argv = json.dumps(service.get(field))
            assert "ACCEPTD_REDIS_PASSWORD" not in argv, (service_name, field)
            assert not {"-a", "--pass", "--user"} & set(service.get(field) or []), service_name
        test = json.dumps(service.get("healthcheck", {}).get("test"))
        assert "ACCEPTD_REDIS_PASSWORD" not in test, service_name
    assert "requirepass" not in text
    for script in ("valkey-entrypoint.sh", "valkey-cluster-create.sh"):
        assert not re.search(r"valkey-cli[^\n]* (-a|--pass|--user) ", (DEPLOY / script).read_text())


def _compose(*names: str) -> dict[str, Any]:
    """Compose files merged as `docker compose -f a -f b` merges them."""
    return merge(*(yaml.safe_load((DEPLOY / name).read_text()) for name in names))


def test_compose_proxy_sends_the_dispatchers_webhooks_through_the_egress_proxy() -> None:
    """compose.proxy.yaml on top of compose.yaml: the dispatcher (only) names the proxy
    service, on the port its configuration listens on."""
    compose = _compose("compose.yaml", "compose.proxy.yaml")
    services = compose["services"]
    proxy_url = services["dispatcher"]["environment"]["ACCEPTD_WEBHOOK_PROXY_URL"]
    assert proxy_url == "http://egress-proxy:3128"
    assert "ACCEPTD_WEBHOOK_PROXY_URL" not in services["worker"]["environment"]
    assert "./squid.conf:/etc/squid/squid.conf:ro" in services["egress-proxy"]["volumes"]
    assert "http_port 3128" in (DEPLOY / "squid.conf").read_text().splitlines()


CLUSTER_NODES = ("redis", "redis-2", "redis-3")


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """A service's bind mounts and volumes: source -> path in the container."""
    return dict(volume.split(":")[:2] for volume in service["volumes"])


def test_compose_stays_one_server_without_the_cluster_override() -> None:
    """compose.yaml alone is the single-server stack: the cluster is opt-in with -f."""
    compose = _compose("compose.yaml")
    assert set(compose["services"]) == {"redis", "api", "worker", "dispatcher"}
    assert "command" not in compose["services"]["redis"]
    assert "ACCEPTD_SHARDS" not in (DEPLOY / "compose.yaml").read_text()


def test_compose_cluster_runs_three_persistent_primaries_at_fixed_addresses() -> None:
    compose = _compose("compose.yaml", "compose.cluster.yaml")
    shell = {"ACCEPTD_REDIS_PASSWORD": "pw"}
    network = compose["networks"]["default"]["ipam"]["config"][0]
    subnet = ipaddress.ip_network(interpolate(network["subnet"], shell))
    dynamic = ipaddress.ip_network(interpolate(network["ip_range"], shell))
    addresses, data = set(), set()
    for name in CLUSTER_NODES:
        node = compose["services"][name]
        # Each node runs the password-from-a-file entrypoint with the shipped redis.conf
        # (AOF, maxmemory, noeviction) and cluster mode on top.
        assert node["entrypoint"] == ["sh", "/usr/local/bin/valkey-entrypoint.sh"], name
        assert _mounts(node)["./redis.conf"] == "/etc/valkey/redis.conf", name
        assert node["command"][:2] == ["--cluster-enabled", "yes"], name
        assert service_environment(node, shell)["VALKEY_PASSWORD"] == "pw", name
        assert node["healthcheck"]["test"] == ["CMD", "valkey-cli", "ping"], name
        data.add(next(src for src, dst in _mounts(node).items() if dst == "/data"))
        # A cluster knows its members by address: a node whose address changed after a
        # `down` would not be found again, so each has a fixed one, outside the range
        # compose hands to the other containers.
        address = ipaddress.ip_address(
            interpolate(node["networks"]["default"]["ipv4_address"], shell)
        )
        assert address in subnet, name
        assert address not in dynamic, name
        addresses.add(address)
    assert len(addresses) == len(data) == len(CLUSTER_NODES)
    assert data <= set(compose["volumes"])
    assert re.search(r"^appendonly yes$", (DEPLOY / "redis.conf").read_text(), re.M)


def test_compose_cluster_is_assembled_before_the_roles_start() -> None:
    compose = _compose("compose.yaml", "compose.cluster.yaml")
    create = compose["services"]["redis-cluster"]
    assert create["entrypoint"] == ["sh", "/usr/local/bin/valkey-cluster-create.sh"]
    assert _mounts(create)["./valkey-cluster-create.sh"] == create["entrypoint"][1]
    assert create["command"] == [f"{name}:6379" for name in CLUSTER_NODES]
    assert create["depends_on"] == {
        name: {"condition": "service_healthy"} for name in CLUSTER_NODES
    }
    script = (DEPLOY / "valkey-cluster-create.sh").read_text()
    assert 'valkey-cli --cluster create "$@" --cluster-replicas 0 --cluster-yes' in script
    shell = {
        "ACCEPTD_REDIS_PASSWORD": "pw",
        "ACCEPTD_MASTER_KEY": MASTER_KEY,
        "ACCEPTD_JOB_MODULES": "myapp.jobs",
    }
    assert service_environment(create, shell) == {"REDISCLI_AUTH": "pw"}
    for role in ("api", "worker", "dispatcher"):
        service = compose["services"][role]
        assert service["depends_on"]["redis-cluster"] == {
            "condition": "service_completed_successfully"
        }
        env = service_environment(service, shell)
        # Any node's URL finds the whole cluster; database 0, the only one a cluster has.
        assert env["ACCEPTD_REDIS_URL"] == "redis://:pw@redis:6379/0"
        # A power of two, at least four per primary (docs/operations.md, "How many shards").
        shards = int(env["ACCEPTD_SHARDS"])
        assert shards & (shards - 1) == 0, role
        assert shards >= 4 * len(CLUSTER_NODES), role


def test_example_secret_holds_no_secret() -> None:
    [secret] = _documents(K8S / "secret.example.yaml")
    assert set(secret["stringData"].values()) == {"REPLACE_ME"}


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    """What `kubectl apply -k` would apply (kubectl's own kustomize)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr
    return [d for d in yaml.safe_load_all(rendered.stdout) if d]


def test_the_cluster_component_sets_shards_and_reads_the_url_from_its_secret() -> None:
    component = yaml.safe_load((K8S / "cluster" / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    ops = {
        patch["target"]["kind"]: yaml.safe_load(patch["patch"]) for patch in component["patches"]
    }
    [shards] = ops["ConfigMap"]
    assert shards["path"] == "/data/ACCEPTD_SHARDS"
    count = int(shards["value"])
    assert count & (count - 1) == 0, count  # a power of two
    assert count >= 4, count
    [env] = ops["Deployment"]
    assert env["value"] == [
        {
            "name": "ACCEPTD_REDIS_URL",
            "valueFrom": {"secretKeyRef": {"name": "acceptd-redis-cluster", "key": "url"}},
        }
    ]


def test_the_cluster_component_changes_only_shards_url_and_redis_peers(tmp_path: Path) -> None:
    """Turned on as its header says (`components: [cluster]` in deploy/k8s), the manifests
    differ from the base's only where the component means them to, and still validate."""
    base = _kustomize(K8S)
    shutil.copytree(K8S, tmp_path / "k8s")
    with (tmp_path / "k8s" / "kustomization.yaml").open("a") as kustomization:
        kustomization.write("components: [cluster]\n")
    with_cluster = _kustomize(tmp_path / "k8s")
    assert len(with_cluster) == len(base)
    for before, after in zip(base, with_cluster, strict=True):
        kind, name = after["kind"], after["metadata"]["name"]
        assert (before["kind"], before["metadata"]["name"]) == (kind, name)
        kubernetes_validate.validate(after, KUBERNETES_VERSION, strict=True)
        if kind == "ConfigMap":
            assert after["data"].pop("ACCEPTD_SHARDS") == "16"
        elif kind == "Deployment":
            [container] = after["spec"]["template"]["spec"]["containers"]
            [url] = container.pop("env")
            assert url["name"] == "ACCEPTD_REDIS_URL"
            assert url["valueFrom"]["secretKeyRef"]["name"] == "acceptd-redis-cluster"
            # Still the base's Secret for the rest (the master key): `env` wins over it
            # for the URL only.
            assert {"secretRef": {"name": "acceptd-secrets"}} in container["envFrom"]
        elif name == "redis-from-acceptd-only":
            peers = after["spec"]["ingress"].pop()
            assert peers["from"] == [
                {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "redis"}}}
            ]
            assert {16379, 6379} <= {port["port"] for port in peers["ports"]}
        assert after == before, (kind, name)


def test_dockerfile_is_multi_stage_non_root_with_a_health_check() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) == 2
    assert re.search(r"^USER (?!root|0\b)\S+", dockerfile, re.M)
    assert re.search(r'^HEALTHCHECK .*"acceptd", "healthcheck"', dockerfile, re.M)
    assert _env_names(dockerfile) <= SETTING_NAMES


def test_the_derived_image_example_adds_job_modules() -> None:
    derived = (DEPLOY / "Dockerfile.jobs.example").read_text()
    assert re.search(r"^FROM \S*acceptd", derived, re.M)
    assert "ACCEPTD_JOB_MODULES" in derived


def _start_valkey(
    tmp: Path,
    service: dict[str, Any],
    shell: dict[str, str],
    port: int,
    bus_port: int | None = None,
) -> subprocess.Popen[bytes]:
    """A Valkey service as compose runs it: its entrypoint script (deploy/) with the
    service's command as arguments, its environment, the shipped redis.conf; the image's
    docker-entrypoint.sh stands in as a script that runs the packaged valkey-server on a free
    loopback port (and, for a cluster node, a free bus port in place of port + 10000)."""
    assert service["entrypoint"] == ["sh", "/usr/local/bin/valkey-entrypoint.sh"]
    mounts = _mounts(service)
    assert mounts["./valkey-entrypoint.sh"] == "/usr/local/bin/valkey-entrypoint.sh"
    assert mounts["./redis.conf"] == "/etc/valkey/redis.conf"
    tmp.mkdir(exist_ok=True)
    shutil.copy(DEPLOY / "redis.conf", tmp / "redis.conf")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    bus = f" --cluster-port {bus_port}" if bus_port else ""
    image_entrypoint = bin_dir / "docker-entrypoint.sh"
    image_entrypoint.write_text(
        f'#!/bin/sh\nshift\nexec {valkey_binary()} "$@" --port {port} --bind 127.0.0.1{bus}\n'
    )
    image_entrypoint.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        **service_environment(service, shell),
        "VALKEY_CONF": str(tmp / "redis.conf"),
        "VALKEY_AUTH_CONF": str(tmp / "auth.conf"),
    }
    return subprocess.Popen(
        ["sh", str(DEPLOY / "valkey-entrypoint.sh"), *service.get("command", [])],
        env=env,
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _command_line(pid: int) -> str:
    """What `ps` shows of a process to every user of the host."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.mark.timeout(120)
async def test_compose_as_shipped_starts_and_delivers_a_signed_webhook(tmp_path: Path) -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    # The operator's shell, as the file's header says: only the required variables, plus a
    # private network receivers may live on (here: loopback, where the test's receiver is).
    password = secrets.token_hex(16)
    shell = {
        "ACCEPTD_MASTER_KEY": MASTER_KEY,
        "ACCEPTD_REDIS_PASSWORD": password,
        "ACCEPTD_CALLBACK_ALLOW_CIDRS": "127.0.0.1/32",
        "ACCEPTD_JOB_MODULES": "acceptd.jobs.demo",  # a trial: compose has no default
    }

    # Valkey as the redis service runs it: its entrypoint, the shipped redis.conf, the
    # password; on a free loopback port in place of the compose network.
    port = free_port()
    valkey = _start_valkey(tmp_path, compose["services"]["redis"], shell, port)
    roles = Roles({}, tmp_path)
    receiver = VerifyingReceiver()
    try:
        admin = sync_redis.Redis(port=port, password=password)

        async def answering() -> bool:
            try:
                return bool(admin.ping())
            except sync_redis.ConnectionError:
                return False

        await wait_until(answering, timeout=20)
        with pytest.raises((AuthenticationError, ResponseError)):  # NOAUTH
            sync_redis.Redis(port=port).set("x", "1")
        # What `ps` shows of the server to anyone on the host: no password.
        assert password not in _command_line(valkey.pid)
        config: dict[str, str] = admin.config_get("maxmemory*")  # type: ignore[assignment]
        assert int(config["maxmemory"]) > 0
        assert config["maxmemory-policy"] == "noeviction"
        admin.close()

        tenant = await _roles_and_a_tenant(compose, shell, roles, receiver, port)
        await _a_signed_webhook_arrives(tenant, receiver, "shipped")
    finally:
        roles.stop_all()
        await receiver.down()
        valkey.terminate()
        await asyncio.to_thread(valkey.wait, 10)


@pytest.mark.timeout(120)
async def test_compose_cluster_as_shipped_assembles_and_delivers_a_signed_webhook(
    tmp_path: Path,
) -> None:
    """compose.yaml with compose.cluster.yaml, service by service as compose starts them:
    the three nodes, the one-shot assembly (twice, as a later `up` runs it again), the
    roles on 16 shards, and a job whose signed webhook arrives."""
    # The image's valkey-cli: the machine's redis-cli is the same program (Valkey forked
    # it and kept its options, --cluster create and REDISCLI_AUTH among them).
    cli = shutil.which("valkey-cli") or shutil.which("redis-cli")
    if cli is None:
        pytest.skip("neither valkey-cli nor redis-cli is installed to stand in for the image's")
    compose = _compose("compose.yaml", "compose.cluster.yaml")
    password = secrets.token_hex(16)
    shell = {
        "ACCEPTD_MASTER_KEY": MASTER_KEY,
        "ACCEPTD_REDIS_PASSWORD": password,
        "ACCEPTD_CALLBACK_ALLOW_CIDRS": "127.0.0.1/32",
        "ACCEPTD_JOB_MODULES": "acceptd.jobs.demo",
    }

    # Each node on a free loopback port (and bus port) in place of its fixed address.
    ports = {name: free_port() for name in CLUSTER_NODES}
    nodes = {
        name: _start_valkey(
            tmp_path / name, compose["services"][name], shell, ports[name], bus_port=free_port()
        )
        for name in CLUSTER_NODES
    }
    admins = {name: sync_redis.Redis(port=port, password=password) for name, port in ports.items()}
    roles = Roles({}, tmp_path)
    receiver = VerifyingReceiver()
    try:
        # depends_on: service_healthy, as the healthcheck (an authenticated PING) sees it.
        for admin in admins.values():

            async def answering(admin: sync_redis.Redis = admin) -> bool:
                try:
                    return bool(admin.ping())
                except sync_redis.ConnectionError:
                    return False

            await wait_until(answering, timeout=20)
        for name, node in nodes.items():
            assert password not in _command_line(node.pid), name

        # The one-shot redis-cluster service: its script with its command, service names
        # replaced by where each node listens here.
        create = compose["services"]["redis-cluster"]
        bin_dir = tmp_path / "cli-bin"
        bin_dir.mkdir()
        (bin_dir / "valkey-cli").symlink_to(cli)
        addresses = []
        for address in create["command"]:
            host, port = address.rsplit(":", 1)
            assert port == "6379", address  # where every node listens in its container
            addresses.append(f"127.0.0.1:{ports[host]}")
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", **service_environment(create, shell)}
        for run in ("create", "a later up"):
            assemble = ["sh", str(DEPLOY / "valkey-cluster-create.sh"), *addresses]
            assembling = await asyncio.create_subprocess_exec(
                *assemble, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            out, _ = await asyncio.wait_for(assembling.communicate(), 90)
            assert assembling.returncode == 0, (run, out.decode(errors="replace"))
        assert b"assembled already" in out
        for name, admin in admins.items():
            info: dict[str, str] = admin.cluster("INFO")  # type: ignore[assignment]
            assert info["cluster_state"] == "ok", name
            assert info["cluster_size"] == "3", name  # three primaries holding slots
            config: dict[str, str] = admin.config_get("appendonly")  # type: ignore[assignment]
            assert config["appendonly"] == "yes", name
        with pytest.raises((AuthenticationError, ResponseError)):  # NOAUTH
            sync_redis.Redis(port=ports["redis-2"]).set("x", "1")

        for name in ("api", "worker", "dispatcher"):
            assert service_environment(compose["services"][name], shell)["ACCEPTD_SHARDS"] == "16"
        tenant = await _roles_and_a_tenant(compose, shell, roles, receiver, ports["redis"])
        await _a_signed_webhook_arrives(tenant, receiver, "on the cluster")
        # The roles ran on the cluster, sharded: the count they recorded, read through a
        # cluster client from whichever primary holds the control slot.
        cluster = sync_redis.RedisCluster("127.0.0.1", ports["redis-3"], password=password)
        try:
            assert cluster.get("acceptd:{c}:shards") == b"16"
        finally:
            cluster.close()
    finally:
        roles.stop_all()
        await receiver.down()
        for admin in admins.values():
            admin.close()
        for node in nodes.values():
            node.terminate()
        for node in nodes.values():
            await asyncio.to_thread(node.wait, 10)


async def _roles_and_a_tenant(
    compose: dict[str, Any], shell: dict[str, str], roles: Any, receiver: Any, redis_port: int
) -> dict[str, Any]:
    """The three roles as compose runs them (their store on loopback at `redis_port`),
    healthy, and the tenant `acme` as `docker compose run --rm worker tenants create acme
    --json` makes it; the receiver verifies its signatures."""
    image_env = dockerfile_env(DEPLOY / "Dockerfile")
    image_env["ACCEPTD_HOST"] = "127.0.0.1"  # loopback in place of the container's 0.0.0.0
    for name in ("api", "worker", "dispatcher"):
        service = compose["services"][name]
        env = {**image_env, **service_environment(service, shell)}
        env["ACCEPTD_REDIS_URL"] = env["ACCEPTD_REDIS_URL"].replace(
            "@redis:6379", f"@127.0.0.1:{redis_port}"
        )
        roles.env = subprocess_env(**env)
        roles.start(name, *service["command"])
    defaults = Settings(redis_url="redis://unused")
    for check in (defaults.port, *(defaults.metrics_port_for(r) for r in roles.processes)):
        await wait_until(lambda check=check: healthy(check), timeout=30, interval=0.2)
    for name, process in roles.processes.items():
        assert process.poll() is None, roles.log_tail(name)
    tenant: dict[str, Any] = await cli_json("tenants", "create", "acme", env=roles.env)
    receiver.secret = tenant["secret"]  # callbacks are signed with the tenant's secret
    await receiver.up()
    return tenant


async def _a_signed_webhook_arrives(tenant: dict[str, Any], receiver: Any, value: str) -> None:
    """A job of the tenant's, submitted to the API on its default port, succeeds and its
    webhook arrives with a signature the receiver verifies."""
    defaults = Settings(redis_url="redis://unused")
    async with Client(f"http://127.0.0.1:{defaults.port}", tenant["api_key"]) as client:
        job = await client.submit("demo.echo", {"value": value}, callback_url=receiver.url())
        done = await client.wait(job.id, timeout=30)
        assert done.status == "succeeded"

        async def delivered() -> bool:
            return bool(receiver.by_subject[job.id] >= 1)

        await wait_until(delivered, timeout=30)
    assert receiver.forged == 0
