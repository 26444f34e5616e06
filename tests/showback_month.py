"""A generated month of the metrics showback reads, for rdc-ulsan's shipped tenants, in OpenMetrics text for
``promtool tsdb create-blocks-from openmetrics``; and the GPU-hours it holds, counted here from the jobs themselves.

The series are shaped as the cluster writes them: Kueue's ClusterQueue gauges (the leader's, and a follower's stale
copy that must not count), the DCGM exporter's per-GPU series with the pod they serve (MIG instances with their
profile; idle GPUs carry the exporter's own namespace, as honorLabels leaves them) and kube-state-metrics' node
labels. Jobs start and end on whole hours and samples are every 15 minutes, so a query at a step of 15 minutes or
an hour sees every change: the expected figures are exact.

The month: orbit-lm runs 32 GB200 GPUs for ten days, then 150 for a day (6 borrowed from the cohort);
baram-shipyard runs 16 GB200 GPUs and 8 MIG instances; hyeon-motors-ai sits idle on its 216; pixelforge's
allocation ends mid-month (the test tree sets its end to the 15th) and its 4 instances stop on the 14th.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sovcloud.allocation import mig_share
from sovcloud.config.model import Config

REGION = "rdc-ulsan"
FIRST, LAST = dt.date(2026, 11, 1), dt.date(2026, 11, 30)
START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
SAMPLE = 900  # seconds between samples
PIXELFORGE_END = dt.date(2026, 11, 15)


def day(d: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, d, hour, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Job:
    name: str
    tenant: str
    pool: str
    resource: str  # nvidia.com/gpu or nvidia.com/mig-<profile>
    units: int
    start: dt.datetime
    end: dt.datetime
    utilisation: float  # 0..1


JOBS = (
    Job("pretrain", "orbit-lm", "gb200-nvl72", "nvidia.com/gpu", 32, day(2), day(12), 0.80),
    Job("burst", "orbit-lm", "gb200-nvl72", "nvidia.com/gpu", 150, day(20), day(21), 0.95),
    Job("hull-cfd", "baram-shipyard", "gb200-nvl72", "nvidia.com/gpu", 16, day(5), day(25), 0.50),
    Job("notebooks", "baram-shipyard", "rtxpro-mig", "nvidia.com/mig-2g.48gb", 8, day(1), day(30, 12), 0.60),
    Job("render", "pixelforge", "rtxpro-mig", "nvidia.com/mig-2g.48gb", 4, day(1), day(14), 0.30),
)
NODE_PREFIX = {"gb200-nvl72": "ul-gb200-", "rtxpro-mig": "ul-rtx-"}


def _times(start: dt.datetime, end: dt.datetime) -> range:
    return range(int(start.timestamp()), int(end.timestamp()), SAMPLE)


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def generate(cfg: Config) -> tuple[list[str], dict[tuple[str, str], dict[str, float]]]:
    """(OpenMetrics text per day, expected GPU-hours per (tenant, pool))."""
    region = cfg.regions[REGION]
    pools = {p.name: p for p in region.pools}

    def share(pool: str, resource: str) -> float:
        p = pools[pool]
        return 1.0 if resource == "nvidia.com/gpu" else mig_share(resource.removeprefix("nvidia.com/mig-"),
                                                                  p.gpu.compute_slices)

    # nominal quota per (tenant, pool, resource) per day, as the ClusterQueue holds it
    nominal: dict[tuple[str, str, str], dict[dt.date, int]] = defaultdict(dict)
    guaranteed: dict[tuple[str, str], float] = defaultdict(float)
    for t in cfg.tenants.values():
        for a in (a for a in t.allocations if a.region == REGION):
            resources = {"nvidia.com/gpu": a.gpus, **{f"nvidia.com/mig-{p}": n for p, n in a.mig.items()}}
            for offset in range((LAST - FIRST).days + 1):
                d = FIRST + dt.timedelta(days=offset)
                held = t.holds_quota(a, d)
                for resource, units in resources.items():
                    nominal[(t.name, a.pool, resource)][d] = units if held else 0
                    guaranteed[(t.name, a.pool)] += units * share(a.pool, resource) * 24 if held else 0.0

    # per-hour usage per (tenant, pool, resource), and the expected figures counted from the jobs
    expected: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for key, hours in guaranteed.items():
        expected[key]["guaranteedGpuHours"] = hours
    usage: dict[tuple[str, str, str], dict[dt.datetime, int]] = defaultdict(lambda: defaultdict(int))
    for job in JOBS:
        hour = job.start
        while hour < job.end:
            usage[(job.tenant, job.pool, job.resource)][hour] += job.units
            hour += dt.timedelta(hours=1)
        hours = (job.end - job.start).total_seconds() / 3600
        expected[(job.tenant, job.pool)]["allocatedGpuHours"] += job.units * share(job.pool, job.resource) * hours
        expected[(job.tenant, job.pool)]["busyGpuHours"] += (job.units * share(job.pool, job.resource) * hours
                                                             * job.utilisation)
    hour = START
    while hour < END:
        own: dict[tuple[str, str], float] = defaultdict(float)
        for (tenant, pool, resource), by_hour in nominal.items():
            used = usage.get((tenant, pool, resource), {}).get(hour, 0)
            quota = by_hour[hour.date()]
            expected[(tenant, pool)]["borrowedGpuHours"] += max(used - quota, 0) * share(pool, resource)
            own[(tenant, pool)] += min(used, quota) * share(pool, resource)
        for key in guaranteed:
            tenant, pool = key
            held = sum(by_hour[hour.date()] * share(p, r) for (t, p, r), by_hour in nominal.items()
                       if (t, p) == key)
            expected[key]["idleGuaranteedGpuHours"] += max(held - own[key], 0.0)
        hour += dt.timedelta(hours=1)

    families: dict[str, list[str]] = defaultdict(list)
    all_times = _times(START, END)
    for (tenant, pool, resource), by_day in sorted(nominal.items()):
        for role, factor in (("leader", 1), ("follower", 2)):  # a follower's stale copy: never counted
            labels = _labels(cohort=REGION, cluster_queue=tenant, flavor=pool, resource=resource, replica_role=role,
                             job="kueue-controller-manager-metrics-service", namespace="kueue-system")
            by_hour = usage.get((tenant, pool, resource), {})
            families["kueue_cluster_queue_resource_usage"] += [
                f"kueue_cluster_queue_resource_usage{labels} "
                f"{by_hour.get(_hour_of(t), 0) * factor} {t}" for t in all_times]
            families["kueue_cluster_queue_nominal_quota"] += [
                f"kueue_cluster_queue_nominal_quota{labels} {by_day[_day_of(t)] * factor} {t}" for t in all_times]

    nodes: dict[str, str] = {}
    for job in JOBS:
        pool = pools[job.pool]
        per_node = pool.gpus_per_node * (2 if job.resource != "nvidia.com/gpu" else 1)
        for unit in range(job.units):
            node = f"{NODE_PREFIX[job.pool]}{unit // per_node + 1:03d}"
            nodes[node] = job.pool
            common = dict(gpu=str(unit % pool.gpus_per_node), UUID=f"GPU-{job.name}-{unit:04d}",
                          device=f"nvidia{unit % pool.gpus_per_node}", modelName=pool.gpu.name, Hostname=node,
                          node=node, namespace=job.tenant, pod=f"{job.name}-{unit // per_node}", container="main",
                          job="nvidia-dcgm-exporter")
            if job.resource == "nvidia.com/gpu":
                families["DCGM_FI_DEV_GPU_UTIL"] += [
                    f"DCGM_FI_DEV_GPU_UTIL{_labels(**common)} {job.utilisation * 100:g} {t}"
                    for t in _times(job.start, job.end)]
            else:
                profile = job.resource.removeprefix("nvidia.com/mig-")
                mig = _labels(**common, GPU_I_PROFILE=profile, GPU_I_ID=str(unit % 2 + 1))
                families["DCGM_FI_PROF_GR_ENGINE_ACTIVE"] += [
                    f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{mig} {job.utilisation:g} {t}" for t in _times(job.start, job.end)]
    # an idle GPU: no pod, so the target's namespace stays on it (honorLabels); never a tenant's
    idle = _labels(gpu="3", UUID="GPU-idle-0003", device="nvidia3", modelName="GB200", Hostname="ul-gb200-140",
                   node="ul-gb200-140", namespace="gpu-operator", pod="nvidia-dcgm-exporter-x1", job="nvidia-dcgm")
    families["DCGM_FI_DEV_GPU_UTIL"] += [f"DCGM_FI_DEV_GPU_UTIL{idle} 0 {t}" for t in all_times]
    nodes["ul-gb200-140"] = "gb200-nvl72"
    for node, pool_name in sorted(nodes.items()):
        labels = _labels(node=node, label_sovcloud_kr_pool=pool_name, job="kube-state-metrics")
        families["kube_node_labels"] += [f"kube_node_labels{labels} 1 {t}" for t in all_times]

    # one file per day: promtool (2.42) reads its whole input once per two-hour block it writes, so a month in one
    # file is read 360 times
    days: dict[int, list[str]] = defaultdict(list)
    for name, samples in families.items():
        by_day: dict[int, list[str]] = defaultdict(list)
        for line in samples:
            by_day[int(line.rsplit(" ", 1)[1]) // 86400].append(line)
        for d, lines in by_day.items():
            days[d] += [f"# TYPE {name} gauge", *lines]
    texts = ["\n".join([*days[d], "# EOF"]) + "\n" for d in sorted(days)]
    return texts, {k: dict(v) for k, v in expected.items()}


def _hour_of(t: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(t - t % 3600, dt.UTC)


def _day_of(t: int) -> dt.date:
    return dt.datetime.fromtimestamp(t, dt.UTC).date()


def edit_tree(tenant: dict[str, Any]) -> None:
    """The test tree's pixelforge: its Ulsan allocation ends on the 15th."""
    for a in tenant["allocations"]:
        if a["region"] == REGION:
            a["period"]["end"] = PIXELFORGE_END.isoformat()


def edit_region(region: dict[str, Any]) -> None:
    """The test tree's rdc-ulsan: it runs the monitoring showback reads."""
    region.setdefault("prerequisites", {}).update(prometheusOperator=True, kubeStateMetrics=True)
