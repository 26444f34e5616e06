"""Moving a region from the one-stack layout to a platform stack and a stack per tenant, without deleting or
replacing any object: the tenant resources' state moves from the region's stack to the tenant stacks.

Works on exported state (``pulumi stack export``, the Automation API's ``export_stack``: a version 3 deployment).
A tenant's resources are its ``sovcloud:tenants:Tenant`` component (named ``REGION-TENANT``, a child of the
``sovcloud:regions:Region`` component) and everything under it; in the tenant stack they keep their names, types,
ids, inputs and outputs, and only their URNs change (the stack's name, and the Region no longer in the parent type
chain). Each tenant stack gets a copy of the Kubernetes provider they were applied with (same id and inputs, so no
provider replacement) and its own root; dependencies on the platform's resources (the Kueue release, the admin
role) are dropped, as they now lie in another stack.

``verify`` compares the states after the move with what the new programs register (their synthesis, offline):
a resource in a state that its stack's program no longer registers would be deleted by the next ``up``, one whose
type changed would be replaced; either refuses the migration. Nothing is written unless the whole region verifies.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from sovcloud import stacks

REGION_TYPE = "sovcloud:regions:Region"
TENANT_TYPE = "sovcloud:tenants:Tenant"
STACK_TYPE = "pulumi:pulumi:Stack"


class MigrationRefused(Exception):
    """The move cannot be made without losing or replacing something; the message says what, one line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Split:
    platform: dict[str, Any]  # the region's deployment without its tenants' resources
    tenants: dict[str, dict[str, Any]]  # per tenant stack name, its deployment
    moved: dict[str, str] = field(default_factory=dict)  # old URN -> new URN


def _parts(urn: str) -> tuple[str, str, str, str]:
    """(stack, project, qualified type, name) of a URN."""
    _, _, rest = urn.partition("urn:pulumi:")
    stack, project, qualified, name = rest.split("::", 3)
    return stack, project, qualified, name


def _root_urn(stack: str, project: str) -> str:
    return f"urn:pulumi:{stack}::{project}::{STACK_TYPE}::{project}-{stack}"


