# libmariadb under the shim: multi-MB results, prepared statements, multi-statements, the Unix socket,
# and the errors a client sees (bad password, bad query, KILL QUERY / KILL CONNECTION from another
# connection, refused connection, read timeout against a server that never speaks).
# asyncshim-test: timeout=60
# asyncshim-test: needs=mariadb
. "$APPS_DIR/lib.sh"
closed=$(free_port)
silent=$(free_port)
# The silent peer runs natively: it accepts and holds connections without ever sending a byte, so the
# client's handshake read can only end by its timeout.
bg silent native "$PY" -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
' "$silent"
wait_port "$silent" 10 "$BG_PID" || die "silent peer did not start"
shimmed "$APPS_BUILD/mariadb_results" "$closed" "$silent" 2>err.log
status=$?
# Ports vary from run to run: they appear in stderr only.
cat err.log >&2
echo "exit status: $status"
exit $status
