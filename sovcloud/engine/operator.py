"""The Pulumi Kubernetes Operator's objects that run a region continuously: a ``pulumi.com/v1`` ``Stack`` per stack
(v2.9.0 CRD), from the config tree's git repository, with the region's backend and secrets, refreshed and
re-applied on a period. The operator attaches no policy pack (its Stack has no such field), so the program's own
policy gate holds the pack's mandatory rules (``sovcloud.engine.gate``): it is on in the operator's workspaces.

One Stack per region today (the region is one stack); tenant stacks, each with the platform stack as prerequisite,
come with the stack split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sovcloud.config.model import Config


@dataclass(frozen=True)
class OperatorOptions:
    repo: str  # the config tree's git repository (the workspace clones it)
    workspace_image: str  # an image with Python, the Pulumi CLI and sovcloud installed, from the region's mirror
    branch: str = "main"
    backend: str | None = None  # state backend URL (in the country: s3://, azblob://, file://, a self-hosted service)
    passphrase_secret: str | None = None  # Secret with key "passphrase": PULUMI_CONFIG_PASSPHRASE
    git_secret: str | None = None  # Secret the operator authenticates to the repository with (gitAuthSecret)
    namespace: str = "pulumi-kubernetes-operator"
    service_account: str = "sovcloud-deployer"
    resync_seconds: int = 600


def stack_name(region: str) -> str:
    return f"sovcloud-{region}"


def stacks(cfg: Config, region: str, opts: OperatorOptions) -> list[dict[str, Any]]:
    """The region's Stack objects."""
    cfg.regions[region]  # a KeyError for an unknown region: the command names the regions
    spec: dict[str, Any] = {
        "stack": region,  # the stack name in the backend: the region's name, as `pulumi stack select` uses it
        "projectRepo": opts.repo, "branch": opts.branch, "repoDir": "stacks",
        "refresh": True,  # what changed in the cluster outside sovcloud is seen before each update
        "continueResyncOnCommitMatch": True,  # re-applied every resync, so drift is put back without a new commit
        "resyncFrequencySeconds": opts.resync_seconds,
        "destroyOnFinalize": False,  # deleting the Stack object never deletes a region
        "serviceAccountName": opts.service_account,
        "workspaceTemplate": {"spec": {"image": opts.workspace_image, "imagePullPolicy": "IfNotPresent"}},
    }
    if opts.backend:
        spec["backend"] = opts.backend
    if opts.passphrase_secret:
        spec["envRefs"] = {"PULUMI_CONFIG_PASSPHRASE": {"type": "Secret", "secret": {
            "name": opts.passphrase_secret, "key": "passphrase"}}}
    if opts.git_secret:
        spec["gitAuthSecret"] = opts.git_secret
    return [{"apiVersion": "pulumi.com/v1", "kind": "Stack",
             "metadata": {"name": stack_name(region), "namespace": opts.namespace,
                          "labels": {"sovcloud.kr/region": region, "app.kubernetes.io/managed-by": "sovcloud"}},
             "spec": spec}]
