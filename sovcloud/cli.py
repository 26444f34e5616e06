"""The ``sovcloud`` command line."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sovcloud import config
from sovcloud.errors import ConfigInvalid
from sovcloud.model import Config

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2

# Piped output (CI logs, files) gets a wide console so tables are not cut at 80 columns.
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "200"))
out = Console(highlight=False, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def error_line(message: str) -> None:
    """One error line on stderr; the message is user data, never rich markup."""
    err.print(f"[red]error:[/red] {escape(message)}")


def _root(value: Path | None) -> Path:
    """The project root: --root, or the nearest directory up from here with stacks/ or tenants/."""
    root = value if value is not None else config.find_root()
    if root is None or not (root / config.STACKS_DIR).is_dir():
        where = value or Path.cwd()
        raise click.UsageError(f"no {config.STACKS_DIR}/ directory at or above {where} "
                               "(run inside a sovcloud config tree, or pass --root DIR)")
    return root


def load_or_exit(root: Path, fmt: str = "text", **kwargs: Any) -> Config:
    """Load the config, or print every error (one line each) and exit 1."""
    try:
        return config.load(root, **kwargs)
    except ConfigInvalid as exc:
        if fmt == "json":
            click.echo(json.dumps({"valid": False, "errors": [e.as_dict() for e in exc.errors]}, indent=2))
        else:
            for e in exc.errors:
                click.echo(str(e))
            files = len({e.file for e in exc.errors})
            err.print(f"[red]{len(exc.errors)} error(s) in {files} file(s)[/red]")
        sys.exit(EXIT_INVALID)


class DateType(click.ParamType):
    """A YYYY-MM-DD date. A bad one is bad input, not a usage error: one line, exit 1."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            flag = param.opts[0] if param is not None and param.opts else "date"
            error_line(f"{flag}: {value!r} is not a date (YYYY-MM-DD)")
            raise click.exceptions.Exit(EXIT_INVALID) from None


DATE = DateType()

root_option = click.option(
    "--root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
    help="Config tree holding stacks/ and tenants/ (default: the nearest one at or above the current directory).")
format_option: Callable[[Any], Any] = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="text for people, json for tools.")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="sovcloud")
def main() -> None:
    """Infrastructure as code for a sovereign AI cloud.

    Region config lives in stacks/Pulumi.<region>.yaml (key sovcloud:region), tenants in tenants/*.yaml;
    both are described by the JSON Schemas in schemas/.
    """


@main.command()
@root_option
@format_option
def validate(root: Path | None, fmt: str) -> None:
    """Check every region and tenant file against the schemas and each other.

    Prints one line per problem (file:line: path: what is wrong (what is allowed)) and exits 1, or prints a
    summary of what was loaded and exits 0. Exit 2 is a usage error.
    """
    tree = _root(root)
    started = time.perf_counter()
    cfg = load_or_exit(tree, fmt)
    elapsed = time.perf_counter() - started
    regions = [
        {"name": r.name, "tier": r.tier, "certification": r.certification, "pools": len(r.pools),
         "nodes": sum(p.nodes for p in r.pools), "gpus": r.gpus,
         "tenants": len({t.name for t, _ in cfg.allocations_in(r.name)}),
         "guaranteedGpus": sum(a.gpus for _, a in cfg.allocations_in(r.name))}
        for r in sorted(cfg.regions.values(), key=lambda r: r.name)
    ]
    if fmt == "json":
        click.echo(json.dumps({"valid": True, "errors": [], "files": len(cfg.files), "regions": regions,
                               "tenants": len(cfg.tenants)}, indent=2))
        return
    table = Table(title=f"sovcloud config: {len(cfg.files)} files valid ({elapsed:.2f} s)", title_justify="left")
    for col in ("region", "tier", "CSAP", "pools", "nodes", "GPUs", "tenants", "guaranteed GPUs"):
        table.add_column(col, justify="right" if col in ("pools", "nodes", "GPUs", "tenants", "guaranteed GPUs")
                         else "left")
    for r in regions:
        table.add_row(r["name"], r["tier"], r["certification"], str(r["pools"]), f"{r['nodes']:,}",
                      f"{r['gpus']:,}", str(r["tenants"]), f"{r['guaranteedGpus']:,}")
    out.print(table)


