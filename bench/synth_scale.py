"""Benchmark: how long ``sovcloud synth`` takes for a region with many tenants, against the Pulumi SDK's own floor.

Generates ``--tenants N`` valid tenant files (with ``bench/load_scale.py``'s generator), all with allocations in
``--region`` (default ncc-haenam) on its whole-GPU pools only, in a temporary tree holding a copy of the shipped
``stacks/`` (the stack program ``stacks/__main__.py``, ``Pulumi.yaml`` and the region stack files) and ``tenants/``.
Allocations may exceed the pools' capacity: nothing checks capacity at synth time. Then it times, each in a fresh
subprocess (the SDK keeps global runtime state):

- synth: ``config.load`` + ``synth.run`` (its workers writing each stack's files: ``synth.Writer``) + ``synth.plan``
  + ``Writer.finish``, i.e. what ``sovcloud synth`` does, at N and at 2N tenants (for the scaling ratio), loading
  without the parse cache (every file parsed); the records the floors need are gathered by a second, untimed
  synthesis;
- floor: as many resources as synth registered (``len(synthesis.records)``, component and custom records alike),
  registered as plain ``pulumi_kubernetes.core.v1.ConfigMap`` objects with data of about the same size, by a stack
  program written into a second temporary tree and run through the very same harness, ``synth.run`` (same event
  loop setup, ``settings.ROOT.set(None)``, ``set_mocks(..., preview=False, monitor=RecordingMonitor)``,
  ``wait_for_rpcs``). The floor is the cost of registration alone: no config load, no plan, no files written;
- same-kinds floor: synth's own records at N (type, name, inputs) registered again, flat, through the same harness,
  each with the class synth used (the typed pulumi-kubernetes class of a built-in kind, ``helm.v3.Release``, a raw
  ``CustomResource`` for Kueue and Cluster API kinds, a bare ``ComponentResource`` per component). It is what the
  SDK charges for these very kinds and bodies, with no toolkit code: ``synth / same-kinds floor`` is the toolkit's
  own overhead (config load, components, parents and dependencies, plan, files), and ``same-kinds floor / floor`` is
  how much more the SDK charges for these typed kinds than for ConfigMaps of the same size.

In both subprocesses ``pulumi`` and ``pulumi_kubernetes.core.v1`` are imported before the clock starts, so neither
figure pays for the SDK's import; the project's own imports at synth time are part of the synth figure. Each
measurement is repeated ``--repeat`` times (each in its own subprocess) and the best time is kept. Peak RSS is the
largest ``ru_maxrss`` of a measured subprocess or of a worker it forked (the synth at N; at 2N and of the floors
apart). Phase times of the synth runs go to stderr.

A region is a platform stack and a stack per tenant: synth runs the platform, then shares the tenant stacks out to
as many forked workers as the machine has cores (what ``sovcloud synth`` does). ``one_tenant_check_seconds`` is the
wall time of ``sovcloud check REGION --tenant NAME`` (one tenant's pull request: its stack and the platform's
synthesised, the region-wide rules fed every tenant's config) in a fresh process, at N and at 2N, with the
parsed-config cache an earlier run left (the benchmark's own, in its temporary folder) and, ``_cold``, with none.

Targets on this machine (2 cores): synth_seconds / same_kinds_floor_seconds <= 1.2 at N = 1,000, time(2N) / time(N)
<= 2.1, peak RSS <= 1 GiB, one_tenant_check_seconds <= 2.

    python bench/synth_scale.py --tenants 1000 [--region ncc-haenam] [--repeat 1]

Prints one JSON object:
{"region": .., "tenants": N, "resources": R, "synth_seconds": .., "floor_seconds": .., "ratio": synth/floor,
 "resources_per_second": R/synth_seconds, "same_kinds_floor_seconds": .., "ratio_to_same_kinds_floor": ..,
 "same_kinds_floor_over_floor": .., "peak_rss_mib": .., "peak_rss_mib_2n": .., "peak_rss_mib_floors": ..,
 "one_tenant_check_seconds": .., "one_tenant_check_seconds_cold": ..,
 "scaling": {"tenants_2n": 2N, "synth_seconds_2n": .., "time_2n_over_n": .., "one_tenant_check_seconds_2n": ..,
             "one_tenant_check_seconds_cold_2n": ..}}.
Exits 1 with the first errors if the generated tree does not load, or if a measurement fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from load_scale import (  # bench/ is sys.path[0] when run as a script
    MAX_FAILURES_SHOWN,
    _pools,
    _tenant,
    widen_fabric_subnets,
)

from sovcloud import config
from sovcloud.config.errors import ConfigInvalid
from sovcloud.config.model import Config

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve()

FLOOR_PROGRAM = '''"""Floor program written by bench/synth_scale.py: {count} plain ConfigMaps and nothing else."""

import pulumi_kubernetes as k8s

COUNT = {count}
PAYLOAD = "x" * {payload}

for i in range(COUNT):
    k8s.core.v1.ConfigMap(f"floor-{{i:06d}}", metadata={{"name": f"floor-{{i:06d}}", "namespace": "floor"}},
                          data={{"payload": PAYLOAD}})
'''
KINDS_FLOOR_PROGRAM = '''"""Same-kinds floor written by bench/synth_scale.py: synth's records, registered again flat.

