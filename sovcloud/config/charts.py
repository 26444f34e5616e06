"""Upstream chart facts, per chart version: which values keys choose an image, and where each image comes from.

Components rewrite every one of these keys to the region's mirror, and the registry policy requires every one to
be set, since a key left out falls back to the chart's default registry abroad. The facts are derived from each
pinned chart's own ``values.yaml`` (and its subcharts', under their names) by ``derive_repositories`` and kept in
``chart_images.json`` beside this module, so synthesis needs no chart at hand; ``python -m sovcloud.config.charts
DIR...`` writes them anew from chart directories, and the tests hold the file to the chart sources.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from sovcloud.config.catalog import version_tuple

FACTS = Path(__file__).with_name("chart_images.json")

# Where a chart's values name a staging registry, the images a release pulls live elsewhere: Kueue's chart
# sources point at its staging registry, and the release packaging rewrites them to registry.k8s.io/kueue
# (kubernetes-sigs/kueue hack/releasing, charts on registry.k8s.io/kueue/charts).
RELEASED = {"us-central1-docker.pkg.dev/k8s-staging-images/kueue/": "registry.k8s.io/kueue/"}


def values_tree(chart_dir: Path) -> dict[str, Any]:
    """The chart's default values with each subchart's under its name, as Helm merges them."""
    values = yaml.safe_load((chart_dir / "values.yaml").read_text(encoding="utf-8")) or {}
    for sub in sorted((chart_dir / "charts").glob("*/Chart.yaml")):
        name = yaml.safe_load(sub.read_text(encoding="utf-8"))["name"]
        defaults = yaml.safe_load((sub.parent / "values.yaml").read_text(encoding="utf-8")) or {}
        given = values.get(name)
        values[name] = _merged(defaults, given) if isinstance(given, dict) else defaults
    return values


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` onto ``base``, maps merged key by key at every depth (Helm's coalescing of a parent's values for a
    subchart onto the subchart's defaults)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


def _repositories(tree: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(tree, dict):
        if isinstance(tree.get("repository"), str):
            yield path, tree["repository"]
        for key, sub in tree.items():
            yield from _repositories(sub, (*path, str(key)))


def derive_repositories(chart_dir: Path) -> dict[str, str]:
    """Every values path (dotted, without the final ``repository``) whose ``repository`` chooses an image, with its
    upstream repository (empty where the chart has none by default)."""
    out = {}
    for path, repo in _repositories(values_tree(chart_dir)):
        for staging, released in RELEASED.items():
            if repo.startswith(staging):
                repo = released + repo[len(staging):]
        out[".".join(path)] = repo
    return out


@cache
def _facts() -> dict[str, dict[str, dict[str, str]]]:
    return json.loads(FACTS.read_text(encoding="utf-8"))


def known_versions(chart: str) -> list[str]:
    return sorted(_facts().get(chart, {}), key=version_tuple)


def facts_version(chart: str, version: str) -> str | None:
    """The version whose facts stand for ``version``: itself, else the newest known one before it, else the oldest
    known one; None for a chart with no facts."""
    versions = known_versions(chart)
    if not versions:
        return None
    if version in versions:
        return version
    earlier = [v for v in versions if version_tuple(v) <= version_tuple(version)]
    return earlier[-1] if earlier else versions[0]


def repositories(chart: str, version: str) -> dict[tuple[str, ...], str]:
    """Values paths (tuples) that choose an image in ``chart`` at ``version``, with their upstream repository."""
    known = facts_version(chart, version)
    if known is None:
        return {}
    return {tuple(path.split(".")): repo for path, repo in _facts()[chart][known].items()}


def image_keys() -> dict[str, dict[str, list[str]]]:
    """Per chart and version, the values keys (``…repository``) that must point at the mirror."""
    return {chart: {version: [f"{path}.repository" for path in paths] for version, paths in versions.items()}
            for chart, versions in _facts().items()}


def write_facts(chart_dirs: list[Path], facts_file: Path = FACTS) -> dict[str, dict[str, dict[str, str]]]:
    """Derive the facts of each chart directory and merge them into ``facts_file`` (other versions are kept)."""
    facts: dict[str, dict[str, dict[str, str]]] = (
        json.loads(facts_file.read_text(encoding="utf-8")) if facts_file.is_file() else {})
    for chart_dir in chart_dirs:
        meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text(encoding="utf-8"))
        facts.setdefault(meta["name"], {})[str(meta["version"])] = derive_repositories(chart_dir)
    ordered = {c: {v: facts[c][v] for v in sorted(facts[c], key=version_tuple)} for c in sorted(facts)}
    facts_file.write_text(json.dumps(ordered, indent=2) + "\n", encoding="utf-8")
    return ordered


def mapping_get(tree: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path of a values tree, or None."""
    node: Any = tree
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m sovcloud.config.charts CHART_DIR...  (chart source directories to derive facts from)",
              file=sys.stderr)
        return 2
    facts = write_facts([Path(a) for a in argv])
    for chart, versions in facts.items():
        print(f"{chart}: {', '.join(versions)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

