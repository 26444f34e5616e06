"""The region checked as its API server (and the controllers behind it) would take it, offline.

Over the toolkit's own objects and every Helm release's rendered objects (``sovcloud.render``):
- **schemas**: a built-in kind validates strictly against the Kubernetes OpenAPI schemas of the region's version
  (``kubernetes-validate``); a custom resource against the openAPIV3Schema of the version it names, from the CRD a
  release installs, after the API server's defaulting. Unknown fields are errors here: the API server would prune
  them (or warn) and the setting would silently do nothing.
- **served**: every kind is built in, defined by a CRD one of the region's releases installs, or belongs to a
  prerequisite the region declares (the Prometheus Operator, cert-manager; Cluster API kinds go to the management
  cluster). Anything else fails the apply ("no matches for kind"), and an atomic release rolls back whole.
- **referenced**: every ConfigMap or Secret the GPU operator's ClusterPolicy names for an enabled operand exists:
  created by the toolkit, rendered by the chart, or declared as kept by the centre. The operator otherwise stops at
  that operand ("could not get ConfigMap") and no node ever offers a GPU.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

# Kinds of the management cluster (Cluster API and its providers): served there, by the providers the region's
# provisioner runs, not by the workload cluster's releases.
MANAGEMENT_GROUPS = ("cluster.x-k8s.io", "bootstrap.cluster.x-k8s.io", "infrastructure.cluster.x-k8s.io",
                     "controlplane.cluster.x-k8s.io", "addons.cluster.x-k8s.io", "ipam.cluster.x-k8s.io")
# API groups a declared prerequisite serves (its CRDs, installed by the centre).
PREREQUISITE_GROUPS = {"prometheusOperator": ("monitoring.coreos.com",), "certManager": ("cert-manager.io",
                                                                                         "acme.cert-manager.io")}

# CRDs an operator installs itself when an operand is set in its policy (not in its chart): (kind of the policy,
# its spec field, the CRD files kept in sovcloud/crds, copied unmodified from the operator's manifests at the
# pinned tag). The Network Operator v26.4.1 installs nv-ipam's IPPool with nvIpam
# (manifests/state-nv-ipam-cni/005-nv-ipam.nvidia.com_ippools.yaml).
OPERATOR_CRDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("NicClusterPolicy", "nvIpam", ("nv-ipam.nvidia.com_ippools.yaml",)),
)


@cache
def _operator_crd(file: str) -> tuple[dict[str, Any], ...]:
    import yaml

    path = Path(__file__).parent / "crds" / file
    return tuple(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(d, dict))


def operator_crds(own: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The CRDs operators will install for the operands the toolkit's policies set."""
    out: list[dict[str, Any]] = []
    for kind, field_name, files in OPERATOR_CRDS:
        if any(o.get("kind") == kind and (o.get("spec") or {}).get(field_name) for o in own):
            out += [dict(c) for f in files for c in _operator_crd(f)]
    return out


# ClusterPolicy fields that name a ConfigMap or Secret in the operator's namespace: (operand, path, kind).
# From the ClusterPolicy CRD (nvidia.com_clusterpolicies.yaml, v25.10-v26.7) and the operator's object controls.
CLUSTER_POLICY_REFERENCES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("driver", ("repoConfig", "configMapName"), "ConfigMap"),
    ("driver", ("certConfig", "name"), "ConfigMap"),
    ("driver", ("licensingConfig", "configMapName"), "ConfigMap"),
    ("driver", ("licensingConfig", "secretName"), "Secret"),
    ("driver", ("kernelModuleConfig", "name"), "ConfigMap"),
    ("driver", ("secretEnv",), "Secret"),
    ("devicePlugin", ("config", "name"), "ConfigMap"),
    ("migManager", ("config", "name"), "ConfigMap"),
    ("dcgmExporter", ("config", "name"), "ConfigMap"),
    ("vgpuDeviceManager", ("config", "name"), "ConfigMap"),
)


