"""`sovcloud diff --against REF`: what a pull request changes in tenants, GPUs and policy results.

The base side is the config tree (stacks/, tenants/) at REF, read with `git archive`; the head side is the working
tree. Removing a tenant's file without offboarding it first is a mandatory finding: its namespace would be left
behind with quota and queue gone unannounced.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from sovcloud import config
from sovcloud.config.model import Config, Region, Tenant, thaw
from sovcloud.engine import capacity


class DiffError(Exception):
    pass


def extract_at(root: Path, ref: str, dest: Path) -> None:
    """The config tree of ``root`` as it was at git ``ref``, written under ``dest``."""
    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True)
        except OSError as exc:  # git not installed, or not on PATH
            raise DiffError(f"cannot run git ({exc.strerror or exc}): diff reads the base from git; install git or "
                            "put it on PATH") from None

    def git(*args: str) -> bytes:
        result = run(*args)
        if result.returncode != 0:
            lines = result.stderr.decode(errors="replace").strip().splitlines()
            raise DiffError(lines[-1] if lines else "git failed")
        return result.stdout

    if run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode != 0:
        raise DiffError(f"git ref {ref} not found in {root}")
    prefix = git("rev-parse", "--show-prefix").decode().strip()
    paths = [f"{prefix}{d}" for d in (config.STACKS_DIR, config.TENANTS_DIR)]
    listed = git("ls-tree", "--name-only", ref, "--", *paths).decode().split()
    if not listed:
        raise DiffError(f"{ref} has no {config.STACKS_DIR}/ or {config.TENANTS_DIR}/ under {prefix or 'the top'}")
    data = git("archive", "--format=tar", ref, "--", *listed)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        try:
            tar.extractall(dest, filter="data")
        except tarfile.FilterError as exc:
            # the data filter refuses absolute symlinks, links out of the tree, devices: name the member
            raise DiffError(f"{ref} holds {exc.tarinfo.name!r}, which diff will not unpack ({exc}); config files "
                            "are regular files") from None
    if prefix:
        (dest / prefix).rename(dest / "_tree")
        for d in (dest / "_tree").iterdir():
            d.rename(dest / d.name)


def _alloc_map(t: Tenant) -> dict[str, dict[str, Any]]:
    return {f"{a.region}/{a.pool}": {"gpus": a.gpus, "borrowingLimit": a.borrowing_limit, "mig": dict(a.mig),
                                     "start": a.start.isoformat(), "end": a.end.isoformat(), "cpu": a.cpu,
                                     "memory": a.memory, "storage": a.storage, "priority": a.priority}
            for a in t.allocations}


def _tenant_facts(t: Tenant) -> dict[str, Any]:
    return {"status": t.status,
            "offboardingSince": t.offboarding_since.isoformat() if t.offboarding_since else None,
            "sector": t.sector, "classification": t.classification,
            "organisation": t.organisation.name, "country": t.organisation.country,
            "adminGroups": list(t.admin_groups), "internetEgress": t.network.internet_egress,
            "grantGpus": t.grant_gpus, "allocations": _alloc_map(t)}


def _changes(old: dict[str, Any], new: dict[str, Any], path: str = "") -> list[dict[str, Any]]:
    """Changed leaves as {path, before, after} (a MIG map counts as one leaf)."""
    out_: list[dict[str, Any]] = []
    for key in sorted(set(old) | set(new)):
        where = f"{path}.{key}" if path else key
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and key != "mig":
            out_ += _changes(a, b, where)
        elif a != b:
            out_.append({"path": where, "before": a, "after": b})
    return out_


def change_text(c: dict[str, Any]) -> str:
    impact = f" [{c['impact']}]" if c.get("impact") else ""
    return f"{c['path']}: {json.dumps(c['before'])} -> {json.dumps(c['after'])}{impact}"


# What a change to a region setting does to the running cluster, for the reviewer.
REGION_IMPACT = {
    "kubernetesVersion": "rolls every Cluster API node of the region (upgrade the control plane first)",
    "gpuOperator.chartVersion": "rolls the GPU operator and its operands on every GPU node",
    "gpuOperator.driverVersion": "reloads the driver on every GPU node: GPU workloads there restart",
    "gpuOperator.kernelModuleType": "reloads the driver on every GPU node: GPU workloads there restart",
    "gpuOperator.migStrategy": "changes the resources every MIG node advertises: MIG workloads restart",
    "kueue.chartVersion": "restarts Kueue's manager (admission pauses while it is down)",
    "draDriver.chartVersion": "rolls the DRA driver's kubelet plugin on its pools",
}
POOL_IMPACT = {
    "nodes": "adds or removes nodes (capacity below)",
    "gpuModel": "replaces every node of the pool",
    "machine": "new machine template: rolls every node of the pool",
    "sharing": "repartitions the pool's GPUs: its workloads restart",
}


def _region_facts(r: Region) -> dict[str, Any]:
    op = r.gpu_operator
    facts: dict[str, Any] = {
        "kubernetesVersion": r.kubernetes_version,
        "gpuOperator": {"chartVersion": op.chart_version, "driverVersion": op.driver_version,
                        "kernelModuleType": op.kernel_module_type, "migStrategy": op.mig_strategy},
        "kueue": {"chartVersion": r.kueue.chart_version},
        "certification": r.certification,
    }
    if r.dra_driver is not None:
        facts["draDriver"] = {"chartVersion": r.dra_driver.chart_version}
    return facts


def _pool_facts(p: Any) -> dict[str, Any]:
    return {"gpuModel": p.gpu.name, "nodes": p.nodes, "machine": json.loads(json.dumps(thaw(p.provisioner.machine))),
            "sharing": {"mode": p.sharing.mode, "layout": dict(p.sharing.mig_layout), "replicas": p.sharing.replicas}}


def region_changes(base: Config | None, head: Config) -> dict[str, Any]:
    """Per region: settings changed (with what each does to the running cluster), pools added, removed and changed
    (with capacity before and after)."""
    out: dict[str, Any] = {}
    old = base.regions if base else {}
    for name in sorted(set(old) | set(head.regions)):
        a, b = old.get(name), head.regions.get(name)
        if a is None or b is None:
            out[name] = {"region": "added" if a is None else "removed"}
            continue
        settings = [{**c, "impact": REGION_IMPACT.get(c["path"], "")}
                    for c in _changes(_region_facts(a), _region_facts(b))]
        pools_a, pools_b = {p.name: p for p in a.pools}, {p.name: p for p in b.pools}
        pools: dict[str, Any] = {}
        for pool in sorted(set(pools_a) | set(pools_b)):
            pa, pb = pools_a.get(pool), pools_b.get(pool)
            if pa is None or pb is None:
                pools[pool] = {"pool": "added" if pa is None else "removed",
                               "gpusBefore": pa.gpus if pa else 0, "gpusAfter": pb.gpus if pb else 0}
                continue
            changes = [{**c, "impact": POOL_IMPACT.get(c["path"].split(".", 1)[0], "")}
                       for c in _changes(_pool_facts(pa), _pool_facts(pb))]
            if changes:
                pools[pool] = {"changes": changes, "gpusBefore": pa.gpus, "gpusAfter": pb.gpus}
        if settings or pools:
            out[name] = {"settings": settings, "pools": pools}
    return out


def compare(base: Config | None, head: Config | None, day: dt.date) -> dict[str, Any]:
    """What head changes against base; an invalid head (None) compares as nothing (its errors say why)."""
    if head is None:
        return {"date": day.isoformat(), "tenants": {"added": [], "removed": [], "changed": {}}, "regions": {},
                "gpuDeltas": [], "findings": [], "heldQueues": []}
    old = base.tenants if base else {}
    added = sorted(set(head.tenants) - set(old))
    removed = sorted(set(old) - set(head.tenants))
    changed = {}
    for name in sorted(set(old) & set(head.tenants)):
        diff = _changes(_tenant_facts(old[name]), _tenant_facts(head.tenants[name]))
        if diff:
            changed[name] = diff
    before = {(u.region, u.pool): u for u in capacity.pool_usage(base, day)} if base else {}
    after = {(u.region, u.pool): u for u in capacity.pool_usage(head, day)}
    deltas = []
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key), after.get(key)
        row = {"region": key[0], "pool": key[1],
               "guaranteedBefore": b.held if b else 0, "guaranteedAfter": a.held if a else 0,
               "borrowableBefore": b.borrowable if b else 0, "borrowableAfter": a.borrowable if a else 0,
               "capacityBefore": b.capacity if b else 0, "capacityAfter": a.capacity if a else 0,
               "migBefore": {p: n for p, n in (b.mig_guaranteed if b else {}).items() if n},
               "migAfter": {p: n for p, n in (a.mig_guaranteed if a else {}).items() if n}}
        if any(row[f"{k}Before"] != row[f"{k}After"] for k in ("guaranteed", "borrowable", "capacity", "mig")):
            deltas.append(row)
    findings = [{"finding": "tenant-removed-without-offboarding", "enforcement": "mandatory", "tenant": name,
                 "message": f"tenant {name} was removed while {old[name].status}: offboard it first "
                            "(sovcloud tenant offboard) and remove the file once that is applied; its namespace and "
                            "data stay in the cluster either way"}
                for name in removed if old[name].status != "offboarding"]
    findings += _kueue_immutable(base, head) if base else []
    return {"date": day.isoformat(), "tenants": {"added": added, "removed": removed, "changed": changed},
            "regions": region_changes(base, head), "gpuDeltas": deltas, "findings": findings,
            "heldQueues": capacity.held_queues(head, day)}


def _kueue_immutable(base: Config, head: Config) -> list[dict[str, Any]]:
    """Changes Kueue refuses in place: a Topology's levels, and a topology-aware flavor's topologyName and node
    labels (the pool label and the GPU product, which follows the model and the sharing mode)."""
    from components.queueing import resource_flavor

    out = []
    for name in sorted(set(base.regions) & set(head.regions)):
        old, new = base.regions[name], head.regions[name]
        for t in sorted(set(old.kueue.topologies) & set(new.kueue.topologies)):
            if old.kueue.topologies[t] != new.kueue.topologies[t]:
                out.append({"finding": "kueue-immutable-change", "enforcement": "mandatory", "region": name,
                            "message": f"{name}: topology {t} changes its levels, which Kueue keeps immutable: "
                                       "declare the new levels under a new topology name for a new pool, move the "
                                       "tenants there, then retire the old pool"})
        for pool in old.pools:
            now = new.pool(pool.name)
            if now is None or pool.topology is None:
                continue  # a flavor without topologyName may change; adding one is allowed
            before, after = resource_flavor(old, pool)["spec"], resource_flavor(new, now)["spec"]
            changed = [k for k in ("topologyName", "nodeLabels", "tolerations") if before.get(k) != after.get(k)]
            if changed:
                out.append({"finding": "kueue-immutable-change", "enforcement": "mandatory", "region": name,
                            "message": f"{name}: pool {pool.name} is topology-aware and its ResourceFlavor would "
                                       f"change {', '.join(changed)}, which Kueue refuses once topologyName is set: "
                                       "declare the changed pool under a new name, move the tenants there, then "
                                       "retire the old pool"})
    return out


def _policy_results(trees: dict[str, Path], cfgs: dict[str, Config | None], day: dt.date) -> dict[str, Any]:
    from sovcloud.engine.check import check_regions

    sides = {str(tree): side for side, tree in trees.items()}
    jobs = [(str(tree), region) for side, tree in trees.items() if cfgs[side] is not None
            for region in sorted(cfgs[side].regions)]
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in trees}
    done, failed = check_regions(jobs, day.isoformat(), [], 2, 600)
    for result in done:
        results[sides[result["tree"]]].append(result)

    def key(v: dict[str, Any]) -> tuple[str, str, str, str]:
        return (v["region"], v["policy"], v["resource"], v["message"])

    before = {key(v): v for r in results["base"] for v in r["violations"]}
    after = {key(v): v for r in results["head"] for v in r["violations"]}
    return {"failed": sorted(failed.values()),
            "introduced": [after[k] for k in sorted(set(after) - set(before))],
            "resolved": [before[k] for k in sorted(set(before) - set(after))],
            "remaining": [after[k] for k in sorted(set(after) & set(before))]}


def render_text(d: dict[str, Any]) -> str:
    lines = [f"tenants added: {', '.join(d['tenants']['added']) or 'none'}",
             f"tenants removed: {', '.join(d['tenants']['removed']) or 'none'}"]
    for name, changes in d["tenants"]["changed"].items():
        lines.append(f"tenant {name} changed:")
        lines += [f"  {change_text(c)}" for c in changes]
    for name, r in d.get("regions", {}).items():
        if "region" in r:
            lines.append(f"region {name} {r['region']}")
            continue
        lines.append(f"region {name} changed:")
        lines += [f"  {change_text(c)}" for c in r["settings"]]
        for pool, p in r["pools"].items():
            what = p.get("pool", "changed")
            lines.append(f"  pool {pool} {what}: {p['gpusBefore']} -> {p['gpusAfter']} GPUs")
            lines += [f"    {change_text(c)}" for c in p.get("changes", [])]
    lines.append("GPU deltas (guaranteed, borrowable):" if d["gpuDeltas"] else "GPU deltas: none")
    for r in d["gpuDeltas"]:
        mig = (f", MIG {r['migBefore'] or '{}'} -> {r['migAfter'] or '{}'}"
               if r.get("migBefore") != r.get("migAfter") else "")
        lines.append(f"  {r['region']}/{r['pool']}: guaranteed {r['guaranteedBefore']} -> {r['guaranteedAfter']} "
                     f"({r['guaranteedAfter'] - r['guaranteedBefore']:+g}), borrowable {r['borrowableBefore']} -> "
                     f"{r['borrowableAfter']}, of {r['capacityAfter']} GPUs{mig}")
    for q in d.get("heldQueues", []):
        when = f", drains from {q['drainsFrom']}" if q["drainsFrom"] else ""
        lines.append(f"queue held: {q['region']}/{q['tenant']}: {q['stopPolicy']}{when}")
    for f in d["findings"]:
        lines.append(f"MANDATORY {f['finding']}: {f['message']}")
    pol = d.get("policies")
    if pol is not None:
        lines += [f"check failed: {f}" for f in pol.get("failed", [])]
        for label in ("introduced", "resolved"):
            lines.append(f"policy violations {label}: {len(pol[label])}")
            lines += [f"  {v['enforcement']} {v['policy']}: {v['region']}: {v['resource']}: {v['message']}"
                      for v in pol[label]]
        lines.append(f"policy violations unchanged: {len(pol['remaining'])}")
    if d.get("headErrors"):
        lines.append("head config is invalid:")
        lines += [f"  {e}" for e in d["headErrors"]]
    return "\n".join(lines) + "\n"


def blocking(d: dict[str, Any]) -> bool:
    """A mandatory finding, invalid head config, a region whose check failed, or a mandatory policy violation the
    change introduces."""
    pol = d.get("policies") or {}
    return bool(d["findings"] or d.get("headErrors") or pol.get("failed") or any(
        v["enforcement"] == "mandatory" for v in pol.get("introduced", [])))


def render_markdown(d: dict[str, Any]) -> str:
    md = [f"### sovcloud review: {'❌ blocking findings' if blocking(d) else '✅ no blocking findings'}", "",
          f"Tenants added: {', '.join(f'`{t}`' for t in d['tenants']['added']) or 'none'}  ",
          f"Tenants removed: {', '.join(f'`{t}`' for t in d['tenants']['removed']) or 'none'}  ",
          f"Tenants changed: {', '.join(f'`{t}`' for t in d['tenants']['changed']) or 'none'}", ""]
    if d["gpuDeltas"]:
        md += ["| region | pool | guaranteed | Δ | borrowable | GPUs |", "|---|---|---:|---:|---:|---:|"]
        md += [f"| {r['region']} | {r['pool']} | {r['guaranteedBefore']} → {r['guaranteedAfter']} | "
               f"{r['guaranteedAfter'] - r['guaranteedBefore']:+g} | {r['borrowableBefore']} → {r['borrowableAfter']} "
               f"| {r['capacityAfter']} |" for r in d["gpuDeltas"]]
        md.append("")
    for name, changes in d["tenants"]["changed"].items():
        md += [f"<details><summary><code>{name}</code>: {len(changes)} change(s)</summary>", "", "```",
               *(change_text(c) for c in changes), "```", "</details>", ""]
    for name, r in d.get("regions", {}).items():
        if "region" in r:
            md += [f"Region `{name}` {r['region']}.", ""]
            continue
        restarts = [c for c in r["settings"] if c.get("impact")] + [
            c for p in r["pools"].values() for c in p.get("changes", []) if c.get("impact")]
        mark = " ⚠️ restarts nodes or workloads" if restarts else ""
        md += [f"Region `{name}`{mark}:", ""]
        md += [f"- `{change_text(c)}`" for c in r["settings"]]
        for pool, p in r["pools"].items():
            md.append(f"- pool `{pool}` {p.get('pool', 'changed')}: {p['gpusBefore']} → {p['gpusAfter']} GPUs")
            md += [f"  - `{change_text(c)}`" for c in p.get("changes", [])]
        md.append("")
    for q in d.get("heldQueues", []):
        when = f", drains from {q['drainsFrom']}" if q["drainsFrom"] else ""
        md.append(f"- queue held: `{q['region']}/{q['tenant']}`: {q['stopPolicy']}{when}")
    for f in d["findings"]:
        md.append(f"- **mandatory** `{f['finding']}`: {f['message']}")
    pol = d.get("policies")
    if pol is not None:
        md.append(f"Policy violations: {len(pol['introduced'])} introduced, {len(pol['resolved'])} resolved, "
                  f"{len(pol['remaining'])} unchanged.")
        md += [f"- {v['enforcement']} `{v['policy']}` {v['region']}: {v['resource']}: {v['message']} "
               f"({v['file']}:{v['line']})" for v in pol["introduced"]]
    return "\n".join(md) + "\n"
