"""MIG: quota'd MIG instances exist on the pool's GPU model and in the layout its nodes are partitioned with."""

from __future__ import annotations

import functools

import yaml

from policies.resources import (
    GPU,
    MIG_LABEL,
    MIG_RESOURCE,
    TENANT,
    base_product,
    labels,
    name,
    objects,
    operator_config_data,
    other_tenants,
    pool_capacity,
    pool_label,
    queue_flavors,
    report_findings,
)
from sovcloud import allocation


def _layouts(resources) -> dict[str, dict]:
    """MIG layouts by config name, from the mig-manager ConfigMap the gpu-operator release points at."""
    return _parsed_layouts(operator_config_data(resources, "migManager").get("config.yaml", "") or "{}")


@functools.lru_cache(maxsize=16)
def _parsed_layouts(text: str) -> dict[str, dict]:
    """``_layouts`` of one ConfigMap text (read only: cached, as every stack of a region reads the same one)."""
    configs = (yaml.safe_load(text) or {}).get("mig-configs") or {}
    out = {}
    for config_name, devices in configs.items():
        merged: dict[str, int] = {}
        for d in devices or []:
            merged.update(d.get("mig-devices") or {})
        out[config_name] = merged
    return out


def mig_quota_in_layout(args, report_violation) -> None:
    """A MIG resource in a tenant's queue is a profile of the pool's GPU model and part of the pool's MIG layout;
    the instances guaranteed per pool fit what the layout makes of the pool's GPUs; a partitioned pool guarantees
    no whole GPUs (its GPUs do not advertise nvidia.com/gpu under the mixed strategy)."""
    resources = list(args.resources)
    models = args.get_config().get("gpuModels") or {}
    layouts = _layouts(resources)
    mig_config = pool_label(resources, MIG_LABEL)
    gpus = pool_capacity(resources)
    products = {}
    for rf in objects(resources, "ResourceFlavor"):
        product = ((rf.props.get("spec") or {}).get("nodeLabels") or {}).get(f"{GPU}.product", "")
        products[name(rf)] = base_product(product)
    promised: dict[tuple[str, str], int] = {}
    for cq in objects(resources, "ClusterQueue"):
        tenant = labels(cq).get(TENANT) or name(cq)
        for pool, res in queue_flavors(cq):
            layout = layouts.get(mig_config.get(pool, ""), {})
            whole = float((res.get(GPU) or {}).get("nominalQuota", 0) or 0)
            if layout and whole:
                report_violation(f"tenant {tenant}: {whole:g} whole GPUs guaranteed in pool {pool}, whose GPUs are "
                                 "all MIG-partitioned", cq.urn)
            for resource, quota in res.items():
                m = MIG_RESOURCE.match(resource or "")
                count = float(quota.get("nominalQuota", 0) or 0) if m else 0
                if not count:
                    continue
                profile = m.group(1)
                model = models.get(products.get(pool, ""), {})
                if profile not in (model.get("migProfiles") or []):
                    report_violation(f"tenant {tenant}: {profile} is not a MIG profile of {products.get(pool) or '?'} "
                                     f"(pool {pool})", cq.urn)
                elif profile not in layout:
                    report_violation(f"tenant {tenant}: pool {pool} is not partitioned with {profile} (its MIG "
                                     f"config: {mig_config.get(pool, 'none')})", cq.urn)
                else:
                    promised[pool, profile] = promised.get((pool, profile), 0) + int(count)
    mig_per_gpu = {pool: layouts.get(config_name, {}) for pool, config_name in mig_config.items()}
    fig = allocation.Figures(capacity=gpus, guaranteed={}, mig_guaranteed=promised, mig_per_gpu=mig_per_gpu,
                             **other_tenants(args.get_config().get("otherTenants")))
    report_findings(allocation.mig_within_layout(fig), resources, report_violation)
