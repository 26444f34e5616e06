"""The typed, frozen config model. Knows nothing of YAML files or Pulumi: the loader builds it, components read it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from sovcloud.config.catalog import GpuModel

Sector = Literal["research", "public", "startup", "industry"]
Classification = Literal["low", "moderate", "high"]
SECTORS: tuple[str, ...] = ("research", "public", "startup", "industry")
CLASSIFICATIONS: tuple[str, ...] = ("low", "moderate", "high")  # in rising order of sensitivity


def freeze(value: Any) -> Any:
    """Deep-freeze plain data: dicts become read-only mappings, lists tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of :func:`freeze`, for handing data to APIs that want plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Origin:
    """Where a piece of config was written, for messages that point at it."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Location:
    country: str
    province: str
    city: str = ""
    site: str = ""


@dataclass(frozen=True)
class Registries:
    image_mirror: str
    chart_repository: str
    allowed: tuple[str, ...]
    chart_sources: str | None = None  # local folder with the region's charts, for offline rendering


@dataclass(frozen=True)
class Prerequisites:
    """What the centre runs in the workload cluster outside sovcloud (objects may rely only on these)."""

    prometheus_operator: bool = False
    cert_manager: bool = False
    config_maps: tuple[str, ...] = ()  # namespace/name
    secrets: tuple[str, ...] = ()  # namespace/name
    kube_state_metrics: bool = False  # with nodes=[sovcloud.kr/pool] in its label allowlist (showback's busy)


@dataclass(frozen=True)
class Provisioner:
    kind: Literal["cluster-api", "static"]
    infrastructure: Literal["metal3", "openstack"] | None = None
    machine: Mapping[str, Any] = field(default_factory=dict)  # the metal3 / openstack section, as written
    failure_domain: str | None = None
    autoscaling: tuple[int, int] | None = None  # (min, max)
    # a node's shape for the autoscaler to scale from zero: cpu, memory, ephemeralDisk, maxPods as written
    node_capacity: Mapping[str, Any] = field(default_factory=dict)
    node_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sharing:
    mode: Literal["none", "mig", "time-slicing"]
    mig_layout: Mapping[str, int] = field(default_factory=dict)  # per GPU
    mig_config_name: str | None = None
    replicas: int = 1
    rename_by_default: bool = False
    fail_requests_greater_than_one: bool = True


_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
             "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "m": 0.001}


def quantity(value: Any) -> float:
    """A Kubernetes quantity (``224``, ``1500m``, ``2Ti``) as a number (of cores, of bytes)."""
    text = str(value)
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * _SUFFIXES[suffix]
    return float(text)


@dataclass(frozen=True)
class PoolFabric:
    """A pool's compute fabric: InfiniBand or RoCE HCAs, and how pods get RDMA devices."""

    kind: Literal["infiniband", "roce"]
    hcas_per_node: int
    rdma: Literal["shared", "sriov"]
    interfaces: tuple[str, ...]  # the HCAs' host interface names, one per rail: rail N's networks sit on the Nth
    vfs_per_hca: int = 8  # SR-IOV: the VFs each port has (set up on the nodes)

    @property
    def resources(self) -> tuple[str, ...]:
        """The extended resources a pod requests for RDMA on this pool (device plugin resourcePrefix rdma): the
        shared device (all the node's HCAs), or a VF resource per rail, each of one HCA's VFs, so that a pod's VF
        on rail N is on HCA N (the device plugin hands a pod any VFs of a resource)."""
        base = "rdma/" + ("ib" if self.kind == "infiniband" else "roce")
        if self.rdma == "shared":
            return (base,)
        return tuple(f"{base}_vf{n}" for n in range(len(self.interfaces)))

    def rail_resource(self, rail: int) -> str | None:
        """The VF resource of a rail (None with the shared device: no per-rail resource)."""
        return self.resources[rail] if self.rdma == "sriov" else None


