"""The job functions every target runs: each start is recorded, nothing else is done.

``hit`` appends the wall-clock start time to :data:`STARTS` (targets in this process) and
notes the process's CPU time at the first start and at the :data:`EXPECTED`-th one
(:data:`CPU_MARKS`: the due burst's CPU per run and share of a core); ``hit_file`` appends a
line to the file named by ``CLOCKWORK_BENCH_HITS`` (scheduler processes of the fleet
workload), so duplicates can be counted from outside.
"""

from __future__ import annotations

import os
import time

#: (job id, wall-clock start) of every run in this process, in start order.
STARTS: list[tuple[str, float]] = []
#: The start after which ``hit`` notes the CPU time a second time (0: only the first).
EXPECTED = 0
#: ``time.process_time()`` at the first start since they were cleared, then at the
#: ``EXPECTED``-th (two threads starting the first run at once may note two: use the first).
CPU_MARKS: list[float] = []


def hit(job_id: str) -> None:
    STARTS.append((job_id, time.time()))
    if not CPU_MARKS or len(STARTS) == EXPECTED:
        CPU_MARKS.append(time.process_time())


def hit_file(job_id: str) -> None:
    line = f"{job_id}\t{time.time():.6f}\t{os.getpid()}\n"
    with open(os.environ["CLOCKWORK_BENCH_HITS"], "a") as hits:
        hits.write(line)
