"""`sovcloud status REGION`: what a live cluster reports, compared with the declared config.

Reads nodes, tenant ResourceQuotas and Kueue ClusterQueues with the official `kubernetes` client: nodes per pool
(GPU allocatable, GFD product, MIG config state), pools short of their declared nodes, GPU nodes without pool
labels, product labels that do not match the pool's model, quota and queue usage per tenant, and declared
prerequisites the cluster lacks (an operator's CRD, a ConfigMap or Secret the centre keeps).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from components import labels as L
from sovcloud.config.model import Config, Region
from sovcloud.keys import GPU_OPERATOR_NAMESPACE, GUARDRAILS

KUEUE = ("kueue.x-k8s.io", "v1beta2", "clusterqueues")
# A CRD whose presence shows each declared prerequisite is installed (the kinds sovcloud's objects rely on).
PREREQUISITE_CRDS = {"prometheusOperator": "servicemonitors.monitoring.coreos.com",
                     "certManager": "certificates.cert-manager.io"}
GPU_PRESENT = ("nvidia.com/gpu.present", "feature.node.kubernetes.io/pci-10de.present")


class ClusterUnreachable(Exception):
    pass


def _api(kubeconfig: Path | None, context: str | None) -> Any:
    import urllib3
    from kubernetes import client

    # a kubeconfig with insecure-skip-tls-verify would print a warning per request: the choice was the user's
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    import yaml
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException

    try:
        api_client = kube_config.new_client_from_config(config_file=str(kubeconfig) if kubeconfig else None,
                                                         context=context)
    except yaml.YAMLError as exc:
        # the client reads it with yaml.safe_load: a !!python tag is refused there, never run
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ClusterUnreachable(f"cannot use kubeconfig {kubeconfig or '(default)'}: not valid YAML{where} "
                                 f"({getattr(exc, 'problem', None) or type(exc).__name__})") from None
    except (ConfigException, OSError, TypeError, ValueError, AttributeError, KeyError) as exc:
        # the client walks the file as it finds it: a list where a mapping belongs is a TypeError/AttributeError
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise ClusterUnreachable(f"cannot use kubeconfig {kubeconfig or '(default)'}: {text}") from None
    # no urllib3 retries: a server that never answers is reported at once, and the command's --timeout bounds all
    api_client.rest_client.pool_manager.connection_pool_kw["retries"] = False
    return client, api_client


def cause(exc: BaseException) -> str:
    """Why a connection failed, in a few words (urllib3 wraps the cause: a retry error around a connection error
    around the socket's)."""
    seen = exc
    while getattr(seen, "reason", None) is not None and isinstance(seen.reason, BaseException):
        seen = seen.reason
    text = str(seen).lower()
    for needle, words in (("refused", "connection refused"), ("timed out", "timed out"),
                          ("name or service not known", "unknown host"), ("nodename nor servname", "unknown host"),
                          ("certificate", "TLS certificate not trusted"), ("no route", "no route to host")):
        if needle in text:
            return words
    return type(seen).__name__


def _quantity(value: Any) -> int:
    from kubernetes.utils.quantity import parse_quantity

    try:
        return int(parse_quantity(str(value)))
    except (ValueError, TypeError):
        return 0


def _some(names: list[str], shown: int = 5) -> str:
    """The first few of a sorted list of node names, and how many more."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _missing_prerequisites(client: Any, api_client: Any, region: Region) -> list[str]:
    """The declared prerequisites the cluster lacks: a CRD of each declared operator, each declared ConfigMap and
    Secret."""
    pre = region.prerequisites
    ext, core = client.ApiextensionsV1Api(api_client), client.CoreV1Api(api_client)
    checks: list[tuple[str, Any]] = [
        (f"prerequisites.{name}: CRD {crd} is not installed, so the kinds sovcloud relies on are not served",
         lambda crd=crd: ext.read_custom_resource_definition(crd, _request_timeout=15))
        for name, crd in PREREQUISITE_CRDS.items() if getattr(pre, _snake(name))]
    for ref in pre.config_maps:
        ns, _, name = ref.partition("/")
        checks.append((f"prerequisites.configMaps: ConfigMap {ref} does not exist (the GPU operator waits for it)",
                       lambda ns=ns, name=name: core.read_namespaced_config_map(name, ns, _request_timeout=15)))
    for ref in pre.secrets:
        ns, _, name = ref.partition("/")
        checks.append((f"prerequisites.secrets: Secret {ref} does not exist",
                       lambda ns=ns, name=name: core.read_namespaced_secret(name, ns, _request_timeout=15)))
    out = []
    for problem, read in checks:
        try:
            read()
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            out.append(problem)
    return out


def _missing_guardrails(client: Any, api_client: Any, region: Region) -> list[str]:
    """The admission guardrails (policy and binding, by name) the cluster does not hold as the region's config
    says (a binding that audits where the config denies is a gap)."""
    adm = client.AdmissionregistrationV1Api(api_client)
    try:
        policies = {p.metadata.name for p in adm.list_validating_admission_policy(_request_timeout=15).items}
        bindings: dict[str, list[list[str]]] = {}
        for b in adm.list_validating_admission_policy_binding(_request_timeout=15).items:
            if b.spec is not None:
                bindings.setdefault(b.spec.policy_name, []).append(sorted(b.spec.validation_actions or []))
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        return ["admissionregistration.k8s.io/v1 ValidatingAdmissionPolicies are not served (Kubernetes 1.30 or "
                "newer): the tenant guardrails cannot hold"]
    out = []
    # a globalDefault PriorityClass is written into every pod that names none (the Priority admission plugin) and
    # Kueue gives it to every workload that names none: unlisted, the priority guardrails refuse them all
    try:
        classes = client.SchedulingV1Api(api_client).list_priority_class(_request_timeout=15).items
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        classes = []
    for pc in classes:
        name = pc.metadata.name if pc.metadata is not None else None
        if pc.global_default and name and name not in region.guardrails.pod_priority_classes:
            out.append(f"PriorityClass {name} is the cluster's globalDefault: it is written into every tenant pod "
                       "and workload that names none, and the priority guardrails refuse them (list it in "
                       "guardrails.podPriorityClasses)")
    for name in GUARDRAILS:
        want = sorted(region.guardrails.validation_actions(name))
        if name not in policies:
            out.append(f"guardrail {name}: no ValidatingAdmissionPolicy in the cluster")
        elif name not in bindings:
            out.append(f"guardrail {name}: no ValidatingAdmissionPolicyBinding in the cluster")
        elif want not in bindings[name]:
            out.append(f"guardrail {name}: its binding's validationActions are "
                       f"{', '.join('/'.join(a) or 'none' for a in bindings[name])}, the region's config says "
                       f"{'/'.join(want)}")
    return out


# The Network Operator's node label: "true" until the DOCA driver container is ready on the node (its device
# plugins wait for "false"; docs/heterogeneous-cluster-support.md at v26.4.1)
DRIVER_WAIT = "network.nvidia.com/operator.mofed.wait"


# The GPU operator's driver pods and their GPUDirect RDMA sidecar, whose startup and liveness probes run
# `nvidia-driver probe_nvidia_peermem` (assets/state-driver/0500_daemonset.yaml, v25.10.1 and v26.3.3)
DRIVER_PODS = "app=nvidia-driver-daemonset"
PEERMEM_CONTAINER = "nvidia-peermem-ctr"


def _peermem_ready(client: Any, api_client: Any) -> dict[str, bool]:
    """Per node, whether its GPU driver pod's nvidia-peermem container is ready (the module loaded)."""
    pods = client.CoreV1Api(api_client).list_namespaced_pod(GPU_OPERATOR_NAMESPACE, label_selector=DRIVER_PODS,
                                                           _request_timeout=15).items
    out: dict[str, bool] = {}
    for pod in pods:
        node = pod.spec.node_name if pod.spec is not None else None
        if node:
            statuses = (pod.status.container_statuses if pod.status is not None else None) or []
            out[node] = out.get(node, False) or any(c.name == PEERMEM_CONTAINER and c.ready for c in statuses)
    return out


def _fabric_problems(pool: Any, nodes: list[Any], driver: str, peermem: dict[str, bool] | None = None) -> list[str]:
    """A fabric pool's nodes that cannot give pods RDMA: the device plugin advertises none of a rail's resource
    (HCAs down, VFs not configured, the plugin not running), the DOCA driver container is not ready, or GPUDirect
    RDMA's nvidia_peermem module is not loaded (``peermem``: per node, its driver pod's sidecar ready)."""
    f = pool.fabric
    out = []
    for n in sorted(nodes, key=lambda n: n.metadata.name):
        if peermem is not None and not peermem.get(n.metadata.name, False):
            out.append(f"pool {pool.name}: node {n.metadata.name} has no nvidia_peermem loaded (its GPU driver pod's "
                       f"{PEERMEM_CONTAINER} is not ready): GPUDirect RDMA copies through host memory")
        missing = [r for r in f.resources if _quantity((n.status.allocatable or {}).get(r, 0)) <= 0]
        if missing:
            why = "VFs not configured on those ports, " if f.rdma == "sriov" else ""
            out.append(f"pool {pool.name}: node {n.metadata.name} has no {', '.join(missing)} allocatable ({f.kind} "
                       f"HCAs down, {why}the device plugin not running)")
        if driver == "container" and (n.metadata.labels or {}).get(DRIVER_WAIT) == "true":
            out.append(f"pool {pool.name}: node {n.metadata.name} waits for the DOCA driver container ({DRIVER_WAIT})")
    return out


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def collect(region: Region, cfg: Config, kubeconfig: Path | None, context: str | None,
            day: dt.date) -> dict[str, Any]:
    """Read the cluster and compare; raises ClusterUnreachable with one line on connection or auth failure."""
    from urllib3.exceptions import HTTPError

    client, api_client = _api(kubeconfig, context)
    server = api_client.configuration.host
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    try:
        nodes = core.list_node(_request_timeout=15).items
        quotas = core.list_resource_quota_for_all_namespaces(_request_timeout=15).items
        try:
            queues = custom.list_cluster_custom_object(*KUEUE, _request_timeout=15).get("items", [])
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            queues = []  # Kueue not installed (yet)
        missing = _missing_prerequisites(client, api_client, region) + _missing_guardrails(client, api_client, region)
        peermem = _peermem_ready(client, api_client) if region.fabric and region.gpu_operator.rdma else None
    except client.ApiException as exc:
        reason = {401: "credentials rejected", 403: "access denied"}.get(exc.status, exc.reason)
        raise ClusterUnreachable(f"{server}: the API server refused the request: {exc.status} {reason}") from None
    except (HTTPError, OSError) as exc:
        raise ClusterUnreachable(f"{server}: cannot reach the API server: {cause(exc)}") from None
    except (ValueError, TypeError, AttributeError, KeyError):
        # 200 with {} (a list without items), HTML from a proxy, or a body of the wrong shape
        raise ClusterUnreachable(f"{server}: the answer is not a Kubernetes API response; is the kubeconfig's "
                                 "server the API server (not a proxy's sign-in page)?") from None
    finally:
        api_client.close()
    if not isinstance(queues, list):
        queues = []
    # a node without metadata or status (a broken or hostile answer) is not a node of any pool
    nodes = [n for n in nodes if n.metadata is not None and n.metadata.name and n.status is not None]

    strategy = region.gpu_operator.mig_strategy
    pools: list[dict[str, Any]] = []
    problems: list[str] = list(missing)
    for pool in region.pools:
        mine = [n for n in nodes if (n.metadata.labels or {}).get(L.POOL) == pool.name]
        expected_product = L.product_label(pool, strategy)
        products = sorted({(n.metadata.labels or {}).get(L.GPU_PRODUCT, "") for n in mine} - {""})
        mig_states = sorted({(n.metadata.labels or {}).get("nvidia.com/mig.config.state", "") for n in mine} - {""})
        allocatable = sum(_quantity((n.status.allocatable or {}).get(L.GPU_RESOURCE, 0)) for n in mine)
        pools.append({"pool": pool.name, "gpuModel": pool.gpu.name, "declaredNodes": pool.nodes, "nodes": len(mine),
                      "gpuAllocatable": allocatable, "products": products, "migConfigState": mig_states})
        if len(mine) < pool.nodes:
            problems.append(f"pool {pool.name}: {len(mine)} of {pool.nodes} declared nodes present")
        for p in products:
            if p != expected_product:
                odd = sorted(n.metadata.name for n in mine if (n.metadata.labels or {}).get(L.GPU_PRODUCT) == p)
                problems.append(f"pool {pool.name}: {_some(odd)} report {L.GPU_PRODUCT}={p}, the pool declares "
                                f"{expected_product} ({pool.gpu.name})")
        if "failed" in mig_states:
            problems.append(f"pool {pool.name}: MIG reconfiguration failed on some nodes (nvidia.com/mig.config.state)")
        if pool.topology is not None:
            levels = region.kueue.topologies[pool.topology]
            unplaced = sorted(n.metadata.name for n in mine if not all(k in (n.metadata.labels or {}) for k in levels))
            if unplaced:
                problems.append(f"pool {pool.name}: {len(unplaced)} node(s) lack a label of topology {pool.topology} "
                                f"({', '.join(levels)}), so Kueue's topology-aware flavor does not count them: "
                                f"{_some(unplaced)}")
        untainted = sorted(n.metadata.name for n in mine if not any(
            {"key": t.key, "value": t.value, "effect": t.effect} == L.GPU_TAINT
            for t in (n.spec.taints if n.spec else None) or []))
        if untainted:
            problems.append(f"pool {pool.name}: {len(untainted)} node(s) without the taint {L.GPU_TAINT_TEXT}, so pods "
                            f"that ask for no GPU can land there: {_some(untainted)} (register them with it: kubelet "
                            "registerWithTaints)")
        if pool.fabric is not None and region.fabric is not None:
            problems += _fabric_problems(pool, mine, region.fabric.driver, peermem)
    for n in nodes:
        node_labels = n.metadata.labels or {}
        if any(node_labels.get(k) == "true" for k in GPU_PRESENT) and not node_labels.get(L.POOL):
            problems.append(f"GPU node {n.metadata.name} has no {L.POOL} label")
    declared = {}
    for t, a in cfg.allocations_in(region.name):
        row = declared.setdefault(t.name, {"guaranteed": 0, "borrowable": 0})
        if t.holds_quota(a, day):
            row["guaranteed"] += a.gpus
            row["borrowable"] += a.borrowing_limit
    quota_use = {q.metadata.namespace: q for q in quotas if q.metadata.namespace in declared}
    queue_use = {q.get("metadata", {}).get("name"): q for q in queues}
    tenants = []
    key = f"requests.{L.GPU_RESOURCE}"
    for name, want in sorted(declared.items()):
        q = quota_use.get(name)
        hard = _quantity(((q.status.hard if q and q.status else None) or {}).get(key, 0)) if q else None
        used = _quantity(((q.status.used if q and q.status else None) or {}).get(key, 0)) if q else None
        cq = queue_use.get(name)
        admitted = borrowed = 0
        for flavor in ((cq or {}).get("status") or {}).get("flavorsUsage") or []:
            for res in flavor.get("resources") or []:
                if res.get("name") == L.GPU_RESOURCE:
                    admitted += _quantity(res.get("total", 0))
                    borrowed += _quantity(res.get("borrowed", 0))
        tenants.append({"tenant": name, "declaredGuaranteed": want["guaranteed"],
                        "declaredBorrowable": want["borrowable"], "quotaHard": hard, "quotaUsed": used,
                        "queueAdmitted": admitted if cq else None, "queueBorrowed": borrowed if cq else None})
        if q is None:
            problems.append(f"tenant {name}: no ResourceQuota in its namespace")
        if cq is None:
            problems.append(f"tenant {name}: no ClusterQueue")
    return {"region": region.name, "pools": pools, "tenants": tenants, "problems": problems}
