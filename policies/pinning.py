"""Pinning and compatibility: charts, driver and images are pinned, and the driver supports every GPU model."""

from __future__ import annotations

import re

from policies.registries import WORKLOAD_KINDS, workload_images
from policies.rendered import rendered, rendered_images
from policies.resources import (
    GPU,
    GPU_PRODUCT_ANNOTATION,
    RELEASE,
    base_product,
    kind,
    objects,
    release_chart,
    releases,
)
from sovcloud.config.catalog import version_tuple

EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")
EXACT_DRIVER = re.compile(r"^\d+\.\d+\.\d+$")


def pinned_versions(args, report_violation) -> None:
    """Helm charts carry an exact version, the GPU driver an exact version, workload images a tag or digest that
    is not `latest`; where the chart renders, so do the release's containers and its enabled operands."""
    if args.resource_type == RELEASE:
        version = str(args.props.get("version") or "")
        if not EXACT_VERSION.match(version):
            report_violation(f"chart {release_chart(args)} version {version or 'unset'} is not pinned (exact x.y.z)")
        if release_chart(args) == "gpu-operator":
            driver = str(((args.props.get("values") or {}).get("driver") or {}).get("version") or "")
            if not EXACT_DRIVER.match(driver):
                report_violation(f"driver.version {driver or 'unset'} is not pinned (exact, e.g. 580.126.20)")
        result = rendered(args.props, args.get_config())
        if result is not None and not result.error:
            for image in rendered_images(result):
                if image.operand:  # its tag is a field of its own; only an operand that runs matters
                    if image.enabled and image.version in ("", "latest"):
                        report_violation(f"{image.where}.version = {image.version or '(empty)'}: an enabled operand "
                                         f"is not pinned (rendered from chart {result.chart} {result.version})")
                elif not pinned(image.ref):
                    report_violation(f"{image.where} = {image.ref} is not pinned to a tag or digest (rendered from "
                                     f"chart {result.chart} {result.version})")
    elif kind(args) in WORKLOAD_KINDS:
        for image in workload_images(args.props):
            if not pinned(image):
                report_violation(f"image {image} is not pinned to a tag or digest")


def pinned(image: str) -> bool:
    """A digest, or a tag that is not ``latest``."""
    last = image.rsplit("/", 1)[-1]
    return "@" in last or (":" in last and not last.endswith(":latest"))


def region_products(resources) -> set[str]:
    """GFD products of the region's pools: ResourceFlavor node labels and MachineDeployment product annotations."""
    products = set()
    for r in objects(resources, "ResourceFlavor"):
        product = ((r.props.get("spec") or {}).get("nodeLabels") or {}).get(f"{GPU}.product")
        if product:
            products.add(base_product(product))
    for r in objects(resources, "MachineDeployment"):
        product = ((r.props.get("metadata") or {}).get("annotations") or {}).get(GPU_PRODUCT_ANNOTATION)
        if product:
            products.add(product)
    return products


def driver_supports_models(args, report_violation) -> None:
    """The GPU operator's driver and chart support every GPU model in the region; Blackwell gets open kernel
    modules."""
    resources = list(args.resources)
    models = args.get_config().get("gpuModels") or {}
    operator = next((r for r in releases(resources) if release_chart(r) == "gpu-operator"), None)
    products = region_products(resources)
    if operator is None:
        if products:
            report_violation(f"GPU pools ({', '.join(sorted(products))}) but no gpu-operator release")
        return
    values = operator.props.get("values") or {}
    driver = str((values.get("driver") or {}).get("version") or "")
    modules = (values.get("driver") or {}).get("kernelModuleType", "auto")
    chart = str(operator.props.get("version") or "")
    for product in sorted(products):
        model = models.get(product)
        if model is None:
            report_violation(f"GPU product {product} is not in the policy's gpuModels: its support is unknown",
                             operator.urn)
            continue
        if driver and version_tuple(driver) < version_tuple(model["minDriver"]):
            report_violation(f"driver {driver} does not support {product} (needs {model['minDriver']} or newer)",
                             operator.urn)
        if chart and version_tuple(chart) < version_tuple(model["minOperator"]):
            report_violation(f"gpu-operator {chart} does not support {product} (needs {model['minOperator']} or "
                             "newer)", operator.urn)
        if model.get("openKernelModules") and modules == "proprietary":
            report_violation(f"{product} needs NVIDIA's open kernel modules; driver.kernelModuleType is proprietary",
                             operator.urn)
