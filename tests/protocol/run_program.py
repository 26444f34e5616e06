"""Runs a Pulumi Python program as the Python language host does (its exec entry point): config from the
``PULUMI_CONFIG`` environment, runtime settings from the ``--monitor``/``--engine``/``--project``/``--stack``/
``--dry_run``/``--parallel`` arguments, the program run inside the stack with ``run_in_stack``. The test harness's
own code; only the protocol and the SDK come from the installed ``pulumi`` package."""

from __future__ import annotations

import argparse
import asyncio
import os
import runpy
import sys

import pulumi
import pulumi.runtime


def main() -> int:
    ap = argparse.ArgumentParser()
    for flag in ("--project", "--stack", "--parallel", "--dry_run", "--pwd", "--monitor", "--engine",
                 "--organization"):
        ap.add_argument(flag)
    ap.add_argument("PROGRAM")
    args = ap.parse_args()
    pulumi.runtime.set_all_config(pulumi.runtime.get_config_env(), pulumi.runtime.get_config_secret_keys_env())
    pulumi.runtime.configure(pulumi.runtime.Settings(
        monitor=args.monitor, engine=args.engine, project=args.project, stack=args.stack,
        parallel=int(args.parallel), dry_run=args.dry_run == "true",
        organization=args.organization))
    if args.pwd:
        os.chdir(args.pwd)
    sys.argv = [args.PROGRAM]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(pulumi.runtime.run_in_stack(lambda: runpy.run_path(args.PROGRAM,
                                                                                   run_name="__main__")))
    except pulumi.RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
