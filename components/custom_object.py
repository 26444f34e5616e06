"""Custom resources (Kueue, Cluster API) registered from a whole object body.

``pulumi_kubernetes.apiextensions.CustomResource`` only carries ``metadata`` and ``spec``; some kinds keep fields
beside them (a WorkloadPriorityClass has a top-level ``value``). This registers the same resource type token,
``kubernetes:<apiVersion>:<kind>``, with every top-level field of the body, exactly as CustomResource does for
the fields it knows.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi_kubernetes import _utilities


class CustomObject(pulumi.CustomResource):
    def __init__(self, resource_name: str, body: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(version=_utilities.get_version()))
        super().__init__(f"kubernetes:{body['apiVersion']}:{body['kind']}", resource_name, dict(body), opts)
