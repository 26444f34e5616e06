"""The compute fabric: the Network Operator's release and NicClusterPolicy from config, GPUDirect RDMA, each
tenant's networks and addresses on its own partition or VLAN, the RDMA quota, the config refusals and the pack's
fabric-isolation rule."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from click.testing import CliRunner

from components.network_operator import nic_cluster_policy, sriov_node_policies
from sovcloud import config
from sovcloud.cli import main
from sovcloud.config.errors import ConfigInvalid
from tests.conftest import REPO, Tree
from tests.test_components import kinds, one, release
from tests.test_policies import _labels, _namespace, validate_stack

CFG = config.load(REPO)


def test_the_national_halls_get_sr_iov_on_infiniband_with_ib_kubernetes() -> None:
    policy = nic_cluster_policy(CFG.regions["ncc-haenam"])
    assert (policy["apiVersion"], policy["kind"], policy["metadata"]["name"]) == (
        "mellanox.com/v1alpha1", "NicClusterPolicy", "nic-cluster-policy")  # the one name the operator reconciles
    spec = policy["spec"]
    mirror = "registry.ncc.example.kr/mirror/nvidia/mellanox"
    # the DOCA driver on every GPU node with a Mellanox NIC: GPUDirect RDMA is region-wide, and the GPU operator's
    # validator waits there for the driver
    assert spec["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": "sovcloud.kr/pool", "operator": "In",
                               "values": ["b200-hall-a", "b200-hall-b", "b200-hall-c", "b200-mig", "h200-hall-d"]},
                              {"key": "feature.node.kubernetes.io/pci-15b3.present", "operator": "In",
                               "values": ["true"]}]}]
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    driver = spec["ofedDriver"]
    assert (driver["image"], driver["repository"], driver["version"]) == (
        "doca-driver", mirror, "doca3.4.1-26.04-1.1.0.0-1")  # hack/release.yaml at v26.4.1
    assert driver["upgradePolicy"] == {"autoUpgrade": True, "maxParallelUpgrades": 16, "drain": {
        "enable": True, "force": True, "deleteEmptyDir": True, "timeoutSeconds": 600}}
    # the VFs are the SR-IOV Network Operator's: a resource per rail, each the VFs of one HCA's port, so that a
    # pod's VF on rail N is on HCA N; the VFs exist already (externallyManaged: no firmware change, no reboot)
    assert "sriovDevicePlugin" not in spec
    rails = ["ibp24s0", "ibp64s0", "ibp79s0", "ibp94s0", "ibp154s0", "ibp192s0", "ibp206s0", "ibp220s0"]
    objects = sriov_node_policies(CFG.regions["ncc-haenam"])
    policies = [o for o in objects if o["kind"] == "SriovNetworkNodePolicy"]
    assert len(policies) == 3 * 8
    # the operator still drains a node to configure its VFs when the policies change: 5% of a hall at a time
    assert [(o["metadata"]["name"], o["spec"]) for o in objects if o["kind"] == "SriovNetworkPoolConfig"] == [
        (hall, {"nodeSelector": {"matchLabels": {"sovcloud.kr/pool": hall}}, "maxUnavailable": "5%"})
        for hall in ("b200-hall-a", "b200-hall-b", "b200-hall-c")]
    hall_b = [p for p in policies if p["metadata"]["name"].startswith("b200-hall-b-")]
    assert [p["spec"] for p in hall_b] == [
        {"resourceName": f"ib_vf{n}", "nodeSelector": {"sovcloud.kr/pool": "b200-hall-b"},
         "nicSelector": {"vendor": "15b3", "pfNames": [rails[n]]}, "numVfs": 8, "deviceType": "netdevice",
         "isRdma": True, "linkType": "ib", "externallyManaged": True} for n in range(8)]
    assert {o["metadata"]["namespace"] for o in objects} == {"nvidia-network-operator"}
    ib = spec["ibKubernetes"]
    assert (ib["ufmSecret"], ib["pKeyGUIDPoolRangeStart"], ib["pKeyGUIDPoolRangeEnd"]) == (
        "ufm-credentials", "02:00:00:00:00:00:00:00", "02:FF:FF:FF:FF:FF:FF:FF")
    assert set(spec["secondaryNetwork"]) == {"cniPlugins", "multus"}  # no IPoIB: every pod has its own VFs
    assert "rdmaSharedDevicePlugin" not in spec
    for section in ("ibKubernetes", "nvIpam"):
        assert (spec[section]["repository"], spec[section]["version"]) == (mirror, "network-operator-v26.4.1")
    assert {(s["image"], s["repository"]) for s in spec["secondaryNetwork"].values()} == {
        ("plugins", mirror), ("multus-cni", mirror)}


def test_ulsan_racks_share_their_hcas_and_keep_the_hosts_driver() -> None:
    spec = nic_cluster_policy(CFG.regions["rdc-ulsan"])["spec"]
    assert "ofedDriver" not in spec and "ibKubernetes" not in spec and "sriovDevicePlugin" not in spec
    assert json.loads(spec["rdmaSharedDevicePlugin"]["config"]) == {"configList": [{
        "resourceName": "ib", "rdmaHcaMax": 63,
        "selectors": {"vendors": ["15b3"], "ifNames": ["ibp3s0", "ibp4s0", "ibp5s0", "ibp6s0"]}}]}
    assert spec["secondaryNetwork"]["ipoib"] == {"image": "ipoib-cni", "repository": "cr.ulsan.example.kr/mirror/"
                                                 "nvidia/mellanox", "version": "network-operator-v26.4.1"}


def test_gpudirect_rdma_follows_the_fabric_and_its_driver(shipped_synthesis) -> None:
    def rdma(region: str) -> dict[str, Any]:
        return release(shipped_synthesis(region), "gpu-operator")["values"]["driver"]["rdma"]

    assert rdma("ncc-haenam") == {"enabled": True, "useHostMofed": False}  # the DOCA driver container
    assert rdma("rdc-ulsan") == {"enabled": True, "useHostMofed": True}  # the trays' own DOCA
    assert rdma("rdc-gwangju") == {"enabled": False}


def test_the_network_operator_release_is_the_operator_alone_from_the_mirror(shipped_synthesis) -> None:
    s = shipped_synthesis("ncc-haenam")
    r = release(s, "network-operator")
    assert (r["chart"], r["version"], r["namespace"]) == ("network-operator", "26.4.1", "nvidia-network-operator")
    assert r["repositoryOpts"] == {"repo": "https://charts.ncc.example.kr/stable"}
    values = r["values"]
    # the GPU operator runs NFD; the SR-IOV Network Operator for the halls' VFs (its config daemon installs the
    # sriov and ib-sriov CNI plugins); no maintenance operator
    assert (values["nfd"], values["sriovNetworkOperator"], values["maintenanceOperator"]) == (
        {"enabled": False, "deployNodeFeatureRules": False}, {"enabled": True}, {"enabled": False})
    sriov = values["sriov-network-operator"]
    assert sriov["operator"]["resourcePrefix"] == "rdma"  # rdma/ib_vfN: the fabric flavors' queue resources
    # the config daemon on the NIC nodes once their driver is ready: labels the nodes carry already (a label of
    # sovcloud's own would roll every node of the pools)
    assert sriov["sriovOperatorConfig"] == {"deploy": True, "configDaemonNodeSelector": {
        "feature.node.kubernetes.io/pci-15b3.present": "true", "network.nvidia.com/operator.mofed.wait": "false"}}
    assert sriov["images"]["ibSriovCni"] == "registry.ncc.example.kr/mirror/nvidia/mellanox/ib-sriov-cni:" \
        "network-operator-v26.4.1"
    assert sriov["images"]["resourcesInjector"] == "registry.ncc.example.kr/mirror/k8snetworkplumbingwg/" \
        "network-resources-injector:v1.7.0"
    assert all(i.startswith("registry.ncc.example.kr/mirror/") for i in sriov["images"].values())
    # Ulsan shares its HCAs: no SR-IOV operator there
    assert release(shipped_synthesis("rdc-ulsan"), "network-operator")["values"]["sriovNetworkOperator"] == {
        "enabled": False}
    assert sriov["images"]["metricsExporterKubeRbacProxy"] == "registry.ncc.example.kr/mirror/brancz/" \
        "kube-rbac-proxy:v0.21.2"  # the subchart's own defaults, off, on the mirror all the same
    assert values["operator"]["repository"] == "registry.ncc.example.kr/mirror/nvidia/cloud-native"
    ns = one(s, "Namespace", "nvidia-network-operator")
    assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_a_tenant_gets_a_network_per_rail_on_its_own_partition(shipped_synthesis) -> None:
    s = shipped_synthesis("ncc-haenam")
    nads = sorted((r.inputs for r in kinds(s, "NetworkAttachmentDefinition")
                   if r.inputs["metadata"]["namespace"] == "dasom-bio-ai"), key=lambda n: n["metadata"]["name"])
    assert [n["metadata"]["name"] for n in nads] == [f"fabric-ib-{i}" for i in range(8)]
    for rail, n in enumerate(nads):
        assert n["metadata"]["annotations"]["k8s.v1.cni.cncf.io/resourceName"] == f"rdma/ib_vf{rail}"
        assert json.loads(n["spec"]["config"]) == {
            "cniVersion": "0.3.1", "name": n["metadata"]["name"], "type": "ib-sriov", "pkey": "0x0102",  # 258
            "link_state": "enable", "ibKubernetesEnabled": True,
            "ipam": {"type": "nv-ipam", "poolName": "tenant-dasom-bio-ai"}}
    pool = one(s, "IPPool", "tenant-dasom-bio-ai", "nvidia-network-operator").inputs["spec"]
    # block 258 of the /18s of 10.128.0.0/9: 10.128.0.0 + 258 x 16384; 8 addresses for each node of the three halls
    start = ipaddress.ip_address("10.128.0.0") + 258 * 16384
    assert pool["subnet"] == f"{start}/18" == "10.192.128.0/18"
    halls = sum(CFG.regions["ncc-haenam"].pool(f"b200-hall-{h}").nodes for h in "abc")
    assert pool["perNodeBlockSize"] == 8 and halls * 8 <= 2 ** 14 - 2  # a tenant on every hall still fits
    assert pool["nodeSelector"] == {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "sovcloud.kr/pool", "operator": "In", "values": ["b200-hall-b"]}]}]}


def test_a_shared_hca_tenant_network_is_ipoib_on_its_partitions_child_interface(shipped_synthesis) -> None:
    s = shipped_synthesis("rdc-ulsan")
    nad = one(s, "NetworkAttachmentDefinition", "fabric-ib-0", "orbit-lm").inputs
    config_ = json.loads(nad["spec"]["config"])
    assert (config_["type"], config_["master"]) == ("ipoib", "ibp3s0.8105")  # segment 261 = 0x105, full member
    assert "k8s.v1.cni.cncf.io/resourceName" not in nad["metadata"]["annotations"]
    hard = one(s, "ResourceQuota", "sovcloud-quota", "orbit-lm").inputs["spec"]["hard"]
    assert hard["requests.rdma/ib"] == "216"  # 144 guaranteed + 72 borrowable GPUs
    # pixelforge has no allocation on a fabric pool: no networks, no IP pool, and an RDMA quota of zero (an absent
    # key would be no limit)
    assert not [r for r in kinds(s, "NetworkAttachmentDefinition") if r.inputs["metadata"]["namespace"] == "pixelforge"]
    assert one(s, "ResourceQuota", "sovcloud-quota", "pixelforge").inputs["spec"]["hard"]["requests.rdma/ib"] == "0"


# ---------------------------------------------------------------------------------------------- config

@pytest.mark.parametrize(("region", "edit", "path", "text"), [
    ("rdc-gwangju", lambda r: r["pools"][0].update(fabric={"kind": "roce", "hcasPerNode": 2, "rdma": "shared",
                                                          "interfaces": ["ens1f0np0"]}),
     "pools[0].fabric", "needs the region's fabric section"),
    ("rdc-gwangju", lambda r: r["gpuOperator"].update(rdma=True), "gpuOperator.rdma", "GPUDirect RDMA without a "
     "fabric"),
    ("rdc-ulsan", lambda r: r["pools"][0].pop("fabric"), "fabric", "no pool declares a fabric"),
    ("rdc-ulsan", lambda r: r["gpuOperator"].update(rdma=False), "gpuOperator.rdma", "false on a region with a "
     "fabric"),
    ("ncc-haenam", lambda r: r["fabric"].pop("ufmSecret"), "fabric", "needs ufmSecret"),
    ("ncc-haenam", lambda r: r["prerequisites"].pop("secrets"), "fabric.ufmSecret", "is not a declared prerequisite"),
    ("rdc-ulsan", lambda r: r["fabric"]["ipam"].update(subnet="10.160.0.0/25"), "fabric.ipam.tenantPrefix",
     "/20 is not inside 10.160.0.0/25"),
    ("rdc-ulsan", lambda r: r["fabric"]["ipam"].update(perNodeBlockSize=32), "fabric.ipam", None),
    ("rdc-ulsan", lambda r: r["pools"][0]["fabric"].update(hcasPerNode=8), "pools[0].fabric.interfaces",
     "4 interfaces for 8 HCAs per node"),
    ("rdc-ulsan", lambda r: r["pools"][0]["fabric"].update(interfaces=["ibp0s0f0np0xy"]),
     "pools[0].fabric.interfaces[0]", "would pass Linux's 15 characters"),
])
def test_inconsistent_fabric_config_is_refused(tree: Tree, region: str, edit, path: str, text: str | None) -> None:
    tree.edit_region(region, edit)
    with pytest.raises(ConfigInvalid) as exc:
        config.load(tree.root)
    if text is None:  # the tenants' blocks no longer hold their nodes: each tenant on the pool says so
        assert sorted(e.file for e in exc.value.errors) == [
            "tenants/baram-shipyard.yaml", "tenants/hyeon-motors-ai.yaml", "tenants/orbit-lm.yaml"]
        assert all("nv-ipam gives each of the tenant's 144 fabric nodes a block of 32 addresses (4608), more than "
                   "its /20 holds" in e.message for e in exc.value.errors)
        return
    found = [e for e in exc.value.errors if e.path == path]
    assert found and text in found[0].message, [str(e) for e in exc.value.errors]


def test_a_tenant_on_a_fabric_pool_needs_its_own_segment_within_the_subnet(tree: Tree) -> None:
    tree.edit_tenant("orbit-lm", lambda t: t.pop("fabric"))
    with pytest.raises(ConfigInvalid) as exc:
        config.load(tree.root)
    (e,) = exc.value.errors
    assert (e.file, e.rule) == ("tenants/orbit-lm.yaml", "fabric")
    assert "needs its own segment there" in e.message
    tree.edit_tenant("orbit-lm", lambda t: t.update(fabric={"segment": 512}))  # the halls: 512 /18s in a /9
    with pytest.raises(ConfigInvalid) as exc:
        config.load(tree.root)
    assert [e.message for e in exc.value.errors] == [
        "512 is beyond ncc-haenam's 512 tenant blocks of /18 in 10.128.0.0/9 (use a smaller segment, or the "
        "region a larger subnet)"]
    tree.edit_tenant("orbit-lm", lambda t: t.update(fabric={"segment": 258}))  # dasom-bio-ai's
    with pytest.raises(ConfigInvalid) as exc:
        config.load(tree.root)
    assert [(e.path, e.message) for e in exc.value.errors] == [
        ("fabric.segment", "258 is tenant dasom-bio-ai's segment (its partition key and VLAN): take one no tenant "
                           "has")]


def test_onboarding_onto_a_fabric_pool_assigns_the_lowest_free_segment(tree: Tree) -> None:
    result = CliRunner().invoke(main, [
        "tenant", "add", "--root", str(tree.root), "--name", "mirae-lab", "--display-name", "Mirae Lab",
        "--org-name", "Mirae", "--org-type", "startup", "--registration-id", "000-00-00099", "--sector", "startup",
        "--classification", "low", "--region", "rdc-ulsan", "--pool", "gb200-nvl72", "--gpus", "8", "--cpu", "64",
        "--memory", "512Gi", "--storage", "10Ti", "--start", "2026-12-01", "--end", "2027-05-31",
        "--admin-group", "mirae-admins", "--contact", "Kim Minji <minji@mirae.example.kr>:technical"])
    assert result.exit_code == 0, result.output
    assert config.load(tree.root).tenants["mirae-lab"].fabric_segment == 2


# ------------------------------------------------------------------------------------------ the pack's rule

def _nad(ns: str, config_: dict[str, Any], name: str = "fabric-ib-0") -> dict[str, Any]:
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name, "namespace": ns, "labels": _labels(ns, **{"sovcloud.kr/tenant": ns})},
            "spec": {"config": json.dumps(config_)}}


def _ns(name: str, segment: int, classification: str = "low") -> dict[str, Any]:
    ns = _namespace(name, classification=classification)
    ns["metadata"]["annotations"] = {"sovcloud.kr/fabric-segment": str(segment)}
    return ns


def test_fabric_isolation_holds_partitions_and_vlans_per_tenant() -> None:
    ok = [_ns("t1", 257), _ns("t2", 258), _ns("t3", 259, "high"),
          _nad("t1", {"type": "ipoib", "master": "ibp3s0.8101"}),
          _nad("t2", {"type": "ipoib", "master": "ibp3s0.8102"}),
          _nad("t3", {"type": "ib-sriov", "pkey": "0x0103"}),
          _nad("t1", {"type": "sriov", "vlan": 257}, "fabric-roce-0"),  # its VLAN: the same number, another fabric
          _nad("t2", {"cniVersion": "0.3.1", "plugins": [{"type": "ib-sriov", "pkey": "0x0102"}, {"type": "tuning"}]},
               "fabric-ib-1")]  # a conflist: the first plugin attaches
    assert validate_stack("fabric-isolation", ok) == []
    shared_pkey = [_ns("t1", 257), _ns("t2", 257), _nad("t1", {"type": "ipoib", "master": "ibp3s0.8101"}),
                   _nad("t2", {"type": "ib-sriov", "pkey": "0x8101"})]  # the full-member bit is the same partition
    assert validate_stack("fabric-isolation", shared_pkey) == [(
        "tenants t1 and t2 share partition 0x0101 on the infiniband fabric (network t2/fabric-ib-0): either reaches "
        "the other's pods (one segment per tenant)", "fabric-ib-0")]
    shared_vlan = [_ns("t1", 300), _ns("t2", 300), _nad("t1", {"type": "macvlan", "master": "ens1f0.300"}),
                   _nad("t2", {"type": "sriov", "vlan": 300})]
    assert [m for m, _ in validate_stack("fabric-isolation", shared_vlan)] == [
        "tenants t1 and t2 share VLAN 300 on the roce fabric (network t2/fabric-ib-0): either reaches the other's "
        "pods (one segment per tenant)"]
    high_shared = [_ns("t3", 259, "high"), _nad("t3", {"type": "ipoib", "master": "ibp3s0.8103"})]
    assert [m for m, _ in validate_stack("fabric-isolation", high_shared)] == [
        "high-classification tenant t3: network fabric-ib-0 is on a shared RDMA device (every pod on the node gets "
        "the node's HCAs and every partition or VLAN of their ports): put its allocations on a pool with rdma: sriov"]
    odd = [_ns("t1", 257), _nad("t1", {"type": "ipoib", "master": "ibp3s0"}),  # the default partition
           _nad("t1", {"type": "ib-sriov", "pkey": "0x7fff"}, "fabric-ib-1"),  # the default partition, named
           _nad("t1", {"type": "sriov", "vlan": 4095}, "fabric-roce-0"),
           _nad("t1", {"type": "ib-sriov", "pkey": "0x0102"}, "fabric-ib-2"),  # another tenant's number
           _nad("t1", {"type": "host-device", "device": "ibp3s0"}, "raw")]
    assert [m for m, _ in validate_stack("fabric-isolation", odd)] == [
        "tenant t1: network fabric-ib-0 puts its pods on no partition of their own (the fabric's default, or outside "
        "2..4094): give it the tenant's partition",
        "tenant t1: network fabric-ib-1 puts its pods on no partition of their own (the fabric's default, or outside "
        "2..4094): give it the tenant's partition",
        "tenant t1: network fabric-ib-2 is on partition 0x0102, not the tenant's segment (257: namespace annotation "
        "sovcloud.kr/fabric-segment)",
        "tenant t1: network fabric-roce-0 puts its pods on no VLAN of their own (the fabric's default, or outside "
        "2..4094): give it the tenant's VLAN",
        "tenant t1: network raw is of type host-device, which the fabric does not isolate (one of ib-sriov, sriov, "
        "ipoib, macvlan, on the tenant's segment)"]


def test_every_network_operand_comes_from_the_mirror() -> None:
    from tests.test_policies import validate_resource

    policy = nic_cluster_policy(CFG.regions["ncc-haenam"])
    allowed = list(CFG.regions["ncc-haenam"].registries.allowed)
    assert validate_resource("approved-registries", policy, allowedRegistries=allowed) == []
    policy["spec"]["ibKubernetes"]["repository"] = "nvcr.io/nvidia/mellanox"
    assert validate_resource("approved-registries", policy, allowedRegistries=allowed) == [
        "spec.ibKubernetes.repository = nvcr.io/nvidia/mellanox is not from an approved registry "
        "(registry.ncc.example.kr, charts.ncc.example.kr)"]


def test_status_names_fabric_nodes_that_cannot_give_pods_rdma() -> None:
    from kubernetes.client import V1Node, V1NodeStatus, V1ObjectMeta

    from sovcloud.engine.status import _fabric_problems

    pool = CFG.regions["ncc-haenam"].pool("b200-hall-a")

    def node(name: str, vfs: dict[str, str], waiting: bool = False) -> V1Node:
        labels = {"sovcloud.kr/pool": "b200-hall-a", "network.nvidia.com/operator.mofed.wait": str(waiting).lower()}
        return V1Node(metadata=V1ObjectMeta(name=name, labels=labels),
                      status=V1NodeStatus(allocatable={"nvidia.com/gpu": "8", **vfs}))

    every = {f"rdma/ib_vf{n}": "8" for n in range(8)}
    nodes = [node("a-001", every), node("a-002", {}), node("a-003", {**every, "rdma/ib_vf3": "0"}),
             node("a-004", every, waiting=True)]
    assert _fabric_problems(pool, nodes, "container") == [
        "pool b200-hall-a: node a-002 has no rdma/ib_vf0, rdma/ib_vf1, rdma/ib_vf2, rdma/ib_vf3, rdma/ib_vf4, "
        "rdma/ib_vf5, rdma/ib_vf6, rdma/ib_vf7 allocatable (infiniband HCAs down, VFs not configured on those ports, "
        "the device plugin not running)",
        "pool b200-hall-a: node a-003 has no rdma/ib_vf3 allocatable (infiniband HCAs down, VFs not configured on "
        "those ports, the device plugin not running)",
        "pool b200-hall-a: node a-004 waits for the DOCA driver container (network.nvidia.com/operator.mofed.wait)"]
    assert _fabric_problems(pool, nodes[3:4], "host") == []  # the hosts' driver: the label is not the operator's
    # GPUDirect RDMA: the driver pod's nvidia-peermem sidecar ready per node (its probes load-check the module)
    assert _fabric_problems(pool, nodes[:1], "host", {"a-001": False}) == [
        "pool b200-hall-a: node a-001 has no nvidia_peermem loaded (its GPU driver pod's nvidia-peermem-ctr is not "
        "ready): GPUDirect RDMA copies through host memory"]
    assert _fabric_problems(pool, nodes[:1], "host", {"a-001": True}) == []


def test_peermem_readiness_is_read_from_the_driver_pods() -> None:
    from types import SimpleNamespace as NS

    from sovcloud.engine import status

    def pod(node: str, ready: bool | None) -> Any:
        statuses = [NS(name="nvidia-driver-ctr", ready=True)] + (
            [NS(name="nvidia-peermem-ctr", ready=ready)] if ready is not None else [])
        return NS(spec=NS(node_name=node), status=NS(container_statuses=statuses))

    seen: dict[str, Any] = {}

    class Core:
        def __init__(self, api_client: Any) -> None:
            pass

        def list_namespaced_pod(self, namespace: str, label_selector: str, _request_timeout: int) -> Any:
            seen.update(namespace=namespace, selector=label_selector)
            return NS(items=[pod("a-001", True), pod("a-002", False), pod("a-003", None)])

    assert status._peermem_ready(NS(CoreV1Api=Core), None) == {"a-001": True, "a-002": False, "a-003": False}
    assert seen == {"namespace": "gpu-operator", "selector": "app=nvidia-driver-daemonset"}


def test_a_count_of_nodes_to_drain_reaches_the_sr_iov_operator_as_a_number(tree: Tree) -> None:
    tree.edit_region("ncc-haenam", lambda r: r["fabric"].update(sriovMaxUnavailable="12"))
    cfg = config.load(tree.root)
    (pool_config, *_) = [o for o in sriov_node_policies(cfg.regions["ncc-haenam"])
                         if o["kind"] == "SriovNetworkPoolConfig"]
    assert pool_config["spec"]["maxUnavailable"] == 12  # the operator takes a string as a percentage only
    tree.edit_region("ncc-haenam", lambda r: r["fabric"].update(sriovMaxUnavailable="0%"))
    with pytest.raises(ConfigInvalid):
        config.load(tree.root)


def test_quota_and_queue_count_rdma_alike_when_gpus_are_not_whole_nodes(tree: Tree) -> None:
    import dataclasses

    from components.tenant import TenantArgs, cluster_queue_spec, quota_hard
    from tests.conftest import AS_OF

    dasom = CFG.tenants["dasom-bio-ai"]
    (alloc,) = [dataclasses.replace(a, gpus=4, borrowing_limit=4) for a in dasom.allocations]
    args = TenantArgs(dasom, (alloc,), CFG.regions["ncc-haenam"], AS_OF)
    (flavor,) = cluster_queue_spec(args)["resourceGroups"][0]["flavors"]
    queue = next(r for r in flavor["resources"] if r["name"] == "rdma/ib_vf0")
    # the queue admits a VF per rail for the guaranteed part and one for the borrowed: the quota must let both run
    assert (queue["nominalQuota"], queue["borrowingLimit"]) == (1, 1)
    assert quota_hard(args)["requests.rdma/ib_vf0"] == "2"