@dataclass(frozen=True)
class Pool:
    name: str
    gpu: GpuModel
    nodes: int
    gpus_per_node: int
    provisioner: Provisioner
    sharing: Sharing
    origin: Origin
    topology: str | None = None  # a name in kueue.topologies: the flavor is topology-aware
    fabric: PoolFabric | None = None
    node_shape: Mapping[str, Any] = field(default_factory=dict)  # allocatable cpu and memory of a node, as written

    @property
    def host_per_gpu(self) -> tuple[float, float]:
        """(logical CPUs, memory GiB) a GPU of this pool brings from its node: the pool's nodeShape, else its
        autoscaling nodeCapacity, else the model's typical host share (catalog)."""
        shape = self.node_shape or self.provisioner.node_capacity
        if shape.get("cpu") and shape.get("memory"):
            return (quantity(shape["cpu"]) / self.gpus_per_node,
                    quantity(shape["memory"]) / 2**30 / self.gpus_per_node)
        return float(self.gpu.host_cpu_per_gpu), float(self.gpu.host_memory_gib_per_gpu)

    @property
    def gpus(self) -> int:
        """Physical GPUs in the pool."""
        return self.nodes * self.gpus_per_node

    @property
    def mig_config(self) -> str:
        """The mig-manager config name of the pool's layout (the nodes' nvidia.com/mig.config label)."""
        return self.sharing.mig_config_name or self.name

    @property
    def backed_gpus(self) -> int:
        """GPUs that can back guarantees: an autoscaled pool counts at its minimum size."""
        nodes = min(self.nodes, self.provisioner.autoscaling[0]) if self.provisioner.autoscaling else self.nodes
        return nodes * self.gpus_per_node


@dataclass(frozen=True)
class GpuOperatorSettings:
    chart_version: str
    driver_version: str
    kernel_module_type: Literal["auto", "open", "proprietary"] = "auto"
    use_precompiled: bool = False
    driver_repo_config_map: str | None = None  # kept by the centre (a prerequisite)
    driver_repository: Mapping[str, str] = field(default_factory=dict)  # package source files sovcloud ships
    mig_strategy: Literal["single", "mixed"] = "mixed"
    dcgm_exporter: bool = True
    service_monitor: bool = True
    nfd: bool = True
    cdi: bool = True
    gds: bool = False
    rdma: bool = False


@dataclass(frozen=True)
class KueueSettings:
    chart_version: str
    # Kueue Topology objects by name: node label keys per level, widest first
    topologies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    replicas: int = 2


@dataclass(frozen=True)
class SystemNodes:
    """Where platform controllers run: a node selector and the tolerations for those nodes' taints."""

    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, str], ...] = ()


GUARDRAIL_ACTIONS = {"deny": ("Deny",), "warn": ("Warn", "Audit"), "audit": ("Audit",)}


@dataclass(frozen=True)
class GuardrailSettings:
    """What the tenant admission guardrails' bindings do, and the pod PriorityClasses tenants may name."""

    action: Literal["deny", "warn", "audit"] = "deny"
    actions: Mapping[str, str] = field(default_factory=dict)  # per guardrail name, where not the region's action
    pod_priority_classes: tuple[str, ...] = ()

    def validation_actions(self, guardrail: str) -> tuple[str, ...]:
        """The binding's validationActions (admissionregistration.k8s.io/v1)."""
        return GUARDRAIL_ACTIONS[self.actions.get(guardrail, self.action)]


@dataclass(frozen=True)
class FabricSettings:
    """The region's NVIDIA Network Operator and tenant fabric networks."""

    chart_version: str
    component_version: str  # tag of the NicClusterPolicy's operand images
    driver_version: str | None  # the DOCA driver container's version (driver container)
    driver: Literal["container", "host"]
    ipam_subnet: str
    tenant_prefix: int = 23
    per_node_block_size: int = 16
    ufm_secret: str | None = None
    guid_pool: tuple[str, str] = ("02:00:00:00:00:00:00:00", "02:FF:FF:FF:FF:FF:FF:FF")
    chart: str = "network-operator"
    sriov_max_unavailable: int | str = "5%"  # nodes of an SR-IOV pool the SR-IOV operator drains at a time
    driver_max_parallel_upgrades: int = 1  # nodes whose DOCA driver container is upgraded at a time

    def tenant_subnet(self, segment: int) -> str:
        """The block of the fabric subnet a tenant's segment numbers."""
        import ipaddress

        if not 0 <= segment < self.blocks:
            return ""
        net = ipaddress.ip_network(self.ipam_subnet)
        # the segment-th block, by arithmetic: listing every block of a wide subnet costs thousands of objects
        size = 1 << (net.max_prefixlen - self.tenant_prefix)
        return str(ipaddress.ip_network((int(net.network_address) + segment * size, self.tenant_prefix)))

    @property
    def blocks(self) -> int:
        import ipaddress

        return 2 ** (self.tenant_prefix - ipaddress.ip_network(self.ipam_subnet).prefixlen)


