"""DraDriver: the DRA Driver for NVIDIA GPUs, for ComputeDomains on multi-node NVLink pools.

A ComputeDomain (``resource.nvidia.com``) is what a job creates to get IMEX channels, i.e. NVLink between its pods
on different trays of one NVL72 rack. The driver's kubelet plugin runs on the configured pools only, tolerating the
GPU taint; its GPU allocation part stays off, since the GPU operator's device plugin hands out ``nvidia.com/gpu``
(two allocators of the same GPUs would double-book them). The GPU operator's driver container is the driver root.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import labels as L
from components.helm import chart_source, mirror_repositories
from sovcloud.config import charts, model

NAMESPACE = "nvidia-dra-driver-gpu"
RELEASE = "nvidia-dra-driver-gpu"
DRIVER_ROOT = "/run/nvidia/driver"  # where the GPU operator's driver container exposes the driver on the host


@dataclass(frozen=True)
class DraDriverArgs:
    region: model.Region
    gpu_operator: pulumi.Resource | None = None  # the operator's release: the driver root comes from it


def helm_values(region: model.Region) -> dict[str, Any]:
    dra = region.dra_driver
    assert dra is not None
    values: dict[str, Any] = {
        "nvidiaDriverRoot": DRIVER_ROOT,
        "resources": {"gpus": {"enabled": False}, "computeDomains": {"enabled": True}},
        "kubeletPlugin": {
            "tolerations": [dict(L.GPU_TOLERATION)],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": L.POOL, "operator": "In", "values": sorted(dra.pools)}]}]}}},
        },
    }
    tls = dra.webhook_tls
    if tls["source"] == "secret":
        values["webhook"] = {"tls": {"mode": "secret",
                                     "secret": {"name": tls["secretName"], "caBundle": tls["caBundle"]}}}
    else:
        issuer = ({"issuerType": "clusterissuer", "issuerName": tls["clusterIssuer"]} if "clusterIssuer" in tls
                  else {"issuerType": "selfsigned"})
        values["webhook"] = {"tls": {"mode": "cert-manager", "certManager": issuer}}
    # the pinned chart's image repositories, rewritten to the mirror (the registry policy checks every one)
    mirror_repositories(region, values, charts.repositories(dra.chart, dra.chart_version))
    return values


class DraDriver(pulumi.ComponentResource):
    """The DRA driver's namespace and release."""

    def __init__(self, name: str, args: DraDriverArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovcloud:gpu:DraDriver", name, None, opts)
        region = args.region
        assert region.dra_driver is not None
        # the kubelet plugin and the ComputeDomain daemons are privileged (device nodes, IMEX)
        ns = k8s.core.v1.Namespace(f"{name}-namespace", metadata={
            "name": NAMESPACE, "labels": {**L.common(region), "pod-security.kubernetes.io/enforce": "privileged"}},
            opts=pulumi.ResourceOptions(parent=self))
        after = [ns] + ([args.gpu_operator] if args.gpu_operator is not None else [])
        k8s.helm.v3.Release(f"{name}-release", name=RELEASE, namespace=NAMESPACE, create_namespace=False,
                            **chart_source(region, region.dra_driver.chart, region.dra_driver.chart_version),
                            values=helm_values(region), atomic=True, timeout=900, max_history=10,
                            opts=pulumi.ResourceOptions(parent=self, depends_on=after))
        self.register_outputs({})
