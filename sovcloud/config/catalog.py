"""The GPU catalog: what each supported NVIDIA data-centre GPU is, as the GPU operator and GFD see it.

Sources (see ``reference/domain-facts.md``): MIG profiles from the GPU operator's mig-manager default config
(``assets/state-mig-manager/0400_configmap.yaml``, v25.10.1); product labels as GPU Feature Discovery writes
them (NVML name, spaces replaced by ``-``); driver and operator minimums from the operator's platform-support
notes. Values marked *inferred* are not yet confirmed on hardware: a region config can override any entry, or
add a model the table lacks, under ``gpuModels`` (see ``schemas/region.schema.json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class MigProfile:
    """One MIG profile on one GPU model, e.g. ``1g.23gb`` on B200."""

    name: str
    compute_slices: int  # the ``Ng`` part: GPU instance size in compute slices
    memory_slices: int  # share of the GPU's memory slices the instance takes
    max_count: int  # most instances of this profile one GPU can hold


@dataclass(frozen=True)
class GpuModel:
    """A GPU model as the toolkit needs to know it."""

    name: str  # catalog key, used in config: "B200"
    description: str
    family: str  # GFD ``nvidia.com/gpu.family``: hopper, blackwell, ada-lovelace
    memory_gb: int
    gfd_product: str  # GFD ``nvidia.com/gpu.product`` for a whole (unshared) GPU
    gpus_per_node: int  # default for a pool of this model; a pool may override
    min_driver: str  # lowest driver branch release that supports the model
    min_operator: str  # lowest GPU operator chart version that supports the model
    open_kernel_modules: bool  # True: needs ``driver.kernelModuleType`` open (or auto)
    compute_slices: int = 7  # MIG compute slices per GPU (0 = no MIG)
    memory_slices: int = 8  # MIG memory slices per GPU
    mig_profiles: Mapping[str, MigProfile] = field(default_factory=lambda: MappingProxyType({}))
    inferred: bool = False  # some fact above is inferred, not confirmed upstream
    multi_node_nvlink: bool = False  # NVLink spans nodes (an NVL72 rack): GFD writes nvidia.com/gpu.clique
    # the host's share per GPU on a typical node of this model (logical CPUs, memory GiB): what a borrowed GPU
    # brings along in the queues. Typical platform figures, not read off the hardware: a pool's nodeShape
    # (or its autoscaling nodeCapacity) overrides them
    host_cpu_per_gpu: int = 0
    host_memory_gib_per_gpu: int = 0
    arch: str = "amd64"  # the host CPUs' architecture (kubernetes.io/arch): Grace-based trays are arm64

    @property
    def mig_capable(self) -> bool:
        return bool(self.mig_profiles)

    def mig_resource(self, profile: str) -> str:
        """Extended resource name the device plugin advertises for a MIG profile (mixed strategy)."""
        return f"nvidia.com/mig-{profile}"

    def layout_problem(self, layout: Mapping[str, int]) -> str | None:
        """Why a per-GPU MIG layout ``{profile: count}`` does not fit this model, or None when it fits.

        Checks profile existence, per-profile maximum counts, and that compute and memory slices add up to at
        most what one GPU has. Placement rules finer than slice totals are left to mig-parted on the node.
        """
        if not self.mig_capable:
            return f"{self.name} does not support MIG"
        compute = memory = 0
        for name, count in layout.items():
            profile = self.mig_profiles.get(name)
            if profile is None:
                return f"MIG profile {name} does not exist on {self.name} (one of: {', '.join(self.mig_profiles)})"
            if count > profile.max_count:
                return f"{count} x {name} exceeds the {profile.max_count} one {self.name} GPU can hold"
            compute += profile.compute_slices * count
            memory += profile.memory_slices * count
        if compute > self.compute_slices:
            return f"layout uses {compute} compute slices, a {self.name} GPU has {self.compute_slices}"
        if memory > self.memory_slices:
            return f"layout uses {memory} memory slices, a {self.name} GPU has {self.memory_slices}"
        return None


def _profiles(spec: str, total_memory_gb: int, memory_slices: int = 8) -> Mapping[str, MigProfile]:
    """Parse ``"1g.10gb x7, 2g.20gb x3"``; memory slices derive from the profile's share of the GPU memory."""
    out: dict[str, MigProfile] = {}
    for item in spec.split(","):
        name, count = item.split()
        compute = int(name.split("g.", 1)[0])
        gb = int(name.split(".", 1)[1].removesuffix("gb"))
        slices = max(1, round(gb * memory_slices / total_memory_gb))
        out[name] = MigProfile(name, compute, slices, int(count.removeprefix("x")))
    return MappingProxyType(out)


