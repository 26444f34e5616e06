"""The allocation rules, each written once, over plain figures: GPUs per pool, GPUs guaranteed per (pool, tenant),
each tenant's sector, MIG instances, and the region's and the programme's limits.

Two sides feed the same figures to the same functions: the policy pack reads them from the resources a stack
registers (``policies/``), onboarding and reports from the config model (``sovcloud.engine.capacity``). A rule gives
back ``Finding``s; each side decides where a finding points (a resource URN, a config file line).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Finding:
    message: str
    pool: str | None = None  # the pool the finding is about, when it is about one
    tenant: str | None = None  # the tenant the finding is about, when it is about one


@dataclass(frozen=True)
class Figures:
    """One region's GPU figures on one day."""

    capacity: Mapping[str, int]  # per pool: GPUs that can back guarantees (an autoscaled pool at its minimum)
    guaranteed: Mapping[tuple[str, str], int]  # per (pool, tenant): whole physical GPUs guaranteed
    sectors: Mapping[str, str] = field(default_factory=dict)  # per tenant: its sector
    mig_guaranteed: Mapping[tuple[str, str], int] = field(default_factory=dict)  # per (pool, profile): instances
    mig_per_gpu: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # per pool: its layout, per GPU
    # per (pool, tenant): the MIG instances guaranteed, as the share of GPUs they occupy (compute slices of the
    # instance over the GPU's): they count in the shares, caps, grants and the budget like whole GPUs
    mig_equivalent: Mapping[tuple[str, str], float] = field(default_factory=dict)
    # The region's tenants outside this stack (a tenant stack sees its own queue only; the policy config carries
    # the rest, summed from the config): whole GPUs per pool, GPUs (MIG shares included) per sector, MIG instances
    # per (pool, profile). They count in the region's sums, never as a tenant of their own.
    others_by_pool: Mapping[str, int] = field(default_factory=dict)
    others_by_sector: Mapping[str, float] = field(default_factory=dict)
    others_mig: Mapping[tuple[str, str], int] = field(default_factory=dict)

    @property
    def total_capacity(self) -> int:
        return sum(self.capacity.values())

    @property
    def others_total(self) -> float:
        return math.fsum(self.others_by_sector.values())  # exact: the same total in any order of the sectors

    def by_pool(self) -> dict[str, int]:
        out: dict[str, int] = dict(self.others_by_pool)
        for (pool, _), gpus in self.guaranteed.items():
            out[pool] = out.get(pool, 0) + gpus
        return out

    def by_tenant(self) -> dict[str, float]:
        """Whole GPUs plus MIG instances as GPU shares, per tenant."""
        out: dict[str, float] = {}
        for (_, tenant), gpus in [*self.guaranteed.items(), *self.mig_equivalent.items()]:
            out[tenant] = out.get(tenant, 0) + gpus
        return out

    def by_sector(self) -> dict[str, float]:
        out: dict[str, float] = dict(self.others_by_sector)
        for tenant, gpus in self.by_tenant().items():
            sector = self.sectors.get(tenant, "")
            out[sector] = out.get(sector, 0) + gpus
        return out


@dataclass(frozen=True)
class ShareRules:
    reserved_shares: Mapping[str, float] = field(default_factory=dict)  # sector -> share of the region's GPUs
    per_tenant_gpu_cap: int | None = None
    per_sector_gpu_cap: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class NationalRules:
    budget: int = 0  # 0: no national budget
    other_regions_guaranteed: float = 0  # what the other regions guarantee on the same day
    grants: Mapping[str, int] = field(default_factory=dict)  # tenant -> GPUs granted across regions
    other_regions_by_tenant: Mapping[str, float] = field(default_factory=dict)


def fmt_gpus(value: float) -> str:
    """A GPU figure as people read it: whole numbers as such, MIG shares to one decimal. Within a millionth of a
    whole number is that number: sums of MIG shares (sevenths) carry float error, and the same total summed in
    another order (another stack) must read the same."""
    return f"{value:.0f}" if abs(value - round(value)) < 1e-6 else f"{value:.1f}"


def mig_share(profile: str, gpu_compute_slices: int) -> float:
    """The share of a GPU a MIG instance occupies: its compute slices (the ``Ng`` of ``3g.90gb``) over the GPU's."""
    return int(profile.split("g.", 1)[0]) / gpu_compute_slices if gpu_compute_slices else 0.0


