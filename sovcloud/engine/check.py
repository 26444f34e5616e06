"""`sovcloud check`: synthesise a region and evaluate the policy pack's own policy objects on it, offline.

Arguments are built as the Pulumi engine and the pack's gRPC server build them: a ``ResourceValidationArgs`` per
custom resource and one ``StackValidationArgs`` over all resources, props and config through the protocol's
protobuf ``Struct`` and pulumi_policy's deserializer (``sovcloud.engine.analyzer``: numbers arrive as floats), props
wrapped in pulumi_policy's unknown-checking proxy, each policy's config = its schema defaults overlaid with the
region's policy config. ``tests/test_contracts.py`` sends the same requests to the pack served over gRPC and finds
the same verdicts.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sovcloud.config.model import Config, Origin


@dataclass(frozen=True)
class Violation:
    region: str
    policy: str
    enforcement: str  # mandatory | advisory
    severity: str
    message: str
    urn: str  # "" for the stack as a whole
    resource: str  # "Kind namespace/name" or the resource type and name
    file: str
    line: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _owners(synthesis: Any, cfg: Config) -> dict[str, tuple[Any, Any]]:
    """URN -> (tenant, pool) the resource was made for (from its component ancestry), each or both None."""
    region = cfg.regions[synthesis.region]
    by_urn = {r.urn: r for r in synthesis.records}
    component: dict[str, tuple[Any, Any]] = {}
    prefix = f"{region.name}-"
    for rec in synthesis.records:
        if rec.type == "sovcloud:tenants:Tenant" and rec.name.startswith(prefix):
            component[rec.urn] = (cfg.tenants.get(rec.name[len(prefix):]), None)
        elif rec.type == "sovcloud:nodepools:GpuNodePool" and rec.name.startswith(prefix):
            component[rec.urn] = (None, region.pool(rec.name[len(prefix):]))
    out: dict[str, tuple[Any, Any]] = {}
    for rec in synthesis.records:
        urn, owner = rec.urn, None
        while urn and owner is None:
            owner = component.get(urn)
            urn = by_urn[urn].parent if urn in by_urn else ""
        out[rec.urn] = owner or (None, None)
    return out


def _origin(policy: str, message: str, owner: tuple[Any, Any], region: Any) -> Origin:
    """The config line behind a finding: the field the policy judges, in the tenant file, the pool's entry or the
    region's settings (GitHub shows annotations on changed lines only, so the file's top would hide them)."""
    tenant, pool = owner
    if tenant is not None:
        field = {"classification-within-certification": "classification",
                 "domestic-organisations": "organisation.country", "national-budget": "grantGpus",
                 "tenant-isolation": "network", "pod-security-restricted": "name",
                 "tenant-namespaces-retained": "status"}.get(policy)
        if field is not None:
            return tenant.origin_of(field)
        here = [a for a in tenant.allocations if a.region == region.name]
        return here[0].origin if here else tenant.origin  # quotas, periods, MIG: the allocation in this region
    if pool is not None:
        return pool.origin
    if policy == "shares-and-caps":
        return region.origin_of("allocation.perSectorGpuCap" if "cap is" in message else "allocation.reservedShares")
    if policy == "national-budget":
        return region.origin_of("allocation.nationalGpuBudget")
    if policy == "driver-supports-models":
        field = ("gpuOperator.kernelModuleType" if "kernelModuleType" in message else
                 "gpuOperator.chartVersion" if "gpu-operator" in message else "gpuOperator.driverVersion")
        return region.origin_of(field)
    if policy == "approved-registries":
        return region.origin_of("registries.allowed")
    return region.origin


def _describe(rec: Any) -> str:
    meta = rec.inputs.get("metadata") or {}
    if rec.inputs.get("kind") and meta.get("name"):
        ns = meta.get("namespace")
        return f"{rec.inputs['kind']} {ns + '/' if ns else ''}{meta['name']}"
    return f"{rec.type.rsplit(':', 1)[-1]} {rec.inputs.get('name') or rec.name}"


def _through_struct(given: dict[str, Any], memo: dict[Any, Any] | None) -> dict[str, Any]:
    """A policy's config as the pack's server reads it back from the engine's Struct. With ``memo``, a property
    value the stacks of one check share (the same object: the platform resources, the GPU catalog, the region's
    settings) crosses once per check: a Struct's fields convert one by one, so the parts give the same as the
    whole."""
    from google.protobuf import json_format

    from sovcloud.engine import analyzer

    if memo is None:
        return json_format.MessageToDict(analyzer.struct(given))
    out = {}
    for name, value in given.items():
        hit = memo.get((name, id(value)))
        if hit is None or hit[0] is not value:  # the value itself is kept: its id is not reused while memo lives
            hit = (value, json_format.MessageToDict(analyzer.struct({name: value})).get(name))
            memo[(name, id(value))] = hit
        out[name] = hit[1]
    return out


def evaluate(synthesis: Any, cfg: Config, region_config: dict[str, dict[str, Any]],
             memo: dict[str, Any] | None = None) -> list[Violation]:
    """Run every policy of the pack over the synthesised region; return what they report. ``memo``: policy
    configs already through the protocol's Struct, shared by the stacks of one check (read only)."""
    from pulumi_policy import (
        PolicyCustomTimeouts,
        PolicyProviderResource,
        PolicyResource,
        PolicyResourceOptions,
        ResourceValidationArgs,
        ResourceValidationPolicy,
        StackValidationArgs,
    )
    from pulumi_policy.proxy import unknown_checking_proxy

    from policies.pack import config_defaults, policies
    from sovcloud.engine import analyzer

    records = {r.urn: r for r in synthesis.records}
    # what the pack's server hands a policy: the inputs through the protocol's Struct and its deserializer
    props = {r.urn: unknown_checking_proxy(analyzer.received(r.inputs)) for r in synthesis.records}
    owners = _owners(synthesis, cfg)
    region = cfg.regions[synthesis.region]

    def opts(rec: Any) -> PolicyResourceOptions:
        return PolicyResourceOptions(rec.protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], rec.parent or None)

    def provider(rec: Any) -> PolicyProviderResource | None:
        prov = records.get(rec.provider.rsplit("::", 1)[0]) if rec.provider else None
        if prov is None:
            return None
        return PolicyProviderResource(prov.type, props[prov.urn], prov.urn, prov.name)

    options = {r.urn: opts(r) for r in synthesis.records}
    providers = {r.urn: provider(r) for r in synthesis.records}
    stack_resources = [PolicyResource(r.type, props[r.urn], r.urn, r.name, options[r.urn], providers[r.urn], None,
                                      [], {}) for r in synthesis.records]
    by_urn = {pr.urn: pr for pr in stack_resources}
    for pr in stack_resources:
        pr.parent = by_urn.get(records[pr.urn].parent)

    found: list[Violation] = []
    for policy in policies():
        # the engine sends the whole config (schema defaults filled in) as a Struct; the server reads it back as is
        given = {**config_defaults(policy), **region_config.get(policy.name, {})}
        config = _through_struct(given, memo)
        enforcement = policy.enforcement_level.value if policy.enforcement_level else "advisory"
        severity = policy.severity.value if policy.severity else "low"

        def report(message: str, urn: str | None = None, _p: Any = policy, _e: str = enforcement,
                   _s: str = severity) -> None:
            urn = urn or ""
            origin = _origin(_p.name, message, owners.get(urn, (None, None)), region)
            rec = records.get(urn)
            found.append(Violation(synthesis.region, _p.name, _e, _s, message, urn,
                                   _describe(rec) if rec else f"stack {synthesis.region}", origin.file, origin.line))

        if isinstance(policy, ResourceValidationPolicy):
            for rec in synthesis.records:
                if not rec.custom:
                    continue
                args = ResourceValidationArgs(rec.type, props[rec.urn], rec.urn, rec.name, options[rec.urn],
                                              providers[rec.urn], config)
                policy.validate(args, lambda m, u=None, _r=rec.urn: report(m, u or _r))
        else:
            policy.validate(StackValidationArgs(stack_resources, config), report)
    return found


