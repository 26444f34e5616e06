"""The compute fabric: the NVIDIA Network Operator (chart from the region's mirror; with SR-IOV pools its SR-IOV
Network Operator subchart and a SriovNetworkNodePolicy per pool and rail) and its NicClusterPolicy, built from the
pools' fabric sections; and, per tenant, the fabric networks and their addresses.

Upstream at v26.4.1 (Mellanox/network-operator): the policy must be named ``nic-cluster-policy``
(pkg/consts); operand images and tags as hack/release.yaml pins them (``nvcr.io/nvidia/mellanox``, tag
``network-operator-v26.4.1``; the DOCA driver its own version); device plugin configs as the webhook schemas
describe them (rdma_shared_device_plugin.json, net_device.json). Tenant networks are NetworkAttachmentDefinitions
(the chart's CRD) in the tenant's namespace, addressed by an nv-ipam IPPool (nv-ipam.nvidia.com/v1alpha1, in the
operator's namespace, where nv-ipam reads pools) cut from the region's fabric subnet by the tenant's segment:
- InfiniBand, shared: ``ipoib`` on the host's child interface of the tenant's partition (``<hca>.<pkey | 0x8000>``,
  created on the nodes by the centre: ipoib-cni takes its partition from its master);
- InfiniBand, sriov: ``ib-sriov`` with ``pkey``, which ib-kubernetes puts the pod's VF GUIDs in through UFM;
- RoCE, shared: ``macvlan`` on the host's VLAN interface (``<nic>.<vlan>``);
- RoCE, sriov: ``sriov`` with ``vlan``.
One network per HCA (rail): a job's pods attach all of them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import labels as L
from components.custom_object import CustomObject
from components.helm import chart_source, mirror, mirror_repositories
from sovcloud.config import charts, model
from sovcloud.keys import NETWORK_OPERATOR_NAMESPACE as NAMESPACE

RELEASE = "network-operator"
POLICY = "nic-cluster-policy"  # the one name the operator reconciles
OPERANDS = "nvcr.io/nvidia/mellanox"
RDMA_HCA_MAX = 63  # pods per HCA the shared device plugin admits (the upstream example's value)
MELLANOX_NIC = "feature.node.kubernetes.io/pci-15b3.present"  # NFD's label of a node with a Mellanox NIC


@dataclass(frozen=True)
class NetworkOperatorArgs:
    region: model.Region


def helm_values(region: model.Region) -> dict[str, Any]:
    """The chart from the mirror: the operator (the GPU operator runs NFD), with SR-IOV pools the SR-IOV Network
    Operator subchart too."""
    fabric = region.fabric
    assert fabric is not None
    sriov = any(p.fabric and p.fabric.rdma == "sriov" for p in region.fabric_pools)
    values: dict[str, Any] = {
        # the GPU operator's NFD already labels the NICs (feature.node.kubernetes.io/pci-15b3.present); the
        # chart's NodeFeatureRules would need NFD's CRD before that release has installed it
        "nfd": {"enabled": False, "deployNodeFeatureRules": False},
        # with SR-IOV pools, the SR-IOV Network Operator: its config daemon installs the sriov and ib-sriov CNI
        # plugins on those nodes and its device plugin serves each rail's VFs (SriovNetworkNodePolicy)
        "sriovNetworkOperator": {"enabled": sriov},
        "maintenanceOperator": {"enabled": False},
        "operator": {"nodeSelector": dict(region.system_nodes.node_selector),
                     "tolerations": [dict(t) for t in region.system_nodes.tolerations]},
    }
    mirror_repositories(region, values, charts.repositories("network-operator", fabric.chart_version))
    if sriov:
        values["sriov-network-operator"] = sriov_operator_values(region)
    return values


# The SR-IOV Network Operator subchart's images (values.yaml sriov-network-operator.images at v26.4.1): whole
# references, put under the mirror with their upstream path and tag
SRIOV_IMAGES = {
    "operator": "nvcr.io/nvidia/mellanox/sriov-network-operator",
    "sriovConfigDaemon": "nvcr.io/nvidia/mellanox/sriov-network-operator-config-daemon",
    "sriovCni": "nvcr.io/nvidia/mellanox/sriov-cni", "ibSriovCni": "nvcr.io/nvidia/mellanox/ib-sriov-cni",
    "ovsCni": "nvcr.io/nvidia/mellanox/ovs-cni-plugin", "rdmaCni": "nvcr.io/nvidia/mellanox/rdma-cni",
    "sriovDevicePlugin": "nvcr.io/nvidia/mellanox/sriov-network-device-plugin",
    "sriovDraDriver": "nvcr.io/nvidia/mellanox/dra-driver-sriov",
    "webhook": "nvcr.io/nvidia/mellanox/sriov-network-operator-webhook"}
SRIOV_INJECTOR = ("ghcr.io/k8snetworkplumbingwg/network-resources-injector", "v1.7.0")
# the subchart's own defaults the parent chart leaves (the metrics exporter is off; kept on the mirror all the same)
SRIOV_OTHER = {"metricsExporter": "ghcr.io/k8snetworkplumbingwg/sriov-network-metrics-exporter",
               "metricsExporterKubeRbacProxy": "quay.io/brancz/kube-rbac-proxy:v0.21.2"}


def sriov_operator_values(region: model.Region) -> dict[str, Any]:
    """The SR-IOV Network Operator: resources prefixed rdma/ (queue resources of the fabric flavors), every image
    from the mirror, its config daemon on the nodes with a Mellanox NIC once their driver is ready."""
    fabric = region.fabric
    assert fabric is not None
    images = {key: f"{mirror(region, repo)}:{fabric.component_version}" for key, repo in SRIOV_IMAGES.items()}
    images["resourcesInjector"] = f"{mirror(region, SRIOV_INJECTOR[0])}:{SRIOV_INJECTOR[1]}"
    images.update({key: mirror(region, ref) for key, ref in SRIOV_OTHER.items()})
    # the chart's selector (beta.kubernetes.io/os: linux, operator.mofed.wait: "false", which the Network Operator
    # also sets on nodes where it runs no driver: handleWaitLabelsNoConfig) plus the NIC nodes NFD labels: no node
    # label of sovcloud's own, which would roll every node of the pools (the kubelet's labels are in the template)
    selector = {MELLANOX_NIC: "true", "network.nvidia.com/operator.mofed.wait": "false"}
    system = region.system_nodes
    return {"operator": {"resourcePrefix": "rdma", "nodeSelector": dict(system.node_selector),
                         "tolerations": [dict(t) for t in system.tolerations]},
            "images": images, "sriovOperatorConfig": {"deploy": True, "configDaemonNodeSelector": selector}}


def sriov_node_policies(region: model.Region) -> list[dict[str, Any]]:
    """Per SR-IOV pool, a SriovNetworkPoolConfig and a SriovNetworkNodePolicy per rail: the VFs of that rail's port
    as that rail's resource. ``externallyManaged``: the VFs exist already (set up with the node image), so the
    operator neither creates them nor changes firmware (no reboot); it still drains a node to configure its VFs
    when the policies change (NeedToUpdateSriov), at most the pool config's maxUnavailable of the pool at a time."""
    fabric = region.fabric
    assert fabric is not None
    out = []
    for pool in region.fabric_pools:
        f = pool.fabric
        assert f is not None
        if f.rdma != "sriov":
            continue
        out.append({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkPoolConfig",
                    "metadata": {"name": pool.name, "namespace": NAMESPACE, "labels": L.common(region)},
                    "spec": {"nodeSelector": {"matchLabels": {L.POOL: pool.name}},
                             "maxUnavailable": fabric.sriov_max_unavailable}})
        for rail, (resource, interface) in enumerate(zip(f.resources, f.interfaces, strict=True)):
            out.append({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodePolicy",
                        "metadata": {"name": f"{pool.name}-rail{rail}", "namespace": NAMESPACE,
                                     "labels": L.common(region)},
                        "spec": {"resourceName": _resource_name(resource), "nodeSelector": {L.POOL: pool.name},
                                 "nicSelector": {"vendor": "15b3", "pfNames": [interface]}, "numVfs": f.vfs_per_hca,
                                 "deviceType": "netdevice", "isRdma": True,
                                 "linkType": "ib" if f.kind == "infiniband" else "eth", "externallyManaged": True}})
    return out


