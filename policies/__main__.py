"""Entry point the Pulumi CLI runs for `pulumi preview --policy-pack policies/`: build the pack, nothing else.

The pack's rules live in this folder and in ``sovcloud/`` beside it: the checkout the pack is started from goes
first on the module path, so a copy of the tree (or a wheel installed in the same virtualenv) never serves a stale
or different copy of the rules.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack

from policies.pack import PACK_NAME, policies

PolicyPack(name=PACK_NAME, policies=policies())