@dataclass(frozen=True)
class ShowbackSettings:
    """The recording rules' PrometheusRule: labels the centre's Prometheus selects rules by, evaluation interval."""

    rule_labels: Mapping[str, str] = field(default_factory=dict)
    rule_interval: str = "1m"


@dataclass(frozen=True)
class DraDriverSettings:
    chart_version: str
    pools: tuple[str, ...]  # pools whose nodes run the kubelet plugin
    chart: str = "dra-driver-nvidia-gpu"
    # conversion webhook certificate: source cert-manager (cluster_issuer or self-signed) or secret
    webhook_tls: Mapping[str, str] = field(default_factory=lambda: {"source": "cert-manager"})


@dataclass(frozen=True)
class AllocationRules:
    reserved_shares: Mapping[str, float] = field(default_factory=dict)  # sector -> fraction of the region's GPUs
    per_tenant_gpu_cap: int | None = None
    per_sector_gpu_cap: Mapping[str, int] = field(default_factory=dict)
    cpu_overcommit: float = 1.0
    approved_foreign_organisations: tuple[str, ...] = ()
    national_gpu_budget: int | None = None
    drain_after_days: int = 7  # a held queue drains this many days after the end (or offboarding)


@dataclass(frozen=True)
class Region:
    name: str
    display_name: str
    tier: Literal["national", "regional"]
    location: Location
    certification: Classification
    kubernetes_version: str
    cluster_name: str
    cluster_namespace: str
    registries: Registries
    gpu_models: Mapping[str, GpuModel]  # the catalog as this region sees it (built-in plus overrides)
    pools: tuple[Pool, ...]
    gpu_operator: GpuOperatorSettings
    kueue: KueueSettings
    allocation: AllocationRules
    origin: Origin
    dra_driver: DraDriverSettings | None = None
    prerequisites: Prerequisites = field(default_factory=Prerequisites)
    cluster_id: str | None = None  # the workload cluster's kube-system namespace UID
    # the line of each setting findings point at (e.g. "allocation.reservedShares"), where the file has it
    field_lines: Mapping[str, int] = field(default_factory=dict)
    system_nodes: SystemNodes = field(default_factory=SystemNodes)
    guardrails: GuardrailSettings = field(default_factory=GuardrailSettings)
    showback: ShowbackSettings = field(default_factory=ShowbackSettings)
    fabric: FabricSettings | None = None

    def pool(self, name: str) -> Pool | None:
        return next((p for p in self.pools if p.name == name), None)

    @property
    def fabric_pools(self) -> tuple[Pool, ...]:
        """The pools with a compute fabric (none where the region declares no fabric)."""
        return tuple(p for p in self.pools if p.fabric is not None) if self.fabric is not None else ()

    @property
    def rdma_resources(self) -> list[str]:
        """Every RDMA resource the region's fabric pools advertise, sorted."""
        return sorted({r for p in self.fabric_pools for r in p.fabric.resources})  # type: ignore[union-attr]

    def origin_of(self, field_path: str) -> Origin:
        """Where a setting of the region is written (the region object's first line when it is not)."""
        return Origin(self.origin.file, self.field_lines.get(field_path, self.origin.line))

    @property
    def gpus(self) -> int:
        return sum(p.gpus for p in self.pools)


@dataclass(frozen=True)
class Organisation:
    name: str
    type: str
    registration_id: str
    country: str


@dataclass(frozen=True)
class Contact:
    name: str
    email: str
    role: str


