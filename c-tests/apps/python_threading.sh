#!/usr/bin/env bash
# asyncshim-test: timeout=60
# asyncshim-test: modes=native,shim,shim-w1
#
# CPython's threading toolkit under the shim (python_threading.py): Lock, RLock, Condition, Event,
# Semaphore, BoundedSemaphore, Barrier, queue.Queue producers/consumers, time.sleep accuracy, socket
# timeouts (socketpair recv/sendall, accept), subprocess.run from 20 threads, threading.Timer,
# threading.local, ThreadPoolExecutor. Timings are checked against bounds inside the script.
. "$APPS_DIR/lib.sh"
. "$APPS_DIR/harm_lib.bash"
shimmed "$PY" -u "$APPS_DIR/python_threading.py"
