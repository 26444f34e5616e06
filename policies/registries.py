"""Registries: charts and images come only from the region's approved (domestic) registries."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.rendered import rendered, rendered_images
from policies.resources import RELEASE, kind, release_chart, walk_values
from sovcloud import render
from sovcloud.config import charts
from sovcloud.config.catalog import version_tuple

WORKLOAD_KINDS = render.WORKLOAD_KINDS


def approved(reference: str, allowed: list[str]) -> bool:
    """``reference`` (an image, repository or chart URL) starts with an allowed registry prefix."""
    ref = reference.split("://", 1)[-1]
    return any(ref == a.rstrip("/") or ref.startswith(a.rstrip("/") + "/") for a in allowed)


def workload_images(props: Mapping[str, Any]) -> Iterator[str]:
    """Every container, init container and ephemeral container image of a workload object."""
    return (image for _, image in render.container_images(props) if image)


def required_image_keys(keys: Mapping[str, Any], chart: str, version: str) -> list[str]:
    """The image keys of ``chart`` at ``version``: that version's, else the newest listed one before it."""
    versions = keys.get(chart) or {}
    if version in versions:
        return list(versions[version])
    earlier = sorted((v for v in versions if version_tuple(v) <= version_tuple(version)), key=version_tuple)
    return list(versions[earlier[-1]]) if earlier else []


def approved_registries(args, report_violation) -> None:
    """Helm chart repositories, every image and repository in chart values, and every container image come from the
    region's approved registries; where the chart renders, so does every image the release will run."""
    allowed = list(args.get_config().get("allowedRegistries") or [])
    if args.resource_type == RELEASE:
        if not allowed:
            report_violation("no approved registries configured (policy config allowedRegistries)")
            return
        repo = (args.props.get("repositoryOpts") or {}).get("repo") or ""
        chart = str(args.props.get("chart") or "")
        source = repo or (chart if "://" in chart else "")
        if not source:
            report_violation(f"chart {chart} names no repository: it would resolve outside the approved registries")
        elif not approved(source, allowed):
            report_violation(f"chart repository {source} is not an approved registry ({', '.join(allowed)})")
        values = args.props.get("values") or {}
        driver = values.get("driver") or {}
        if release_chart(args) == "gpu-operator" and driver.get("enabled", True) and \
                not driver.get("usePrecompiled") and not (driver.get("repoConfig") or {}).get("configMapName"):
            report_violation("the driver container builds on the node from OS packages but values.driver.repoConfig "
                             "names no package mirror: it would fetch them from the distribution's servers abroad")
        for key in required_image_keys(args.get_config().get("requiredImageValues") or {}, release_chart(args),
                                       str(args.props.get("version") or "")):
            node = charts.mapping_get(values, key)
            if not node:
                report_violation(f"values.{key} is not set: the chart would pull its default image from abroad")
        for path, value in walk_values(values):
            leaf = path.rsplit(".", 1)[-1]
            # a registry is a bare host; a repository or image is a reference only when it has a path
            is_reference = isinstance(value, str) and bool(value) and (
                leaf == "registry" or (leaf in ("repository", "image") and "/" in value))
            if is_reference and not approved(value, allowed):
                report_violation(f"values.{path} = {value} is not from an approved registry")
        result = rendered(args.props, args.get_config())
        if result is not None and not result.error:
            # what will run, as Helm renders it: every container, and every operand the GPU operator starts
            for image in rendered_images(result):
                if not approved(image.ref, allowed):
                    field = f"{image.where}.repository" if image.operand else image.where
                    report_violation(f"{field} = {image.ref or '(empty)'} is not from an approved registry (rendered "
                                     f"from chart {result.chart} {result.version})")
    elif kind(args) in WORKLOAD_KINDS:
        for image in workload_images(args.props):
            if not approved(image, allowed):
                report_violation(f"image {image} is not from an approved registry ({', '.join(allowed) or 'none'})")
    elif kind(args) == "NicClusterPolicy":
        # every operand the Network Operator starts: <repository>/<image>:<version> of each section that has an
        # image (spec.global.repository fills in an empty one)
        spec = args.props.get("spec") or {}
        default = (spec.get("global") or {}).get("repository") or ""
        for path, value in walk_values(spec):
            if path.rsplit(".", 1)[-1] != "image" or not isinstance(value, str):
                continue
            section = path.rsplit(".", 1)[0]
            repo = charts.mapping_get(spec, f"{section}.repository") or default
            if not approved(f"{repo}/{value}" if repo else value, allowed):
                report_violation(f"spec.{section}.repository = {repo or '(empty)'} is not from an approved registry "
                                 f"({', '.join(allowed) or 'none'})")
