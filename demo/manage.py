#!/usr/bin/env python
"""manage.py for the django-clockwork demo project (``bash scripts/demo.sh`` runs it all)."""

import os
import sys
from pathlib import Path


def main() -> None:
    demo = Path(__file__).resolve().parent
    src = demo.parent / "src"
    # From a checkout, use the django_clockwork next to this demo (pip-installed or not).
    paths = [str(demo), *([str(src)] if (src / "django_clockwork").is_dir() else [])]
    sys.path[:0] = [path for path in paths if path not in sys.path]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
