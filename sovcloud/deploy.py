"""`sovcloud preview|up|destroy|drift`: the real deployment path, on the Pulumi Automation API.

Runs the `stacks/` project (the same program `pulumi up` runs) with the policy pack always attached. State goes to
`PULUMI_BACKEND_URL` when set, else to a local file backend in `.pulumi-state/` under the config tree, visible and
backed up like any other file; the secrets passphrase comes from the environment. Needs the Pulumi CLI.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sovcloud.cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE, _root, err, error_line, load_or_exit, main, out, root_option
from sovcloud.keys import TENANT
from sovcloud.model import Config

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


@dataclass
class Outcome:
    region: str
    operation: str
    ok: bool = True
    summary: dict[str, int] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)  # drift: resources changed outside the toolkit
    mandatory: list[str] = field(default_factory=list)  # mandatory policy violations
    advisory: list[str] = field(default_factory=list)
    error: str = ""


class _Events:
    """Engine events -> progress (resources done of total, current operation) and policy findings."""

    def __init__(self, progress: Progress, task: Any, outcome: Outcome):
        self.progress, self.task, self.outcome = progress, task, outcome
        self.lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self.lock:
            if event.resource_pre_event is not None:
                meta = event.resource_pre_event.metadata
                self.progress.update(self.task, description=f"{self.outcome.region}: {meta.op} {meta.type}")
                # a refresh preview reports what differs from the cluster as update / delete steps
                if self.outcome.operation == "drift" and meta.op in ("update", "delete", "replace"):
                    self.outcome.changed.append(meta.urn)
            elif event.res_outputs_event is not None:
                self.progress.advance(self.task)
            elif event.policy_event is not None:
                p = event.policy_event
                line = f"{p.policy_name}: {p.resource_urn or 'stack'}: {p.message.splitlines()[-1]}"
                (self.outcome.mandatory if p.enforcement_level == "mandatory" else self.outcome.advisory).append(line)
            elif event.summary_event is not None:
                self.outcome.summary = {str(k): v for k, v in event.summary_event.resource_changes.items()}


def run_operation(root: Path, cfg: Config, region: str, operation: str, parallel: int | None, env: dict[str, str],
                  progress: Progress) -> Outcome:
    """One region: select (or create) its stack, attach the policy pack with the region's config, run."""
    from pulumi import automation as auto

    from sovcloud.policy_config import policy_config

    outcome = Outcome(region, operation)
    # total unknown until the engine has run the program: the bar counts resources done
    task = progress.add_task(f"{region}: starting", total=None)
    events = _Events(progress, task, outcome)
    with tempfile.TemporaryDirectory() as tmp:
        policy_file = Path(tmp) / f"{region}.policy.json"
        policy_file.write_text(json.dumps(policy_config(cfg, region, dt.date.today())), encoding="utf-8")
        packs = {"policy_packs": [str(root / "policies")], "policy_pack_configs": [str(policy_file)]}
        try:
            stack = auto.create_or_select_stack(stack_name=region, work_dir=str(root / "stacks"),
                                                opts=auto.LocalWorkspaceOptions(env_vars=env))
            if operation == "preview":
                stack.preview(parallel=parallel, on_event=events, **packs)
            elif operation == "up":
                stack.up(parallel=parallel, on_event=events, **packs)
            elif operation == "destroy":
                stack.destroy(parallel=parallel, on_event=events)
            elif operation == "drift":
                stack.preview_refresh(parallel=parallel, on_event=events)
        except auto.errors.CommandError as exc:
            outcome.ok = False
            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
            outcome.error = next((ln.strip() for ln in reversed(lines) if "error" in ln.lower()), lines[-1] if lines
                                 else "pulumi failed")
    progress.update(task, description=f"{region}: {'done' if outcome.ok else 'failed'}")
    return outcome


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


