# harm_lib.bash — extras for the python_* and harm_* app tests, sourced after lib.sh:
#     . "$APPS_DIR/lib.sh"; . "$APPS_DIR/harm_lib.bash"
# (Named .bash, not .sh, so that scripts/run-app-tests.sh does not take it for a test.)
#
#   H_TMP             scratch directory of this run ($TEST_TMP from the runner, else a private temp dir
#                     removed at exit)
#   bg_shim NAME CMD...  bg NAME under $SHIM_ENV; BG_PID is CMD's own PID (env execs it)
#   h_threads PID     OS threads of PID (/proc/PID/status)
#   h_workers         the shim's worker count in this mode (0 natively)
#   h_fail MSG...     print "FAILED: MSG" on stdout (so the diff against native names it) and stderr
: "${APPS_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
export MODE SHIM_ENV PY APPS_DIR

if [ -n "${TEST_TMP:-}" ] && [ -d "$TEST_TMP" ]; then
    H_TMP=$TEST_TMP
else
    H_TMP=$(mktemp -d /tmp/asyncshim-app.XXXXXXXX)
    on_exit 'rm -rf "$H_TMP"'
fi

# shellcheck disable=SC2086
bg_shim() { local name=$1; shift; bg "$name" env $SHIM_ENV "$@"; }

h_threads() { awk '/^Threads:/ {print $2}' /proc/"$1"/status 2>/dev/null; }

h_workers() {
    case "$SHIM_ENV" in
        "") echo 0 ;;
        *ASYNCSHIM_WORKERS=*) echo "$SHIM_ENV" | sed 's/.*ASYNCSHIM_WORKERS=\([0-9]*\).*/\1/' ;;
        *) nproc ;;
    esac
}

h_fail() { echo "FAILED: $*"; echo "FAILED: $*" >&2; }
