"""Tenant: one tenant's namespace in one region, its quota, isolation, admins and Kueue queues."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from kubernetes.utils.quantity import parse_quantity

from components import labels as L
from components.custom_object import CustomObject
from components.network_operator import rdma_quota, tenant_ip_pool, tenant_networks
from components.queueing import COMPUTE_DOMAIN_CHANNEL, KUEUE_API, PRIORITIES, priority_class_name
from sovcloud.config import model
from sovcloud.keys import ORGANISATION_COUNTRY, ORGANISATION_ID

EPHEMERAL_PER_GPU_GI = 200  # local scratch per GPU a tenant may hold (an HGX node has about 28 TB NVMe for 8)
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"]
LOCAL_QUEUE = "default"


@dataclass(frozen=True)
class TenantArgs:
    tenant: model.Tenant  # already validated: components never parse YAML
    allocations: tuple[model.Allocation, ...]  # the tenant's allocations in this region (one per pool)
    region: model.Region
    as_of: dt.date  # allocations outside their period, or of an offboarding tenant, hold no GPU quota

    def holds_quota(self, alloc: model.Allocation) -> bool:
        return self.tenant.holds_quota(alloc, self.as_of)

    @property
    def stop_policy(self) -> str | None:
        """Kueue's stopPolicy of the tenant's queue (``model.Tenant.stop_policy``: Hold, then HoldAndDrain after the
        region's grace)."""
        return self.tenant.stop_policy(self.allocations, self.as_of, self.region.allocation.drain_after_days)


def _pool(args: TenantArgs, alloc: model.Allocation) -> model.Pool:
    pool = args.region.pool(alloc.pool)
    assert pool is not None, f"allocation names pool {alloc.pool}, absent from {args.region.name}"  # loader checked
    return pool


def gpu_quota(pool: model.Pool, gpus: int) -> int:
    """``nvidia.com/gpu`` units for ``gpus`` physical GPUs: time-sliced pools advertise ``replicas`` per GPU."""
    return gpus * (pool.sharing.replicas if pool.sharing.mode == "time-slicing" else 1)


def _number(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _split(quantity: str) -> tuple[str, str]:
    """``"64Gi"`` -> ``("64", "Gi")``."""
    digits = quantity.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return digits, quantity[len(digits):]


def _scale(quantity: str, factor: float) -> str:
    """A quantity times ``factor``, in the unit it was written in."""
    if factor == 1:
        return quantity
    digits, unit = _split(quantity)
    return _number(Decimal(digits) * Decimal(str(factor))) + unit


def _sum(quantities: list[str]) -> str:
    """Add quantities: in their unit when they share one, else in base units (cores, bytes)."""
    if len(quantities) == 1:
        return quantities[0]
    units = {_split(q)[1] for q in quantities}
    if len(units) == 1:
        (unit,) = units
        return _number(sum((Decimal(_split(q)[0]) for q in quantities), Decimal(0))) + unit
    return _number(sum((parse_quantity(q) for q in quantities), Decimal(0)))


def namespace_meta(args: TenantArgs) -> dict[str, Any]:
    t = args.tenant
    return {"name": t.name, "labels": {
        **L.common(args.region, owner=t.name), L.TENANT: t.name, L.SECTOR: t.sector, L.STATUS: status(args),
        L.CLASSIFICATION: t.classification,
        "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/audit": "restricted"},
        # what the eligibility and lifecycle policies read: they see resources, not tenant files
        "annotations": {L.ADMIN_GROUPS: " ".join(t.admin_groups),  # read by the RBAC admission guardrail
                        L.PRIORITY_CLASSES: " ".join(priority_classes(args)),  # read by the priority guardrail
                        "sovcloud.kr/display-name": t.display_name, "sovcloud.kr/organisation": t.organisation.name,
                        ORGANISATION_ID: t.organisation.registration_id,
                        ORGANISATION_COUNTRY: t.organisation.country,
                        **({L.FABRIC_SEGMENT: str(t.fabric_segment)} if fabric_pools(args) else {})}}


def granted_priority(args: TenantArgs) -> str:
    """The highest priority the tenant's allocations in the region grant (normal where it has none)."""
    return max((a.priority for a in args.allocations), key=list(PRIORITIES).index, default="normal")


def priority_classes(args: TenantArgs) -> list[str]:
    """The WorkloadPriorityClasses the tenant's workloads may name: the granted one and those below it."""
    order = list(PRIORITIES)
    return [priority_class_name(p) for p in order[:order.index(granted_priority(args)) + 1]]


def status(args: TenantArgs) -> str:
    """offboarding, active, pending (no allocation here has started) or expired, on the as-of date."""
    return args.tenant.state(args.as_of, args.allocations)


def _meta(args: TenantArgs, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": args.tenant.name,
            "labels": {**L.common(args.region, owner=args.tenant.name), L.TENANT: args.tenant.name}}


def quota_hard(args: TenantArgs) -> dict[str, str]:
    """ResourceQuota ``hard``: GPUs up to guaranteed + borrowing, MIG instances, CPU, memory, storage; no
    LoadBalancer or NodePort services. Extended resources only take ``requests.`` keys."""
    live = [a for a in args.allocations if args.holds_quota(a)]
    gpus = sum(gpu_quota(_pool(args, a), a.gpus + a.borrowing_limit) for a in live)
    hard: dict[str, str] = {f"requests.{L.GPU_RESOURCE}": str(gpus)}
    mig: dict[str, int] = {p: 0 for a in args.allocations for p in a.mig}  # expired profiles stay, at zero
    for a in live:
        for profile, count in a.mig.items():
            mig[profile] += count
    for profile in sorted(mig):
        hard[f"requests.nvidia.com/mig-{profile}"] = str(mig[profile])
    # CPU is the one resource overcommitted (by the region's factor); no limits.* keys: they would force every pod to
    # set limits, and LimitRange default limits below a pod's request make the pod invalid
    cpu = _scale(_sum([a.cpu for a in args.allocations]), args.region.allocation.cpu_overcommit)
    hard.update({
        "requests.cpu": cpu, "requests.memory": _sum([a.memory for a in args.allocations]),
        "requests.storage": _sum([a.storage for a in args.allocations]),
        "persistentvolumeclaims": str(sum(a.persistent_volume_claims for a in args.allocations)),
        # node-local scratch: without a cap one tenant's pods can fill a GPU node's disk and get every pod on it
        # evicted; EPHEMERAL_PER_GPU per GPU it may hold (at least one GPU's worth)
        "requests.ephemeral-storage": f"{max(1, gpus) * EPHEMERAL_PER_GPU_GI}Gi",
        "services.loadbalancers": "0", "services.nodeports": "0",
    })
    # every RDMA resource of the region, zero unless an allocation holds some (an absent key is no limit); as the
    # queue counts them: the guaranteed and the borrowable parts each rounded up
    rdma: dict[str, int] = dict.fromkeys(args.region.rdma_resources, 0)
    for a in args.allocations:
        pool = _pool(args, a)
        if pool.fabric is not None and args.region.fabric is not None:
            units = rdma_quota(pool, a.gpus) + rdma_quota(pool, a.borrowing_limit) if args.holds_quota(a) else 0
            for resource in pool.fabric.resources:
                rdma[resource] = rdma.get(resource, 0) + units
    hard.update({f"requests.{resource}": str(n) for resource, n in sorted(rdma.items())})
    return hard


def fabric_pools(args: TenantArgs) -> list[model.Pool]:
    """The tenant's pools here that have a fabric (its networks and IP pool are made for those)."""
    mine = {a.pool for a in args.allocations}
    return [p for p in sorted(args.region.fabric_pools, key=lambda p: p.name) if p.name in mine]


def limit_range_spec() -> dict[str, Any]:
    """Default requests for containers that set none, so quota accounting sees them. No default limits: a default
    limit below a container's own request would make the pod invalid."""
    return {"limits": [{"type": "Container", "defaultRequest": {"cpu": "100m", "memory": "256Mi",
                                                                "ephemeral-storage": "1Gi"}}]}


def egress_block(cidr: str) -> dict[str, Any]:
    """An ipBlock for an egress CIDR, excepting the private ranges it contains."""
    import ipaddress

    network = ipaddress.ip_network(cidr)
    inside = [p for p in PRIVATE_RANGES if ipaddress.ip_network(p).subnet_of(network)]  # type: ignore[arg-type]
    return {"ipBlock": {"cidr": cidr, "except": inside}} if inside else {"ipBlock": {"cidr": cidr}}


def network_policies(args: TenantArgs) -> dict[str, dict[str, Any]]:
    """Default deny; DNS and the namespace itself allowed; internet or extra CIDRs only when asked for and the
    tenant's classification allows (never for high)."""
    out: dict[str, dict[str, Any]] = {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "allow-same-namespace": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                                 "ingress": [{"from": [{"podSelector": {}}]}],
                                 "egress": [{"to": [{"podSelector": {}}]}]},
        "allow-dns": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]},
    }
    t = args.tenant
    if t.classification != "high":
        if t.network.internet_egress:
            out["allow-internet-egress"] = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_RANGES}}]}]}
        if t.network.egress_cidrs:
            # a CIDR that spans private ranges (0.0.0.0/0, 10.0.0.0/7, ...) gets the exclusions internet egress
            # gets: it must not open the cluster's and the centre's own networks
            out["allow-egress-cidrs"] = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
                {"to": [egress_block(c) for c in t.network.egress_cidrs]}]}
    return out