class StackJudge:
    """The pack run over one stack of a region at a time, as the engine would (each stack's resources only, its own
    policy config: the other tenants' sums and, for a tenant stack, the platform resources its region-wide rules
    read). Called with the platform stack's synthesis first (it learns the platform resources from it), then with
    tenant stacks, in this process or in a synthesis worker forked after the platform (``synth.run``'s ``each``).
    ``judged``: the stacks whose findings are wanted (default all); the others give none."""

    def __init__(self, cfg: Config, region: str, day: dt.date, folders: list[Path],
                 judged: set[str] | None = None):
        from sovcloud.engine.policy_config import RegionPolicy

        self.cfg, self.judged = cfg, judged
        self.policy = RegionPolicy(cfg, region, day, folders)  # what the stacks' configs share, computed once
        self.memo: dict[Any, Any] = {}

    def learn(self, platform: Any) -> None:
        self.policy.learn(platform.records)

    def __call__(self, part: Any) -> list[Violation]:
        from sovcloud import stacks

        tenant = stacks.parse(part.stack)[1]
        if tenant is None:
            self.learn(part)
        if self.judged is not None and part.stack not in self.judged:
            return []
        if tenant is not None and self.policy.platform is None:
            raise RuntimeError(f"{part.stack} judged before its platform stack's synthesis was seen")
        return evaluate(part, self.cfg, self.policy.config(part.stack), self.memo)

    def timed(self, part: Any) -> tuple[list[Violation], float]:
        """``synth.run``'s ``each``: the findings and the seconds judging took."""
        started = time.perf_counter()
        found = self(part)
        return found, time.perf_counter() - started


