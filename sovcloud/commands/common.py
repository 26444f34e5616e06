"""What every command shares: the consoles, exit codes, one-line errors, the project root, config loading and the
common options. Commands import this module; nothing in the core imports a command."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape

from sovcloud import stacks
from sovcloud.config import STACKS_DIR, TENANTS_DIR, loader
from sovcloud.config.errors import ConfigInvalid, one_line
from sovcloud.config.model import Config

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2

# Piped output (CI logs, files) gets a wide console so tables are not cut at 80 columns.
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "200"))
out = Console(highlight=False, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def error_line(message: str) -> None:
    """One error line on stderr; the message is user data, never rich markup, and its control characters are
    escaped (an escape sequence in a name cannot forge or hide a line of a CI log)."""
    err.print(f"[red]error:[/red] {escape(one_line(message))}")


def fail(message: str) -> NoReturn:
    """One clear error line, exit 1 (nothing was written)."""
    error_line(message)
    sys.exit(EXIT_INVALID)


def project_root(value: Path | None) -> Path:
    """The project root: --root, or the nearest directory up from here with stacks/ or tenants/."""
    root = value if value is not None else loader.find_root()
    if root is None or not (root / loader.STACKS_DIR).is_dir():
        where = value or Path.cwd()
        raise click.UsageError(f"no {loader.STACKS_DIR}/ directory at or above {where} "
                               "(run inside a sovcloud config tree, or pass --root DIR)")
    return root


def load_or_exit(root: Path, fmt: str = "text", **kwargs: Any) -> Config:
    """Load the config, or print every error (one line each) and exit 1."""
    try:
        return loader.load(root, **kwargs)
    except ConfigInvalid as exc:
        exit_invalid(exc, fmt)


def exit_invalid(exc: ConfigInvalid, fmt: str = "text") -> NoReturn:
    """Print every config error (one line each, or JSON) and exit 1."""
    if fmt == "json":
        click.echo(json.dumps({"valid": False, "errors": [e.as_dict() for e in exc.errors]}, indent=2))
    else:
        for e in exc.errors:
            click.echo(str(e))
        files = len({e.file for e in exc.errors})
        err.print(f"[red]{len(exc.errors)} error(s) in {files} file(s)[/red]")
    sys.exit(EXIT_INVALID)


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class DateType(click.ParamType):
    """A YYYY-MM-DD date. A bad one is a usage error like any other bad flag: one line, exit 2."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            # fromisoformat also reads 20261201 and 2026-W49-2; only the one spelling is a date here
            if not _ISO_DATE.fullmatch(str(value)):
                raise ValueError(value)
            return dt.date.fromisoformat(str(value))
        except ValueError:
            flag = param.opts[0] if param is not None and param.opts else "date"
            error_line(f"{flag}: {value!r} is not a date (YYYY-MM-DD)")
            raise click.exceptions.Exit(EXIT_USAGE) from None


DATE = DateType()

root_option = click.option(
    "--root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
    help="Config tree holding stacks/ and tenants/ (default: the nearest one at or above the current directory).")
charts_option: Callable[[Any], Any] = click.option(
    "--charts", "charts", multiple=True, envvar="SOVCLOUD_CHARTS",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of chart sources or .tgz packages to render the Helm releases from (repeatable; default: the "
    "region's registries.chartSources). A release whose chart is not there is named and left unrendered.")
format_option: Callable[[Any], Any] = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="text for people, json for tools.")


def region_or_fail(cfg: Config, region: str, hint: str = "REGION") -> None:
    """A usage error naming the regions there are, when ``region`` is not one of them."""
    if region not in cfg.regions:
        raise click.BadParameter(f"no region {region} (one of: {', '.join(sorted(cfg.regions))})", param_hint=hint)


