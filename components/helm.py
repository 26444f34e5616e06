"""Where charts and images come from: the region's mirrors, never the internet."""

from __future__ import annotations

from typing import Any

from sovcloud.config import model


def mirror(region: model.Region, upstream: str) -> str:
    """``nvcr.io/nvidia/k8s`` -> ``<mirror>/nvidia/k8s``: the upstream path kept under the region's mirror."""
    if not upstream:  # no upstream default (e.g. the vGPU manager, an image each site builds): the mirror's root
        return region.registries.image_mirror
    path = upstream.split("/", 1)[1] if "." in upstream.split("/", 1)[0] else upstream
    return f"{region.registries.image_mirror}/{path}"


def mirror_repositories(region: model.Region, values: dict[str, Any], repositories: dict[tuple[str, ...], str],
                        **also: Any) -> None:
    """Set ``repository`` (and any ``also`` keys) at each path of ``repositories`` in ``values`` to the upstream
    repository's place on the region's mirror, creating the maps on the way."""
    for path, upstream in repositories.items():
        node = values
        for key in path:
            node = node.setdefault(key, {})
        node.update({"repository": mirror(region, upstream), **also})


def chart_source(region: model.Region, chart: str, version: str) -> dict[str, Any]:
    """``helm.v3.Release`` arguments for a chart on the region's repository: an https index or an OCI registry."""
    repo = region.registries.chart_repository.rstrip("/")
    if repo.startswith("oci://"):
        return {"chart": f"{repo}/{chart}", "version": version}
    return {"chart": chart, "version": version, "repository_opts": {"repo": repo}}