def _operand(region: model.Region, image: str, version: str, **extra: Any) -> dict[str, Any]:
    return {"image": image, "repository": mirror(region, OPERANDS), "version": version, **extra}


def _resource_name(resource: str) -> str:
    return resource.split("/", 1)[1]


def nic_cluster_policy(region: model.Region) -> dict[str, Any]:
    """The NicClusterPolicy: the driver (or the hosts'), device plugins per fabric kind and RDMA mode, Multus and
    the CNI plugins, nv-ipam, and ib-kubernetes where InfiniBand pools hand out VFs; on the fabric pools' nodes."""
    fabric = region.fabric
    assert fabric is not None
    pools = region.fabric_pools
    version = fabric.component_version
    # the DaemonSets (driver, device plugins, CNI, nv-ipam's node agent): where the driver container runs, on every
    # GPU node with a Mellanox NIC, since GPUDirect RDMA is a region-wide ClusterPolicy setting and the GPU
    # operator's validator waits on such a node for the DOCA driver (/run/mellanox/drivers/.driver-ready); the
    # device plugins find no HCA of their selectors on the other pools. With the hosts' driver, the fabric pools.
    placed = region.pools if fabric.driver == "container" else pools
    match = [{"key": L.POOL, "operator": "In", "values": sorted(p.name for p in placed)}]
    if fabric.driver == "container":
        match.append({"key": MELLANOX_NIC, "operator": "In", "values": ["true"]})
    system = region.system_nodes
    spec: dict[str, Any] = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": match}]}},
        "tolerations": [dict(L.GPU_TOLERATION)],
        # the Deployments (ib-kubernetes, nv-ipam's controller) take these instead: the system nodes
        "deploymentTolerations": [dict(t) for t in system.tolerations],
    }
    if system.node_selector:
        spec["deploymentNodeAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": k, "operator": "In", "values": [v]}
                                  for k, v in sorted(system.node_selector.items())]}]}}
    if fabric.driver == "container":
        spec["ofedDriver"] = _operand(region, "doca-driver", fabric.driver_version or "", upgradePolicy={
            "autoUpgrade": True, "maxParallelUpgrades": fabric.driver_max_parallel_upgrades,
            # force: Kueue's plain pods have no controller, and a drain that cannot evict them fails the upgrade
            "drain": {"enable": True, "force": True, "deleteEmptyDir": True, "timeoutSeconds": 600}})
    # the shared device's resources; SR-IOV pools' VFs are the SR-IOV operator's (sriov_node_policies)
    shared: dict[str, set[str]] = {}
    for p in pools:
        f = p.fabric
        assert f is not None
        if f.rdma == "shared":
            shared.setdefault(_resource_name(f.resources[0]), set()).update(f.interfaces)
    if shared:
        spec["rdmaSharedDevicePlugin"] = _operand(region, "k8s-rdma-shared-dev-plugin", version, config=json.dumps(
            {"configList": [{"resourceName": name, "rdmaHcaMax": RDMA_HCA_MAX,
                             "selectors": {"vendors": ["15b3"], "ifNames": sorted(ifs)}}
                            for name, ifs in sorted(shared.items())]}, sort_keys=True))
    if any(p.fabric and p.fabric.kind == "infiniband" and p.fabric.rdma == "sriov" for p in pools):
        spec["ibKubernetes"] = _operand(region, "ib-kubernetes", version, ufmSecret=fabric.ufm_secret,
                                        pKeyGUIDPoolRangeStart=fabric.guid_pool[0],
                                        pKeyGUIDPoolRangeEnd=fabric.guid_pool[1], periodicUpdateSeconds=5)
    secondary: dict[str, Any] = {"cniPlugins": _operand(region, "plugins", version),
                                 "multus": _operand(region, "multus-cni", version)}
    if any(p.fabric and p.fabric.kind == "infiniband" and p.fabric.rdma == "shared" for p in pools):
        secondary["ipoib"] = _operand(region, "ipoib-cni", version)
    spec["secondaryNetwork"] = secondary
    spec["nvIpam"] = _operand(region, "nvidia-k8s-ipam", version, enableWebhook=False)
    return {"apiVersion": "mellanox.com/v1alpha1", "kind": "NicClusterPolicy",
            "metadata": {"name": POLICY, "labels": L.common(region)}, "spec": spec}