def deliver(text: str, out_file: Path | None, what: str) -> bool:
    """Write ``text`` to ``out_file`` (atomically; one error line if it cannot be written) or, with no file and some
    text, to the terminal; False when there was nothing to deliver (the caller prints its table)."""
    if out_file is not None:
        try:
            atomic_write(out_file, text)
        except OSError as exc:
            fail(f"cannot write {out_file}: {exc.strerror or exc}")
        out.print(f"{what} written to {out_file}")
        return True
    if text:
        click.echo(text, nl=False)
        return True
    return False


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename. A target that is
    not a regular file (a device such as /dev/stdout, a FIFO) or is a symlink is written through, never replaced;
    a regular file keeps its mode."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        with path.open("w", encoding="utf-8") as f:
            f.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600: give it the target's mode, or the mode any new file gets (0666 under the
        # umask), so the tenant files and reports stay readable to the team and the CI that reads the tree
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def refuse_output_in_config(out: Path, root: Path, flag: str) -> None:
    """An output inside stacks/ or tenants/ would become config (a report as a tenant file breaks validate): one
    line, exit 2."""
    target = out.resolve()
    for d in (loader.STACKS_DIR, loader.TENANTS_DIR):
        config_dir = (root / d).resolve()
        if target == config_dir or config_dir in target.parents:
            error_line(f"{flag} {out}: inside the config directory {d}/ (write outputs elsewhere, e.g. out/)")
            sys.exit(EXIT_USAGE)


@contextlib.contextmanager
def program_refusal(region: str) -> Iterator[None]:
    """The stack program's refusal (``pulumi.RunError``: its config, a region not marked split) run offline, as one
    line naming the region; exit 1."""
    from pulumi import RunError

    try:
        yield
    except RunError as exc:
        fail(f"{region}: the stack program refused: {' '.join(str(exc).split())}")


# ------------------------------------------------------------------------------------------ a region's stacks
# A region is its platform stack and one stack per tenant with an allocation there (sovcloud.stacks). Without
# --tenant, --platform-only or --changed-since a command takes every stack of each region it is given.

tenant_option = click.option(
    "--tenant", "tenants", multiple=True, metavar="NAME",
    help="Only this tenant's stacks (REGION.t.NAME), in each given region where it has an allocation; repeatable. "
    "The region's sums (capacity, shares, MIG layouts, the national budget) still count every tenant's config.")
platform_only_option = click.option(
    "--platform-only", is_flag=True, default=False,
    help="Only the platform stack of each region (pools, GPU operator, Kueue, cohort, guardrails, fabric).")
changed_since_option = click.option(
    "--changed-since", "changed_since", metavar="REF", default=None,
    help="Only the stacks whose inputs changed since this git revision (committed, staged, unstaged and new "
    "files): a tenant file is its stacks and the platform stacks of the regions it has or had an allocation in "
    "(the cohort lends what no tenant holds), a region's stack file the whole region, any other file (program, "
    "components, pack) every stack.")


def stacks_phrase(names: list[str]) -> str:
    """``platform + 3 tenant stacks``."""
    tenants = sum(1 for n in names if stacks.parse(n)[1] is not None)
    parts = (["platform"] if len(names) > tenants else []) + (
        [f"{tenants} tenant stack{'s' if tenants != 1 else ''}"] if tenants else [])
    return " + ".join(parts) or "no stack"


def _git(tree: Path, ref: str, *args: str, must: bool = True) -> str | None:
    """git's output for ``--changed-since REF`` (None where it refused and ``must`` is false); git that cannot run,
    or refuses where it must not, is one line and exit 1."""
    try:
        done = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        fail(f"--changed-since {ref}: git cannot run ({exc})")
    if done.returncode != 0:
        if not must:
            return None
        last = (done.stderr.strip().splitlines() or ["git failed"])[-1]
        fail(f"--changed-since {ref}: {last} (give a revision of the config tree's repository)")
    return done.stdout


def changed_files(tree: Path, ref: str) -> list[tuple[str, Path]]:
    """The files changed since ``ref`` (to the working tree, untracked ones included): each as git names it (from
    the repository's top) and as an absolute path."""
    top = Path(str(_git(tree, ref, "rev-parse", "--show-toplevel")).strip())
    # paths from the repository's top, NUL-separated (names as they are), a renamed file under its old name too
    names = str(_git(tree, ref, "diff", "--name-only", "--no-renames", "-z", ref, "--")).split("\0")
    names += str(_git(tree, ref, "ls-files", "--others", "--exclude-standard", "--full-name", "-z")).split("\0")
    return [(n, (top / n).resolve()) for n in names if n]


