# Unmodified mariadb-slap (100 client threads, each on its own connection, synchronised with pthread
# mutexes and condition variables) runs to completion under the shim, and the work it reports is done:
# the rows it inserted are all in the server, from 100 distinct connections.
# asyncshim-test: timeout=90
# asyncshim-test: needs=mariadb
. "$APPS_DIR/lib.sh"
schema=slap_${MODE//-/_}
conn=(--no-defaults -h"$MARIADB_HOST" -P"$MARIADB_PORT" -u"$MARIADB_USER" -p"$MARIADB_PASSWORD")
# The checking client runs natively: it is the judge, not the program under test.
sql() { native mariadb "${conn[@]}" -N -B -e "$1"; }
sql "DROP DATABASE IF EXISTS $schema" || die "server not reachable"
on_exit "sql 'DROP DATABASE IF EXISTS $schema'"

# slap_facts: the lines of a report that do not depend on timing.
slap_facts() { grep -E 'Number of clients running queries|Average number of queries per client' | sed 's/^[[:space:]]*//'; }

t0=$EPOCHREALTIME
shimmed mariadb-slap "${conn[@]}" --concurrency=100 --iterations=1 --number-of-queries=2000 \
    --create-schema="$schema" --no-drop \
    --create="CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, c BIGINT, v VARCHAR(32))" \
    --query="INSERT INTO t (c, v) VALUES (CONNECTION_ID(), REPEAT('x', 20))" >insert.out 2>&1
echo "insert run: exit $?"
slap_facts <insert.out
echo "rows, connections: $(sql "SELECT COUNT(*), COUNT(DISTINCT c), MIN(v) = REPEAT('x', 20) FROM $schema.t")"
echo "insert run took $(elapsed "$t0") s" >&2
sql "DROP DATABASE $schema"

t0=$EPOCHREALTIME
shimmed mariadb-slap "${conn[@]}" --concurrency=100 --iterations=2 --number-of-queries=2000 \
    --auto-generate-sql --auto-generate-sql-load-type=mixed --create-schema="$schema" >mixed.out 2>&1
echo "mixed run: exit $?"
slap_facts <mixed.out
grep -q '^Benchmark' mixed.out && echo "mixed run: finished with a report"
echo "mixed run took $(elapsed "$t0") s" >&2
cat insert.out mixed.out >&2
