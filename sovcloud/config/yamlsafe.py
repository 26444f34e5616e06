"""Safe YAML loading for config files, with the line of every value.

PyYAML's loaders silently keep the last of two equal keys and expand aliases without bound. Config read here
is composed into nodes (libyaml when available), then built by hand so that:
- a duplicate key is an error naming both lines;
- aliases are allowed but their expanded size is bounded (an "alias bomb" is an error, not an OOM);
- merge keys (``<<``), non-UTF-8 bytes, empty documents, several documents and oversized files are errors;
- dates stay strings (``2026-01-01``): JSON Schema checks them with ``format: date``.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import re
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sovcloud.config.errors import ConfigError, json_path

MAX_BYTES = 1 << 20  # 1 MiB: the largest stack file shipped is a few KiB
MAX_NODES = 100_000  # nodes after alias expansion

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """Safe loader that leaves ISO dates as strings."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in _Base.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Document:
    """A loaded YAML document: its data and the line (1-based) of each JSON path in it."""

    file: str
    data: Any
    lines: dict[tuple[Any, ...], int]

    def line_of(self, path: tuple[Any, ...] | list[Any]) -> int:
        """Line of the deepest existing prefix of ``path``."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), 1)


class _Fail(Exception):
    def __init__(self, line: int, message: str, rule: str, path: str = ""):
        super().__init__(message)
        self.line, self.message, self.rule, self.path = line, message, rule, path


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_NODES + 1  # a cycle counts as unbounded
    if isinstance(node, yaml.ScalarNode):
        size = 1
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(n, memo) for n in node.value)
    else:
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[key] = min(size, MAX_NODES + 1)
    return memo[key]


_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]{0,30})")  # what a config number looks like (and no more digits)
_PLAIN_TAGS = {"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}
_STR = "tag:yaml.org,2002:str"


def _build(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int], loader: Any) -> Any:
    line = node.start_mark.line + 1
    lines[path] = line
    if isinstance(node, yaml.ScalarNode):
        if node.tag == "tag:yaml.org,2002:int" and not _DECIMAL.fullmatch(node.value):
            # YAML 1.1 reads 02000 (octal) and 17:04 (base 60) as 1024, 0x400 as 1024 too; long digit runs
            # exceed Python's int limits: accept plain decimal numbers only
            raise _Fail(line, f"'{node.value[:40]}' is not a plain decimal number (YAML 1.1 would read it as "
                        "octal, base 60, hex or a huge number; write it as digits, or quote it if it is text)",
                        "number", json_path(path))
        if node.tag == _STR:  # most scalars: the text itself (what SafeConstructor.construct_yaml_str gives)
            return node.value
        return loader.construct_object(node)
    if node.tag not in _PLAIN_TAGS:
        raise _Fail(line, f"YAML tag {node.tag} is not supported (plain mappings and lists only)", "yaml",
                    json_path(path))
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines, loader) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _Fail(line, "merge keys (<<) are not supported (write the keys out)", "yaml")
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Fail(line, "mapping keys must be plain strings", "yaml")
            key = loader.construct_object(key_node)
            if not isinstance(key, str):
                key = str(key_node.value)  # keys are names: `1: x` or `true: x` still mean a string key
            if key in out:
                raise _Fail(line, f"duplicate key '{key}' (first at line {first_line[key]}; each key once)",
                            "duplicate-key", json_path((*path, key)))
            first_line[key] = line
            out[key] = _build(value_node, (*path, key), lines, loader)
            lines[(*path, key)] = line
        return out
    raise _Fail(node.start_mark.line + 1, f"unsupported YAML node {node.tag}", "yaml")


def load(path: Path, display: str | None = None) -> tuple[Document | None, list[ConfigError]]:
    """Load one YAML file. Returns the document, or None and the errors that stopped it."""
    name = display or str(path)

    def fail(line: int, message: str, rule: str, where: str = "") -> tuple[None, list[ConfigError]]:
        return None, [ConfigError(name, line, where, message, rule)]

    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            # a FIFO would block the read, a device (a link to /dev/zero) would never end it
            return fail(0, "not a regular file (a config file is a plain file)", "file")
        if info.st_size > MAX_BYTES:
            return fail(0, f"file is {info.st_size} bytes, larger than the {MAX_BYTES} allowed for a config file",
                        "file-size")
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)  # bounded even if the file grows under us
        if len(raw) > MAX_BYTES:
            return fail(0, f"file is larger than the {MAX_BYTES} bytes allowed for a config file", "file-size")
    except OSError as exc:
        return fail(0, f"cannot read: {exc.strerror}", "file")
    if not CACHE.enabled:  # the stack program, a library caller: parsed, nothing hashed
        return _parse(raw, name, fail)
    key = hashlib.blake2b(raw, digest_size=16).digest()
    parsed = CACHE.get(key)
    if parsed is not None:
        return Document(name, *parsed), []
    doc, errors = _parse(raw, name, fail)
    if doc is not None:
        CACHE.put(key, doc.data, doc.lines)
    return doc, errors


def _parse(raw: bytes, name: str, fail: Any) -> tuple[Document | None, list[ConfigError]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return fail(line, f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} (save the file as UTF-8)",
                    "encoding")
    text = text.removeprefix("\ufeff")
    if not text.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        return fail(1, "file is empty (a YAML mapping is expected)", "empty")
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return fail(1, "file is empty (a YAML mapping is expected)", "empty")
        if "*" in text and _expanded_size(root, {}) > MAX_NODES:  # only an alias (*name) can expand
            return fail(root.start_mark.line + 1,
                        f"aliases expand to more than {MAX_NODES} values (alias bomb?); write the values out",
                        "alias-bomb")
        lines: dict[tuple[Any, ...], int] = {}
        data = _build(root, (), lines, loader)
    except _Fail as exc:
        return fail(exc.line, exc.message, exc.rule, exc.path)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or "invalid YAML"
        if "but found another document" in str(exc):
            problem = "several YAML documents in one file (one document per file)"
        return fail(line, f"YAML syntax: {problem}", "yaml")
    except yaml.reader.ReaderError as exc:  # a character YAML forbids, e.g. a control character
        line = text[: exc.position].count("\n") + 1
        return fail(line, f"YAML: character {exc.character!r} is not allowed in YAML ({exc.reason})", "yaml")
    except yaml.YAMLError as exc:
        return fail(1, f"YAML: {exc}", "yaml")
    except RecursionError:
        return fail(1, "nesting too deep", "yaml")
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__} value"
        return fail(1, f"top level is {kind}; a YAML mapping (key: value) is expected", "top-level")
    return Document(name, data, lines), []


class ParseCache:
    """Parsed config files by the hash of their bytes, kept between runs of the ``sovcloud`` commands: a one-tenant
    check of a region with thousands of tenants reads every tenant file (the region-wide sums need them all), and
    parsing them was most of its load. An entry is the data and line map ``load`` builds, stored with ``marshal``
    (plain values only), so an unchanged file is read, hashed and unmarshalled instead of parsed; only files that
    parse are kept (an error is found again, as before). The cache file's name carries a fingerprint of this module,
    PyYAML, libyaml and Python: a change to any gives a fresh cache.

    Off unless a command turns it on (``sovcloud.cli``): the stack program run by the Pulumi CLI, and any other
    caller, parses every file. Where: ``SOVCLOUD_CACHE_DIR``, else ``$XDG_CACHE_HOME/sovcloud`` (default
    ``~/.cache/sovcloud``); ``SOVCLOUD_CACHE_DIR=off`` turns it off. The folder must belong to this user and be
    writable by no one else (what it holds is believed as the files' content); one that is not, or a cache that
    cannot be read or written, is ignored."""

    STALE = 20_000  # entries of earlier runs kept besides those this run used
    OLD_VERSION_DAYS = 30  # another version's cache file is removed once unused this long

    def __init__(self) -> None:
        self.enabled = False
        self._entries: dict[bytes, bytes] | None = None
        self._used: set[bytes] = set()
        self._dirty = False
        self._path: Path | bool | None = False  # False: not worked out yet
        self.hits = 0

    @staticmethod
    def folder() -> Path | None:
        """The cache folder from the environment, or None when off or when there is no home to put it in."""
        given = os.environ.get("SOVCLOUD_CACHE_DIR")
        if given is not None:
            return None if given.strip().lower() in ("off", "") else Path(given)
        base = os.environ.get("XDG_CACHE_HOME", "")
        if not os.path.isabs(base):  # the XDG rule: a relative path is ignored
            try:
                base = str(Path.home() / ".cache")
            except (RuntimeError, KeyError, OSError):  # no HOME and no passwd entry (an arbitrary-uid container)
                return None
        return Path(base) / "sovcloud"

    @staticmethod
    def _fingerprint() -> str:
        h = hashlib.blake2b(Path(__file__).read_bytes(), digest_size=8)
        libyaml = getattr(getattr(yaml, "_yaml", None), "get_version_string", lambda: "none")()
        h.update(f"{yaml.__version__} {libyaml} {_Base.__name__} {sys.version_info[:2]} {marshal.version}".encode())
        return h.hexdigest()

    @staticmethod
    def _trusted(path: Path) -> bool:
        """Owned by this user and writable by no one else (a file the cache is read from, or its folder)."""
        info = path.stat()
        return info.st_uid == os.getuid() and not info.st_mode & 0o022

    def _file(self) -> Path | None:
        if not self.enabled:
            return None
        if self._path is False:  # worked out once it is on
            self._path = None
            try:
                folder = self.folder()
                if folder is not None:
                    self._path = folder / f"parsed-yaml-{self._fingerprint()}.marshal"
            except (OSError, RuntimeError, KeyError):  # no readable source to fingerprint: no cache
                self._path = None
        return self._path  # type: ignore[return-value]

    def _load(self) -> dict[bytes, bytes]:
        if self._entries is None:
            self._entries = {}
            path = self._file()
            try:
                if path is not None and path.is_file() and self._trusted(path.parent) and self._trusted(path):
                    entries = marshal.loads(path.read_bytes())
                    if isinstance(entries, dict) and all(
                            type(k) is bytes and type(v) is bytes for k, v in entries.items()):
                        self._entries = entries
            except Exception:  # unreadable, half-written, or not this cache's: parse instead
                pass
        return self._entries

    def get(self, key: bytes) -> tuple[Any, dict[tuple[Any, ...], int]] | None:
        if self._file() is None:
            return None
        blob = self._load().get(key)
        if blob is None:
            return None
        try:
            entry = marshal.loads(blob)
        except Exception:  # a damaged entry: parse instead
            return None
        if not (type(entry) is tuple and len(entry) == 2 and type(entry[0]) is dict and type(entry[1]) is dict):
            return None
        self._used.add(key)
        self.hits += 1
        return entry[0], entry[1]

    def put(self, key: bytes, data: Any, lines: dict[tuple[Any, ...], int]) -> None:
        if self._file() is None:
            return
        try:
            blob = marshal.dumps((data, lines))
        except ValueError:  # a value marshal does not take: not kept
            return
        self._load()[key] = blob
        self._used.add(key)
        self._dirty = True

    def save(self) -> None:
        """Write what this process added (atomically: a rename; a concurrent writer's file is replaced whole)."""
        path = self._file()
        if not self._dirty or path is None or self._entries is None:
            return
        entries = self._entries
        if len(entries) > self.STALE + len(self._used):  # the stale ones past the limit go
            stale = [k for k in entries if k not in self._used][: self.STALE]
            entries = {k: entries[k] for k in [*stale, *(k for k in entries if k in self._used)]}
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self._trusted(path.parent):
                return
            now = time.time()
            for old in path.parent.glob("*parsed-yaml-*"):
                age = now - old.stat().st_mtime
                if old != path and (age > self.OLD_VERSION_DAYS * 86400 or (old.name.startswith(".") and age > 3600)):
                    old.unlink(missing_ok=True)  # an old version's cache, or a killed writer's half
            fd, tmp = tempfile.mkstemp(prefix=".parsed-yaml-", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(marshal.dumps(entries))
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            self._dirty = False
        except OSError:
            pass  # a read-only home, a full disk: parsed again next time


CACHE = ParseCache()