def _regions_at(tree: Path, ref: str, name: str) -> set[str]:
    """The regions a tenant file (``name``: from the repository's top) had allocations in at ``ref`` (none where it
    did not exist or does not parse)."""
    import yaml

    text = _git(tree, ref, "show", f"{ref}:{name}", must=False)
    try:
        data = yaml.safe_load(text) if text is not None else None
    except yaml.YAMLError:
        return set()
    allocations = data.get("allocations") if isinstance(data, dict) else None
    return {str(a.get("region")) for a in allocations or [] if isinstance(a, dict) and a.get("region")}


def _changed(tree: Path, ref: str) -> tuple[bool, set[str], set[str], set[str]]:
    """(every stack changed, regions whose stack file changed, tenants whose file changed, regions a changed tenant
    file had allocations in at ``ref``) since ``ref``."""
    whole: set[str] = set()
    tenants: set[str] = set()
    before: set[str] = set()
    root = tree.resolve()
    stacks_dir, tenants_dir, out_dir = root / STACKS_DIR, root / TENANTS_DIR, root / "out"
    for name, path in changed_files(tree, ref):
        if root not in path.parents or out_dir in path.parents or path.suffix == ".md":
            continue  # outside the config tree, synth's output, documentation
        if path.parent == stacks_dir and path.name.startswith("Pulumi.") and path.name != "Pulumi.yaml" \
                and path.suffix == ".yaml":
            region, tenant = stacks.parse(path.name.removeprefix("Pulumi.").removesuffix(".yaml"))
            if tenant is None:
                whole.add(region)
            else:  # a tenant stack's own config (its kubeconfig)
                tenants.add(tenant)
        elif path.parent == tenants_dir and path.suffix == ".yaml":
            tenants.add(path.stem)
            before |= _regions_at(tree, ref, name)  # a removed allocation or file moves that region's cohort
        else:
            return True, whole, tenants, before
    return False, whole, tenants, before


def stack_selection(tree: Path, cfg: Any, regions: list[str], tenants: list[str] = (),  # type: ignore[assignment]
                    changed_since: str | None = None, platform_only: bool = False) -> dict[str, list[str]]:
    """Per region to act on (in order), its stacks to act on, platform first. Bad names are a usage error naming
    the option."""
    unknown = [r for r in regions if r not in cfg.regions]
    if unknown:
        raise click.BadParameter(f"no region {', '.join(unknown)} (one of: {', '.join(sorted(cfg.regions))})",
                                 param_hint="REGIONS")
    if tenants and platform_only:
        raise click.BadParameter("--tenant and --platform-only exclude each other", param_hint="--platform-only")
    missing = [t for t in tenants if t not in cfg.tenants]
    if missing:
        raise click.BadParameter(f"no tenant {', '.join(missing)} (tenants/NAME.yaml)", param_hint="--tenant")
    chosen = {r: stacks.region_stacks(cfg, r) for r in (list(regions) or sorted(cfg.regions))}
    if tenants:
        chosen = {r: [s for s in names if stacks.parse(s)[1] in tenants] for r, names in chosen.items()}
        if not any(chosen.values()):
            raise click.BadParameter(f"{', '.join(tenants)} has no allocation in {', '.join(chosen)}",
                                     param_hint="--tenant")
    if platform_only:
        chosen = {r: names[:1] for r, names in chosen.items()}
    if changed_since is not None:
        everything, whole, changed, before = _changed(tree, changed_since)
        if not everything:
            for region, names in chosen.items():
                if region in whole:
                    continue  # every stack of the region reads the region's file
                hit = [s for s in names if stacks.parse(s)[1] in changed]
                # the platform's cohort lends what no tenant holds: a tenant's change, now or at REF, is its regions'
                # platform's too (unless --tenant asked for tenant stacks only)
                touched = region in before or any(t in changed for t in stacks.tenants_in(cfg, region))
                keep_platform = touched and not tenants and names[:1] == [stacks.platform(region)]
                chosen[region] = ([stacks.platform(region)] if keep_platform else []) + hit
    return {r: names for r, names in chosen.items() if names}


# ------------------------------------------------------------------------------------------ the Pulumi engine
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
        error_line("the local state backend encrypts secrets with a passphrase: set PULUMI_CONFIG_PASSPHRASE or "
                   "PULUMI_CONFIG_PASSPHRASE_FILE")
        sys.exit(EXIT_USAGE)
    return env