def reserved(capacity: int, shares: Mapping[str, float]) -> dict[str, int]:
    """GPUs reserved per sector: its share of the region's GPUs, rounded down."""
    return {sector: int(capacity * share) for sector, share in shares.items()}


def sector_room(capacity: int, shares: Mapping[str, float], sector: str) -> int:
    """GPUs a sector may hold: all but what is reserved for the other sectors."""
    return capacity - sum(r for s, r in reserved(capacity, shares).items() if s != sector)


def within_capacity(fig: Figures) -> list[Finding]:
    """Per pool, the GPUs guaranteed to tenants never exceed the GPUs the pool has."""
    return [Finding(f"pool {pool}: {gpus} GPUs guaranteed, {fig.capacity.get(pool, 0)} exist", pool=pool)
            for pool, gpus in sorted(fig.by_pool().items()) if gpus > fig.capacity.get(pool, 0)]


def mig_within_layout(fig: Figures) -> list[Finding]:
    """Per pool and MIG profile, the instances guaranteed fit what the pool's layout makes of its GPUs."""
    out = []
    counts = dict(fig.others_mig)
    for key, count in fig.mig_guaranteed.items():
        counts[key] = counts.get(key, 0) + count
    for (pool, profile), count in sorted(counts.items()):
        per_gpu = (fig.mig_per_gpu.get(pool) or {}).get(profile, 0)
        gpus = fig.capacity.get(pool, 0)
        if count > per_gpu * gpus:
            out.append(Finding(f"pool {pool}: {count} {profile} instances guaranteed, {per_gpu * gpus} exist "
                               f"({per_gpu} per GPU on {gpus} GPUs)", pool=pool))
    return out


def shares_and_caps(fig: Figures, rules: ShareRules) -> list[Finding]:
    """Each sector keeps what is reserved for it (others may not guarantee into it); no tenant or sector exceeds its
    GPU cap."""
    out = []
    capacity = fig.total_capacity
    by_sector = fig.by_sector()
    held_back = reserved(capacity, rules.reserved_shares)
    over = False
    for sector, used in sorted(by_sector.items()):
        room = sector_room(capacity, rules.reserved_shares, sector)
        if used > room:
            over = True
            out.append(Finding(f"sector {sector}: {fmt_gpus(used)} GPUs guaranteed, but only {room} of {capacity} are "
                               "not reserved for other sectors"))
    # sectors each within their room can still squeeze a reservation together: each claims the larger of what it
    # is guaranteed and what is reserved for it
    claims = {s: max(by_sector.get(s, 0), held_back.get(s, 0)) for s in {*by_sector, *held_back}}
    for sector, r in sorted(held_back.items()):
        others = sum(c for s, c in claims.items() if s != sector)
        if not over and by_sector.get(sector, 0) < r and others > capacity - r:
            out.append(Finding(f"sector {sector}: {r} GPUs reserved, but other sectors guarantee or reserve "
                               f"{fmt_gpus(others)} of {capacity}"))
    cap = rules.per_tenant_gpu_cap
    if cap is not None:
        out += [Finding(f"tenant {tenant}: {fmt_gpus(held)} GPUs guaranteed, cap is {cap} per tenant", tenant=tenant)
                for tenant, held in sorted(fig.by_tenant().items()) if held > cap]
    for sector, sector_cap in sorted(rules.per_sector_gpu_cap.items()):
        if by_sector.get(sector, 0) > sector_cap:
            out.append(Finding(f"sector {sector}: {fmt_gpus(by_sector[sector])} GPUs guaranteed, cap is {sector_cap}"))
    return out


def national_budget(fig: Figures, rules: NationalRules) -> list[Finding]:
    """This region's guaranteed GPUs plus the other regions' stay within the national budget; a tenant's total
    across regions stays within its grant (judged where the tenant holds GPUs: elsewhere a stack can neither cause
    nor fix the excess)."""
    out = []
    here = fig.by_tenant()
    if rules.budget:
        total = sum(here.values()) + fig.others_total + rules.other_regions_guaranteed
        if total > rules.budget:
            out.append(Finding(f"{fmt_gpus(total)} GPUs guaranteed across all regions, national budget is "
                               f"{rules.budget}"))
    for tenant, grant in sorted(rules.grants.items()):
        if tenant not in here:
            continue
        total = here[tenant] + rules.other_regions_by_tenant.get(tenant, 0)
        if total > grant:
            out.append(Finding(f"tenant {tenant}: {fmt_gpus(total)} GPUs guaranteed across regions, grant is {grant}",
                               tenant=tenant))
    return out
