"""The test matrix, as nox sessions. `nox -l` lists them; README "Development" says how to run them.

- lint: ruff check, ruff format --check and mypy, in the newest Django's environment.
- migrations: `makemigrations --check --dry-run` on every Django version.
- tests: the fast suite (everything not marked `processes` or `browser`) on every Python x
  Django leg and database. The Python 3.11 / Django 5.2 leg installs the lowest APScheduler
  release that pyproject.toml allows, the others the newest one, so both ends of the range run
  on every database.
- browser: the admin in Debian's headless Chromium (tests marked `browser`), once, on SQLite,
  on the newest leg; it needs /usr/bin/chromium and /usr/bin/chromedriver (.ci/run installs them).
- processes: the real-process suites (tests marked `processes`) once per database, on the
  newest leg, each alone (`allow_parallel=False`) when sessions run in parallel (`-j 2`).
- bench_smoke: the benchmark suite with every workload tiny on SQLite (`python -m benchmarks
  run --smoke`), so that it cannot rot; it fails if any workload does.
- bench: the full benchmark suite on one database (not run by default: minutes per database).

Extra arguments go to pytest: `nox -s "tests(python='3.12', django='6.0', db='postgres')" -- -x`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import nox
from packaging.requirements import Requirement

nox.needs_version = ">=2026.10.20"
nox.options.envdir = ".venvs/nox"
# uv makes and fills a virtualenv in seconds from its cache; plain virtualenv when uv is missing.
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"
# uv trusts the platform's certificates, as pip and curl do (a proxy's own CA, for example).
os.environ.setdefault("UV_SYSTEM_CERTS", "1")

DATABASES = ("sqlite", "postgres", "mariadb")
# The package extra that brings each database's driver: no MySQL headers for a SQLite run.
DRIVER_EXTRA = {"sqlite": "", "postgres": "[postgres]", "mariadb": "[mysql]"}
# Settings from the developer's shell that would point the tests elsewhere.
UNSET = ("DJANGO_SETTINGS_MODULE", "CLOCKWORK_TEST_DB_NAME", "CLOCKWORK_TEST_RUN", "PYTHONPATH")
PYTEST_ARGS = ("--timeout=300", "--durations=10")


def apscheduler_floor() -> str:
    """The lowest APScheduler release pyproject.toml allows (`APScheduler>=3.11.N,...`)."""
    for line in nox.project.load_toml("pyproject.toml")["project"]["dependencies"]:
        requirement = Requirement(line)
        if requirement.name.lower() == "apscheduler":
            floors = [s.version for s in requirement.specifier if s.operator == ">="]
            if len(floors) == 1:
                return floors[0]
    raise SystemExit("pyproject.toml must require APScheduler with exactly one '>=' bound")


@dataclass(frozen=True)
class Leg:
    python: str
    django: str
    apscheduler: str  # a pin such as "==3.11.2", or "" for the newest release allowed
    databases: tuple[str, ...] = DATABASES


LEGS = (
    Leg("3.10", "5.2", "", databases=("sqlite",)),
    Leg("3.11", "5.2", f"=={apscheduler_floor()}"),
    Leg("3.12", "6.0", ""),
    Leg("3.13", "6.1", ""),
)
NEWEST = LEGS[-1]


def leg_of(session: nox.Session, django: str) -> Leg:
    return next(leg for leg in LEGS if (leg.python, leg.django) == (session.python, django))


def pyenv_bin(python: str) -> str | None:
    """The bin directory of pyenv's newest `python` (e.g. 3.12 -> versions/3.12.9/bin)."""
    versions = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    patches = {
        int(match[1]): path
        for path in versions.glob(f"{python}.*")
        if (match := re.fullmatch(rf"{re.escape(python)}\.(\d+)", path.name))
    }
    return str(patches[max(patches)] / "bin") if patches else None


def put_pyenv_pythons_on_path() -> None:
    """Let nox find pyenv's interpreters even where pyenv's shims do not select them."""
    found = [path for leg in LEGS if (path := pyenv_bin(leg.python))]
    os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])


put_pyenv_pythons_on_path()


#: Django's tasks framework where Django does not ship it (5.2): the django-tasks backport.
TASKS_BACKPORT = {"5.2": ("django-tasks>=0.12,<0.13",)}


def install(session: nox.Session, leg: Leg, database: str, *requirements: str) -> None:
    """The package, its database driver, the leg's Django and APScheduler, ``requirements``;
    with the test requirements, the tasks framework's backport on the legs that need it."""
    tests = "requirements/test.txt" in requirements
    session.install(
        "-e",
        f".{DRIVER_EXTRA[database]}",
        f"Django~={leg.django}.0",
        f"APScheduler{leg.apscheduler}",
        *requirements,
        *(TASKS_BACKPORT.get(leg.django, ()) if tests else ()),
    )


