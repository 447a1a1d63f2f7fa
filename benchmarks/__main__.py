"""``python -m benchmarks run``: the benchmark suite (docs/benchmarks.md).

    python -m benchmarks run --db postgres                 # every workload, full size
    python -m benchmarks run --smoke --db sqlite,postgres  # every workload, tiny (CI)
    python -m benchmarks run --db mariadb --workloads burst,fleet --reps 3

Each database runs in a child process of its own (Django is configured once per process) on
a database of its own, created and dropped by the child. Tables go to stdout (Markdown),
progress to stderr, and the results (JSON, logs, query plans) to ``--out``. The exit status
is non-zero if any workload failed on any database.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import processes

DATABASES = ("sqlite", "postgres", "mariadb")
WORKLOAD_NAMES = ("add", "burst", "lateness", "scale", "propagation", "fleet", "memory", "admin")


def names(choices: tuple[str, ...]) -> type:
    """An argparse ``type=``: a comma-separated list of ``choices``."""

    def parse(text: str) -> list[str]:
        chosen = [name.strip() for name in text.split(",") if name.strip()]
        unknown = sorted(set(chosen) - set(choices))
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)} (got {text!r})")
        return chosen

    return parse  # type: ignore[return-value]


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    commands = main.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the benchmarks")
    run.add_argument(
        "--db",
        type=names(DATABASES),
        default=["sqlite"],
        help="comma-separated databases, in order (default: sqlite)",
    )
    run.add_argument(
        "--workloads",
        type=names(WORKLOAD_NAMES),
        default=list(WORKLOAD_NAMES),
        help="comma-separated workloads (default: all)",
    )
    run.add_argument("--smoke", action="store_true", help="every workload tiny: seconds in all")
    run.add_argument(
        "--reps",
        type=positive,
        default=None,
        help="repetitions of every workload (default: each workload's own)",
    )
    run.add_argument("--million", action="store_true", help="store scale up to 1,000,000 jobs")
    run.add_argument(
        "--burst-size",
        type=positive,
        default=None,
        help="jobs of the due burst and of the fleet's burst (default 10,000; smoke 50 and 30)",
    )
    run.add_argument(
        "--profile",
        action="store_true",
        help="cProfile ours in the burst: <out>/profile-burst-<db>.txt (slows ours down)",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results directory (default: benchmarks/results/<time>)",
    )
    child = commands.add_parser("child")  # one database, in a child process
    child.add_argument("database", choices=DATABASES)
    child.add_argument("--workloads", type=names(WORKLOAD_NAMES), required=True)
    child.add_argument("--smoke", action="store_true")
    child.add_argument("--reps", type=positive, default=None)
    child.add_argument("--million", action="store_true")
    child.add_argument("--profile", action="store_true")
    child.add_argument("--burst-size", type=positive, default=None)
    child.add_argument("--out", type=Path, required=True)
    probe = commands.add_parser("probe-memory")  # the memory workload's fresh process
    probe.add_argument("target")
    probe.add_argument("size", type=int)
    return main


def run(args: argparse.Namespace) -> int:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = (args.out or processes.ROOT / "benchmarks" / "results" / stamp).resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(f"# django-clockwork benchmarks, {stamp} UTC{' (smoke)' if args.smoke else ''}")
    print(
        f"\n{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"`python -m benchmarks {' '.join(sys.argv[2:] and sys.argv[1:])}`; results in {out}",
        flush=True,
    )
    failed = []
    for database in args.db:
        started = time.monotonic()
        command = [
            sys.executable,
            "-m",
            "benchmarks",
            "child",
            database,
            "--out",
            str(out),
            "--workloads",
            ",".join(args.workloads),
        ]
        command += ["--smoke"] * args.smoke + ["--million"] * args.million
        command += ["--profile"] * args.profile
        command += ["--burst-size", str(args.burst_size)] if args.burst_size else []
        command += ["--reps", str(args.reps)] if args.reps else []
        env = processes.environment(
            DJANGO_SETTINGS_MODULE="benchmarks.settings", CLOCKWORK_BENCH_DB=database
        )
        code = subprocess.run(command, cwd=processes.ROOT, env=env).returncode
        print(f"\n{database}: {time.monotonic() - started:.0f} s, exit {code}", flush=True)
        if code:
            failed.append(database)
    if failed:
        print(f"FAILED on {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def child(args: argparse.Namespace) -> int:
    from benchmarks import databases

    name = databases.bench_name(args.database)
    os.environ["CLOCKWORK_BENCH_DB_NAME"] = name
    import django

    django.setup()
    from benchmarks import harness, targets
    from benchmarks.workloads import WORKLOADS

    found = targets.available(args.database, name)  # before creating: it may refuse to run
    databases.create(args.database, name)
    context = harness.Context(
        args.database,
        name,
        found,
        args.smoke,
        args.reps,
        args.out,
        args.million,
        args.profile,
        args.burst_size,
    )
    measures: list[harness.Measure] = []
    failures = []
    try:
        for workload in args.workloads:
            harness.log(f"{args.database}: {workload}")
            started = time.monotonic()
            try:
                measures += WORKLOADS[workload](context)
            except Exception:
                traceback.print_exc()
                failures.append(workload)
            harness.log(f"{args.database}: {workload} took {time.monotonic() - started:.0f} s")
    finally:
        for target in found:
            target.close()
        databases.drop(args.database, name)
    print(f"\n## {args.database}\n\n" + harness.table(measures, [t.name for t in found]))
    results = {
        "database": args.database,
        "failed": failures,
        "measures": [m.as_json() for m in measures],
    }
    (args.out / f"{args.database}.json").write_text(json.dumps(results, indent=1))
    if failures:
        print(f"\nFAILED workloads on {args.database}: {', '.join(failures)}", flush=True)
    return 1 if failures else 0


def main() -> int:
    args = parser().parse_args()
    if args.command == "run":
        return run(args)
    if args.command == "child":
        return child(args)
    from benchmarks.workloads import memory

    return memory.probe(args.target, args.size)


if __name__ == "__main__":
    sys.exit(main())