def allocations_annotation(args: TenantArgs) -> str:
    """The allocations behind the queue, for the period and MIG policies: JSON, sorted by pool."""
    return json.dumps([{"pool": a.pool, "gpus": a.gpus, "borrowingLimit": a.borrowing_limit, "mig": dict(a.mig),
                        "start": a.start.isoformat(), "end": a.end.isoformat()}
                       for a in sorted(args.allocations, key=lambda a: a.pool)], sort_keys=True)


_ALL = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
_READ = ["get", "list", "watch"]


def tenant_admin_role_rules(compute_domains: bool = False) -> list[dict[str, Any]]:
    """What a tenant's admins may do in their namespace: run and manage workloads, volumes, secrets and namespaced
    RBAC, read (never write) their NetworkPolicies, quota and queues. The built-in `admin` role would let them delete
    the default-deny policy; RBAC's escalation check keeps them from binding more than this role holds.

    With ``compute_domains`` (the region runs the DRA driver) they may also create ComputeDomains and the resource
    claims that join pods to one; GPUs themselves stay with the device plugin and the quota."""
    dra = [
        {"apiGroups": ["resource.nvidia.com"], "resources": ["computedomains"], "verbs": _ALL},
        {"apiGroups": ["resource.k8s.io"], "resources": ["resourceclaims", "resourceclaimtemplates"], "verbs": _ALL},
    ] if compute_domains else []
    return [
        # no endpoints (or EndpointSlices) writes: hand-made endpoints point a Service at any address, the
        # pattern behind CVE-2021-25740; Services' externalIPs (CVE-2020-8554) need an admission rule
        {"apiGroups": [""], "resources": ["pods", "pods/log", "pods/exec", "pods/attach", "pods/portforward",
                                          "services", "configmaps", "secrets", "persistentvolumeclaims",
                                          "serviceaccounts"], "verbs": _ALL},
        {"apiGroups": [""], "resources": ["events", "resourcequotas", "limitranges", "namespaces", "endpoints"],
         "verbs": _READ},
        {"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale", "statefulsets", "statefulsets/scale",
                                              "replicasets"], "verbs": _ALL},
        {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": _ALL},
        {"apiGroups": ["jobset.x-k8s.io"], "resources": ["jobsets"], "verbs": _ALL},
        {"apiGroups": ["kubeflow.org", "trainer.kubeflow.org"], "resources": ["*"], "verbs": _ALL},
        {"apiGroups": ["ray.io"], "resources": ["rayjobs", "rayclusters"], "verbs": _ALL},
        {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _ALL},
        {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": _ALL},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": _ALL},
        {"apiGroups": ["kueue.x-k8s.io"], "resources": ["workloads", "localqueues"], "verbs": _READ},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": _READ},
        *dra,
    ]