def unique(found: list[list[Violation]]) -> list[Violation]:
    """The stacks' findings in order, a finding two stacks share (a region-wide sum) once."""
    seen: set[tuple[str, str, str]] = set()
    out: list[Violation] = []
    for v in (v for vs in found for v in vs):
        key = (v.policy, v.message, v.urn)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def evaluate_stacks(parts: list[Any], cfg: Config, region: str, day: dt.date, folders: list[Path],
                    platform: Any = None) -> list[Violation]:
    """Run the pack over each of the region's synthesised stacks (``StackJudge``); a finding two stacks share is
    reported once. ``platform``: the platform stack's synthesis, when ``parts`` lack it (a tenant's check)."""
    from sovcloud import stacks

    judge = StackJudge(cfg, region, day, folders)
    base = next((p for p in parts if stacks.parse(p.stack)[1] is None), platform)
    if base is not None:
        judge.learn(base)
    return unique([judge(p) for p in parts])


def check_region(root: str, region: str, today: str | None, charts: list[str] | None = None,
                 stack_names: list[str] | None = None, workers: int = 1) -> dict[str, Any]:
    """Worker entry (one process per region): load, synthesise, evaluate. Returns plain data with timings
    (``seconds``: synthesis and judging, wall; ``policySeconds``: judging alone, summed over the processes). With
    ``charts`` (or the region's chartSources), the pack renders each release from there; a release whose chart is
    not found is named in ``notRendered``. ``stack_names``: only those of the region's stacks (their region-wide rules
    still judge every tenant's config). ``workers``: processes the tenant stacks' synthesis is shared out to."""
    import policies.pack  # noqa: F401 (imported before the clocks start: a process cost, not evaluation time)
    from sovcloud import config as config_loader
    from sovcloud.engine import synth

    tree = Path(root)
    cfg = _INHERITED.get(root) or config_loader.load(tree)
    started = time.perf_counter()
    day = dt.date.fromisoformat(today) if today else dt.date.today()
    from sovcloud import stacks

    tenants = None if stack_names is None else [t for _, t in map(stacks.parse, stack_names) if t]
    folders = synth.chart_folders(tree, cfg, region, [Path(c) for c in charts or []])
    # a tenant's stacks judge the region with the platform's resources: synthesised always, judged when chosen. Each
    # stack is judged where it was synthesised (the workers judge their share); only the findings come back
    chosen = None if stack_names is None else set(stack_names)
    judge = StackJudge(cfg, region, day, folders, chosen)
    synthesis = synth.run(tree, region, cfg, as_of=day, tenants=tenants, workers=workers, each=judge.timed,
                          keep_records=False)
    if chosen is not None:
        judged = [p for p in synthesis.stacks() if p.stack in chosen]
        synthesis = synth.Synthesis(region, [r for p in judged for r in p.records], day, parts=judged) \
            if len(judged) != 1 else judged[0]
    violations = unique([p.result[0] for p in synthesis.stacks()])
    seconds = time.perf_counter() - started
    not_rendered = _not_rendered(synthesis, folders)
    # resources as synth counts them: the custom resources that reach a cluster (components are not counted)
    return {"region": region, "tree": root, "resources": sum(synthesis.counts().values()),
            "stacks": [p.stack for p in synthesis.stacks()], "seconds": seconds,
            "policySeconds": sum(p.result[1] for p in synthesis.stacks()),
            "violations": [v.as_dict() for v in violations],
            "rendered": bool(folders) and not not_rendered, "notRendered": not_rendered}


