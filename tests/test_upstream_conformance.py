"""The synthesized objects against the real upstream APIs, not against what the toolkit believes they are.

- built-in kinds: the Kubernetes OpenAPI schemas of the region's Kubernetes minor, strict (``kubernetes_validate``);
- Kueue and Cluster API kinds: the openAPIV3Schema of the upstream CRD for the version the object names, made strict
  (unknown fields rejected, as a CRD would silently prune them);
- Metal3 / OpenStack machine templates (no CRD in the reference data): the provider's field names;
- Helm values: key paths of the pinned chart version's own values.yaml (chart sources), and every image repository
  of that version on the mirror;
- ``nvidia.com/gpu.product`` values: only products GPU Feature Discovery writes (domain facts, hard-coded here).

Upstream reference data is ``../shared/upstream`` (see its README.md): Kueue v0.19.2 and Cluster API v1.14.0 CRDs,
and the whole charts at the pinned versions (chart-sources/). Failures name the object, the field, what upstream
expects and the upstream file and line that says so, all at once.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import pytest
import yaml

from components import gpu_operator
from sovcloud import apiserver, config, render
from sovcloud.config import charts
from sovcloud.config.model import Config
from sovcloud.engine.synth import Record
from tests.conftest import CHART_SOURCES, REPO, SHARED, SHIPPED_REGIONS

UPSTREAM = SHARED / "upstream"
CRDS = UPSTREAM / "crds"
# CRDs of prerequisites the centre installs, kept beside the tests at the version named in each file's
# operator.prometheus.io/version annotation (prometheus-operator v0.93.0, example/prometheus-operator-crd/)
VENDORED_CRDS = Path(__file__).parent / "data" / "crds"
DOMAIN_FACTS = "shared/reference/domain-facts.md"
NO_UPSTREAM = "upstream reference data (../shared/upstream) not present"

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@pytest.fixture
def upstream() -> Path:
    if not UPSTREAM.is_dir():
        pytest.skip(NO_UPSTREAM)
    return UPSTREAM


@functools.cache
def _config() -> Config:
    return config.load(REPO)


def _ident(body: dict[str, Any]) -> str:
    meta = body.get("metadata") or {}
    ns = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{body.get('kind', '?')} {ns}{meta.get('name', '?')} ({body.get('apiVersion', '?')})"


def _group(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def _is_builtin(api_version: str) -> bool:
    """Core (``v1``), dotless groups (``apps``, ``batch``) and ``*.k8s.io`` groups; ``x-k8s.io`` is not ``k8s.io``."""
    group = _group(api_version)
    return "." not in group or group.endswith(".k8s.io")


def _fail_all(problems: list[str], what: str) -> None:
    if problems:
        pytest.fail(f"{len(problems)} {what}:\n" + "\n".join(problems), pytrace=False)


# ---------------------------------------------------------------------------------------- YAML line lookup

@functools.cache
def _composed(path: Path) -> yaml.Node:
    return yaml.compose(path.read_text(encoding="utf-8"), Loader=_LOADER)


def _line_of(path: Path, keys: tuple[Any, ...]) -> tuple[int, tuple[Any, ...]]:
    """Line (1-based) of the deepest node of ``keys`` present in the YAML file, and the keys that reached it."""
    node = _composed(path)
    line, reached = node.start_mark.line + 1, ()
    for key in keys:
        child = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == key:
                    line, child = k.start_mark.line + 1, v
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            child = node.value[key]
            line = child.start_mark.line + 1
        if child is None:
            break
        node, reached = child, (*reached, key)
    return line, reached


def _where(path: Path, keys: tuple[Any, ...]) -> str:
    line, _ = _line_of(path, keys)
    return f"{path.relative_to(SHARED.parent)}:{line}"


# --------------------------------------------------------------------------------- metadata (apimachinery)

# k8s.io/apimachinery/pkg/util/validation/validation.go: IsDNS1123Subdomain, IsDNS1123Label, IsQualifiedName,
# IsValidLabelValue.
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = re.compile(_DNS_LABEL)
DNS1123_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
RBAC_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
CR_METADATA_KEYS = {"name", "namespace", "labels", "annotations"}


def _qualified_name_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if "/" in prefix or (prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix))):
        return "prefix must be a DNS-1123 subdomain"
    if len(name) > 63 or not QUALIFIED_NAME.fullmatch(name):
        return "name part must be <= 63 alphanumerics, '-', '_', '.', starting and ending alphanumeric"
    return None


def _name_problem(kind: str, name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return "metadata.name missing"
    if kind in RBAC_KINDS:  # rbac ValidateRBACName: a path segment
        return "metadata.name must be a path segment" if name in (".", "..") or set(name) & {"/", "%"} else None
    if kind == "Namespace":  # ValidateNamespaceName: a DNS-1123 label
        ok = len(name) <= 63 and DNS1123_LABEL.fullmatch(name)
        return None if ok else f"metadata.name {name!r} is not a DNS-1123 label"
    ok = len(name) <= 253 and DNS1123_SUBDOMAIN.fullmatch(name)
    return None if ok else f"metadata.name {name!r} is not a DNS-1123 subdomain"


def _metadata_problems(body: dict[str, Any], allowed_keys: set[str] | None = None,
                       scope: str | None = None) -> list[str]:
    """Name, labels and annotations as the API server validates them for every object (ValidateObjectMeta);
    with ``allowed_keys``, only those keys (a custom resource's metadata is not in its CRD schema); with ``scope``
    (a CRD's Namespaced / Cluster), a namespace exactly when the kind is namespaced."""
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        return ["metadata: missing or not a mapping"]
    out = []
    if allowed_keys is not None and set(meta) - allowed_keys:
        out.append(f"metadata: unexpected {sorted(set(meta) - allowed_keys)}, expected only {sorted(allowed_keys)}")
    if (problem := _name_problem(str(body.get("kind")), meta.get("name"))) is not None:
        out.append(problem)
    if scope == "Namespaced" and not meta.get("namespace"):
        out.append("metadata.namespace missing: the CRD's spec.scope is Namespaced")
    if scope == "Cluster" and "namespace" in meta:
        out.append("metadata.namespace set: the CRD's spec.scope is Cluster")
    if "namespace" in meta and not (isinstance(meta["namespace"], str) and DNS1123_LABEL.fullmatch(meta["namespace"])):
        out.append(f"metadata.namespace {meta['namespace']!r} is not a DNS-1123 label")
    for field in ("labels", "annotations"):
        entries = meta.get(field, {})
        if not isinstance(entries, dict):
            out.append(f"metadata.{field}: not a mapping")
            continue
        for key, value in entries.items():
            if not isinstance(key, str) or not isinstance(value, str):
                out.append(f"metadata.{field}[{key!r}]: keys and values must be strings, got {value!r}")
            elif (problem := _qualified_name_problem(key)) is not None:
                out.append(f"metadata.{field}[{key!r}]: key {problem}")
            elif field == "labels" and (len(value) > 63 or not LABEL_VALUE.fullmatch(value)):
                out.append(f"metadata.labels[{key!r}]: value {value!r} is not a label value (<= 63 alphanumerics, "
                           "'-', '_', '.', starting and ending alphanumeric)")
    return out


# ------------------------------------------------------------------------------- 1. built-in kinds, strict

# kubernetes_validate re-reads and re-parses its 1.4 MB _definitions.json for every object; the schema files are
# read-only data, so one parse per file serves every validation (10x faster, same validation).
_cached_schema_contents = functools.cache(kv_utils.schema_contents)


kubernetes_schema_version = apiserver.schema_version


def test_kubernetes_version_maps_to_the_nearest_schema_minor() -> None:
    supported = {v.rsplit(".", 1)[0] for v in kv_utils.all_versions()}
    assert "1.33" in supported and "1.32" in supported  # the shipped regions' minors
    assert kubernetes_schema_version("1.33.4") == "1.33.0"
    assert kubernetes_schema_version("v1.32.8") == "1.32.0"
    newest = max(kv_utils.all_versions(), key=lambda v: tuple(int(p) for p in v.split(".")))
    assert kubernetes_schema_version("1.999.0") == newest.rsplit(".", 1)[0] + ".0"
    with pytest.raises(LookupError, match=r"none for Kubernetes 2\.0\.0"):
        kubernetes_schema_version("2.0.0")


def test_kubernetes_validate_strict_rejects_what_the_api_would(monkeypatch: pytest.MonkeyPatch) -> None:
    # the oracle itself: strict mode must reject unknown fields, or test 1 proves nothing
    monkeypatch.setattr(kv_utils, "schema_contents", _cached_schema_contents)
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
            "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]}}
    kubernetes_validate.validate(node, "1.33.0", strict=True)
    with pytest.raises(kubernetes_validate.ValidationError, match="'taint' was unexpected"):
        kubernetes_validate.validate({**node, "spec": {"taint": []}}, "1.33.0", strict=True)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**node, "spec": {"taints": [{"key": "k"}]}}, "1.33.0", strict=True)


