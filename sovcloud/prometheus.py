"""A client for the Prometheus HTTP API (``/api/v1/query_range``), with the failures a user meets as one line each:
unreachable, refused credentials, a proxy's page instead of the API, a query error, a result too large."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

# Prometheus refuses a range query of more than 11,000 points per series (web/api/v1/api.go)
MAX_POINTS = 11_000


class PrometheusError(Exception):
    """One line for the user."""


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: dict[int, float]  # unix seconds -> value


class Prometheus:
    def __init__(self, url: str, token: str | None = None, ca_file: Path | None = None, timeout: float = 60):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.verify: bool | str = str(ca_file) if ca_file else True
        self.timeout = timeout

    def query_range(self, expr: str, start: dt.datetime, end: dt.datetime, step: int) -> list[Series]:
        """The matrix ``expr`` evaluates to at start, start + step, ... up to end (inclusive)."""
        points = math.floor((end - start).total_seconds() / step) + 1
        if points > MAX_POINTS:
            raise PrometheusError(f"{points} points per series is more than Prometheus answers ({MAX_POINTS}); "
                                  "use a larger --step or a shorter window")
        data = self._get("/api/v1/query_range", {"query": expr, "start": start.timestamp(), "end": end.timestamp(),
                                                 "step": step})
        if not isinstance(data, dict) or data.get("resultType") != "matrix" or \
                not isinstance(data.get("result"), list):
            kind = data.get("resultType") if isinstance(data, dict) else type(data).__name__
            raise PrometheusError(f"{self.url}: a range query answered with {kind!r}, not a matrix")
        out = []
        for item in data["result"]:
            try:
                labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
                values = {int(float(t)): float(v) for t, v in item.get("values") or []}
            except (TypeError, ValueError, AttributeError, OverflowError):
                raise PrometheusError(f"{self.url}: a series in the answer is not [time, value] pairs") from None
            if not all(math.isfinite(v) for v in values.values()):
                raise PrometheusError(f"{self.url}: a series of the answer holds NaN or an infinite value "
                                      f"({', '.join(f'{k}={v}' for k, v in sorted(labels.items()))})")
            out.append(Series(labels, values))
        return out

    def series_exist(self, selectors: list[str], start: dt.datetime, end: dt.datetime) -> bool:
        """Whether Prometheus holds any series matching one of ``selectors`` in the window (``/api/v1/series``)."""
        data = self._get("/api/v1/series", {"match[]": selectors, "start": start.timestamp(),
                                            "end": end.timestamp()})
        if not isinstance(data, list):
            raise PrometheusError(f"{self.url}: the series API answered with {type(data).__name__}, not a list")
        return bool(data)

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        try:
            resp = self.session.get(self.url + path, params=params, timeout=self.timeout, verify=self.verify)
        except requests.exceptions.SSLError as exc:
            raise PrometheusError(f"{self.url}: TLS failed ({_reason(exc)}); pass the server's CA with --ca-file"
                                  ) from None
        except requests.exceptions.Timeout:
            raise PrometheusError(f"{self.url}: no answer within {self.timeout:g} s") from None
        except requests.exceptions.RequestException as exc:
            raise PrometheusError(f"{self.url}: cannot reach Prometheus ({_reason(exc)})") from None
        if resp.status_code in (401, 403):
            raise PrometheusError(f"{self.url}: {resp.status_code} {resp.reason}: the server wants credentials "
                                  "(--bearer-token-file)")
        try:
            body = resp.json()
        except ValueError:
            raise PrometheusError(f"{self.url}: the answer ({resp.status_code}, "
                                  f"{resp.headers.get('Content-Type', 'no content type')}) is not the Prometheus "
                                  "API; is the URL the server's (not a proxy's sign-in page)?") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            raise PrometheusError(f"{self.url}: the query failed: {error or resp.status_code}")
        return body.get("data")


def _reason(exc: Exception) -> str:
    """The innermost cause's text, without urllib3's object reprs."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = str(exc)
    return text.split(": ", 1)[-1] if "object at 0x" in text else text
