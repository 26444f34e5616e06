"""The policy gate of the stack program: where the engine runs it without the policy pack (a plain `pulumi up`, the
Pulumi Kubernetes Operator, whose Stack has no policy-pack field at v2.9.0), the program checks its own region
offline first (`sovcloud check REGION`: synthesis under mocks and every rule of the pack, in a process of its own)
and refuses to register anything while a mandatory rule fails. Where the pack is attached (`sovcloud preview|up`,
`pulumi up --policy-pack`) or the program runs under mocks (synth, check), the gate is off:
``SOVCLOUD_POLICY_GATE=off``.

It checks the config tree on disk: the region's stack config is its ``Pulumi.<region>.yaml`` there (what `pulumi
config set` writes and the operator clones); a region given to the engine some other way (an ESC environment) is
checked as the file has it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

GATE_ENV = "SOVCLOUD_POLICY_GATE"
TIMEOUT = 900  # seconds: a region of ten thousand resources checks in well under a minute here


def gate_on() -> bool:
    return os.environ.get(GATE_ENV, "on") != "off"


def mandatory_findings(root: Path, stack: str) -> list[str]:
    """One line per mandatory violation ``sovcloud check`` finds in ``stack`` of the config tree ``root`` (a
    platform stack's releases rendered from the region's chartSources where it names them; a tenant stack judged
    with the rest of its region); a check that cannot run is a finding."""
    from sovcloud import stacks

    region, tenant = stacks.parse(stack)
    env = {**os.environ, GATE_ENV: "off"}
    only = ["--tenant", tenant] if tenant else ["--platform-only"]
    try:
        done = subprocess.run([sys.executable, "-m", "sovcloud.cli", "check", region, *only, "--root", str(root),
                               "--format", "json"], capture_output=True, text=True, timeout=TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        return [f"the policy check of {region} did not finish within {TIMEOUT} s"]
    try:
        results = json.loads(done.stdout)
    except ValueError:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return [f"the policy check of {region} could not run: {last[0]}"]
    rows = results.get("regions", []) if isinstance(results, dict) else []
    found = [f"{v['policy']}: {v['message']}" for r in rows for v in r.get("violations", [])
             if v.get("enforcement") == "mandatory"]
    if done.returncode != 0 and not found:  # the region's program failed, or its check did
        last = (done.stderr or "").strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        return [f"the policy check of {region} failed: {last[0]}"]
    return found