@dataclass(frozen=True)
class Network:
    internet_egress: bool = False
    egress_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Allocation:
    region: str
    pool: str  # resolved pool name, also when the file named a GPU model
    gpus: int  # guaranteed
    borrowing_limit: int
    cpu: str
    memory: str
    storage: str
    persistent_volume_claims: int
    priority: Literal["low", "normal", "high"]
    start: dt.date
    end: dt.date
    origin: Origin
    mig: Mapping[str, int] = field(default_factory=dict)  # total instances by profile

    def expired(self, today: dt.date) -> bool:
        return today > self.end

    def active(self, today: dt.date) -> bool:
        return self.start <= today <= self.end

    def state(self, today: dt.date) -> str:
        """pending (not started), active, or expired (past its end date)."""
        return "pending" if today < self.start else "expired" if today > self.end else "active"


@dataclass(frozen=True)
class Tenant:
    name: str
    display_name: str
    status: Literal["active", "offboarding"]
    organisation: Organisation
    sector: Sector
    classification: Classification
    admin_groups: tuple[str, ...]
    contacts: tuple[Contact, ...]
    network: Network
    allocations: tuple[Allocation, ...]
    origin: Origin
    grant_gpus: int | None = None  # most guaranteed GPUs across all regions
    fabric_segment: int | None = None  # its InfiniBand partition key and RoCE VLAN in every region
    offboarding_since: dt.date | None = None
    field_lines: Mapping[str, int] = field(default_factory=dict)  # line of each field findings point at

    def origin_of(self, field_path: str) -> Origin:
        """Where a field of the tenant is written (its name's line when it is not)."""
        return Origin(self.origin.file, self.field_lines.get(field_path, self.origin.line))

    def state(self, day: dt.date, allocations: tuple[Allocation, ...] | None = None) -> str:
        """offboarding, or over ``allocations`` (default all): active if any is, else pending if any is to come,
        else expired."""
        if self.status == "offboarding":
            return "offboarding"
        states = {a.state(day) for a in (self.allocations if allocations is None else allocations)}
        return next(s for s in ("active", "pending", "expired") if s in states or s == "expired")

    def holds_quota(self, alloc: Allocation, day: dt.date) -> bool:
        """The allocation gives quota on ``day``: the tenant is active and the day is inside its period."""
        return self.status == "active" and alloc.active(day)

    def stop_policy(self, allocations: tuple[Allocation, ...], day: dt.date, grace_days: int) -> str | None:
        """Kueue's stopPolicy for the tenant's queue over ``allocations`` on ``day``: none while it admits; Hold (no
        new admissions, admitted work runs on) until the drain grace has passed; then HoldAndDrain (admitted
        workloads are evicted, so a serving Deployment that never completes gives its GPUs back). A queue whose
        allocations are still to come holds."""
        if any(self.holds_quota(a, day) for a in allocations):
            return None
        if self.status == "active" and any(a.start > day for a in allocations):
            return "Hold"
        drains = self.drains_from(allocations, grace_days)
        return "HoldAndDrain" if drains is not None and day >= drains else "Hold"

    def drains_from(self, allocations: tuple[Allocation, ...], grace_days: int) -> dt.date | None:
        """The day a queue over ``allocations`` that no longer admits starts draining its running work: the grace
        after the last end, or after offboarding began; None while something is to come, or for an offboarding
        tenant whose start of offboarding is not recorded (it holds, and is never drained unannounced)."""
        grace = dt.timedelta(days=grace_days)
        if self.status == "offboarding":
            return self.offboarding_since + grace if self.offboarding_since else None
        if not allocations:
            return None
        return max(a.end for a in allocations) + dt.timedelta(days=1) + grace


@dataclass(frozen=True)
class Config:
    """Everything the toolkit reads: all regions and all tenants, cross-checked."""

    regions: Mapping[str, Region]
    tenants: Mapping[str, Tenant]
    files: tuple[str, ...] = field(default=())  # every file read, for reports

    def allocations_in(self, region: str) -> list[tuple[Tenant, Allocation]]:
        """The (tenant, allocation) pairs that live in ``region``, in tenant-name order."""
        return [(t, a) for t in sorted(self.tenants.values(), key=lambda t: t.name)
                for a in t.allocations if a.region == region]
