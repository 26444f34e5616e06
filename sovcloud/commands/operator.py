"""The `sovcloud operator-manifests` command (the objects come from ``sovcloud.engine.operator``)."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from sovcloud.commands.common import (
    deliver,
    load_or_exit,
    project_root,
    refuse_output_in_config,
    region_or_fail,
    root_option,
)
from sovcloud.engine.operator import OperatorOptions, stacks


@click.command("operator-manifests")
@click.argument("region")
@root_option
@click.option("--repo", required=True, metavar="URL", help="The config tree's git repository, as the operator's "
              "workspace clones it (the centre's git server).")
@click.option("--branch", default="main", show_default=True, help="The branch the operator deploys.")
@click.option("--workspace-image", required=True, metavar="IMAGE", help="The workspace image: Python, the Pulumi "
              "CLI and sovcloud installed, on the region's image mirror.")
@click.option("--backend", metavar="URL", help="The state backend, in the country (s3://..., file://...).")
@click.option("--passphrase-secret", metavar="NAME", help="A Secret (key passphrase) holding the stack's "
              "PULUMI_CONFIG_PASSPHRASE.")
@click.option("--git-secret", metavar="NAME", help="A Secret the operator authenticates to the repository with.")
@click.option("--namespace", default="pulumi-kubernetes-operator", show_default=True,
              help="Namespace of the Stack objects (where the operator's workspaces run).")
@click.option("--service-account", default="sovcloud-deployer", show_default=True,
              help="The workspace's service account (its rights in the cluster are what the stack applies).")
@click.option("--resync", "resync_seconds", type=click.IntRange(min=60), default=600, show_default=True,
              help="Seconds between the operator's refresh-and-apply runs.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the manifests to this file instead of the terminal.")
def operator_manifests(region: str, root: Path | None, repo: str, branch: str, workspace_image: str,
                       backend: str | None, passphrase_secret: str | None, git_secret: str | None, namespace: str,
                       service_account: str, resync_seconds: int, out_file: Path | None) -> None:
    """The Pulumi Kubernetes Operator's Stack objects (pulumi.com/v1, operator v2.9.0) that keep REGION applied:
    one for its platform stack and one per tenant stack (REGION.t.TENANT, with the platform's Stack as its
    prerequisite), cloned from the repository, refreshed and re-applied every --resync seconds. The operator
    attaches no policy pack; the stack program's own policy gate refuses to apply while a mandatory rule fails."""
    tree = project_root(root)
    if out_file is not None:
        refuse_output_in_config(out_file, tree, "--out")
    cfg = load_or_exit(tree)
    region_or_fail(cfg, region)
    opts = OperatorOptions(repo, workspace_image, branch, backend, passphrase_secret, git_secret, namespace,
                           service_account, resync_seconds)
    text = yaml.safe_dump_all(stacks(cfg, region, opts), sort_keys=False)
    deliver(text, out_file, "operator manifests")
