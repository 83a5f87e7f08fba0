# MariaDB's own command-line tools under the shim, as shell scripts use them: the client streaming a
# large result into a pipe, running a SQL script with errors (--force), mariadb-dump of a database and
# its restore through a pipe between two shimmed processes, and mariadb-admin.
# asyncshim-test: timeout=60
# asyncshim-test: needs=mariadb
. "$APPS_DIR/lib.sh"
# One name in every mode (runs are sequential): it appears in error messages, which must agree.
db=asyncshim_tools
conn=(-h"$MARIADB_HOST" -P"$MARIADB_PORT" -u"$MARIADB_USER" -p"$MARIADB_PASSWORD")
judge() { native mariadb --no-defaults "${conn[@]}" -N -B -e "$1"; }
judge "DROP DATABASE IF EXISTS $db; DROP DATABASE IF EXISTS ${db}_copy; CREATE DATABASE $db" || die "server not reachable"
on_exit "judge 'DROP DATABASE IF EXISTS $db; DROP DATABASE IF EXISTS ${db}_copy'"

# About 10 MB of tab-separated output through a pipe.
shimmed mariadb --no-defaults "${conn[@]}" -N -B -e \
    "SELECT seq, MD5(seq), REPEAT(CHAR(97 + seq % 26), seq % 90) FROM seq_1_to_150000" "$db" >big.tsv
st=$?
echo "big select: exit $st, $(wc -l <big.tsv) lines, sha256 $(sha256sum <big.tsv | cut -c1-32)"
[ $st -eq 0 ] || die "big select failed"

cat >script.sql <<SQL
USE $db;
CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(50), price DECIMAL(8,2), created DATE);
INSERT INTO items SELECT seq, CONCAT('item-', seq), seq / 4, DATE('2024-01-01') + INTERVAL seq % 365 DAY FROM seq_1_to_20000;
SELECT * FROM missing_table;
INSERT INTO items VALUES (1, 'dup', 1, NULL);
SELECT COUNT(*), SUM(price), MIN(created), MAX(name) FROM items;
CREATE TABLE blobs (id INT PRIMARY KEY, b LONGBLOB);
INSERT INTO blobs SELECT seq, RANDOM_BYTES(1024) FROM seq_1_to_2000;
INSERT INTO blobs VALUES (9999, REPEAT(x'00ff27225c0a0d1a', 300000));
SQL
shimmed mariadb --no-defaults "${conn[@]}" --force -N -B <script.sql >script.out 2>script.err
st=$?
echo "script: exit $st"
cat script.out
cat script.err   # the error lines (with line numbers) are deterministic
# --force goes on after errors and (this client version) still exits 0; both errors must be reported.
[ $st -eq 0 ] && [ "$(grep -c '^ERROR' script.err)" -eq 2 ] || die "script: expected exit 0 and two errors"

shimmed mariadb-dump --no-defaults "${conn[@]}" --skip-dump-date --single-transaction "$db" >dump.sql
st=$?
echo "dump: exit $st, $(grep -c '^INSERT' dump.sql) INSERT statements, has blobs table: $(grep -c 'CREATE TABLE `blobs`' dump.sql)"
[ $st -eq 0 ] || die "dump failed"
judge "CREATE DATABASE ${db}_copy"
# A shimmed producer and a shimmed consumer joined by a pipe.
shimmed mariadb-dump --no-defaults "${conn[@]}" --skip-dump-date "$db" |
    shimmed mariadb --no-defaults "${conn[@]}" "${db}_copy"
st="${PIPESTATUS[*]}"
echo "dump | restore: exit $st"
[ "$st" = "0 0" ] || die "dump | restore failed"
for t in items blobs; do
    a=$(judge "CHECKSUM TABLE $db.$t EXTENDED" | cut -f2)
    b=$(judge "CHECKSUM TABLE ${db}_copy.$t EXTENDED" | cut -f2)
    echo "restored $t: $(judge "SELECT COUNT(*) FROM ${db}_copy.$t") rows, checksum $([ "$a" = "$b" ] && echo equal || echo "DIFFERS ($a vs $b)")"
done
shimmed mariadb-admin --no-defaults "${conn[@]}" ping
st=$?
echo "admin ping: exit $st"
exit $st
