"""Rendering Helm releases with Helm's own engine, offline: what the cluster would receive from each release.

``helm-python-sdk`` (import ``helm_python``, the ``render`` extra) binds Helm's Go SDK: templates, subcharts and
``crds/`` exactly as ``helm install`` would process them, with no helm binary and no cluster (``lookup`` finds
nothing). Charts come from local directories (chart sources or ``.tgz`` packages), found by the name and version
in their ``Chart.yaml``. A release whose chart is not found there is skipped with one line; synthesis never needs
charts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Kubernetes string maps in chart values: any key goes, whatever the chart's default holds.
FREE_FORM_MAP_KEYS = frozenset({"labels", "annotations", "podAnnotations", "nodeSelector", "additionalLabels",
                                "podLabels", "configDaemonNodeSelector"})


def available() -> bool:
    """Whether Helm's engine can be loaded here (the ``render`` extra is installed)."""
    try:
        import helm_python  # noqa: F401
    except ImportError:
        return False
    return True


UNAVAILABLE = "rendering needs helm-python-sdk (pip install 'sovcloud[render]'); charts are not rendered"


def _same_version(a: str, b: str) -> bool:
    return str(a).lstrip("v") == str(b).lstrip("v")


def chart_name(chart: str) -> str:
    """The chart's name, also when given as an ``oci://`` reference."""
    return str(chart).rstrip("/").rsplit("/", 1)[-1]


class ChartIndex:
    """Chart directories and ``.tgz`` packages under some folders (each folder and its immediate children), by
    name and version."""

    def __init__(self, folders: Iterable[Path]):
        self.folders = [Path(f) for f in folders]
        self._charts: dict[tuple[str, str], Path] | None = None

    def _scan(self) -> dict[tuple[str, str], Path]:
        found: dict[tuple[str, str], Path] = {}
        for folder in self.folders:
            if not folder.is_dir():
                continue
            for candidate in sorted([folder, *folder.iterdir()]):
                meta = None
                if candidate.is_dir() and (candidate / "Chart.yaml").is_file():
                    meta = yaml.load((candidate / "Chart.yaml").read_text(encoding="utf-8"), Loader=_LOADER)
                elif candidate.suffix == ".tgz" and candidate.is_file():
                    meta = _archive_meta(candidate)
                if isinstance(meta, dict) and meta.get("name"):
                    found.setdefault((str(meta["name"]), str(meta.get("version", "")).lstrip("v")), candidate)
        return found

    def find(self, chart: str, version: str) -> Path | None:
        if self._charts is None:
            self._charts = self._scan()
        return self._charts.get((chart_name(chart), str(version).lstrip("v")))


def _archive_meta(path: Path) -> dict[str, Any] | None:
    import tarfile

    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar.getmembers():
                if member.name.count("/") == 1 and member.name.endswith("/Chart.yaml"):
                    f = tar.extractfile(member)
                    return yaml.load(f.read(), Loader=_LOADER) if f else None
    except (tarfile.TarError, OSError, yaml.YAMLError):
        return None
    return None


