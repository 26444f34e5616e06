"""Showback: the recording rules that sum GPUs per tenant and pool (``sovcloud.showback``), as a PrometheusRule
(monitoring.coreos.com/v1, prometheus-operator v0.93.0 CRD) where the region declares the Prometheus Operator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components import labels as L
from components.custom_object import CustomObject
from components.gpu_operator import NAMESPACE
from sovcloud import showback
from sovcloud.config import model

RULE_NAME = "sovcloud-showback"


def prometheus_rule(region: model.Region) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": RULE_NAME, "namespace": NAMESPACE,
                         "labels": {**dict(region.showback.rule_labels), **L.common(region)}},
            "spec": {"groups": showback.recording_rules(region.pools, region.showback.rule_interval)}}


@dataclass(frozen=True)
class ShowbackArgs:
    region: model.Region


class Showback(pulumi.ComponentResource):
    """The region's showback recording rules (only where the Prometheus Operator is declared)."""

    def __init__(self, name: str, args: ShowbackArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovcloud:showback:Showback", name, None, opts)
        CustomObject(f"{name}-rules", prometheus_rule(args.region), pulumi.ResourceOptions(parent=self))
        self.register_outputs({})
