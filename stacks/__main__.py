"""The sovcloud Pulumi program: per region a platform stack and a stack per tenant (``sovcloud.stacks``).

- Platform stack ``<region>`` (`pulumi up -s ncc-haenam`): reads the region from this stack's config (key
  ``sovcloud:region``: ``Pulumi.<stack>.yaml``, or however the engine was given it) and the tenants from
  ``../tenants`` (the cohort lends what no tenant is guaranteed), validated exactly as ``sovcloud validate`` does;
  builds the Region component and exports ``tenantContext`` for the tenant stacks.
- Tenant stack ``<region>.t.<tenant>`` (`pulumi up -s ncc-haenam.t.orbit-lm`): reads the region from the platform
  stack's ``tenantContext`` (a StackReference) and only its own tenant file; refuses while the platform has not
  deployed Kueue or lacks a flavor it needs; builds the Tenant component.

Providers (components never build their own):
- workload cluster: stack config ``sovcloud:kubeconfig`` (a secret: ``pulumi config set --secret sovcloud:kubeconfig
  < file``), else the ``KUBECONFIG`` file; optional ``sovcloud:context``.
- management cluster (Cluster API objects): ``sovcloud:managementKubeconfig`` / ``sovcloud:managementContext``;
  when neither is set, the workload cluster's provider (a self-managed cluster).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.queueing import priority_class_name
from components.region import Region, region_args, tenant_context
from components.retention import record_retain_on_delete
from components.tenant import Tenant, TenantArgs, granted_priority
from sovcloud import config as config_loader
from sovcloud import stacks
from sovcloud.config.errors import ConfigInvalid
from sovcloud.engine import gate

ROOT = Path(__file__).resolve().parent.parent


def _provider(name: str, cfg: pulumi.Config, kubeconfig_key: str, context_key: str,
              cluster_id: str | None = None) -> k8s.Provider | None:
    kubeconfig = cfg.get_secret(kubeconfig_key)
    context = cfg.get(context_key)
    if kubeconfig is None and context is None and name != "workload":
        return None
    # with no kubeconfig in config, the provider reads KUBECONFIG / ~/.kube/config itself. clusterIdentifier (the
    # region's kube-system UID, where config gives it): the provider is replaced only when it changes, so a rotated
    # or re-pointed kubeconfig, copied into every tenant stack, never replaces the objects of all of them
    return k8s.Provider(name, kubeconfig=kubeconfig, context=context, enable_server_side_apply=True,
                        cluster_identifier=cluster_id)


def _gate(stack: str) -> None:
    """Run without the policy pack (a plain `pulumi up`, the Pulumi Kubernetes Operator): the pack's rules first,
    offline; nothing is registered while a mandatory one fails (sovcloud.engine.gate)."""
    if gate.gate_on():
        findings = gate.mandatory_findings(ROOT, stack)
        if findings:
            raise pulumi.RunError(f"sovcloud policy gate: {len(findings)} mandatory violation(s) in {stack}, nothing "
                                  "applied:\n" + "\n".join(f"  {f}" for f in findings[:50]))


def _as_of(settings: pulumi.Config) -> dt.date:
    # quotas follow allocation periods: `pulumi up` after an end date drops that quota to zero; sovcloud:asOf pins
    # the date (sovcloud synth --date sets it) for reproducible output
    as_of_text = settings.get("asOf")
    return dt.date.fromisoformat(as_of_text) if as_of_text else dt.date.today()


def platform(stack: str, settings: pulumi.Config) -> None:
    # the region is this stack's own config, however it was set (the stack file, `pulumi config set`, an
    # environment, the Automation API), validated as `sovcloud validate` validates the file
    declared = settings.get_object("region")
    try:
        cfg = config_loader.load_for_program(ROOT, stack, declared)
    except ConfigInvalid as exc:
        raise pulumi.RunError(f"sovcloud config is invalid:\n{exc}") from None
    if stack not in cfg.regions:
        raise pulumi.RunError(f"stack {stack} has no region (set sovcloud:region in stacks/Pulumi.{stack}.yaml; "
                              f"regions: {', '.join(sorted(cfg.regions))})")
    # A region deployed as one stack still holds its tenants' objects in this stack's state: this program declares
    # none, so an update would delete their quotas and queues. `sovcloud migrate-stacks` moves them to the tenant
    # stacks and then sets the layout; a new region sets it in its stack file.
    if settings.get("stackLayout") != stacks.LAYOUT:
        raise pulumi.RunError(
            f"stack {stack}: sovcloud:stackLayout is not {stacks.LAYOUT!r}, so this stack may still hold its tenants "
            f"as one stack, and an update would delete their quotas and queues: move them first (sovcloud "
            f"migrate-stacks {stack}, which sets it), or, for a region never deployed, set sovcloud:stackLayout: "
            f"{stacks.LAYOUT} in stacks/Pulumi.{stack}.yaml")
    _gate(stack)
    # an SDK-side transformation, so it runs under the mock monitor too (engine-side transforms do not)
    pulumi.runtime.register_stack_transformation(record_retain_on_delete)
    workload = _provider("workload", settings, "kubeconfig", "context", cfg.regions[stack].cluster_id)
    management = _provider("management", settings, "managementKubeconfig", "managementContext")
    region = Region(stack, region_args(cfg, stack, _as_of(settings), management),
                    pulumi.ResourceOptions(providers={"kubernetes": workload} if workload else None))
    pulumi.export("capacity", region.capacity)
    if declared is None:  # the engine always hands the stack's config over; a bare run reads the stack file
        declared = config_loader.file_region_object(ROOT, stack)
    model = cfg.regions[stack]
    # the release's Helm status (deployed, failed, ...): tenant stacks refuse to apply until it is deployed
    pulumi.export(stacks.CONTEXT_OUTPUT, region.kueue.status.apply(
        lambda status: tenant_context(model, declared, getattr(status, "status", None) if status else None)))


def tenant(stack: str, region_name: str, tenant_name: str, settings: pulumi.Config) -> None:
    from pulumi.runtime.sync_await import _sync_await

    ref = pulumi.StackReference("platform", stacks.reference(pulumi.get_organization(), pulumi.get_project(),
                                                            region_name))
    # the components need the region as plain data to decide what to declare, so the output is awaited here, as the
    # SDK awaits a synchronous invoke (a StackReference is a read: its outputs are known during preview too)
    details = _sync_await(ref.get_output_details(stacks.CONTEXT_OUTPUT))
    context = stacks.received(details.value if details.value is not None else details.secret_value)
    missing = stacks.missing_context(context, region_name)
    if missing is not None:
        raise pulumi.RunError(f"stack {stack}: {missing}")
    try:
        cfg = config_loader.load_for_tenant_stack(ROOT, region_name, tenant_name, context["region"])
    except ConfigInvalid as exc:
        raise pulumi.RunError(f"sovcloud config is invalid:\n{exc}") from None
    region = cfg.regions.get(region_name)
    held = tuple(a for a in cfg.tenants[tenant_name].allocations if a.region == region_name) \
        if region is not None and tenant_name in cfg.tenants else ()
    if not held:
        raise pulumi.RunError(f"stack {stack}: tenant {tenant_name} has no allocation in {region_name} "
                              f"(tenants/{tenant_name}.yaml); a tenant stack exists only where it holds one")
    args = TenantArgs(cfg.tenants[tenant_name], held, region, _as_of(settings))
    problem = stacks.context_problem(context, region_name, [a.pool for a in held],
                                     priority_class_name(granted_priority(args)))
    if problem is not None:
        raise pulumi.RunError(f"stack {stack}: {problem}")
    _gate(stack)
    pulumi.runtime.register_stack_transformation(record_retain_on_delete)
    workload = _provider("workload", settings, "kubeconfig", "context", region.cluster_id)
    made = Tenant(f"{region_name}-{tenant_name}", args,
                  pulumi.ResourceOptions(providers={"kubernetes": workload} if workload else None))
    pulumi.export("namespace", made.namespace)
    pulumi.export("guaranteedGpus", made.guaranteed_gpus)


def main() -> None:
    stack = pulumi.get_stack()
    settings = pulumi.Config("sovcloud")
    region_name, tenant_name = stacks.parse(stack)
    if tenant_name is None:
        platform(stack, settings)
    else:
        tenant(stack, region_name, tenant_name, settings)


main()
