"""The allocation rules themselves (sovcloud.allocation), on hand-made figures: what both the pack and onboarding
call."""

from __future__ import annotations

import pytest

from sovcloud import allocation
from sovcloud.allocation import Figures, ShareRules


def test_a_mig_instance_counts_as_the_share_of_the_gpu_its_compute_slices_take() -> None:
    assert allocation.mig_share("3g.90gb", 7) == pytest.approx(3 / 7)
    assert allocation.mig_share("2g.48gb", 4) == pytest.approx(0.5)  # RTX PRO 6000: four compute slices
    assert allocation.mig_share("7g.180gb", 7) == 1


def test_a_mig_pool_guaranteed_to_one_sector_counts_against_its_cap_and_the_reserves() -> None:
    # 100 whole GPUs and a 28-GPU MIG pool (2 x 3g.90gb each: 6/7 of a GPU) all guaranteed to startups
    fig = Figures(capacity={"whole": 100, "mig": 28}, guaranteed={("whole", "a"): 40, ("mig", "a"): 0},
                  sectors={"a": "startup"}, mig_equivalent={("mig", "a"): 56 * 3 / 7})
    assert fig.by_sector() == {"startup": pytest.approx(64)}
    findings = allocation.shares_and_caps(fig, ShareRules({"research": 0.6}, 50, {"startup": 60}))
    assert [f.message for f in findings] == [
        "sector startup: 64 GPUs guaranteed, but only 52 of 128 are not reserved for other sectors",
        "tenant a: 64 GPUs guaranteed, cap is 50 per tenant",
        "sector startup: 64 GPUs guaranteed, cap is 60"]
    assert [f.tenant for f in findings] == [None, "a", None]
    # without the MIG share nothing would fire
    whole_only = Figures(capacity=fig.capacity, guaranteed=fig.guaranteed, sectors=fig.sectors)
    assert allocation.shares_and_caps(whole_only, ShareRules({"research": 0.6}, 50, {"startup": 60})) == []


def test_fractional_figures_read_as_people_write_them() -> None:
    assert (allocation.fmt_gpus(64.0), allocation.fmt_gpus(70.857), allocation.fmt_gpus(3)) == ("64", "70.9", "3")
