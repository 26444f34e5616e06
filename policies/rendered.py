"""What will run: each Helm release rendered with Helm's own engine from the chart folders in the policy config
(``chartFolders``), and judged as the cluster would receive it.

Rendering needs the ``render`` extra (helm-python-sdk) and the charts at the pinned versions; where either is
missing these rules stay silent (``sovcloud check`` says which releases it could not render). The same rules run
under ``pulumi preview --policy-pack`` when the policy config names chart folders on the machine that runs it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from policies.resources import RELEASE, is_object, kind
from sovcloud import apiserver, render


def plain(value: Any) -> Any:
    """Props as plain data (the engine hands over read-only proxies)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(v) for v in value]
    return value


def release_spec(props: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": props.get("name"), "namespace": props.get("namespace"), "chart": props.get("chart"),
            "version": props.get("version"), "values": plain(props.get("values") or {})}


@cache
def _index(folders: tuple[str, ...]) -> render.ChartIndex:
    return render.ChartIndex(Path(f) for f in folders)


@cache
def _render(spec_json: str, chart_dir: str) -> render.Rendered:
    return render.render(json.loads(spec_json), Path(chart_dir))


def rendered(props: Mapping[str, Any], config: Mapping[str, Any]) -> render.Rendered | None:
    """The release rendered from the configured chart folders, or None (no folders, no Helm engine, no chart)."""
    folders = tuple(str(f) for f in config.get("chartFolders") or ())
    if not folders or not render.available():
        return None
    spec = release_spec(props)
    chart_dir = _index(folders).find(str(spec["chart"] or ""), str(spec["version"] or ""))
    if chart_dir is None:
        return None
    return _render(json.dumps(spec, sort_keys=True), str(chart_dir))


def chart_renders(args, report_violation) -> None:
    """The release renders with its pinned chart, and every value it sets is a key of that chart version's values
    (Helm ignores an unknown key silently: a setting of another version does nothing)."""
    if args.resource_type != RELEASE:
        return
    result = rendered(args.props, args.get_config())
    if result is None:
        return
    if result.error:
        report_violation(f"chart {result.chart} {result.version} does not render: {result.error}")
        return
    spec = release_spec(args.props)
    for problem in render.values_problems(spec["values"], render.default_values(result.chart_dir), result.chart):
        report_violation(f"{problem} (chart {result.chart} {result.version})")


@dataclass(frozen=True)
class Image:
    """An image a release runs: a container's (``ref`` carries the tag) or a GPU operator operand's (its
    repository in ``ref``, its tag in ``version``, and whether the ClusterPolicy enables it)."""

    where: str
    ref: str
    operand: bool = False
    version: str = ""
    enabled: bool = True


def rendered_images(result: render.Rendered) -> list[Image]:
    """What the release runs: every container of its workloads and every operand its ClusterPolicy starts."""
    out = []
    for obj in result.objects:
        for path, image in render.container_images(obj):
            out.append(Image(f"{apiserver.ident(obj)} {path}", image))
        if obj.get("kind") == "ClusterPolicy":
            for path, repo, version, enabled in render.operand_images(obj):
                out.append(Image(f"{apiserver.ident(obj)} {path}", repo, True, version, enabled))
    return out


def api_server_accepts(args, report_violation) -> None:
    """Every object of the stack and of its releases' rendered manifests is valid for the region's API server
    (built-in schemas of its Kubernetes version, CRD schemas after defaulting), every kind is served (built in, a
    CRD a release installs, or a declared prerequisite), and every ConfigMap or Secret the GPU operator is told to
    read exists."""
    config = args.get_config()
    resources = list(args.resources)
    results = [rendered(r.props, config) for r in resources if r.resource_type == RELEASE]
    ok = [r for r in results if r is not None and not r.error]
    if not ok:
        return
    release_urns = {str(r.props.get("name")): r.urn for r in resources if r.resource_type == RELEASE}
    own = [plain(r.props) for r in resources if is_object(r.resource_type) and kind(r)]
    cluster = apiserver.Cluster(str(config.get("kubernetesVersion") or ""), plain(config.get("prerequisites") or {}))
    for finding in apiserver.check(own, ok, cluster, validate_own=False):
        urn = release_urns.get(finding.source.removeprefix("release ")) if finding.source != "sovcloud" else None
        report_violation(str(finding), urn)
