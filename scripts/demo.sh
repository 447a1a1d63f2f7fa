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
# `manage.py runserver`, and waits. Ctrl-C stops both (the scheduler gets one SIGTERM
# and finishes its running jobs first), says so and exits 0. If either exits on its own (a
# crash), the script reports its exit status, stops the other and exits 1.
#
# For the tests (tests/test_demo.py): DEMO_PYTHON=/path/to/python uses that interpreter as it
# is (it must have Django and APScheduler; no .venv, no install), DEMO_LOG sets the scheduler's
# log file, DEMO_DB_PATH the SQLite file.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PORT=${DEMO_PORT:-${PORT:-8000}}
PYTHON=${PYTHON:-python3}
VENV=$ROOT/.venv
PY=${DEMO_PYTHON:-$VENV/bin/python}
LOG=${DEMO_LOG:-$ROOT/demo/scheduler.log}
STAMP=$VENV/.clockwork-demo-installed
export DJANGO_SETTINGS_MODULE=demo_project.settings PYTHONUNBUFFERED=1
SCHEDULER_PID="" WEB_PID="" TAIL_PID="" STOPPED_BY="" RUNNING=""

say() { printf '\n==> %s\n' "$*"; }
die() { printf '\nError: %s\n' "$*" >&2; exit 1; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

# finish PID NAME SIGNAL SECONDS: end a process this script started and say how it ended.
# Returns 0 if it stopped on our signal (SIGNAL, or a clean exit), 1 if it had already exited
# on its own (a crash: its status is shown), exited badly, or had to be killed.
finish() {
    local pid=$1 name=$2 signal=$3 seconds=$4 code=0
    [ -n "$pid" ] || return 0
    if ! alive "$pid"; then
        wait "$pid" 2>/dev/null || code=$?
        echo "The $name had exited on its own with status $code."
        return 1
    fi
    echo "Stopping the $name (pid $pid)..."
    kill "-$signal" "$pid" 2>/dev/null || true
    for _ in $(seq $((seconds * 10))); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        echo "The $name did not stop within $seconds s; killed it."
        return 1
    fi
    wait "$pid" 2>/dev/null || code=$?
    if [ "$code" -eq 0 ] || [ "$code" -eq $((128 + $(kill -l "$signal"))) ]; then
        echo "The $name stopped."
        return 0
    fi
    echo "The $name exited with status $code while stopping."
    return 1
}

cleanup() {
    local status=$? failed=0
    trap - EXIT
    trap '' INT TERM HUP # the stop below is bounded (25 s at most); let it finish
    [ -z "$STOPPED_BY" ] || printf '\n%s: stopping the demo.\n' "$STOPPED_BY"
    finish "$WEB_PID" "web server" TERM 5 || failed=1
    # One SIGTERM: runscheduler stops claiming and lets running jobs finish
    # (CLOCKWORK["SHUTDOWN_TIMEOUT"] is 10 s in the demo settings).
    finish "$SCHEDULER_PID" scheduler TERM 20 || failed=1
    if [ -n "$TAIL_PID" ]; then kill "$TAIL_PID" 2>/dev/null || true; fi
    if [ -n "$STOPPED_BY" ] && [ -n "$RUNNING" ]; then
        # A normal stop of the running demo (Ctrl-C): 0, unless a process ended badly.
        status=$failed
    elif [ "$failed" -ne 0 ] && [ "$status" -eq 0 ]; then
        status=1
    fi
    if [ -n "$STOPPED_BY" ] && [ -z "$RUNNING" ]; then
        echo "Interrupted before the demo was running."
    elif [ "$status" -eq 0 ]; then
        echo "The demo has stopped."
    elif [ -n "$SCHEDULER_PID" ]; then
        echo "The demo stopped with errors (exit status $status); scheduler log: $LOG" >&2
    fi
    exit "$status"
}
# A signal ends the demo normally; one that arrives before it is running keeps its usual status.
on_signal() { STOPPED_BY=$1; exit "$2"; }
trap cleanup EXIT
trap 'on_signal Ctrl-C 130' INT
trap 'on_signal SIGTERM 143' TERM
trap 'on_signal SIGHUP 129' HUP

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

prepare_venv() { # .venv with this checkout installed (editable), once per pyproject.toml
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.10 or newer."
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || die "django-clockwork needs Python >= 3.10; $PYTHON is $("$PYTHON" -V 2>&1)."

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
}

# -- 1. Python environment ----------------------------------------------------------------
port_open && die "port $PORT is in use; choose another with PORT=8080 bash scripts/demo.sh"
if [ -z "${DEMO_PYTHON:-}" ]; then prepare_venv; fi

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
say "Starting the scheduler (log: ${LOG#"$ROOT"/})"
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

  Scheduler pid $SCHEDULER_PID, log ${LOG#"$ROOT"/} (shown below).
  Web server pid $WEB_PID.
  Press Ctrl-C to stop the web server and the scheduler.
=====================================================================

EOF
tail -n +1 -F --pid="$SCHEDULER_PID" "$LOG" 2>/dev/null &
TAIL_PID=$!
RUNNING=1

# Until Ctrl-C (the trap returns from `wait` at once) or until either process exits on its
# own, which is a crash: cleanup reports its status and stops the other.
while alive "$WEB_PID" && alive "$SCHEDULER_PID"; do
    sleep 1 &
    wait $! || true
done
exit 1
