"""Property: no mutation of a valid config tree crashes the loader.

``sovcloud.config.load`` either returns a ``Config`` or raises ``ConfigInvalid`` with at least one error, each
naming a file of the tree and printing as a single line. Any other exception (KeyError, TypeError, OverflowError,
RecursionError, ...) is a bug in the loader, not in the config.

Mutations start from a copy of the shipped ``stacks/`` and ``tenants/`` and touch at most two files:
- structural: at a random JSON path of a tenant file, or of the ``config: sovcloud:region`` object of a stack file,
  replace the value by a random JSON-ish value, delete the key or add an unknown key; written back with
  ``yaml.safe_dump``;
- textual: a few byte-level edits of a file's text (inserted, deleted or replaced bytes, invalid UTF-8, tabs,
  YAML indicators such as ``:`` ``&`` ``*`` ``<<`` ``---``, duplicated lines).
"""

from __future__ import annotations

import copy
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sovcloud import config
from sovcloud.config import schema, yamlsafe
from sovcloud.config.errors import ConfigError, ConfigInvalid
from sovcloud.config.model import Config

REPO = Path(__file__).resolve().parents[1]
REGION_KEY = "sovcloud:region"


def _shipped_files() -> list[str]:
    stacks = sorted(p for p in (REPO / "stacks").glob("Pulumi.*.yaml") if p.name != "Pulumi.yaml")
    tenants = sorted([*(REPO / "tenants").glob("*.yaml"), *(REPO / "tenants").glob("*.yml")])
    return [str(p.relative_to(REPO)) for p in (*stacks, *tenants)]


FILES = _shipped_files()
RAW = {rel: (REPO / rel).read_bytes() for rel in FILES}
PARSED = {rel: yaml.safe_load(RAW[rel]) for rel in FILES}


def _is_stack(rel: str) -> bool:
    return rel.startswith("stacks/")


def _scalars(node: Any, out: set[Any]) -> set[Any]:
    if isinstance(node, dict):
        for k, v in node.items():
            out.add(str(k))
            _scalars(v, out)
    elif isinstance(node, list):
        for v in node:
            _scalars(v, out)
    elif isinstance(node, str | int | float) and not isinstance(node, bool):
        out.add(node)
    return out


# Values and keys already present in the shipped config (region and pool names, MIG profiles, GPU models, enum
# values, field names...): swapping them around reaches the cross-file checks, not only the schema.
NEARBY = sorted(_scalars(PARSED, set()), key=repr)

# ---------------------------------------------------------------------------------------------------- values

HUGE_INTS = [2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64, 10**30, -(10**30), 2**1000, -(2**1000)]
ODD_TEXT = ["", " ", "\t", "\n", "a\nb", "null", "~", "yes", "no", "on", "0x1F", "1e3", ".inf", ".nan", "-", ":",
            "a: b", "- a", "&a", "*a", "<<", "---", "...", "{", "[", "!!str", "%", "@", "`", "\x00", "\x07", "\x1b[31m",
            "\ufeff", "\u2028", "\u200b", "é", "한국어", "🚀", "𝕏", "2026-02-30", "2026-13-01", "2026-01-01T00:00:00",
            "1.0", "-1", "0", "v1.33.4", "3g.90gb", "9g.999gb", "a" * 300]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-2, max_value=2),
    st.sampled_from(HUGE_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.5, 1e308, 5e-324]),
    st.text(max_size=20),
    st.sampled_from(ODD_TEXT),
    st.sampled_from(NEARBY),
)
keys = st.one_of(st.text(max_size=12), st.sampled_from(NEARBY).map(str), st.sampled_from(ODD_TEXT),
                 st.integers(-3, 3), st.booleans())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)

# ---------------------------------------------------------------------------------------------------- mutations


@dataclass(frozen=True)
class Structural:
    """At ``path`` (inside the region object for a stack file): replace, delete, or add ``key``."""

    file: str
    path: tuple[Any, ...]
    op: str  # "replace" | "delete" | "add"
    value: Any = None
    key: Any = None
    allow_unicode: bool = False

    def apply(self, root: Path) -> None:
        doc = copy.deepcopy(PARSED[self.file])
        # (container, slot) pairs from the top of the mutated object down to the chosen value
        chain: list[tuple[Any, Any]] = [(doc["config"], REGION_KEY)] if _is_stack(self.file) else [({0: doc}, 0)]
        for step in self.path:
            parent, slot = chain[-1]
            chain.append((parent[slot], step))
        parent, slot = chain[-1]
        if self.op == "replace":
            parent[slot] = self.value
        elif self.op == "delete":
            del parent[slot]
        else:  # add an unknown key to the mapping at path, or to the nearest enclosing mapping
            target = next(p[s] for p, s in reversed(chain) if isinstance(p[s], dict))
            target[self.key] = self.value
        data = chain[0][0][0] if not _is_stack(self.file) else doc
        (root / self.file).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=self.allow_unicode),
                                      encoding="utf-8")


