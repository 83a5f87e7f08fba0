/* mariadb_sleep_client.c — helper for mariadb_server_killed.sh: connects with the MARIADB_* environment,
 * runs SELECT SLEEP(argv[1]) and prints either the row or the client library's error number.
 * asyncshim-test: link=mariadb */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    const char *secs = argc > 1 ? argv[1] : "30";
    MYSQL *m = mysql_init(NULL);
    unsigned port = getenv("MARIADB_PORT") ? (unsigned)atoi(getenv("MARIADB_PORT")) : 0;
    if (!mysql_real_connect(m, getenv("MARIADB_HOST"), getenv("MARIADB_USER"), getenv("MARIADB_PASSWORD"),
                            getenv("MARIADB_DB"), port, NULL, 0)) {
        printf("connect error %u\n", mysql_errno(m));
        return 1;
    }
    char q[64];
    snprintf(q, sizeof q, "SELECT SLEEP(%s)", secs);
    if (mysql_query(m, q)) {
        printf("query error %u\n", mysql_errno(m));
        mysql_close(m);
        return 1;
    }
    MYSQL_RES *r = mysql_store_result(m);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    printf("row %s\n", row && row[0] ? row[0] : "(none)");
    if (r)
        mysql_free_result(r);
    mysql_close(m);
    return 0;
}