_MIG_SPECS = {
    # memory basis is the largest profile's size, which is what the slices divide
    "H100": ("1g.10gb x7, 1g.20gb x4, 2g.20gb x3, 3g.40gb x2, 4g.40gb x1, 7g.80gb x1", 80),
    "H200": ("1g.18gb x7, 1g.35gb x4, 2g.35gb x3, 3g.71gb x2, 4g.71gb x1, 7g.141gb x1", 141),
    "B200": ("1g.23gb x7, 1g.45gb x4, 2g.45gb x3, 3g.90gb x2, 4g.90gb x1, 7g.180gb x1", 180),
    "GB200": ("1g.23gb x7, 1g.47gb x4, 2g.47gb x3, 3g.93gb x2, 4g.93gb x1, 7g.186gb x1", 186),
    "B300": ("1g.34gb x7, 1g.67gb x4, 2g.67gb x3, 3g.135gb x2, 4g.135gb x1, 7g.269gb x1", 269),
    "GB300": ("1g.35gb x7, 1g.70gb x4, 2g.70gb x3, 3g.139gb x2, 4g.139gb x1, 7g.278gb x1", 278),
}


def _model(name: str, **kw: Any) -> GpuModel:
    spec = _MIG_SPECS.get(name)
    if spec is not None:
        kw.setdefault("mig_profiles", _profiles(*spec))
    return GpuModel(name=name, **kw)


BUILTIN: Mapping[str, GpuModel] = MappingProxyType({
    m.name: m
    for m in (
        _model("H100", host_cpu_per_gpu=28, host_memory_gib_per_gpu=256,
               description="H100 SXM 80GB (HGX)", family="hopper", memory_gb=80,
               gfd_product="NVIDIA-H100-80GB-HBM3", gpus_per_node=8, min_driver="535.54.03",
               min_operator="v23.3.0", open_kernel_modules=False),
        _model("H200", host_cpu_per_gpu=28, host_memory_gib_per_gpu=256,
               description="H200 SXM 141GB (HGX)", family="hopper", memory_gb=141,
               gfd_product="NVIDIA-H200", gpus_per_node=8, min_driver="550.54.15",
               min_operator="v24.3.0", open_kernel_modules=False),
        # host per GPU: HGX/DGX 2 x 56-core Xeon (224 threads) and 2 TiB for 8 GPUs; a GB200/GB300 compute tray 2
        # Grace CPUs (144 cores) and 960 GiB LPDDR5X for 4 GPUs; PCIe servers 128 threads and 1-1.5 TiB for 8
        # Blackwell: open kernel modules only; HGX B200 / GB200 from operator v25.3.0 with driver >= 570.133.20
        _model("B200", host_cpu_per_gpu=28, host_memory_gib_per_gpu=256,
               description="B200 180GB (HGX/DGX)", family="blackwell", memory_gb=180,
               gfd_product="NVIDIA-B200", gpus_per_node=8, min_driver="570.133.20",
               min_operator="v25.3.0", open_kernel_modules=True),
        _model("GB200", host_cpu_per_gpu=36, host_memory_gib_per_gpu=240, arch="arm64",
               description="GB200 NVL72 (4 GPUs per compute tray)", family="blackwell", memory_gb=186,
               gfd_product="NVIDIA-GB200", gpus_per_node=4, min_driver="570.133.20",
               min_operator="v25.3.0", open_kernel_modules=True, multi_node_nvlink=True),
        # B300 / GB300 from operator v25.10.0; the R580 branch is the first to ship with it (inferred)
        _model("B300", host_cpu_per_gpu=28, host_memory_gib_per_gpu=256,
               description="B300 288GB (HGX)", family="blackwell", memory_gb=288,
               gfd_product="NVIDIA-B300-SXM6-AC", gpus_per_node=8, min_driver="580.82.07",
               min_operator="v25.10.0", open_kernel_modules=True, inferred=True),
        _model("GB300", host_cpu_per_gpu=36, host_memory_gib_per_gpu=240, arch="arm64",
               description="GB300 NVL72 (4 GPUs per compute tray)", family="blackwell", memory_gb=288,
               gfd_product="NVIDIA-GB300", gpus_per_node=4, min_driver="580.82.07",
               min_operator="v25.10.0", open_kernel_modules=True, inferred=True, multi_node_nvlink=True),
        _model("L40S", host_cpu_per_gpu=16, host_memory_gib_per_gpu=128,
               description="L40S 48GB (PCIe)", family="ada-lovelace", memory_gb=48,
               gfd_product="NVIDIA-L40S", gpus_per_node=8, min_driver="535.54.03",
               min_operator="v23.6.0", open_kernel_modules=False, compute_slices=0, memory_slices=0),
        # RTX PRO 6000 Blackwell Server Edition: 4 compute slices per GPU, driver >= 575.57.08
        _model("RTX-PRO-6000", host_cpu_per_gpu=16, host_memory_gib_per_gpu=192,
               description="RTX PRO 6000 Blackwell Server Edition 96GB (PCIe)",
               family="blackwell", memory_gb=96, gfd_product="NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition",
               gpus_per_node=8, min_driver="575.57.08", min_operator="v25.3.0", open_kernel_modules=True,
               compute_slices=4, memory_slices=4,
               mig_profiles=_profiles("1g.24gb x4, 2g.48gb x2, 4g.96gb x1", 96, memory_slices=4)),
    )
})