def role_binding_subjects(args: TenantArgs) -> list[dict[str, str]]:
    return [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": g} for g in args.tenant.admin_groups]


def borrowed_host(pool: model.Pool, gpus: int, overcommit: float) -> tuple[int, str]:
    """CPU and memory that ``gpus`` borrowed GPUs of ``pool`` bring from their nodes (the pool's host share per
    GPU; CPU with the region's overcommit): Kueue admits a workload only when every resource it asks for fits, so
    borrowed GPUs without the CPU and memory beside them could never run."""
    cpu, memory_gib = pool.host_per_gpu
    memory = math.ceil(gpus * memory_gib)
    return math.ceil(gpus * cpu * overcommit), f"{memory}Gi" if memory else 0


def cluster_queue_spec(args: TenantArgs) -> dict[str, Any]:
    """ClusterQueue: nominal quota per flavor = guaranteed GPUs, borrowing limit, in the region's cohort."""
    covered = ["cpu", "memory", L.GPU_RESOURCE]
    migs = sorted({p for a in args.allocations for p in a.mig})
    covered += [f"nvidia.com/mig-{p}" for p in migs]
    dra_pools = set(args.region.dra_driver.pools) if args.region.dra_driver else set()
    # ComputeDomain channels (Kueue counts the DRA claims as this resource): as many as the tenant's GPUs there,
    # one per pod at most; without the resource covered Kueue would refuse every ComputeDomain workload
    channels = any(a.pool in dra_pools for a in args.allocations)
    if channels:
        covered.append(COMPUTE_DOMAIN_CHANNEL)
    # RDMA devices of the tenant's fabric pools: Kueue counts them (so a pod asking for them goes to a fabric
    # flavor, and borrowed GPUs bring their RDMA); another flavor has none
    rdma = sorted({r for p in fabric_pools(args) for r in p.fabric.resources})  # type: ignore[union-attr]
    covered += rdma
    flavors = []
    overcommit = args.region.allocation.cpu_overcommit
    # amd64 flavors first: Kueue tries flavors in order, so a pod that does not say its architecture (CPU-only
    # helpers, most images) lands on amd64 nodes; arm64 (Grace) pools are reached by pods that select arm64
    for a in sorted(args.allocations, key=lambda a: (_pool(args, a).gpu.arch != "amd64", a.pool)):
        pool = _pool(args, a)
        live = args.holds_quota(a)
        borrow_cpu, borrow_memory = borrowed_host(pool, a.borrowing_limit if live else 0, overcommit)
        # borrowingLimit is always explicit: Kueue reads an absent one as "no limit"
        resources = [
            {"name": "cpu", "nominalQuota": _scale(a.cpu, overcommit), "borrowingLimit": borrow_cpu},
            {"name": "memory", "nominalQuota": a.memory, "borrowingLimit": borrow_memory},
            {"name": L.GPU_RESOURCE, "nominalQuota": gpu_quota(pool, a.gpus) if live else 0,
             "borrowingLimit": gpu_quota(pool, a.borrowing_limit) if live else 0}]
        resources += [{"name": f"nvidia.com/mig-{p}", "nominalQuota": a.mig.get(p, 0) if live else 0,
                       "borrowingLimit": 0} for p in migs]
        if channels:
            on = live and a.pool in dra_pools
            resources.append({"name": COMPUTE_DOMAIN_CHANNEL, "nominalQuota": a.gpus if on else 0,
                              "borrowingLimit": a.borrowing_limit if on else 0})
        mine = pool.fabric.resources if pool.fabric is not None and live else ()
        resources += [{"name": r, "nominalQuota": rdma_quota(pool, a.gpus) if r in mine else 0,
                       "borrowingLimit": rdma_quota(pool, a.borrowing_limit) if r in mine else 0} for r in rdma]
        flavors.append({"name": a.pool, "resources": resources})
    spec: dict[str, Any] = {
        "cohortName": args.region.name,
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": args.tenant.name}},
        "resourceGroups": [{"coveredResources": covered, "flavors": flavors}],
        "preemption": {"reclaimWithinCohort": "Any", "withinClusterQueue": "LowerPriority"},
        "queueingStrategy": "BestEffortFIFO",
    }
    if args.stop_policy:
        spec["stopPolicy"] = args.stop_policy
    return spec


class Tenant(pulumi.ComponentResource):
    """A tenant's footprint in one region. The namespace is retained on delete: a config mistake never deletes a
    tenant's data."""

    namespace: pulumi.Output[str]
    guaranteed_gpus: pulumi.Output[int]

    def __init__(self, name: str, args: TenantArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovcloud:tenants:Tenant", name, None, opts)
        t = args.tenant
        ns = k8s.core.v1.Namespace(f"{name}-namespace", metadata=namespace_meta(args),
                                   opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True))
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[ns])
        k8s.core.v1.ResourceQuota(f"{name}-quota", metadata=_meta(args, "sovcloud-quota"),
                                  spec={"hard": quota_hard(args)}, opts=in_ns)
        k8s.core.v1.LimitRange(f"{name}-limits", metadata=_meta(args, "sovcloud-defaults"), spec=limit_range_spec(),
                               opts=in_ns)
        for policy, spec in network_policies(args).items():
            k8s.networking.v1.NetworkPolicy(f"{name}-netpol-{policy}", metadata=_meta(args, policy), spec=spec,
                                            opts=in_ns)
        k8s.rbac.v1.RoleBinding(f"{name}-admins", metadata=_meta(args, "sovcloud-tenant-admins"),
                                role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                          "name": L.TENANT_ADMIN_ROLE},
                                subjects=role_binding_subjects(args), opts=in_ns)
        fabric = fabric_pools(args)
        if fabric:  # its networks (the chart's CRD) and their addresses (nv-ipam's, once the policy runs)
            for body in tenant_networks(args.region, t, fabric):
                CustomObject(f"{name}-{body['metadata']['name']}", body, in_ns)
            CustomObject(f"{name}-ip-pool", tenant_ip_pool(args.region, t, fabric), pulumi.ResourceOptions(parent=self))
        cq_meta = {"name": t.name, "labels": {**L.common(args.region, owner=t.name), L.TENANT: t.name},
                   "annotations": {L.ALLOCATIONS: allocations_annotation(args)}}
        cq = CustomObject(f"{name}-clusterqueue", {"apiVersion": KUEUE_API, "kind": "ClusterQueue",
                                                   "metadata": cq_meta, "spec": cluster_queue_spec(args)},
                          pulumi.ResourceOptions(parent=self))
        lq_meta = _meta(args, LOCAL_QUEUE)
        # the highest WorkloadPriorityClass the tenant's jobs may select (label kueue.x-k8s.io/priority-class); the
        # priority guardrail holds them to it
        lq_meta["labels"]["sovcloud.kr/priority"] = priority_class_name(granted_priority(args))
        CustomObject(f"{name}-localqueue", {"apiVersion": KUEUE_API, "kind": "LocalQueue",
                                            "metadata": lq_meta, "spec": {"clusterQueue": t.name}},
                     pulumi.ResourceOptions(parent=self, depends_on=[ns, cq]))
        self.namespace = ns.metadata.name
        self.guaranteed_gpus = pulumi.Output.from_input(sum(a.gpus for a in args.allocations))
        self.register_outputs({"namespace": self.namespace, "guaranteedGpus": self.guaranteed_gpus})
