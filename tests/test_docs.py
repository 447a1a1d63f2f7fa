"""Keep the README honest: its settings and check tables, its JSON and its Python examples."""

from __future__ import annotations

import ast
import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from django_clockwork import conf, taskframework
from django_clockwork.serialization import trigger_from_json

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
SOURCE = Path(__file__).resolve().parent.parent / "src" / "django_clockwork"


def section(title: str) -> str:
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ )", README, re.M | re.S)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[2:]]


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, re.M | re.S)


def test_settings_table_matches_the_code() -> None:
    rows = table_rows(section("Settings"))
    documented = {row[0].strip("`"): ast.literal_eval(row[1].strip("`")) for row in rows}
    assert documented == conf.DEFAULTS


def test_check_ids_table_matches_the_code() -> None:
    documented = {row[0].strip("`") for row in table_rows(section("System checks"))}
    in_code = set()
    for path in SOURCE.rglob("*.py"):
        in_code |= set(re.findall(r'"(clockwork\.[EW]\d{3})"', path.read_text()))
    assert documented == in_code


def test_first_screen_has_the_two_commands() -> None:
    first_block = code_blocks("bash")[0]
    assert "bash scripts/demo.sh" in first_block
    assert "bash scripts/test.sh" in first_block
    assert README.index("bash scripts/demo.sh") < 1200


def test_trigger_json_example_is_valid() -> None:
    for block in code_blocks("json"):
        trigger_from_json(json.loads(block))


@pytest.mark.django_db(transaction=True)
def test_python_examples_run(capsys: pytest.CaptureFixture[str], settings: Any) -> None:
    # The README's myapp is an installed app of the reader's project; here it is a module
    # made on the fly, so the test settings allow it by name.
    settings.CLOCKWORK = {**settings.CLOCKWORK, "ALLOWED_FUNCTIONS": ["myapp"]}
    blocks = code_blocks("python")
    assert len(blocks) >= 6
    namespace: dict[str, object] = {"BASE_DIR": Path("/srv/project")}  # as settings.py has
    myapp = types.ModuleType("myapp")
    myapp.__path__ = []
    sys.modules["myapp"] = myapp
    # On Django 5.2 the reader imports the backport where the README says django.tasks.
    backport = taskframework.FRAMEWORK if taskframework.NAME == "django_tasks" else None
    if backport is not None:
        sys.modules["django.tasks"] = backport
    try:
        for block in blocks:
            if heading := re.match(r"# myapp/(\w+)\.py\n", block):
                # Every block headed myapp/<name>.py adds to the one module myapp.<name>.
                name = f"myapp.{heading[1]}"
                module = sys.modules.get(name) or types.ModuleType(name)
                exec(compile(block, f"README:myapp/{heading[1]}.py", "exec"), module.__dict__)
                sys.modules[name] = module
                setattr(myapp, heading[1], module)
            else:
                exec(compile(block, "README", "exec"), namespace)
    finally:
        for name in [name for name in sys.modules if name.startswith("myapp.")]:
            sys.modules.pop(name, None)
        sys.modules.pop("myapp", None)
        if backport is not None:
            sys.modules.pop("django.tasks", None)
    assert "kwargs['limit'] is a datetime" in capsys.readouterr().out
