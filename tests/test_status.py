"""`sovcloud status` against a local fake Kubernetes API server: the real `kubernetes` client runs end to end over
HTTP, reading JSON shaped like real API responses."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from click.testing import CliRunner

from sovcloud.cli import main
from sovcloud.keys import GUARDRAILS
from tests.conftest import REPO

TOKEN = "test-token"


def node(name: str, pool: str | None, product: str, gpus: int, extra: dict[str, str] | None = None) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name, "nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": product,
              **(extra or {})}
    if pool:
        labels["sovcloud.kr/pool"] = pool
    return {"metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "1", "labels": labels},
            "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
            "status": {"capacity": {"cpu": "128", "memory": "2Ti", "nvidia.com/gpu": str(gpus)},
                       "allocatable": {"cpu": "126", "memory": "2000Gi", "nvidia.com/gpu": str(gpus)},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def cluster_state() -> dict[str, Any]:
    nodes = [node(f"gj-h100-{i:03d}", "h100-a", "NVIDIA-H100-80GB-HBM3", 8) for i in range(1, 32)]  # 31 of 32
    nodes.append(node("gj-h100-032", "h100-a", "NVIDIA-H200", 8))  # wrong hardware in the pool
    nodes += [node(f"gj-h100-{i:03d}", "h100-mig", "NVIDIA-H100-80GB-HBM3", 0,
                   {"nvidia.com/mig.config": "all-balanced", "nvidia.com/mig.config.state": "success"})
              for i in (33, 34)]
    nodes += [node(f"gj-l40s-{i:02d}", "l40s-infer", "NVIDIA-L40S-SHARED", 16) for i in range(1, 17)]
    for untainted in nodes[-2:]:  # two static nodes registered without the GPU taint, one with another taint only
        untainted["spec"] = {}
    nodes[-2]["spec"] = {"taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]}
    nodes.append(node("gj-spare-01", None, "NVIDIA-H100-80GB-HBM3", 8))  # a GPU node nobody labelled
    nodes.append({"metadata": {"name": "gj-cpu-01", "labels": {"kubernetes.io/hostname": "gj-cpu-01"}},
                  "status": {"allocatable": {"cpu": "64"}}})
    quotas = [{"metadata": {"name": "sovcloud-quota", "namespace": "hanbit-llm-lab", "resourceVersion": "7"},
               "spec": {"hard": {"requests.nvidia.com/gpu": "96"}},
               "status": {"hard": {"requests.nvidia.com/gpu": "96"}, "used": {"requests.nvidia.com/gpu": "72"}}},
              {"metadata": {"name": "sovcloud-quota", "namespace": "city-traffic-twin", "resourceVersion": "8"},
               "spec": {"hard": {"requests.nvidia.com/gpu": "192"}},
               "status": {"hard": {"requests.nvidia.com/gpu": "192"}, "used": {"requests.nvidia.com/gpu": "0"}}}]
    queues = [{"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue",
               "metadata": {"name": "hanbit-llm-lab", "resourceVersion": "3"},
               "spec": {"cohortName": "rdc-gwangju"},
               "status": {"admittedWorkloads": 3, "flavorsUsage": [{"name": "h100-a", "resources": [
                   {"name": "cpu", "total": "100", "borrowed": "0"},
                   {"name": "nvidia.com/gpu", "total": "72", "borrowed": "8"}]}]}}]
    return {"/api/v1/nodes": {"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "10"},
                              "items": nodes},
            "/api/v1/resourcequotas": {"kind": "ResourceQuotaList", "apiVersion": "v1",
                                       "metadata": {"resourceVersion": "10"}, "items": quotas},
            "/apis/kueue.x-k8s.io/v1beta2/clusterqueues": {"kind": "ClusterQueueList",
                                                           "apiVersion": "kueue.x-k8s.io/v1beta2",
                                                           "metadata": {"resourceVersion": "10"}, "items": queues},
            # the admission guardrails sovcloud deploys, as the API server lists them
            "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies": {
                "kind": "ValidatingAdmissionPolicyList", "apiVersion": "admissionregistration.k8s.io/v1",
                "metadata": {"resourceVersion": "10"},
                "items": [{"metadata": {"name": g}, "spec": {"failurePolicy": "Fail"}} for g in GUARDRAILS]},
            "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings": {
                "kind": "ValidatingAdmissionPolicyBindingList", "apiVersion": "admissionregistration.k8s.io/v1",
                "metadata": {"resourceVersion": "10"},
                "items": [{"metadata": {"name": g}, "spec": {"policyName": g, "validationActions": ["Deny"]}}
                          for g in GUARDRAILS]},
            # the GPU operator's driver pods (read for nvidia_peermem where the region has a fabric)
            "/api/v1/namespaces/gpu-operator/pods": {"kind": "PodList", "apiVersion": "v1",
                                                     "metadata": {"resourceVersion": "10"}, "items": []},
            "/apis/scheduling.k8s.io/v1/priorityclasses": {
                "kind": "PriorityClassList", "apiVersion": "scheduling.k8s.io/v1",
                "metadata": {"resourceVersion": "10"},
                "items": [{"metadata": {"name": "system-node-critical"}, "value": 2000001000}]},
            # rdc-gwangju's declared prerequisite: the driver's package sources, kept by the centre
            "/api/v1/namespaces/gpu-operator/configmaps/os-package-mirror": {
                "kind": "ConfigMap", "apiVersion": "v1",
                "metadata": {"name": "os-package-mirror", "namespace": "gpu-operator", "resourceVersion": "4"},
                "data": {"ubuntu-mirror.list": "deb http://mirror.gwangju.example.kr/ubuntu noble main"}}}


class FakeApi(BaseHTTPRequestHandler):
    state: ClassVar[dict[str, Any]] = {}
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.requests.append(path)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "Unauthorized",
                             "reason": "Unauthorized", "code": 401})
        elif path in self.state:
            self._send(200, self.state[path])
        else:
            self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                             "code": 404})

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def api_server(state: dict[str, Any]) -> Iterator[str]:
    """The fake API server on loopback, answering ``state``; yields its URL."""
    FakeApi.state, FakeApi.requests = state, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def api() -> Iterator[str]:
    with api_server(cluster_state()) as url:
        yield url


def kubeconfig(tmp_path: Path, server: str, token: str = TOKEN) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "gwangju",
        "clusters": [{"name": "gwangju", "cluster": {"server": server}}],
        "users": [{"name": "ops", "user": {"token": token}}],
        "contexts": [{"name": "gwangju", "context": {"cluster": "gwangju", "user": "ops"}}]}))
    return path


def status(*args: str):
    return CliRunner().invoke(main, ["status", "rdc-gwangju", "--root", str(REPO), *args], catch_exceptions=False)


def test_status_compares_live_nodes_with_declared_pools(api: str, tmp_path: Path) -> None:
    result = status("--kubeconfig", str(kubeconfig(tmp_path, api)), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    pools = {p["pool"]: p for p in data["pools"]}
    assert (pools["h100-a"]["nodes"], pools["h100-a"]["declaredNodes"], pools["h100-a"]["gpuAllocatable"]) == (
        32, 32, 256)
    assert pools["h100-a"]["products"] == ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H200"]
    assert pools["h100-mig"]["migConfigState"] == ["success"]
    assert pools["l40s-infer"]["gpuAllocatable"] == 256  # 16 nodes x 4 GPUs x 4 time-slicing replicas
    assert sorted(data["problems"]) == sorted([
        "pool h100-a: gj-h100-032 report nvidia.com/gpu.product=NVIDIA-H200, the pool declares NVIDIA-H100-80GB-HBM3 "
        "(H100)",
        "GPU node gj-spare-01 has no sovcloud.kr/pool label",
        "pool l40s-infer: 2 node(s) without the taint nvidia.com/gpu=present:NoSchedule, so pods that ask for no GPU "
        "can land there: gj-l40s-15, gj-l40s-16 (register them with it: kubelet registerWithTaints)",
        "tenant nuri-teaching: no ResourceQuota in its namespace", "tenant nuri-teaching: no ClusterQueue",
        "tenant pixelforge: no ResourceQuota in its namespace", "tenant pixelforge: no ClusterQueue",
        "tenant city-traffic-twin: no ClusterQueue"])
    assert set(FakeApi.requests) == {"/api/v1/nodes", "/api/v1/resourcequotas",
                                     "/apis/kueue.x-k8s.io/v1beta2/clusterqueues",
                                     "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies",
                                     "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings",
                                     "/apis/scheduling.k8s.io/v1/priorityclasses",
                                     "/api/v1/namespaces/gpu-operator/configmaps/os-package-mirror"}


def test_status_reports_quota_and_queue_usage(api: str, tmp_path: Path) -> None:
    data = json.loads(status("--kubeconfig", str(kubeconfig(tmp_path, api)), "--format", "json").stdout)
    hanbit = next(t for t in data["tenants"] if t["tenant"] == "hanbit-llm-lab")
    assert hanbit == {"tenant": "hanbit-llm-lab", "declaredGuaranteed": 64, "declaredBorrowable": 32,
                      "quotaHard": 96, "quotaUsed": 72, "queueAdmitted": 72, "queueBorrowed": 8}


def test_pool_short_of_nodes_is_reported(api: str, tmp_path: Path) -> None:
    FakeApi.state["/api/v1/nodes"]["items"] = [
        n for n in FakeApi.state["/api/v1/nodes"]["items"] if n["metadata"]["name"] != "gj-l40s-16"]
    result = status("--kubeconfig", str(kubeconfig(tmp_path, api)))
    assert result.exit_code == 0
    assert "pool l40s-infer: 15 of 16 declared nodes present" in result.output
    assert "h100-a" in result.output  # the table


def test_bad_credentials_are_one_clear_line(api: str, tmp_path: Path) -> None:
    result = status("--kubeconfig", str(kubeconfig(tmp_path, api, token="wrong")))
    assert result.exit_code == 1
    assert [ln for ln in result.output.splitlines() if ln] == [
        f"error: {api}: the API server refused the request: 401 credentials rejected"]


def test_unreachable_cluster_is_one_clear_line(tmp_path: Path) -> None:
    result = status("--kubeconfig", str(kubeconfig(tmp_path, "http://127.0.0.1:9")))
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln]
    assert lines == ["error: http://127.0.0.1:9: cannot reach the API server: connection refused"]


def test_fail_on_mismatch_exits_1_when_the_cluster_differs(api: str, tmp_path: Path) -> None:
    assert status("--kubeconfig", str(kubeconfig(tmp_path, api))).exit_code == 0  # reported, not failed
    result = status("--kubeconfig", str(kubeconfig(tmp_path, api)), "--fail-on-mismatch", "--format", "json")
    assert result.exit_code == 1 and json.loads(result.stdout)["problems"]


def test_nodes_of_a_topology_aware_pool_without_the_clique_label_are_reported(api: str, tmp_path: Path) -> None:
    # Ulsan's GB200 pool schedules on nvidia.com/gpu.clique: a tray GFD did not label is invisible to Kueue's TAS
    trays = [node(f"ul-gb200-{i:03d}", "gb200-nvl72", "NVIDIA-GB200", 4,
                  {"nvidia.com/gpu.clique": f"7f6c.{i // 18}"} if i > 2 else None) for i in range(1, 145)]
    FakeApi.state["/api/v1/nodes"]["items"] = trays
    result = CliRunner().invoke(main, ["status", "rdc-ulsan", "--root", str(REPO), "--format", "json",
                                       "--kubeconfig", str(kubeconfig(tmp_path, api))], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    problems = json.loads(result.stdout)["problems"]
    assert ("pool gb200-nvl72: 2 node(s) lack a label of topology nvlink (nvidia.com/gpu.clique, "
            "kubernetes.io/hostname), so Kueue's topology-aware flavor does not count them: ul-gb200-001, "
            "ul-gb200-002") in problems
    assert not [p for p in problems if p.startswith("pool gb200-nvl72: ") and "declared nodes" in p]
    # the racks' fabric: trays with no RDMA device and no driver pod with nvidia_peermem are named, one line each
    assert "pool gb200-nvl72: node ul-gb200-001 has no rdma/ib allocatable (infiniband HCAs down, the device plugin " \
           "not running)" in problems
    assert "pool gb200-nvl72: node ul-gb200-001 has no nvidia_peermem loaded (its GPU driver pod's " \
           "nvidia-peermem-ctr is not ready): GPUDirect RDMA copies through host memory" in problems
    assert "/api/v1/namespaces/gpu-operator/pods" in FakeApi.requests


def test_status_reports_declared_prerequisites_the_cluster_lacks(api: str, tmp_path: Path, tree) -> None:
    del FakeApi.state["/api/v1/namespaces/gpu-operator/configmaps/os-package-mirror"]
    tree.edit_region("rdc-gwangju", lambda r: r["prerequisites"].update(prometheusOperator=True))
    result = CliRunner().invoke(main, ["status", "rdc-gwangju", "--root", str(tree.root), "--kubeconfig",
                                       str(kubeconfig(tmp_path, api)), "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    problems = json.loads(result.stdout)["problems"]
    assert problems[:2] == [
        "prerequisites.prometheusOperator: CRD servicemonitors.monitoring.coreos.com is not installed, so the kinds "
        "sovcloud relies on are not served",
        "prerequisites.configMaps: ConfigMap gpu-operator/os-package-mirror does not exist (the GPU operator waits "
        "for it)"]
    assert "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/servicemonitors.monitoring.coreos.com" in \
        FakeApi.requests


# hardening: whatever the kubeconfig or the server holds, one line and exit 1, never a traceback or a hang

@pytest.mark.parametrize(("content", "text"), [
    ("clusters: [unclosed\n", "not valid YAML line"),
    ("clusters: !!python/object/apply:os.system ['true']\n", "not valid YAML line 1"),
    ("- just\n- a list\n", "cannot use kubeconfig"),
])
def test_a_broken_kubeconfig_is_one_line(tmp_path: Path, content: str, text: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(content)
    result = status("--kubeconfig", str(path))
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot use kubeconfig {path}") and text in lines[0]


class OddApi(BaseHTTPRequestHandler):
    body: ClassVar[tuple[str, bytes]] = ("application/json", b"{}")
    drip: ClassVar[bool] = False

    def do_GET(self) -> None:
        kind, data = self.body
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        for i in range(len(data)):
            self.wfile.write(data[i:i + 1])
            self.wfile.flush()
            if self.drip:
                import time
                time.sleep(0.5)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def odd_server(kind: str, data: bytes, drip: bool = False) -> Iterator[str]:
    OddApi.body, OddApi.drip = (kind, data), drip
    server = ThreadingHTTPServer(("127.0.0.1", 0), OddApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("kind", "data"), [
    ("application/json", b"{}"),
    ("text/html", b"<html><body>Sign in to the proxy</body></html>"),
    ("application/json", b'{"kind": "NodeList", "apiVersion": "v1", "items": "nodes"}'),
])
def test_an_answer_that_is_not_the_kubernetes_api_is_one_line(tmp_path: Path, kind: str, data: bytes) -> None:
    with odd_server(kind, data) as url:
        result = status("--kubeconfig", str(kubeconfig(tmp_path, url)))
    assert result.exit_code == 1
    assert [ln for ln in result.output.splitlines() if ln] == [
        f"error: {url}: the answer is not a Kubernetes API response; is the kubeconfig's server the API server (not "
        "a proxy's sign-in page)?"]


def test_a_node_without_metadata_is_not_counted_and_does_not_crash(api: str, tmp_path: Path) -> None:
    FakeApi.state["/api/v1/nodes"]["items"].append({"metadata": None, "status": None})
    result = status("--kubeconfig", str(kubeconfig(tmp_path, api)), "--format", "json")
    assert result.exit_code == 0, result.output
    pools = {p["pool"]: p for p in json.loads(result.stdout)["pools"]}
    assert pools["h100-a"]["nodes"] == 32


def test_a_server_that_drips_bytes_is_cut_off_by_the_deadline(tmp_path: Path) -> None:
    body = json.dumps({"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": []}).encode()
    with odd_server("application/json", body, drip=True) as url:
        result = status("--kubeconfig", str(kubeconfig(tmp_path, url)), "--timeout", "2")
    assert result.exit_code == 1
    assert [ln for ln in result.output.splitlines() if ln] == [
        "error: rdc-gwangju: the cluster did not answer in full within 2 s (--timeout)"]


def test_guardrails_missing_from_the_cluster_are_reported(api: str, tmp_path: Path) -> None:
    policies = FakeApi.state["/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"]["items"]
    policies[:] = [p for p in policies if p["metadata"]["name"] != "sovcloud-tenant-images"]
    bindings = FakeApi.state["/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"]["items"]
    next(b for b in bindings if b["metadata"]["name"] == "sovcloud-tenant-role-bindings")["spec"][
        "validationActions"] = ["Audit"]
    problems = json.loads(status("--kubeconfig", str(kubeconfig(tmp_path, api)), "--format", "json").stdout)[
        "problems"]
    assert [p for p in problems if p.startswith("guardrail")] == [
        "guardrail sovcloud-tenant-images: no ValidatingAdmissionPolicy in the cluster",
        "guardrail sovcloud-tenant-role-bindings: its binding's validationActions are Audit, the region's config "
        "says Deny"]


def test_a_cluster_without_admission_policies_is_reported(api: str, tmp_path: Path) -> None:
    del FakeApi.state["/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"]
    problems = json.loads(status("--kubeconfig", str(kubeconfig(tmp_path, api)), "--format", "json").stdout)[
        "problems"]
    assert "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicies are not served (Kubernetes 1.30 or newer): " \
           "the tenant guardrails cannot hold" in problems


def test_names_from_the_server_are_never_markup_or_terminal_escapes(api: str, tmp_path: Path) -> None:
    odd = node("gj-h100-033", "h100-a", "NVIDIA-H100-80GB-HBM3", 8)
    odd["metadata"]["labels"]["nvidia.com/gpu.product"] = "[red]H200\x1b[2K"
    FakeApi.state["/api/v1/nodes"]["items"].append(odd)
    result = status("--kubeconfig", str(kubeconfig(tmp_path, api)))
    assert result.exit_code == 0
    assert "\x1b" not in result.output
    assert ("gj-h100-033 report nvidia.com/gpu.product=[red]H200\\x1b[2K, the pool declares "
            "NVIDIA-H100-80GB-HBM3") in result.output.replace("\n", "")


def test_a_global_default_priority_class_the_guardrails_would_refuse_is_reported(api: str, tmp_path: Path) -> None:
    FakeApi.state["/apis/scheduling.k8s.io/v1/priorityclasses"]["items"].append(
        {"metadata": {"name": "batch-default"}, "value": 1000, "globalDefault": True})
    problems = json.loads(status("--kubeconfig", str(kubeconfig(tmp_path, api)), "--format", "json").stdout)[
        "problems"]
    assert [p for p in problems if p.startswith("PriorityClass")] == [
        "PriorityClass batch-default is the cluster's globalDefault: it is written into every tenant pod and workload "
        "that names none, and the priority guardrails refuse them (list it in guardrails.podPriorityClasses)"]
