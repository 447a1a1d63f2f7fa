"""APScheduler's own job-store test suite, run against ``DjangoJobStore``.

The tests are ``tests/test_jobstores.py`` of the installed APScheduler release, with the
fixtures of its ``tests/conftest.py``. Nothing of them is copied into this repository: this
module fetches the release's sdist from PyPI (``pip download``) on first use, keeps the two
files in ``.cache/`` (git-ignored) and imports them from there. If they cannot be fetched,
collecting this module fails and says why; it is never skipped.

Every test of the generic contract (each one that takes the ``jobstore`` or
``persistent_jobstore`` fixture) runs with our store, started as APScheduler's own fixtures
start stores: ``store.start(None, alias)``, without a scheduler.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import tests
from django_clockwork import DjangoJobStore, SerializationError

VERSION = importlib.metadata.version("APScheduler")
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "apscheduler-sdist"
#: The files of the sdist this module needs, below its top directory.
MEMBERS = ("tests/test_jobstores.py", "tests/conftest.py")
#: The suite's own name: its textual references (``"tests.test_jobstores:dummy_instance..."``)
#: import it back by this name.
SUITE_MODULE = "tests.test_jobstores"
STORE_FIXTURES = {"jobstore", "persistent_jobstore"}
#: The one upstream test that only a pickling store can pass.
PICKLE_ONLY = "test_add_callable_instance_method_job"


class UpstreamSuiteUnavailable(RuntimeError):
    """APScheduler's test files could not be fetched or do not look as expected."""


def upstream_tests_dir() -> Path:
    """The directory holding the installed release's two test files, fetched if needed."""
    target = CACHE / VERSION / "tests"
    if not all((target / Path(member).name).is_file() for member in MEMBERS):
        unpack(fetch_sdist(), target)
    return target


def cached_sdist(directory: Path = CACHE) -> Path | None:
    wanted = f"apscheduler-{VERSION}.tar.gz"
    found = [path for path in directory.glob("*.tar.gz") if path.name.lower() == wanted]
    return found[0] if found else None


def fetch_sdist() -> Path:
    """The release's sdist from the cache, else downloaded from PyPI into it.

    pip downloads into a private directory and the file is then moved into the cache, so
    test runs started side by side never read a half-written archive.
    """
    if (sdist := cached_sdist()) is not None:
        return sdist
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as private:
        command = [
            *(sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"),
            *(f"APScheduler=={VERSION}", "-d", private),
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=600)
            output = result.stdout + result.stderr
        except (OSError, subprocess.TimeoutExpired) as exc:
            output = str(exc)
        if (downloaded := cached_sdist(Path(private))) is not None:
            os.replace(downloaded, CACHE / downloaded.name)
    if (sdist := cached_sdist()) is None:
        raise UpstreamSuiteUnavailable(
            f"Could not download the APScheduler {VERSION} sdist, whose job-store tests this "
            f"module runs against DjangoJobStore.\n$ {' '.join(command)}\n{output[-3000:]}\n"
            "Let pip reach PyPI (or a mirror through PIP_INDEX_URL), or put "
            f"apscheduler-{VERSION}.tar.gz into {CACHE}."
        )
    return sdist


def unpack(sdist: Path, target: Path) -> None:
    """Extract ``MEMBERS`` from the sdist into ``target`` (each file replaced atomically)."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[-1]: name for name in archive.getnames()}
        for member in MEMBERS:
            source = archive.extractfile(names[member]) if member in names else None
            if source is None:
                raise UpstreamSuiteUnavailable(f"{sdist} has no {member}")
            handle, temporary = tempfile.mkstemp(dir=target, suffix=".part")
            with os.fdopen(handle, "wb") as out:
                out.write(source.read())
            os.replace(temporary, target / Path(member).name)


def load_upstream() -> tuple[ModuleType, ModuleType]:
    """APScheduler's conftest and test module, imported from the cache."""
    directory = upstream_tests_dir()
    spec = importlib.util.spec_from_file_location(
        "tests.apscheduler_conftest", directory / "conftest.py"
    )
    assert spec is not None
    assert spec.loader is not None
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    # Imported by its own name, through the import system, so that its textual references
    # resolve and pytest rewrites its asserts (detailed failure messages).
    if str(directory) not in tests.__path__:
        tests.__path__.append(str(directory))
    return conftest, importlib.import_module(SUITE_MODULE)


def contract_tests(suite: ModuleType) -> dict[str, Callable[..., Any]]:
    """The suite's tests of the generic contract: those that take a store fixture."""
    found = {
        name: function
        for name, function in vars(suite).items()
        if name.startswith("test_")
        and inspect.isfunction(function)
        and STORE_FIXTURES & set(inspect.signature(function).parameters)
    }
    if PICKLE_ONLY not in found:
        raise UpstreamSuiteUnavailable(
            f"APScheduler {VERSION}'s {SUITE_MODULE} has no {PICKLE_ONLY}: its layout changed; "
            "update this module's expectations."
        )
    return found


CONFTEST, SUITE = load_upstream()
CONTRACT = contract_tests(SUITE)
pytest.mark.xfail(
    raises=SerializationError,
    strict=True,
    reason="the callable is a method of an instance made inside the test; only a pickling "
    "store can keep that instance, and DjangoJobStore refuses it with SerializationError",
)(CONTRACT[PICKLE_ONLY])

# The fixtures the suite's tests use, as APScheduler defines them.
timezone = CONFTEST.timezone
job_defaults = CONFTEST.job_defaults
create_job = CONFTEST.create_job
create_add_job = SUITE.create_add_job
# The tests themselves, collected from this module.
globals().update(CONTRACT)


@pytest.fixture
def jobstore(db: None) -> Iterator[DjangoJobStore]:
    """Our store, started as APScheduler's fixtures start theirs (no scheduler)."""
    store = DjangoJobStore()
    store.start(None, "clockwork")
    yield store
    store.shutdown()


@pytest.fixture
def persistent_jobstore(jobstore: DjangoJobStore) -> DjangoJobStore:
    return jobstore