@dataclass(frozen=True)
class Finding:
    source: str  # "sovcloud" (an object the toolkit registers) or the release that renders the object
    object: str  # "<apiVersion> <Kind> [namespace/]name"
    field: str  # dotted path in the object, "" for the object as a whole
    message: str
    rule: str  # "schema", "served" or "reference"

    def __str__(self) -> str:
        at = f" {self.field}:" if self.field else ":"
        return f"{self.source}: {self.object}{at} {self.message}"


@dataclass(frozen=True)
class Cluster:
    """What the region's API servers serve besides built-in kinds."""

    kubernetes_version: str
    prerequisites: Mapping[str, Any] = field(default_factory=dict)  # prometheusOperator, certManager, configMaps..
    management_cluster: bool = True  # Cluster API kinds are served (on the management cluster)


def ident(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('apiVersion', '?')} {obj.get('kind', '?')} {where}{meta.get('name', '?')}"


def group_version(api_version: str) -> tuple[str, str]:
    return tuple(api_version.split("/", 1)) if "/" in api_version else ("", api_version)  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------- built-in kinds

@cache
def schema_version(version: str) -> str:
    """The kubernetes-validate schema version for a cluster version: the same minor, else the nearest minor of the
    same major it ships (the older on a tie). LookupError when it has none."""
    import kubernetes_validate
    import kubernetes_validate.utils as kv_utils

    m = re.fullmatch(r"v?(\d+)\.(\d+)(\.\d+)?([-+].*)?", version)
    if m is None:
        raise LookupError(f"{version!r} is not a Kubernetes version")
    major, minor = int(m[1]), int(m[2])
    supported = sorted({tuple(int(p) for p in v.split(".")[:2]) for v in kv_utils.all_versions()})
    same_major = [mm for mm in supported if mm[0] == major]
    if not same_major:
        shipped = ", ".join(f"{a}.{b}" for a, b in supported)
        raise LookupError(f"kubernetes-validate {kubernetes_validate.__version__} has schemas for {shipped}, none "
                          f"for Kubernetes {version}")
    best = min(same_major, key=lambda mm: (abs(mm[1] - minor), mm[1]))
    return f"{best[0]}.{best[1]}.0"


def _fast_schemas() -> None:
    """kubernetes-validate re-reads and re-parses its 1.4 MB definitions for every object; the schema files are
    read-only data, so one parse per file serves every validation."""
    import kubernetes_validate.utils as kv_utils

    if not getattr(kv_utils.schema_contents, "cache_info", None):
        kv_utils.schema_contents = cache(kv_utils.schema_contents)


@cache
def is_builtin(api_version: str, kind: str, version: str) -> bool:
    """Whether the Kubernetes API of ``version`` serves ``kind`` at ``api_version`` itself."""
    return builtin_problems({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}, version) is not None


