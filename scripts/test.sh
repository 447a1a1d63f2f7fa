#!/usr/bin/env bash
# Run the test matrix with nox (noxfile.py holds the matrix; README "Development" explains it).
#
#   bash scripts/test.sh                       # everything, as CI runs it (two sessions at a time)
#   bash scripts/test.sh -l                    # list the sessions
#   bash scripts/test.sh -t sqlite             # every session on one database
#   bash scripts/test.sh -s lint               # one session
#   bash scripts/test.sh -s "tests(python='3.12', django='6.0', db='postgres')" -- -x -k claim
#
# Arguments are nox's; what follows `--` goes to pytest. It installs nox (and uv) into
# .venvs/runner on first use, with python3.10+ from PATH or $PYTHON. The exit status is
# non-zero when any session failed, including a pytest run that collected no tests.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNNER=.venvs/runner
REQUIREMENTS=requirements/nox.txt

die() {
    printf 'ERROR [scripts/test.sh]: %s\n' "$*" >&2
    exit 2
}

find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3 python3.13 python3.12 python3.11 python3.10; do
        if "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' \
            >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

# (Re)install the runner when it is missing or requirements/nox.txt changed.
if ! cmp -s "$REQUIREMENTS" "$RUNNER/requirements.txt" || ! "$RUNNER/bin/nox" --version >/dev/null 2>&1; then
    python=$(find_python) || die "no Python 3.10+ with venv and ensurepip found (set PYTHON=/path/to/python3)"
    echo "==> installing nox into $RUNNER with $python"
    rm -rf "$RUNNER"
    "$python" -m venv "$RUNNER"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$RUNNER/bin/python" -m pip install --quiet -r "$REQUIREMENTS"
    cp "$REQUIREMENTS" "$RUNNER/requirements.txt"
fi

# With no arguments, the whole matrix: independent sessions two at a time (the process suites
# always run alone, see noxfile.py).
(($#)) || set -- --parallel 2
exec "$RUNNER/bin/nox" "$@"
