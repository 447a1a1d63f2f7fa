#!/usr/bin/env bash
# Run the whole test suite: lint, format, types, migrations, then pytest over the
# Python x Django x database matrix. `bash scripts/test.sh --help` lists the options.
set -euo pipefail
if ((BASH_VERSINFO[0] < 5 && (BASH_VERSINFO[0] < 4 || BASH_VERSINFO[1] < 4))); then
    echo "scripts/test.sh needs bash 4.4 or newer (this is $BASH_VERSION)" >&2
    exit 2
fi

usage() {
    cat <<'EOF'
Usage: bash scripts/test.sh [options] [-- pytest arguments]

With no options, runs the whole matrix (what CI runs), in order, stopping at the first failure:
  1. creates or reuses one virtualenv per environment under .venvs/
       py311-dj52: Python 3.11          + Django 5.2.x (LTS)
       py312-dj60: Python 3.12          + Django 6.0.x
       py313-dj61: Python 3.13 (or 3.12) + newest Django 6.1.x
  2. checks that PostgreSQL and MariaDB answer (a down server is a failure, never a skip)
  3. ruff check, ruff format --check, mypy (once, in the newest environment)
  4. per environment: makemigrations --check, then pytest on sqlite, postgres and mariadb
and prints a summary table. The exit status is non-zero if anything failed or did not run.

Options (each also settable by the environment variable shown):
  --quick            only py311-dj52 on sqlite (lint still runs, in that environment)
  --env NAME         environments to run: dj52, dj60, dj61 or full names; repeat or comma-separate
                     (CLOCKWORK_TEST_ENVS)
  --db NAME          databases: sqlite, postgres, mariadb; repeat or comma-separate
                     (CLOCKWORK_TEST_DBS)
  --skip-lint        skip ruff and mypy                            (CLOCKWORK_SKIP_LINT=1)
  --lint-only        only ruff and mypy
  --keep-going       run every step even after a failure          (CLOCKWORK_KEEP_GOING=1)
  --recreate         rebuild the virtualenvs from scratch         (CLOCKWORK_RECREATE=1)
  --timeout SECONDS  per-test time limit, 0 for none (default 300) (CLOCKWORK_PYTEST_TIMEOUT)
  -h, --help         this text
Everything after `--` is passed to every pytest run, e.g.  --quick -- -k jobstore -x
Interpreters are found with pyenv or on PATH; override with CLOCKWORK_PYTHON_3_11=/path/to/python
(likewise CLOCKWORK_PYTHON_3_12, CLOCKWORK_PYTHON_3_13). Server addresses come from
tests/settings.py (PGHOST, PGPORT, PGUSER, MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD).
Per-step logs are written to .venvs/logs/.
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# The matrix: name-suffix | Python versions to try, best first | Django requirement.
MATRIX=(
    "dj52|3.11|Django>=5.2,<5.3"
    "dj60|3.12|Django>=6.0,<6.1"
    "dj61|3.13 3.12|Django>=6.1,<6.2"
)
ALL_DBS="sqlite,postgres,mariadb"
# Bump when the way environments are built changes, so existing ones are rebuilt.
RECIPE_VERSION=1

ENV_SEL=${CLOCKWORK_TEST_ENVS:-}
DB_SEL=${CLOCKWORK_TEST_DBS:-}
SKIP_LINT=${CLOCKWORK_SKIP_LINT:-0}
KEEP_GOING=${CLOCKWORK_KEEP_GOING:-0}
RECREATE=${CLOCKWORK_RECREATE:-0}
PYTEST_TIMEOUT=${CLOCKWORK_PYTEST_TIMEOUT:-300}
LINT_ONLY=0
QUICK=0
PYTEST_ARGS=()

# Colours only on a terminal, and never with NO_COLOR set.
if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
    RED=$'\033[1;31m' GREEN=$'\033[1;32m' YELLOW=$'\033[1;33m' BLUE=$'\033[1;34m' BOLD=$'\033[1m' RESET=$'\033[0m'
else
    RED="" GREEN="" YELLOW="" BLUE="" BOLD="" RESET=""
fi

die() {
    printf '\n%sERROR: %s%s\n' "$RED" "$*" "$RESET" >&2
    exit 2
}

while (($#)); do
    case $1 in
        --quick) QUICK=1 ;;
        --env) (($# > 1)) || die "--env needs a value"; ENV_SEL+=${ENV_SEL:+,}$2; shift ;;
        --env=*) ENV_SEL+=${ENV_SEL:+,}${1#*=} ;;
        --db) (($# > 1)) || die "--db needs a value"; DB_SEL+=${DB_SEL:+,}$2; shift ;;
        --db=*) DB_SEL+=${DB_SEL:+,}${1#*=} ;;
        --skip-lint) SKIP_LINT=1 ;;
        --lint-only) LINT_ONLY=1 ;;
        --keep-going) KEEP_GOING=1 ;;
        --recreate) RECREATE=1 ;;
        --timeout) (($# > 1)) || die "--timeout needs a value"; PYTEST_TIMEOUT=$2; shift ;;
        --timeout=*) PYTEST_TIMEOUT=${1#*=} ;;
        -h | --help) usage; exit 0 ;;
        --) shift; PYTEST_ARGS=("$@"); break ;;
        *) die "unknown option '$1' (pytest arguments go after --; see --help)" ;;
    esac
    shift