@main.command()
@click.argument("region")
@root_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out"),
              show_default=True, help="Directory to write into; the region's files go to OUT/REGION, replaced whole.")
@format_option
@click.option("--date", "today", type=DATE, default=None,
              help="Judge allocation periods as of this date (default: today); expired allocations get zero quota.")
def synth(region: str, root: Path | None, out_dir: Path, fmt: str, today: Any) -> None:
    """Render REGION offline: run the stack program under the Pulumi SDK mock monitor and write what it declares.

    Writes one YAML file per Kubernetes object (management/ for Cluster API objects, cluster/ for cluster-scoped
    ones, namespaces/NS/ for the rest), helm/ with each Helm release's chart, repository, version and values,
    and plan.json (resource counts, GPU capacity per pool, guaranteed and borrowable GPUs per tenant). Same config,
    byte-identical output. No cluster, credentials or Pulumi CLI needed.
    """
    from sovcloud import synth as synthesis

    tree = _root(root)
    started = time.perf_counter()
    cfg = load_or_exit(tree, fmt)
    if region not in cfg.regions:
        raise click.BadParameter(f"no region {region} (one of: {', '.join(sorted(cfg.regions))})",
                                 param_hint="REGION")
    err.print(f"synthesising {region} ...")
    result = synthesis.run(tree, region, cfg, as_of=today)
    plan = synthesis.plan(result, cfg)
    try:
        target = synthesis.write(result, out_dir, plan)
    except OSError as exc:
        error_line(f"cannot write to {out_dir}: {exc.strerror or exc}")
        sys.exit(EXIT_INVALID)
    elapsed = time.perf_counter() - started
    if fmt == "json":
        click.echo(json.dumps({"region": region, "out": str(target), "seconds": round(elapsed, 3), "plan": plan},
                              indent=2))
        return
    _print_plan(plan)
    out.print(f"{plan['resources']['total']} resources, {len(result.kubernetes_objects())} manifests and "
              f"{len(result.helm_releases())} Helm releases written to {target} in {elapsed:.1f} s")


def _print_plan(plan: dict[str, Any]) -> None:
    pools = Table(title=f"{plan['displayName']} ({plan['region']}): GPU pools", title_justify="left")
    for col in ("pool", "model", "nodes", "GPUs", "backed", "guaranteed", "free"):
        pools.add_column(col, justify="left" if col in ("pool", "model") else "right")
    for name, p in plan["pools"].items():
        pools.add_row(name, p["gpuModel"], f"{p['nodes']:,}", f"{p['gpus']:,}", f"{p['backedGpus']:,}",
                      f"{p['guaranteed']:,}", f"{p['backedGpus'] - p['guaranteed']:,}")
    g = plan["gpus"]
    pools.add_section()
    pools.add_row("total", "", "", f"{g['capacity']:,}", f"{g['backed']:,}", f"{g['guaranteed']:,}",
                  f"{g['backed'] - g['guaranteed']:,}")
    out.print(pools)
    tenants = Table(title="tenants", title_justify="left")
    for col in ("tenant", "guaranteed GPUs", "borrowable GPUs", "MIG instances"):
        tenants.add_column(col, justify="left" if col in ("tenant", "MIG instances") else "right")
    for name, t in plan["tenants"].items():
        tenants.add_row(name, f"{t['guaranteed']:,}", f"{t['borrowable']:,}",
                        ", ".join(f"{p} x{n}" for p, n in t["mig"].items()))
    out.print(tenants)


