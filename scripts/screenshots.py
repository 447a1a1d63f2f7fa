"""Take the README's screenshots of the admin from a running demo (``bash scripts/demo.sh``).

    DEMO_ADMIN_PASSWORD=pw bash scripts/demo.sh &      # wait a minute: history builds up
    python scripts/screenshots.py --password pw        # -> docs/screenshots/*.png

It drives Debian's headless Chromium (``apt-get install chromium chromium-driver``) with
Selenium, logs in as ``admin``, collapses the navigation sidebar, and saves full-page
screenshots of the job list, a job's page, the add form with its preview, the history, a
failed run's traceback and the scheduler nodes. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 1500


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--lang=en-US"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={WIDTH},1000")
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def shoot(driver: Any, folder: Path, name: str, height: int | None = None) -> None:
    """The whole page (or its first ``height`` pixels) as ``folder/name.png``."""
    full = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, min(full, height or full) + 20)
    driver.save_screenshot(str(folder / f"{name}.png"))
    driver.set_window_size(WIDTH, 1000)
    print(f"  {folder / name}.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    options = parser.parse_args()
    options.out.mkdir(parents=True, exist_ok=True)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser()
    base = options.url.rstrip("/")
    try:
        driver.get(f"{base}/admin/login/")
        driver.find_element(By.NAME, "username").send_keys(options.user)
        driver.find_element(By.NAME, "password").send_keys(options.password)
        driver.find_element(By.CSS_SELECTOR, 'input[type="submit"]').click()
        driver.execute_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")

        driver.get(f"{base}/admin/django_clockwork/job/")
        shoot(driver, options.out, "job-list")
        driver.get(f"{base}/admin/django_clockwork/job/demo-report/change/")
        shoot(driver, options.out, "job-page", height=1900)

        driver.get(f"{base}/admin/django_clockwork/job/add/")
        driver.find_element(By.NAME, "id").send_keys("weekday-digest")
        driver.find_element(By.NAME, "name").send_keys("Weekday digest")
        Select(driver.find_element(By.NAME, "func")).select_by_value("demo_app.jobs:report")
        Select(driver.find_element(By.NAME, "trigger_type")).select_by_value("crontab")
        driver.find_element(By.NAME, "crontab").send_keys("30 8 * * 1-5")
        driver.find_element(By.NAME, "kwargs").clear()
        driver.find_element(By.NAME, "kwargs").send_keys('{"title": "digest"}')
        selector = 'input[name="_preview"]'
        driver.find_element(By.CSS_SELECTOR, selector).click()
        shoot(driver, options.out, "add-form-preview", height=1300)

        driver.get(f"{base}/admin/django_clockwork/jobexecution/")
        shoot(driver, options.out, "history", height=1500)
        driver.get(f"{base}/admin/django_clockwork/jobexecution/?status__exact=failed")
        failed = driver.find_elements(By.CSS_SELECTOR, "#result_list th.field-run a")
        if failed:
            failed[0].click()
            shoot(driver, options.out, "run-traceback")
        driver.get(f"{base}/admin/django_clockwork/schedulernode/")
        shoot(driver, options.out, "nodes")
    finally:
        driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
