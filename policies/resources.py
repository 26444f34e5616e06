"""Reading the stack's resources as the policy engine hands them over: props of Kubernetes objects and releases.

Rules use these helpers and nothing else: they know what a Kubernetes object looks like, not which component made
it. Works on ``PolicyResource`` objects and on anything with ``resource_type``, ``props`` and ``urn``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from sovcloud import allocation, keys
from sovcloud.config.model import CLASSIFICATIONS  # noqa: F401
from sovcloud.keys import (  # noqa: F401 (the keys rules read, re-exported for them)
    ALLOCATIONS,
    CLASSIFICATION,
    FABRIC_SEGMENT,
    GPU_PRODUCT_ANNOTATION,
    GPUS,
    GUARDRAILS,
    OWNER,
    POOL,
    REGION,
    RETAIN,
    SECTOR,
    TENANT,
)

GPU = keys.GPU_RESOURCE
MIG_LABEL = keys.MIG_CONFIG
DEVICE_PLUGIN_LABEL = keys.DEVICE_PLUGIN_CONFIG

RELEASE = "kubernetes:helm.sh/v3:Release"


class Resource(Protocol):
    resource_type: str
    props: Mapping[str, Any]
    urn: str


def is_object(resource_type: str) -> bool:
    """A Kubernetes object (not a provider, not a Helm release)."""
    return resource_type.startswith("kubernetes:") and resource_type != RELEASE


def kind(r: Resource) -> str:
    return str(r.props.get("kind") or "")


def meta(r: Resource) -> Mapping[str, Any]:
    return r.props.get("metadata") or {}


def labels(r: Resource) -> Mapping[str, str]:
    return meta(r).get("labels") or {}


def annotations(r: Resource) -> Mapping[str, str]:
    return meta(r).get("annotations") or {}


def name(r: Resource) -> str:
    return str(meta(r).get("name") or "")


def objects(resources: Iterable[Resource], *kinds: str) -> Iterator[Resource]:
    for r in resources:
        if is_object(r.resource_type) and (not kinds or kind(r) in kinds):
            yield r


def tenant_namespaces(resources: Iterable[Resource]) -> dict[str, Resource]:
    """Namespaces that belong to a tenant (labelled with it), by name."""
    return {name(r): r for r in objects(resources, "Namespace") if labels(r).get(TENANT)}


def releases(resources: Iterable[Resource]) -> Iterator[Resource]:
    return (r for r in resources if r.resource_type == RELEASE)


def release_chart(r: Resource) -> str:
    """The chart's name, also when the chart is given as an oci:// reference."""
    return str(r.props.get("chart") or "").rstrip("/").rsplit("/", 1)[-1]


def _parse_labels(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(",") if "=" in item)


def pool_nodes(resources: Iterable[Resource]) -> dict[str, list[tuple[Resource, int, dict[str, str]]]]:
    """Per pool: (resource, GPUs it always brings, node labels) for each MachineDeployment and static-node patch.

    An autoscaled MachineDeployment counts at its autoscaler minimum: nodes above it may be scaled away, so they
    cannot back a guarantee."""
    out: dict[str, list[tuple[Resource, int, dict[str, str]]]] = {}
    for r in objects(resources, "MachineDeployment", "Node"):
        pool = labels(r).get(POOL)
        if not pool:
            continue
        if kind(r) == "MachineDeployment":
            ann = annotations(r)
            per_node = int(ann.get("capacity.cluster-autoscaler.kubernetes.io/gpu-count", 0) or 0)
            replicas = (r.props.get("spec") or {}).get("replicas")
            minimum = ann.get("cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size")
            if minimum is not None and str(minimum).isdigit():
                # the autoscaler owns the size (replicas unset, or whatever it decided): count its minimum
                replicas = int(minimum) if replicas is None else min(int(replicas), int(minimum))
            replicas = int(replicas or 0)
            node_labels = _parse_labels(ann.get("capacity.cluster-autoscaler.kubernetes.io/labels", ""))
            out.setdefault(pool, []).append((r, per_node * replicas, node_labels))
        else:
            out.setdefault(pool, []).append((r, int(annotations(r).get(GPUS, 0) or 0), dict(labels(r))))
    return out


def pool_anchors(resources: Iterable[Resource]) -> dict[str, str]:
    """Per pool, the URN a stack-level finding about the pool points at: its first node-pool resource (so the engine
    shows the resource, and ``sovcloud check`` the pool's entry in the region file)."""
    return {pool: nodes[0][0].urn for pool, nodes in pool_nodes(resources).items()}


def tenant_anchors(resources: Iterable[Resource]) -> dict[str, str]:
    """Per tenant, the URN a stack-level finding about the tenant points at: its namespace."""
    return {labels(ns)[TENANT]: ns.urn for ns in tenant_namespaces(resources).values()}


