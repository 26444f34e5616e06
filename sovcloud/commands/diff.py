"""The `sovcloud diff` command (the work is done in ``sovcloud.engine.diff``)."""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from sovcloud import config
from sovcloud.commands.common import (
    DATE,
    EXIT_INVALID,
    EXIT_OK,
    fail,
    out,
    project_root,
    root_option,
)
from sovcloud.config.errors import ConfigInvalid
from sovcloud.config.model import Config
from sovcloud.engine.diff import DiffError, _policy_results, blocking, compare, extract_at, render_markdown, render_text


@click.command()
@click.option("--against", "ref", required=True, help="Git ref to compare with (e.g. origin/main).")
@root_option
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True,
              help="markdown is meant to be pasted as a pull request comment.")
@click.option("--date", "today", type=DATE, default=None,
              help="Count allocations effective on this date (default: today).")
@click.option("--no-policies", is_flag=True, help="Skip the policy runs (about 2 s per region and side).")
def diff(ref: str, root: Path | None, fmt: str, today: Any, no_policies: bool) -> None:
    """What the working tree changes against REF: tenants added, removed and changed; GPU deltas per region and pool;
    policy results before and after. Exit 1 on a mandatory finding (a tenant removed without offboarding, a new
    mandatory violation, invalid config)."""
    tree = project_root(root)
    day = today or dt.date.today()
    with tempfile.TemporaryDirectory() as tmp:
        base_dir = Path(tmp)
        try:
            extract_at(tree, ref, base_dir)
        except DiffError as exc:
            fail(f"{exc}")
        cfgs: dict[str, Config | None] = {}
        errors: dict[str, list[str]] = {}
        for side, where in (("base", base_dir), ("head", tree)):
            try:
                cfgs[side] = config.load(where)
            except ConfigInvalid as exc:
                cfgs[side] = None
                errors[side] = [str(e) for e in exc.errors]
        result = compare(cfgs["base"], cfgs["head"], day)
        if errors.get("base"):
            result["baseErrors"] = errors["base"]
        if errors.get("head"):
            result["headErrors"] = errors["head"]
        if not no_policies:
            result["policies"] = _policy_results({"base": base_dir, "head": tree}, cfgs, day)
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
    elif fmt == "markdown":
        click.echo(render_markdown(result), nl=False)
    else:
        out.print(render_text(result), end="", markup=False)
    sys.exit(EXIT_INVALID if blocking(result) else EXIT_OK)
