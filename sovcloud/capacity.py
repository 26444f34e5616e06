"""GPU capacity and allocation from the config model: what is guaranteed, borrowable and free per pool, and which
allocation rules a config breaks. Used where a person needs an answer before anything is synthesised (`tenant add`,
`report`); in CI the policy pack checks the same rules on the synthesised resources."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sovcloud.model import SECTORS, Config, Region


def backed_gpus(region: Region) -> int:
    """GPUs of the region that can back guarantees (autoscaled pools at their minimum)."""
    return sum(p.backed_gpus for p in region.pools)


def sector_room(region: Region, sector: str) -> int:
    """GPUs a sector may hold in the region: all but what is reserved for the other sectors."""
    total = backed_gpus(region)
    return total - sum(int(total * share) for other, share in region.allocation.reserved_shares.items()
                       if other != sector)


@dataclass(frozen=True)
class PoolUse:
    region: str
    pool: str
    gpu_model: str
    capacity: int  # GPUs that back guarantees (an autoscaled pool at its minimum)
    guaranteed: int
    borrowable: int
    mig_guaranteed: dict[str, int]  # MIG instances guaranteed, by profile
    mig_capacity: dict[str, int]  # MIG instances the pool's layout makes, by profile

    @property
    def free(self) -> int:
        return self.capacity - self.guaranteed


def pool_usage(cfg: Config, as_of: dt.date, regions: set[str] | None = None) -> list[PoolUse]:
    out = []
    for region in sorted(cfg.regions.values(), key=lambda r: r.name):
        if regions is not None and region.name not in regions:
            continue
        held = [a for t, a in cfg.allocations_in(region.name) if t.holds_quota(a, as_of)]
        for pool in region.pools:
            allocs = [a for a in held if a.pool == pool.name]
            mig = {p: sum(a.mig.get(p, 0) for a in allocs) for p in pool.sharing.mig_layout}
            out.append(PoolUse(region.name, pool.name, pool.gpu.name, pool.backed_gpus, sum(a.gpus for a in allocs),
                               sum(a.borrowing_limit for a in allocs), mig,
                               {p: n * pool.backed_gpus for p, n in pool.sharing.mig_layout.items()}))
    return out


def by_sector(cfg: Config, region: str, as_of: dt.date) -> dict[str, int]:
    out = dict.fromkeys(SECTORS, 0)
    for t, a in cfg.allocations_in(region):
        if t.holds_quota(a, as_of):
            out[t.sector] += a.gpus
    return out


def by_tenant(cfg: Config, region: str, as_of: dt.date) -> dict[str, int]:
    out: dict[str, int] = {}
    for t, a in cfg.allocations_in(region):
        if t.holds_quota(a, as_of):
            out[t.name] = out.get(t.name, 0) + a.gpus
    return out


def problems(cfg: Config, as_of: dt.date, regions: set[str] | None = None) -> list[str]:
    """Capacity, reserved shares, caps, grants and the national budget that the config breaks on ``as_of``, one
    sentence each; ``regions`` limits the per-region rules to those regions."""
    found = []
    for use in pool_usage(cfg, as_of, regions):
        if use.guaranteed > use.capacity:
            found.append(f"{use.region}/{use.pool}: {use.guaranteed} GPUs guaranteed, {use.capacity} exist")
        for profile, count in use.mig_guaranteed.items():
            if count > use.mig_capacity[profile]:
                found.append(f"{use.region}/{use.pool}: {count} {profile} instances guaranteed, "
                             f"{use.mig_capacity[profile]} exist")
    for region in sorted(cfg.regions.values(), key=lambda r: r.name):
        if regions is not None and region.name not in regions:
            continue
        rules = region.allocation
        sectors = by_sector(cfg, region.name, as_of)
        for sector, used in sectors.items():
            room = sector_room(region, sector)
            if used > room:
                found.append(f"{region.name}: sector {sector} holds {used} GPUs, only {room} are not reserved for "
                             "other sectors")
            cap = rules.per_sector_gpu_cap.get(sector)
            if cap is not None and used > cap:
                found.append(f"{region.name}: sector {sector} holds {used} GPUs, its cap is {cap}")
        if rules.per_tenant_gpu_cap is not None:
            for tenant, used in sorted(by_tenant(cfg, region.name, as_of).items()):
                if used > rules.per_tenant_gpu_cap:
                    found.append(f"{region.name}: tenant {tenant} holds {used} GPUs, the per-tenant cap is "
                                 f"{rules.per_tenant_gpu_cap}")
    budgets = [r.allocation.national_gpu_budget for r in cfg.regions.values()
               if r.allocation.national_gpu_budget is not None]
    if budgets:
        held = sum(a.gpus for t in cfg.tenants.values() for a in t.allocations if t.holds_quota(a, as_of))
        if held > min(budgets):
            found.append(f"{held} GPUs guaranteed across all regions, the national budget is {min(budgets)}")
    for tenant in sorted(cfg.tenants.values(), key=lambda t: t.name):
        if tenant.grant_gpus is not None:
            held = sum(a.gpus for a in tenant.allocations if tenant.holds_quota(a, as_of))
            if held > tenant.grant_gpus:
                found.append(f"tenant {tenant.name} holds {held} GPUs across regions, its grant is {tenant.grant_gpus}")
    return found
