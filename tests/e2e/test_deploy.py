"""deploy/ as shipped: compose run service by service with exactly the environment compose
gives each (no container engine runs here), every Kubernetes manifest validated against the
Kubernetes schemas offline, and the properties operators rely on."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil
import subprocess
import sys
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
from tests.support.cluster import Roles, VerifyingReceiver
from tests.support.compose import MissingVariableError, dockerfile_env, service_environment
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
    assert {p.name for p in files} >= {"compose.yaml", "api.yaml", "worker.yaml",
                                       "dispatcher.yaml", "configmap.yaml"}  # fmt: skip
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
    assert {"Namespace", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget",
            "HorizontalPodAutoscaler", "Secret", "NetworkPolicy"} <= validated  # fmt: skip


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
        d["spec"]["scaleTargetRef"]["name"] for _, d in _k8s_documents()
        if d["kind"] == "HorizontalPodAutoscaler"
    }  # fmt: skip
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
        by_port = {port["port"]: rule.get("from") for rule in spec["ingress"]
                   for port in rule["ports"]}  # fmt: skip
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


def test_compose_puts_no_password_on_a_command_line() -> None:
    redis_service = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["redis"]
    for field in ("command", "entrypoint"):
        assert "ACCEPTD_REDIS_PASSWORD" not in json.dumps(redis_service.get(field)), field
    assert "requirepass" not in (DEPLOY / "compose.yaml").read_text()


def test_example_secret_holds_no_secret() -> None:
    [secret] = _documents(K8S / "secret.example.yaml")
    assert set(secret["stringData"].values()) == {"REPLACE_ME"}


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


def _start_valkey(tmp: Path, service: dict[str, Any], shell: dict[str, str], port: int
                  ) -> subprocess.Popen[bytes]:  # fmt: skip
    """The redis service as compose runs it: its entrypoint script (deploy/), its
    environment, the shipped redis.conf; the image's docker-entrypoint.sh stands in as a
    script that runs the packaged valkey-server on a free loopback port."""
    assert service["entrypoint"] == ["sh", "/usr/local/bin/valkey-entrypoint.sh"]
    mounts = dict(volume.split(":")[:2] for volume in service["volumes"])
    assert mounts["./valkey-entrypoint.sh"] == "/usr/local/bin/valkey-entrypoint.sh"
    assert mounts["./redis.conf"] == "/etc/valkey/redis.conf"
    shutil.copy(DEPLOY / "redis.conf", tmp / "redis.conf")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    image_entrypoint = bin_dir / "docker-entrypoint.sh"
    image_entrypoint.write_text(
        f'#!/bin/sh\nshift\nexec {valkey_binary()} "$@" --port {port} --bind 127.0.0.1\n'
    )
    image_entrypoint.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", **service_environment(service, shell),
           "VALKEY_CONF": str(tmp / "redis.conf"),
           "VALKEY_AUTH_CONF": str(tmp / "auth.conf")}  # fmt: skip
    return subprocess.Popen(
        ["sh", str(DEPLOY / "valkey-entrypoint.sh")], env=env, cwd=tmp,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


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

        image_env = dockerfile_env(DEPLOY / "Dockerfile")
        image_env["ACCEPTD_HOST"] = "127.0.0.1"  # loopback in place of the container's 0.0.0.0
        for name in ("api", "worker", "dispatcher"):
            service = compose["services"][name]
            env = {**image_env, **service_environment(service, shell)}
            env["ACCEPTD_REDIS_URL"] = env["ACCEPTD_REDIS_URL"].replace(
                "@redis:6379", f"@127.0.0.1:{port}"
            )
            roles.env = subprocess_env(**env)
            roles.start(name, *service["command"])
        defaults = Settings(redis_url="redis://unused")
        for check in (defaults.port, *(defaults.metrics_port_for(r) for r in roles.processes)):
            await wait_until(lambda check=check: healthy(check), timeout=30, interval=0.2)  # type: ignore[misc]
        for name, process in roles.processes.items():
            assert process.poll() is None, roles.log_tail(name)

        # `docker compose run --rm worker tenants create acme --json`
        creating = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "acceptd", "tenants", "create", "acme", "--json",
            env=roles.env, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(creating.communicate(), 30)
        assert creating.returncode == 0
        tenant = json.loads(out)
        receiver.secret = tenant["secret"]  # callbacks are signed with the tenant's secret
        await receiver.up()
        async with Client(f"http://127.0.0.1:{defaults.port}", tenant["api_key"]) as client:
            job = await client.submit(
                "demo.echo", {"value": "shipped"}, callback_url=receiver.url()
            )
            done = await client.wait(job.id, timeout=30)
            assert done.status == "succeeded"

            async def delivered() -> bool:
                return receiver.by_subject[job.id] >= 1

            await wait_until(delivered, timeout=30)
        assert receiver.forged == 0
    finally:
        roles.stop_all()
        await receiver.down()
        valkey.terminate()
        await asyncio.to_thread(valkey.wait, 10)