@main.command()
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
def check(regions: tuple[str, ...], root: Path | None, fmt: str, junit_file: Path | None, sarif_file: Path | None,
          today: Any, jobs: int) -> None:
    """Evaluate the policy pack offline on REGIONS (default: all).

    Synthesises each region (as `sovcloud synth` does, in its own process) and runs the pack's own policy objects
    over it, with arguments built as the Pulumi engine builds them. Prints violations grouped by policy with the
    resource, the config file and line behind it, and the remediation. Exit 1 on any mandatory violation; advisory
    ones are printed and do not fail. No cluster, credentials or Pulumi CLI needed.
    """
    import concurrent.futures
    import multiprocessing

    from sovcloud.check import check_region

    tree = _root(root)
    cfg = load_or_exit(tree, fmt)
    unknown = [r for r in regions if r not in cfg.regions]
    if unknown:
        raise click.BadParameter(f"no region {', '.join(unknown)} (one of: {', '.join(sorted(cfg.regions))})",
                                 param_hint="REGIONS")
    chosen = list(regions) or sorted(cfg.regions)
    for report_file in (junit_file, sarif_file):
        if report_file is not None and not report_file.resolve().parent.is_dir():
            error_line(f"cannot write {report_file}: no directory {report_file.resolve().parent}")
            sys.exit(EXIT_INVALID)
    day = today.isoformat() if today else None
    results: list[dict[str, Any]] = []
    # the Pulumi SDK keeps global state: every region gets a fresh process (spawned, not forked)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(jobs, len(chosen)), mp_context=context) as pool:
        futures = {pool.submit(check_region, str(tree), r, day): r for r in chosen}
        for future in concurrent.futures.as_completed(futures):
            result = future.result()
            err.print(f"checked {result['region']}: {result['resources']} resources, "
                      f"{len(result['violations'])} finding(s)")
            results.append(result)
    results.sort(key=lambda r: r["region"])
    violations = [v for r in results for v in r["violations"]]
    mandatory = [v for v in violations if v["enforcement"] == "mandatory"]
    if junit_file:
        from sovcloud.reports import junit
        junit_file.write_text(junit(results), encoding="utf-8")
    if sarif_file:
        from importlib.metadata import version

        from sovcloud.reports import sarif
        sarif_file.write_text(sarif(results, version("sovcloud")), encoding="utf-8")
    if fmt == "json":
        click.echo(json.dumps({"passed": not mandatory, "regions": results}, indent=2))
    else:
        _print_violations(results)
    sys.exit(EXIT_INVALID if mandatory else EXIT_OK)


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
    for col in ("region", "resources", "mandatory", "advisory", "synth s", "policies s"):
        table.add_column(col, justify="left" if col == "region" else "right")
    for r in results:
        m = sum(1 for v in r["violations"] if v["enforcement"] == "mandatory")
        table.add_row(r["region"], str(r["resources"]), str(m), str(len(r["violations"]) - m),
                      f"{r['synthSeconds']:.2f}", f"{r['policySeconds']:.3f}")
    out.print(table)


@main.command("policy-config")
@click.argument("region")
@root_option
@click.option("--date", "today", type=DATE, default=None,
              help="Judge allocation periods as of this date (default: today).")
def policy_config_command(region: str, root: Path | None, today: Any) -> None:
    """Print REGION's policy pack config as JSON, for the Pulumi CLI:

    sovcloud policy-config ncc-haenam > ncc-haenam.policy.json &&
    cd stacks && pulumi preview -s ncc-haenam --policy-pack ../policies --policy-pack-config ../ncc-haenam.policy.json
    """
    from sovcloud.policy_config import policy_config

    cfg = load_or_exit(_root(root))
    if region not in cfg.regions:
        raise click.BadParameter(f"no region {region} (one of: {', '.join(sorted(cfg.regions))})",
                                 param_hint="REGION")
    click.echo(json.dumps(policy_config(cfg, region, today), indent=2))


if __name__ == "__main__":
    main()


def _register_subcommands() -> None:
    from sovcloud import deploy, diff, report, status, tenant_cmds  # noqa: F401 (they register their commands)


_register_subcommands()
