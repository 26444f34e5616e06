"""GpuOperator: NVIDIA's gpu-operator chart from the region's mirror, with its MIG and time-slicing configs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import labels as L
from components.helm import chart_source, mirror_repositories
from sovcloud.config import charts, model
from sovcloud.keys import GPU_OPERATOR_NAMESPACE

NAMESPACE = GPU_OPERATOR_NAMESPACE
RELEASE = "gpu-operator"
MIG_CONFIGMAP = "sovcloud-mig-parted-config"
DEVICE_PLUGIN_CONFIGMAP = "sovcloud-device-plugin-config"
DEVICE_PLUGIN_DEFAULT = "default"
DRIVER_REPO_CONFIGMAP = "sovcloud-driver-repo"


@dataclass(frozen=True)
class GpuOperatorArgs:
    region: model.Region


def mig_parted_config(region: model.Region) -> dict[str, Any]:
    """mig-parted config: ``all-disabled`` plus one named layout per MIG pool (the node's mig.config label)."""
    configs: dict[str, Any] = {L.MIG_DISABLED: [{"devices": "all", "mig-enabled": False}]}
    for pool in region.pools:
        if pool.sharing.mode == "mig":
            configs[pool.mig_config] = [
                {"devices": "all", "mig-enabled": True, "mig-devices": dict(pool.sharing.mig_layout)}]
    return {"version": "v1", "mig-configs": configs}


def device_plugin_configs(region: model.Region) -> dict[str, dict[str, Any]]:
    """Device-plugin configs by name: a default, and time-slicing per pool that asks for it."""
    flags = {"migStrategy": region.gpu_operator.mig_strategy}
    out: dict[str, dict[str, Any]] = {DEVICE_PLUGIN_DEFAULT: {"version": "v1", "flags": flags}}
    for pool in region.pools:
        if pool.sharing.mode == "time-slicing":
            out[L.device_plugin_config_name(pool)] = {"version": "v1", "flags": flags, "sharing": {"timeSlicing": {
                "renameByDefault": pool.sharing.rename_by_default,
                "failRequestsGreaterThanOne": pool.sharing.fail_requests_greater_than_one,
                "resources": [{"name": L.GPU_RESOURCE, "replicas": pool.sharing.replicas}],
            }}}
    return out


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def kernel_module_type(region: model.Region) -> str:
    """``open`` when the config says auto but a Blackwell pool needs open modules: never leave it to chance."""
    setting = region.gpu_operator.kernel_module_type
    if setting == "auto" and any(p.gpu.open_kernel_modules for p in region.pools):
        return "open"
    return setting


def helm_values(region: model.Region) -> dict[str, Any]:
    """The chart values: pinned driver, sharing configs by reference, every image from the mirror."""
    op = region.gpu_operator
    values: dict[str, Any] = {
        "daemonsets": {"priorityClassName": "system-node-critical", "tolerations": [dict(L.GPU_TOLERATION)]},
        "driver": {"enabled": True, "version": op.driver_version, "kernelModuleType": kernel_module_type(region),
                   "usePrecompiled": op.use_precompiled,
                   # GPUDirect RDMA (the nvidia-peermem sidecar) on a region with a fabric; built against the
                   # hosts' DOCA/MOFED where the fabric's driver is the hosts' (driver.rdma.useHostMofed)
                   "rdma": {"enabled": op.rdma, **({"useHostMofed": region.fabric.driver == "host"}
                                                   if op.rdma and region.fabric else {})}},
        "toolkit": {"enabled": True},
        "mig": {"strategy": op.mig_strategy},
        "migManager": {"enabled": True, "config": {"create": False, "name": MIG_CONFIGMAP,
                                                   "default": L.MIG_DISABLED}},
        "devicePlugin": {"enabled": True, "config": {"create": False, "name": DEVICE_PLUGIN_CONFIGMAP,
                                                     "default": DEVICE_PLUGIN_DEFAULT}},
        "gfd": {"enabled": True},
        "dcgmExporter": {"enabled": op.dcgm_exporter, "serviceMonitor": {
            "enabled": op.service_monitor,
            # showback (sovcloud/showback.py): the exporter labels each GPU's series with the pod it is attributed
            # to (namespace, pod, container: DCGM_EXPORTER_KUBERNETES is on in the operator's DaemonSet). Those
            # collide with the target labels the Prometheus Operator adds, which win unless honorLabels (the
            # exporter's then become exported_namespace...); and the target's node becomes a label, to put each
            # GPU on its pool through kube-state-metrics' kube_node_labels. ClusterPolicy
            # dcgmExporter.serviceMonitor.honorLabels/relabelings (CRD v25.10-v26.7, RelabelConfig fields).
            **({"honorLabels": True, "relabelings": [{"action": "replace", "targetLabel": "node",
                                                      "sourceLabels": ["__meta_kubernetes_pod_node_name"]}]}
               if op.service_monitor else {})}},
        "nfd": {"enabled": op.nfd},
        "cdi": {"enabled": op.cdi},
        "gds": {"enabled": op.gds},
    }
    repo_config = driver_repo_config_map(region)
    if repo_config:
        # the driver container's OS packages from a domestic mirror, not the distribution's servers abroad; the
        # operator fails the driver step ("could not get ConfigMap") when the ConfigMap is missing
        values["driver"]["repoConfig"] = {"configMapName": repo_config}
    # every operand of the pinned chart version rewritten, disabled ones included: enabling one later must not
    # pull from abroad (v25.10.1 has operator.initContainer and kataManager, v26.7 draDriver: the keys differ)
    mirror_repositories(region, values, charts.repositories("gpu-operator", op.chart_version))
    return values


def driver_repo_config_map(region: model.Region) -> str | None:
    """The ConfigMap with the driver's package sources: sovcloud's own when the config gives the files, else the
    one the centre keeps (a declared prerequisite), else none."""
    op = region.gpu_operator
    return DRIVER_REPO_CONFIGMAP if op.driver_repository else op.driver_repo_config_map


def namespace_meta(region: model.Region) -> dict[str, Any]:
    # the operator's daemonsets load kernel modules and mount host paths: privileged by necessity
    return {"name": NAMESPACE, "labels": {**L.common(region), "pod-security.kubernetes.io/enforce": "privileged"}}


class GpuOperator(pulumi.ComponentResource):
    """The NVIDIA GPU operator of one region."""

    namespace: pulumi.Output[str]
    release: k8s.helm.v3.Release  # what depends on the driver (the DRA driver) waits for this

    def __init__(self, name: str, args: GpuOperatorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovcloud:gpu:GpuOperator", name, None, opts)
        region = args.region
        child = pulumi.ResourceOptions(parent=self)
        ns = k8s.core.v1.Namespace(f"{name}-namespace", metadata=namespace_meta(region), opts=child)
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[ns])
        meta = {"namespace": NAMESPACE, "labels": L.common(region)}
        mig = k8s.core.v1.ConfigMap(f"{name}-mig-config", metadata={**meta, "name": MIG_CONFIGMAP},
                                    data={"config.yaml": _dump(mig_parted_config(region))}, opts=in_ns)
        dp = k8s.core.v1.ConfigMap(f"{name}-device-plugin-config", metadata={**meta, "name": DEVICE_PLUGIN_CONFIGMAP},
                                   data={k: _dump(v) for k, v in device_plugin_configs(region).items()}, opts=in_ns)
        configs: list[pulumi.Resource] = [mig, dp]
        if region.gpu_operator.driver_repository:
            configs.append(k8s.core.v1.ConfigMap(
                f"{name}-driver-repo", metadata={**meta, "name": DRIVER_REPO_CONFIGMAP},
                data=dict(sorted(region.gpu_operator.driver_repository.items())), opts=in_ns))
        self.release = k8s.helm.v3.Release(
            f"{name}-release", name=RELEASE, namespace=NAMESPACE, create_namespace=False,
            **chart_source(region, "gpu-operator", region.gpu_operator.chart_version),
            values=helm_values(region), atomic=True, timeout=1800, max_history=10,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, *configs]))
        self.namespace = ns.metadata.name
        self.register_outputs({"namespace": self.namespace})