done

if ((QUICK)); then
    ENV_SEL=${ENV_SEL:-dj52}
    DB_SEL=${DB_SEL:-sqlite}
fi
DB_SEL=${DB_SEL:-$ALL_DBS}
[[ $PYTEST_TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout must be a whole number of seconds, not '$PYTEST_TIMEOUT'"
((LINT_ONLY && SKIP_LINT)) && die "--lint-only and --skip-lint exclude each other"

IFS=, read -r -a DBS <<<"$DB_SEL"
for db in "${DBS[@]}"; do
    [[ ,$ALL_DBS, == *,"$db",* ]] || die "unknown database '$db' (expected: $ALL_DBS)"
done

for file in pyproject.toml requirements/test.txt tests/manage.py; do
    [[ -f $file ]] || die "$ROOT/$file is missing: run this from a complete checkout"
done

# The tests pick their settings and databases from these; a developer's shell must not leak in.
unset DJANGO_SETTINGS_MODULE CLOCKWORK_TEST_DB CLOCKWORK_TEST_DB_NAME CLOCKWORK_TEST_RUN
export PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

LOG_DIR=.venvs/logs
mkdir -p "$LOG_DIR"

# ---------------------------------------------------------------- reporting
ROW_IDS=()
declare -A ROW_STEP ROW_PY ROW_DJ ROW_DB ROW_RESULT ROW_SECS ROW_NOTE
FAILED=0

plan() { # id step python django db
    ROW_IDS+=("$1")
    ROW_STEP[$1]=$2 ROW_PY[$1]=$3 ROW_DJ[$1]=$4 ROW_DB[$1]=$5
    ROW_RESULT[$1]="not run" ROW_SECS[$1]="" ROW_NOTE[$1]=""
}

record() { # id result seconds [note]
    ROW_RESULT[$1]=$2 ROW_SECS[$1]=$3 ROW_NOTE[$1]=${4:-}
    [[ $2 == ok || $2 == passed ]] || FAILED=1
}

banner() {
    printf '\n%s==> %s%s\n' "$BLUE" "$*" "$RESET"
}

fmt_secs() {
    [[ -n $1 ]] && printf '%dm%02ds' $(($1 / 60)) $(($1 % 60))
}

print_summary() {
    ((${#ROW_IDS[@]})) || return 0
    printf '\n%s%-22s %-8s %-8s %-9s %-24s %8s  %s%s\n' "$BOLD" \
        STEP PYTHON DJANGO DB RESULT TIME DETAIL "$RESET"
    local id colour
    for id in "${ROW_IDS[@]}"; do
        case ${ROW_RESULT[$id]} in
            ok | passed) colour=$GREEN ;;
            "not run" | skipped*) colour=$YELLOW ;;
            *) colour=$RED ;;
        esac
        printf '%-22s %-8s %-8s %-9s %s%-24s%s %8s  %s\n' "${ROW_STEP[$id]}" \
            "${ROW_PY[$id]}" "${ROW_DJ[$id]}" "${ROW_DB[$id]}" "$colour" "${ROW_RESULT[$id]}" \
            "$RESET" "$(fmt_secs "${ROW_SECS[$id]}")" "${ROW_NOTE[$id]}"
    done
    printf 'Total time %s. Logs in %s/.\n' "$(fmt_secs "$SECONDS")" "$LOG_DIR"
}

on_exit() {
    local rc=$?
    trap - EXIT
    print_summary
    local id
    for id in "${ROW_IDS[@]}"; do
        [[ ${ROW_RESULT[$id]} == "not run" ]] && FAILED=1
    done
    if ((rc == 0 && FAILED)); then rc=1; fi
    if ((rc == 0)); then
        printf '\n%sAll steps passed.%s\n' "$GREEN" "$RESET"
    elif ((${#ROW_IDS[@]})); then
        printf '\n%sFAILED (exit %d): see the table above and the logs.%s\n' "$RED" "$rc" "$RESET" >&2
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A step failed: stop here unless --keep-going.
stop_unless_keep_going() {
    if ! ((KEEP_GOING)); then
        printf '\n%sERROR: %s failed (stopping; --keep-going runs the remaining steps)%s\n' \
            "$RED" "$1" "$RESET" >&2
        exit 1
    fi
}

# ---------------------------------------------------------------- interpreters
find_python() { # minor version such as 3.13; prints the interpreter's path
    local minor=$1 var="CLOCKWORK_PYTHON_${1//./_}" candidate version
    if [[ -n ${!var:-} ]]; then
        echo "${!var}"
        return 0
    fi
    local candidates=()
    if command -v pyenv >/dev/null 2>&1; then
        local root
        root=$(pyenv root)
        while read -r version; do
            candidates+=("$root/versions/$version/bin/python")
        done < <(pyenv versions --bare 2>/dev/null |
            grep -E "^${minor//./\\.}\.[0-9]+$" | sort -V -r)
    fi
    candidates+=("python$minor")
    for candidate in "${candidates[@]}"; do
        version=$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) ||
            continue
        if [[ $version == "$minor" ]] && "$candidate" -c 'import venv, ensurepip' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# Resolve the selected environments: ENV_NAMES, ENV_PYTHON[name], ENV_DJANGO[name].
ENV_NAMES=()
declare -A ENV_PYTHON ENV_DJANGO ENV_PYLABEL
for entry in "${MATRIX[@]}"; do
    IFS='|' read -r suffix minors django <<<"$entry"
    if [[ -n $ENV_SEL && ! ,$ENV_SEL, =~ ,(py[0-9]+-)?$suffix, ]]; then
        continue
    fi
    python=""
    for minor in $minors; do
        if python=$(find_python "$minor"); then break; fi
        python=""
    done
    if [[ -z $python ]]; then
        first=${minors%% *}
        die "no usable Python ${minors// / or } for $suffix (looked in pyenv and on PATH):" \
            "install one, or set CLOCKWORK_PYTHON_${first//./_}=/path/to/python"
    fi
    minor=$("$python" -c 'import sys; print("%d%d" % sys.version_info[:2])')
    name="py$minor-$suffix"
    ENV_NAMES+=("$name")
    ENV_PYTHON[$name]=$python
    ENV_DJANGO[$name]=$django
    ENV_PYLABEL[$name]=$("$python" -c 'import platform; print(platform.python_version())')
done
((${#ENV_NAMES[@]})) || die "--env '$ENV_SEL' matches no environment (dj52, dj60, dj61)"
NEWEST=${ENV_NAMES[-1]}

# ---------------------------------------------------------------- virtualenvs
venv_stamp() { # name
    {
        echo "recipe $RECIPE_VERSION"
        "${ENV_PYTHON[$1]}" -VV
        echo "${ENV_DJANGO[$1]}"
        cat pyproject.toml requirements/test.txt
    } | sha256sum | cut -d' ' -f1
}

ensure_venv() { # name; returns non-zero on failure
    local name=$1 dir=.venvs/$1 stamp
    stamp=$(venv_stamp "$name") || return 1
    if ((RECREATE)) || ! "$dir/bin/python" -c '' 2>/dev/null ||
        [[ $("$dir/bin/python" -VV 2>&1) != "$("${ENV_PYTHON[$name]}" -VV 2>&1)" ]]; then
        echo "creating $dir with ${ENV_PYTHON[$name]}"
        rm -rf "$dir"
        "${ENV_PYTHON[$name]}" -m venv "$dir" || return 1
    elif [[ -f $dir/.clockwork-stamp && $(<"$dir/.clockwork-stamp") == "$stamp" ]]; then
        echo "reusing $dir (up to date)"
        return 0
    else
        echo "updating $dir (pyproject.toml, requirements/test.txt or the recipe changed)"
    fi
    rm -f "$dir/.clockwork-stamp"
    "$dir/bin/python" -m pip install --quiet --upgrade --upgrade-strategy eager \
        -e '.[postgres,mysql]' -r requirements/test.txt "${ENV_DJANGO[$name]}" || return 1
    echo "$stamp" >"$dir/.clockwork-stamp"
}

dist_version() { # venv-name distribution
    ".venvs/$1/bin/python" -c 'import sys
from importlib.metadata import version
print(version(sys.argv[1]))' "$2" 2>/dev/null || echo "?"
}

# ---------------------------------------------------------------- database servers
# Connects to the server named by tests/settings.py (same environment variables) and prints
# its version; exits non-zero with the driver's error otherwise.
DB_PROBE='
import os, sys
where = os.environ["CLOCKWORK_TEST_DB"]
try:
    sys.path.insert(0, ".")
    from tests.settings import DATABASES
    db = DATABASES["default"]
    host, port, user = db["HOST"], int(db["PORT"]), db["USER"]
    where = f"{user}@{host}:{port}"
    if os.environ["CLOCKWORK_TEST_DB"] == "postgres":
        import psycopg
        with psycopg.connect(host=host, port=port, user=user, password=db.get("PASSWORD", ""),
                             dbname="postgres", connect_timeout=5) as conn:
            print(where, conn.execute("SHOW server_version").fetchone()[0])
    else:
        import MySQLdb
        conn = MySQLdb.connect(host=host, port=port, user=user, passwd=db.get("PASSWORD", ""),
                               connect_timeout=5)
        cur = conn.cursor()
        cur.execute("SELECT VERSION()")
        print(where, cur.fetchone()[0])
        conn.close()
except Exception as exc:
    print(f"cannot connect to {where}:", type(exc).__name__, " ".join(str(exc).split()))
    sys.exit(1)
'

probe_db() { # venv-name db; prints a one-line description
    CLOCKWORK_TEST_DB=$2 ".venvs/$1/bin/python" -c "$DB_PROBE" 2>&1 | tail -n 1
    return "${PIPESTATUS[0]}"
}

db_unreachable() { # db message
    local how
    case $1 in
        postgres) how="pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start" ;;
        mariadb) how="start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd" ;;
    esac
    printf '\n%s%s\n' "$RED" "!!! $1 IS NOT REACHABLE: $2" >&2
    printf '!!! The %s tests cannot run, and a missing database is a failure, never a skip.\n' "$1" >&2
    printf '!!! Start the server (e.g. %s, or bash .ci/run),\n' "$how" >&2
    printf '!!! point tests/settings.py at it (see --help), or leave it out with --db.%s\n' "$RESET" >&2
}

# ---------------------------------------------------------------- steps
run_logged() { # id log-name command...; streams output and keeps a copy in the log
    local log="$LOG_DIR/$2.log"
    shift 2
    printf '$ %s\n' "$*" >"$log"
    "$@" 2>&1 | tee -a "$log"
    return "${PIPESTATUS[0]}"
}

lint_step() { # id log-name command...
    local id=$1 start=$SECONDS rc=0
    banner "${ROW_STEP[$id]} (${NEWEST})"
    run_logged "$@" || rc=$?
    if ((rc == 0)); then
        record "$id" ok $((SECONDS - start))
    else
        record "$id" "failed (exit $rc)" $((SECONDS - start)) "$LOG_DIR/$2.log"
        stop_unless_keep_going "${ROW_STEP[$id]}"
    fi
}

pytest_step() { # venv-name db
    local name=$1 db=$2 id="$1-$2" start=$SECONDS rc=0 desc
    banner "pytest: $name on $db (CLOCKWORK_TEST_RUN=$id)"
    if [[ $db != sqlite ]] && ! desc=$(probe_db "$name" "$db"); then
        db_unreachable "$db" "$desc"
        record "$id" "FAILED: db unreachable" $((SECONDS - start)) "$desc"
        stop_unless_keep_going "pytest $id"
        return 0
    fi
    local args=()
    ((PYTEST_TIMEOUT > 0)) && args+=(--timeout="$PYTEST_TIMEOUT")
    CLOCKWORK_TEST_DB=$db CLOCKWORK_TEST_RUN=$id \
        run_logged "$id" "$id" ".venvs/$name/bin/python" -m pytest "${args[@]}" \
        ${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"} || rc=$?
    # pytest's tally, e.g. "=== 120 passed, 2 skipped in 31.02s ===".
    local tally
    tally=$(grep -E '(passed|failed|errors?|skipped|deselected|no tests ran).* in [0-9.]+s' \
        "$LOG_DIR/$id.log" | tail -n 1 | sed -E 's/^=+ | =+$//g' || true)
    case $rc in
        0) record "$id" passed $((SECONDS - start)) "$tally" ;;
        5) record "$id" "FAILED: no tests ran" $((SECONDS - start)) "pytest exit 5; $tally" ;;
        2) record "$id" "FAILED: interrupted" $((SECONDS - start)) "pytest exit 2; $tally" ;;
        3 | 4) record "$id" "FAILED (exit $rc)" $((SECONDS - start)) \
            "pytest internal/usage error (conftest import?); see $LOG_DIR/$id.log" ;;
        *) record "$id" "FAILED (exit $rc)" $((SECONDS - start)) "$tally" ;;
    esac
    ((rc == 0)) || stop_unless_keep_going "pytest $id"
}

# ---------------------------------------------------------------- plan
RUN_TESTS=$((!LINT_ONLY))
SERVER_DBS=()
for db in "${DBS[@]}"; do [[ $db == sqlite ]] || SERVER_DBS+=("$db"); done
((RUN_TESTS)) || SERVER_DBS=()

for name in "${ENV_NAMES[@]}"; do
    plan "setup-$name" "virtualenv" "${ENV_PYLABEL[$name]}" "" ""
done
for db in "${SERVER_DBS[@]}"; do
    plan "reach-$db" "server reachable" "" "" "$db"
done
plan ruff-check "ruff check" "" "" ""
plan ruff-format "ruff format --check" "" "" ""
plan mypy "mypy" "${ENV_PYLABEL[$NEWEST]}" "" ""
if ((SKIP_LINT)); then
    for id in ruff-check ruff-format mypy; do ROW_RESULT[$id]="skipped (--skip-lint)"; done
fi
if ((RUN_TESTS)); then
    for name in "${ENV_NAMES[@]}"; do
        plan "migrations-$name" "makemigrations --check" "${ENV_PYLABEL[$name]}" "" sqlite
        for db in "${DBS[@]}"; do
            plan "$name-$db" "pytest" "${ENV_PYLABEL[$name]}" "" "$db"
        done
    done
fi

# ---------------------------------------------------------------- run
for name in "${ENV_NAMES[@]}"; do
    banner "virtualenv .venvs/$name (Python ${ENV_PYLABEL[$name]}, ${ENV_DJANGO[$name]})"
    start=$SECONDS
    if ! ensure_venv "$name"; then
        record "setup-$name" failed $((SECONDS - start))
        die "could not build .venvs/$name (see the pip output above)"
    fi
    dj=$(dist_version "$name" Django)
    record "setup-$name" ok $((SECONDS - start)) \
        "Django $dj, APScheduler $(dist_version "$name" APScheduler), pytest $(dist_version "$name" pytest)"
    for id in "${ROW_IDS[@]}"; do
        [[ $id == "migrations-$name" || $id == "$name-"* ]] && ROW_DJ[$id]=$dj
    done
    ROW_DJ[setup-$name]=$dj
    if [[ $name == "$NEWEST" ]]; then ROW_DJ[mypy]=$dj; fi
done

for db in "${SERVER_DBS[@]}"; do
    banner "is $db reachable?"
    start=$SECONDS
    if desc=$(probe_db "$NEWEST" "$db"); then
        echo "$db: $desc"
        record "reach-$db" ok $((SECONDS - start)) "$desc"
    else
        db_unreachable "$db" "$desc"
        record "reach-$db" "FAILED: unreachable" $((SECONDS - start)) "$desc"
        stop_unless_keep_going "the $db reachability check"
    fi
done

if ! ((SKIP_LINT)); then
    bin=.venvs/$NEWEST/bin
    lint_step ruff-check ruff-check "$bin/ruff" check .
    lint_step ruff-format ruff-format "$bin/ruff" format --check .
    lint_step mypy mypy "$bin/mypy"
fi

if ((RUN_TESTS)); then
    for name in "${ENV_NAMES[@]}"; do
        id="migrations-$name"
        banner "makemigrations --check ($name)"
        start=$SECONDS
        rc=0
        CLOCKWORK_TEST_DB=sqlite CLOCKWORK_TEST_RUN="$name-makemigrations" \
            run_logged "$id" "$id" ".venvs/$name/bin/python" tests/manage.py makemigrations \
            --check --dry-run || rc=$?
        if ((rc == 0)); then
            record "$id" ok $((SECONDS - start))
        else
            record "$id" "FAILED (exit $rc)" $((SECONDS - start)) "missing or stale migration?"
            stop_unless_keep_going "makemigrations --check ($name)"
        fi
        for db in "${DBS[@]}"; do
            pytest_step "$name" "$db"
        done
    done
fi

# on_exit prints the summary and sets the exit status.
exit 0
