"""What the benchmarks print: one run's latency and throughput, and ours beside a floor.

A verdict is PASS only when every condition of the target holds and nothing went wrong (no
failed request, nothing refused that should have been stored); otherwise MISS, with the reason.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Run:
    """The answers to one phase of requests against one server."""

    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    outcomes: Counter[str] = field(default_factory=Counter)  # "ok", "refused: date", "HTTP 500"
    seconds: float = 0.0  # wall time of the phase
    cpu_seconds: float | None = 0.0  # the server processes' CPU (None: not measured)

    def add(self, other: Run) -> None:
        """Count another round of the same phase in this one."""
        self.latencies += other.latencies
        self.outcomes += other.outcomes
        self.seconds += other.seconds
        if self.cpu_seconds is not None and other.cpu_seconds is not None:
            self.cpu_seconds += other.cpu_seconds
        else:
            self.cpu_seconds = None

    @property
    def done(self) -> int:
        return len(self.latencies)

    @property
    def failed(self) -> int:
        return sum(n for k, n in self.outcomes.items() if k.startswith("HTTP") or k == "no answer")

    @property
    def rps(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def ms(self, p: float) -> float:
        return percentile(self.latencies, p) * 1000

    @property
    def cpu_ms(self) -> float:
        """Server CPU per answered request, in milliseconds (nan when not measured)."""
        if self.cpu_seconds is None or not self.done:
            return math.nan
        return self.cpu_seconds * 1000 / self.done


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile: the value below which ``p`` % of the values fall."""
    if not values:
        return math.nan
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def process_cpu(pids: list[int]) -> float | None:
    """CPU seconds (user + system) used so far by these processes, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, IndexError, ValueError):
        return None
    return total / tick


@dataclass
class Target:
    """At least ``ratio`` x the floor's throughput, and a p99 bound: an absolute one in
    milliseconds, or a multiple of the floor's p99."""

    ratio: float
    p99_ms: float | None = None
    p99_of_floor: float | None = None

    def __str__(self) -> str:
        if self.p99_ms:
            return f">= {self.ratio}x, p99 < {self.p99_ms:.0f} ms"
        return f">= {self.ratio}x, p99 <= {self.p99_of_floor}x floor's"

    def misses(self, ours: Run, floor: Run) -> list[str]:
        why = []
        ratio = ours.rps / floor.rps if floor.rps else 0.0
        if ratio < self.ratio:
            why.append(f"throughput {ratio:.2f}x")
        p99 = ours.ms(99)
        if self.p99_ms:
            if not p99 < self.p99_ms:
                why.append(f"p99 {p99:.0f} >= {self.p99_ms:.0f} ms")
        elif not p99 <= (self.p99_of_floor or 0) * floor.ms(99):
            why.append(f"p99 {p99:.0f} > {(self.p99_of_floor or 0) * floor.ms(99):.0f} ms")
        if ours.failed or floor.failed:
            why.append(f"{ours.failed + floor.failed} failed requests")
        return why


def _figures(r: Run) -> str:
    return f"{r.rps:7.0f} {r.ms(50):7.1f} {r.ms(99):7.1f} {r.cpu_ms:6.2f}"


HEADER = (
    f"{'':<24}{'ours':^30}   {'floor':^41}\n"
    f"{'request':<24}{'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms':>6}   "
    f"{'':<10}{'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms':>6}  {'ratio':>6}  "
    f"{'target':<29}verdict"
)


def row(name: str, ours: Run, floor_name: str, floor: Run, target: Target, extra: str = "") -> str:
    """One line of the table; ``extra`` is a reason the row cannot pass (e.g. refusals)."""
    ratio = ours.rps / floor.rps if floor.rps else 0.0
    why = target.misses(ours, floor) + ([extra] if extra else [])
    verdict = "PASS" if not why else "MISS (" + "; ".join(why) + ")"
    return (
        f"{name:<24}{_figures(ours)}   {floor_name:<10}{_figures(floor)}  {ratio:5.2f}x  "
        f"{str(target):<29}{verdict}"
    )


def passed(line: str) -> bool:
    return line.rstrip().endswith("PASS")


def load_average() -> str:
    """The machine's 1-minute load average: other work running beside the benchmark."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"
