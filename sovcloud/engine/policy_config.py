"""The policy pack's config for one region, derived from the region config (and, for the national rule, from the
other regions): what `sovcloud check` passes to each policy, and what `sovcloud policy-config` writes for
`pulumi preview --policy-pack ../policies --policy-pack-config FILE`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sovcloud.config.model import Config
from sovcloud.engine.capacity import national_rules
from sovcloud.keys import GUARDRAILS


def policy_config(cfg: Config, region: str, today: dt.date | None = None,
                  chart_folders: list[Path] | None = None) -> dict[str, dict[str, Any]]:
    """Per policy name, the config properties that differ from the pack's defaults for ``region``; with
    ``chart_folders`` (absolute paths), the rules that render the releases get them."""
    r = cfg.regions[region]
    rules = r.allocation
    day = today or dt.date.today()
    national = national_rules(cfg, region, day)
    from policies.pack import gpu_models_config

    models = gpu_models_config(r.gpu_models)  # the built-in catalog with the region's overrides and additions
    folders = [str(Path(f).resolve()) for f in chart_folders or []]
    pre = r.prerequisites
    return {
        "chart-renders": {"chartFolders": folders},
        "pinned-versions": {"chartFolders": folders},
        "api-server-accepts": {"chartFolders": folders, "kubernetesVersion": r.kubernetes_version,
                               "prerequisites": {"prometheusOperator": pre.prometheus_operator,
                                                 "certManager": pre.cert_manager, "configMaps": list(pre.config_maps),
                                                 "secrets": list(pre.secrets)}},
        "residency-labels": {"region": r.name},
        "tenant-guardrails": {"actions": {name: list(r.guardrails.validation_actions(name)) for name in GUARDRAILS
                                          if r.guardrails.validation_actions(name) != ("Deny",)}},
        "driver-supports-models": {"gpuModels": models},
        "mig-quota-in-layout": {"gpuModels": models},
        "approved-registries": {"allowedRegistries": list(r.registries.allowed), "chartFolders": folders},
        "classification-within-certification": {"certification": r.certification},
        "domestic-organisations": {"homeCountry": r.location.country,
                                   "approvedForeignOrganisations": list(rules.approved_foreign_organisations)},
        "shares-and-caps": {"reservedShares": dict(rules.reserved_shares), "perTenantGpuCap": rules.per_tenant_gpu_cap,
                            "perSectorGpuCap": dict(rules.per_sector_gpu_cap), "gpuModels": models},
        "allocation-periods": {"today": day.isoformat()},
        "national-budget": {
            "nationalGpuBudget": national.budget, "otherRegionsGuaranteed": national.other_regions_guaranteed,
            "tenantGrants": dict(national.grants),
            "otherRegionsTenantGuaranteed": dict(national.other_regions_by_tenant), "gpuModels": models},
    }