def _deploy_command(operation: str, doc: str) -> None:
    @main.command(operation, help=doc)
    @click.argument("regions", nargs=-1)
    @click.option("--all", "all_regions", is_flag=True, help="Every region in stacks/.")
    @click.option("--parallel", type=click.IntRange(1, 1000), default=None,
                  help="Resource operations at once within a region (Pulumi's --parallel).")
    @click.option("--jobs", type=click.IntRange(1, 16), default=2, show_default=True, help="Regions at once.")
    @root_option
    def command(regions: tuple[str, ...], all_regions: bool, parallel: int | None, jobs: int,
                root: Path | None) -> None:
        tree = _root(root)
        cfg = load_or_exit(tree)
        sys.exit(report(run_regions(tree, cfg, _regions(cfg, regions, all_regions), operation, parallel, jobs)))


_deploy_command("preview", "Preview REGION(s) with the Pulumi engine and the policy pack attached. Needs the Pulumi "
                "CLI; exit 1 on failure or a mandatory policy violation.")
_deploy_command("up", "Deploy REGION(s) with the Pulumi engine and the policy pack attached. Needs the Pulumi CLI; "
                "exit 1 on failure or a mandatory policy violation.")


@main.command()
@click.argument("region")
@click.option("--delete-tenant-namespaces-and-data", "lose_data", is_flag=True,
              help="Destroy even though tenants still have namespaces (and volumes) in this region.")
@click.option("--parallel", type=click.IntRange(1, 1000), default=None)
@root_option
def destroy(region: str, lose_data: bool, parallel: int | None, root: Path | None) -> None:
    """Destroy REGION's stack. Refused while any tenant still has a namespace there, unless the flag naming the data
    loss is given. Needs the Pulumi CLI."""
    tree = _root(root)
    cfg = load_or_exit(tree)
    _regions(cfg, (region,), False)
    tenants = sorted({t.name for t, _ in cfg.allocations_in(region)})
    if tenants and not lose_data:
        error_line(f"refused: {len(tenants)} tenant(s) still have namespaces in {region} "
                  f"({', '.join(tenants)}); offboard and remove them first, or pass "
                  "--delete-tenant-namespaces-and-data")
        sys.exit(EXIT_INVALID)
    if not lose_data:
        in_state = tenant_namespaces_in_state(tree, region)
        if in_state:
            error_line(f"refused: the {region} stack still holds tenant namespaces "
                      f"({', '.join(in_state)}); offboard and remove them first, or pass "
                      "--delete-tenant-namespaces-and-data")
            sys.exit(EXIT_INVALID)
    sys.exit(report(run_regions(tree, cfg, [region], "destroy", parallel, 1)))


def tenant_namespaces_in_state(root: Path, region: str) -> list[str]:
    """Tenant namespaces the stack's state still holds (tenants removed from config included)."""
    from pulumi import automation as auto

    require_cli()
    env = backend_env(root)
    try:
        stack = auto.select_stack(stack_name=region, work_dir=str(root / "stacks"),
                                  opts=auto.LocalWorkspaceOptions(env_vars=env))
        deployment = stack.export_stack().deployment or {}
    except auto.errors.CommandError:
        return []  # no such stack yet: nothing to protect
    names = []
    for res in deployment.get("resources") or []:
        if res.get("type") == "kubernetes:core/v1:Namespace":
            labels = ((res.get("outputs") or {}).get("metadata") or {}).get("labels") or {}
            if labels.get(TENANT):
                names.append(labels[TENANT])
    return sorted(names)


@main.command()
@click.argument("region")
@click.option("--parallel", type=click.IntRange(1, 1000), default=None)
@root_option
def drift(region: str, parallel: int | None, root: Path | None) -> None:
    """Refresh REGION in preview-only mode and list resources changed outside sovcloud. Needs the Pulumi CLI."""
    tree = _root(root)
    cfg = load_or_exit(tree)
    _regions(cfg, (region,), False)
    sys.exit(report(run_regions(tree, cfg, [region], "drift", parallel, 1)))
