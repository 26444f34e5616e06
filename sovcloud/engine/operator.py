"""The Pulumi Kubernetes Operator's objects that run a region continuously: a ``pulumi.com/v1`` ``Stack`` per stack
(v2.9.0 CRD), from the config tree's git repository, with the region's backend and secrets, refreshed and
re-applied on a period. The operator attaches no policy pack (its Stack has no such field), so the program's own
policy gate holds the pack's mandatory rules (``sovcloud.engine.gate``): it is on in the operator's workspaces.

A Stack object per stack of the region: the platform stack, and each tenant stack (REGION.t.TENANT) with the
platform's Stack as its prerequisite, so the operator runs a tenant only after the platform last succeeded."""

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


def stack_name(stack: str) -> str:
    """The Stack object's name for a stack: ``sovcloud-REGION``, ``sovcloud-REGION-t-TENANT``. The operator names
    the workspace's StatefulSet, pod and Service after it, so no dots, and at most 42 characters (the v2.9.0 CRD's
    rule ``size(self.metadata.name) <= 42``: the pod's controller-revision-hash label must fit 63); a hash keeps a
    shortened name unique."""
    import hashlib

    from sovcloud import stacks as names

    region, tenant = names.parse(stack)
    name = f"sovcloud-{region}" + (f"-t-{tenant}" if tenant else "")
    if len(name) > 42:
        name = f"{name[:33].rstrip('-')}-{hashlib.sha256(stack.encode()).hexdigest()[:8]}"
    return name


def stacks(cfg: Config, region: str, opts: OperatorOptions) -> list[dict[str, Any]]:
    """The region's Stack objects: its platform stack's, then each tenant stack's, which waits for the platform."""
    from sovcloud import stacks as names

    cfg.regions[region]  # a KeyError for an unknown region: the command names the regions
    out = [_stack(region, opts)]
    for tenant in names.tenants_in(cfg, region):
        obj = _stack(names.tenant(region, tenant), opts)
        # the base requirement: the platform's Stack is in a successful state (its last update succeeded)
        obj["spec"]["prerequisites"] = [{"name": stack_name(region)}]
        # hundreds of tenant Stacks: their workspace pods go once an update succeeded (the platform's stays)
        obj["spec"]["workspaceReclaimPolicy"] = "Delete"
        obj["metadata"]["labels"]["sovcloud.kr/tenant"] = tenant
        out.append(obj)
    return out


def _stack(stack: str, opts: OperatorOptions) -> dict[str, Any]:
    from sovcloud import stacks as names

    region, _ = names.parse(stack)
    spec: dict[str, Any] = {
        "stack": stack,  # the stack's name in the backend, as `pulumi stack select` uses it
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
    return {"apiVersion": "pulumi.com/v1", "kind": "Stack",
            "metadata": {"name": stack_name(stack), "namespace": opts.namespace,
                         "labels": {"sovcloud.kr/region": region, "app.kubernetes.io/managed-by": "sovcloud"}},
            "spec": spec}
