"""Queueing: the Kueue chart from the mirror, a ResourceFlavor per pool, topologies, a Cohort per region,
priorities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import labels as L
from components.custom_object import CustomObject
from components.helm import chart_source, mirror_repositories
from sovcloud.config import charts, model

KUEUE_API = "kueue.x-k8s.io/v1beta2"
NAMESPACE = "kueue-system"
RELEASE = "kueue"
PRIORITIES = {"low": 100, "normal": 1000, "high": 10000}


@dataclass(frozen=True)
class QueueingArgs:
    region: model.Region
    lendable: dict[str, int]  # per whole-GPU pool: nvidia.com/gpu units no tenant is guaranteed, lent via the cohort


def priority_class_name(priority: str) -> str:
    return f"sovcloud-{priority}"


def helm_values(region: model.Region) -> dict[str, Any]:
    tag = "v" + region.kueue.chart_version.lstrip("v")  # the chart's appVersion: images are tagged like it
    values: dict[str, Any] = {
        # metrics Service/ServiceMonitor need the Prometheus operator CRDs: same switch as the DCGM ServiceMonitor
        "enablePrometheus": region.gpu_operator.service_monitor,
    }
    mirror_repositories(region, values, charts.repositories("kueue", region.kueue.chart_version), tag=tag)
    values["controllerManager"]["manager"]["image"]["pullPolicy"] = "IfNotPresent"
    return values


def resource_flavor(region: model.Region, pool: model.Pool) -> dict[str, Any]:
    """One flavor per pool: pods land on the pool's nodes, with the product GFD reports there. A pool with a
    topology gets a topology-aware flavor (Kueue reads the levels' labels off the nodes the flavor selects)."""
    spec: dict[str, Any] = {"nodeLabels": {L.POOL: pool.name,
                                           L.GPU_PRODUCT: L.product_label(pool, region.gpu_operator.mig_strategy)},
                            "tolerations": [dict(L.GPU_TOLERATION)]}
    if pool.topology is not None:
        spec["topologyName"] = pool.topology
    return {"apiVersion": KUEUE_API, "kind": "ResourceFlavor",
            "metadata": {"name": pool.name, "labels": {**L.common(region), L.POOL: pool.name}}, "spec": spec}


def topology(region: model.Region, name: str) -> dict[str, Any]:
    """A Kueue Topology: its levels' node labels, widest first.

    Levels are immutable upstream, and so are a topology-aware flavor's topologyName, nodeLabels and tolerations;
    Kueue also keeps a Topology or flavor that is in use from being deleted. No replacement is attempted here (a
    delete would hang on Kueue's finalizer): the API server refuses such an update, and ``sovcloud diff`` flags the
    change beforehand with the way through (a new topology or pool name)."""
    return {"apiVersion": KUEUE_API, "kind": "Topology", "metadata": {"name": name, "labels": L.common(region)},
            "spec": {"levels": [{"nodeLabel": label} for label in region.kueue.topologies[name]]}}


def cohort(region: model.Region, lendable: dict[str, int]) -> dict[str, Any]:
    """The region's cohort. GPUs no tenant is guaranteed are the cohort's own nominal quota: tenants borrow them
    (within their borrowing limits) instead of leaving them idle. Same covered resources as the tenant queues."""
    spec: dict[str, Any] = {}
    flavors = [{"name": pool, "resources": [{"name": "cpu", "nominalQuota": 0}, {"name": "memory", "nominalQuota": 0},
                                            {"name": L.GPU_RESOURCE, "nominalQuota": gpus}]}
               for pool, gpus in sorted(lendable.items()) if gpus > 0]
    if flavors:
        spec["resourceGroups"] = [{"coveredResources": ["cpu", "memory", L.GPU_RESOURCE], "flavors": flavors}]
    return {"apiVersion": KUEUE_API, "kind": "Cohort", "metadata": {"name": region.name, "labels": L.common(region)},
            "spec": spec}


def workload_priority_class(region: model.Region, priority: str) -> dict[str, Any]:
    return {"apiVersion": KUEUE_API, "kind": "WorkloadPriorityClass",
            "metadata": {"name": priority_class_name(priority), "labels": L.common(region)},
            "value": PRIORITIES[priority], "description": f"sovcloud {priority} priority"}


class Queueing(pulumi.ComponentResource):
    """Kueue and the region-wide queueing objects."""

    cohort_name: pulumi.Output[str]
    kueue: k8s.helm.v3.Release  # what tenant queues wait for: the release brings Kueue's CRDs

    def __init__(self, name: str, args: QueueingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovcloud:queueing:Queueing", name, None, opts)
        region = args.region
        ns = k8s.core.v1.Namespace(f"{name}-namespace", metadata={"name": NAMESPACE, "labels": L.common(region)},
                                   opts=pulumi.ResourceOptions(parent=self))
        release = k8s.helm.v3.Release(f"{name}-kueue", name=RELEASE, namespace=NAMESPACE, create_namespace=False,
                                      **chart_source(region, "kueue", region.kueue.chart_version),
                                      values=helm_values(region), atomic=True, timeout=600, max_history=10,
                                      opts=pulumi.ResourceOptions(parent=self, depends_on=[ns]))
        self.kueue = release
        after = pulumi.ResourceOptions(parent=self, depends_on=[release])  # the CRDs come with the chart
        topologies = {
            t: CustomObject(f"{name}-topology-{t}", topology(region, t), after)
            for t in sorted(region.kueue.topologies)}
        for pool in region.pools:
            deps = [release] + ([topologies[pool.topology]] if pool.topology else [])
            CustomObject(f"{name}-flavor-{pool.name}", resource_flavor(region, pool),
                         pulumi.ResourceOptions(parent=self, depends_on=deps))
        CustomObject(f"{name}-cohort", cohort(region, args.lendable), after)
        for priority in PRIORITIES:
            CustomObject(f"{name}-priority-{priority}", workload_priority_class(region, priority), after)
        self.cohort_name = pulumi.Output.from_input(region.name)
        self.register_outputs({"cohortName": self.cohort_name})
