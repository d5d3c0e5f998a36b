"""Pure helpers of the benchmark report: percentiles, one result cell, rates, the targets check.

No I/O here, so the numbers the report prints can be tested without a server.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

_NS_PER_MS = 1_000_000
_BYTES_PER_MB = 1_000_000  # MB/s in the report are 10^6 bytes per second


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (the smallest value with at least p % of values at or below it).

    Nearest rank never invents a latency that no call had, unlike interpolation.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is not in 0..100")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Sample:
    """What one measurement window saw."""

    latencies_ns: Sequence[int]  # one per call that completed inside the window
    errors: int
    window_s: float
    server_cpu_s: float  # user + system of the server process over the window
    client_cpu_s: float  # the same for the benchmark (client) process
    postgres_cpu_s: float  # the same for the postmaster and its backends


def cell(sample: Sample) -> dict[str, float | int]:
    """One {ops_s, p50_ms, p99_ms, server_cpu_ms_per_op, ...} entry of the report."""
    ops = len(sample.latencies_ns)
    if ops == 0 or sample.window_s <= 0:
        return {"ops_s": 0.0, "errors": sample.errors}
    return {
        "ops_s": round(ops / sample.window_s, 1),
        "p50_ms": round(percentile(sample.latencies_ns, 50) / _NS_PER_MS, 3),
        "p99_ms": round(percentile(sample.latencies_ns, 99) / _NS_PER_MS, 3),
        "server_cpu_ms_per_op": round(sample.server_cpu_s * 1000 / ops, 3),
        "client_cpu_ms_per_op": round(sample.client_cpu_s * 1000 / ops, 3),
        "postgres_cpu_ms_per_op": round(sample.postgres_cpu_s * 1000 / ops, 3),
        "ops": ops,
        "errors": sample.errors,
    }


def mb_per_s(size_bytes: int, seconds: float) -> float:
    """Throughput in MB/s, MB = 10^6 bytes."""
    if seconds <= 0:
        raise ValueError(f"a transfer cannot take {seconds} s")
    return round(size_bytes / _BYTES_PER_MB / seconds, 1)


def cpu_ms_per_mb(cpu_s: float, size_bytes: int) -> float | None:
    """CPU milliseconds per MB moved (MB = 10^6 bytes); None when nothing moved."""
    if size_bytes <= 0:
        return None
    return round(cpu_s * 1000 / (size_bytes / _BYTES_PER_MB), 3)


def median(values: Sequence[float]) -> float:
    """The median of the rounds (the mean of the middle two for an even count)."""
    if not values:
        raise ValueError("median of no values")
    return round(statistics.median(values), 1)


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator to 3 places; None when the denominator is not positive."""
    if denominator <= 0:
        return None
    return round(numerator / denominator, 3)


@dataclass(frozen=True)
class Target:
    """One goal from the issue: `path` into the report, compared with `op` against `bound`."""

    name: str
    path: tuple[str, ...]
    op: Literal[">=", "<=", "<"]
    bound: float


# The targets; reported as met or missed, never asserted.
TARGETS = (
    Target(
        "GetModelVersion ops/s at 8 clients",
        ("registry", "GetModelVersion", "c8", "ops_s"),
        ">=",
        1000,
    ),
    Target(
        "GetModelVersion p50 ms at 1 client",
        ("registry", "GetModelVersion", "c1", "p50_ms"),
        "<=",
        1.5,
    ),
    Target(
        "CreateModelVersion ops/s at 8 clients",
        ("registry", "CreateModelVersion", "c8", "ops_s"),
        ">=",
        400,
    ),
    Target("server idle RSS MiB", ("server_rss_mib",), "<=", 150),
)

# The artifact transfer goals, with paths inside the report's "artifacts" object.
ARTIFACT_TARGETS = (
    Target("upload through the service / direct S3 PUT", ("upload_ratio",), ">=", 0.95),
    Target("download through the service / direct S3 GET", ("download_ratio",), ">=", 0.90),
    Target(
        "server RSS growth MiB during 4 concurrent uploads",
        ("server_rss_growth_mib",),
        "<=",
        256,
    ),
    Target("upload of stored content with its digest, seconds", ("dedup_upload_s",), "<", 1),
)

# Issue 14's goals (one hash per byte, TLS to the store, memory given back), in the same
# "artifacts" object.
TRANSFER_TARGETS = (
    Target(
        "upload through the service / direct S3 PUT, both over https",
        ("upload_ratio_https",),
        ">=",
        0.9,
    ),
    Target(
        "server CPU ms per MB uploaded, store over http",
        ("server_cpu_ms_per_mb", "upload"),
        "<=",
        1.8,
    ),
    Target(
        "server CPU ms per MB uploaded, store over https",
        ("server_cpu_ms_per_mb", "upload_https"),
        "<=",
        1.8,
    ),
    Target(
        "server idle RSS after transfers minus before, MiB",
        ("server_rss_idle_after_growth_mib",),
        "<=",
        40,
    ),
    Target(
        "4 uploads at once / one after another",
        ("parallel_upload_ratio",),
        ">=",
        1.0,
    ),
)


def check_targets(
    report: Mapping[str, Any], targets: Sequence[Target] = TARGETS
) -> dict[str, dict[str, Any]]:
    """{name: {target, actual, met}}; a value missing from the report counts as missed."""
    checked: dict[str, dict[str, Any]] = {}
    for target in targets:
        actual = _lookup(report, target.path)
        if actual is None:
            met = False
        elif target.op == ">=":
            met = actual >= target.bound
        elif target.op == "<=":
            met = actual <= target.bound
        else:
            met = actual < target.bound
        checked[target.name] = {
            "target": f"{target.op} {target.bound:g}",
            "actual": actual,
            "met": met,
        }
    return checked


def _lookup(report: Mapping[str, Any], path: Sequence[str]) -> float | None:
    node: Any = report
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) else None
