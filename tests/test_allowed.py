"""Only allowed functions run: what a job row may name, checked before anything is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from django.core import checks
from django.test import override_settings

from django_clockwork import DjangoJobStore, allowed, api
from django_clockwork.checks import check_settings
from django_clockwork.conf import find_problems
from django_clockwork.exceptions import FunctionNotAllowedError
from django_clockwork.models import Job, JobExecution

from .conftest import MakeJob, run_scheduler_until_succeeded

EVERY_MINUTE = IntervalTrigger(minutes=1, start_date=datetime(2030, 1, 1, tzinfo=timezone.utc))


class Throwaway:
    """A module nobody has imported, on ``sys.path``, that leaves a mark when imported or run."""

    def __init__(self, directory: Path) -> None:
        self.name = f"clockwork_throwaway_{uuid.uuid4().hex}"
        self.imported = directory / f"{self.name}.imported"
        self.ran = directory / f"{self.name}.ran"
        (directory / f"{self.name}.py").write_text(
            "from pathlib import Path\n"
            f"Path({str(self.imported)!r}).touch()\n\n\n"
            f"def run():\n    Path({str(self.ran)!r}).touch()\n"
        )
        self.ref = f"{self.name}:run"

    def untouched(self) -> bool:
        return self.name not in sys.modules and not self.imported.exists() and not self.ran.exists()


@pytest.fixture
def throwaway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Throwaway]:
    monkeypatch.syspath_prepend(str(tmp_path))
    module = Throwaway(tmp_path)
    yield module
    sys.modules.pop(module.name, None)


def allowing(*entries: str) -> Any:
    return override_settings(CLOCKWORK={"ALLOWED_FUNCTIONS": list(entries)})


# -- api --------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("func", "reason"),
    [
        ("os:system", "module 'os' is not in an installed app of this project"),
        ("builtins:eval", "module 'builtins' is not in an installed app"),
        ("subprocess:run", "module 'subprocess' is not in an installed app"),
        ("django.core.management:call_command", "module 'django.core.management' is not"),
        ("django_clockwork.api:add_job", "module 'django_clockwork.api' is not"),
        ("apscheduler.util:ref_to_obj", "module 'apscheduler.util' is not"),
        ("tests.jobs:os.system", "it reaches the module 'os' through an attribute"),
        ("tests.jobs:logging.getLogger", "it reaches the module 'logging' through an attribute"),
        # Python 3.13 defines Path in pathlib._local
        ("tests.jobs:Path", f"which is defined as '{Path.__module__}:Path', not where the "),
        ("tests.jobs:current_execution", "defined as 'django_clockwork.executor:current_ex"),
        ("tests.jobs:_secret", "names the private '_secret'"),
        ("tests._private:noop", "names the private '_private'"),
        (os.system, "module 'posix' is not in an installed app"),
        (subprocess.run, "module 'subprocess' is not in an installed app"),
    ],
    ids=lambda value: value if isinstance(value, str) else getattr(value, "__name__", None),
)
def test_add_job_refuses_what_is_not_allowed(func: Any, reason: str) -> None:
    with pytest.raises(FunctionNotAllowedError) as info:
        api.add_job(func, "interval", seconds=5, args=["echo hacked"], id="evil")
    message = str(info.value)
    assert reason in message
    assert "CLOCKWORK['ALLOWED_FUNCTIONS']" in message
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_a_refused_module_is_not_even_imported(throwaway: Throwaway) -> None:
    with pytest.raises(FunctionNotAllowedError, match="is not in an installed app"):
        api.add_job(throwaway.ref, "interval", seconds=5, id="evil")
    assert throwaway.untouched()


@pytest.mark.django_db
def test_modify_job_refuses_what_is_not_allowed() -> None:
    api.add_job("tests.jobs:echo", "interval", seconds=5, id="job")
    with pytest.raises(FunctionNotAllowedError, match="'builtins:exec' is not allowed"):
        api.modify_job("job", func="builtins:exec", args=["print('hacked')"])
    row = Job.objects.get(id="job")
    assert (row.func, row.args) == ("tests.jobs:echo", [])


@pytest.mark.django_db
@pytest.mark.parametrize("func", ["tests.jobs:noop", "tests.jobs.noop", "tests.jobs:Greeter"])
def test_callables_defined_in_an_installed_app_are_allowed(func: str) -> None:
    # tests is an installed app of the test project (tests/settings.py).
    assert api.add_job(func, "interval", seconds=5, id="ok").func == func.replace(".noop", ":noop")


@pytest.mark.django_db
def test_the_setting_allows_modules_and_exact_references() -> None:
    with allowing("json", "os.path:join"):
        assert api.add_job("json.decoder:JSONDecoder", id="module-prefix").func
        assert api.add_job("os.path:join", args=["a"], id="exact").func == "os.path:join"
        with pytest.raises(FunctionNotAllowedError, match="'os:system' is not allowed"):
            api.add_job("os:system", id="not-listed")
    with allowing("os"), pytest.raises(FunctionNotAllowedError, match="'posixpath:join'"):
        # A prefix allows what is defined there, not what is reachable from it.
        api.add_job("os.path:join", id="reached")
    with allowing("*"):
        assert api.add_job("os:system", args=["true"], next_run_time=None, id="anything").paused


@pytest.mark.django_db
def test_registered_functions_are_allowed_wherever_they_are_defined() -> None:
    with pytest.raises(FunctionNotAllowedError):
        api.add_job(json.dumps, id="before")
    assert allowed.register(json.dumps) is json.dumps
    try:
        assert api.add_job(json.dumps, args=[1], id="registered").func == "json:dumps"
    finally:
        allowed.unregister(json.dumps)
    with pytest.raises(FunctionNotAllowedError):
        api.add_job(json.dumps, id="after")


def test_register_refuses_what_cannot_be_named() -> None:
    with pytest.raises(FunctionNotAllowedError, match="cannot be registered"):
        allowed.register(lambda: None)


def test_third_party_and_own_apps_are_not_project_apps() -> None:
    apps = allowed.project_apps()
    assert "tests" in apps
    assert not [name for name in apps if name.startswith(("django.", "django_clockwork"))]
    with override_settings(INSTALLED_APPS=["tests", "apscheduler"]):
        # An app that lives in site-packages is third-party code.
        assert allowed.project_apps() == ["tests"]
        assert allowed.text_refusal("apscheduler.util:ref_to_obj")


# -- the store and hand-edited rows ----------------------------------------------------------


@pytest.mark.django_db
def test_store_add_job_refuses_what_is_not_allowed(
    store: DjangoJobStore, make_job: MakeJob
) -> None:
    with pytest.raises(FunctionNotAllowedError, match="'subprocess:call' is not allowed"):
        store.add_job(make_job("evil", func="subprocess:call"))
    store.add_job(make_job("ok"))
    job = make_job("ok", func="subprocess:call")
    with pytest.raises(FunctionNotAllowedError):
        store.update_job(job)
    assert list(Job.objects.values_list("id", "func")) == [("ok", "tests.jobs:noop")]


@pytest.mark.django_db
@pytest.mark.parametrize("func", ["os:system", "tests.jobs:os.system", "throwaway"])
def test_hand_edited_row_is_flagged_never_imported_never_run(
    store: DjangoJobStore, make_job: MakeJob, throwaway: Throwaway, func: str
) -> None:
    func = throwaway.ref if func == "throwaway" else func
    store.add_job(make_job("evil", "tests.jobs:echo", EVERY_MINUTE, args=("echo hacked",)))
    store.add_job(make_job("healthy", trigger=EVERY_MINUTE))
    Job.objects.filter(id="evil").update(func=func)

    listed = api.get_jobs()  # listing reads rows only
    assert [job.func for job in listed if job.id == "evil"] == [func]
    with pytest.raises(FunctionNotAllowedError):
        api.pause_job("evil")
    jobs = store.get_due_jobs(datetime(2030, 1, 1, 0, 0, 1, tzinfo=timezone.utc))

    assert [job.id for job in jobs] == ["healthy"]
    row = Job.objects.get(id="evil")
    assert f"FunctionNotAllowedError: The function reference {func!r} is not allowed" in (
        row.load_error
    )
    assert row.next_run_time is not None  # kept, as it was
    assert not JobExecution.objects.filter(job_id="evil").exists()
    assert store.lookup_job("evil") is None
    assert throwaway.untouched()
    fixed = api.modify_job("evil", func="tests.jobs:echo")
    assert (fixed.func, fixed.load_error) == ("tests.jobs:echo", "")


@pytest.mark.django_db
def test_the_throwaway_module_would_run_if_it_were_allowed(
    store: DjangoJobStore, make_job: MakeJob, throwaway: Throwaway
) -> None:
    # Shows that the test above can fail: allowed, the same row is imported and handed out.
    store.add_job(make_job("evil", trigger=EVERY_MINUTE))
    Job.objects.filter(id="evil").update(func=throwaway.ref)
    with allowing(throwaway.name):
        jobs = store.get_due_jobs(datetime(2030, 1, 1, 0, 0, 1, tzinfo=timezone.utc))
    assert [job.id for job in jobs] == ["evil"]
    assert throwaway.imported.exists()


@pytest.mark.django_db(transaction=True)
def test_a_running_scheduler_never_runs_a_hand_edited_row(throwaway: Throwaway) -> None:
    api.add_job("tests.jobs:noop", "interval", seconds=0.2, id="tick")
    api.add_job("tests.jobs:noop", "interval", seconds=0.2, id="evil")
    Job.objects.filter(id="evil").update(func=throwaway.ref)
    assert run_scheduler_until_succeeded("tick", 3) >= 3
    assert "is not allowed" in Job.objects.get(id="evil").load_error
    assert not JobExecution.objects.filter(job_id="evil").exists()
    assert throwaway.untouched()


# -- settings and checks ---------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["os:", ":system", "my app", "myapp._private", "myapp:_f", ""])
def test_malformed_entries_are_e030(entry: str) -> None:
    assert [p.id for p in find_problems({"ALLOWED_FUNCTIONS": [entry]})] == ["clockwork.E030"]


def test_wrong_type_is_e003() -> None:
    assert [p.id for p in find_problems({"ALLOWED_FUNCTIONS": "myapp"})] == ["clockwork.E003"]


def test_star_warns_w030() -> None:
    with allowing("myapp", "os:system"):
        assert check_settings() == []
    with allowing("*"):
        messages = check_settings()
    assert [(type(m), m.id) for m in messages] == [(checks.Warning, "clockwork.W030")]
    assert "any public callable" in messages[0].msg


def test_references_are_judged_before_anything_is_imported(throwaway: Throwaway) -> None:
    assert allowed.text_refusal(throwaway.ref)
    with allowing(throwaway.name):
        assert allowed.text_refusal(throwaway.ref) is None
    assert throwaway.untouched()


def test_a_resolved_reference_is_remembered_until_its_module_or_the_settings_change(
    throwaway: Throwaway, monkeypatch: pytest.MonkeyPatch
) -> None:
    with allowing(throwaway.ref):
        first = allowed.resolve(throwaway.ref)
        imports: list[str] = []
        real_import = allowed.importlib.import_module
        monkeypatch.setattr(
            allowed.importlib,
            "import_module",
            lambda name: imports.append(name) or real_import(name),
        )
        assert allowed.resolve(throwaway.ref) is first
        assert imports == []  # remembered: not imported nor looked up again
        module = sys.modules[throwaway.name]

        def run() -> None:  # what a reload of the module binds
            pass

        run.__module__, run.__qualname__ = throwaway.name, "run"
        module.run = run  # type: ignore[attr-defined]
        assert allowed.resolve(throwaway.ref) is run  # the module changed: looked up again
        del module.run  # type: ignore[attr-defined]
        with pytest.raises(LookupError, match="has no 'run'"):
            allowed.resolve(throwaway.ref)
    with pytest.raises(FunctionNotAllowedError):  # other settings: judged again
        allowed.resolve(throwaway.ref)


def test_registering_forgets_what_was_resolved() -> None:
    with pytest.raises(FunctionNotAllowedError):
        allowed.resolve("json:dumps")
    allowed.register(json.dumps)
    try:
        assert allowed.resolve("json:dumps") is json.dumps
    finally:
        allowed.unregister(json.dumps)
    with pytest.raises(FunctionNotAllowedError):
        allowed.resolve("json:dumps")