@pytest.mark.parametrize("region", SHIPPED_REGIONS)
def test_builtin_objects_validate_strictly_for_the_region_kubernetes_version(
        shipped_synthesis, region: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kv_utils, "schema_contents", _cached_schema_contents)
    k8s_version = _config().regions[region].kubernetes_version
    try:
        version = kubernetes_schema_version(k8s_version)
    except LookupError as exc:
        pytest.fail(f"{region}: kubernetesVersion {k8s_version}: {exc}", pytrace=False)
    schema_dir = f"kubernetes_validate {kubernetes_validate.__version__} kubernetes-json-schema/v{version}-local-strict"
    problems, checked = [], 0
    for rec in shipped_synthesis(region).kubernetes_objects():
        body = rec.inputs
        if not _is_builtin(body.get("apiVersion", "")):
            continue
        checked += 1
        try:
            kubernetes_validate.validate(body, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path) or "<root>"
            problems.append(f"{_ident(body)}: {path}: {e.message} [{schema_dir}, schema path "
                            f"{'/'.join(str(p) for p in e.schema_path)}]")
        except kubernetes_validate.SchemaNotFoundError as e:
            problems.append(f"{_ident(body)}: not a built-in kind of Kubernetes {version}: {e.message}")
        problems += [f"{_ident(body)}: {p} [k8s.io/apimachinery ValidateObjectMeta]" for p in _metadata_problems(body)]
    assert checked, f"{region}: no built-in objects synthesised"
    _fail_all(problems, f"built-in objects of {region} invalid for Kubernetes {k8s_version} (schemas {version})")


