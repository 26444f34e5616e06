"""The policy pack's config for one region, derived from the region config (and, for the national rule, from the
other regions): what `sovcloud check` passes to each policy, and what `sovcloud policy-config` writes for
`pulumi preview --policy-pack ../policies --policy-pack-config FILE`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sovcloud.config.model import Config
from sovcloud.engine.capacity import national_rules
from sovcloud.keys import GUARDRAILS


class RegionPolicy:
    """The pack's config for each of a region's stacks, from what they share, computed once: the config of the
    region judged whole, its tenants' figures and their sums, and (``learn``) the platform resources.

    In a stack's config the rules that judge the region as a whole get what that stack's resources do not show:
    the other tenants' sums and, in a tenant stack, the platform stack's resources they read."""

    def __init__(self, cfg: Config, region: str, day: dt.date, chart_folders: list[Path] | None = None):
        from sovcloud.engine import capacity

        self.cfg, self.region, self.day = cfg, region, day
        self.base = policy_config(cfg, region, day, chart_folders)
        self.figures = capacity.figures(cfg, region, day)
        self.sums = _region_sums(self.figures)
        self.platform: list[dict[str, Any]] | None = None

    def learn(self, platform_records: list[Any]) -> None:
        """The platform stack's synthesis: the resources its tenant stacks' region-wide rules read."""
        self.platform = platform_resources(platform_records)

    def config(self, stack: str) -> dict[str, dict[str, Any]]:
        from policies.pack import REGION_RULES
        from sovcloud import stacks

        platform = (self.platform or []) if stacks.parse(stack)[1] is not None else []
        view = stack_view(self.cfg, self.region, self.day, stack, platform, self.figures, self.sums)
        out = dict(self.base)  # the rules' own dicts are shared by the stacks, read only
        for name in REGION_RULES:
            out[name] = {**out.get(name, {}), **view}
        return out


def stack_configs(cfg: Config, region: str, day: dt.date, names: list[str], platform_records: list[Any],
                  chart_folders: list[Path] | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """Per stack of ``names`` (the region's), the pack's config: ``platform_records`` (the platform stack's
    synthesis) give the resources a tenant stack's region-wide rules read."""
    region_policy = RegionPolicy(cfg, region, day, chart_folders)
    region_policy.learn(platform_records)
    return {n: region_policy.config(n) for n in names}


# what a tenant stack's region-wide rules read of the platform (policies/resources.py): node pools, flavors, the
# admission guardrails; the GPU operator's release (only the names of its device-plugin and MIG ConfigMaps) and
# those ConfigMaps
_PLATFORM_KINDS = {"MachineDeployment", "Node", "ResourceFlavor", "ValidatingAdmissionPolicy",
                   "ValidatingAdmissionPolicyBinding"}
_OPERANDS = ("migManager", "devicePlugin")


def platform_resources(records: list[Any]) -> list[dict[str, Any]]:
    """The platform stack's resources a tenant stack's region-wide rules read, as ``platformResources`` carries
    them (type, urn, name, props)."""
    out = []
    names = set()
    for rec in records:
        if rec.type == "kubernetes:helm.sh/v3:Release" and str(rec.inputs.get("chart", "")).endswith("gpu-operator"):
            values = rec.inputs.get("values") or {}
            kept = {o: {"config": {"name": ((values.get(o) or {}).get("config") or {}).get("name", "")}}
                    for o in _OPERANDS if ((values.get(o) or {}).get("config") or {}).get("name")}
            names |= {v["config"]["name"] for v in kept.values()}
            out.append({"type": rec.type, "urn": rec.urn, "name": rec.name,
                        "props": {"chart": rec.inputs.get("chart"), "name": rec.inputs.get("name"),
                                  "namespace": rec.inputs.get("namespace"), "values": kept}})
    for rec in records:
        if not rec.custom or not rec.type.startswith("kubernetes:"):
            continue
        kind = rec.inputs.get("kind")
        if kind in _PLATFORM_KINDS or (kind == "ConfigMap" and (rec.inputs.get("metadata") or {}).get("name") in names):
            out.append({"type": rec.type, "urn": rec.urn, "name": rec.name, "props": rec.inputs})
    return out


def stack_view(cfg: Config, region: str, day: dt.date, stack: str, platform: list[dict[str, Any]],
               figures: Any, sums: _Sums | None = None) -> dict[str, Any]:
    """``platformResources`` (tenant stacks only) and ``otherTenants``: the sums of the region's tenants outside
    ``stack``, from the config as their stacks' resources would show them. ``figures``: the region's
    ``capacity.figures``; ``sums``: their ``_region_sums`` where the caller has them."""
    from sovcloud import stacks

    _, tenant = stacks.parse(stack)
    fig = figures
    sums = sums if sums is not None else _region_sums(fig)
    own_pools = sums.pools_of.get(tenant, {})
    by_pool = {pool: total - own_pools.get(pool, 0) for pool, total in sums.by_pool.items()}  # whole GPUs: exact
    own_sector = fig.sectors.get(tenant, "") if tenant in sums.held else None
    by_sector = {sector: _running_sum(held for t, held in members if t != tenant) if sector == own_sector
                 else sums.by_sector[sector] for sector, members in sums.sector_members.items()}
    mig = {f"{pool}/{profile}": n for (pool, profile), n in fig.mig_guaranteed.items()}
    if tenant is not None and tenant in cfg.tenants:
        t = cfg.tenants[tenant]
        for a in t.allocations:
            if a.region == region and t.holds_quota(a, day):
                for profile, n in a.mig.items():
                    mig[f"{a.pool}/{profile}"] -= n
    others = {"byPool": {k: v for k, v in sorted(by_pool.items()) if v},
              "bySector": {k: v for k, v in sorted(by_sector.items()) if v},
              "mig": {k: v for k, v in sorted(mig.items()) if v}}
    return {"otherTenants": others, **({"platformResources": platform} if tenant is not None else {})}


@dataclass(frozen=True)
class _Sums:
    """A region's tenant sums, each tenant stack's ``otherTenants`` being these less its own share."""

    by_pool: dict[str, int]
    pools_of: dict[str | None, dict[str, int]]
    held: dict[str, float]
    sector_members: dict[str, list[tuple[str, float]]]
    by_sector: dict[str, float]


def _running_sum(values: Any) -> float:
    total: float = 0
    for v in values:
        total = round(total + v, 6)
    return total


def _region_sums(fig: Any) -> _Sums:
    """Sums over every tenant, once per region (each stack's ``otherTenants`` was a pass over all tenants; a
    sector's sum is summed again without the stack's tenant, in the same order, so the figure is the very same)."""
    pools_of: dict[str | None, dict[str, int]] = {}
    for (pool, t), gpus in fig.guaranteed.items():
        pools_of.setdefault(t, {})[pool] = pools_of.get(t, {}).get(pool, 0) + gpus
    held = fig.by_tenant()
    members: dict[str, list[tuple[str, float]]] = {}
    for t, h in held.items():
        members.setdefault(fig.sectors.get(t, ""), []).append((t, h))
    return _Sums(fig.by_pool(), pools_of, held, members,
                 {sector: _running_sum(h for _, h in ms) for sector, ms in members.items()})


def policy_config(cfg: Config, region: str, today: dt.date | None = None,
                  chart_folders: list[Path] | None = None) -> dict[str, dict[str, Any]]:
    """Per policy name, the config properties that differ from the pack's defaults for ``region`` judged whole (a
    stack's: ``RegionPolicy``); with ``chart_folders`` (absolute paths), the rules that render the releases get
    them."""
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