def builtin_problems(obj: Mapping[str, Any], version: str) -> list[tuple[str, str]] | None:
    """(field, message) problems of a built-in object, strict; None when the kind is not built in."""
    import kubernetes_validate

    _fast_schemas()
    try:
        kubernetes_validate.validate(dict(obj), schema_version(version), strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return None
    except kubernetes_validate.ValidationError as e:
        return [(".".join(str(p) for p in e.path), " ".join(e.message.split()))]
    return []


# ------------------------------------------------------------------------------------------ custom resources

_SCHEMA_MAPS = ("properties", "patternProperties")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_ONE = ("items", "additionalProperties", "not")


def strict_schema(node: Any) -> Any:
    """A CRD's structural OpenAPI v3 schema as strict JSON Schema: ``x-kubernetes-int-or-string`` as integer or
    string, ``nullable`` as a null type, and ``additionalProperties: false`` on every object with ``properties``
    (and no ``additionalProperties`` or ``x-kubernetes-preserve-unknown-fields``), where the API server would
    silently prune an unknown field and so hide a typo."""
    if not isinstance(node, dict):
        return node
    out = dict(node)
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: strict_schema(sub) for name, sub in out[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [strict_schema(sub) for sub in out[key]]
    for key in _SCHEMA_ONE:
        if isinstance(out.get(key), dict):
            out[key] = strict_schema(out[key])
        elif isinstance(out.get(key), list):
            out[key] = [strict_schema(sub) for sub in out[key]]
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        if "anyOf" not in out:
            out["type"] = ["integer", "string"]
    if out.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def apply_defaults(value: Any, schema: Mapping[str, Any]) -> Any:
    """The API server's structural defaulting: a missing property with a ``default`` gets it, in every object that
    is present (defaults are applied before validation, so a required field with a default is satisfied)."""
    if isinstance(value, dict):
        out = dict(value)
        props = schema.get("properties") or {}
        for name, sub in props.items():
            if name not in out and isinstance(sub, Mapping) and "default" in sub:
                out[name] = sub["default"]
            if name in out:
                out[name] = apply_defaults(out[name], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for name in out:
                if name not in props:
                    out[name] = apply_defaults(out[name], extra)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [apply_defaults(v, schema["items"]) for v in value]
    return value


class Crds:
    """CRDs by (group, kind), with a strict validator per served version."""

    def __init__(self, crds: Iterable[Mapping[str, Any]]):
        self.by_kind: dict[tuple[str, str], Mapping[str, Any]] = {}
        for crd in crds:
            spec = crd.get("spec") or {}
            self.by_kind.setdefault((spec.get("group", ""), (spec.get("names") or {}).get("kind", "")), crd)
        self._validators: dict[tuple[str, str, str], Any] = {}

    def served(self, group: str, kind: str, version: str) -> bool:
        crd = self.by_kind.get((group, kind))
        return bool(crd) and any(v.get("name") == version and v.get("served") for v in crd["spec"]["versions"])

    def problems(self, obj: Mapping[str, Any]) -> list[tuple[str, str]] | None:
        """(field, message) problems of a custom resource; None when no CRD here defines it."""
        import jsonschema

        group, version = group_version(str(obj.get("apiVersion", "")))
        kind = str(obj.get("kind", ""))
        if not self.served(group, kind, version):
            return None
        key = (group, kind, version)
        if key not in self._validators:
            crd = self.by_kind[(group, kind)]
            raw = next(v for v in crd["spec"]["versions"] if v.get("name") == version)["schema"]["openAPIV3Schema"]
            schema = strict_schema(raw)
            schema["properties"] = {**schema.get("properties", {}), "metadata": {"type": "object"}}
            self._validators[key] = (jsonschema.Draft202012Validator(schema), raw)
        validator, raw = self._validators[key]
        return [(".".join(str(p) for p in e.absolute_path), " ".join(e.message.split()))
                for e in validator.iter_errors(apply_defaults(dict(obj), raw))]


# ------------------------------------------------------------------------------------------------- the check

def operator_made(rendered: Sequence[Any]) -> list[tuple[str, dict[str, Any]]]:
    """Objects the GPU operator makes from its ClusterPolicy, where their kind needs more than the chart gives: the
    DCGM exporter's ServiceMonitor (``spec.dcgmExporter.serviceMonitor.enabled``)."""
    out = []
    for r in rendered:
        for policy in (o for o in r.objects if o.get("kind") == "ClusterPolicy"):
            dcgm = (policy.get("spec") or {}).get("dcgmExporter") or {}
            if dcgm.get("enabled", True) and (dcgm.get("serviceMonitor") or {}).get("enabled"):
                out.append((f"release {r.release} (made by the operator from ClusterPolicy "
                            "spec.dcgmExporter.serviceMonitor)",
                            {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                             "metadata": {"name": "nvidia-dcgm-exporter", "namespace": r.namespace}}))
    return out


def check(own: Sequence[Mapping[str, Any]], rendered: Sequence[Any], cluster: Cluster,
          validate_own: bool = True) -> list[Finding]:
    """Findings over the toolkit's objects (``own``) and the releases' rendered objects (``sovcloud.render.Rendered``
    without an error). ``validate_own=False`` checks only that the toolkit's own kinds are served (its objects are
    validated in the tests; at a thousand tenants a schema pass over each costs seconds)."""
    crds = Crds([*(crd for r in rendered for crd in r.crds), *operator_crds(own)])
    pre = cluster.prerequisites
    prerequisite_groups = {g for name, groups in PREREQUISITE_GROUPS.items() if pre.get(name) for g in groups}
    out: list[Finding] = []
    sources = [("sovcloud", obj) for obj in own] + [(f"release {r.release}", obj) for r in rendered
                                                    for obj in r.objects] + operator_made(rendered)
    for source, obj in sources:
        group, version = group_version(str(obj.get("apiVersion", "")))
        kind = str(obj.get("kind", ""))
        if group in MANAGEMENT_GROUPS and cluster.management_cluster:
            continue  # the management cluster's providers serve these (their CRDs are checked in the tests)
        if source == "sovcloud" and not validate_own:
            if is_builtin(str(obj.get("apiVersion", "")), kind, cluster.kubernetes_version) or \
                    crds.served(group, kind, version):
                continue
            found = None
        else:
            found = builtin_problems(obj, cluster.kubernetes_version)
        if found is None and (source != "sovcloud" or validate_own):
            found = crds.problems(obj)
        if found is None:
            if group in prerequisite_groups:
                continue
            hint = next((f"declare prerequisites.{name}" for name, groups in PREREQUISITE_GROUPS.items()
                         if group in groups), "install its CRD with one of the region's releases")
            out.append(Finding(source, ident(obj), "", f"kind {kind} ({group or 'core'}/{version}) is not served: no "
                               "built-in API, no CRD from the region's releases, no declared prerequisite; the "
                               f"apply fails with 'no matches for kind' ({hint}, or turn the object off)", "served"))
            continue
        out += [Finding(source, ident(obj), path, message, "schema") for path, message in found]
    out += reference_findings(own, rendered, pre)
    return out


def _get(node: Any, path: Sequence[str]) -> Any:
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def reference_findings(own: Sequence[Mapping[str, Any]], rendered: Sequence[Any],
                       prerequisites: Mapping[str, Any]) -> list[Finding]:
    """ConfigMaps and Secrets a ClusterPolicy names for an enabled operand, that nothing creates."""
    present: set[tuple[str, str, str]] = set()
    for obj in [*own, *(o for r in rendered for o in r.objects)]:
        meta = obj.get("metadata") or {}
        if obj.get("kind") in ("ConfigMap", "Secret"):
            present.add((str(obj["kind"]), str(meta.get("namespace") or ""), str(meta.get("name") or "")))
    for kind, key in (("ConfigMap", "configMaps"), ("Secret", "secrets")):
        for ref in prerequisites.get(key) or ():
            ns, _, name = str(ref).partition("/")
            present.add((kind, ns, name))
    out = []
    for r in rendered:
        for policy in (o for o in r.objects if o.get("kind") == "ClusterPolicy"):
            spec = policy.get("spec") or {}
            namespace = r.namespace  # the operator runs its operands in its own namespace
            for operand, path, kind in CLUSTER_POLICY_REFERENCES:
                node = spec.get(operand)
                name = _get(node, path)
                enabled = isinstance(node, Mapping) and node.get("enabled", True) not in (False, "false")
                if not name or not enabled or (kind, namespace, str(name)) in present:
                    continue
                out.append(Finding(f"release {r.release}", ident(policy), f"spec.{operand}.{'.'.join(path)}",
                                   f"names {kind} {namespace}/{name}, which nothing creates: not sovcloud, not the "
                                   f"chart, not a declared prerequisite (prerequisites.{kind[0].lower()}{kind[1:]}s); "
                                   f"the operator stops at {operand} until it exists", "reference"))
    return out