def pool_capacity(resources: Iterable[Resource]) -> dict[str, int]:
    """Physical GPUs per pool, from the node-pool resources themselves."""
    return {pool: sum(g for _, g, _ in nodes) for pool, nodes in pool_nodes(resources).items()}


def pool_label(resources: Iterable[Resource], label: str) -> dict[str, str]:
    """A node label per pool (e.g. the MIG or device-plugin config name), read from the pool's node resources."""
    out: dict[str, str] = {}
    for pool, nodes in pool_nodes(resources).items():
        for _, _, node_labels in nodes:
            if label in node_labels:
                out[pool] = node_labels[label]
    return out


def configmap_data(resources: Iterable[Resource], cm_name: str) -> Mapping[str, str]:
    for r in objects(resources, "ConfigMap"):
        if name(r) == cm_name:
            return r.props.get("data") or {}
    return {}


def operator_config_data(resources: Iterable[Resource], operand: str) -> Mapping[str, str]:
    """The data of the ConfigMap the gpu-operator release names for ``operand`` (``migManager``, ``devicePlugin``)
    in ``values.<operand>.config.name``; empty when there is none."""
    resources = list(resources)
    cm_name = ""
    for rel in releases(resources):
        if release_chart(rel) == "gpu-operator":
            cm_name = (((rel.props.get("values") or {}).get(operand) or {}).get("config") or {}).get("name", "")
    return configmap_data(resources, cm_name) if cm_name else {}


def base_product(product: str) -> str:
    """The GPU's product name without GFD's sharing suffixes (``-SHARED``, ``-MIG-<profile>``)."""
    return re.sub(r"(-SHARED|-MIG-.*)$", "", product)


def time_slicing_replicas(resources: list[Resource]) -> dict[str, int]:
    """Replicas per time-sliced pool: the pool's device-plugin config label, resolved in the device-plugin
    ConfigMap the GPU operator release points at."""
    data = operator_config_data(resources, "devicePlugin")
    out: dict[str, int] = {}
    for pool, config_name in pool_label(resources, DEVICE_PLUGIN_LABEL).items():
        parsed = yaml.safe_load(data.get(config_name, "") or "{}") or {}
        for res in ((parsed.get("sharing") or {}).get("timeSlicing") or {}).get("resources") or []:
            if res.get("name") == GPU:
                out[pool] = int(res.get("replicas", 1))
    return out


def queue_flavors(cq: Resource) -> Iterator[tuple[str, dict[str, Any]]]:
    """(flavor name, {resource name: {nominalQuota, borrowingLimit}}) of a ClusterQueue."""
    for group in (cq.props.get("spec") or {}).get("resourceGroups") or []:
        for flavor in group.get("flavors") or []:
            yield flavor.get("name", ""), {res.get("name"): res for res in flavor.get("resources") or []}


