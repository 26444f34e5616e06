"""The policy pack's config for one region, derived from the region config (and, for the national rule, from the
other regions): what `sovcloud check` passes to each policy, and what `sovcloud policy-config` writes for
`pulumi preview --policy-pack ../policies --policy-pack-config FILE`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sovcloud.model import Config


def policy_config(cfg: Config, region: str, today: dt.date | None = None) -> dict[str, dict[str, Any]]:
    """Per policy name, the config properties that differ from the pack's defaults for ``region``."""
    r = cfg.regions[region]
    rules = r.allocation
    budget = next((x.allocation.national_gpu_budget for x in cfg.regions.values()
                   if x.allocation.national_gpu_budget is not None), None)
    day = today or dt.date.today()
    others: dict[str, int] = {}  # what the other regions guarantee on the same day, as their stacks would
    for tenant in cfg.tenants.values():
        total = sum(a.gpus for a in tenant.allocations if a.region != region and tenant.holds_quota(a, day))
        if total:
            others[tenant.name] = total
    from policies.pack import gpu_models_config

    models = gpu_models_config(r.gpu_models)  # the built-in catalog with the region's overrides and additions
    return {
        "residency-labels": {"region": r.name},
        "driver-supports-models": {"gpuModels": models},
        "mig-quota-in-layout": {"gpuModels": models},
        "approved-registries": {"allowedRegistries": list(r.registries.allowed)},
        "classification-within-certification": {"certification": r.certification},
        "domestic-organisations": {"homeCountry": r.location.country,
                                   "approvedForeignOrganisations": list(rules.approved_foreign_organisations)},
        "shares-and-caps": {"reservedShares": dict(rules.reserved_shares), "perTenantGpuCap": rules.per_tenant_gpu_cap,
                            "perSectorGpuCap": dict(rules.per_sector_gpu_cap)},
        "allocation-periods": {"today": day.isoformat()},
        "national-budget": {
            "nationalGpuBudget": budget or 0, "otherRegionsGuaranteed": sum(others.values()),
            "tenantGrants": {t.name: t.grant_gpus for t in cfg.tenants.values() if t.grant_gpus is not None},
            "otherRegionsTenantGuaranteed": others},
    }