# --------------------------------------------------------------------- 2. Kueue and Cluster API: the CRDs

# Every kind the toolkit emits has its CRD in the reference data (Kueue, Cluster API, CAPM3, CAPO).
NO_REFERENCE_CRD: set[str] = set()
strict_schema = apiserver.strict_schema


@functools.cache
def _crd_index() -> dict[tuple[str, str], tuple[Path, dict[str, Any]]]:
    """(spec.group, spec.names.kind) -> (file, CRD) for every CRD file in the reference data."""
    index: dict[tuple[str, str], tuple[Path, dict[str, Any]]] = {}
    # the reference CRDs; a chart's own crds/ (the Network Operator's NetworkAttachmentDefinition, its SR-IOV
    # subchart's SriovNetworkNodePolicy); CRDs kept beside
    # the tests; and the ones an operator installs itself, kept in sovcloud/crds (nv-ipam's IPPool)
    chart_crds = sorted((UPSTREAM / "chart-sources").glob("network-operator-*/crds/*.yaml")) + sorted(
        (UPSTREAM / "chart-sources").glob("network-operator-*/charts/sriov-network-operator/crds/*.yaml"))
    operator_crds = sorted((REPO / "sovcloud" / "crds").glob("*.yaml"))
    for path in [*sorted(CRDS.glob("*.yaml")), *chart_crds, *sorted(VENDORED_CRDS.glob("*.yaml")), *operator_crds]:
        for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_LOADER):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                index[(doc["spec"]["group"], doc["spec"]["names"]["kind"])] = (path, doc)
    return index


