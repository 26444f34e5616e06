"""What the components register, read from the real stack program run under the SDK mock monitor."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
import yaml

from sovcloud import config
from sovcloud.config import charts
from sovcloud.config.errors import ConfigInvalid
from sovcloud.engine import synth
from sovcloud.engine.synth import Record, Synthesis
from tests.conftest import AS_OF, CHART_SOURCES, REPO, SHIPPED_REGIONS, Tree

MIRROR = "registry.ncc.example.kr/mirror"
TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def one(s: Synthesis, kind: str, name: str, namespace: str | None = None) -> Record:
    found = [r for r in s.kubernetes_objects() if r.inputs["kind"] == kind and r.inputs["metadata"]["name"] == name
             and r.inputs["metadata"].get("namespace") == namespace]
    assert len(found) == 1, f"{kind} {namespace}/{name}: {len(found)} found"
    return found[0]


def pool_object(s: Synthesis, kind: str, prefix: str) -> Record:
    """A Cluster API template of a pool: named ``<cluster>-<pool>-<hash of its spec>``."""
    found = [r for r in s.kubernetes_objects() if r.inputs["kind"] == kind
             and re.fullmatch(re.escape(prefix) + r"-[0-9a-f]{8}", r.inputs["metadata"]["name"])]
    assert len(found) == 1, f"{kind} {prefix}-<hash>: {len(found)} found"
    return found[0]


def test_template_name_changes_with_its_spec(tree: Tree) -> None:
    before = pool_object(synth.run(tree.root, "rdc-ulsan", config.load(tree.root), as_of=AS_OF),
                         "OpenStackMachineTemplate", "ulsan-gpu-gb200-nvl72").inputs["metadata"]["name"]
    tree.edit_region("rdc-ulsan", lambda r: r["pools"][0]["provisioner"]["openstack"].update(image="ubuntu-26.04"))
    s = synth.run(tree.root, "rdc-ulsan", config.load(tree.root), as_of=AS_OF)
    after = pool_object(s, "OpenStackMachineTemplate", "ulsan-gpu-gb200-nvl72").inputs["metadata"]["name"]
    assert after != before
    md = one(s, "MachineDeployment", "ulsan-gpu-gb200-nvl72", "capi-ulsan").inputs["spec"]["template"]["spec"]
    assert md["infrastructureRef"]["name"] == after


def kinds(s: Synthesis, kind: str) -> list[Record]:
    return [r for r in s.kubernetes_objects() if r.inputs["kind"] == kind]


def release(s: Synthesis, name: str) -> dict:
    (rec,) = [r for r in s.helm_releases() if r.inputs["name"] == name]
    return rec.inputs


# ------------------------------------------------------------------------------------------------ node pools

def test_kubeadm_template_labels_nodes_and_taints_them(shipped_synthesis) -> None:
    kct = pool_object(shipped_synthesis("ncc-haenam"), "KubeadmConfigTemplate", "ncc-haenam-gpu-b200-mig")
    registration = kct.inputs["spec"]["template"]["spec"]["joinConfiguration"]["nodeRegistration"]
    assert registration["taints"] == [TAINT]
    assert registration["kubeletExtraArgs"] == [{"name": "node-labels", "value": (
        "cluster-api/accelerator=b200,nvidia.com/mig.config=b200-mig,sovcloud.kr/pool=b200-mig,"
        "sovcloud.kr/region=ncc-haenam")}]


def test_whole_gpu_pool_of_mig_capable_model_pins_mig_off(shipped_synthesis) -> None:
    kct = pool_object(shipped_synthesis("ncc-haenam"), "KubeadmConfigTemplate", "ncc-haenam-gpu-h200-hall-d")
    value = kct.inputs["spec"]["template"]["spec"]["joinConfiguration"]["nodeRegistration"]["kubeletExtraArgs"][0]
    assert "nvidia.com/mig.config=all-disabled" in value["value"].split(",")


def test_machine_deployment_carries_autoscaler_bounds_and_scale_from_zero_capacity(shipped_synthesis) -> None:
    md = one(shipped_synthesis("ncc-haenam"), "MachineDeployment", "ncc-haenam-gpu-b200-hall-c", "capi-ncc-haenam")
    ann = md.inputs["metadata"]["annotations"]
    assert ann["cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"] == "380"
    assert ann["cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"] == "404"
    assert ann["capacity.cluster-autoscaler.kubernetes.io/gpu-type"] == "nvidia.com/gpu"  # a resource name
    assert ann["sovcloud.kr/gpu-product"] == "NVIDIA-B200"
    assert ann["capacity.cluster-autoscaler.kubernetes.io/gpu-count"] == "8"
    assert ann["capacity.cluster-autoscaler.kubernetes.io/taints"] == "nvidia.com/gpu=present:NoSchedule"
    # the node shape from provisioner.autoscaling.nodeCapacity, for scaling from zero
    assert ann["capacity.cluster-autoscaler.kubernetes.io/cpu"] == "224"
    assert ann["capacity.cluster-autoscaler.kubernetes.io/memory"] == "2Ti"
    assert ann["capacity.cluster-autoscaler.kubernetes.io/ephemeral-disk"] == "3500Gi"
    assert ann["capacity.cluster-autoscaler.kubernetes.io/maxPods"] == "110"
    spec = md.inputs["spec"]
    # the autoscaler owns the size: no replicas for the stack to revert on every `pulumi up`
    assert "replicas" not in spec
    assert spec["template"]["spec"]["version"] == "v1.33.4"
    assert spec["template"]["spec"]["failureDomain"] == "hall-c"
    s = shipped_synthesis("ncc-haenam")
    kct = pool_object(s, "KubeadmConfigTemplate", "ncc-haenam-gpu-b200-hall-c").inputs["metadata"]["name"]
    m3 = pool_object(s, "Metal3MachineTemplate", "ncc-haenam-gpu-b200-hall-c").inputs["metadata"]["name"]
    assert spec["template"]["spec"]["bootstrap"]["configRef"] == {
        "apiGroup": "bootstrap.cluster.x-k8s.io", "kind": "KubeadmConfigTemplate", "name": kct}
    assert spec["template"]["spec"]["infrastructureRef"] == {
        "apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "Metal3MachineTemplate", "name": m3}
    assert spec["rollout"] == {"strategy": {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 20}}}


def test_fixed_size_pool_has_no_autoscaler_bounds(shipped_synthesis) -> None:
    md = one(shipped_synthesis("ncc-haenam"), "MachineDeployment", "ncc-haenam-gpu-b200-hall-a", "capi-ncc-haenam")
    assert md.inputs["spec"]["replicas"] == 420
    assert not [k for k in md.inputs["metadata"]["annotations"] if "autoscaler-node-group" in k]


def test_gb200_tray_capacity_and_openstack_template(shipped_synthesis) -> None:
    s = shipped_synthesis("rdc-ulsan")
    md = one(s, "MachineDeployment", "ulsan-gpu-gb200-nvl72", "capi-ulsan")
    assert md.inputs["metadata"]["annotations"]["capacity.cluster-autoscaler.kubernetes.io/gpu-count"] == "4"
    # a fixed-size pool: no autoscaler bounds and no node shape for scaling from zero
    assert not [k for k in md.inputs["metadata"]["annotations"]
                if k.endswith(("/cpu", "/memory", "/ephemeral-disk", "/maxPods", "-min-size", "-max-size"))]
    # the MIG pool has a fixed size too: the autoscaler cannot scale MIG nodes under the mixed strategy
    rtx = one(s, "MachineDeployment", "ulsan-gpu-rtxpro-mig", "capi-ulsan").inputs
    assert rtx["spec"]["replicas"] == 8
    assert not [k for k in rtx["metadata"]["annotations"] if "autoscaler-node-group" in k]
    osmt = pool_object(s, "OpenStackMachineTemplate", "ulsan-gpu-gb200-nvl72")
    assert osmt.inputs["spec"]["template"]["spec"] == {
        "flavor": "bm.gb200.tray", "image": {"filter": {"name": "ubuntu-24.04-gpu-arm64"}},
        "sshKeyName": "platform-breakglass", "identityRef": {"name": "ulsan-openstack-cloud", "cloudName": "ulsan"}}


def test_metal3_template_from_pool_config(shipped_synthesis) -> None:
    m3 = pool_object(shipped_synthesis("ncc-haenam"), "Metal3MachineTemplate", "ncc-haenam-gpu-h200-hall-d")
    spec = m3.inputs["spec"]["template"]["spec"]
    assert spec["image"] == {"url": "https://images.ncc.example.kr/ubuntu-24.04-gpu.raw",
                             "checksum": "https://images.ncc.example.kr/ubuntu-24.04-gpu.raw.sha256sum",
                             "checksumType": "sha256", "diskFormat": "raw"}  # v1beta2's name for the format
    assert m3.inputs["apiVersion"] == "infrastructure.cluster.x-k8s.io/v1beta2"
    # each pool selects its own hosts: the BareMetalHosts carry the pool's label
    assert spec["hostSelector"] == {"matchLabels": {"sovcloud.kr/hall": "hall-d", "sovcloud.kr/gpu-model": "h200",
                                                    "sovcloud.kr/pool": "h200-hall-d"}}


def test_static_pool_patches_every_listed_node(shipped_synthesis) -> None:
    s = shipped_synthesis("rdc-gwangju")
    nodes = {r.inputs["metadata"]["name"]: r.inputs for r in kinds(s, "Node")}
    assert len(nodes) == 50  # 32 + 2 H100 nodes, 16 L40S nodes
    assert nodes["gj-h100-033"]["metadata"]["labels"]["nvidia.com/mig.config"] == "all-balanced"
    assert nodes["gj-l40s-07"]["metadata"]["labels"]["nvidia.com/device-plugin.config"] == "l40s-infer-time-slicing"
    assert nodes["gj-l40s-07"]["metadata"]["labels"]["sovcloud.kr/pool"] == "l40s-infer"
    assert "nvidia.com/mig.config" not in nodes["gj-l40s-07"]["metadata"]["labels"]  # L40S has no MIG
    # no spec: an atomic taints list would be owned whole, the node controller's taints included
    assert all(set(n) == {"apiVersion", "kind", "metadata"} for n in nodes.values())
    assert nodes["gj-l40s-07"]["metadata"]["annotations"] == {"sovcloud.kr/gpus": "4"}
    assert all(r.type == "kubernetes:core/v1:NodePatch" for r in kinds(s, "Node"))


# ------------------------------------------------------------------------------------------------ GPU operator

def test_gpu_operator_release_is_pinned_from_the_mirror(shipped_synthesis) -> None:
    rel = release(shipped_synthesis("ncc-haenam"), "gpu-operator")
    assert (rel["chart"], rel["version"], rel["repositoryOpts"]) == (
        "gpu-operator", "v26.3.3", {"repo": "https://charts.ncc.example.kr/stable"})
    v = rel["values"]
    assert v["driver"]["version"] == "580.126.20"
    assert v["driver"]["kernelModuleType"] == "open"
    # the driver's package sources: a ConfigMap sovcloud creates from config, in the operator's namespace
    assert v["driver"]["repoConfig"] == {"configMapName": "sovcloud-driver-repo"}
    repo = one(shipped_synthesis("ncc-haenam"), "ConfigMap", "sovcloud-driver-repo", "gpu-operator").inputs["data"]
    assert list(repo) == ["ubuntu-mirror.list"]
    assert repo["ubuntu-mirror.list"].startswith("deb http://mirror.ncc.example.kr/ubuntu noble main")
    assert v["mig"] == {"strategy": "mixed"}
    assert v["migManager"]["config"] == {"create": False, "name": "sovcloud-mig-parted-config",
                                         "default": "all-disabled"}
    assert v["devicePlugin"]["config"] == {"create": False, "name": "sovcloud-device-plugin-config",
                                           "default": "default"}
    # the exporter's pod labels (namespace, pod) kept over the target's, and the node each GPU is on: showback
    assert v["dcgmExporter"] == {"enabled": True, "serviceMonitor": {
        "enabled": True, "honorLabels": True,
        "relabelings": [{"action": "replace", "targetLabel": "node",
                         "sourceLabels": ["__meta_kubernetes_pod_node_name"]}]},
        "repository": f"{MIRROR}/nvidia/k8s"}


def test_every_operand_image_comes_from_the_region_mirror(shipped_synthesis) -> None:
    values = release(shipped_synthesis("ncc-haenam"), "gpu-operator")["values"]
    found = {}

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "repository":
                    found[path] = v
                walk(v, f"{path}.{k}" if path else k)

    walk(values, "")
    # exactly the keys of the pinned chart (v26.3.3): no draDriver (v26.7 only), no kataManager (v25 only)
    assert sorted(found) == sorted(charts.derive_repositories(CHART_SOURCES / "gpu-operator-v26.3.3")) \
        if (CHART_SOURCES / "gpu-operator-v26.3.3").is_dir() else len(found) == 21
    assert "draDriver" not in found and "kataManager" not in found
    assert all(repo.startswith(f"{MIRROR}/") for path, repo in found.items() if path != "vgpuManager"), found
    assert found["vgpuManager"] == MIRROR  # no upstream default (a site-built image): the mirror, never docker.io
    assert found["driver"] == f"{MIRROR}/nvidia"
    assert found["node-feature-discovery.image"] == f"{MIRROR}/nfd/node-feature-discovery"


def test_auto_kernel_modules_become_open_for_blackwell_and_stay_auto_for_hopper(shipped_synthesis) -> None:
    assert release(shipped_synthesis("rdc-gwangju"), "gpu-operator")["values"]["driver"]["kernelModuleType"] == "auto"


def test_oci_chart_repository_goes_into_the_chart_reference(shipped_synthesis) -> None:
    rel = release(shipped_synthesis("rdc-gwangju"), "gpu-operator")
    assert rel["chart"] == "oci://harbor.gwangju.example.kr/charts/gpu-operator"
    assert "repositoryOpts" not in rel


def test_mig_manager_config_holds_each_mig_pool_layout(shipped_synthesis) -> None:
    cm = one(shipped_synthesis("rdc-gwangju"), "ConfigMap", "sovcloud-mig-parted-config", "gpu-operator")
    assert yaml.safe_load(cm.inputs["data"]["config.yaml"]) == {"version": "v1", "mig-configs": {
        "all-disabled": [{"devices": "all", "mig-enabled": False}],
        "all-balanced": [{"devices": "all", "mig-enabled": True,
                          "mig-devices": {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1}}]}}


def test_time_slicing_config_per_pool(shipped_synthesis) -> None:
    cm = one(shipped_synthesis("rdc-gwangju"), "ConfigMap", "sovcloud-device-plugin-config", "gpu-operator")
    assert sorted(cm.inputs["data"]) == ["default", "l40s-infer-time-slicing"]
    assert yaml.safe_load(cm.inputs["data"]["l40s-infer-time-slicing"])["sharing"] == {"timeSlicing": {
        "renameByDefault": False, "failRequestsGreaterThanOne": True,
        "resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}}


# ------------------------------------------------------------------------------------------------ queueing

def test_resource_flavor_per_pool_selects_pool_and_gfd_product(shipped_synthesis) -> None:
    s = shipped_synthesis("rdc-gwangju")
    assert sorted(r.inputs["metadata"]["name"] for r in kinds(s, "ResourceFlavor")) == [
        "h100-a", "h100-mig", "l40s-infer"]
    h100 = one(s, "ResourceFlavor", "h100-a").inputs["spec"]
    assert h100 == {"nodeLabels": {"sovcloud.kr/pool": "h100-a", "kubernetes.io/arch": "amd64",
                                   "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}
    # GFD appends -SHARED to the product of a time-sliced GPU
    assert one(s, "ResourceFlavor", "l40s-infer").inputs["spec"]["nodeLabels"]["nvidia.com/gpu.product"] == \
        "NVIDIA-L40S-SHARED"


def test_one_cohort_per_region_and_kueue_from_the_mirror(shipped_synthesis) -> None:
    s = shipped_synthesis("rdc-ulsan")
    assert [r.inputs["metadata"]["name"] for r in kinds(s, "Cohort")] == ["rdc-ulsan"]
    rel = release(s, "kueue")
    assert (rel["chart"], rel["version"], rel["namespace"]) == ("kueue", "0.19.2", "kueue-system")
    assert rel["values"]["controllerManager"]["manager"]["image"] == {
        "repository": "cr.ulsan.example.kr/mirror/kueue/kueue", "tag": "v0.19.2", "pullPolicy": "IfNotPresent"}


# ------------------------------------------------------------------------------------------------ tenants

def test_tenant_namespace_labels_and_retention(shipped_synthesis) -> None:
    ns = one(shipped_synthesis("ncc-haenam"), "Namespace", "gov-doc-ai")
    assert ns.retain_on_delete is True
    assert ns.inputs["metadata"]["labels"] == {
        "sovcloud.kr/region": "ncc-haenam", "sovcloud.kr/owner": "gov-doc-ai",
        "app.kubernetes.io/managed-by": "sovcloud",
        "sovcloud.kr/tenant": "gov-doc-ai", "sovcloud.kr/sector": "public", "sovcloud.kr/classification": "high",
        "sovcloud.kr/status": "active",
        "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/audit": "restricted"}


def test_quota_is_guaranteed_plus_borrowing_and_bans_external_services(shipped_synthesis) -> None:
    hard = one(shipped_synthesis("ncc-haenam"), "ResourceQuota", "sovcloud-quota", "hanbit-llm-lab").inputs["spec"][
        "hard"]
    assert hard == {"requests.nvidia.com/gpu": "1280", "requests.cpu": "12288",  # 8192 cores x 1.5 overcommit
                    "requests.memory": "96Ti", "requests.storage": "2Pi",
                    "persistentvolumeclaims": "50", "services.loadbalancers": "0", "services.nodeports": "0",
                    # local scratch capped: 200 GiB per GPU it may hold (1,024 + 256)
                    "requests.ephemeral-storage": f"{1280 * 200}Gi",
                    # hall A's InfiniBand VFs, per rail: one per node's worth of GPUs (1,280 / 8)
                    **{f"requests.rdma/ib_vf{n}": "160" for n in range(8)}}


def test_limit_range_sets_default_requests_only(shipped_synthesis) -> None:
    lr = one(shipped_synthesis("ncc-haenam"), "LimitRange", "sovcloud-defaults", "hanbit-llm-lab").inputs["spec"]
    assert lr == {"limits": [{"type": "Container", "defaultRequest": {"cpu": "100m", "memory": "256Mi",
                                                                      "ephemeral-storage": "1Gi"}}]}


def test_mig_quota_uses_requests_keys(shipped_synthesis) -> None:
    hard = one(shipped_synthesis("rdc-gwangju"), "ResourceQuota", "sovcloud-quota", "nuri-teaching").inputs["spec"][
        "hard"]
    assert (hard["requests.nvidia.com/gpu"], hard["requests.nvidia.com/mig-1g.10gb"],
            hard["requests.nvidia.com/mig-3g.40gb"]) == ("0", "24", "8")
    assert not [k for k in hard if k.startswith(("nvidia.com/", "limits.nvidia.com/"))]


def test_time_sliced_quota_counts_replicas(shipped_synthesis) -> None:
    s = shipped_synthesis("rdc-gwangju")
    hard = one(s, "ResourceQuota", "sovcloud-quota", "city-traffic-twin").inputs["spec"]["hard"]
    assert hard["requests.nvidia.com/gpu"] == "192"  # (32 guaranteed + 16 borrowable) GPUs x 4 replicas
    cq = one(s, "ClusterQueue", "city-traffic-twin").inputs["spec"]
    gpu = cq["resourceGroups"][0]["flavors"][0]["resources"][2]
    assert gpu == {"name": "nvidia.com/gpu", "nominalQuota": 128, "borrowingLimit": 64}


def test_no_borrowing_is_an_explicit_zero(shipped_synthesis) -> None:
    # Kueue reads an absent borrowingLimit as unlimited
    cq = one(shipped_synthesis("ncc-haenam"), "ClusterQueue", "gov-doc-ai").inputs["spec"]
    assert [r.get("borrowingLimit") for r in cq["resourceGroups"][0]["flavors"][0]["resources"]] == [0, 0, 0]


def test_cluster_queue_nominal_quota_is_guaranteed_gpus_in_region_cohort(shipped_synthesis) -> None:
    cq = one(shipped_synthesis("ncc-haenam"), "ClusterQueue", "hanbit-llm-lab").inputs["spec"]
    assert cq["cohortName"] == "ncc-haenam"
    assert cq["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "hanbit-llm-lab"}}
    # the 256 GPUs it may borrow bring their nodes' CPU and memory: 28 logical CPUs (x 1.5 overcommit) and 256 GiB
    # per B200 on an HGX node, or the borrowed GPUs could never be admitted
    # hall A's InfiniBand VFs are queue resources too, per rail: one per node's worth of GPUs (1,024 / 8, 256 / 8)
    rails = [f"rdma/ib_vf{n}" for n in range(8)]
    assert cq["resourceGroups"] == [{"coveredResources": ["cpu", "memory", "nvidia.com/gpu", *rails], "flavors": [
        {"name": "b200-hall-a", "resources": [
            {"name": "cpu", "nominalQuota": "12288", "borrowingLimit": 256 * 28 * 3 // 2},
            {"name": "memory", "nominalQuota": "96Ti", "borrowingLimit": f"{256 * 256}Gi"},
            {"name": "nvidia.com/gpu", "nominalQuota": 1024, "borrowingLimit": 256},
            *({"name": r, "nominalQuota": 128, "borrowingLimit": 32} for r in rails)]}]}]


def test_tenant_with_two_pools_in_a_region_gets_one_queue_with_two_flavors(shipped_synthesis) -> None:
    s = shipped_synthesis("rdc-ulsan")
    cq = one(s, "ClusterQueue", "baram-shipyard").inputs["spec"]
    (group,) = cq["resourceGroups"]
    # ComputeDomain channels are covered: the tenant holds GPUs on the DRA driver's pool; so is the racks' shared
    # RDMA device, with quota on the GB200 flavor only (a pod asking for it goes there)
    assert group["coveredResources"] == ["cpu", "memory", "nvidia.com/gpu", "nvidia.com/mig-2g.48gb",
                                         "nvidia.com/compute-domain-channel", "rdma/ib"]
    rdma = {f["name"]: next(r for r in f["resources"] if r["name"] == "rdma/ib") for f in group["flavors"]}
    assert rdma == {"rtxpro-mig": {"name": "rdma/ib", "nominalQuota": 0, "borrowingLimit": 0},
                    "gb200-nvl72": {"name": "rdma/ib", "nominalQuota": 144, "borrowingLimit": 72}}
    # amd64 first: a pod that does not ask for arm64 (a Grace tray) is tried on the x86 pool first
    assert [f["name"] for f in group["flavors"]] == ["rtxpro-mig", "gb200-nvl72"]
    assert group["flavors"][0]["resources"][3] == {"name": "nvidia.com/mig-2g.48gb", "nominalQuota": 64,
                                                   "borrowingLimit": 0}
    rtx, gb200 = ({r["name"]: r for r in f["resources"]} for f in group["flavors"])
    assert one(s, "ResourceFlavor", "gb200-nvl72").inputs["spec"]["nodeLabels"]["kubernetes.io/arch"] == "arm64"
    assert gb200["nvidia.com/compute-domain-channel"] == {"name": "nvidia.com/compute-domain-channel",
                                                          "nominalQuota": 144, "borrowingLimit": 72}
    assert rtx["nvidia.com/compute-domain-channel"]["nominalQuota"] == 0  # not a DRA pool
    # a GB200 tray: 144 Grace cores and 960 GiB for 4 GPUs, so 72 borrowed GPUs bring 36 CPUs (x 1.5) and 240 GiB each
    assert (gb200["cpu"]["borrowingLimit"], gb200["memory"]["borrowingLimit"]) == (72 * 36 * 3 // 2, "17280Gi")
    hard = one(s, "ResourceQuota", "sovcloud-quota", "baram-shipyard").inputs["spec"]["hard"]
    assert (hard["requests.nvidia.com/gpu"], hard["requests.nvidia.com/mig-2g.48gb"], hard["requests.cpu"]) == (
        "216", "64", "4224")  # (2304 + 512) cores x 1.5
    # the racks' InfiniBand through the shared RDMA device: one unit per GPU it may hold
    assert hard["requests.rdma/ib"] == "216"
    # gpu-operator, nvidia-dra-driver-gpu, kueue-system, nvidia-network-operator and four tenants
    assert len(kinds(s, "Namespace")) == 4 + 4


def test_local_queue_feeds_the_tenant_cluster_queue(shipped_synthesis) -> None:
    lq = one(shipped_synthesis("ncc-haenam"), "LocalQueue", "default", "voicebridge")
    assert lq.inputs["spec"] == {"clusterQueue": "voicebridge"}
    assert lq.inputs["metadata"]["labels"]["sovcloud.kr/priority"] == "sovcloud-normal"
    hanbit = one(shipped_synthesis("ncc-haenam"), "LocalQueue", "default", "hanbit-llm-lab")
    assert hanbit.inputs["metadata"]["labels"]["sovcloud.kr/priority"] == "sovcloud-high"


def test_admin_groups_bound_to_namespaced_admin_role(shipped_synthesis) -> None:
    rb = one(shipped_synthesis("ncc-haenam"), "RoleBinding", "sovcloud-tenant-admins", "orbit-lm").inputs
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": "sovcloud-tenant-admin"}
    assert rb["subjects"] == [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                               "name": "sovcloud:orbit-lm:admins"}]


def test_default_deny_dns_and_same_namespace_for_every_tenant(shipped_synthesis) -> None:
    s = shipped_synthesis("ncc-haenam")
    policies = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in kinds(s, "NetworkPolicy")
                if r.inputs["metadata"]["namespace"] == "dasom-bio-ai"}
    assert sorted(policies) == ["allow-dns", "allow-same-namespace", "default-deny"]
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert policies["allow-dns"]["egress"][0]["ports"] == [{"protocol": "UDP", "port": 53},
                                                           {"protocol": "TCP", "port": 53}]


def test_internet_egress_only_when_asked_and_classification_allows(shipped_synthesis) -> None:
    s = shipped_synthesis("ncc-haenam")
    egress = {r.inputs["metadata"]["namespace"] for r in kinds(s, "NetworkPolicy")
              if r.inputs["metadata"]["name"] == "allow-internet-egress"}
    assert egress == {"saebyeol-climate", "orbit-lm", "nuri-teaching"}  # the low tenants that asked for it


def test_high_classification_tenant_gets_no_internet_egress(tree: Tree) -> None:
    # asking for it is refused outright (it would otherwise be dropped in silence)
    tree.edit_tenant("gov-doc-ai", lambda d: d.update(network={"internetEgress": True, "egressCidrs": ["10.1.0.0/16"]}))
    with pytest.raises(ConfigInvalid) as exc:
        config.load(tree.root)
    assert [(e.path, e.rule) for e in exc.value.errors] == [("network.internetEgress", "egress")]
    tree.edit_tenant("gov-doc-ai", lambda d: d.update(network={"egressCidrs": ["10.1.0.0/16"]}))
    cfg = config.load(tree.root)
    s = synth.run(tree.root, "ncc-haenam", cfg, as_of=AS_OF)
    names = {r.inputs["metadata"]["name"] for r in kinds(s, "NetworkPolicy")
             if r.inputs["metadata"]["namespace"] == "gov-doc-ai"}
    assert names == {"default-deny", "allow-dns", "allow-same-namespace"}


def test_only_allocations_of_the_region_become_tenants_there(shipped_synthesis) -> None:
    names = {r.inputs["metadata"]["name"] for r in kinds(shipped_synthesis("rdc-ulsan"), "Namespace")}
    assert names == {"gpu-operator", "nvidia-dra-driver-gpu", "kueue-system", "nvidia-network-operator", "orbit-lm",
                     "pixelforge", "hyeon-motors-ai", "baram-shipyard"}


def test_tenant_objects_land_in_its_namespace(shipped_synthesis) -> None:
    s = shipped_synthesis("ncc-haenam")
    tenant_parent = "sovcloud:tenants:Tenant::ncc-haenam-"
    for rec in s.kubernetes_objects():
        if tenant_parent in rec.parent:
            tenant = rec.parent.rsplit("::ncc-haenam-", 1)[1]
            meta = rec.inputs["metadata"]
            if rec.inputs["kind"] == "IPPool":  # nv-ipam reads pools in the Network Operator's namespace only
                assert meta["namespace"] == "nvidia-network-operator" and meta["name"] == f"tenant-{tenant}"
                continue
            assert meta.get("namespace", meta["name"]) == tenant, rec.urn
            assert meta["labels"]["sovcloud.kr/owner"] == tenant


@pytest.mark.parametrize("region", SHIPPED_REGIONS)
def test_every_object_carries_region_and_owner(shipped_synthesis, region: str) -> None:
    for rec in shipped_synthesis(region).kubernetes_objects():
        labels = rec.inputs["metadata"].get("labels", {})
        assert labels.get("sovcloud.kr/region") == region, rec.urn
        assert labels.get("sovcloud.kr/owner"), rec.urn


def test_every_resource_is_parented_by_a_component(shipped_synthesis) -> None:
    s = shipped_synthesis("ncc-haenam")
    types = {r.urn: r.type for r in s.records}
    components = {"sovcloud:nodepools:GpuNodePool", "sovcloud:gpu:GpuOperator", "sovcloud:queueing:Queueing",
                  "sovcloud:tenants:Tenant", "sovcloud:regions:Region", "sovcloud:guardrails:Guardrails",
                  "sovcloud:showback:Showback", "sovcloud:fabric:NetworkOperator"}
    for rec in s.records:
        if rec.custom and not rec.type.startswith("pulumi:providers:"):
            assert types.get(rec.parent) in components, rec.urn
    platform = components - {"sovcloud:regions:Region", "sovcloud:tenants:Tenant"}
    assert {types[r.parent] for r in s.records if r.type in platform} == {"sovcloud:regions:Region"}
    # each tenant is the root component of a stack of its own
    tenants = [r for r in s.records if r.type == "sovcloud:tenants:Tenant"]
    assert len(tenants) == 9
    for rec in tenants:
        tenant = rec.name.removeprefix("ncc-haenam-")
        assert rec.urn == f"urn:pulumi:ncc-haenam.t.{tenant}::sovcloud::sovcloud:tenants:Tenant::{rec.name}"
        assert rec.parent == (f"urn:pulumi:ncc-haenam.t.{tenant}::sovcloud::pulumi:pulumi:Stack::"
                              f"sovcloud-ncc-haenam.t.{tenant}")
    assert [r.inputs["kind"] for r in s.kubernetes_objects() if types[r.parent] == "sovcloud:regions:Region"] == [
        "ClusterRole"]  # the one region-wide object that belongs to no narrower component


def test_cluster_api_objects_use_the_management_provider_when_configured(tree: Tree) -> None:
    cfg = config.load(tree.root)
    s = synth.run(tree.root, "rdc-ulsan", cfg, {"sovcloud:managementContext": "capi-mgmt"}, as_of=AS_OF)
    providers = {r.urn: r.inputs for r in s.records if r.type == "pulumi:providers:kubernetes"}
    capi = [r for r in s.kubernetes_objects() if r.inputs["apiVersion"].startswith("cluster.x-k8s.io/")]
    assert capi and all("::management::" in r.provider for r in capi)
    tenants = [r for r in s.kubernetes_objects() if r.inputs["kind"] == "Namespace"]
    assert all("::workload::" in r.provider for r in tenants)
    (mgmt,) = [p for urn, p in providers.items() if urn.endswith("::management")]
    assert mgmt["context"] == "capi-mgmt"


def test_shipped_regions_synthesise(shipped_synthesis) -> None:
    counts = {r: shipped_synthesis(r).counts() for r in SHIPPED_REGIONS}
    assert counts["ncc-haenam"]["kubernetes:cluster.x-k8s.io/v1beta2:MachineDeployment"] == 5
    assert counts["rdc-gwangju"]["kubernetes:core/v1:NodePatch"] == 50
    # gpu-operator, DRA driver, kueue, network-operator
    assert counts["rdc-ulsan"]["kubernetes:helm.sh/v3:Release"] == 4
    assert REPO.joinpath("stacks", "__main__.py").is_file()


# ------------------------------------------------------------------------------------------------ lifecycle

def test_expired_allocation_has_zero_quota_and_a_held_queue_but_keeps_its_namespace(shipped_synthesis) -> None:
    s = shipped_synthesis("ncc-haenam")  # nuri-teaching's ncc-haenam allocation ended on 2026-08-31
    ns = one(s, "Namespace", "nuri-teaching")
    assert ns.retain_on_delete is True
    assert ns.inputs["metadata"]["labels"]["sovcloud.kr/status"] == "expired"
    hard = one(s, "ResourceQuota", "sovcloud-quota", "nuri-teaching").inputs["spec"]["hard"]
    assert (hard["requests.nvidia.com/gpu"], hard["requests.nvidia.com/mig-3g.90gb"]) == ("0", "0")
    cq = one(s, "ClusterQueue", "nuri-teaching").inputs["spec"]
    # ended 89 days before AS_OF, past the region's 7-day grace: admitted work is evicted, not left to run forever
    assert cq["stopPolicy"] == "HoldAndDrain"
    assert cq["resourceGroups"][0]["flavors"][0]["resources"][2:] == [
        {"name": "nvidia.com/gpu", "nominalQuota": 0, "borrowingLimit": 0},
        {"name": "nvidia.com/mig-3g.90gb", "nominalQuota": 0, "borrowingLimit": 0}]


def test_an_ended_allocation_holds_through_the_grace_then_drains(tree: Tree) -> None:
    cfg = config.load(tree.root)

    def policy(day: str) -> str | None:
        s = synth.run(tree.root, "ncc-haenam", cfg, as_of=dt.date.fromisoformat(day))
        return one(s, "ClusterQueue", "nuri-teaching").inputs["spec"].get("stopPolicy")

    # nuri-teaching's ncc-haenam allocation ends 2026-08-31; drainAfterDays defaults to 7
    assert [policy(d) for d in ("2026-08-31", "2026-09-01", "2026-09-07", "2026-09-08")] == [
        None, "Hold", "Hold", "HoldAndDrain"]


def test_an_offboarding_tenant_drains_after_the_grace_from_its_recorded_start(tree: Tree) -> None:
    tree.edit_tenant("hanbit-llm-lab", lambda t: t.update(status="offboarding", offboardingSince="2026-11-20"))
    cfg = config.load(tree.root)
    for day, expected in (("2026-11-26", "Hold"), ("2026-11-27", "HoldAndDrain")):
        s = synth.run(tree.root, "rdc-gwangju", cfg, as_of=dt.date.fromisoformat(day))
        assert one(s, "ClusterQueue", "hanbit-llm-lab").inputs["spec"]["stopPolicy"] == expected


def test_active_tenant_queue_has_no_stop_policy(shipped_synthesis) -> None:
    assert "stopPolicy" not in one(shipped_synthesis("ncc-haenam"), "ClusterQueue", "hanbit-llm-lab").inputs["spec"]


def test_expiry_is_per_allocation(shipped_synthesis) -> None:
    # orbit-lm: ncc-haenam ended 2026-10-31, rdc-ulsan runs to 2027-06-30
    assert one(shipped_synthesis("ncc-haenam"), "ResourceQuota", "sovcloud-quota", "orbit-lm").inputs["spec"][
        "hard"]["requests.nvidia.com/gpu"] == "0"
    ulsan = shipped_synthesis("rdc-ulsan")
    assert one(ulsan, "ResourceQuota", "sovcloud-quota", "orbit-lm").inputs["spec"]["hard"][
        "requests.nvidia.com/gpu"] == "216"
    assert "stopPolicy" not in one(ulsan, "ClusterQueue", "orbit-lm").inputs["spec"]


def test_offboarding_tenant_keeps_namespace_and_data_with_zero_quota(tree: Tree) -> None:
    tree.edit_tenant("hyeon-motors-ai", lambda d: d.update(status="offboarding"))
    s = synth.run(tree.root, "rdc-ulsan", config.load(tree.root), as_of=AS_OF)
    ns = one(s, "Namespace", "hyeon-motors-ai")
    assert ns.retain_on_delete is True
    assert ns.inputs["metadata"]["labels"]["sovcloud.kr/status"] == "offboarding"
    hard = one(s, "ResourceQuota", "sovcloud-quota", "hyeon-motors-ai").inputs["spec"]["hard"]
    assert hard["requests.nvidia.com/gpu"] == "0"
    assert hard["requests.storage"] == "400Ti"  # volumes stay usable: only GPUs go
    cq = one(s, "ClusterQueue", "hyeon-motors-ai").inputs["spec"]
    assert cq["stopPolicy"] == "Hold"
    assert cq["resourceGroups"][0]["flavors"][0]["resources"][2] == {"name": "nvidia.com/gpu", "nominalQuota": 0,
                                                                     "borrowingLimit": 0}


def test_tenant_admin_role_reads_but_never_writes_network_policies(shipped_synthesis) -> None:
    role = one(shipped_synthesis("ncc-haenam"), "ClusterRole", "sovcloud-tenant-admin").inputs
    netpol = [r for r in role["rules"] if "networking.k8s.io" in r["apiGroups"]]
    assert netpol == [{"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
                       "verbs": ["get", "list", "watch"]}]
    assert not [r for r in role["rules"] if "*" in r["verbs"] or r["apiGroups"] == ["*"]]
    assert any("jobs" in r["resources"] and "create" in r["verbs"] for r in role["rules"])


def test_cohort_lends_the_gpus_no_tenant_is_guaranteed(shipped_synthesis) -> None:
    spec = one(shipped_synthesis("rdc-gwangju"), "Cohort", "rdc-gwangju").inputs["spec"]
    (group,) = spec["resourceGroups"]
    assert group["coveredResources"] == ["cpu", "memory", "nvidia.com/gpu"]
    lent = {f["name"]: f["resources"][2]["nominalQuota"] for f in group["flavors"]}
    # h100-a: 256 - 64 guaranteed; l40s-infer: (64 - 48) GPUs x 4 replicas; the MIG pool lends nothing
    assert lent == {"h100-a": 192, "l40s-infer": 64}
    # with their nodes' CPU (x 2 overcommit) and memory: 28 CPUs and 256 GiB per H100, 16 and 128 GiB per L40S
    host = {f["name"]: (f["resources"][0]["nominalQuota"], f["resources"][1]["nominalQuota"]) for f in group["flavors"]}
    assert host == {"h100-a": (192 * 28 * 2, f"{192 * 256}Gi"), "l40s-infer": (16 * 16 * 2, f"{16 * 128}Gi")}


def test_nvlink_pool_flavor_is_topology_aware_on_the_gpu_clique(shipped_synthesis) -> None:
    s = shipped_synthesis("rdc-ulsan")
    topology = one(s, "Topology", "nvlink")
    assert topology.inputs["apiVersion"] == "kueue.x-k8s.io/v1beta2"
    assert topology.inputs["spec"] == {"levels": [{"nodeLabel": "nvidia.com/gpu.clique"},
                                                  {"nodeLabel": "kubernetes.io/hostname"}]}
    assert one(s, "ResourceFlavor", "gb200-nvl72").inputs["spec"]["topologyName"] == "nvlink"
    flavor = next(r for r in s.records if r.type == "kubernetes:kueue.x-k8s.io/v1beta2:ResourceFlavor"
                  and r.inputs["metadata"]["name"] == "gb200-nvl72")
    kueue = next(r for r in s.helm_releases() if r.inputs["name"] == "kueue")
    topology_record = next(r for r in s.records if r.inputs.get("kind") == "Topology")
    assert {kueue.urn, topology_record.urn} <= set(flavor.dependencies)  # CRDs first, then the topology
    # a pool without a topology keeps a plain flavor
    assert "topologyName" not in one(s, "ResourceFlavor", "rtxpro-mig").inputs["spec"]
    assert not [r for r in shipped_synthesis("ncc-haenam").kubernetes_objects() if r.inputs["kind"] == "Topology"]


def test_dra_driver_serves_compute_domains_on_the_nvlink_pool_only(shipped_synthesis) -> None:
    s = shipped_synthesis("rdc-ulsan")
    release = next(r for r in s.helm_releases() if r.inputs["name"] == "nvidia-dra-driver-gpu")
    assert (release.inputs["chart"], release.inputs["version"], release.inputs["namespace"]) == (
        "dra-driver-nvidia-gpu", "0.4.1", "nvidia-dra-driver-gpu")  # the newest released chart
    assert release.inputs["repositoryOpts"] == {"repo": "https://cr.ulsan.example.kr/chartrepo/platform"}
    assert release.inputs["values"] == {
        "nvidiaDriverRoot": "/run/nvidia/driver",  # the GPU operator's driver container
        # GPUs stay with the device plugin: two allocators would double-book them
        "resources": {"gpus": {"enabled": False}, "computeDomains": {"enabled": True}},
        "image": {"repository": "cr.ulsan.example.kr/mirror/dra-driver-nvidia/dra-driver-nvidia-gpu"},
        # the conversion webhook's certificate from the centre's cert-manager CA
        "webhook": {"tls": {"mode": "cert-manager",
                            "certManager": {"issuerType": "clusterissuer", "issuerName": "ulsan-internal-ca"}}},
        "kubeletPlugin": {
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "sovcloud.kr/pool", "operator": "In", "values": ["gb200-nvl72"]}]}]}}}}}
    ns = one(s, "Namespace", "nvidia-dra-driver-gpu")
    assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    operator = next(r for r in s.helm_releases() if r.inputs["name"] == "gpu-operator")
    assert operator.urn in release.dependencies and ns.urn in release.dependencies  # after the driver root exists
    # regions without draDriver install none
    assert sorted(r.inputs["name"] for r in shipped_synthesis("ncc-haenam").helm_releases()) == [
        "gpu-operator", "kueue", "network-operator"]


def test_tenant_admins_may_create_compute_domains_only_where_the_dra_driver_runs(shipped_synthesis) -> None:
    def rules(region: str) -> list[dict]:
        return one(shipped_synthesis(region), "ClusterRole", "sovcloud-tenant-admin").inputs["rules"]

    dra = [{"apiGroups": ["resource.nvidia.com"], "resources": ["computedomains"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]},
           {"apiGroups": ["resource.k8s.io"], "resources": ["resourceclaims", "resourceclaimtemplates"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]}]
    assert rules("rdc-ulsan")[-2:] == dra
    assert rules("ncc-haenam") == rules("rdc-ulsan")[:-2]  # no DRA driver there: nothing more


@pytest.mark.parametrize("region", ["ncc-haenam", "rdc-ulsan"])
def test_autoscaler_template_node_matches_the_pool_flavor(shipped_synthesis, region: str) -> None:
    # a node the autoscaler plans from zero must carry every label the pool's Kueue flavor selects on, or no queued
    # pod fits it and the pool never grows back
    s = shipped_synthesis(region)
    flavors = {r.inputs["metadata"]["name"]: r.inputs["spec"]["nodeLabels"] for r in kinds(s, "ResourceFlavor")}
    checked = 0
    for md in kinds(s, "MachineDeployment"):
        ann = md.inputs["metadata"]["annotations"]
        template = dict(kv.split("=", 1) for kv in ann["capacity.cluster-autoscaler.kubernetes.io/labels"].split(","))
        pool = md.inputs["metadata"]["labels"]["sovcloud.kr/pool"]
        assert flavors[pool].items() <= template.items(), (pool, flavors[pool], template)
        checked += 1
    assert checked == {"ncc-haenam": 5, "rdc-ulsan": 2}[region]


def test_dra_webhook_certificate_from_a_secret(tree: Tree) -> None:
    tree.edit_region("rdc-ulsan", lambda r: r["draDriver"].update(
        webhookTls={"source": "secret", "secretName": "dra-webhook-tls", "caBundle": "Q0EK"}))
    cfg = config.load(tree.root)
    s = synth.run(tree.root, "rdc-ulsan", cfg, as_of=AS_OF)
    release = next(r for r in s.helm_releases() if r.inputs["name"] == "nvidia-dra-driver-gpu")
    assert release.inputs["values"]["webhook"] == {
        "tls": {"mode": "secret", "secret": {"name": "dra-webhook-tls", "caBundle": "Q0EK"}}}


def test_a_centre_kept_driver_repository_is_named_and_not_created(shipped_synthesis) -> None:
    s = shipped_synthesis("rdc-gwangju")
    assert release(s, "gpu-operator")["values"]["driver"]["repoConfig"] == {"configMapName": "os-package-mirror"}
    assert not [r for r in kinds(s, "ConfigMap") if r.inputs["metadata"]["name"] in ("os-package-mirror",
                                                                                      "sovcloud-driver-repo")]


def test_monitoring_objects_only_where_the_prometheus_operator_is_declared(shipped_synthesis) -> None:
    # ncc-haenam declares prerequisites.prometheusOperator; rdc-gwangju does not
    assert release(shipped_synthesis("ncc-haenam"), "gpu-operator")["values"]["dcgmExporter"]["serviceMonitor"][
        "enabled"] is True
    assert release(shipped_synthesis("ncc-haenam"), "kueue")["values"]["enablePrometheus"] is True
    rules = [r.inputs for r in shipped_synthesis("ncc-haenam").kubernetes_objects()
             if r.inputs["kind"] == "PrometheusRule"]
    assert [(r["metadata"]["namespace"], r["metadata"]["name"]) for r in rules] == [
        ("gpu-operator", "sovcloud-showback")]
    assert not [r for r in shipped_synthesis("rdc-gwangju").kubernetes_objects()
                if r.inputs["apiVersion"].startswith("monitoring.coreos.com/")]
    assert release(shipped_synthesis("rdc-gwangju"), "gpu-operator")["values"]["dcgmExporter"]["serviceMonitor"] == \
        {"enabled": False}
    assert release(shipped_synthesis("rdc-gwangju"), "kueue")["values"]["enablePrometheus"] is False


def test_service_monitor_without_the_prometheus_operator_is_refused(tree: Tree) -> None:
    tree.edit_region("rdc-gwangju", lambda r: r["gpuOperator"].update(serviceMonitor=True))
    with pytest.raises(ConfigInvalid) as exc:
        config.load(tree.root)
    (e,) = exc.value.errors
    assert (e.path, e.rule) == ("gpuOperator.serviceMonitor", "prerequisite")
    assert "prerequisites.prometheusOperator" in e.message


def test_kueue_runs_highly_available_and_manages_only_tenant_namespaces(shipped_synthesis) -> None:
    values = release(shipped_synthesis("rdc-ulsan"), "kueue")["values"]
    manager = values["controllerManager"]
    assert (manager["replicas"], manager["podDisruptionBudget"]) == (2, {"enabled": True, "minAvailable": 1})
    assert manager["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    cfg = yaml.safe_load(values["managerConfig"]["controllerManagerConfigYaml"])
    assert (cfg["apiVersion"], cfg["kind"]) == ("config.kueue.x-k8s.io/v1beta2", "Configuration")
    # its pod webhook (failurePolicy Fail) then never stands between the platform's own pods and the API server
    assert cfg["managedJobsNamespaceSelector"] == {"matchExpressions": [{"key": "sovcloud.kr/tenant",
                                                                         "operator": "Exists"}]}
    # pods asking for these are admitted; the namespace's ResourceQuota still counts what it must
    assert cfg["resources"]["excludeResourcePrefixes"] == ["ephemeral-storage", "hugepages-"]
    # Ulsan runs the DRA driver: ComputeDomain channel claims are a resource Kueue can count
    assert cfg["resources"]["deviceClassMappings"] == [
        {"name": "nvidia.com/compute-domain-channel",
         "deviceClassNames": ["compute-domain-default-channel.nvidia.com"]}]
    gwangju = yaml.safe_load(release(shipped_synthesis("rdc-gwangju"), "kueue")["values"]["managerConfig"][
        "controllerManagerConfigYaml"])
    assert "deviceClassMappings" not in gwangju["resources"]  # no DRA driver there


def _transform(props: dict, retain: bool):
    import pulumi

    from components.retention import record_retain_on_delete

    args = pulumi.ResourceTransformationArgs(None, "kubernetes:core/v1:Namespace", "ns", props,  # type: ignore[arg-type]
                                             pulumi.ResourceOptions(retain_on_delete=retain))
    result = record_retain_on_delete(args)
    return (result.props if result else props)["metadata"].get("annotations") or {}


def test_the_retention_annotation_comes_from_the_option_only() -> None:
    forged = {"metadata": {"name": "t1", "annotations": {"sovcloud.kr/retain-on-delete": "true", "keep": "me"}}}
    assert _transform(forged, retain=False) == {"keep": "me"}  # a hand-set claim without the option is dropped
    assert _transform({"metadata": {"name": "t1"}}, retain=True) == {"sovcloud.kr/retain-on-delete": "true"}
    assert _transform({"metadata": {"name": "t1"}}, retain=False) == {}


def test_the_program_takes_the_region_from_the_stack_config_it_is_given(tree: Tree) -> None:
    # the engine hands the program sovcloud:region however it was set (pulumi config set, an environment, the
    # Automation API); the file on disk is not the source of truth
    cfg = config.load(tree.root)
    raw = yaml.safe_load(tree.region_path("rdc-ulsan").read_text())["config"]["sovcloud:region"]
    raw["pools"][1]["nodes"] = 6
    s = synth.run(tree.root, "rdc-ulsan", cfg, {"sovcloud:region": json.dumps(raw)}, as_of=AS_OF)
    md = one(s, "MachineDeployment", "ulsan-gpu-rtxpro-mig", "capi-ulsan")
    assert md.inputs["spec"]["replicas"] == 6
    raw["pools"][1]["nodes"] = -1  # and it is validated like the file
    with pytest.raises(Exception, match=r"pools\[1\]\.nodes: -1 is less than"):
        synth.run(tree.root, "rdc-ulsan", cfg, {"sovcloud:region": json.dumps(raw)}, as_of=AS_OF)


def test_urns_are_the_engines(shipped_synthesis) -> None:
    # the engine qualifies a type with its whole parent chain and leaves the root stack out
    records = shipped_synthesis("rdc-ulsan").records
    by_name = {r.name: r.urn for r in records}
    assert by_name["rdc-ulsan"] == "urn:pulumi:rdc-ulsan::sovcloud::sovcloud:regions:Region::rdc-ulsan"
    assert by_name["rdc-ulsan-orbit-lm-clusterqueue"] == (
        "urn:pulumi:rdc-ulsan.t.orbit-lm::sovcloud::sovcloud:tenants:Tenant"
        "$kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue::rdc-ulsan-orbit-lm-clusterqueue")
    # each stack has its own provider
    assert sorted(r.urn for r in records if r.name == "workload")[:2] == [
        "urn:pulumi:rdc-ulsan.t.baram-shipyard::sovcloud::pulumi:providers:kubernetes::workload",
        "urn:pulumi:rdc-ulsan.t.hyeon-motors-ai::sovcloud::pulumi:providers:kubernetes::workload"]
    assert "urn:pulumi:rdc-ulsan::sovcloud::pulumi:providers:kubernetes::workload" in {r.urn for r in records}
    assert not [u for u in by_name.values() if "pulumi:pulumi:Stack$" in u]


def test_an_egress_cidr_spanning_private_ranges_gets_the_internet_exclusions(tree: Tree) -> None:
    tree.edit_tenant("city-traffic-twin", lambda d: d.update(network={"egressCidrs": ["0.0.0.0/0", "203.0.113.0/24"]}))
    s = synth.run(tree.root, "rdc-gwangju", config.load(tree.root), as_of=AS_OF)
    policy = one(s, "NetworkPolicy", "allow-egress-cidrs", "city-traffic-twin").inputs["spec"]
    assert policy["egress"] == [{"to": [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                     "100.64.0.0/10", "169.254.0.0/16"]}},
        {"ipBlock": {"cidr": "203.0.113.0/24"}}]}]


def test_tenant_admins_cannot_write_endpoints(shipped_synthesis) -> None:
    role = one(shipped_synthesis("ncc-haenam"), "ClusterRole", "sovcloud-tenant-admin").inputs
    writable = {res for rule in role["rules"] if set(rule["verbs"]) - {"get", "list", "watch"}
                for res in rule["resources"]}
    assert "endpoints" not in writable and "endpointslices" not in writable  # CVE-2021-25740


def test_two_tenants_sharing_an_admin_group_are_refused(tree: Tree) -> None:
    group = yaml.safe_load(tree.tenant_path("orbit-lm").read_text())["adminGroups"][0]
    tree.edit_tenant("pixelforge", lambda d: d["adminGroups"].append(group))
    with pytest.raises(ConfigInvalid) as exc:
        config.load(tree.root)
    (e,) = exc.value.errors
    assert (e.file, e.path, e.rule) == ("tenants/pixelforge.yaml", "adminGroups", "admin-group")
    assert f"group '{group}' already administers tenant orbit-lm" in e.message
