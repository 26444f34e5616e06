"""`sovcloud tenant ...`: onboarding, listing, renewal and offboarding of tenants, one reviewed file each.

Every write is checked first (schema, cross-file rules, and the region's capacity, shares and caps) and atomic
(a temporary file renamed into place), so a refused or failed command leaves the tree as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import yaml
from rich.table import Table

from sovcloud import config
from sovcloud.commands.common import (
    DATE,
    EXIT_USAGE,
    atomic_write,
    error_line,
    fail,
    load_or_exit,
    out,
    project_root,
    region_or_fail,
    root_option,
)
from sovcloud.config.errors import ConfigInvalid
from sovcloud.config.model import Config, Tenant
from sovcloud.engine import capacity

TENANT_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
HEADER = "# Tenant file (schema: schemas/tenant.schema.json), reviewed in a pull request before it reaches a cluster.\n"


def _check_dates(cfg: Config, tenant: Tenant, today: dt.date) -> list[dt.date]:
    """The dates at which usage can rise inside the tenant's periods: its starts and other allocations' starts,
    none before today (the past cannot be refused)."""
    dates = {a.start for a in tenant.allocations}
    for other in cfg.tenants.values():
        for a in other.allocations:
            if any(mine.start <= a.start <= mine.end for mine in tenant.allocations):
                dates.add(a.start)
    ends = max(a.end for a in tenant.allocations)
    return sorted({max(d, today) for d in dates if d <= ends})


def _new_problems(before: Config | None, after: Config, dates: list[dt.date],
                  regions: set[str]) -> list[tuple[str, dt.date]]:
    """Each rule the change breaks, once, with the first date it breaks on."""
    found: dict[str, dt.date] = {}
    for day in dates:
        old = set(capacity.problems(before, day, regions)) if before else set()
        for p in capacity.problems(after, day, regions):
            if p not in old and p not in found:
                found[p] = day
    return list(found.items())


def _free_table(cfg: Config, regions: set[str], day: dt.date) -> Table:
    table = Table(title=f"free GPUs on {day}", title_justify="left")
    for col in ("region", "pool", "model", "GPUs", "guaranteed", "free"):
        table.add_column(col, justify="right" if col in ("GPUs", "guaranteed", "free") else "left")
    for use in capacity.pool_usage(cfg, day, regions):
        if use.region in regions:
            table.add_row(use.region, use.pool, use.gpu_model, f"{use.capacity:,}", f"{use.guaranteed:,}",
                          f"{use.free:,}")
    return table


def _would_fit(before: Config, tenant: Tenant, day: dt.date) -> list[str]:
    """Per allocation, the most GPUs the region could still guarantee to this tenant on ``day``."""
    lines = []
    usage = {(u.region, u.pool): u for u in capacity.pool_usage(before, day, {a.region for a in tenant.allocations})}
    for a in tenant.allocations:
        region = before.regions[a.region]
        limits = [usage[a.region, a.pool].free]
        rules = region.allocation
        sector_used = capacity.by_sector(before, a.region, day)[tenant.sector]
        limits.append(capacity.sector_room(region, tenant.sector) - sector_used)
        if tenant.sector in rules.per_sector_gpu_cap:
            limits.append(rules.per_sector_gpu_cap[tenant.sector] - sector_used)
        if rules.per_tenant_gpu_cap is not None:
            limits.append(rules.per_tenant_gpu_cap - capacity.by_tenant(before, a.region, day).get(tenant.name, 0))
        use = usage[a.region, a.pool]
        if a.mig:  # a MIG request: what the pool's layout still makes, per profile
            for profile, asked in sorted(a.mig.items()):
                room = max(0, use.mig_capacity.get(profile, 0) - use.mig_guaranteed.get(profile, 0))
                lines.append(f"{a.region}/{a.pool}: up to {room:,} {profile} instances would fit (asked {asked:,})")
        if a.gpus or not a.mig:
            lines.append(f"{a.region}/{a.pool}: up to {max(0, min(limits)):g} GPUs would fit (asked {a.gpus:,})")
    return lines


def write_checked(root: Path, name: str, text: str | Callable[[Config], str], *, replace: bool,
                  dry_run: bool = False) -> Config:
    """Check the tree with ``tenants/<name>.yaml`` holding ``text``, then write it (not with ``dry_run``); refuse
    with reasons otherwise. The checks are the policy pack's rules (classification, organisation, capacity, MIG,
    shares, caps, grants, the national budget), run on the config before anything is written, under a lock on the
    config tree: two onboardings at once are checked one after the other, each against the other's file. ``text``
    may be made from the config without the file (under the lock, e.g. to take a free fabric segment)."""
    with tree_lock(root):
        return _write_checked(root, name, text, replace=replace, dry_run=dry_run)


@contextlib.contextmanager
def tree_lock(root: Path) -> Iterator[None]:
    """An exclusive lock on the config tree (``.sovcloud.lock`` at its root) for every command that writes it."""
    import fcntl

    try:
        handle = (root / ".sovcloud.lock").open("a")
    except OSError as exc:
        fail(f"cannot lock the config tree ({root / '.sovcloud.lock'}: {exc.strerror or exc}); tenant changes are "
             "written under that lock, so the tree must be writable")
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_checked(root: Path, name: str, text: str | Callable[[Config], str], *, replace: bool,
                   dry_run: bool) -> Config:
    target = root / config.TENANTS_DIR / f"{name}.yaml"
    others = [p for p in config.tenant_files(root) if p.resolve() != target.resolve()]
    try:
        before = config.load(root, tenant_paths=others)
    except ConfigInvalid as exc:
        fail(f"the existing config is invalid; fix it first (sovcloud validate): {exc.errors[0]}")
    if callable(text):
        text = text(before)
    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / "candidate.yaml"  # never a user-chosen path
        candidate.write_text(text, encoding="utf-8")
        try:
            after = config.load(root, tenant_paths=[*others, candidate])
        except ConfigInvalid as exc:
            for e in exc.errors:
                click.echo(str(e).replace(str(candidate), f"tenants/{name}.yaml"))
            fail(f"tenants/{name}.yaml refused: {len(exc.errors)} error(s), nothing written")
    tenant = after.tenants[name]
    dates = _check_dates(after, tenant, dt.date.today())
    refused = _new_problems(before, after, dates, {a.region for a in tenant.allocations})
    if refused:
        for p, first in refused:
            click.echo(f"refused: {p} (from {first})")
        day = min(first for _, first in refused)  # what fits on the first day it would break
        out.print(_free_table(before, {a.region for a in tenant.allocations}, day))
        for line in _would_fit(before, tenant, day):
            click.echo(line)
        fail(f"tenants/{name}.yaml refused: the region's rules would break; nothing written")
    if target.exists() and not replace:
        fail(f"tenants/{name}.yaml exists; pass --force to replace it")
    if dry_run:
        out.print(f"dry run: tenants/{name}.yaml passes every check; nothing written")
        sys.exit(0)
    atomic_write(target, text)
    return after


# ---------------------------------------------------------------------------------------------------- commands

@click.group()
def tenant() -> None:
    """Onboard, list, renew and offboard tenants (files in tenants/)."""


def _parse_contact(value: str) -> dict[str, str]:
    """``"Kim Minji <minji@example.kr>:technical"``."""
    try:
        person, role = value.rsplit(":", 1)
        name, email = person.rsplit("<", 1)
        return {"name": name.strip(), "email": email.rstrip("> ").strip(), "role": role.strip()}
    except ValueError:
        raise click.BadParameter(f"{value!r}: write contacts as 'Name <email>:role'", param_hint="--contact") from None


REQUIRED = "[required unless --from]"


@tenant.command("add")
@root_option
@click.option("--from", "from_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Take the whole tenant from this YAML file (same shape as tenants/*.yaml).")
@click.option("--name", help=f"Tenant name (namespace): DNS-1123 label, at most 40 characters. {REQUIRED}")
@click.option("--display-name", help=f"Name shown in reports. {REQUIRED}")
@click.option("--org-name", help=f"Organisation's registered name. {REQUIRED}")
@click.option("--org-type", type=click.Choice(["university", "research-institute", "public-agency",
                                                "public-enterprise", "startup", "company"]), help=REQUIRED)
@click.option("--registration-id", help=f"Business registration number or public body code. {REQUIRED}")
@click.option("--country", default="KR", show_default=True, help="Country of registration (ISO 3166 alpha-2).")
@click.option("--sector", type=click.Choice(["research", "public", "startup", "industry"]), help=REQUIRED)
@click.option("--classification", type=click.Choice(["low", "moderate", "high"]),
              help=f"CSAP classification of its data. {REQUIRED}")
@click.option("--admin-group", "admin_groups", multiple=True,
              help=f"OIDC group bound to the admin role (repeat). {REQUIRED}")
@click.option("--contact", "contacts", multiple=True, help="'Name <email>:role' (repeat); role: technical, "
              f"administrative, security or billing. {REQUIRED}")
@click.option("--region", help=f"Region of the allocation. {REQUIRED}")
@click.option("--pool", help=f"Pool of the allocation. {REQUIRED}")
@click.option("--gpus", type=int, help=f"Whole GPUs guaranteed. {REQUIRED}")
@click.option("--borrowing-limit", type=int, default=0, show_default=True, help="GPUs it may borrow on top.")
@click.option("--cpu", help=f"CPU quota, e.g. 512. {REQUIRED}")
@click.option("--memory", help=f"Memory quota, e.g. 4Ti. {REQUIRED}")
@click.option("--storage", help=f"Storage quota, e.g. 50Ti. {REQUIRED}")
@click.option("--priority", type=click.Choice(["low", "normal", "high"]), default="normal", show_default=True)
@click.option("--start", type=DATE, help=f"First day of the allocation. {REQUIRED}")
@click.option("--end", type=DATE, help=f"Last day of the allocation. {REQUIRED}")
@click.option("--force", is_flag=True, help="Replace an existing tenant file of the same name.")
@click.option("--dry-run", is_flag=True, help="Run every check and say what would be written; write nothing.")
def tenant_add(root: Path | None, from_file: Path | None, force: bool, dry_run: bool, **f: Any) -> None:
    """Onboard a tenant: write tenants/NAME.yaml once the schema and the region's rules accept it.

    The flags describe one allocation of whole GPUs; for MIG instances or several allocations, write the file
    (same shape as tenants/*.yaml) and pass --from FILE.

    Refused: says why, shows the free GPUs per pool and what would fit, writes nothing. The file is written
    atomically; an existing tenant is never replaced without --force.
    """
    tree = project_root(root)
    if from_file is not None:
        from sovcloud.config import yamlsafe

        doc, errs = yamlsafe.load(from_file)
        if doc is None:
            fail(str(errs[0]))
        name = doc.data.get("name")
        if not isinstance(name, str) or not TENANT_NAME.fullmatch(name):
            fail(f"{from_file}: name {name!r} is not a tenant name (a DNS-1123 label: lowercase letters, digits, '-')")
        text = from_file.read_bytes().decode("utf-8")
    else:
        needed = ["name", "display_name", "org_name", "org_type", "registration_id", "sector", "classification",
                  "region", "pool", "gpus", "cpu", "memory", "storage", "start", "end"]
        missing = [f"--{k.replace('_', '-')}" for k in needed if f.get(k) in (None, "")]
        if f.get("name") and not TENANT_NAME.fullmatch(f["name"]):
            error_line(f"--name {f['name']!r} is not a tenant name (a DNS-1123 label: lowercase letters, digits, "
                       "'-')")
            sys.exit(EXIT_USAGE)
        if not f["admin_groups"]:
            missing.append("--admin-group")
        if not f["contacts"]:
            missing.append("--contact")
        if missing:
            raise click.UsageError(f"missing {', '.join(missing)} (or give --from FILE)")
        name = f["name"]
        data = {
            "name": name, "displayName": f["display_name"],
            "organisation": {"name": f["org_name"], "type": f["org_type"], "registrationId": f["registration_id"],
                             "country": f["country"]},
            "sector": f["sector"], "classification": f["classification"],
            "adminGroups": list(f["admin_groups"]), "contacts": [_parse_contact(c) for c in f["contacts"]],
            "allocations": [{"region": f["region"], "pool": f["pool"], "gpus": f["gpus"],
                             "borrowingLimit": f["borrowing_limit"], "cpu": f["cpu"], "memory": f["memory"],
                             "storage": f["storage"], "priority": f["priority"],
                             "period": {"start": f["start"].isoformat(), "end": f["end"].isoformat()}}],
        }
        text = _with_free_segment(data, f["region"], f["pool"])
    write_checked(tree, name, text, replace=force, dry_run=dry_run)
    out.print(f"tenants/{name}.yaml written; review it in a pull request (sovcloud diff shows what it changes)")


def _with_free_segment(data: dict[str, Any], region: str, pool: str | None) -> Callable[[Config], str]:
    """The tenant file, made from the config the write checks it against (under the tree's lock): where
    ``region``'s ``pool`` has a fabric, with the lowest fabric segment no tenant has (its partition key and VLAN)."""

    def make(cfg: Config) -> str:
        r = cfg.regions.get(region)
        p = r.pool(pool) if r is not None and pool else None
        out_data = data
        if p is not None and p in r.fabric_pools:  # type: ignore[union-attr]
            used = {t.fabric_segment for t in cfg.tenants.values()}
            segment = next(n for n in range(2, 4095) if n not in used)
            out_data = {k: v for k, v in data.items() if k != "allocations"} | {
                "fabric": {"segment": segment}, "allocations": data["allocations"]}
        return HEADER + yaml.safe_dump(out_data, sort_keys=False, allow_unicode=True)

    return make


@tenant.command("list")
@root_option
@click.option("-o", "--format", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table",
              show_default=True, help="table for people; json or yaml for tools.")
@click.option("--region", "regions", multiple=True, help="Only allocations in this region (repeatable).")
@click.option("--sector", "sectors", multiple=True, type=click.Choice(["research", "public", "startup", "industry"]),
              help="Only tenants of this sector (repeatable).")
@click.option("--date", "today", type=DATE, default=None,
              help="Judge status as of this date (default: today).")
def tenant_list(root: Path | None, fmt: str, regions: tuple[str, ...], sectors: tuple[str, ...],
                today: Any) -> None:
    """Every tenant allocation: organisation, sector, classification, region, pool, GPUs, MIG instances, period
    and status."""
    cfg = load_or_exit(project_root(root), "json" if fmt != "table" else "text")
    for r in regions:
        region_or_fail(cfg, r, "--region")
    day = today or dt.date.today()
    rows = [{"tenant": t.name, "organisation": t.organisation.name, "sector": t.sector,
             "classification": t.classification, "region": a.region, "pool": a.pool, "guaranteed": a.gpus,
             "borrowable": a.borrowing_limit, "mig": dict(a.mig), "start": a.start.isoformat(),
             "end": a.end.isoformat(), "status": t.state(day, (a,))}
            for t in sorted(cfg.tenants.values(), key=lambda t: t.name) for a in t.allocations
            if (not regions or a.region in regions) and (not sectors or t.sector in sectors)]
    if fmt == "json":
        click.echo(json_dump(rows))
        return
    if fmt == "yaml":
        click.echo(yaml.safe_dump(rows, sort_keys=False, allow_unicode=True), nl=False)
        return
    table = Table(title=f"tenants on {day}", title_justify="left")
    for col in ("tenant", "sector", "classification", "region", "pool", "guaranteed", "borrowable", "period",
                "status"):
        table.add_column(col, justify="right" if col in ("guaranteed", "borrowable") else "left")
    for r in rows:
        mig = ", ".join(f"{n} x {p}" for p, n in r["mig"].items())
        table.add_row(r["tenant"], r["sector"], r["classification"], r["region"], r["pool"],
                      f"{r['guaranteed']:,}" + (f" + {mig}" if mig else ""), f"{r['borrowable']:,}",
                      f"{r['start']} .. {r['end']}", r["status"])
    out.print(table)


def json_dump(data: Any) -> str:
    import json

    return json.dumps(data, indent=2)


def _tenant_or_fail(cfg: Config, name: str) -> Tenant:
    t = cfg.tenants.get(name)
    if t is None:
        fail(f"no tenant {name} (sovcloud tenant list shows them)")
    return t


@tenant.command("show")
@click.argument("name")
@root_option
@click.option("--date", "today", type=DATE, default=None, help="Judge the status on this date (default: today).")
@click.option("-o", "--format", "fmt", type=click.Choice(["file", "json", "yaml"]), default="file", show_default=True,
              help="file: the tenant file as written; json or yaml: its data with the status per region.")
def tenant_show(name: str, root: Path | None, today: Any, fmt: str) -> None:
    """Print a tenant's file and its status on a date (per region: active, pending, expired or offboarding)."""
    from sovcloud.config import yamlsafe

    tree = project_root(root)
    t = _tenant_or_fail(load_or_exit(tree, "json" if fmt != "file" else "text"), name)
    day = today or dt.date.today()
    by_region: dict[str, list[Any]] = {}
    for a in t.allocations:
        by_region.setdefault(a.region, []).append(a)
    if fmt != "file":
        doc, _ = yamlsafe.load(tree / t.origin.file, t.origin.file)
        data = {"file": t.origin.file, "date": day.isoformat(), "status": t.state(day),
                "statusByRegion": {r: t.state(day, tuple(allocs)) for r, allocs in sorted(by_region.items())},
                "tenant": doc.data if doc is not None else None}
        click.echo(json_dump(data) if fmt == "json" else yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
                   nl=fmt == "json")
        return
    states = ", ".join(f"{r} {t.state(day, tuple(allocs))}" for r, allocs in sorted(by_region.items()))
    click.echo(f"# {t.origin.file}, status on {day}: {t.state(day)} ({states})")
    click.echo((tree / t.origin.file).read_text(encoding="utf-8"), nl=False)


def _edit_lines(tree: Path, t: Tenant, edits: dict[int, str], insert_after: dict[int, str]) -> str:
    """The tenant file with whole lines replaced (1-based) and lines inserted: comments and layout survive."""
    lines = (tree / t.origin.file).read_text(encoding="utf-8").splitlines(keepends=True)
    for n, text in edits.items():
        lines[n - 1] = text
    for n, text in sorted(insert_after.items(), reverse=True):
        lines.insert(n, text)
    return "".join(lines)


@tenant.command("renew")
@click.argument("name")
@click.option("--until", "until", type=DATE, required=True,
              help="New last day of the allocation(s).")
@click.option("--region", help="Only the allocations in this region.")
@click.option("--pool", help="Only the allocation in this pool.")
@click.option("--dry-run", is_flag=True, help="Run every check and say what would be written; write nothing.")
@root_option
def tenant_renew(name: str, until: Any, region: str | None, pool: str | None, dry_run: bool, root: Path | None
                 ) -> None:
    """Extend a tenant's allocations to a new end date (checked against capacity like an onboarding)."""
    from sovcloud.config import yamlsafe

    tree = project_root(root)
    t = _tenant_or_fail(load_or_exit(tree), name)
    if t.status == "offboarding":
        fail(f"tenant {name} is offboarding: renewing would not give it quota back (set status: active in a reviewed "
             "change first, if the offboarding is called off)")
    doc, errs = yamlsafe.load(tree / t.origin.file, t.origin.file)
    if doc is None:
        fail(str(errs[0]))
    end = until.isoformat()
    edits = {}
    for i, a in enumerate(t.allocations):
        if (region and a.region != region) or (pool and a.pool != pool):
            continue
        line = doc.line_of(("allocations", i, "period", "end"))
        old = (tree / t.origin.file).read_text(encoding="utf-8").splitlines(keepends=True)[line - 1]
        indent = old[: len(old) - len(old.lstrip())]
        edits[line] = f"{indent}end: {end}\n"
    if not edits:
        fail(f"tenant {name} has no allocation matching --region {region or '*'} --pool {pool or '*'}")
    write_checked(tree, name, _edit_lines(tree, t, edits, {}), replace=True, dry_run=dry_run)
    out.print(f"tenants/{name}.yaml: {len(edits)} allocation(s) now end on {end}")


@tenant.command("offboard")
@click.argument("name")
@root_option
@click.option("--date", "today", type=DATE, default=None,
              help="The day offboarding begins (default: today); written as offboardingSince.")
@click.option("--dry-run", is_flag=True, help="Run every check and say what would be written; write nothing.")
def tenant_offboard(name: str, root: Path | None, today: Any, dry_run: bool) -> None:
    """Mark a tenant offboarding from today: GPU quota drops to zero and its queues stop admitting new work;
    running work may finish during the region's allocation.drainAfterDays, then it is evicted. Its namespace,
    volumes and data are kept. Remove the file only after this has been applied."""
    from sovcloud.config import yamlsafe

    tree = project_root(root)
    t = _tenant_or_fail(load_or_exit(tree), name)
    if t.status == "offboarding":
        since = f" since {t.offboarding_since}" if t.offboarding_since else ""
        out.print(f"tenants/{name}.yaml: already offboarding{since}; nothing to do")
        return
    doc, errs = yamlsafe.load(tree / t.origin.file, t.origin.file)
    if doc is None:
        fail(str(errs[0]))
    day = (today or dt.date.today()).isoformat()
    lines = f"status: offboarding\noffboardingSince: {day}\n"
    if "status" in doc.data:
        text = _edit_lines(tree, t, {doc.line_of(("status",)): lines}, {})
    else:
        text = _edit_lines(tree, t, {}, {doc.line_of(("name",)): lines})
    write_checked(tree, name, text, replace=True, dry_run=dry_run)
    out.print(f"tenants/{name}.yaml: status offboarding since {day} (quota to zero, queue held, running work "
              "drained after the region's grace, namespace and data kept)")
