"""`sovcloud preview|up|destroy|drift`: the real deployment path, on the Pulumi Automation API.

Runs the `stacks/` project (the same program `pulumi up` runs) with the policy pack always attached, per stack: a
region's platform stack first, then its tenant stacks (REGION.t.TENANT) with bounded parallelism; destroy the other
way round. A region whose platform stack fails runs none of its tenant stacks. State goes to
`PULUMI_BACKEND_URL` when set, else to a local file backend in `.pulumi-state/` under the config tree, visible and
backed up like any other file; the secrets passphrase comes from the environment. Needs the Pulumi CLI.
"""

from __future__ import annotations

import concurrent.futures
import sys
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sovcloud.commands.common import (
    EXIT_INVALID,
    EXIT_OK,
    backend_env,
    changed_since_option,
    err,
    error_line,
    fail,
    load_or_exit,
    out,
    platform_only_option,
    program_refusal,
    project_root,
    require_cli,
    root_option,
    stack_selection,
    tenant_option,
)
from sovcloud.config.model import Config
from sovcloud.engine.deploy import Outcome, cluster_identity, run_operation, tenant_namespaces_in_state


def confirmer(yes: bool) -> Any:
    """How planned changes are confirmed: --yes confirms; on a terminal, a question; elsewhere (CI), nothing does."""
    def confirm(outcome: Outcome) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            return False
        changes = ", ".join(f"{k} {v}" for k, v in sorted(outcome.summary.items())) or "no changes reported"
        return click.confirm(f"{outcome.region}: {outcome.operation} will {changes}. Apply?", default=False,
                             err=True)
    return confirm


def check_cluster(cfg: Config, regions: list[str], kubeconfig: Path | None, context: str | None) -> None:
    """Refuse (one line, exit 1) to change a cluster that is not the region's: its kube-system namespace UID must be
    the region's kubernetes.clusterId. A region without one is named, not refused."""
    found: str | None = None  # one kubeconfig, one cluster: asked once
    for region in regions:
        expected = cfg.regions[region].cluster_id
        if expected is None:
            err.print(f"note: {region}: kubernetes.clusterId is not set, so the cluster cannot be confirmed as the "
                      "region's (set it to the kube-system namespace UID)")
            continue
        if found is None:
            try:
                found = cluster_identity(kubeconfig, context)
            except RuntimeError as exc:
                fail(f"{region}: {exc}")
        if found != expected:
            fail(f"refused: the cluster the kubeconfig points at is not {region}'s (kube-system UID {found}, "
                 f"kubernetes.clusterId is {expected}); pass the right --kubeconfig/--context")


def run_regions(root: Path, cfg: Config, selection: dict[str, list[str]], operation: str, parallel: int | None,
                jobs: int, yes: bool = True, diff: bool = False, skip_preview: bool = False) -> list[Outcome]:
    """Each region of ``selection`` in turn: its platform stack (when selected) first, then its selected tenant
    stacks, ``jobs`` at once; for destroy, the tenant stacks first. Progress per stack."""
    from sovcloud import stacks

    require_cli()
    env = backend_env(root)
    confirm = confirmer(yes)
    if not yes and sys.stdin.isatty():
        jobs = 1  # one question at a time
    outcomes: list[Outcome] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err) as progress:
        for region, names in selection.items():
            # the pack goes with preview and up; a refresh and a destroy run without it
            policies = _policy_configs(root, cfg, region, names) if operation in ("preview", "up") else \
                {n: {} for n in names}
            platform = [n for n in names if stacks.parse(n)[1] is None]
            tenants = [n for n in names if stacks.parse(n)[1] is not None]
            waves = [tenants, platform] if operation == "destroy" else [platform, tenants]
            for wave in waves:
                if not wave:
                    continue
                if outcomes and not all(o.ok for o in outcomes if stacks.parse(o.region)[0] == region):
                    outcomes += [Outcome(n, operation, ok=False, error="not run: an earlier stack of the region "
                                         "failed") for n in wave]
                    continue
                with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(jobs, len(wave)))) as pool:
                    futures = [pool.submit(run_operation, root, cfg, n, operation, parallel, env, progress,
                                           policies[n], confirm, diff, skip_preview) for n in wave]
                    outcomes += [f.result() for f in futures]
    return outcomes


