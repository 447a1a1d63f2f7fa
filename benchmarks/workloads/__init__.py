"""The workloads, each a module with ``run(context) -> list[Measure]``, in running order."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.harness import Context, Measure
from benchmarks.workloads import add, admin, burst, fleet, lateness, memory, propagation, scale

WORKLOADS: dict[str, Callable[[Context], list[Measure]]] = {
    "add": add.run,
    "burst": burst.run,
    "lateness": lateness.run,
    "scale": scale.run,
    "propagation": propagation.run,
    "fleet": fleet.run,
    "memory": memory.run,
    "admin": admin.run,
}