def preflight(session: nox.Session, database: str) -> None:
    """Print the versions under test; fail at once if the database server does not answer."""
    session.run("python", "scripts/preflight.py", database, env=dict.fromkeys(UNSET))


def pytest(session: nox.Session, database: str, *args: str) -> None:
    env = {**dict.fromkeys(UNSET), "CLOCKWORK_TEST_DB": database}
    session.run("python", "-m", "pytest", *args, *PYTEST_ARGS, *session.posargs, env=env)


# The longest sessions come first, so that two at a time finish together: PostgreSQL's, MariaDB's,
# then SQLite's.
@nox.session(allow_parallel=True)
@nox.parametrize(
    ("python", "django", "db"),
    [
        nox.param(leg.python, leg.django, db, tags=["fast", db])
        for db in ("postgres", "mariadb", "sqlite")
        for leg in LEGS
        if db in leg.databases
    ],
)
def tests(session: nox.Session, django: str, db: str) -> None:
    """The fast suite: every test not marked `processes` or `browser`."""
    install(session, leg_of(session, django), db, "pip", "-r", "requirements/test.txt")
    preflight(session, db)
    # The demo's tests use their own SQLite file whatever the database: once per leg is enough.
    ignore = () if db == "sqlite" else ("--ignore=tests/test_demo.py",)
    pytest(session, db, "-m", "not processes and not browser", *ignore)


@nox.session(python=NEWEST.python, tags=["fast", "sqlite"], allow_parallel=True)
def browser(session: nox.Session) -> None:
    """The admin used through a real headless Chromium (Debian's packages, via Selenium)."""
    install(
        session,
        NEWEST,
        "sqlite",
        "pip",
        "-r",
        "requirements/test.txt",
        "-r",
        "requirements/browser.txt",
    )
    preflight(session, "sqlite")
    pytest(session, "sqlite", "-m", "browser")


@nox.session(python=NEWEST.python, tags=["fast"], allow_parallel=True)
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, mypy (strict, with django-stubs)."""
    install(session, NEWEST, "sqlite", "-r", "requirements/lint.txt")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(tags=["fast", "sqlite"], allow_parallel=True)
@nox.parametrize(
    ("python", "django"),
    [(leg.python, leg.django) for leg in LEGS if leg.python != "3.10"],
)
def migrations(session: nox.Session, django: str) -> None:
    """makemigrations --check: the models and the migrations agree."""
    install(session, leg_of(session, django), "sqlite")
    preflight(session, "sqlite")
    env = {**dict.fromkeys(UNSET), "CLOCKWORK_TEST_DB": "sqlite"}
    session.run("python", "tests/manage.py", "makemigrations", "--check", "--dry-run", env=env)


# Real processes measure lateness and restart database servers: never beside another session.
@nox.session(python=NEWEST.python, allow_parallel=False)
@nox.parametrize("db", [nox.param(db, tags=["processes", db]) for db in DATABASES])
def processes(session: nox.Session, db: str) -> None:
    """The real-process suites (many schedulers, kills, restarts, gunicorn) on one database."""
    install(session, NEWEST, db, "pip", "-r", "requirements/test.txt")
    preflight(session, db)
    pytest(session, db, "-m", "processes")


@nox.session(python=NEWEST.python, tags=["fast", "sqlite"], allow_parallel=True)
def bench_smoke(session: nox.Session) -> None:
    """Every benchmark workload, tiny, on SQLite (seconds): exits non-zero if one breaks."""
    install(session, NEWEST, "sqlite", "-r", "requirements/bench.txt")
    preflight(session, "sqlite")
    session.run(
        "python",
        "-m",
        "benchmarks",
        "run",
        "--smoke",
        "--db",
        "sqlite",
        *session.posargs,
        env=dict.fromkeys(UNSET),
    )


# Full size, alone: its numbers mean something only on a quiet machine.
@nox.session(python=NEWEST.python, default=False, allow_parallel=False)
@nox.parametrize("db", [nox.param(db, tags=["bench"]) for db in DATABASES])
def bench(session: nox.Session, db: str) -> None:
    """The full benchmark suite on one database; extra arguments go to `benchmarks run`."""
    install(session, NEWEST, db, "-r", "requirements/bench.txt")
    preflight(session, db)
    session.run(
        "python", "-m", "benchmarks", "run", "--db", db, *session.posargs, env=dict.fromkeys(UNSET)
    )
