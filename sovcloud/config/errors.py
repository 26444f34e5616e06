"""Config errors a person can act on: file, line, JSON path, what is wrong and what is allowed."""

from __future__ import annotations

import re
from dataclasses import dataclass

# C0, DEL and C1 (\x9b is a one-byte CSI: terminal escapes could forge or hide lines in CI logs)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(text: str) -> str:
    """Control characters (newlines included) escaped, so that an error is always one line."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


@dataclass(frozen=True, order=True)
class ConfigError:
    file: str
    line: int
    path: str  # JSON path inside the document, e.g. "allocations[0].gpus"; "" for the whole document
    message: str
    rule: str = ""  # machine-readable rule name (schema keyword or cross-file check), for JSON output and tests

    def __post_init__(self) -> None:
        # keys and values come from user files: a newline in one must not split the error line
        object.__setattr__(self, "file", one_line(self.file))
        object.__setattr__(self, "path", one_line(self.path))
        object.__setattr__(self, "message", one_line(self.message))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "path": self.path, "message": self.message,
                "rule": self.rule}


class ConfigInvalid(Exception):
    """Raised with every error found; the CLI prints them one per line."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = sorted(set(errors))
        super().__init__("\n".join(str(e) for e in self.errors))


def json_path(parts: tuple[object, ...] | list[object]) -> str:
    """("allocations", 0, "gpus") -> "allocations[0].gpus"."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out
