"""Stack names and what passes between a region's stacks.

A region is deployed as one platform stack, named after the region (pools, GPU operator, DRA driver, Kueue, cohort,
flavors, topologies, guardrails, the fabric's operator), and one stack per tenant with an allocation there, named
``<region>.t.<tenant>`` (its namespace, quota, limits, network policies, role binding, networks and queues). Pulumi
allows periods in stack names; ``.t.`` cannot occur in a region or tenant name (both are DNS labels).

A tenant stack reads the region from the platform stack's output ``tenantContext`` (a ``StackReference``), never from
the region's files: the region's config as the platform stack applied it, the cohort, flavors and priority classes
it serves, and the state of its Kueue release.
"""

from __future__ import annotations

from typing import Any

SEPARATOR = ".t."
CONTEXT_OUTPUT = "tenantContext"
# the platform stack's config ``sovcloud:stackLayout``: the program runs a platform stack only where it is ``split``
# (its tenants are in stacks of their own, or it never had any)
LAYOUT = "split"
LAYOUT_KEY = "sovcloud:stackLayout"


def platform(region: str) -> str:
    return region


def tenant(region: str, name: str) -> str:
    return f"{region}{SEPARATOR}{name}"


def parse(stack: str) -> tuple[str, str | None]:
    """(region, tenant or None) of a stack name."""
    region, sep, name = stack.partition(SEPARATOR)
    return (region, name) if sep else (stack, None)


def reference(organization: str, project: str, region: str) -> str:
    """The platform stack's fully qualified name, as a StackReference takes it (a DIY backend's organization is
    ``organization``)."""
    return f"{organization}/{project}/{platform(region)}"


def tenants_in(cfg: Any, region: str) -> list[str]:
    """The tenants with a stack in ``region``: every tenant with an allocation there (ended ones too: their
    namespace is kept and their quota is zero), in name order."""
    return sorted({t.name for t, _ in cfg.allocations_in(region)})


def region_stacks(cfg: Any, region: str) -> list[str]:
    """The region's stacks: platform first, then its tenants' in name order."""
    return [platform(region), *(tenant(region, t) for t in tenants_in(cfg, region))]


def received(value: Any, sort_keys: bool = False) -> Any:
    """A value as it comes back through the engine's protobuf Struct, made plain again: its numbers crossed as
    doubles, so whole ones are integers again (the config schema counts nodes and GPUs in integers); tuples are
    lists; ``sort_keys``: every mapping's keys sorted (synthesis's records)."""
    if isinstance(value, dict):
        return {k: received(value[k], sort_keys) for k in (sorted(value) if sort_keys else value)}
    if isinstance(value, list | tuple):
        return [received(v, sort_keys) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def missing_context(context: Any, region: str) -> str | None:
    """Why the platform stack's output cannot serve a tenant stack at all (not applied yet), or None."""
    if not isinstance(context, dict) or not isinstance(context.get("region"), dict):
        return (f"the platform stack {platform(region)} has no output {CONTEXT_OUTPUT}: apply it first "
                f"(sovcloud up {region} applies the platform before its tenants)")
    return None


def context_problem(context: Any, region: str, pools: list[str], priority_class: str) -> str | None:
    """Why a tenant stack cannot be applied on the platform stack's output as it stands, or None."""
    missing = missing_context(context, region)
    if missing is not None:
        return missing
    status = (context.get("kueue") or {}).get("status")
    if status != "deployed":
        return (f"Kueue in {platform(region)} is not deployed (release status: {status or 'unknown'}): the tenant's "
                "queues need its CRDs and webhooks; apply the platform stack first")
    missing = sorted(set(pools) - set(context.get("flavors") or []))
    if missing:
        return (f"the platform stack {platform(region)} has no flavor for pool(s) {', '.join(missing)}: apply the "
                "platform stack first")
    if priority_class not in (context.get("priorityClasses") or []):
        return f"the platform stack {platform(region)} serves no WorkloadPriorityClass {priority_class}"
    return None
