"""`sovcloud check [REGIONS]` and `sovcloud policy-config REGION`: the policy pack, offline and for the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from sovcloud import config
from sovcloud.commands.common import (
    DATE,
    EXIT_INVALID,
    EXIT_OK,
    atomic_write,
    changed_since_option,
    charts_option,
    err,
    error_line,
    exit_invalid,
    fail,
    format_option,
    load_or_exit,
    out,
    platform_only_option,
    program_refusal,
    project_root,
    region_or_fail,
    root_option,
    stack_selection,
    stacks_phrase,
    tenant_option,
)
from sovcloud.config.errors import ConfigInvalid


@click.command()
@click.argument("regions", nargs=-1)
@root_option
@format_option
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a JUnit XML report (a testsuite per region, a testcase per policy).")
@click.option("--sarif", "sarif_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a SARIF 2.1.0 report, for code scanning annotations on the pull request.")
@click.option("--date", "today", type=DATE, default=None,
              help="Judge allocation periods as of this date (default: today).")
@click.option("--jobs", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Regions synthesised at once, each in its own process.")
@charts_option
@click.option("--timeout", type=click.FloatRange(1, 86400), default=600, show_default=True,
              help="Seconds each region may take; one that takes longer is reported as failed.")
@tenant_option
@platform_only_option
@changed_since_option
def check(regions: tuple[str, ...], root: Path | None, fmt: str, junit_file: Path | None, sarif_file: Path | None,
          today: Any, jobs: int, charts: tuple[Path, ...], timeout: float, tenants: tuple[str, ...],
          platform_only: bool, changed_since: str | None) -> None:
    """Evaluate the policy pack offline on REGIONS (default: all).

    Synthesises each region (as `sovcloud synth` does, in its own process: the platform stack and a stack per
    tenant) and runs the pack's own policy objects over each stack, with arguments built as the Pulumi engine builds
    them; the rules that judge the region as a whole (capacity, shares, caps, MIG layouts, grants, the national
    budget, guardrails) get the rest of the region in each stack's policy config, summed from every tenant's config.
    --tenant and --changed-since narrow the stacks checked, never the configs judged. Prints violations grouped by
    policy with the resource, the config file and line behind it, and the remediation. Where the charts are found
    (--charts, or the region's registries.chartSources), each Helm release is rendered with Helm's own engine and
    what it would run is judged too: images, pinned operands, values the chart has, kinds the cluster serves,
    ConfigMaps the operator reads. Exit 1 on any mandatory violation; advisory ones are printed and do not fail.
    No cluster, credentials or Pulumi CLI needed.
    """
    from sovcloud.engine.check import check_regions

    tree = project_root(root)
    for report_file in (junit_file, sarif_file):
        if report_file is not None and not report_file.resolve().parent.is_dir():
            fail(f"cannot write {report_file}: no directory {report_file.resolve().parent}")
    try:
        cfg = config.load(tree)
    except ConfigInvalid as exc:
        # the reports still get written, with the config errors as their findings: CI's upload step and its
        # annotations then show what is wrong where
        _write_reports([], junit_file, sarif_file, exc.errors)
        exit_invalid(exc, fmt)
    selection = stack_selection(tree, cfg, list(regions), list(tenants), changed_since, platform_only)
    chosen = list(selection)
    day = today.isoformat() if today else None
    if not chosen:
        err.print(f"no stack's inputs changed since {changed_since}: nothing to check")
        _write_reports([], junit_file, sarif_file)
        if fmt == "json":
            click.echo(json.dumps({"passed": True, "regions": []}, indent=2))
        sys.exit(EXIT_OK)

    def progress(result: dict[str, Any]) -> None:
        rendered = ", releases rendered" if result["rendered"] else ""
        err.print(f"checked {result['region']} ({stacks_phrase(result['stacks'])}): {result['resources']} "
                  f"resources{rendered}, {len(result['violations'])} finding(s)")
        for note in result["notRendered"]:
            err.print(f"  note: {result['region']}: {note}")

    # every region in a fresh process of its own (the Pulumi SDK keeps global state), each with a deadline
    results, failed = check_regions([(str(tree), r) for r in chosen], day, [str(c) for c in charts], jobs, timeout,
                                    progress, selection, cfg)
    for line in failed.values():
        error_line(line)
    results.sort(key=lambda r: r["region"])
    violations = [v for r in results for v in r["violations"]]
    mandatory = [v for v in violations if v["enforcement"] == "mandatory"]
    _write_reports(results, junit_file, sarif_file)
    if fmt == "json":
        click.echo(json.dumps({"passed": not mandatory, "regions": results}, indent=2))
    else:
        _print_violations(results)
    sys.exit(EXIT_INVALID if mandatory or failed else EXIT_OK)


def _write_reports(results: list[dict[str, Any]], junit_file: Path | None, sarif_file: Path | None,
                   config_errors: Any = ()) -> None:
    from importlib.metadata import version

    from sovcloud.engine.reports import junit, sarif

    for flag, path, render in (("--junit", junit_file, lambda: junit(results, config_errors)),
                               ("--sarif", sarif_file, lambda: sarif(results, version("sovcloud"), config_errors))):
        if path is None:
            continue
        try:
            atomic_write(path, render())
        except OSError as exc:  # a full disk, /dev/full, a folder that cannot be written
            fail(f"{flag} {path}: cannot write ({exc.strerror or exc})")


def _print_violations(results: list[dict[str, Any]]) -> None:
    from policies.pack import policies

    by_policy: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        for v in r["violations"]:
            by_policy.setdefault(v["policy"], []).append(v)
    for policy in policies():
        found = by_policy.get(policy.name)
        if not found:
            continue
        level = found[0]["enforcement"]
        colour = "red" if level == "mandatory" else "yellow"
        out.print(f"[{colour}]{level.upper()}[/{colour}] [bold]{policy.name}[/bold] ({found[0]['severity']}): "
                  f"{policy.description}")
        for v in found:
            out.print(f"  {v['region']}: {v['resource']}: {v['message']}")
            out.print(f"    at {v['file']}:{v['line']}")
        out.print(f"  fix: {policy.remediation_steps}")
    table = Table(title="policy check", title_justify="left")
    # seconds: synthesis and judging together (the workers judge each stack as they synthesise it); policies s:
    # the judging alone, summed over the processes
    for col in ("region", "resources", "mandatory", "advisory", "seconds", "policies s"):
        table.add_column(col, justify="left" if col == "region" else "right")
    for r in results:
        m = sum(1 for v in r["violations"] if v["enforcement"] == "mandatory")
        table.add_row(r["region"], str(r["resources"]), str(m), str(len(r["violations"]) - m),
                      f"{r['seconds']:.2f}", f"{r['policySeconds']:.3f}")
    out.print(table)


@click.command("policy-config")
@click.argument("stack")
@root_option
@click.option("--date", "today", type=DATE, default=None,
              help="Judge allocation periods as of this date (default: today).")
@charts_option
def policy_config_command(stack: str, root: Path | None, today: Any, charts: tuple[Path, ...]) -> None:
    """Print STACK's policy pack config as JSON, for the Pulumi CLI. STACK is a region (its platform stack) or
    REGION.t.TENANT; a tenant stack's config carries the other tenants' sums and the platform resources its
    region-wide rules read (the platform synthesised offline):

    sovcloud policy-config ncc-haenam.t.orbit-lm > orbit-lm.policy.json && cd stacks &&
    pulumi preview -s ncc-haenam.t.orbit-lm --policy-pack ../policies --policy-pack-config ../orbit-lm.policy.json
    """
    from sovcloud import stacks
    from sovcloud.engine.deploy import stack_policy_configs
    from sovcloud.engine.synth import chart_folders

    tree = project_root(root)
    cfg = load_or_exit(tree)
    region, tenant = stacks.parse(stack)
    region_or_fail(cfg, region)
    if tenant is not None and tenant not in stacks.tenants_in(cfg, region):
        fail(f"no stack {stack}: tenant {tenant} has no allocation in {region}")
    with program_refusal(region):
        config = stack_policy_configs(tree, cfg, region, [stack], today,
                                      chart_folders(tree, cfg, region, list(charts)))[stack]
    click.echo(json.dumps(config, indent=2))
