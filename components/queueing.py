"""Queueing: the Kueue chart from the mirror, a ResourceFlavor per pool, topologies, a Cohort per region,
priorities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import labels as L
from components.custom_object import CustomObject
from components.helm import chart_source, mirror_repositories
from components.network_operator import rdma_quota
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


# Resource name prefixes Kueue leaves to the namespace's ResourceQuota. Under Kueue's default undeclared-resource
# handling a pod asking for a resource no ClusterQueue covers is inadmissible; ephemeral storage and hugepages are
# node-local and capped per tenant by its ResourceQuota. RDMA devices (rdma/) are queue resources of the fabric
# pools' flavors.
KUEUE_EXCLUDED_PREFIXES = ("ephemeral-storage", "hugepages-")
# The DRA driver's ComputeDomain channel: the DeviceClass its ResourceClaimTemplates name (chart 0.4.1,
# templates/deviceclass-compute-domain-default-channel.yaml), and the resource Kueue counts it as.
COMPUTE_DOMAIN_CHANNEL_CLASS = "compute-domain-default-channel.nvidia.com"
COMPUTE_DOMAIN_CHANNEL = "nvidia.com/compute-domain-channel"


# Kueue's integrations (the chart's default list), each with the owner (apiVersion prefix, kind) of the objects it
# manages: Kueue leaves an object whose controller owner is one of these (or a ReplicaSet it walks through) to
# that owner's workload (jobframework.FindAncestorJobManagedByKueue at v0.19.2)
FRAMEWORKS: dict[str, tuple[str, str] | None] = {
    "batch/job": ("batch/", "Job"), "kubeflow.org/mpijob": ("kubeflow.org/", "MPIJob"),
    "ray.io/rayjob": ("ray.io/", "RayJob"), "ray.io/rayservice": ("ray.io/", "RayService"),
    "ray.io/raycluster": ("ray.io/", "RayCluster"), "jobset.x-k8s.io/jobset": ("jobset.x-k8s.io/", "JobSet"),
    "workload.codeflare.dev/appwrapper": ("workload.codeflare.dev/", "AppWrapper"),
    "trainer.kubeflow.org/trainjob": ("trainer.kubeflow.org/", "TrainJob"), "pod": None,
    "deployment": ("apps/", "Deployment"), "statefulset": ("apps/", "StatefulSet"),
    "leaderworkerset.x-k8s.io/leaderworkerset": ("leaderworkerset.x-k8s.io/", "LeaderWorkerSet")}
MANAGED_OWNERS = (*(o for o in FRAMEWORKS.values() if o is not None), ("apps/", "ReplicaSet"))


def manager_config(region: model.Region) -> dict[str, Any]:
    """Kueue's Configuration (config.kueue.x-k8s.io/v1beta2, apis/config/v1beta2/configuration_types.go at v0.19.2):
    the chart's defaults, plus
    - ``managedJobsNamespaceSelector``: only tenant namespaces. The chart derives its pod webhooks' namespace
      selector from it, so while Kueue is down the GPU operator's and other system pods are still created.
    - ``resources.excludeResourcePrefixes``: resources Kueue leaves to the ResourceQuota (KUEUE_EXCLUDED_PREFIXES).
    - ``resources.deviceClassMappings``: with the DRA driver, ComputeDomain channels count as
      COMPUTE_DOMAIN_CHANNEL; Kueue's DRA integration (on by default since v0.18) refuses a claim whose DeviceClass
      it has no mapping for."""
    resources: dict[str, Any] = {"excludeResourcePrefixes": list(KUEUE_EXCLUDED_PREFIXES)}
    if region.dra_driver is not None:
        resources["deviceClassMappings"] = [{"name": COMPUTE_DOMAIN_CHANNEL,
                                             "deviceClassNames": [COMPUTE_DOMAIN_CHANNEL_CLASS]}]
    return {
        # the chart's default Configuration (charts/kueue/values.yaml, managerConfig.controllerManagerConfigYaml)
        "apiVersion": "config.kueue.x-k8s.io/v1beta2", "kind": "Configuration",
        "health": {"healthProbeBindAddress": ":8081"},
        # ours: the ClusterQueue usage and quota gauges showback reads (off by default; Configuration
        # metrics.enableClusterQueueResources, apis/config/v1beta2/configuration_types.go at v0.19.2)
        "metrics": {"bindAddress": ":8443", "enableClusterQueueResources": True},
        "webhook": {"port": 9443},
        "leaderElection": {"leaderElect": True, "resourceName": "c1f6bfd2.kueue.x-k8s.io"},
        "controller": {"groupKindConcurrency": {
            "Job.batch": 5, "Pod": 5, "Workload.kueue.x-k8s.io": 10, "LocalQueue.kueue.x-k8s.io": 5,
            "ClusterQueue.kueue.x-k8s.io": 5, "ResourceFlavor.kueue.x-k8s.io": 1}},
        "clientConnection": {"qps": 300, "burst": 500},
        "integrations": {"frameworks": list(FRAMEWORKS)},
        # ours
        "managedJobsNamespaceSelector": L.tenant_namespaces(),
        "resources": resources,
    }


def helm_values(region: model.Region) -> dict[str, Any]:
    tag = "v" + region.kueue.chart_version.lstrip("v")  # the chart's appVersion: images are tagged like it
    system = region.system_nodes
    values: dict[str, Any] = {
        # metrics Service/ServiceMonitor need the Prometheus operator CRDs: same switch as the DCGM ServiceMonitor
        "enablePrometheus": region.gpu_operator.service_monitor,
        # the manager's webhook admits every pod of the tenant namespaces: more than one replica, spread over the
        # system nodes, kept through drains by a PodDisruptionBudget
        "controllerManager": {
            "replicas": region.kueue.replicas,
            "podDisruptionBudget": {"enabled": region.kueue.replicas > 1, "minAvailable": 1},
            "manager": {"priorityClassName": "system-cluster-critical"},
            "nodeSelector": dict(system.node_selector),
            "tolerations": [dict(t) for t in system.tolerations],
            "topologySpreadConstraints": [{
                "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
                # the chart's selector labels (templates/_helpers.tpl, kueue.selectorLabels)
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "kueue",
                                                  "app.kubernetes.io/instance": RELEASE,
                                                  "control-plane": "controller-manager"}}}],
        },
        "managerConfig": {"controllerManagerConfigYaml": yaml.safe_dump(manager_config(region), sort_keys=False)},
    }
    mirror_repositories(region, values, charts.repositories("kueue", region.kueue.chart_version), tag=tag)
    values["controllerManager"]["manager"]["image"]["pullPolicy"] = "IfNotPresent"
    return values


def resource_flavor(region: model.Region, pool: model.Pool) -> dict[str, Any]:
    """One flavor per pool: pods land on the pool's nodes, with the product GFD reports there. A pool with a
    topology gets a topology-aware flavor (Kueue reads the levels' labels off the nodes the flavor selects)."""
    # the architecture too: Kueue then skips this flavor for a pod that asks for another (nodeSelector or
    # affinity on kubernetes.io/arch), and puts its own selector on the pods it admits here
    spec: dict[str, Any] = {"nodeLabels": {L.POOL: pool.name, L.ARCH: pool.gpu.arch,
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
    (within their borrowing limits) instead of leaving them idle, with the CPU and memory of their nodes (the
    pool's host share per GPU, CPU with the region's overcommit), in a DRA region the ComputeDomain channels and on
    a fabric pool the RDMA devices to go with them."""
    import math

    spec: dict[str, Any] = {}
    dra_pools = set(region.dra_driver.pools) if region.dra_driver else set()
    rdma = region.rdma_resources
    covered = ["cpu", "memory", L.GPU_RESOURCE] + ([COMPUTE_DOMAIN_CHANNEL] if dra_pools else []) + rdma
    flavors = []
    for name, gpus in sorted(lendable.items()):
        pool = region.pool(name)
        if gpus <= 0 or pool is None:
            continue
        cpu, memory_gib = pool.host_per_gpu
        physical = gpus / pool.sharing.replicas  # a time-sliced pool lends replicas of its GPUs
        resources = [{"name": "cpu", "nominalQuota": math.ceil(physical * cpu * region.allocation.cpu_overcommit)},
                     {"name": "memory", "nominalQuota": f"{math.ceil(physical * memory_gib)}Gi"},
                     {"name": L.GPU_RESOURCE, "nominalQuota": gpus}]
        if dra_pools:
            resources.append({"name": COMPUTE_DOMAIN_CHANNEL, "nominalQuota": gpus if name in dra_pools else 0})
        mine = pool.fabric.resources if pool.fabric is not None and region.fabric is not None else ()
        resources += [{"name": r, "nominalQuota": rdma_quota(pool, gpus) if r in mine else 0} for r in rdma]
        flavors.append({"name": name, "resources": resources})
    if flavors:
        spec["resourceGroups"] = [{"coveredResources": covered, "flavors": flavors}]
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