Each record becomes the resource class synth used for it, with the same inputs: the typed pulumi-kubernetes class of
a built-in kind, ``helm.v3.Release``, the provider, a raw ``CustomResource`` for custom kinds (as
``components.custom_object`` registers them) and a bare ``ComponentResource`` per component. No parents, no options,
no config, no component code: what is left is what the SDK charges for these kinds and bodies.
"""

import importlib
import inspect
import json
import re

import pulumi
import pulumi_kubernetes as k8s

RECORDS = json.load(open({records!r}, encoding="utf-8"))


def snake(key):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def typed_class(token):
    if token == "kubernetes:helm.sh/v3:Release":
        return k8s.helm.v3.Release
    group_version, kind = token.split(":", 1)[1].rsplit(":", 1)
    group, _, version = group_version.rpartition("/")
    try:
        return getattr(importlib.import_module(f"pulumi_kubernetes.{{group.split('.')[0]}}.{{version}}"), kind)
    except (ImportError, AttributeError):
        return None  # a custom kind


for rec in RECORDS:
    token, name, inputs = rec["type"], rec["name"], rec["inputs"]
    if not rec["custom"]:
        pulumi.ComponentResource(token, name)
    elif token.startswith("pulumi:providers:"):
        k8s.Provider(name)
    elif (cls := typed_class(token)) is not None:
        accepted = inspect.signature(cls._internal_init).parameters
        cls(name, **{{snake(k): v for k, v in inputs.items() if snake(k) in accepted}})
    else:
        pulumi.CustomResource(token, name, inputs)
'''
# bytes of json.dumps(inputs) of a floor ConfigMap besides its payload (apiVersion, kind, metadata, the data key)
FLOOR_OVERHEAD = len(json.dumps({"apiVersion": "v1", "data": {"payload": ""}, "kind": "ConfigMap",
                                 "metadata": {"name": "floor-000000", "namespace": "floor"}}))


def peak_rss_mib() -> float:
    """The largest resident set of this process and of the workers it forked (each process's own peak)."""
    rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
              resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB on Linux, bytes on macOS
    return rss / (1 << 20) if sys.platform == "darwin" else rss / 1024


def _report_invalid(exc: ConfigInvalid, root: Path) -> None:
    print(f"generated tree at {root} does not load: {len(exc.errors)} error(s); the first:", file=sys.stderr)
    for err in exc.errors[:MAX_FAILURES_SHOWN]:
        print(f"  {err}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------------- trees

def generate(root: Path, n: int, seed: int, shipped: Config, region: str) -> None:
    """Copy the shipped stacks/ to ``root`` and write ``n`` valid tenants, every allocation in ``region``."""
    shutil.copytree(REPO / config.STACKS_DIR, root / config.STACKS_DIR)
    widen_fabric_subnets(root / config.STACKS_DIR)
    tenants = root / config.TENANTS_DIR
    tenants.mkdir()
    rng = random.Random(seed)
    pools = [p for p in _pools(shipped) if p[0] == region]  # whole-GPU pools (sharing none) of the region
    if not pools:
        raise SystemExit(f"region {region} has no pool with sharing none: nothing to allocate whole GPUs in")
    certs = {name: r.certification for name, r in shipped.regions.items()}
    for i in range(n):
        data = _tenant(i, rng, pools, certs)  # names end in -{i:05d}: unique
        (tenants / f"{data['name']}.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def check_tree(root: Path, n: int, region: str) -> None:
    """Load the generated tree once (untimed): exit 1 with a clear message if it does not load as intended."""
    try:
        cfg = config.load(root)
    except ConfigInvalid as exc:
        _report_invalid(exc, root)
        sys.exit(1)
    in_region = {t.name for t, _ in cfg.allocations_in(region)}
    if len(cfg.tenants) != n or len(in_region) != n:
        sys.exit(f"generated {n} tenants at {root}, but {len(cfg.tenants)} loaded and {len(in_region)} have "
                 f"allocations in {region}")


def program_tree(root: Path, program: str) -> None:
    """A tree with the shipped stack files (synth.run reads the region from them) and ``program`` as the stack
    program."""
    stacks = root / config.STACKS_DIR
    stacks.mkdir(parents=True)
    for path in config.stack_files(REPO):
        shutil.copy2(path, stacks / path.name)
    shutil.copy2(REPO / config.STACKS_DIR / "Pulumi.yaml", stacks / "Pulumi.yaml")
    (stacks / "__main__.py").write_text(program, encoding="utf-8")


# ---------------------------------------------------------------------------------------------------- children

def _preimport() -> None:
    """The SDK imports both measurements share, done before the clock starts."""
    import pulumi
    import pulumi.runtime  # noqa: F401
    import pulumi_kubernetes.core.v1  # noqa: F401


def measure_synth(root: Path, region: str, out: Path, records: Path | None = None) -> dict[str, Any]:
    from sovcloud.engine import synth

    _preimport()
    t0 = time.perf_counter()
    try:
        cfg = config.load(root)
    except ConfigInvalid as exc:
        _report_invalid(exc, root)
        sys.exit(1)
    if region not in cfg.regions:
        sys.exit(f"no region {region} in {root} (one of: {', '.join(sorted(cfg.regions))})")
    t1 = time.perf_counter()
    # as `sovcloud synth` runs it: the tenant stacks in forked workers, each writing its stacks' files
    writer = synth.Writer(out, region)
    result = synth.run(root, region, cfg, workers=synth.cores(), each=writer, keep_records=False)
    t2 = time.perf_counter()
    plan = synth.plan(result, cfg)
    t3 = time.perf_counter()
    writer.finish(result, plan, [p.result for p in result.stacks()])
    t4 = time.perf_counter()
    measured = {"seconds": t4 - t0, "phases": {"load": t1 - t0, "run and write": t2 - t1, "plan": t3 - t2,
                                               "finish": t4 - t3}, "peak_rss_mib": peak_rss_mib()}
    if records is None:
        return {**measured, "resources": None}
    # untimed: every record (components too), for the floors (their count, mean size and the same-kinds program)
    every = synth.run(root, region, cfg, workers=synth.cores()).records
    sizes = [len(json.dumps(r.inputs)) for r in every]
    records.write_text(json.dumps([{"type": r.type, "name": r.name, "custom": r.custom, "inputs": r.inputs}
                                   for r in every]), encoding="utf-8")
    return {**measured, "resources": len(every), "mean_inputs_bytes": sum(sizes) / len(sizes)}


def measure_floor(root: Path, region: str) -> dict[str, Any]:
    from sovcloud.engine import synth

    _preimport()
    cfg = config.load(root)  # the shipped regions, no tenants: untimed, the floor program does not read it
    t0 = time.perf_counter()
    result = synth.run(root, region, cfg)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "resources": len(result.records), "peak_rss_mib": peak_rss_mib()}


def child(mode: str, root: Path, region: str, out: Path, records: Path | None = None) -> dict[str, Any]:
    """Run this script in a fresh process in ``mode``; its last stdout line is the JSON result. Dirty pages of the
    generated trees and earlier outputs are flushed first, so a measurement does not pay for the kernel writing
    back the benchmark's own setup."""
    os.sync()
    cmd = [sys.executable, str(SCRIPT), "--_measure", mode, "--_root", str(root), "--region", region,
           "--_out", str(out)] + (["--_records", str(records)] if records else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(f"{mode} measurement on {root} failed (exit {proc.returncode})")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


def best(mode: str, root: Path, region: str, tmp: Path, repeat: int, label: str,
         records: Path | None = None) -> tuple[dict[str, Any], float]:
    """The fastest of ``repeat`` runs (each in its own process, each writing to a fresh out dir); the peak RSS."""
    runs = [child(mode, root, region, tmp / f"out-{label}-{k}", records) for k in range(repeat)]
    fastest = min(runs, key=lambda r: r["seconds"])
    if mode == "synth":
        phases = ", ".join(f"{k} {v:.2f} s" for k, v in fastest["phases"].items())
        print(f"{label}: synth {fastest['seconds']:.2f} s ({phases})", file=sys.stderr)
    else:
        print(f"{label}: {fastest['seconds']:.2f} s, {fastest['resources']} resources", file=sys.stderr)
    return fastest, max(r["peak_rss_mib"] for r in runs)


def one_tenant_check(root: Path, region: str, cold: bool = False) -> float:
    """Wall seconds of ``sovcloud check REGION --tenant <the first tenant>`` in a fresh process (a pull request's
    check), with the parsed-config cache as an earlier run left it, or with none (``cold``: every file parsed);
    exits 1 when the check cannot run."""
    tenant = min(p.stem for p in (root / config.TENANTS_DIR).glob("*.yaml"))
    os.sync()
    env = {**os.environ, **({"SOVCLOUD_CACHE_DIR": "off"} if cold else {})}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sovcloud.cli", "check", region, "--tenant", tenant, "--root",
                           str(root), "--format", "json"], capture_output=True, text=True, check=False, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1) or not proc.stdout.strip().startswith("{"):
        sys.stderr.write(proc.stderr)
        sys.exit(f"check --tenant {tenant} on {root} failed (exit {proc.returncode})")
    print(f"check {region} --tenant {tenant}{' (no parse cache)' if cold else ''}: {seconds:.2f} s", file=sys.stderr)
    return seconds


# ---------------------------------------------------------------------------------------------------- entry

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000, help="tenant files to generate (default 1000)")
    parser.add_argument("--region", default="ncc-haenam", help="region every allocation is in (default ncc-haenam)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best is kept (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated tenants (default 1)")
    parser.add_argument("--_measure", choices=("synth", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--_root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--_out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--_records", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._measure:
        if args._root is None or args._out is None:
            parser.error("--_measure needs --_root and --_out")
        if args._measure == "synth":
            result = measure_synth(args._root, args.region, args._out, args._records)
        else:
            result = measure_floor(args._root, args.region)
        print(json.dumps(result))
        return 0

    if args.tenants < 1 or args.repeat < 1:
        parser.error("--tenants and --repeat must be 1 or more")
    if 2 * args.tenants > 99_999:
        parser.error("--tenants at most 49999 (tenant names carry a 5-digit index, and 2N are generated)")
    try:
        shipped = config.load(REPO)
    except ConfigInvalid as exc:
        _report_invalid(exc, REPO)
        return 1
    if args.region not in shipped.regions:
        parser.error(f"no region {args.region} (one of: {', '.join(sorted(shipped.regions))})")

    n, n2 = args.tenants, 2 * args.tenants
    with tempfile.TemporaryDirectory(prefix="sovcloud-synth-bench-") as tmp_name:
        tmp = Path(tmp_name)
        # the parsed-config cache of the generated trees: the benchmark's own (filled by check_tree below, as a
        # user's earlier run would), never the user's
        os.environ["SOVCLOUD_CACHE_DIR"] = str(tmp / "cache")
        from sovcloud.config import yamlsafe

        yamlsafe.CACHE.enabled = True  # as the commands have it (synth's measurement below loads without it)
        tree, tree2 = tmp / f"tree-{n}", tmp / f"tree-{n2}"
        for root, count in ((tree, n), (tree2, n2)):
            generate(root, count, args.seed, shipped, args.region)
            check_tree(root, count, args.region)

        records = tmp / "records.json"
        synth_n, rss_n = best("synth", tree, args.region, tmp, args.repeat, f"N={n}", records)
        resources = synth_n["resources"]
        payload = max(0, round(synth_n["mean_inputs_bytes"]) - FLOOR_OVERHEAD)
        floor_root = tmp / "floor"
        program_tree(floor_root, FLOOR_PROGRAM.format(count=resources, payload=payload))
        floor, rss_floor = best("floor", floor_root, args.region, tmp, args.repeat, f"ConfigMap floor K={resources}")
        kinds_root = tmp / "kinds-floor"
        program_tree(kinds_root, KINDS_FLOOR_PROGRAM.format(records=str(records)))
        kinds, rss_kinds = best("floor", kinds_root, args.region, tmp, args.repeat, f"same-kinds floor K={resources}")
        for label, measured in (("ConfigMap floor", floor), ("same-kinds floor", kinds)):
            if measured["resources"] != resources:
                print(f"{label} registered {measured['resources']} resources, expected {resources}", file=sys.stderr)
                return 1
        synth_2n, rss_2n = best("synth", tree2, args.region, tmp, args.repeat, f"2N={n2}")
        check_n = min(one_tenant_check(tree, args.region) for _ in range(args.repeat))
        check_2n = min(one_tenant_check(tree2, args.region) for _ in range(args.repeat))
        cold_n = min(one_tenant_check(tree, args.region, cold=True) for _ in range(args.repeat))
        cold_2n = min(one_tenant_check(tree2, args.region, cold=True) for _ in range(args.repeat))

    synth_s, floor_s, kinds_s = synth_n["seconds"], floor["seconds"], kinds["seconds"]
    print(json.dumps({
        "region": args.region, "tenants": n, "resources": resources,
        "synth_seconds": round(synth_s, 3), "floor_seconds": round(floor_s, 3), "ratio": round(synth_s / floor_s, 3),
        "resources_per_second": round(resources / synth_s, 1),
        "same_kinds_floor_seconds": round(kinds_s, 3), "ratio_to_same_kinds_floor": round(synth_s / kinds_s, 3),
        "same_kinds_floor_over_floor": round(kinds_s / floor_s, 3),
        "peak_rss_mib": round(rss_n, 1), "peak_rss_mib_2n": round(rss_2n, 1),
        "peak_rss_mib_floors": round(max(rss_floor, rss_kinds), 1),
        "one_tenant_check_seconds": round(check_n, 3), "one_tenant_check_seconds_cold": round(cold_n, 3),
        "scaling": {"tenants_2n": n2, "synth_seconds_2n": round(synth_2n["seconds"], 3),
                    "time_2n_over_n": round(synth_2n["seconds"] / synth_s, 3),
                    "one_tenant_check_seconds_2n": round(check_2n, 3),
                    "one_tenant_check_seconds_cold_2n": round(cold_2n, 3)},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