def resources(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return list((deployment.get("deployment") or {}).get("resources") or [])


def held(stack: Any) -> list[dict[str, Any]]:
    """The resources in an Automation API stack's state (``export_stack``), as ``resources`` reads them."""
    return resources({"deployment": stack.export_stack().deployment or {}})


def split(deployment: dict[str, Any], region: str) -> Split:
    """The region's one-stack deployment as the platform's and each tenant's. Raises MigrationRefused when the
    state cannot be moved as it stands (pending operations, an unknown format)."""
    if not isinstance(deployment, dict) or deployment.get("version") != 3 \
            or not isinstance(deployment.get("deployment"), dict):
        raise MigrationRefused([f"{region}: not a version 3 deployment (export it with `pulumi stack export` or the "
                                "Automation API's export_stack)"])
    body = deployment["deployment"]
    for i, r in enumerate(body.get("resources") or []):
        if not (isinstance(r, dict) and isinstance(r.get("urn"), str) and r["urn"].startswith("urn:pulumi:")
                and r["urn"].count("::") >= 3 and isinstance(r.get("type"), str)):
            raise MigrationRefused([f"{region}: resources[{i}] is not a state resource (a urn:pulumi: URN and a "
                                    "type); give the file `pulumi stack export` wrote"])
    if body.get("pending_operations"):
        raise MigrationRefused([f"{region}: the stack has {len(body['pending_operations'])} pending operation(s): "
                                "finish them (pulumi refresh) or cancel them first"])
    all_resources = resources(deployment)
    by_urn = {r["urn"]: r for r in all_resources}
    project = next((_parts(r["urn"])[1] for r in all_resources), "sovcloud")
    owner: dict[str, str] = {}  # URN -> tenant, for a Tenant component and its descendants
    for r in all_resources:
        stack, _, qualified, name = _parts(r["urn"])
        if stack != region:
            raise MigrationRefused([f"{region}: resource {r['urn']} belongs to stack {stack}"])
        if qualified == f"{REGION_TYPE}${TENANT_TYPE}" and name.startswith(f"{region}-"):
            owner[r["urn"]] = name[len(region) + 1:]
    for r in all_resources:
        urn, chain = r["urn"], []
        while urn and urn not in owner and urn in by_urn:
            chain.append(urn)
            urn = by_urn[urn].get("parent", "")
        if urn in owner:
            for u in chain:
                owner[u] = owner[urn]
    moved: dict[str, str] = {}
    for urn, tenant in owner.items():
        _, proj, qualified, name = _parts(urn)
        moved[urn] = (f"urn:pulumi:{stacks.tenant(region, tenant)}::{proj}::"
                      f"{qualified.removeprefix(REGION_TYPE + '$')}::{name}")
    tenants: dict[str, dict[str, Any]] = {}
    platform_resources: list[dict[str, Any]] = []
    copied_providers: dict[tuple[str, str], dict[str, Any]] = {}
    for r in all_resources:
        tenant = owner.get(r["urn"])
        if tenant is None:
            platform_resources.append(r)
            continue
        stack = stacks.tenant(region, tenant)
        out = tenants.setdefault(stack, {"version": 3, "deployment": {
            **{k: copy.deepcopy(v) for k, v in body.items() if k not in ("resources", "pending_operations")},
            "resources": [{"urn": _root_urn(stack, project), "custom": False, "type": STACK_TYPE, "outputs": {}}]}})
        new = copy.deepcopy(r)
        new["urn"] = moved[r["urn"]]
        parent = r.get("parent", "")
        new["parent"] = moved.get(parent) or _root_urn(stack, project)
        if r.get("provider"):
            provider_urn, _, provider_id = r["provider"].rpartition("::")
            _, p_project, p_type, p_name = _parts(provider_urn)
            copied_urn = f"urn:pulumi:{stack}::{p_project}::{p_type}::{p_name}"
            new["provider"] = f"{copied_urn}::{provider_id}"
            if (stack, copied_urn) not in copied_providers and provider_urn in by_urn:
                provider = copy.deepcopy(by_urn[provider_urn])
                provider["urn"] = copied_urn
                provider["parent"] = _root_urn(stack, project)
                provider.pop("dependencies", None)
                copied_providers[stack, copied_urn] = provider
                out["deployment"]["resources"].insert(1, provider)
        mine = [u for u in r.get("dependencies", []) if owner.get(u) == tenant]
        if "dependencies" in r:
            new["dependencies"] = [moved[d] for d in mine]
        if "propertyDependencies" in r:
            new["propertyDependencies"] = {k: [moved[d] for d in v if owner.get(d) == tenant]
                                           for k, v in r["propertyDependencies"].items()}
        for key in ("deletedWith", "viewOf"):  # one URN: kept when it moves along, else it lies in another stack
            if r.get(key):
                if owner.get(r[key]) == tenant:
                    new[key] = moved[r[key]]
                else:
                    new.pop(key)
        if r.get("replaceWith"):
            new["replaceWith"] = [moved[u] for u in r["replaceWith"] if owner.get(u) == tenant]
        new.pop("aliases", None)  # the old URNs they name are the region stack's
        out["deployment"]["resources"].append(new)
    platform = {**deployment, "deployment": {**body, "resources": platform_resources}}
    return Split(platform, dict(sorted(tenants.items())), moved)


@dataclass(frozen=True)
class Plan:
    """What the next update of each stack would do to the migrated state, judged against the program's synthesis:
    the resources it would delete (in the state, not registered), replace (another type under the URN), create,
    and update (declared with other inputs than the state holds; providers left out, their secrets are
    encrypted in a state)."""

    deletes: dict[str, list[str]]
    replaces: dict[str, list[str]]
    creates: dict[str, list[str]]
    updates: dict[str, list[str]] = field(default_factory=dict)

    def problems(self) -> list[str]:
        out = []
        for stack, urns in self.deletes.items():
            out += [f"{stack}: {u} would be deleted (in the state, no longer declared)" for u in urns]
        for stack, urns in self.replaces.items():
            out += [f"{stack}: {u} would be replaced (declared with another type)" for u in urns]
        return out


def plan(states: dict[str, dict[str, Any]], records: dict[str, list[Any]]) -> Plan:
    """Per stack, compare its state (``states``: stack -> deployment) with what its program registers
    (``records``: stack -> synth Records; a stack without records registers nothing)."""
    deletes: dict[str, list[str]] = {}
    replaces: dict[str, list[str]] = {}
    creates: dict[str, list[str]] = {}
    updates: dict[str, list[str]] = {}
    for stack in sorted({*states, *records}):
        declared = {r.urn: r.type for r in records.get(stack, [])}
        state = {r["urn"]: r for r in resources(states.get(stack, {}))}
        held = {u: r["type"] for u, r in state.items() if r["type"] != STACK_TYPE}
        if changed := sorted(r.urn for r in records.get(stack, []) if r.custom and r.urn in state
                             and not r.type.startswith("pulumi:providers:")
                             and (state[r.urn].get("inputs") or {}) != r.inputs):
            updates[stack] = changed
        if gone := sorted(set(held) - set(declared)):
            deletes[stack] = gone
        if changed := sorted(u for u in set(held) & set(declared) if held[u] != declared[u]):
            replaces[stack] = changed
        if new := sorted(set(declared) - set(held)):
            creates[stack] = new
    return Plan(deletes, replaces, creates, updates)


def integrity_problems(stack: str, deployment: dict[str, Any]) -> list[str]:
    """What `pulumi stack import`'s integrity check would refuse: a resource whose parent, provider, dependencies or
    deletedWith come after it or are not in the stack, or a URN twice."""
    problems = []
    seen: set[str] = set()
    for r in resources(deployment):
        urn = r["urn"]
        named = [r.get("parent") or "", (r.get("provider") or "").rpartition("::")[0], *r.get("dependencies", []),
                 *(u for v in (r.get("propertyDependencies") or {}).values() for u in v), r.get("deletedWith") or "",
                 *(r.get("replaceWith") or [])]
        missing = sorted({u for u in named if u and u not in seen})
        if missing:
            problems.append(f"{stack}: {urn} refers to {missing[0]}, which is not before it in the stack")
        if urn in seen:
            problems.append(f"{stack}: {urn} twice")
        seen.add(urn)
    return problems


def verify_split(before: dict[str, Any], result: Split) -> list[str]:
    """The move itself kept every resource once, with its id, inputs and outputs (a provider copied per stack), and
    each stack's state passes the import's integrity check."""
    problems = []
    region = _parts(resources(before)[0]["urn"])[0] if resources(before) else ""
    for stack, deployment in [(region, result.platform), *result.tenants.items()]:
        problems += integrity_problems(stack, deployment)
    after: dict[str, dict[str, Any]] = {}
    for deployment in [result.platform, *result.tenants.values()]:
        for r in resources(deployment):
            after.setdefault(r["urn"], r)
    for r in resources(before):
        new = after.get(result.moved.get(r["urn"], r["urn"]))
        if new is None:
            problems.append(f"{r['urn']} is missing after the move")
        elif (new.get("id"), new.get("inputs"), new.get("outputs"), new.get("type")) != (
                r.get("id"), r.get("inputs"), r.get("outputs"), r.get("type")):
            problems.append(f"{r['urn']} changed in the move")
    return problems


def unmigrated_tenants(deployment: dict[str, Any], region: str) -> list[str]:
    """Tenants whose resources a region's stack still holds in the one-stack layout: its next update would delete
    their quotas and queues (the platform program declares no tenant)."""
    found = []
    for r in resources(deployment):
        if r.get("type") == TENANT_TYPE and _parts(r["urn"])[2] == f"{REGION_TYPE}${TENANT_TYPE}":
            found.append(_parts(r["urn"])[3].removeprefix(f"{region}-"))
    return sorted(found)
