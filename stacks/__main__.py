"""The sovcloud Pulumi program: one region per stack (`pulumi up -s <region>`).

Reads the region from this stack's config (key ``sovcloud:region``: ``Pulumi.<stack>.yaml``, or however the engine
was given it) and the tenants from ``../tenants``, validated exactly as ``sovcloud validate`` does, and builds the
Region component.

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

from components.region import Region, region_args
from components.retention import record_retain_on_delete
from sovcloud import config as config_loader
from sovcloud.config.errors import ConfigInvalid
from sovcloud.engine import gate

ROOT = Path(__file__).resolve().parent.parent


def _provider(name: str, cfg: pulumi.Config, kubeconfig_key: str, context_key: str) -> k8s.Provider | None:
    kubeconfig = cfg.get_secret(kubeconfig_key)
    context = cfg.get(context_key)
    if kubeconfig is None and context is None and name != "workload":
        return None
    # with no kubeconfig in config, the provider reads KUBECONFIG / ~/.kube/config itself
    return k8s.Provider(name, kubeconfig=kubeconfig, context=context, enable_server_side_apply=True)


def main() -> None:
    stack = pulumi.get_stack()
    settings = pulumi.Config("sovcloud")
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
    # run without the policy pack (a plain `pulumi up`, the Pulumi Kubernetes Operator): the pack's rules first,
    # offline; nothing is registered while a mandatory one fails (sovcloud.engine.gate)
    if gate.gate_on():
        findings = gate.mandatory_findings(ROOT, stack)
        if findings:
            raise pulumi.RunError(f"sovcloud policy gate: {len(findings)} mandatory violation(s) in {stack}, nothing "
                                  "applied:\n" + "\n".join(f"  {f}" for f in findings[:50]))
    # an SDK-side transformation, so it runs under the mock monitor too (engine-side transforms do not)
    pulumi.runtime.register_stack_transformation(record_retain_on_delete)
    workload = _provider("workload", settings, "kubeconfig", "context")
    management = _provider("management", settings, "managementKubeconfig", "managementContext")
    # quotas follow allocation periods: `pulumi up` after an end date drops that quota to zero; sovcloud:asOf pins the
    # date (sovcloud synth --date sets it) for reproducible output
    as_of_text = settings.get("asOf")
    as_of = dt.date.fromisoformat(as_of_text) if as_of_text else dt.date.today()
    region = Region(stack, region_args(cfg, stack, as_of, management),
                    pulumi.ResourceOptions(providers={"kubernetes": workload} if workload else None))
    pulumi.export("capacity", region.capacity)


main()