def pkey(segment: int) -> str:
    return f"0x{segment:04x}"


def network_name(kind: str, rail: int) -> str:
    return f"fabric-{'ib' if kind == 'infiniband' else 'roce'}-{rail}"


def tenant_networks(region: model.Region, tenant: model.Tenant, pools: list[model.Pool]) -> list[dict[str, Any]]:
    """The tenant's NetworkAttachmentDefinitions, one per rail of each fabric kind its pools have."""
    segment = tenant.fabric_segment
    assert segment is not None
    out: dict[str, dict[str, Any]] = {}
    for p in pools:
        f = p.fabric
        assert f is not None
        for rail, interface in enumerate(f.interfaces):
            name = network_name(f.kind, rail)
            if name in out:
                continue
            ipam = {"type": "nv-ipam", "poolName": ip_pool_name(tenant)}
            if f.kind == "infiniband" and f.rdma == "shared":
                config: dict[str, Any] = {"type": "ipoib", "master": f"{interface}.{segment | 0x8000:04x}"}
            elif f.kind == "infiniband":
                config = {"type": "ib-sriov", "pkey": pkey(segment), "link_state": "enable",
                          "ibKubernetesEnabled": True}
            elif f.rdma == "shared":
                config = {"type": "macvlan", "master": f"{interface}.{segment}", "mode": "bridge"}
            else:
                config = {"type": "sriov", "vlan": segment}
            annotations = {"sovcloud.kr/fabric": f"{f.kind} {f.rdma}"}
            rail_resource = f.rail_resource(rail)
            if rail_resource is not None:  # Multus takes this network's VF from this rail's resource
                annotations["k8s.v1.cni.cncf.io/resourceName"] = rail_resource
            out[name] = {
                "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": name, "namespace": tenant.name, "annotations": annotations,
                             "labels": {**L.common(region, owner=tenant.name), L.TENANT: tenant.name}},
                "spec": {"config": json.dumps({"cniVersion": "0.3.1", "name": name, **config, "ipam": ipam},
                                              sort_keys=True)}}
    return [out[k] for k in sorted(out)]


