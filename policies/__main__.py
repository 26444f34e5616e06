"""Entry point the Pulumi CLI runs for `pulumi preview --policy-pack policies/`: build the pack, nothing else."""

from pulumi_policy import PolicyPack

from policies.pack import PACK_NAME, policies

PolicyPack(name=PACK_NAME, policies=policies())