def _policy_configs(root: Path, cfg: Config, region: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """Each stack's pack config; a platform program that refuses (a region not marked split) is one line."""
    from sovcloud.engine.deploy import stack_policy_configs

    with program_refusal(region):
        return stack_policy_configs(root, cfg, region, names)


def report(outcomes: list[Outcome], show_preview: bool = False) -> int:
    for o in outcomes:
        changes = ", ".join(f"{k} {v}" for k, v in sorted(o.summary.items())) or "no changes reported"
        out.print(f"{o.region}: {o.operation} {'ok' if o.ok else 'FAILED'}: {changes}")
        for line in o.mandatory:
            out.print(f"  [red]mandatory[/red] {line}")
        for line in o.advisory:
            out.print(f"  advisory {line}")
        for urn in o.changed:
            out.print(f"  changed outside sovcloud: {urn}")
        if o.preview_output and show_preview:
            out.print(o.preview_output, markup=False, highlight=False)
        if o.error:
            out.print(f"  error: {o.error}")
    # drift found is a failure too: CI that runs `sovcloud drift` must notice
    failed = any(not o.ok or o.mandatory or o.changed for o in outcomes)
    return EXIT_INVALID if failed else EXIT_OK


def _regions(cfg: Config, regions: tuple[str, ...], all_regions: bool) -> list[str]:
    if all_regions:
        return sorted(cfg.regions)
    if not regions:
        raise click.UsageError("name a REGION or pass --all")
    unknown = [r for r in regions if r not in cfg.regions]
    if unknown:
        raise click.BadParameter(f"no region {', '.join(unknown)} (one of: {', '.join(sorted(cfg.regions))})",
                                 param_hint="REGION")
    return list(regions)


def _selection(tree: Path, cfg: Config, regions: list[str], tenants: tuple[str, ...], platform_only: bool,
               changed_since: str | None) -> dict[str, list[str]]:
    selection = stack_selection(tree, cfg, regions, list(tenants), changed_since, platform_only)
    if not selection:
        err.print(f"no stack's inputs changed since {changed_since}: nothing to do")
        sys.exit(EXIT_OK)
    return selection


def _stack_options(command: click.Command) -> click.Command:
    return tenant_option(platform_only_option(changed_since_option(command)))


kubeconfig_option = click.option(
    "--kubeconfig", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Kubeconfig to confirm the cluster's identity with (default: KUBECONFIG or ~/.kube/config).")
context_option = click.option("--context", help="Context in the kubeconfig (default: its current context).")


def _deploy_command(operation: str, doc: str) -> click.Command:
    @click.command(operation, help=doc)
    @click.argument("regions", nargs=-1)
    @click.option("--all", "all_regions", is_flag=True, help="Every region in stacks/.")
    @click.option("--parallel", type=click.IntRange(1, 1000), default=None,
                  help="Resource operations at once within a region (Pulumi's --parallel).")
    @click.option("--jobs", type=click.IntRange(1, 16), default=4, show_default=True,
                  help="Tenant stacks of a region at once (its platform stack runs first, alone).")
    @click.option("--diff", is_flag=True, help="Show the changed fields of the preview.")
    @_stack_options
    @root_option
    def command(regions: tuple[str, ...], all_regions: bool, parallel: int | None, jobs: int, diff: bool,
                tenants: tuple[str, ...], platform_only: bool, changed_since: str | None,
                root: Path | None, yes: bool = True, skip_preview: bool = False, kubeconfig: Path | None = None,
                context: str | None = None) -> None:
        tree = project_root(root)
        cfg = load_or_exit(tree)
        selection = _selection(tree, cfg, _regions(cfg, regions, all_regions), tenants, platform_only, changed_since)
        chosen = list(selection)
        if skip_preview:
            tenanted = [r for r in chosen if cfg.allocations_in(r)]
            if tenanted:
                error_line(f"refused: --skip-preview in {', '.join(tenanted)}, where tenants have queues: the stack "
                           "rules run only after an update's steps are applied, so only a preview keeps a refused "
                           "change off the cluster (drop --skip-preview)")
                sys.exit(EXIT_INVALID)
        if operation == "up":
            require_cli()
            check_cluster(cfg, chosen, kubeconfig, context)
        sys.exit(report(run_regions(tree, cfg, selection, operation, parallel, jobs, yes, diff, skip_preview),
                        show_preview=diff))

    if operation == "up":
        command = click.option("--yes", is_flag=True, help="Apply without asking (CI); on a terminal you are shown "
                               "the planned changes and asked.")(command)
        command = click.option("--skip-preview", is_flag=True, help="Apply without the preview first; refused where "
                               "tenants have queues.")(command)
        command = kubeconfig_option(context_option(command))
    return command


preview = _deploy_command(
    "preview", "Preview REGION(s) with the Pulumi engine and the policy pack attached: the platform stack, then the "
    "tenant stacks (REGION.t.TENANT; --tenant, --platform-only and --changed-since narrow them). Needs the Pulumi "
    "CLI; exit 1 on failure or a mandatory policy violation.")
up = _deploy_command(
    "up", "Deploy REGION(s) with the Pulumi engine and the policy pack attached: the platform stack, then the tenant "
    "stacks (REGION.t.TENANT), --jobs at once; --tenant, --platform-only and --changed-since narrow them. Each stack "
    "is previewed with the pack first and applied only when no mandatory rule is violated (the engine runs stack "
    "rules after applying). A tenant's change also moves its regions' cohort (the platform lends what no tenant "
    "holds): run the platform stack too, as --changed-since does. Needs the Pulumi CLI; exit 1 on failure or a "
    "mandatory policy violation.")


@click.command()
@click.argument("region")
@click.option("--delete-tenant-namespaces-and-data", "lose_data", is_flag=True,
              help="Destroy even though tenants still have namespaces (and volumes) in this region.")
@click.option("--tenant", "tenants", multiple=True, metavar="NAME",
              help="Destroy only this tenant's stack (REGION.t.NAME): refused while the tenant still has an "
              "allocation there. Its namespace is retained on delete, with its volumes; repeatable.")
@click.option("--parallel", type=click.IntRange(1, 1000), default=None)
@click.option("--jobs", type=click.IntRange(1, 16), default=4, show_default=True, help="Tenant stacks at once.")
@click.option("--yes", is_flag=True, help="Destroy without asking (CI); on a terminal you are asked.")
@kubeconfig_option
@context_option
@root_option
def destroy(region: str, lose_data: bool, tenants: tuple[str, ...], parallel: int | None, jobs: int, yes: bool,
            kubeconfig: Path | None, context: str | None, root: Path | None) -> None:
    """Destroy REGION's stacks (its tenant stacks, then its platform stack), or with --tenant one tenant's stack,
    after a destroy preview and confirmation. Refused while any tenant still has an allocation (or, for the
    platform, a stack or namespace) there, unless the flag naming the data loss is given, and on a cluster that is
    not the region's. Needs the Pulumi CLI."""
    from sovcloud import stacks

    tree = project_root(root)
    cfg = load_or_exit(tree)
    _regions(cfg, (region,), False)
    if tenants:
        holding = sorted(t for t in tenants if t in stacks.tenants_in(cfg, region))
        if holding and not lose_data:
            error_line(f"refused: {', '.join(holding)} still hold(s) an allocation in {region}; remove it from "
                       "the tenant file (or offboard) first, or pass --delete-tenant-namespaces-and-data")
            sys.exit(EXIT_INVALID)
        selection = {region: [stacks.tenant(region, t) for t in tenants]}
    else:
        held = stacks.tenants_in(cfg, region)
        if held and not lose_data:
            error_line(f"refused: {len(held)} tenant(s) still have namespaces in {region} "
                       f"({', '.join(held)}); offboard and remove them first, or pass "
                       "--delete-tenant-namespaces-and-data")
            sys.exit(EXIT_INVALID)
        if not lose_data:
            require_cli()
            in_state = tenant_namespaces_in_state(tree, region, backend_env(tree))
            if in_state:
                error_line(f"refused: {region} still has tenant stacks or namespaces in its state "
                           f"({', '.join(in_state)}); destroy them first (--tenant), or pass "
                           "--delete-tenant-namespaces-and-data")
                sys.exit(EXIT_INVALID)
        selection = {region: stacks.region_stacks(cfg, region)}
    require_cli()
    check_cluster(cfg, [region], kubeconfig, context)
    sys.exit(report(run_regions(tree, cfg, selection, "destroy", parallel, jobs, yes)))


@click.command()
@click.argument("region")
@click.option("--parallel", type=click.IntRange(1, 1000), default=None)
@click.option("--jobs", type=click.IntRange(1, 16), default=4, show_default=True, help="Tenant stacks at once.")
@_stack_options
@root_option
def drift(region: str, parallel: int | None, jobs: int, tenants: tuple[str, ...], platform_only: bool,
          changed_since: str | None, root: Path | None) -> None:
    """Refresh REGION's stacks (platform, then tenants; --tenant, --platform-only, --changed-since narrow them) in
    preview-only mode and list resources changed outside sovcloud; exit 1 when there are any. Needs the Pulumi CLI."""
    tree = project_root(root)
    cfg = load_or_exit(tree)
    selection = _selection(tree, cfg, _regions(cfg, (region,), False), tenants, platform_only, changed_since)
    sys.exit(report(run_regions(tree, cfg, selection, "drift", parallel, jobs)))


COMMANDS = (preview, up, destroy, drift)
