"""The package description (README.md through pyproject.toml's fancy-pypi-readme hook) reads
well on a package index: no checkout-only first screen, no relative links, no dead anchors.

The hook runs at build time only; ``describe()`` applies its fragments and substitutions the way
hatch-fancy-pypi-readme documents them, so that a README edit that breaks the description fails
here and not at release time. (Verified against a real build: ``python -m build``, then the
wheel's METADATA.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "https://github.com/django-clockwork/django-clockwork"


def hook_config() -> dict[str, Any]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    config: dict[str, Any] = pyproject["tool"]["hatch"]["metadata"]["hooks"]["fancy-pypi-readme"]
    return config


def fragment(spec: dict[str, str]) -> str:
    if "text" in spec:
        return spec["text"]
    text = (ROOT / spec["path"]).read_text()
    if "start-after" in spec:
        text = text[text.index(spec["start-after"]) + len(spec["start-after"]) :]
    if "end-before" in spec:
        text = text[: text.index(spec["end-before"])]
    return text


def describe() -> str:
    config = hook_config()
    text = "".join(fragment(spec) for spec in config["fragments"])
    for substitution in config["substitutions"]:
        text = re.sub(substitution["pattern"], substitution["replacement"], text)
    return text


def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_description_leaves_out_the_checkout_only_first_screen() -> None:
    description = describe()

    assert description.startswith("# django-clockwork\n\n**APScheduler for Django")
    assert "bash scripts/demo.sh" not in description
    assert "<!--" not in description
    assert f"<{REPOSITORY}>" in description
    assert "## Install" in description


def test_description_has_only_absolute_links_that_resolve() -> None:
    description = describe()
    headings = {
        github_anchor(line.lstrip("#"))
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("#")
    }

    targets = re.findall(r"\]\(([^)\s]+)\)", description)
    assert targets, "the description has no links at all"
    assert [t for t in targets if not t.startswith("https://")] == []
    files = [t.removeprefix(f"{REPOSITORY}/blob/main/") for t in targets if "/blob/main/" in t]
    assert "CHANGELOG.md" in files
    assert [path for path in files if not (ROOT / path).is_file()] == []
    anchors = [t.removeprefix(f"{REPOSITORY}#") for t in targets if t.startswith(f"{REPOSITORY}#")]
    assert "install" in anchors
    assert [anchor for anchor in anchors if anchor not in headings] == []
