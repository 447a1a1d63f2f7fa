#!/usr/bin/env bash
# Run the django-clockwork demo: the Django admin on http://127.0.0.1:8000/admin/ and a
# scheduler running four sample jobs (cron, interval, a failing one, a one-off async one).
#
#   bash scripts/demo.sh                        # needs python3 >= 3.10 and PyPI, nothing else
#   PORT=8080 bash scripts/demo.sh              # another port (DEMO_PORT works too)
#   DEMO_ADMIN_PASSWORD=pw bash scripts/demo.sh # choose the admin password (default: random)
#
# It creates .venv (once), installs this checkout into it (when pyproject.toml changed),
# migrates demo/db.sqlite3, creates or resets the superuser "admin", seeds the jobs, starts
# `manage.py runscheduler` in the background (log: demo/scheduler.log, also shown here) and
# `manage.py runserver` in the foreground. Ctrl-C stops both; the scheduler gets one SIGTERM
# and finishes its running jobs first.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PORT=${DEMO_PORT:-${PORT:-8000}}
PYTHON=${PYTHON:-python3}
VENV=$ROOT/.venv
PY=$VENV/bin/python
LOG=$ROOT/demo/scheduler.log
STAMP=$VENV/.clockwork-demo-installed
export DJANGO_SETTINGS_MODULE=demo_project.settings PYTHONUNBUFFERED=1
SCHEDULER_PID="" WEB_PID="" TAIL_PID=""

say() { printf '\n==> %s\n' "$*"; }
die() { printf '\nError: %s\n' "$*" >&2; exit 1; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

stop() { # stop PID NAME SIGNAL SECONDS: signal it, wait for it, SIGKILL as a last resort
    alive "$1" || return 0
    echo "Stopping the $2 (pid $1)..."
    kill "-$3" "$1" 2>/dev/null || true
    for _ in $(seq $(($4 * 10))); do alive "$1" || break; sleep 0.1; done
    if alive "$1"; then
        echo "The $2 did not stop within $4 s; killing it."
        kill -KILL "$1" 2>/dev/null || true
    fi
    local code=0
    wait "$1" 2>/dev/null || code=$?
    echo "The $2 exited with status $code."
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM HUP
    stop "$WEB_PID" "web server" TERM 5
    # One SIGTERM: runscheduler stops claiming and lets running jobs finish
    # (CLOCKWORK["SHUTDOWN_TIMEOUT"] is 10 s in the demo settings).
    stop "$SCHEDULER_PID" scheduler TERM 20
    if [ -n "$TAIL_PID" ]; then kill "$TAIL_PID" 2>/dev/null || true; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

bootstrap_pip() { # for a python3 without ensurepip (Debian without python3-venv): pip from PyPI
    "$PY" - <<'EOF'
import hashlib, json, subprocess, sys, tempfile, urllib.parse, urllib.request
from pathlib import Path

index = "https://pypi.org/pypi/pip/json"
with urllib.request.urlopen(index, timeout=60) as response:
    wheel = next(f for f in json.load(response)["urls"] if f["packagetype"] == "bdist_wheel")
with urllib.request.urlopen(urllib.parse.urljoin(index, wheel["url"]), timeout=300) as response:
    data = response.read()
if hashlib.sha256(data).hexdigest() != wheel["digests"]["sha256"]:
    sys.exit(f"{wheel['filename']}: SHA-256 mismatch")
path = Path(tempfile.mkdtemp()) / wheel["filename"]
path.write_bytes(data)
subprocess.run([sys.executable, f"{path}/pip", "install", "--quiet", "--no-index", str(path)], check=True)
EOF
}

# -- 1. Python environment ----------------------------------------------------------------
command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.10 or newer."
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "django-clockwork needs Python >= 3.10; $PYTHON is $("$PYTHON" -V 2>&1)."
port_open && die "port $PORT is in use; choose another with PORT=8080 bash scripts/demo.sh"

if [ ! -x "$PY" ]; then
    say "Creating the virtual environment $VENV"
    if ! venv_error=$("$PYTHON" -m venv "$VENV" 2>&1); then
        echo "($PYTHON has no ensurepip, e.g. Debian without python3-venv: installing pip from PyPI)"
        "$PYTHON" -m venv --without-pip "$VENV" || die "$venv_error"
    fi
fi
if ! "$PY" -m pip --version >/dev/null 2>&1; then
    "$PY" -m ensurepip --default-pip >/dev/null 2>&1 || bootstrap_pip \
        || die "could not install pip into $VENV (is https://pypi.org reachable?)"
fi

wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$wanted" ] \
    || ! "$PY" -c 'import apscheduler, django, django_clockwork' 2>/dev/null; then
    say "Installing django-clockwork (editable) and its dependencies into $VENV"
    "$PY" -m pip install --disable-pip-version-check --quiet -e "$ROOT"
    echo "$wanted" >"$STAMP"
fi

# -- 2. Database, superuser, jobs ---------------------------------------------------------
manage() { "$PY" demo/manage.py "$@"; }
say "Migrating the demo database (${DEMO_DB_PATH:-demo/db.sqlite3})"
manage migrate --no-input --verbosity 0
DEMO_ADMIN_PASSWORD=${DEMO_ADMIN_PASSWORD:-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(12))')}
export DEMO_ADMIN_PASSWORD
manage demo_admin
say "Seeding the demo jobs"
manage seed_demo --start-now

# -- 3. Scheduler (background) and web server (foreground) --------------------------------
say "Starting the scheduler (log: demo/scheduler.log)"
# Its own session: Ctrl-C reaches only this script, which then sends it a single SIGTERM.
setsid "$PY" demo/manage.py runscheduler >"$LOG" 2>&1 </dev/null &
SCHEDULER_PID=$!

say "Starting the web server on 127.0.0.1:$PORT"
"$PY" demo/manage.py runserver "127.0.0.1:$PORT" --noreload </dev/null &
WEB_PID=$!
for _ in $(seq 100); do
    port_open && break
    alive "$WEB_PID" || break
    sleep 0.2
done
alive "$WEB_PID" && port_open || { wait "$WEB_PID" || true; die "the web server did not start."; }
alive "$SCHEDULER_PID" || { cat "$LOG"; die "the scheduler exited at start-up."; }

cat <<EOF

=====================================================================
  django-clockwork demo is running

  Admin:     http://127.0.0.1:$PORT/admin/
  Jobs:      http://127.0.0.1:$PORT/admin/django_clockwork/job/
  History:   http://127.0.0.1:$PORT/admin/django_clockwork/jobexecution/
  Username:  admin
  Password:  $DEMO_ADMIN_PASSWORD

  Scheduler pid $SCHEDULER_PID, log demo/scheduler.log (shown below).
  Press Ctrl-C to stop the web server and the scheduler.
=====================================================================

EOF
tail -n +1 -F --pid="$SCHEDULER_PID" "$LOG" 2>/dev/null &
TAIL_PID=$!

wait "$WEB_PID" # returns when the web server exits, or at once on Ctrl-C (then: cleanup)