def guaranteed_by_pool_and_tenant(resources: list[Resource]) -> dict[tuple[str, str], int]:
    """Guaranteed physical GPUs per (pool, tenant): ClusterQueue nominal quota, time-slicing replicas divided out
    (rounded up: three slices of a GPU still occupy that GPU)."""
    replicas = time_slicing_replicas(resources)
    out: dict[tuple[str, str], int] = {}
    for cq in objects(resources, "ClusterQueue"):
        tenant = labels(cq).get(TENANT) or name(cq)
        for flavor, res in queue_flavors(cq):
            nominal = int(float((res.get(GPU) or {}).get("nominalQuota", 0) or 0))
            out[flavor, tenant] = out.get((flavor, tenant), 0) - (-nominal // replicas.get(flavor, 1))
    return out


def allocations(cq: Resource) -> list[dict[str, Any]]:
    try:
        return list(json.loads(annotations(cq).get(ALLOCATIONS, "[]")))
    except ValueError:
        return []


def walk_values(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, leaf) pairs of a Helm values tree. Lists arrive as the engine's proxies: any Sequence."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from walk_values(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for i, v in enumerate(value):
            yield from walk_values(v, f"{path}[{i}]")
    else:
        yield path, value


MIG_RESOURCE = re.compile(r"^nvidia\.com/mig-(\d+g\.\d+gb)$")


def flavor_products(resources: Iterable[Resource]) -> dict[str, str]:
    """Per ResourceFlavor (= pool): the GPU product its nodes report, without GFD's sharing suffixes."""
    return {name(rf): base_product(((rf.props.get("spec") or {}).get("nodeLabels") or {}).get(f"{GPU}.product", ""))
            for rf in objects(resources, "ResourceFlavor")}


def mig_equivalents(resources: list[Resource], models: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    """Per (pool, tenant): the MIG instances of the ClusterQueues as the GPU shares they occupy (the instance's
    compute slices over the GPU model's, from the policy's gpuModels)."""
    products = flavor_products(resources)
    out: dict[tuple[str, str], float] = {}
    for cq in objects(resources, "ClusterQueue"):
        tenant = labels(cq).get(TENANT) or name(cq)
        for pool, res in queue_flavors(cq):
            slices = int((models.get(products.get(pool, "")) or {}).get("computeSlices") or 0)
            for resource, quota in res.items():
                m = MIG_RESOURCE.match(resource or "")
                count = float(quota.get("nominalQuota", 0) or 0) if m else 0
                if count:
                    out[pool, tenant] = out.get((pool, tenant), 0) + count * allocation.mig_share(m.group(1), slices)
    return out


def figures(resources: list[Resource], models: Mapping[str, Any] | None = None,
            others: Mapping[str, Any] | None = None, **extra: Any) -> allocation.Figures:
    """The allocation rules' figures, read from the resources: pool GPUs from the node-pool resources, guarantees
    from the ClusterQueues (MIG instances as GPU shares, given the GPU models), sectors from the tenant namespaces'
    labels (``extra``: the MIG layout figures); ``others``: the policy config's ``otherTenants``, the sums of the
    region's tenants outside this stack."""
    return allocation.Figures(capacity=pool_capacity(resources), guaranteed=guaranteed_by_pool_and_tenant(resources),
                              sectors={n: labels(ns).get(SECTOR, "") for n, ns in tenant_namespaces(resources).items()},
                              mig_equivalent=mig_equivalents(resources, models) if models else {},
                              **other_tenants(others), **extra)


def other_tenants(others: Mapping[str, Any] | None) -> dict[str, Any]:
    """The Figures fields of the policy config's ``otherTenants`` (``byPool``, ``bySector``, ``mig`` keyed
    ``pool/profile``); numbers arrive as floats."""
    o = others or {}
    return {"others_by_pool": {str(k): int(float(v)) for k, v in (o.get("byPool") or {}).items()},
            "others_by_sector": {str(k): float(v) for k, v in (o.get("bySector") or {}).items()},
            "others_mig": {tuple(str(k).split("/", 1)): int(float(v)) for k, v in (o.get("mig") or {}).items()}}


@dataclass(frozen=True)
class StandIn:
    """A platform resource a tenant stack's rules read, handed over in the policy config's ``platformResources``
    (the engine gives a stack's policies that stack's resources only)."""

    resource_type: str
    props: Mapping[str, Any]
    urn: str
    name: str


def with_region(rule: Any) -> Any:
    """A stack rule that judges the region, run on this stack's resources plus the platform resources its policy
    config carries (``platformResources``: empty in the platform stack itself)."""
    import functools

    @functools.wraps(rule)
    def run(args: Any, report_violation: Any) -> None:
        given = args.get_config().get("platformResources") or []
        if not given:
            rule(args, report_violation)
            return
        view = _RegionView(args, [StandIn(str(r.get("type", "")), r.get("props") or {}, str(r.get("urn", "")),
                                          str(r.get("name", ""))) for r in given])
        rule(view, report_violation)

    return run


class _RegionView:
    def __init__(self, args: Any, stand_ins: list[StandIn]):
        self._args = args
        self.resources = [*args.resources, *stand_ins]

    def get_config(self) -> Any:
        return self._args.get_config()


def report_findings(findings: list[allocation.Finding], resources: list[Resource], report_violation: Any) -> None:
    """Report each finding at the resource it is about: the pool's first node resource, the tenant's namespace, or
    the stack."""
    if not findings:
        return
    pools = pool_anchors(resources) if any(f.pool for f in findings) else {}
    tenants = tenant_anchors(resources) if any(f.tenant for f in findings) else {}
    for f in findings:
        urn = pools.get(f.pool) if f.pool else tenants.get(f.tenant) if f.tenant else None
        report_violation(f.message, urn)


def _first_unknown(resource: Resource) -> str | None:
    """The message of the first unknown value in a resource's props (the engine's proxy raises on reading one)."""
    from pulumi_policy.proxy import UnknownValueError

    try:
        for _ in walk_values(resource.props):
            pass
    except UnknownValueError as exc:
        return exc.message
    return None


def fail_closed(rule: Any) -> Any:
    """A mandatory stack rule that cannot read a value during preview reports a mandatory finding naming the
    resource and field, instead of pulumi_policy's advisory note (a rule that cannot see the numbers must not let an
    over-capacity change pass)."""
    import functools

    from pulumi_policy.proxy import UnknownValueError

    @functools.wraps(rule)
    def run(args: Any, report_violation: Any) -> None:
        try:
            rule(args, report_violation)
        except UnknownValueError as exc:
            culprit = next((r for r in args.resources if _first_unknown(r) == exc.message), None)
            where = f"{kind(culprit) or culprit.resource_type} {name(culprit)}: " if culprit is not None else ""
            report_violation(f"cannot verify during preview: {where}{exc.message}; the rule fails closed until the "
                             "value is known (apply what it depends on first, or preview again)",
                             culprit.urn if culprit is not None else None)

    return run
