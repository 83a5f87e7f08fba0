# The MariaDB server process dies while shimmed clients wait on it: a C client on libmariadb in the
# middle of SELECT SLEEP(30), and the mariadb command-line client, must get the error they get natively
# (2013, lost connection) as soon as the server is gone — not hang on a connection nobody will answer —
# and a reconnect to the dead port must fail with 2002/2003 at once. The test starts its own private
# server (scripts/mariadb.sh with a state dir of its own) so that killing it disturbs no other test.
# asyncshim-test: timeout=90
. "$APPS_DIR/lib.sh"
state=$TEST_TMP/mariadb-victim
STATE_DIR=$state "$ROOT/scripts/mariadb.sh" start >start.log 2>&1 || { cat start.log >&2; die "cannot start a private server"; }
on_exit "STATE_DIR=$state '$ROOT/scripts/mariadb.sh' stop >/dev/null 2>&1"
set -a   # the clients read MARIADB_* from the environment
# shellcheck disable=SC1091
. "$state/env"
set +a
server_pid=$(cat "$state/pid")
conn=(-h"$MARIADB_HOST" -P"$MARIADB_PORT" -u"$MARIADB_USER" -p"$MARIADB_PASSWORD")

# Both clients start their query, the server is killed with SIGKILL a second later.
shimmed mariadb --no-defaults "${conn[@]}" -N -B -e "SELECT SLEEP(30)" >cli.out 2>cli.err &
cli=$!
t0=$EPOCHREALTIME
shimmed "$APPS_BUILD/mariadb_sleep_client" 30 >c.out 2>c.err &
capi=$!
# Wait until both queries are running on the server, then kill it.
for _ in $(seq 100); do
    n=$(native mariadb --no-defaults "${conn[@]}" -N -B -e \
        "SELECT COUNT(*) FROM information_schema.processlist WHERE info = 'SELECT SLEEP(30)'" 2>/dev/null)
    [ "${n:-0}" -ge 2 ] && break
    sleep 0.1
done
echo "both queries running: $([ "${n:-0}" -ge 2 ] && echo yes || echo no)"
kill -KILL "$server_pid"
bg_wait "$cli" 20; cli_st=$?
bg_wait "$capi" 20; capi_st=$?
echo "command-line client: exit $cli_st, $(grep -o 'ERROR 2013 ([A-Z0-9]*)' cli.err | head -1)"
echo "C client: exit $capi_st, $(cat c.out)"
secs=$(elapsed "$t0")
echo "clients ended within 10 s of the kill: $(awk -v s="$secs" 'BEGIN { print (s < 12) ? "yes" : "no" }')"
echo "elapsed $secs s" >&2
# The port is dead now: a new connection fails at once.
shimmed mariadb --no-defaults "${conn[@]}" -N -B -e "SELECT 1" >dead.out 2>dead.err
st=$?
echo "connect to the dead server: exit $st, $(grep -o 'ERROR 200[23] ([A-Z0-9]*)' dead.err | head -1)"
