#!/usr/bin/env bash
# asyncshim-test: timeout=60
# asyncshim-test: modes=native,shim,shim-w1
#
# CPU-bound CPython threads contending for the GIL next to I/O threads (python_gil.py): results are
# checked, and the run must end in bounded time: a runtime that lets a spinning thread keep the only
# worker forever would never wake the sleeping main thread. The python run is bounded here by
# `timeout` (run natively, outside the shim) so that a hang shows up as "exit status 124".
. "$APPS_DIR/lib.sh"
. "$APPS_DIR/harm_lib.bash"
t0=$EPOCHREALTIME
timeout -k 2 15 env $SHIM_ENV "$PY" -u "$APPS_DIR/python_gil.py"
echo "python exit status: $?"
echo "python_gil.py took $(elapsed "$t0") s" >&2