def model_from_config(name: str, entry: Mapping[str, Any], base: GpuModel | None) -> GpuModel:
    """A model from a region's ``gpuModels`` entry: overrides fields of ``base`` or defines a new model.

    ``entry`` has been schema-checked; a new model must carry every field the schema marks required for it
    (checked by the loader, which reports the missing ones).
    """
    fields: dict[str, Any] = {}
    if base is not None:
        fields = {k: getattr(base, k) for k in GpuModel.__dataclass_fields__}
    renames = {
        "description": "description", "family": "family", "memoryGB": "memory_gb",
        "gfdProduct": "gfd_product", "gpusPerNode": "gpus_per_node", "minDriver": "min_driver",
        "minOperator": "min_operator", "openKernelModules": "open_kernel_modules",
        "computeSlices": "compute_slices", "memorySlices": "memory_slices", "multiNodeNvlink": "multi_node_nvlink",
        "arch": "arch",
    }
    for key, attr in renames.items():
        if key in entry:
            fields[attr] = entry[key]
    fields["name"] = name
    fields.setdefault("description", name)
    fields.setdefault("compute_slices", 7)
    fields.setdefault("memory_slices", 8)
    fields["inferred"] = False
    if "migProfiles" in entry:
        fields["mig_profiles"] = MappingProxyType({
            p: MigProfile(p, int(v["computeSlices"]), int(v["memorySlices"]), int(v["maxCount"]))
            for p, v in entry["migProfiles"].items()
        })
    fields.setdefault("mig_profiles", MappingProxyType({}))
    return GpuModel(**fields)


NEW_MODEL_REQUIRED = ("family", "memoryGB", "gfdProduct", "gpusPerNode", "minDriver", "minOperator",
                      "openKernelModules")


def version_tuple(version: str) -> tuple[int, ...]:
    """``"v25.10.1"`` or ``"580.126.20"`` -> comparable tuple; non-numeric parts count as 0."""
    parts = []
    for piece in version.lstrip("v").split("-", 1)[0].split("."):
        parts.append(int(piece) if piece.isdigit() else 0)
    return tuple(parts)
