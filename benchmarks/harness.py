"""What every workload shares: the run's context, results, interleaving and the table.

A workload is a function ``run(context) -> list[Measure]``. A :class:`Measure` holds, for one
row of the table, each target's values (one per repetition, or per sample where the workload
says so); the table prints their median with min-max and the ratio of ours to each reference.
A workload raises :class:`BenchmarkError` when a result is wrong (a run missing or run twice):
the run then exits non-zero.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.targets import REFERENCES, Target


class BenchmarkError(AssertionError):
    """A workload's result is wrong (not slow: wrong)."""


@dataclass
class Context:
    database: str
    db_name: str
    targets: list[Target]
    smoke: bool
    reps: int | None  # --reps: overrides each workload's default repetitions
    out: Path
    million: bool = False
    profile: bool = False  # cProfile ours in the burst (benchmarks.profiling)
    burst_size: int | None = None  # --burst-size: the burst's and the fleet's jobs

    def target(self, name: str) -> Target:
        return next(t for t in self.targets if t.name == name)

    def only(self, *names: str) -> list[Target]:
        return [t for t in self.targets if t.name in names]

    def repetitions(self, full: int, smoke: int = 1) -> int:
        """Interleaved repetitions: ``--reps``, else the workload's default."""
        return self.reps if self.reps is not None else self.samples(full, smoke)

    def samples(self, full: int, smoke: int = 1) -> int:
        """Samples within one measurement (passes, requests): not changed by ``--reps``."""
        return smoke if self.smoke else full


@dataclass
class Measure:
    workload: str
    metric: str
    values: dict[str, list[float]] = field(default_factory=dict)
    #: None for a diagnostic: a value neither better nor worse for being higher.
    higher_is_better: bool | None = True
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "metric": self.metric,
            "values": self.values,
            "higher_is_better": self.higher_is_better,
            "note": self.note,
        }


def interleaved(
    targets: Iterable[Target], reps: int, measure: Callable[[Target], float]
) -> dict[str, list[float]]:
    """``measure`` each target once per repetition, in turn (A B C, A B C, ...)."""
    targets = list(targets)
    values: dict[str, list[float]] = {t.name: [] for t in targets}
    for rep in range(reps):
        for target in targets:
            log(f"  rep {rep + 1}/{reps} {target.name}")
            with tolerated(target):
                values[target.name].append(measure(target))
    return values


@contextlib.contextmanager
def tolerated(target: Target) -> Iterator[None]:
    """An optional target's failure is reported, and its cell stays empty; others' raise."""
    try:
        yield
    except Exception as exc:
        if not target.optional:
            raise
        log(f"  {target.name} FAILED (an optional reference; its cell stays empty): {exc!r}")


def now() -> datetime:
    return datetime.now(timezone.utc)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def wait_until(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise BenchmarkError(f"{what}: not done within {timeout:.0f}s")
        time.sleep(0.01)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- the table -----------------------------------------------------------------------------


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    median = statistics.median(values)
    if len(values) == 1:
        return _number(median)
    return f"{_number(median)} ({_number(min(values))}-{_number(max(values))})"


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratios(measure: Measure) -> str:
    """Ours against each reference: "x0.05 memory" means 5 % of its value.

    Ours as users run it where the row has it, else our store alone ("store: ...")."""
    subject = "ours" if measure.values.get("ours") else "store"
    ours = measure.values.get(subject)
    if not ours:
        return ""
    parts = []
    for reference in REFERENCES:
        theirs = measure.values.get(reference) if reference != subject else None
        if theirs and statistics.median(theirs) > 0:
            ratio = statistics.median(ours) / statistics.median(theirs)
            parts.append(f"x{ratio:.2f} {reference}")
    prefix = "" if subject == "ours" or not parts else "store: "
    return prefix + ", ".join(parts)


def table(measures: list[Measure], targets: list[str]) -> str:
    """A Markdown table: one row per measure, one column per target, then the ratios."""
    header = ["workload", "metric", *targets, "ours / reference"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for measure in measures:
        cells = [summary(measure.values.get(name, [])) for name in targets]
        direction = {True: "higher is better", False: "lower is better", None: "diagnostic"}
        metric = f"{measure.metric} ({direction[measure.higher_is_better]})"
        if measure.note:
            metric += f"; {measure.note}"
        row = [measure.workload, metric, *cells, ratios(measure)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
