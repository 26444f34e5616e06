"""`sovcloud migrate-stacks REGION`: move a region from the one-stack layout to its platform and tenant stacks."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click

from sovcloud.commands.common import (
    DATE,
    EXIT_INVALID,
    EXIT_OK,
    atomic_write,
    backend_env,
    err,
    error_line,
    fail,
    load_or_exit,
    out,
    program_refusal,
    project_root,
    refuse_output_in_config,
    region_or_fail,
    require_cli,
    root_option,
)
from sovcloud.engine import migrate


@click.command("migrate-stacks")
@click.argument("region")
@click.option("--from-file", "state_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Work offline on this exported state of the region's stack (`pulumi stack export`), writing "
              "each stack's state to --out instead of importing it.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="With --from-file: the folder to write STACK.json into (for `pulumi stack import`).")
@click.option("--date", "today", type=DATE, default=None,
              help="Synthesise the new programs as of this date (default: today), as the next update will.")
@root_option
def migrate_stacks(region: str, state_file: Path | None, out_dir: Path | None, today: Any,
                   root: Path | None) -> None:
    """Move REGION's tenant resources from the region's stack (the one-stack layout) to a stack per tenant
    (REGION.t.TENANT), deleting and replacing nothing.

    Exports the region's state, moves each tenant's resources (same ids, inputs and outputs; only their URNs
    change), and verifies the result against what the new programs declare (synthesised offline): a resource the
    next update would delete or replace refuses the whole move and nothing is written. Then imports each tenant
    stack, and the platform's state last. With --from-file, works on an exported file and writes the stacks' states
    to --out. Without it, needs the Pulumi CLI and the region's backend (PULUMI_BACKEND_URL), as `up` does; stop
    the region's updates meanwhile (suspend its operator Stack). Last, sets the platform stack's
    sovcloud:stackLayout to split, without which the program refuses to run a platform stack.
    """
    from sovcloud import stacks
    from sovcloud.engine import synth

    tree = project_root(root)
    cfg = load_or_exit(tree)
    region_or_fail(cfg, region)
    if (state_file is None) != (out_dir is None):
        raise click.UsageError("--from-file and --out go together (offline); without both, the backend is used")
    if out_dir is not None:
        refuse_output_in_config(out_dir, tree, "--out")
    if state_file is not None:
        try:
            before = json.loads(state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            fail(f"{state_file}: cannot read the exported state ({exc})")
    else:
        before = _export(tree, region)
    try:
        moved = migrate.split(before, region)
    except migrate.MigrationRefused as exc:
        _refuse(exc.problems)
    if not moved.tenants:
        err.print(f"{region}: no tenant resources in the region's stack: nothing to move (set sovcloud:stackLayout: "
                  f"split in stacks/Pulumi.{region}.yaml)")
        sys.exit(EXIT_OK)
    err.print(f"{region}: synthesising the new stacks to verify the move ...")
    # the programs as they run after the move, when the platform stack's layout is split
    with program_refusal(region):
        after = synth.run(tree, region, cfg, {stacks.LAYOUT_KEY: stacks.LAYOUT}, as_of=today or dt.date.today())
    records = {p.stack: p.records for p in after.stacks()}
    states = {region: moved.platform, **moved.tenants}
    planned = migrate.plan(states, records)
    problems = migrate.verify_split(before, moved) + planned.problems()
    if problems:
        _refuse(problems)
    for stack, deployment in states.items():
        made, changed = len(planned.creates.get(stack, [])), len(planned.updates.get(stack, []))
        out.print(f"{stack}: {len(migrate.resources(deployment))} resources in state, "
                  + (f"{made} to create and {changed} to update on the next update (config changed since the "
                     "last one)" if made or changed else "no change on the next update"))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for stack, deployment in states.items():
            atomic_write(out_dir / f"{stack}.json", json.dumps(deployment, indent=1) + "\n")
        out.print(f"{len(states)} stack states written to {out_dir}; import the tenant stacks first (`pulumi stack "
                  "import -s STACK --file STACK.json`, each with the platform's kubeconfig config), the platform's "
                  f"last, then set sovcloud:stackLayout: split in stacks/Pulumi.{region}.yaml")
        sys.exit(EXIT_OK)
    _import(tree, region, states, before)
    out.print(f"{region}: moved {len(moved.tenants)} tenant stacks and set sovcloud:stackLayout: split in "
              f"stacks/Pulumi.{region}.yaml (commit it); the next `sovcloud preview {region}` shows no deletion")


def _refuse(problems: list[str]) -> None:
    for line in problems[:50]:
        error_line(f"refused: {line}")
    if len(problems) > 50:
        error_line(f"refused: ... and {len(problems) - 50} more")
    error_line("nothing was moved")
    sys.exit(EXIT_INVALID)


def _export(tree: Path, region: str) -> dict[str, Any]:
    from pulumi import automation as auto

    require_cli()
    env = backend_env(tree)
    try:
        stack = auto.select_stack(stack_name=region, work_dir=str(tree / "stacks"),
                                  opts=auto.LocalWorkspaceOptions(env_vars=env))
        exported = stack.export_stack()
    except auto.errors.CommandError as exc:
        last = (str(exc).strip().splitlines() or ["pulumi failed"])[-1]
        fail(f"{region}: cannot export the region's stack: {last}")
    return {"version": exported.version, "deployment": exported.deployment}


def _import(tree: Path, region: str, states: dict[str, dict[str, Any]], before: dict[str, Any]) -> None:
    """Tenant stacks first, the platform last, each read back; then the platform's ``sovcloud:stackLayout``.
    Nothing is imported before every tenant stack is known empty and the region's stack is known unchanged since
    it was exported (an update in between would be lost)."""
    from pulumi import automation as auto

    from sovcloud import stacks
    from sovcloud.config import REGION_KEY

    env = backend_env(tree)
    opts = auto.LocalWorkspaceOptions(env_vars=env)
    work_dir = str(tree / "stacks")
    order = [s for s in states if s != region] + [region]
    try:
        platform = auto.select_stack(stack_name=region, work_dir=work_dir, opts=opts)
        tenant_stacks = {}
        for name in order[:-1]:
            stack = auto.create_or_select_stack(stack_name=name, work_dir=work_dir, opts=opts)
            held = [r for r in migrate.held(stack) if r.get("type") != migrate.STACK_TYPE]
            if held:
                fail(f"{name}: the stack already holds {len(held)} resources; nothing was moved")
            tenant_stacks[name] = stack
        if migrate.held(platform) != migrate.resources(before):
            fail(f"{region}: the stack changed since it was exported (an update ran); nothing was moved: run "
                 "migrate-stacks again, with the region's updates stopped (suspend its operator Stack)")
        # the tenant stacks take the platform stack's config (its kubeconfig and contexts, secrets re-encrypted for
        # each stack), not its region: the provider they were applied with stays the same provider
        platform_config = {k: v for k, v in platform.get_all_config().items()
                           if k not in (REGION_KEY, stacks.LAYOUT_KEY)}
        for stack in tenant_stacks.values():
            stack.set_all_config(platform_config)
        for name in order:
            stack = tenant_stacks.get(name) or platform
            stack.import_stack(auto.Deployment(version=3, deployment=states[name]["deployment"]))
            back = {r["urn"] for r in migrate.held(stack)}
            if back != {r["urn"] for r in migrate.resources(states[name])}:
                fail(f"{name}: the imported state reads back differently; the region's stack is "
                     f"{'unchanged' if name != region else 'imported'}: compare with `pulumi stack export`")
            err.print(f"imported {name}")
        platform.set_config(stacks.LAYOUT_KEY, auto.ConfigValue(stacks.LAYOUT))
    except auto.errors.CommandError as exc:
        fail(f"import failed: {' '.join(str(exc).split())[-300:]}")
