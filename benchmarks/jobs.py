"""The job functions every target runs: each start is recorded, nothing else is done.

``hit`` appends the wall-clock start time to :data:`STARTS` (targets in this process);
``hit_file`` appends a line to the file named by ``CLOCKWORK_BENCH_HITS`` (scheduler
processes of the fleet workload), so duplicates can be counted from outside.
"""

from __future__ import annotations

import os
import time

#: (job id, wall-clock start) of every run in this process, in start order.
STARTS: list[tuple[str, float]] = []


def hit(job_id: str) -> None:
    STARTS.append((job_id, time.time()))


def hit_file(job_id: str) -> None:
    line = f"{job_id}\t{time.time():.6f}\t{os.getpid()}\n"
    with open(os.environ["CLOCKWORK_BENCH_HITS"], "a") as hits:
        hits.write(line)
