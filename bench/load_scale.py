"""Benchmark: how long ``sovcloud.config.load`` takes to load and validate a config tree with many tenants.

Measures, in-process, the whole load: reading every stack and tenant file, safe YAML parsing, JSON Schema validation
and the cross-file checks (regions, pools, MIG profiles, periods, unique names). It times the shipped config tree
(the repository root) and a generated tree: a copy of the shipped ``stacks/`` with ``--tenants N`` valid tenant
files (default 2,000) spread over the shipped regions and pools. Each load is repeated ``--repeat`` times and the
best time is kept; peak RSS is the process's maximum resident set size at the end.

Target: load+validate of 2,000 tenant files under 3 s on a 2-core machine.

    python bench/load_scale.py --tenants 2000

Prints one JSON object:
{"shipped": {"files": .., "seconds": ..}, "generated": {"tenants": N, "files": .., "seconds": .., "per_file_ms": ..},
 "peak_rss_mib": ..}. Exits 1 with the first errors if a tree does not load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from sovcloud import config
from sovcloud.config.errors import ConfigInvalid
from sovcloud.config.model import Config

REPO = Path(__file__).resolve().parents[1]

SECTORS = ("research", "public", "startup", "industry")
ORG_TYPES = {"research": ("university", "research-institute"), "public": ("public-agency", "public-enterprise"),
             "startup": ("startup",), "industry": ("company",)}
LEVELS = ("low", "moderate", "high")
ROLES = ("technical", "administrative", "security", "billing")
WORDS = ("hana", "dul", "saem", "baram", "nuri", "gaon", "haneul", "byeol", "dal", "sol", "maru", "ara", "bada",
         "san", "gang", "bit", "ddang", "sae", "jin", "seum", "open", "deep", "vision", "speech", "bio", "med", "geo",
         "robo", "chip", "data", "lm", "gen", "edu", "city", "grid", "agri", "fin", "law", "sea", "sky")
MAX_FAILURES_SHOWN = 20

PoolRef = tuple[str, str, str, bool]  # region, pool, GPU model, the only pool of that model in the region


def _pools(cfg: Config) -> list[PoolRef]:
    """(region, pool, GPU model, the pool is the only one of its model in the region) of pools with sharing none.

    MIG and time-slicing pools are left out, so whole GPUs are always allowed and no MIG profile is needed.
    """
    out = []
    for region in cfg.regions.values():
        for pool in region.pools:
            if pool.sharing.mode == "none":
                unique = sum(p.gpu.name == pool.gpu.name for p in region.pools) == 1
                out.append((region.name, pool.name, pool.gpu.name, unique))
    return sorted(out)


def _tenant(i: int, rng: random.Random, pools: list[PoolRef], certs: dict[str, str]) -> dict[str, Any]:
    name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i:05d}"
    sector = SECTORS[i % len(SECTORS)]
    chosen = rng.sample(pools, k=rng.randint(1, min(3, len(pools))))
    # classification at most the lowest certification of the regions the tenant runs in (a policy, not a load check)
    ceiling = min(LEVELS.index(certs[region]) for region, *_ in chosen)
    allocations = []
    for region, pool, model, unique in chosen:
        start = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(0, 365))
        alloc: dict[str, Any] = {"region": region}
        if unique and rng.random() < 0.3:
            alloc["gpuModel"] = model
        else:
            alloc["pool"] = pool
        gpus = rng.choice((0, 1, 2, 4, 8, 16, 32, 64))
        alloc.update({
            "gpus": gpus,
            "borrowingLimit": rng.choice((0, 0, 8, 16)),
            "cpu": str(max(gpus, 1) * rng.choice((8, 16, 24))),
            "memory": f"{max(gpus, 1) * rng.choice((64, 128, 256))}Gi",
            "storage": f"{rng.randint(1, 200)}Ti",
            "priority": rng.choice(("low", "normal", "normal", "high")),
            "period": {"start": start.isoformat(),
                       "end": (start + dt.timedelta(days=rng.randrange(30, 3 * 365))).isoformat()},
        })
        if rng.random() < 0.3:
            alloc["persistentVolumeClaims"] = rng.choice((10, 50, 200))
        allocations.append(alloc)
    data: dict[str, Any] = {
        "name": name,
        "displayName": f"{name.replace('-', ' ').title()} (benchmark)",
        "organisation": {"name": f"{name.title()} Org", "type": rng.choice(ORG_TYPES[sector]),
                         "registrationId": f"{rng.randrange(1000):03d}-{rng.randrange(100):02d}-{i:05d}",
                         "country": "KR"},
        "sector": sector,
        "classification": LEVELS[rng.randint(0, ceiling)],
        "adminGroups": [f"sovcloud:{name}:admins", *([f"sovcloud:{name}:ops"] if rng.random() < 0.5 else [])],
        "contacts": [{"name": f"Contact {j} ({name})", "email": f"c{j}@{name}.example.kr", "role": role}
                     for j, role in enumerate(rng.sample(ROLES, k=rng.randint(1, 3)))],
        "fabric": {"segment": 2 + i},  # unique: its own partition key / VLAN where a pool has a fabric
        "allocations": allocations,
    }
    if rng.random() < 0.5:
        data["status"] = rng.choice(("active", "active", "offboarding"))
    if rng.random() < 0.5:
        data["network"] = {"internetEgress": rng.random() < 0.5 and data["classification"] != "high",
                           "egressCidrs": [f"10.{rng.randrange(256)}.{k}.0/24" for k in range(rng.randint(0, 3))]}
    return data


def widen_fabric_subnets(stacks: Path) -> None:
    """Give each copied region's fabric room for thousands of tenants: the shipped address plan (a block per tenant
    covering every fabric node) holds a few hundred tenants per region, not the benchmarks' thousands."""
    for path in stacks.glob("Pulumi.*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        region = data["config"]["sovcloud:region"]
        if "fabric" in region:
            region["fabric"]["ipam"] = {"subnet": "10.0.0.0/8", "tenantPrefix": 20, "perNodeBlockSize": 2}
            path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def generate(root: Path, n: int, seed: int, shipped: Config) -> None:
    """Copy the shipped stacks/ to ``root`` and write ``n`` valid tenant files in ``root/tenants``."""
    shutil.copytree(REPO / "stacks", root / "stacks")
    widen_fabric_subnets(root / "stacks")
    tenants = root / "tenants"
    tenants.mkdir()
    rng = random.Random(seed)
    pools = _pools(shipped)
    certs = {name: region.certification for name, region in shipped.regions.items()}
    for i in range(n):
        data = _tenant(i, rng, pools, certs)
        (tenants / f"{data['name']}.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def best_of(root: Path, repeat: int, label: str) -> tuple[Config, float]:
    best = float("inf")
    cfg = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        try:
            cfg = config.load(root)
        except ConfigInvalid as exc:
            print(f"{label} tree at {root} does not load: {len(exc.errors)} error(s); the first:", file=sys.stderr)
            for err in exc.errors[:MAX_FAILURES_SHOWN]:
                print(f"  {err}", file=sys.stderr)
            sys.exit(1)
        best = min(best, time.perf_counter() - t0)
    assert cfg is not None
    return cfg, best


def peak_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (1 << 20) if sys.platform == "darwin" else rss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=2000, help="tenant files to generate (default 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="loads per tree; the best is kept (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated tenants (default 1)")
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.repeat < 1:
        parser.error("--tenants and --repeat must be 1 or more")

    shipped, shipped_s = best_of(REPO, args.repeat, "shipped")
    with tempfile.TemporaryDirectory(prefix="sovcloud-bench-") as tmp:
        root = Path(tmp)
        generate(root, args.tenants, args.seed, shipped)
        generated, generated_s = best_of(root, args.repeat, "generated")
    if len(generated.tenants) != args.tenants:
        print(f"generated {args.tenants} tenants but {len(generated.tenants)} loaded", file=sys.stderr)
        return 1
    print(json.dumps({
        "shipped": {"files": len(shipped.files), "seconds": round(shipped_s, 4)},
        "generated": {"tenants": args.tenants, "files": len(generated.files), "seconds": round(generated_s, 4),
                      "per_file_ms": round(generated_s * 1000 / len(generated.files), 3)},
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
