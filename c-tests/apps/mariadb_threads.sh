# 200 threads, each on its own blocking libmariadb connection, sleeping in the server at the same time.
# The program checks that the waits overlap and (under the shim) that they cost no OS threads.
# asyncshim-test: timeout=60
# asyncshim-test: needs=mariadb
. "$APPS_DIR/lib.sh"
N=200
SLEEP=0.5
# The query phase may take at most 2x the native one plus a second. The native run (made first by the
# runner, as the reference) records its phase; on its own it is bounded by 2 sleeps plus a second.
ref=$APPS_BUILD/mariadb_threads.native-phase
if [ "$MODE" = native ]; then
    bound=$(awk -v s=$SLEEP 'BEGIN { print 2 * s + 1 }')
else
    [ -s "$ref" ] || die "no native reference phase in $ref"
    bound=$(awk -v p="$(cat "$ref")" 'BEGIN { print 2 * p + 1 }')
fi
shimmed "$APPS_BUILD/mariadb_threads" $N $SLEEP "$bound" 2>err.log
status=$?
cat err.log >&2
if [ "$MODE" = native ]; then
    sed -n 's/.*query phase \([0-9.]*\) s.*/\1/p' err.log >"$ref"
fi
echo "exit status: $status"
exit $status
