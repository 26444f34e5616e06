"""Upstream chart facts: where each chart takes its images from. Components rewrite every one of these to the
region's mirror; the registry policy requires every one to be set, since a key left out falls back to the chart's
default registry abroad."""

from __future__ import annotations

# gpu-operator v26 (deployments/gpu-operator/values.yaml): every operand's `repository`, with its upstream value
GPU_OPERATOR_REPOSITORIES: dict[tuple[str, ...], str] = {
    ("operator",): "nvcr.io/nvidia",
    ("validator",): "nvcr.io/nvidia",
    ("driver",): "nvcr.io/nvidia",
    ("driver", "manager"): "nvcr.io/nvidia/cloud-native",
    ("toolkit",): "nvcr.io/nvidia/k8s",
    ("devicePlugin",): "nvcr.io/nvidia",
    ("dcgm",): "nvcr.io/nvidia/cloud-native",
    ("dcgmExporter",): "nvcr.io/nvidia/k8s",
    ("gfd",): "nvcr.io/nvidia",
    ("migManager",): "nvcr.io/nvidia/cloud-native",
    ("nodeStatusExporter",): "nvcr.io/nvidia",
    ("gds",): "nvcr.io/nvidia/cloud-native",
    ("gdrcopy",): "nvcr.io/nvidia/cloud-native",
    ("vgpuManager",): "nvcr.io/nvidia",
    ("vgpuManager", "driverManager"): "nvcr.io/nvidia/cloud-native",
    ("vgpuDeviceManager",): "nvcr.io/nvidia/cloud-native",
    ("vfioManager",): "nvcr.io/nvidia/cloud-native",
    ("vfioManager", "driverManager"): "nvcr.io/nvidia/cloud-native",
    ("sandboxDevicePlugin",): "nvcr.io/nvidia",
    ("kataSandboxDevicePlugin",): "nvcr.io/nvidia/cloud-native",
    ("ccManager",): "nvcr.io/nvidia/cloud-native",
    ("draDriver",): "nvcr.io/nvidia",
    # the node-feature-discovery subchart's image
    ("node-feature-discovery", "image"): "registry.k8s.io/nfd/node-feature-discovery",
}

# kueue chart: image.repository of the controller and of KueueViz (released images live on registry.k8s.io)
KUEUE_REPOSITORIES: dict[tuple[str, ...], str] = {
    ("controllerManager", "manager", "image"): "registry.k8s.io/kueue/kueue",
    ("kueueViz", "backend", "image"): "registry.k8s.io/kueue/kueueviz-backend",
    ("kueueViz", "frontend", "image"): "registry.k8s.io/kueue/kueueviz-frontend",
}

# DRA Driver for NVIDIA GPUs: one image for the controller, kubelet plugin and webhook. The chart is
# dra-driver-nvidia-gpu (kubernetes-sigs, 0.x, image on registry.k8s.io); the 25.x releases were
# nvidia-dra-driver-gpu with the image on nvcr.io.
DRA_DRIVER_REPOSITORIES: dict[str, dict[tuple[str, ...], str]] = {
    "dra-driver-nvidia-gpu": {("image",): "registry.k8s.io/dra-driver-nvidia/dra-driver-nvidia-gpu"},
    "nvidia-dra-driver-gpu": {("image",): "nvcr.io/nvidia/k8s-dra-driver-gpu"},
}

IMAGE_KEYS: dict[str, list[str]] = {
    "gpu-operator": [".".join((*p, "repository")) for p in GPU_OPERATOR_REPOSITORIES],
    "kueue": [".".join((*p, "repository")) for p in KUEUE_REPOSITORIES],
    **{chart: [".".join((*p, "repository")) for p in repos] for chart, repos in DRA_DRIVER_REPOSITORIES.items()},
}
