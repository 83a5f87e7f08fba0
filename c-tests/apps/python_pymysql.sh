# PyMySQL (pure Python client) from 50 threads, each with its own connection: inserts, parameterised
# selects, overlapping server-side sleeps, and error cases, under the shim as natively.
# asyncshim-test: timeout=60
# asyncshim-test: needs=mariadb
. "$APPS_DIR/lib.sh"
shimmed "$PY" "$APPS_DIR/python_pymysql.py" 50
echo "python_pymysql.py: exit $?"