@functools.cache
def crd_validator(group: str, kind: str, version: str) -> tuple[jsonschema.protocols.Validator, str, Path, int]:
    """Strict validator of ``group/version`` ``kind``, the CRD's scope, its file and the version's index in
    spec.versions. LookupError when the reference data has no such CRD or version."""
    if (group, kind) not in _crd_index():
        raise LookupError(f"no upstream CRD for group {group} kind {kind} in {CRDS}")
    path, crd = _crd_index()[(group, kind)]
    versions = [v["name"] for v in crd["spec"]["versions"]]
    if version not in versions:
        raise LookupError(f"{path.name}: {group}/{version} is not a version of {kind} (versions: {versions})")
    index = versions.index(version)
    served = crd["spec"]["versions"][index]
    if not served.get("served", False):
        raise LookupError(f"{_where(path, ('spec', 'versions', index))}: {group}/{version} {kind} is not served")
    if served.get("deprecated"):
        raise LookupError(f"{_where(path, ('spec', 'versions', index, 'deprecated'))}: {group}/{version} {kind} is "
                          f"deprecated upstream ({served.get('deprecationWarning', 'no warning given')})")
    schema = strict_schema(served["schema"]["openAPIV3Schema"])
    # A CRD leaves metadata to the API server (type: object, nothing more): _metadata_problems checks it instead.
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft202012Validator(schema), crd["spec"]["scope"], path, index


def _crd_error(body: dict[str, Any], e: jsonschema.ValidationError, path: Path, index: int, version: str) -> str:
    at = ".".join(str(p) for p in e.absolute_path) or "<root>"
    message = e.message
    if e.validator == "additionalProperties" and isinstance(e.schema, dict):
        message += f"; allowed: {sorted(e.schema.get('properties', {}))}"
    schema_path = tuple(e.absolute_schema_path)
    upstream = _where(path, ("spec", "versions", index, "schema", "openAPIV3Schema", *schema_path))
    pointer = "/".join(str(p) for p in schema_path)
    return (f"{_ident(body)}: {at}: {message} [{upstream}: spec.versions[name={version}].schema.openAPIV3Schema/"
            f"{pointer}]")


def test_strict_crd_schema_rejects_unknown_and_renamed_fields(upstream: Path) -> None:
    # the oracle itself: a v1beta1 field name under v1beta2 must fail, int-or-string quotas must pass
    validator, scope, _, _ = crd_validator("kueue.x-k8s.io", "ClusterQueue", "v1beta2")
    assert scope == "Cluster"
    quota = [{"name": "f", "resources": [{"name": "cpu", "nominalQuota": "8"},
                                         {"name": "nvidia.com/gpu", "nominalQuota": 8}]}]
    cq = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": "t"},
          "spec": {"cohortName": "c", "resourceGroups": [{"coveredResources": ["cpu", "nvidia.com/gpu"],
                                                          "flavors": quota}]}}
    assert list(validator.iter_errors(cq)) == []
    renamed = {**cq, "spec": {**cq["spec"], "cohort": "c"}}
    assert [e.message for e in validator.iter_errors(renamed)] == [
        "Additional properties are not allowed ('cohort' was unexpected)"]
    bad_quota = [{"name": "f", "resources": [{"name": "cpu", "nominalQuota": [8]}]}]
    wrong = {**cq, "spec": {**cq["spec"], "resourceGroups": [{"coveredResources": ["cpu"], "flavors": bad_quota}]}}
    assert list(validator.iter_errors(wrong))
    assert _metadata_problems({**cq, "metadata": {"name": "t", "namespace": "x", "uid": "1"}},
                              CR_METADATA_KEYS, scope) == [
        "metadata: unexpected ['uid'], expected only ['annotations', 'labels', 'name', 'namespace']",
        "metadata.namespace set: the CRD's spec.scope is Cluster"]


@pytest.mark.parametrize("region", SHIPPED_REGIONS)
def test_kueue_and_cluster_api_objects_match_upstream_crds(shipped_synthesis, region: str, upstream: Path) -> None:
    problems, checked = [], 0
    for rec in shipped_synthesis(region).kubernetes_objects():
        body = rec.inputs
        api_version = body.get("apiVersion", "")
        if _is_builtin(api_version) or body.get("kind") in NO_REFERENCE_CRD:
            continue
        group, _, version = api_version.rpartition("/")
        try:
            validator, scope, path, index = crd_validator(group, body.get("kind", ""), version)
        except LookupError as exc:
            problems.append(f"{_ident(body)}: {exc}")
            continue
        checked += 1
        # the API server applies the schema's defaults before it validates (identityRef.type: Secret, ...)
        raw = _crd_index()[(group, body["kind"])][1]["spec"]["versions"][index]["schema"]["openAPIV3Schema"]
        defaulted = apiserver.apply_defaults(body, raw)
        problems += [_crd_error(body, e, path, index, version) for e in validator.iter_errors(defaulted)]
        problems += [f"{_ident(body)}: {p} [{path.name} spec.scope {scope}; k8s.io/apimachinery ValidateObjectMeta]"
                     for p in _metadata_problems(body, CR_METADATA_KEYS, scope)]
    assert checked, f"{region}: no Kueue or Cluster API objects synthesised"
    _fail_all(problems, f"Kueue / Cluster API objects of {region} do not match the upstream CRDs")