def _not_rendered(synthesis: Any, folders: list[Path]) -> list[str]:
    """Why releases go unrendered: no chart folders, no Helm engine, or a chart missing from the folders."""
    from sovcloud import render
    from sovcloud.engine.synth import helm_spec

    if not synthesis.helm_releases():
        return []
    if not folders:
        return ["no chart folders (--charts, or the region's registries.chartSources): releases are not rendered"]
    if not render.available():
        return [render.UNAVAILABLE]
    return render.missing([helm_spec(rec.inputs) for rec in synthesis.helm_releases()], render.ChartIndex(folders))


_INHERITED: dict[str, Config] = {}  # config trees already loaded, by path: what a forked check inherits


def check_regions(jobs: list[tuple[str, str]], today: str | None, charts: list[str], workers: int,
                  timeout: float, on_result: Any = None, selection: dict[str, list[str]] | None = None,
                  cfg: Config | None = None) -> tuple[list[dict[str, Any]], dict[tuple[str, str], str]]:
    """Check each (config tree, region) in a fresh process of its own (``selection``: per region, only those of its
    stacks; a region not named there whole), as the SDK keeps global state and a process whose program failed
    never finishes another, with a deadline per region. Returns the results and, per job that failed or ran out of
    time, one line saying so.

    Where every job gets a process at once and the system forks, the processes are forked: they inherit ``cfg``
    (the trees' loaded config, when the caller has it) and the imports, so a one-tenant check does not load and
    import everything a second time; elsewhere they are spawned, one job per process."""
    import concurrent.futures
    import multiprocessing

    from sovcloud.engine import synth

    results: list[dict[str, Any]] = []
    failed: dict[tuple[str, str], str] = {}
    fork = len(jobs) <= workers and synth.can_fork()
    workers = max(1, min(workers, len(jobs)))
    if fork:
        if cfg is not None:
            _INHERITED.update({tree: cfg for tree, _ in jobs})
        # all processes start at once, one per job
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(
            "fork"))
    else:
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(
            "spawn"), max_tasks_per_child=1)

    # the machine's cores shared by the regions checked at once, for their tenant stacks' synthesis
    per_region = max(1, synth.cores() // workers)
    futures = {pool.submit(check_region, tree, region, today, charts, (selection or {}).get(region), per_region):
               (tree, region) for tree, region in jobs}
    waves = -(-len(jobs) // workers)
    try:
        for future in concurrent.futures.as_completed(futures, timeout=timeout * max(1, waves)):
            job = futures[future]
            try:
                result = future.result()
            except synth.WorkerDied as exc:  # a synthesis worker killed (out of memory?): not the program's fault
                failed[job] = f"{job[1]}: {exc}"
                continue
            except Exception as exc:  # the program failed for this region: one line, not a traceback
                failed[job] = f"{job[1]}: the stack program failed: {' '.join(str(exc).split())[:300]}"
                continue
            results.append(result)
            if on_result is not None:
                on_result(result)
    except concurrent.futures.TimeoutError:
        for future, job in futures.items():
            if not future.done():
                failed[job] = f"{job[1]}: did not finish within {timeout:g} s"
        # the stuck workers never return: end them, or the pool's shutdown would wait for them forever
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        _INHERITED.clear()
        return results, failed
    pool.shutdown(wait=True)
    _INHERITED.clear()
    return results, failed
