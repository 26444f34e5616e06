"""Benchmark: `sovcloud synth` and `sovcloud check` against cdk8s on the same Kubernetes objects.

Generates ``--tenants N`` tenants in ``--region`` (``bench/synth_scale.py``'s generator), then times, each as a
fresh process with its wall clock:

- ``sovcloud synth REGION --no-render`` (every stack; a file per object) and ``sovcloud check REGION`` (synthesis
  and every rule of the pack on every stack, no charts), without the parsed-config cache (every file parsed);
- cdk8s (the ``cdk8s`` Python package, on Node through jsii) synthesising the very objects sovcloud wrote (read
  back from its output, Helm releases left out: cdk8s would shell out to Helm for those) as raw ``ApiObject``s of
  one ``Chart``, each top-level field besides apiVersion, kind and metadata added with a JSON patch: into one file,
  and into a file per object (``YamlOutputType.FILE_PER_RESOURCE``).

cdk8s is not a dependency of sovcloud: give the Python of an environment that has it, e.g.
``python3 -m venv /tmp/cdk8s && /tmp/cdk8s/bin/pip install cdk8s`` (needs Node 20 or newer), then

    python bench/cdk8s_compare.py --tenants 1000 --cdk8s-python /tmp/cdk8s/bin/python

Prints one JSON object: {"tenants", "objects", "sovcloud_synth_seconds", "sovcloud_check_seconds",
"cdk8s_one_file_seconds", "cdk8s_file_per_object_seconds", "cdk8s_files_per_object_mode"}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from synth_scale import REPO, generate  # bench/ is sys.path[0] when run as a script

from sovcloud import config

CDK8S_PROGRAM = '''
import json, sys, time
from cdk8s import ApiObject, App, Chart, JsonPatch, YamlOutputType

objects = json.load(open(sys.argv[1], encoding="utf-8"))
kind = YamlOutputType.FILE_PER_RESOURCE if sys.argv[3] == "per-object" else YamlOutputType.FILE_PER_CHART
app = App(outdir=sys.argv[2], yaml_output_type=kind)
chart = Chart(app, "region")
for i, obj in enumerate(objects):
    api = ApiObject(chart, f"o{i}", api_version=obj["apiVersion"], kind=obj["kind"], metadata=obj.get("metadata"))
    for key, value in obj.items():
        if key not in ("apiVersion", "kind", "metadata"):
            api.add_json_patch(JsonPatch.add("/" + key, value))
app.synth()
'''


def timed(cmd: list[str], ok: tuple[int, ...] = (0,), env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    seconds = time.perf_counter() - started
    if done.returncode not in ok:
        sys.stderr.write(done.stderr[-3000:])
        sys.exit(f"{' '.join(cmd[:4])} ... failed (exit {done.returncode})")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--region", default="ncc-haenam")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cdk8s-python", required=True, help="a Python with the cdk8s package installed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sovcloud-cdk8s-bench-") as tmp_name:
        tmp = Path(tmp_name)
        tree = tmp / "tree"
        generate(tree, args.tenants, args.seed, config.load(REPO), args.region)
        cli = [sys.executable, "-m", "sovcloud.cli"]
        cold = {**os.environ, "SOVCLOUD_CACHE_DIR": "off"}  # every tenant file parsed, as on a fresh machine
        synth_s = timed([*cli, "synth", args.region, "--root", str(tree), "--out", str(tmp / "out"), "--no-render",
                         "--format", "json"], env=cold)
        print(f"sovcloud synth: {synth_s:.2f} s", file=sys.stderr)
        check_s = timed([*cli, "check", args.region, "--root", str(tree), "--format", "json"], ok=(0, 1), env=cold)
        print(f"sovcloud check: {check_s:.2f} s", file=sys.stderr)
        region_out = tmp / "out" / args.region
        objects = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(region_out.rglob("*.yaml"))
                   if p.relative_to(region_out).parts[0] != "helm"]
        source = tmp / "objects.json"
        source.write_text(json.dumps(objects), encoding="utf-8")
        program = tmp / "cdk8s_program.py"
        program.write_text(CDK8S_PROGRAM, encoding="utf-8")
        figures, files = {}, {}
        for mode in ("one-file", "per-object"):
            seconds = timed([args.cdk8s_python, str(program), str(source), str(tmp / f"cdk8s-{mode}"), mode])
            # cdk8s names a file Kind.name: objects of one name in several namespaces share it
            files[mode] = len(list((tmp / f"cdk8s-{mode}").glob("*.yaml")))
            print(f"cdk8s {mode}: {seconds:.2f} s, {files[mode]} file(s)", file=sys.stderr)
            figures[mode] = seconds
    print(json.dumps({"tenants": args.tenants, "objects": len(objects), "sovcloud_synth_seconds": round(synth_s, 2),
                      "sovcloud_check_seconds": round(check_s, 2),
                      "cdk8s_one_file_seconds": round(figures["one-file"], 2),
                      "cdk8s_file_per_object_seconds": round(figures["per-object"], 2),
                      "cdk8s_files_per_object_mode": files["per-object"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
