"""``--profile``: cProfile of every thread a target starts (the scheduler's and its workers').

cProfile sees one thread; this gives each new thread a profiler of its own (through
``threading.setprofile``), the calling thread too, and merges them when the block ends (the
threads must have ended by then: the block ends after ``shutdown(wait=True)``). The merged
statistics, sorted by cumulative time, are written to ``path`` (the top lines) and beside it
with the suffix ``.pstats`` (all of them, for ``python -m pstats``).
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def all_threads(path: Path, top: int = 80) -> Iterator[None]:
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start(*args: Any) -> None:
        profile = cProfile.Profile()
        with lock:
            profiles.append(profile)
        profile.enable()  # replaces this hook for the rest of the thread

    main = cProfile.Profile()
    threading.setprofile(start)
    main.enable()
    try:
        yield
    finally:
        main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
        sys.setprofile(None)
        stats = pstats.Stats(main, stream=(text := io.StringIO()))
        for profile in profiles:
            with contextlib.suppress(TypeError):  # a thread that never called anything
                stats.add(profile)
        stats.sort_stats("cumulative").print_stats(top)
        path.write_text(text.getvalue())
        stats.dump_stats(path.with_suffix(".pstats"))  # for pstats/snakeviz: callers, callees