def ip_pool_name(tenant: model.Tenant) -> str:
    return f"tenant-{tenant.name}"


def tenant_ip_pool(region: model.Region, tenant: model.Tenant, pools: list[model.Pool]) -> dict[str, Any]:
    fabric = region.fabric
    assert fabric is not None and tenant.fabric_segment is not None
    return {"apiVersion": "nv-ipam.nvidia.com/v1alpha1", "kind": "IPPool",
            "metadata": {"name": ip_pool_name(tenant), "namespace": NAMESPACE,
                         "labels": {**L.common(region, owner=tenant.name), L.TENANT: tenant.name}},
            "spec": {"subnet": fabric.tenant_subnet(tenant.fabric_segment),
                     "perNodeBlockSize": fabric.per_node_block_size,
                     "nodeSelector": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": L.POOL, "operator": "In", "values": sorted(p.name for p in pools)}]}]}}}


def rdma_quota(pool: model.Pool, gpus: int) -> int:
    """RDMA units of each of the pool's resources for ``gpus`` GPUs: one shared-device unit per GPU (a pod per GPU
    at most), or on each rail a VF per node's worth of GPUs."""
    f = pool.fabric
    assert f is not None
    if f.rdma == "shared":
        return gpus
    return math.ceil(gpus / pool.gpus_per_node)


class NetworkOperator(pulumi.ComponentResource):
    """The region's Network Operator: namespace, release, NicClusterPolicy."""

    def __init__(self, name: str, args: NetworkOperatorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovcloud:fabric:NetworkOperator", name, None, opts)
        region = args.region
        fabric = region.fabric
        assert fabric is not None
        child = pulumi.ResourceOptions(parent=self)
        ns = k8s.core.v1.Namespace(f"{name}-namespace", metadata={"name": NAMESPACE, "labels": {
            **L.common(region), "pod-security.kubernetes.io/enforce": "privileged"}}, opts=child)
        self.release = k8s.helm.v3.Release(
            f"{name}-release", name=RELEASE, namespace=NAMESPACE, create_namespace=False,
            **chart_source(region, fabric.chart, fabric.chart_version), values=helm_values(region), atomic=True,
            timeout=900, max_history=10, opts=pulumi.ResourceOptions(parent=self, depends_on=[ns]))
        # tenants' networks and IP pools wait for this: nv-ipam's IPPool CRD comes with the policy's nvIpam
        self.policy = CustomObject(f"{name}-policy", nic_cluster_policy(region),
                                   pulumi.ResourceOptions(parent=self, depends_on=[self.release]))
        for body in sriov_node_policies(region):
            CustomObject(f"{name}-{body['metadata']['name']}", body,
                         pulumi.ResourceOptions(parent=self, depends_on=[self.release]))
        self.register_outputs({})
