"""`sovcloud preview|up|destroy|drift`: the real deployment path, on the Pulumi Automation API.

Runs the `stacks/` project (the same program `pulumi up` runs) with the policy pack always attached. State goes to
`PULUMI_BACKEND_URL` when set, else to a local file backend in `.pulumi-state/` under the config tree, visible and
backed up like any other file; the secrets passphrase comes from the environment. Needs the Pulumi CLI.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import sys
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sovcloud.commands.common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    err,
    error_line,
    load_or_exit,
    out,
    project_root,
    root_option,
)
from sovcloud.config.model import Config
from sovcloud.engine.deploy import Outcome, run_operation, tenant_namespaces_in_state

STATE_DIR = ".pulumi-state"
INSTALL = ("the Pulumi CLI is not installed (no `pulumi` on PATH): install it from "
           "https://www.pulumi.com/docs/iac/download-install/ (e.g. curl -fsSL https://get.pulumi.com | sh); "
           "`sovcloud synth` and `sovcloud check` work offline without it")


def require_cli() -> None:
    """Exit 2 with one line when the Pulumi CLI is missing."""
    if shutil.which("pulumi") is None:
        error_line(f"{INSTALL}")
        sys.exit(EXIT_USAGE)


def backend_env(root: Path) -> dict[str, str]:
    """PULUMI_BACKEND_URL (or the local state directory) and the passphrase check for the local backend."""
    env: dict[str, str] = {}
    backend = os.environ.get("PULUMI_BACKEND_URL")
    if not backend:
        state = root / STATE_DIR
        state.mkdir(exist_ok=True)
        backend = f"file://{state}"
        env["PULUMI_BACKEND_URL"] = backend
    if backend.startswith("file://") and not (os.environ.get("PULUMI_CONFIG_PASSPHRASE")
                                              or os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")):
        err.print("[red]error:[/red] the local state backend encrypts secrets with a passphrase: set "
                  "PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE")
        sys.exit(EXIT_USAGE)
    return env


def run_regions(root: Path, cfg: Config, regions: list[str], operation: str, parallel: int | None,
                jobs: int) -> list[Outcome]:
    require_cli()
    env = backend_env(root)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err) as progress, \
            concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(jobs, len(regions)))) as pool:
        futures = [pool.submit(run_operation, root, cfg, r, operation, parallel, env, progress) for r in regions]
        return [f.result() for f in futures]


def report(outcomes: list[Outcome]) -> int:
    for o in outcomes:
        changes = ", ".join(f"{k} {v}" for k, v in sorted(o.summary.items())) or "no changes reported"
        out.print(f"{o.region}: {o.operation} {'ok' if o.ok else 'FAILED'}: {changes}")
        for line in o.mandatory:
            out.print(f"  [red]mandatory[/red] {line}")
        for line in o.advisory:
            out.print(f"  advisory {line}")
        for urn in o.changed:
            out.print(f"  changed outside sovcloud: {urn}")
        if o.error:
            out.print(f"  error: {o.error}")
    failed = any(not o.ok or o.mandatory for o in outcomes)
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


def _deploy_command(operation: str, doc: str) -> click.Command:
    @click.command(operation, help=doc)
    @click.argument("regions", nargs=-1)
    @click.option("--all", "all_regions", is_flag=True, help="Every region in stacks/.")
    @click.option("--parallel", type=click.IntRange(1, 1000), default=None,
                  help="Resource operations at once within a region (Pulumi's --parallel).")
    @click.option("--jobs", type=click.IntRange(1, 16), default=2, show_default=True, help="Regions at once.")
    @root_option
    def command(regions: tuple[str, ...], all_regions: bool, parallel: int | None, jobs: int,
                root: Path | None) -> None:
        tree = project_root(root)
        cfg = load_or_exit(tree)
        sys.exit(report(run_regions(tree, cfg, _regions(cfg, regions, all_regions), operation, parallel, jobs)))

    return command


preview = _deploy_command(
    "preview", "Preview REGION(s) with the Pulumi engine and the policy pack attached. Needs the Pulumi CLI; exit 1 on "
    "failure or a mandatory policy violation.")
up = _deploy_command(
    "up", "Deploy REGION(s) with the Pulumi engine and the policy pack attached. Each region is previewed with the "
    "pack first and applied only when no mandatory rule is violated (the engine runs stack rules after applying). "
    "Needs the Pulumi CLI; exit 1 on failure or a mandatory policy violation.")


@click.command()
@click.argument("region")
@click.option("--delete-tenant-namespaces-and-data", "lose_data", is_flag=True,
              help="Destroy even though tenants still have namespaces (and volumes) in this region.")
@click.option("--parallel", type=click.IntRange(1, 1000), default=None)
@root_option
def destroy(region: str, lose_data: bool, parallel: int | None, root: Path | None) -> None:
    """Destroy REGION's stack. Refused while any tenant still has a namespace there, unless the flag naming the data
    loss is given. Needs the Pulumi CLI."""
    tree = project_root(root)
    cfg = load_or_exit(tree)
    _regions(cfg, (region,), False)
    tenants = sorted({t.name for t, _ in cfg.allocations_in(region)})
    if tenants and not lose_data:
        error_line(f"refused: {len(tenants)} tenant(s) still have namespaces in {region} "
                  f"({', '.join(tenants)}); offboard and remove them first, or pass "
                  "--delete-tenant-namespaces-and-data")
        sys.exit(EXIT_INVALID)
    if not lose_data:
        require_cli()
        in_state = tenant_namespaces_in_state(tree, region, backend_env(tree))
        if in_state:
            error_line(f"refused: the {region} stack still holds tenant namespaces "
                      f"({', '.join(in_state)}); offboard and remove them first, or pass "
                      "--delete-tenant-namespaces-and-data")
            sys.exit(EXIT_INVALID)
    sys.exit(report(run_regions(tree, cfg, [region], "destroy", parallel, 1)))


@click.command()
@click.argument("region")
@click.option("--parallel", type=click.IntRange(1, 1000), default=None)
@root_option
def drift(region: str, parallel: int | None, root: Path | None) -> None:
    """Refresh REGION in preview-only mode and list resources changed outside sovcloud. Needs the Pulumi CLI."""
    tree = project_root(root)
    cfg = load_or_exit(tree)
    _regions(cfg, (region,), False)
    sys.exit(report(run_regions(tree, cfg, [region], "drift", parallel, 1)))


COMMANDS = (preview, up, destroy, drift)
