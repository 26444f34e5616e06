"""The GPU catalog carries the upstream facts the rest of the toolkit relies on."""

from __future__ import annotations

import pytest

from sovcloud.config.catalog import BUILTIN

# What GPU Feature Discovery writes as nvidia.com/gpu.product (NVML name, spaces -> '-'); see domain facts.
GFD_PRODUCTS = {
    "H100": "NVIDIA-H100-80GB-HBM3", "H200": "NVIDIA-H200", "B200": "NVIDIA-B200", "GB200": "NVIDIA-GB200",
    "B300": "NVIDIA-B300-SXM6-AC", "GB300": "NVIDIA-GB300", "L40S": "NVIDIA-L40S",
    "RTX-PRO-6000": "NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition",
}


def test_catalog_has_the_supported_models_with_gfd_products() -> None:
    assert {name: m.gfd_product for name, m in BUILTIN.items()} == GFD_PRODUCTS


def test_mig_profiles_match_mig_manager_defaults() -> None:
    assert {p: (m.compute_slices, m.memory_slices, m.max_count) for p, m in BUILTIN["B200"].mig_profiles.items()} == {
        "1g.23gb": (1, 1, 7), "1g.45gb": (1, 2, 4), "2g.45gb": (2, 2, 3), "3g.90gb": (3, 4, 2), "4g.90gb": (4, 4, 1),
        "7g.180gb": (7, 8, 1)}
    assert list(BUILTIN["RTX-PRO-6000"].mig_profiles) == ["1g.24gb", "2g.48gb", "4g.96gb"]
    assert not BUILTIN["L40S"].mig_capable


@pytest.mark.parametrize("model", [m for m in BUILTIN.values() if m.mig_capable], ids=lambda m: m.name)
def test_every_profile_at_its_maximum_count_fits_one_gpu(model) -> None:
    for name, profile in model.mig_profiles.items():
        assert model.layout_problem({name: profile.max_count}) is None, name


@pytest.mark.parametrize("model", ["H100", "H200", "B200", "GB200", "B300", "GB300"])
def test_balanced_layout_fits_and_one_more_slice_does_not(model) -> None:
    gpu = BUILTIN[model]
    one_g, two_g, three_g = (next(p for p in gpu.mig_profiles if p.startswith(f"{n}g.")) for n in (1, 2, 3))
    assert gpu.layout_problem({one_g: 2, two_g: 1, three_g: 1}) is None
    assert "compute slices" in (gpu.layout_problem({one_g: 3, two_g: 1, three_g: 1}) or "")


def test_blackwell_needs_open_modules_and_recent_driver() -> None:
    blackwell = {n for n, m in BUILTIN.items() if m.family == "blackwell"}
    assert blackwell == {"B200", "GB200", "B300", "GB300", "RTX-PRO-6000"}
    assert all(BUILTIN[n].open_kernel_modules for n in blackwell)
    assert BUILTIN["B200"].min_driver == "570.133.20"
    assert BUILTIN["RTX-PRO-6000"].min_driver == "575.57.08"
    assert (BUILTIN["GB200"].gpus_per_node, BUILTIN["B200"].gpus_per_node) == (4, 8)