@dataclass(frozen=True)
class Textual:
    """Byte-level edits of a file, applied in order; positions are clamped to the current length."""

    file: str
    edits: tuple[tuple[str, int, int, bytes], ...]  # (kind, position, length or line, payload)

    def apply(self, root: Path) -> None:
        buf = bytearray(RAW[self.file])
        for kind, pos, n, payload in self.edits:
            pos = min(pos, len(buf))
            if kind == "insert":
                buf[pos:pos] = payload
            elif kind == "delete":
                del buf[pos:pos + n]
            elif kind == "replace":
                buf[pos:pos + n] = payload
            else:  # "dupline": copy line n to just after line pos (duplicate keys, misplaced indentation)
                lines = bytes(buf).splitlines(keepends=True)
                if lines:
                    src = lines[n % len(lines)]
                    lines.insert(pos % (len(lines) + 1), src if src.endswith(b"\n") else src + b"\n")
                    buf = bytearray(b"".join(lines))
        (root / self.file).write_bytes(bytes(buf))


@st.composite
def structural(draw: st.DrawFn) -> Structural:
    rel = draw(st.sampled_from(FILES))
    node = PARSED[rel]["config"][REGION_KEY] if _is_stack(rel) else PARSED[rel]
    path: list[Any] = []
    # Descend with probability 4/5 per level (shrinks towards the root).
    while isinstance(node, dict | list) and node and draw(st.integers(0, 4)) > 0:
        step = draw(st.sampled_from(list(node))) if isinstance(node, dict) else draw(st.integers(0, len(node) - 1))
        path.append(step)
        node = node[step]
    op = draw(st.sampled_from(["replace", "delete", "add"] if path else ["replace", "add"]))
    key = draw(keys) if op == "add" else None
    value = draw(values) if op != "delete" else None
    return Structural(rel, tuple(path), op, value, key, draw(st.booleans()))


