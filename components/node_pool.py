"""GpuNodePool: the nodes of one GPU pool, through Cluster API or by labelling existing (static) nodes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import labels as L
from components.custom_object import CustomObject
from sovcloud.config import model
from sovcloud.config.model import thaw

CAPI_GROUP = "cluster.x-k8s.io"
BOOTSTRAP_GROUP = "bootstrap.cluster.x-k8s.io"
INFRA_GROUP = "infrastructure.cluster.x-k8s.io"
INFRA_KINDS = {"metal3": "Metal3MachineTemplate", "openstack": "OpenStackMachineTemplate"}
AUTOSCALER = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-"
CAPACITY = "capacity.cluster-autoscaler.kubernetes.io/"
# pool config nodeCapacity field -> the autoscaler's clusterapi capacity annotation suffix
SCALE_FROM_ZERO = {"cpu": "cpu", "memory": "memory", "ephemeralDisk": "ephemeral-disk", "maxPods": "maxPods"}


@dataclass(frozen=True)
class GpuNodePoolArgs:
    region: model.Region
    pool: model.Pool


def node_labels(region: model.Region, pool: model.Pool) -> dict[str, str]:
    """Labels the pool's nodes carry: region and pool, accelerator, and the sharing config mig-manager or the
    device plugin read from the node."""
    out = {L.REGION: region.name, L.POOL: pool.name, L.CAPI_ACCELERATOR: pool.gpu.name.lower()}
    if pool.sharing.mode == "mig":
        out[L.MIG_CONFIG] = pool.mig_config
    elif pool.gpu.mig_capable:
        out[L.MIG_CONFIG] = L.MIG_DISABLED  # MIG-capable GPUs run whole: say so, do not inherit a default
    if pool.sharing.mode == "time-slicing":
        out[L.DEVICE_PLUGIN_CONFIG] = L.device_plugin_config_name(pool)
    return out


def template_node_labels(region: model.Region, pool: model.Pool) -> dict[str, str]:
    """The labels of a node of the pool once it runs: those set at registration, the architecture the kubelet
    writes, and the GFD product."""
    return {**node_labels(region, pool), L.ARCH: pool.gpu.arch,
            L.GPU_PRODUCT: L.product_label(pool, region.gpu_operator.mig_strategy)}


def machine_name(region: model.Region, pool: model.Pool) -> str:
    return f"{region.cluster_name}-{pool.name}"


def template_name(region: model.Region, pool: model.Pool, spec: dict[str, Any]) -> str:
    """Cluster API templates are immutable (CAPO's webhook refuses edits; the CAPI book says to create a new one):
    the name carries a hash of the spec, so a change makes a new template and the MachineDeployment rolls to it."""
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]
    return f"{machine_name(region, pool)}-{digest}"


def _template(region: model.Region, pool: model.Pool, api_version: str, kind: str,
              spec: dict[str, Any]) -> dict[str, Any]:
    """A Cluster API template of the pool, in the cluster's namespace, named by a hash of its spec."""
    return {"apiVersion": api_version, "kind": kind,
            "metadata": {"name": template_name(region, pool, spec), "namespace": region.cluster_namespace,
                         "labels": {**L.common(region), L.POOL: pool.name}},
            "spec": spec}


def kubeadm_config_template(region: model.Region, pool: model.Pool) -> dict[str, Any]:
    """KubeadmConfigTemplate (v1beta2): node labels through the kubelet, the GPU taint at registration."""
    node_label_arg = ",".join(f"{k}={v}" for k, v in sorted(node_labels(region, pool).items()))
    spec = {"template": {"spec": {"joinConfiguration": {"nodeRegistration": {
        "kubeletExtraArgs": [{"name": "node-labels", "value": node_label_arg}],
        "taints": [dict(L.GPU_TAINT)],
    }}}}}
    return _template(region, pool, f"{BOOTSTRAP_GROUP}/v1beta2", "KubeadmConfigTemplate", spec)


def metal3_template(region: model.Region, pool: model.Pool) -> dict[str, Any]:
    """Metal3MachineTemplate (v1beta2, the version CAPM3 v1.13 stores; v1beta1 is deprecated there): image and host
    selection for bare-metal GPU servers. v1beta2 names the image format ``diskFormat`` and the data template a
    ``{name}`` reference (infrastructure.cluster.x-k8s.io_metal3machinetemplates.yaml)."""
    m = thaw(pool.provisioner.machine)
    image = {"url": m["image"]["url"], "checksum": m["image"]["checksum"],
             "checksumType": m["image"].get("checksumType", "sha256"), "diskFormat": m["image"].get("format", "raw")}
    spec: dict[str, Any] = {"image": image}
    if "hostSelector" in m:
        spec["hostSelector"] = m["hostSelector"]
    if "dataTemplate" in m:
        spec["dataTemplate"] = {"name": m["dataTemplate"]}
    return _template(region, pool, f"{INFRA_GROUP}/v1beta2", "Metal3MachineTemplate", {"template": {"spec": spec}})


def openstack_template(region: model.Region, pool: model.Pool) -> dict[str, Any]:
    """OpenStackMachineTemplate: flavor, image and cloud identity for OpenStack-provisioned GPU servers."""
    m = thaw(pool.provisioner.machine)
    spec: dict[str, Any] = {"flavor": m["flavor"], "image": {"filter": {"name": m["image"]}},
                            "identityRef": m["identityRef"]}
    if "sshKeyName" in m:
        spec["sshKeyName"] = m["sshKeyName"]
    if "rootVolumeGiB" in m:
        spec["rootVolume"] = {"sizeGiB": m["rootVolumeGiB"]}
    return _template(region, pool, f"{INFRA_GROUP}/v1beta1", "OpenStackMachineTemplate",
                     {"template": {"spec": spec}})


def infrastructure_template(region: model.Region, pool: model.Pool) -> dict[str, Any]:
    return (metal3_template if pool.provisioner.infrastructure == "metal3" else openstack_template)(region, pool)


def machine_deployment(region: model.Region, pool: model.Pool, bootstrap_name: str, infra_name: str
                       ) -> dict[str, Any]:
    """MachineDeployment (v1beta2) on the named templates, with the cluster-autoscaler bounds and scale-from-zero
    capacity."""
    name = machine_name(region, pool)
    selector = {"cluster.x-k8s.io/cluster-name": region.cluster_name, L.POOL: pool.name}
    # the autoscaler's clusterapi provider uses gpu-type as the resource *name* it advertises for a node from zero
    annotations = {
        f"{CAPACITY}gpu-type": L.GPU_RESOURCE,
        f"{CAPACITY}gpu-count": str(pool.gpus_per_node),
        L.GPU_PRODUCT_ANNOTATION: pool.gpu.gfd_product,
        # the template node the autoscaler imagines from zero must match the pool's Kueue flavor, whose node
        # selector includes the product GPU Feature Discovery will write: without it no queued pod fits the template
        f"{CAPACITY}labels": ",".join(f"{k}={v}" for k, v in sorted(template_node_labels(region, pool).items())),
        f"{CAPACITY}taints": L.GPU_TAINT_TEXT,
    }
    spec: dict[str, Any] = {"clusterName": region.cluster_name, "selector": {"matchLabels": selector}}
    if pool.provisioner.autoscaling is None:
        spec["replicas"] = pool.nodes
    else:
        # No replicas: the autoscaler owns the size. Cluster API's autoscaling guide leaves spec.replicas unset when
        # the min/max annotations are set (the MachineDeployment webhook then starts it at the minimum); a field the
        # stack set would be reverted to the declared size on every `pulumi up`.
        lo, hi = pool.provisioner.autoscaling
        annotations[f"{AUTOSCALER}min-size"] = str(lo)
        annotations[f"{AUTOSCALER}max-size"] = str(hi)
        # the node shape the autoscaler assumes when the group has no node to copy (min 0 requires it)
        for option, key in SCALE_FROM_ZERO.items():
            if option in pool.provisioner.node_capacity:
                annotations[f"{CAPACITY}{key}"] = str(pool.provisioner.node_capacity[option])
    template_spec: dict[str, Any] = {
        "clusterName": region.cluster_name,
        "version": f"v{region.kubernetes_version}",
        "bootstrap": {"configRef": {"apiGroup": BOOTSTRAP_GROUP, "kind": "KubeadmConfigTemplate",
                                    "name": bootstrap_name}},
        "infrastructureRef": {"apiGroup": INFRA_GROUP, "kind": INFRA_KINDS[pool.provisioner.infrastructure or ""],
                              "name": infra_name},
    }
    if pool.provisioner.failure_domain:
        template_spec["failureDomain"] = pool.provisioner.failure_domain
    spec["template"] = {"metadata": {"labels": {**selector, L.REGION: region.name}}, "spec": template_spec}
    if pool.provisioner.infrastructure == "metal3":
        # bare metal has no spare hosts to surge onto: replace in place, a few nodes at a time
        spec["rollout"] = {"strategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": max(1, pool.nodes // 20)}}}
    return {"apiVersion": f"{CAPI_GROUP}/v1beta2", "kind": "MachineDeployment",
            "metadata": {"name": name, "namespace": region.cluster_namespace,
                         "labels": {**L.common(region), L.POOL: pool.name}, "annotations": annotations},
            "spec": spec}


def node_patch(region: model.Region, pool: model.Pool, node: str) -> dict[str, Any]:
    """Server-side-apply patch for one existing node: pool labels and annotations, each key owned on its own.

    No taints: ``spec.taints`` is an atomic list under server-side apply, so owning it would mean owning the taints
    the node lifecycle controller sets (``node.kubernetes.io/unreachable`` and the like) and failing the next
    ``pulumi up`` with a field conflict on any node that is down. Static GPU nodes register with the GPU taint
    (kubelet ``registerWithTaints``); ``sovcloud status`` reports a pool node without it."""
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node, "labels": {**L.common(region), **node_labels(region, pool)},
                         # GPUs the node brings to the pool: the capacity policy counts pools from these
                         "annotations": {L.GPUS: str(pool.gpus_per_node)}}}


class GpuNodePool(pulumi.ComponentResource):
    """One GPU node pool. Cluster API objects go to the provider given for them (the management cluster)."""

    gpu_model: pulumi.Output[str]
    nodes: pulumi.Output[int]
    gpu_capacity: pulumi.Output[int]

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovcloud:nodepools:GpuNodePool", name, None, opts)
        region, pool = args.region, args.pool
        child = pulumi.ResourceOptions(parent=self)
        if pool.provisioner.kind == "cluster-api":
            kct_body, infra_body = kubeadm_config_template(region, pool), infrastructure_template(region, pool)
            kct = CustomObject(f"{name}-kubeadmconfig", kct_body, child)
            infra = CustomObject(f"{name}-machinetemplate", infra_body, child)
            scaled = pool.provisioner.autoscaling is not None
            md_body = machine_deployment(region, pool, kct_body["metadata"]["name"], infra_body["metadata"]["name"])
            CustomObject(f"{name}-machinedeployment", md_body,
                         pulumi.ResourceOptions(parent=self, depends_on=[kct, infra],
                                                ignore_changes=["spec.replicas"] if scaled else None))
        else:
            for node in pool.provisioner.node_names:
                body = node_patch(region, pool, node)
                k8s.core.v1.NodePatch(f"{name}-{node}", metadata=body["metadata"], opts=child)
        self.gpu_model = pulumi.Output.from_input(pool.gpu.name)
        self.nodes = pulumi.Output.from_input(pool.nodes)
        self.gpu_capacity = pulumi.Output.from_input(pool.gpus)
        self.register_outputs({"gpuModel": self.gpu_model, "nodes": self.nodes, "gpuCapacity": self.gpu_capacity})
