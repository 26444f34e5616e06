"""GPU capacity and allocation from the config model: what is guaranteed, borrowable and free per pool, and which
allocation rules a config breaks. Used where a person needs an answer before anything is synthesised (`tenant add`,
`report`, `diff`). The rules themselves are ``sovcloud.allocation``'s, the same functions the policy pack runs on
the synthesised resources; this module only takes their figures from the config."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sovcloud import allocation, eligibility
from sovcloud.config.model import SECTORS, Allocation, Config, Region, Tenant

# The figures, defined once (README "Figures"):
# - physical GPUs: every GPU of every node a pool declares;
# - backed GPUs: those that can back a guarantee (an autoscaled pool at its minimum);
# - guaranteed GPUs on a day: whole GPUs of the allocations that hold quota that day (active tenant, inside the
#   period), plus their MIG instances as the GPU share their compute slices take;
# - borrowable GPUs: the borrowing limits of those allocations;
# - free GPUs: backed minus guaranteed.


def guaranteed(cfg: Config, region: str, as_of: dt.date) -> int | float:
    """Guaranteed GPUs in the region on ``as_of`` (whole GPUs plus MIG shares)."""
    return _figure(sum(figures(cfg, region, as_of).by_tenant().values()))


def backed_gpus(region: Region) -> int:
    """GPUs of the region that can back guarantees (autoscaled pools at their minimum)."""
    return sum(p.backed_gpus for p in region.pools)


def sector_room(region: Region, sector: str) -> int:
    """GPUs a sector may hold in the region: all but what is reserved for the other sectors."""
    return allocation.sector_room(backed_gpus(region), region.allocation.reserved_shares, sector)


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
    mig_share: float = 0.0  # the MIG instances guaranteed, as the GPU share their compute slices take

    @property
    def held(self) -> int | float:
        """GPUs guaranteed: whole ones plus the MIG instances' GPU shares."""
        return _figure(self.guaranteed + self.mig_share)

    @property
    def free(self) -> int | float:
        return _figure(self.capacity - self.guaranteed - self.mig_share)


def pool_usage(cfg: Config, as_of: dt.date, regions: set[str] | None = None) -> list[PoolUse]:
    out = []
    for region in sorted(cfg.regions.values(), key=lambda r: r.name):
        if regions is not None and region.name not in regions:
            continue
        held = [a for t, a in cfg.allocations_in(region.name) if t.holds_quota(a, as_of)]
        for pool in region.pools:
            allocs = [a for a in held if a.pool == pool.name]
            mig = {p: sum(a.mig.get(p, 0) for a in allocs) for p in pool.sharing.mig_layout}
            share = sum(n * allocation.mig_share(p, pool.gpu.compute_slices) for p, n in mig.items())
            out.append(PoolUse(region.name, pool.name, pool.gpu.name, pool.backed_gpus, sum(a.gpus for a in allocs),
                               sum(a.borrowing_limit for a in allocs), mig,
                               {p: n * pool.backed_gpus for p, n in pool.sharing.mig_layout.items()}, share))
    return out


def _figure(value: float) -> int | float:
    """Whole GPUs as an int, MIG shares to one decimal."""
    return round(value) if abs(value - round(value)) < 1e-9 else round(value, 1)


def by_sector(cfg: Config, region: str, as_of: dt.date) -> dict[str, int | float]:
    """GPUs guaranteed per sector in the region, MIG instances as the GPU shares they occupy."""
    held = figures(cfg, region, as_of).by_sector()
    return {s: _figure(held.get(s, 0)) for s in SECTORS}


def by_tenant(cfg: Config, region: str, as_of: dt.date) -> dict[str, int | float]:
    """GPUs guaranteed per tenant in the region, MIG instances as the GPU shares they occupy."""
    return {t: _figure(v) for t, v in figures(cfg, region, as_of).by_tenant().items()}


