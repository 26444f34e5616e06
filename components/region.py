"""Region: one region's platform (GPU pools, GPU operator, DRA driver, queueing layer, fabric, guardrails,
showback), composed from the typed model. Its tenants are stacks of their own (``sovcloud.stacks``); the region
still reads their allocations, for the cohort's lendable quota and the capacity summary."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import labels as L
from components.dra_driver import DraDriver, DraDriverArgs
from components.gpu_operator import GpuOperator, GpuOperatorArgs
from components.guardrails import Guardrails, GuardrailsArgs
from components.network_operator import NetworkOperator, NetworkOperatorArgs
from components.node_pool import GpuNodePool, GpuNodePoolArgs
from components.queueing import PRIORITIES, Queueing, QueueingArgs, priority_class_name
from components.queueing import RELEASE as KUEUE_RELEASE
from components.showback import Showback, ShowbackArgs
from components.tenant import tenant_admin_role_rules
from sovcloud.config import model


@dataclass(frozen=True)
class RegionArgs:
    region: model.Region
    tenants: tuple[tuple[model.Tenant, tuple[model.Allocation, ...]], ...]  # only allocations in this region
    as_of: dt.date  # the date quotas are computed for: expired and offboarding allocations hold none
    # Cluster API objects live in the management cluster: the caller passes its provider here (None: the same
    # provider as everything else).
    management_provider: pulumi.ProviderResource | None = None


def region_args(cfg: model.Config, region: str, as_of: dt.date,
                management_provider: pulumi.ProviderResource | None = None) -> RegionArgs:
    """The RegionArgs of ``region`` from the whole config: its tenants with their allocations there."""
    by_tenant: dict[str, list[model.Allocation]] = {}
    for tenant, alloc in cfg.allocations_in(region):
        by_tenant.setdefault(tenant.name, []).append(alloc)
    return RegionArgs(cfg.regions[region],
                      tuple((cfg.tenants[name], tuple(allocs)) for name, allocs in sorted(by_tenant.items())),
                      as_of, management_provider)


def summary(args: RegionArgs) -> dict[str, object]:
    """Capacity and allocation on the as-of date: GPUs per pool; guaranteed and borrowable GPUs per tenant."""
    r = args.region
    live = [(t, [a for a in allocs if t.holds_quota(a, args.as_of)], allocs)
            for t, allocs in args.tenants]
    return {
        "region": r.name, "asOf": args.as_of.isoformat(),
        # gpus: every node's; backedGpus: the nodes always present (an autoscaled pool's minimum), which is what
        # guarantees may use
        "pools": {p.name: {"gpuModel": p.gpu.name, "nodes": p.nodes, "gpus": p.gpus, "backedGpus": p.backed_gpus,
                           "guaranteed": sum(a.gpus for _, held, _ in live for a in held if a.pool == p.name)}
                  for p in r.pools},
        "tenants": {t.name: {"guaranteed": sum(a.gpus for a in held),
                             "borrowable": sum(a.borrowing_limit for a in held),
                             "mig": {p: sum(a.mig.get(p, 0) for a in held) for p in sorted({p for a in allocs
                                                                                            for p in a.mig})}}
                    for t, held, allocs in live},
    }


def lendable(args: RegionArgs) -> dict[str, int]:
    """Per whole-GPU or time-sliced pool, the nvidia.com/gpu units not guaranteed to any tenant on the as-of date."""
    out = {}
    for pool in args.region.pools:
        if pool.sharing.mode == "mig":
            continue  # MIG instances are lent by no one: they are granted per profile
        units = pool.sharing.replicas if pool.sharing.mode == "time-slicing" else 1
        held = sum(a.gpus for t, allocs in args.tenants for a in allocs
                   if a.pool == pool.name and t.holds_quota(a, args.as_of))
        out[pool.name] = max(0, pool.backed_gpus - held) * units
    return out


def tenant_context(region: model.Region, declared: object, kueue_status: str | None) -> dict[str, object]:
    """The platform stack's output ``tenantContext`` for its tenant stacks (``sovcloud.stacks``): ``declared`` is the
    region's config object as the platform stack was given it (the stack file's ``sovcloud:region``), the names the
    tenant's objects refer to, and the Kueue release's Helm status."""
    return {"region": declared, "cohort": region.name, "flavors": sorted(p.name for p in region.pools),
            "priorityClasses": [priority_class_name(p) for p in PRIORITIES],
            "kueue": {"release": KUEUE_RELEASE, "status": kueue_status}}


class Region(pulumi.ComponentResource):
    """Everything sovcloud manages in one region."""

    capacity: pulumi.Output[dict]
    kueue: k8s.helm.v3.Release  # what tenant stacks wait for: the release brings Kueue's CRDs and webhooks

    def __init__(self, name: str, args: RegionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovcloud:regions:Region", name, None, opts)
        r = args.region
        child = pulumi.ResourceOptions(parent=self)
        pool_opts = child
        if args.management_provider is not None:
            pool_opts = pulumi.ResourceOptions(parent=self, providers={"kubernetes": args.management_provider})
        for pool in r.pools:
            GpuNodePool(f"{r.name}-{pool.name}", GpuNodePoolArgs(r, pool), pool_opts)
        operator = GpuOperator(f"{r.name}-gpu-operator", GpuOperatorArgs(r), child)
        if r.dra_driver is not None:
            DraDriver(f"{r.name}-dra-driver", DraDriverArgs(r, operator.release), child)
        queueing = Queueing(f"{r.name}-queueing", QueueingArgs(r, lendable(args)), child)
        if r.fabric:
            NetworkOperator(f"{r.name}-network-operator", NetworkOperatorArgs(r), child)
        k8s.rbac.v1.ClusterRole(f"{r.name}-tenant-admin-role",
                                metadata={"name": L.TENANT_ADMIN_ROLE, "labels": L.common(r)},
                                rules=tenant_admin_role_rules(r.dra_driver is not None), opts=child)
        Guardrails(f"{r.name}-guardrails", GuardrailsArgs(r), child)
        if r.prerequisites.prometheus_operator:
            # in the operator's namespace
            Showback(f"{r.name}-showback", ShowbackArgs(r), pulumi.ResourceOptions(parent=self, depends_on=[operator]))
        self.kueue = queueing.kueue
        # per pool, and how many tenants hold quota: each tenant stack exports its own guarantee (a per-tenant table
        # here would make the platform's outputs grow with every tenant)
        whole = summary(args)
        self.capacity = pulumi.Output.from_input({"region": whole["region"], "asOf": whole["asOf"],
                                                  "pools": whole["pools"], "tenants": len(whole["tenants"])})
        self.register_outputs({"capacity": self.capacity})
