# PHP (php-cli, mysqlnd) under the shim: mysqli and PDO against MariaDB (prepared statements, a large
# unbuffered result, an async query with mysqli_poll, transactions, errors), then stream sockets with a
# forked child and a second php process, stream_select, read timeouts and sleeps.
# asyncshim-test: timeout=60
# asyncshim-test: needs=mariadb
. "$APPS_DIR/lib.sh"
export CLOSED_PORT
CLOSED_PORT=$(free_port)
shimmed php "$APPS_DIR/php_mysql.php"
echo "php_mysql.php: exit $?"
shimmed php "$APPS_DIR/php_streams.php"
echo "php_streams.php: exit $?"