def figures(cfg: Config, region: str, as_of: dt.date) -> allocation.Figures:
    """The region's figures for the allocation rules, from the config: what its stack's resources would show."""
    r = cfg.regions[region]
    guaranteed: dict[tuple[str, str], int] = {}
    mig: dict[tuple[str, str], int] = {}
    shares: dict[tuple[str, str], float] = {}
    sectors: dict[str, str] = {}
    for t, a in cfg.allocations_in(region):
        if not t.holds_quota(a, as_of):
            continue
        sectors[t.name] = t.sector
        guaranteed[a.pool, t.name] = guaranteed.get((a.pool, t.name), 0) + a.gpus
        slices = r.pool(a.pool).gpu.compute_slices  # type: ignore[union-attr]  (the loader checked the pool)
        for profile, count in a.mig.items():
            mig[a.pool, profile] = mig.get((a.pool, profile), 0) + count
            shares[a.pool, t.name] = shares.get((a.pool, t.name), 0) + count * allocation.mig_share(profile, slices)
    return allocation.Figures(capacity={p.name: p.backed_gpus for p in r.pools}, guaranteed=guaranteed,
                              sectors=sectors, mig_guaranteed=mig,
                              mig_per_gpu={p.name: dict(p.sharing.mig_layout) for p in r.pools},
                              mig_equivalent=shares)


def share_rules(region: Region) -> allocation.ShareRules:
    rules = region.allocation
    return allocation.ShareRules(dict(rules.reserved_shares), rules.per_tenant_gpu_cap,
                                 dict(rules.per_sector_gpu_cap))


def national_rules(cfg: Config, region: str, as_of: dt.date) -> allocation.NationalRules:
    """The national budget and grants, with what the other regions guarantee on ``as_of`` (as their stacks would)."""
    budget = min((r.allocation.national_gpu_budget for r in cfg.regions.values()
                  if r.allocation.national_gpu_budget is not None), default=0)
    others: dict[str, float] = {}
    for name in sorted(cfg.regions):
        if name != region:
            for tenant, held in figures(cfg, name, as_of).by_tenant().items():
                others[tenant] = others.get(tenant, 0) + held
    others = {t: round(v, 6) for t, v in others.items() if v}
    return allocation.NationalRules(
        budget=budget, other_regions_guaranteed=sum(others.values()),
        grants={t.name: t.grant_gpus for t in cfg.tenants.values() if t.grant_gpus is not None},
        other_regions_by_tenant=others)


def eligibility_problems(cfg: Config, region: Region) -> list[str]:
    """The pack's classification and organisation rules over the tenants with allocations in ``region``."""
    out = []
    seen = set()
    for t, _ in cfg.allocations_in(region.name):
        if t.name in seen:
            continue
        seen.add(t.name)
        rules = region.allocation
        out += [p for p in (
            eligibility.classification_problem(t.name, t.classification, region.certification),
            eligibility.organisation_problem(t.name, t.organisation.country, t.organisation.registration_id,
                                             region.location.country, rules.approved_foreign_organisations)) if p]
    return out


def problems(cfg: Config, as_of: dt.date, regions: set[str] | None = None) -> list[str]:
    """Classification, organisations, capacity, MIG layouts, reserved shares, caps, grants and the national budget
    that the config breaks on ``as_of``, one sentence each: the policy pack's rules (``sovcloud.allocation``,
    ``sovcloud.eligibility``) over the config's figures.
    ``regions`` limits the per-region rules to those regions; the national ones always span every region."""
    found: list[str] = []
    national: list[str] = []
    for region in sorted(cfg.regions.values(), key=lambda r: r.name):
        fig = figures(cfg, region.name, as_of)
        national += [f.message for f in allocation.national_budget(fig, national_rules(cfg, region.name, as_of))]
        if regions is not None and region.name not in regions:
            continue
        found += [f"{region.name}: {p}" for p in eligibility_problems(cfg, region)]
        for finding in (*allocation.within_capacity(fig), *allocation.mig_within_layout(fig),
                        *allocation.shares_and_caps(fig, share_rules(region))):
            found.append(f"{region.name}: {finding.message}")
    return found + list(dict.fromkeys(national))


def held_queues(cfg: Config, day: dt.date) -> list[dict[str, Any]]:
    """Tenant queues that do not admit on ``day``: per region and tenant, the stop policy and the day draining
    starts (evicting admitted work), if it does."""
    out = []
    for region in sorted(cfg.regions.values(), key=lambda r: r.name):
        by_tenant: dict[str, tuple[Tenant, list[Allocation]]] = {}
        for t, a in cfg.allocations_in(region.name):
            by_tenant.setdefault(t.name, (t, []))[1].append(a)
        for name, (t, allocs) in sorted(by_tenant.items()):
            policy = t.stop_policy(tuple(allocs), day, region.allocation.drain_after_days)
            if policy is None:
                continue
            drains = t.drains_from(tuple(allocs), region.allocation.drain_after_days)
            out.append({"region": region.name, "tenant": name, "stopPolicy": policy,
                        "drainsFrom": drains.isoformat() if drains else None})
    return out
