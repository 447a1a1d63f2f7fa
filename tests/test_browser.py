"""The admin in a real headless Chromium, used as an operator uses it: log in, add a cron job
with an invalid field and see the error, fix it and see the next fire times, run it now and see
its history row appear, pause and resume, read a traceback; then, as a view-only user, find no
way to change anything. Screenshots go to ``CLOCKWORK_SCREENSHOTS`` when it is set."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from django_clockwork import create_scheduler
from django_clockwork.declarations import register_function
from django_clockwork.models import JobExecution

from . import jobs
from .browser import browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["browser"]

TIMEOUT = 15.0


def wait_for(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Person:
    """A person at the browser: opens pages, fills fields, presses buttons, reads."""

    def __init__(self, driver: Any, base: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver, self.base, self.by = driver, base, By

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def log_in(self, username: str, password: str) -> None:
        self.open("/admin/login/")
        self.fill("username", username)
        self.fill("password", password)
        self.driver.find_element(self.by.CSS_SELECTOR, 'input[type="submit"]').click()
        wait_for(lambda: "Log out" in self.page() or "logout" in self.page(), "logging in")

    def log_out(self) -> None:
        self.driver.find_element(self.by.ID, "logout-form").submit()
        wait_for(lambda: "Logged out" in self.page(), "logging out")

    def fill(self, name: str, value: str) -> None:
        field = self.driver.find_element(self.by.NAME, name)
        field.clear()
        field.send_keys(value)

    def choose(self, name: str, value: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.driver.find_element(self.by.NAME, name)).select_by_value(value)

    def press(self, value: str) -> None:
        """The submit button with this label (the first), then wait for the page it loads: a
        click returns before the browser has replaced the page, and reading at once could
        find the old one (seen: the "Resumed" message looked for on the job's old page)."""
        from selenium.webdriver.support.expected_conditions import staleness_of
        from selenium.webdriver.support.ui import WebDriverWait

        current = self.driver.find_element(self.by.TAG_NAME, "html")
        selector = f'input[type="submit"][value="{value}"]'
        self.driver.find_element(self.by.CSS_SELECTOR, selector).click()
        WebDriverWait(self.driver, 20).until(staleness_of(current))

    def text(self, selector: str = "body") -> str:
        return str(self.driver.find_element(self.by.CSS_SELECTOR, selector).text)

    def page(self) -> str:
        return str(self.driver.page_source)

    def count(self, selector: str) -> int:
        return len(self.driver.find_elements(self.by.CSS_SELECTOR, selector))

    def screenshot(self, name: str) -> None:
        folder = os.environ.get("CLOCKWORK_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(Path(folder) / f"{name}.png"))


@pytest.fixture
def scheduler() -> Iterator[None]:
    """A real scheduler in this process: it takes run-now requests as one would in production."""
    running = create_scheduler()
    running.start()
    yield
    running.shutdown()
    gc.collect()


def test_an_operator_manages_a_job_from_the_browser(
    browser: Any, live_server: Any, scheduler: None
) -> None:
    for func in (jobs.noop, jobs.fail):
        register_function(func)
    User.objects.create_superuser("ops", "ops@example.com", "pw-ops")
    person = Person(browser, live_server.url)
    person.log_in("ops", "pw-ops")

    # Add a cron job with an hour that does not exist: the error is next to the field.
    person.open("/admin/django_clockwork/job/add/")
    person.fill("id", "nightly")
    person.fill("name", "Nightly report")
    person.choose("func", "tests.jobs:noop")
    person.choose("trigger_type", "cron")
    person.choose("timezone", "Europe/Paris")
    person.fill("cron_hour", "25")
    person.fill("cron_minute", "30")
    person.press("Save")
    error = person.text(".field-cron_hour .errorlist")
    assert "25" in error
    assert not JobExecution.objects.exists()

    # Fix it and preview: ten fire times at 03:30 Paris time, nothing saved yet.
    person.fill("cron_hour", "3")
    person.press("Preview the next fire times")
    rows = wait_for(lambda: person.count("#cw-preview tbody tr"), "the preview")
    assert rows == 10
    assert "03:30:00 CE" in person.text("#cw-preview")
    person.screenshot("add-form-preview")
    person.press("Save")
    wait_for(lambda: "was added successfully" in person.page(), "the job to be saved")
    assert "Nightly report" in person.text("#result_list")
    person.screenshot("job-list")

    # Run it now: the request returns at once; the scheduler runs it and history shows it.
    person.open("/admin/django_clockwork/job/nightly/change/")
    person.press("Run now")
    assert "The runs appear in the history" in person.text(".messagelist")

    def succeeded() -> bool:
        person.open("/admin/django_clockwork/jobexecution/?job_id=nightly")
        return "succeeded" in person.text("#result_list") if person.count("#result_list") else False

    wait_for(succeeded, "the run-now run to succeed")
    assert "run now (ops)" in person.text("#result_list")
    person.screenshot("history")

    # Pause, then resume, with the buttons of its page.
    person.open("/admin/django_clockwork/job/nightly/change/")
    person.press("Pause")
    assert "Paused" in person.text(".messagelist")
    person.open("/admin/django_clockwork/job/?state=paused")
    assert "nightly" in person.text("#result_list")
    person.open("/admin/django_clockwork/job/nightly/change/")
    person.press("Resume")
    assert "Resumed" in person.text(".messagelist")
    person.open("/admin/django_clockwork/job/?state=paused")
    assert "0 jobs" in person.text(".paginator")
    person.open("/admin/django_clockwork/job/nightly/change/")
    assert "Last runs" in person.text("#cw-runs")
    person.screenshot("job-page")

    # A job that fails: its traceback reads as Python wrote it.
    person.open("/admin/django_clockwork/job/add/")
    person.fill("id", "failing")
    person.choose("func", "tests.jobs:fail")
    person.choose("trigger_type", "interval")
    person.fill("interval_hours", "1")
    person.press("Save")
    wait_for(lambda: "was added successfully" in person.page(), "the failing job")
    person.open("/admin/django_clockwork/job/failing/change/")
    person.press("Run now")
    failed = wait_for(
        lambda: JobExecution.objects.filter(job_id="failing", status="failed").first(),
        "the failing run",
    )
    person.open(f"/admin/django_clockwork/jobexecution/{failed.pk}/change/")
    traceback = person.text("pre.cw-traceback")
    assert traceback.startswith("Traceback (most recent call last):")
    assert '\n  File "' in traceback  # indentation kept
    person.screenshot("run-traceback")
    person.open("/admin/django_clockwork/schedulernode/")
    assert "alive" in person.text("#result_list")
    person.screenshot("nodes")
    person.log_out()


def test_a_view_only_user_finds_no_way_to_change_anything(browser: Any, live_server: Any) -> None:
    from django_clockwork import api

    api.add_job("tests.jobs:noop", "cron", hour=3, id="nightly", name="Nightly report")
    api.run_now("nightly", requested_by="ops")
    viewer = User.objects.create_user("viewer", password="pw-view", is_staff=True)
    viewer.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="django_clockwork", codename__startswith="view_"
        )
    )
    person = Person(browser, live_server.url)
    person.log_in("viewer", "pw-view")
    run = JobExecution.objects.get()
    for path, shown in (
        ("/admin/", "CLOCKWORK SCHEDULER"),
        ("/admin/django_clockwork/job/", "Nightly report"),
        ("/admin/django_clockwork/job/nightly/change/", "Next fire times"),
        ("/admin/django_clockwork/jobexecution/", "run now (ops)"),
        (f"/admin/django_clockwork/jobexecution/{run.pk}/change/", "Nightly report"),
        ("/admin/django_clockwork/schedulernode/", "0 scheduler nodes"),
    ):
        person.open(path)
        content = person.text("#content")
        assert shown in content, (path, content)
        assert person.count('select[name="action"]') == 0, path
        assert person.count("a.addlink") == 0, path
        assert person.count("a.deletelink") == 0, path
        changing = 'input[type="submit"]:not([value="Search"]), textarea, select'
        assert person.count(f"#content-main form {changing}") == 0, path
        assert "Run now" not in content, path
