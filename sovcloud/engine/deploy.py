"""Running a region's stacks (its platform stack and a stack per tenant, ``sovcloud.stacks``) on the Pulumi
Automation API, with the policy pack attached: the engine path behind `sovcloud preview|up|destroy|drift` (needs the
Pulumi CLI). Each stack gets its own policy config: the region-wide rules see the other tenants' sums and, in a
tenant stack, the platform resources they read (``sovcloud.engine.policy_config``).

``up`` never applies before the stack rules have run: the engine runs a stack policy's AnalyzeStack only after all
steps of an update are applied, so an ``up`` is a preview with the pack first, and the update runs only when that
preview reports no mandatory violation.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import Progress

from sovcloud.config.model import Config
from sovcloud.engine.gate import GATE_ENV
from sovcloud.keys import TENANT

_SELECT = threading.Lock()


@dataclass
class Outcome:
    region: str  # the stack: a region's platform stack, or REGION.t.TENANT
    operation: str
    ok: bool = True
    summary: dict[str, int] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)  # drift: resources changed outside the toolkit
    mandatory: list[str] = field(default_factory=list)  # mandatory policy violations
    advisory: list[str] = field(default_factory=list)
    error: str = ""
    preview_output: str = ""  # the engine's preview text (with --diff: the changed fields)


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


def stack_policy_configs(root: Path, cfg: Config, region: str, names: list[str], day: dt.date | None = None,
                         chart_folders: list[Path] | None = None) -> dict[str, dict[str, Any]]:
    """Per stack of ``names`` (the region's), the pack's config: the platform stack's resources the tenant stacks'
    rules read come from an offline synthesis of the platform (the same program, under mocks)."""
    from sovcloud import stacks
    from sovcloud.engine import synth
    from sovcloud.engine.policy_config import stack_configs

    day = day or dt.date.today()
    # only a tenant stack's rules read the platform's resources
    records = synth.run(root, region, cfg, as_of=day, tenants=[]).records if any(
        stacks.parse(n)[1] for n in names) else []
    return stack_configs(cfg, region, day, names, records, chart_folders)


def run_operation(root: Path, cfg: Config, region: str, operation: str, parallel: int | None, env: dict[str, str],
                  progress: Progress, policy: dict[str, Any], confirm: Callable[[Outcome], bool] = lambda _: True,
                  diff: bool = False, skip_preview: bool = False) -> Outcome:
    """One stack (``region``: a platform stack, or REGION.t.TENANT): select (or create) it, attach the policy pack
    with ``policy`` (the stack's own, from ``stack_policy_configs``), run."""
    from pulumi import automation as auto

    from sovcloud import stacks

    outcome = Outcome(region, operation)
    # total unknown until the engine has run the program: the bar counts resources done
    task = progress.add_task(f"{region}: starting", total=None)
    events = _Events(progress, task, outcome)
    with tempfile.TemporaryDirectory() as tmp:
        policy_file = Path(tmp) / f"{region}.policy.json"
        policy_file.write_text(json.dumps(policy), encoding="utf-8")
        packs = {"policy_packs": [str(root / "policies")], "policy_pack_configs": [str(policy_file)]}
        try:
            # the pack is attached to every operation here, so the program's own gate would only repeat it
            # `stack select` writes the workspace file: one stack at a time selects (pulumi/pulumi#8186); the
            # operations after it name their stack
            with _SELECT:  # destroy and drift act on a stack that exists: a misspelt one is an error, not created
                select = auto.select_stack if operation in ("destroy", "drift") else auto.create_or_select_stack
                stack = select(stack_name=region, work_dir=str(root / "stacks"),
                               opts=auto.LocalWorkspaceOptions(env_vars={**env, GATE_ENV: "off"}))
            left = unmigrated(stack, region) if operation in ("preview", "up") else []
            if left:
                outcome.ok = False
                outcome.error = (f"the stack still holds {len(left)} tenant(s) of the one-stack layout ("
                                 f"{', '.join(left[:5])}{', ...' if len(left) > 5 else ''}): an update would delete "
                                 f"their quotas and queues; run `sovcloud migrate-stacks {region}` first")
            elif operation == "preview":
                outcome.preview_output = stack.preview(parallel=parallel, on_event=events, diff=diff, **packs).stdout
            elif operation == "up" and skip_preview:
                stack.up(parallel=parallel, on_event=events, **packs)
            elif operation == "up":
                up_after_clean_preview(stack, outcome, confirm, parallel=parallel, on_event=events, diff=diff, **packs)
            elif operation == "destroy":
                destroy_after_preview(stack, outcome, confirm, parallel=parallel, on_event=events)
                if outcome.ok and stacks.parse(region)[1] is not None:
                    # a destroyed tenant stack goes from the backend, so the region's platform can follow
                    with _SELECT:
                        stack.workspace.remove_stack(region)
            elif operation == "drift":
                stack.preview_refresh(parallel=parallel, on_event=events)
        except auto.errors.CommandError as exc:
            outcome.ok = False
            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
            outcome.error = next((ln.strip() for ln in reversed(lines) if "error" in ln.lower()), lines[-1] if lines
                                 else "pulumi failed")
    progress.update(task, description=f"{region}: {'done' if outcome.ok else 'failed'}")
    return outcome


def unmigrated(stack: Any, name: str) -> list[str]:
    """A platform stack's tenants still in the one-stack layout (none for a tenant stack)."""
    from sovcloud import stacks
    from sovcloud.engine.migrate import unmigrated_tenants

    if stacks.parse(name)[1] is not None:
        return []
    return unmigrated_tenants({"deployment": stack.export_stack().deployment or {}}, name)


def up_after_clean_preview(stack: Any, outcome: Outcome, confirm: Callable[[Outcome], bool] = lambda _: True,
                           **options: Any) -> None:
    """Preview with the pack, then update only if the preview found no mandatory violation and the planned changes
    are confirmed.

    The engine evaluates stack policies (AnalyzeStack) after an update's steps are applied, so a plain ``up`` would
    put an over-capacity ClusterQueue on the cluster before the capacity rule refuses it. A preview runs the same
    rules before anything changes; the engine then fails the preview itself (a CommandError) or reports the
    violations as events, and in both cases nothing is applied."""
    result = stack.preview(**options)
    outcome.preview_output = getattr(result, "stdout", "") or ""
    if outcome.mandatory:
        outcome.ok = False
        outcome.error = (f"not applied: the preview found {len(outcome.mandatory)} mandatory policy violation(s); "
                         "fix them and run up again")
        return
    if not confirm(outcome):
        outcome.ok = False
        outcome.error = ("not applied: the planned changes were not confirmed (on a terminal answer yes; in CI pass "
                         "--yes)")
        return
    outcome.advisory.clear()  # the update reports its advisory findings again
    options.pop("diff", None)
    stack.up(**options)


def destroy_after_preview(stack: Any, outcome: Outcome, confirm: Callable[[Outcome], bool] = lambda _: True,
                          **options: Any) -> None:
    """Show what a destroy would delete (a destroy preview), and destroy only once that is confirmed."""
    result = stack.preview_destroy(**options)
    outcome.preview_output = getattr(result, "stdout", "") or ""
    if not confirm(outcome):
        outcome.ok = False
        outcome.error = "not destroyed: not confirmed (on a terminal answer yes; in CI pass --yes)"
        return
    stack.destroy(**options)


def cluster_identity(kubeconfig: Path | None = None, context: str | None = None) -> str:
    """The UID of the kube-system namespace of the cluster a kubeconfig points at: a cluster's stable identity.
    Raises RuntimeError with one line when the cluster cannot be read."""
    from kubernetes import client
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError

    try:
        api = kube_config.new_client_from_config(config_file=str(kubeconfig) if kubeconfig else None,
                                                 context=context)
    except (ConfigException, OSError, TypeError, ValueError) as exc:
        raise RuntimeError(f"cannot use kubeconfig {kubeconfig or '(default)'}: {exc}") from None
    try:
        return str(client.CoreV1Api(api).read_namespace("kube-system", _request_timeout=15).metadata.uid)
    except client.ApiException as exc:
        raise RuntimeError(f"cannot read the cluster's identity (namespace kube-system): {exc.status} "
                           f"{exc.reason}") from None
    except (HTTPError, OSError) as exc:
        raise RuntimeError(f"cannot reach the cluster to read its identity: {type(exc).__name__}") from None
    finally:
        api.close()


def tenant_namespaces_in_state(root: Path, region: str, env: dict[str, str]) -> list[str]:
    """What still holds tenants in the region's state: its tenant stacks in the backend (tenants removed from config
    included), and tenant namespaces a platform stack of the one-stack layout still holds."""
    from pulumi import automation as auto

    from sovcloud import stacks

    names: list[str] = []
    try:
        workspace = auto.LocalWorkspace(work_dir=str(root / "stacks"), env_vars=env)
        listed = [s.name.rsplit("/", 1)[-1] for s in workspace.list_stacks()]  # org/project/stack on a cloud
        names += [n for n in listed if stacks.parse(n)[0] == region and stacks.parse(n)[1] is not None]
        stack = auto.select_stack(stack_name=region, work_dir=str(root / "stacks"),
                                  opts=auto.LocalWorkspaceOptions(env_vars=env))
        deployment = stack.export_stack().deployment or {}
    except auto.errors.CommandError:
        return sorted(names)  # no such stack yet: nothing more to protect
    for res in deployment.get("resources") or []:
        if res.get("type") == "kubernetes:core/v1:Namespace":
            labels = ((res.get("outputs") or {}).get("metadata") or {}).get("labels") or {}
            if labels.get(TENANT):
                names.append(labels[TENANT])
    return sorted(names)