# ------------------------------------------------------------ 2b. both infrastructure providers are exercised

def test_shipped_config_has_both_infra_template_kinds(shipped_synthesis) -> None:
    # otherwise the CRD checks above could pass over nothing
    def kinds(region: str) -> dict[str, str]:
        return {r.inputs["kind"]: r.inputs["apiVersion"] for r in shipped_synthesis(region).kubernetes_objects()}

    # CAPM3 v1.13 serves Metal3MachineTemplate in v1beta2 (v1beta1 deprecated); CAPO v0.14 serves v1beta1
    assert kinds("ncc-haenam")["Metal3MachineTemplate"] == "infrastructure.cluster.x-k8s.io/v1beta2"
    assert kinds("rdc-ulsan")["OpenStackMachineTemplate"] == "infrastructure.cluster.x-k8s.io/v1beta1"


# ----------------------------------------------------------------------------------------- 3. Helm values

def chart_source(chart: str, version: str) -> Path:
    """The whole upstream chart at a version, from ../shared/upstream/chart-sources (``<chart>-v<version>``)."""
    path = CHART_SOURCES / f"{chart}-v{version.lstrip('v')}"
    if not path.is_dir():
        pytest.skip(f"chart {chart} {version} not in {CHART_SOURCES} (upstream chart sources not present)")
    return path


def _release(shipped_synthesis, region: str, chart: str) -> Record:
    found = [r for r in shipped_synthesis(region).helm_releases()
             if str(r.inputs.get("chart", "")).rstrip("/").rsplit("/", 1)[-1] == chart]
    assert len(found) == 1, f"{region}: {len(found)} Helm releases of chart {chart}"
    return found[0]