PAYLOADS = [
    b"\t", b" ", b"  ", b":", b": ", b"&a ", b"*a", b"*x ", b"<<: *a\n", b"---\n", b"...\n", b"\n", b"\r", b"- ",
    b"#", b"'", b'"', b"{", b"}", b"[", b"]", b",", b"? ", b"|", b">", b"!", b"!!python/object:os.system ",
    b"!!binary ", b"%YAML 1.1\n", b"\xef\xbb\xbf", b"\x00", b"\x07", b"\x1b", b"\xff", b"\xfe", b"\xc3",
    b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc2\x85", b"\xe2\x80\xa8", b"\\", b"@", b"`", b"%",
]


@st.composite
def textual(draw: st.DrawFn) -> Textual:
    rel = draw(st.sampled_from(FILES))
    size = len(RAW[rel])
    payload = st.one_of(st.sampled_from(PAYLOADS), st.binary(min_size=1, max_size=4),
                        st.text(min_size=1, max_size=3).map(str.encode))
    edit = st.tuples(st.sampled_from(["insert", "delete", "replace", "dupline"]), st.integers(0, size),
                     st.integers(0, 200), payload)
    edits = draw(st.lists(edit, min_size=1, max_size=4))
    # Length of a delete/replace: a few bytes (the third field also picks the line for dupline).
    return Textual(rel, tuple((k, p, n if k == "dupline" else n % 5, b) for k, p, n, b in edits))


mutations = st.lists(st.one_of(structural(), textual()), min_size=1, max_size=2, unique_by=lambda m: m.file)

# ---------------------------------------------------------------------------------------------------- tests


def _copy_tree(root: Path) -> None:
    for d in ("stacks", "tenants"):
        shutil.copytree(REPO / d, root / d)


def _assert_loads_or_invalid(root: Path) -> None:
    """The contract: a Config, or ConfigInvalid with errors that name a file of the tree, one line each."""
    try:
        cfg = config.load(root)
    except ConfigInvalid as exc:
        assert exc.errors, "ConfigInvalid without errors"
        for err in exc.errors:
            assert isinstance(err, ConfigError)
            assert not Path(err.file).is_absolute(), err
            assert (root / err.file).is_file(), f"error names {err.file!r}, not a file of the tree"
            text = str(err)
            assert "\n" not in text and "\r" not in text, f"error is not a single line: {text!r}"
    else:
        assert isinstance(cfg, Config)


def test_shipped_copy_loads() -> None:
    """The base of the property test is valid, so the property cannot hold vacuously."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _copy_tree(root)
        cfg = config.load(root)
    assert isinstance(cfg, Config)
    assert len(cfg.regions) == 3
    assert len(cfg.tenants) == len([p for p in (REPO / "tenants").iterdir() if p.is_file()])


# database=None: nothing written into the repository (.hypothesis/). report_multiple_bugs=False and no explain
# phase: shrink one failure only, so that a failing run also stays well under a minute.
@settings(max_examples=150, deadline=None, database=None, report_multiple_bugs=False,
          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutations)
def test_mutated_config_never_crashes_the_loader(muts: list[Structural | Textual]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _copy_tree(root)
        for m in muts:
            m.apply(root)
        _assert_loads_or_invalid(root)


# ---------------------------------------------------------------------------------------------------- regressions
# Inputs the property test above once shrank to, kept as plain regression tests.

_TENANT = """\
name: fuzz-min
displayName: Fuzz minimal
organisation: {name: Fuzz, type: company, registrationId: "1", country: KR}
sector: industry
classification: low
adminGroups: [fuzz-admins]
contacts: [{name: Fuzz, email: fuzz@example.kr, role: technical}]
"""


def _with_tenant(text: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _copy_tree(root)
        (root / "tenants" / "fuzz-min.yaml").write_bytes(text)
        _assert_loads_or_invalid(root)


# An allocation that is not a mapping: once crashed the oneOf (pool or gpuModel) message.
@pytest.mark.parametrize("item", ["1", "1.5", "null", "true"])
def test_allocation_not_a_mapping_is_an_error(item: str) -> None:
    _with_tenant(f"{_TENANT}allocations: [{item}]\n".encode())


# A control character: PyYAML's ReaderError text spans two lines.
def test_control_character_error_is_one_line() -> None:
    _with_tenant(_TENANT.replace("Fuzz minimal", "Fuzz\x07minimal").encode())


# A key with a newline or carriage return must not split the error line.
@pytest.mark.parametrize("key", ['"a\\nb"', '"a\\rb"', '"\\n"'])
def test_key_with_newline_error_is_one_line(key: str) -> None:
    alloc = ("allocations: [{region: rdc-ulsan, pool: gb200-nvl72, gpus: 1, cpu: '1', memory: 1Gi, storage: 1Gi, "
             "period: {start: 2026-01-01, end: 2027-01-01}}]\n")
    _with_tenant(f"{_TENANT}{alloc}{key}: 1\n".encode())


# ---------------------------------------------------------------------------------------------------- fast path
# sovcloud.config.schema skips jsonschema for a document jsonschema-rs finds valid: that must never let through one
# jsonschema refuses (the other direction only costs time: jsonschema then runs and gives the messages).

SAFE = {rel: yamlsafe.load(REPO / rel)[0].data for rel in FILES}


@settings(max_examples=400, deadline=None, database=None, report_multiple_bugs=False,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_document_the_fast_validator_accepts_jsonschema_accepts(data: Any) -> None:
    rel = data.draw(st.sampled_from(FILES))
    doc = copy.deepcopy(SAFE[rel])
    obj = doc["config"][REGION_KEY] if _is_stack(rel) else doc
    name = "region" if _is_stack(rel) else "tenant"
    node = obj
    for _ in range(data.draw(st.integers(0, 5))):
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        inner = [v for _, v in items if isinstance(v, dict | list) and v]
        if not inner:
            break
        node = data.draw(st.sampled_from(inner))
    slots = list(node) if isinstance(node, dict) else list(range(len(node)))
    op = data.draw(st.sampled_from(["replace", "delete", "add"] if slots else ["add"]))
    if op == "add" and isinstance(node, dict):
        node[data.draw(keys.map(str))] = data.draw(values)
    elif op == "add":
        node.append(data.draw(values))
    elif op == "delete":
        del node[data.draw(st.sampled_from(slots))]
    else:
        node[data.draw(st.sampled_from(slots))] = data.draw(values)
    if schema.fast_valid(name, obj):
        assert list(schema.validator(name).iter_errors(obj)) == [], (rel, obj)


def test_the_fast_validator_is_in_use_and_refuses_what_jsonschema_refuses() -> None:
    assert schema.fast_validator("tenant") is not None  # installed with sovcloud: the load figures count on it
    tenant = copy.deepcopy(SAFE["tenants/orbit-lm.yaml"])
    assert schema.fast_valid("tenant", tenant)
    tenant["allocations"][0]["period"]["start"] = "2026-13-01"
    assert not schema.fast_valid("tenant", tenant)
    assert list(schema.validator("tenant").iter_errors(tenant))