@dataclass
class Rendered:
    """One release as Helm would install it: the CRDs of its charts' ``crds/`` folders, then its templates'
    objects, in template order. ``error`` is Helm's message when the chart does not render."""

    release: str
    namespace: str
    chart: str
    version: str
    chart_dir: Path | None
    objects: list[dict[str, Any]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # the template each object came from
    crds: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    def all_objects(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for crd in self.crds:
            yield "crds", crd
        yield from zip(self.sources, self.objects, strict=True)


def _documents(text: str) -> Iterator[dict[str, Any]]:
    for doc in yaml.load_all(text, Loader=_LOADER):
        if isinstance(doc, dict) and doc.get("kind"):
            yield doc


def render(spec: Mapping[str, Any], chart_dir: Path) -> Rendered:
    """Render a release (``name``, ``namespace``, ``chart``, ``version``, ``values``) from ``chart_dir`` as a first
    install. Never raises for what the chart or values do: the result carries Helm's error instead."""
    import helm_python as helm

    out = Rendered(str(spec.get("name") or ""), str(spec.get("namespace") or "default"), chart_name(spec["chart"]),
                   str(spec.get("version") or ""), chart_dir)
    try:
        with helm.Chart.load(str(chart_dir)) as chart:
            manifests = chart.render(dict(spec.get("values") or {}), name=out.release, namespace=out.namespace,
                                     is_install=True)
            crd_files = chart.crds
    except helm.HelmError as exc:
        out.error = " ".join(str(exc).split())
        return out
    for crd in sorted(crd_files or [], key=lambda c: c["filename"]):
        out.crds += list(_documents(crd["data"]))
    for source in sorted(manifests):
        if source.endswith("NOTES.txt"):  # the release notes, not a manifest (Helm's notesFileSuffix; action.go)
            continue
        try:
            docs = list(_documents(manifests[source]))
        except yaml.YAMLError as exc:
            out.error = f"{source} renders invalid YAML: {' '.join(str(exc).split())}"
            return out
        for doc in docs:
            if doc.get("kind") == "CustomResourceDefinition":
                out.crds.append(doc)  # CRDs some charts (Kueue) ship as templates
            else:
                out.objects.append(doc)
                out.sources.append(source)
    return out


def missing(specs: Iterable[Mapping[str, Any]], index: ChartIndex) -> list[str]:
    """The releases whose chart the index does not have, one line each."""
    return [f"release {spec.get('name')}: chart {chart_name(spec['chart'])} {spec.get('version')} not found in "
            f"{', '.join(str(f) for f in index.folders)}; not rendered"
            for spec in specs if index.find(spec["chart"], spec.get("version", "")) is None]


def render_all(specs: Iterable[Mapping[str, Any]], index: ChartIndex) -> tuple[list[Rendered], list[str]]:
    """Render every release whose chart the index has; the rest are named, one line each."""
    specs = list(specs)
    rendered = [render(spec, chart_dir) for spec in specs
                if (chart_dir := index.find(spec["chart"], spec.get("version", ""))) is not None]
    return rendered, missing(specs, index)


# ------------------------------------------------------------------------------------------ values by chart

@cache
def default_values(chart_dir: Path) -> dict[str, Any]:
    """The chart's values.yaml with each subchart's under its name, as Helm merges them (a ``.tgz`` is unpacked
    to a temporary folder first)."""
    from sovcloud.config.charts import values_tree

    if chart_dir.is_dir():
        return values_tree(chart_dir)
    import tarfile
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, tarfile.open(chart_dir, "r:gz") as tar:
        tar.extractall(tmp, filter="data")
        (top,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
        return values_tree(top)


def values_problems(values: Mapping[str, Any], defaults: Mapping[str, Any], chart: str) -> list[str]:
    """Every path of ``values`` that the chart's default values do not have, or have with another shape: Helm
    ignores an unknown key silently, so a misspelt or version-specific setting does nothing."""
    out: list[str] = []

    def walk(given: Mapping[str, Any], default: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for key, value in given.items():
            dotted = ".".join((*path, key))
            if key not in default:
                out.append(f"values.{dotted}: not a key of chart {chart}'s values (keys there: "
                           f"{', '.join(sorted(default)) or 'none'})")
                continue
            chart_default = default[key]
            if isinstance(chart_default, dict) and chart_default and key not in FREE_FORM_MAP_KEYS:
                if isinstance(value, Mapping):
                    walk(value, chart_default, (*path, key))
                else:
                    out.append(f"values.{dotted}: chart {chart} has settings ({', '.join(sorted(chart_default))}) "
                               f"here, got {value!r}")
            elif isinstance(chart_default, list) and not isinstance(value, list | tuple):
                out.append(f"values.{dotted}: chart {chart} has a list here, got {value!r}")
            elif isinstance(chart_default, bool) and not isinstance(value, bool):
                out.append(f"values.{dotted}: chart {chart} has a boolean here, got {value!r}")

    walk(values, defaults, ())
    return out


# --------------------------------------------------------------------------------------- what runs, by image

WORKLOAD_KINDS = frozenset({"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob",
                            "ReplicationController"})


def pod_spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec") or {}
    return (spec.get("template") or {}).get("spec") or {}


def container_images(obj: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field path, image) of every container, init container and ephemeral container of a workload object."""
    if obj.get("kind") not in WORKLOAD_KINDS:
        return
    base = {"Pod": "spec", "CronJob": "spec.jobTemplate.spec.template.spec"}.get(str(obj.get("kind")),
                                                                                 "spec.template.spec")
    pod = pod_spec(obj)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for i, c in enumerate(pod.get(key) or []):
            yield f"{base}.{key}[{i}].image", str(c.get("image") or "")


def operand_images(policy: Mapping[str, Any]) -> Iterator[tuple[str, str, str, bool]]:
    """(field path, repository, version, enabled) of each operand of a GPU operator ClusterPolicy: the images the
    operator itself starts. An operand without ``enabled`` counts as on."""
    spec = policy.get("spec") or {}
    for name, operand in sorted(spec.items()):
        if not isinstance(operand, Mapping):
            continue
        for sub, node in ((name, operand), *((f"{name}.{k}", v) for k, v in sorted(operand.items())
                                             if isinstance(v, Mapping) and "repository" in v)):
            if "repository" in node or "image" in node:
                enabled = operand.get("enabled", True)
                with contextlib.suppress(AttributeError):
                    enabled = enabled if isinstance(enabled, bool) else str(enabled).lower() != "false"
                yield (f"spec.{sub}", str(node.get("repository") or ""), str(node.get("version") or ""),
                       bool(enabled))