def _get(values: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(values, dict) or key not in values:
            return None
        values = values[key]
    return values


RELEASES = [(region, chart) for region in SHIPPED_REGIONS for chart in ("gpu-operator", "kueue")] + \
    [("rdc-ulsan", "dra-driver-nvidia-gpu")]


def test_values_walk_flags_unknown_and_reshaped_keys() -> None:
    given = {"driver": {"version": "1", "rdma": True, "repoConfig": {"configMapName": "x", "typo": 1}},
             "daemonsets": {"tolerations": [], "labels": {"any/key": "v"}},
             "devicePlugin": {"config": {"data": {"anything": "goes"}}, "enabled": "true"},
             "node-feature-discovery": {"worker": {"tolerations": []}, "whatever": 1}, "nfd": {"enable": True}}
    chart = chart_source("gpu-operator", "v26.3.3")
    problems = render.values_problems(given, render.default_values(chart), "gpu-operator")
    assert [p.split(":")[0] for p in problems] == [
        "values.driver.rdma", "values.driver.repoConfig.typo", "values.devicePlugin.enabled",
        "values.node-feature-discovery.whatever", "values.nfd.enable"]


@pytest.mark.parametrize(("region", "chart"), RELEASES)
def test_helm_values_are_keys_of_the_pinned_chart(shipped_synthesis, region: str, chart: str) -> None:
    inputs = _release(shipped_synthesis, region, chart).inputs
    source = chart_source(chart, inputs["version"])
    assert inputs["values"], f"{region}: the {chart} release sets no values"
    _fail_all(render.values_problems(inputs["values"], render.default_values(source), chart),
              f"{chart} {inputs['version']} values of {region} not in {source.relative_to(SHARED.parent)}")


@pytest.mark.parametrize("version", ["v25.10.1", "v26.3.3", "v26.7.0"])
@pytest.mark.parametrize("region", SHIPPED_REGIONS)
def test_gpu_operator_values_fit_every_chart_version_in_the_sources(region: str, version: str) -> None:
    """The values sovcloud writes for each GPU operator version are keys of that version's own values.yaml (a key
    of another version is ignored by Helm: draDriver on v26.3, kataSandboxDevicePlugin on v25.10)."""
    source = chart_source("gpu-operator", version)
    r = _config().regions[region]
    pinned = dataclasses.replace(r, gpu_operator=dataclasses.replace(r.gpu_operator, chart_version=version))
    _fail_all(render.values_problems(gpu_operator.helm_values(pinned), render.default_values(source), "gpu-operator"),
              f"gpu-operator values of {region} not in {version}")


def test_chart_image_facts_are_those_of_the_chart_sources() -> None:
    """sovcloud/config/chart_images.json holds, per chart version, exactly the image keys of that version."""
    checked = 0
    for chart, versions in charts._facts().items():
        for version, paths in versions.items():
            source = CHART_SOURCES / f"{chart}-v{version.lstrip('v')}"
            if source.is_dir():
                assert paths == charts.derive_repositories(source), f"{chart} {version}"
                checked += 1
    if not checked:
        pytest.skip(f"no chart sources in {CHART_SOURCES}")
    assert checked >= 5


@pytest.mark.parametrize(("region", "chart"), RELEASES)
def test_every_chart_image_repository_points_at_the_region_mirror(shipped_synthesis, region: str, chart: str) -> None:
    mirror = _config().regions[region].registries.image_mirror.rstrip("/")
    inputs = _release(shipped_synthesis, region, chart).inputs
    in_chart = charts.derive_repositories(chart_source(chart, inputs["version"]))
    assert in_chart, f"{chart}: no repository keys"
    problems = []
    for dotted, default in in_chart.items():
        value = _get(inputs["values"], (*dotted.split("."), "repository"))
        # a key with no upstream default (the vGPU manager: each site builds it) points at the mirror's root
        ok = isinstance(value, str) and (value.startswith(mirror + "/") or (not default and value == mirror))
        if not ok:
            problems.append(f"{chart} values {dotted}.repository: {value!r}, expected an image repository under "
                            f"{mirror}/ [chart default {default!r}]")
    _fail_all(problems, f"{chart} image repositories of {region} not on the mirror")


# -------------------------------------------------------------------------------- 4. nvidia.com/gpu.product

GPU_PRODUCT = "nvidia.com/gpu.product"
PRODUCT_ANNOTATION = "sovcloud.kr/gpu-product"  # the product a MachineDeployment's nodes will report
# The independent oracle, from domain facts ("Node labels ...", "GPU catalog"): the product names GFD writes (NVML
# name, spaces as '-') and each product's MIG profiles. Deliberately not imported from sovcloud.config.catalog.
GFD_PRODUCTS: dict[str, tuple[str, ...]] = {
    "NVIDIA-H100-80GB-HBM3": ("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
    "NVIDIA-H200": ("1g.18gb", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"),
    "NVIDIA-B200": ("1g.23gb", "1g.45gb", "2g.45gb", "3g.90gb", "4g.90gb", "7g.180gb"),
    "NVIDIA-GB200": ("1g.23gb", "1g.47gb", "2g.47gb", "3g.93gb", "4g.93gb", "7g.186gb"),
    "NVIDIA-L40S": (),
    "NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition": ("1g.24gb", "2g.48gb", "4g.96gb"),
    "NVIDIA-B300-SXM6-AC": ("1g.34gb", "1g.67gb", "2g.67gb", "3g.135gb", "4g.135gb", "7g.269gb"),
    "NVIDIA-GB300": ("1g.35gb", "1g.70gb", "2g.70gb", "3g.139gb", "4g.139gb", "7g.278gb"),
}
# "nvidia.com/gpu.product=X" in kubelet --node-labels and autoscaler label lists, "...: X" in embedded YAML
_PRODUCT_IN_TEXT = re.compile(re.escape(GPU_PRODUCT) + r"""\s*[=:]\s*["']?([^,\s"'}]+)""")


def gfd_product_problem(value: Any, mig_strategy: str) -> str | None:
    """None when GFD writes ``value`` as a product label: a product, ``<product>-SHARED`` under time-slicing, or
    ``<product>-MIG-<profile>`` under the single MIG strategy (the mixed strategy keeps the plain product)."""
    if not isinstance(value, str):
        return f"{value!r} is not a string"
    if value in GFD_PRODUCTS:
        return None
    if value.endswith("-SHARED") and value.removesuffix("-SHARED") in GFD_PRODUCTS:
        return None
    product, sep, profile = value.partition("-MIG-")
    if sep and product in GFD_PRODUCTS:
        if profile not in GFD_PRODUCTS[product]:
            return f"{value!r}: {product} has no MIG profile {profile!r} (it has {list(GFD_PRODUCTS[product])})"
        if mig_strategy != "single":
            return f"{value!r}: GFD appends -MIG-<profile> only under the single MIG strategy, the region uses " \
                   f"{mig_strategy}"
        return None
    return f"{value!r} is not a product GFD writes (products: {sorted(GFD_PRODUCTS)}, optionally -SHARED or " \
           "-MIG-<profile>)"


def product_values(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(where, value) of every gpu.product the object writes: label maps, selectors, match expressions, the
    the MachineDeployment's product annotation, and label lists or YAML inside strings."""
    if isinstance(node, dict):
        if node.get("key") == GPU_PRODUCT and isinstance(node.get("values"), list):
            for i, v in enumerate(node["values"]):
                yield f"{path}.values[{i}]", v
        for key, value in node.items():
            at = f"{path}.{key}" if path else str(key)
            if key in (GPU_PRODUCT, PRODUCT_ANNOTATION):
                yield at, value
            else:
                yield from product_values(value, at)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from product_values(value, f"{path}[{i}]")
    elif isinstance(node, str):
        for m in _PRODUCT_IN_TEXT.finditer(node):
            yield path, m.group(1)


def test_gfd_product_oracle() -> None:
    assert gfd_product_problem("NVIDIA-B200", "mixed") is None
    assert gfd_product_problem("NVIDIA-L40S-SHARED", "mixed") is None
    assert gfd_product_problem("NVIDIA-H200-MIG-1g.18gb", "single") is None
    assert gfd_product_problem("NVIDIA-H200-MIG-1g.18gb", "mixed") is not None
    assert gfd_product_problem("NVIDIA-H200-MIG-1g.10gb", "single") is not None
    for wrong in ("B200", "NVIDIA-H100", "NVIDIA-H200-141GB-HBM3e", "NVIDIA-B200-shared", "nvidia-b200"):
        assert gfd_product_problem(wrong, "single") is not None, wrong
    text = {"labels": "a=b,nvidia.com/gpu.product=NVIDIA-B200,c=d", "data": "nvidia.com/gpu.product: NVIDIA-H200\n"}
    assert sorted(v for _, v in product_values(text)) == ["NVIDIA-B200", "NVIDIA-H200"]


@pytest.mark.parametrize("region", SHIPPED_REGIONS)
def test_gpu_product_values_are_ones_gfd_writes(shipped_synthesis, region: str) -> None:
    strategy = _config().regions[region].gpu_operator.mig_strategy
    s = shipped_synthesis(region)
    problems, seen_kinds = [], set()
    for rec in [*s.kubernetes_objects(), *s.helm_releases()]:
        body = rec.inputs
        for where, value in product_values(body):
            seen_kinds.add(body.get("kind", rec.type))
            if (problem := gfd_product_problem(value, strategy)) is not None:
                problems.append(f"{_ident(body)}: {where}: {problem} [{DOMAIN_FACTS}: gpu.product]")
    assert "ResourceFlavor" in seen_kinds, f"{region}: no ResourceFlavor selects a {GPU_PRODUCT}"
    _fail_all(problems, f"{GPU_PRODUCT} values of {region} that GFD never writes")


@pytest.mark.parametrize("region", SHIPPED_REGIONS)
def test_autoscaler_gpu_type_is_the_resource_name(shipped_synthesis, region: str) -> None:
    # cluster-autoscaler's clusterapi provider advertises gpu-count of the resource *named* by gpu-type
    mds = [r.inputs for r in shipped_synthesis(region).kubernetes_objects() if r.inputs["kind"] == "MachineDeployment"]
    types = {md["metadata"]["annotations"]["capacity.cluster-autoscaler.kubernetes.io/gpu-type"] for md in mds}
    assert types <= {"nvidia.com/gpu"}
