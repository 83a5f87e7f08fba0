/* mariadb_results — libmariadb results and errors that must be identical natively and under the shim.
 * Helper of mariadb_results.sh.
 *
 *   mariadb_results CLOSED_PORT SILENT_PORT      (server from MARIADB_HOST/PORT/SOCKET/USER/PASSWORD/DB)
 *
 * CLOSED_PORT has no listener; SILENT_PORT accepts connections and never speaks (the test runs it).
 * Covered: multi-MB results, streamed (mysql_use_result) and stored, with checksums; prepared
 * statements with parameter and result binds; multi-statements; the Unix socket; errors of a bad
 * password, a bad query, a killed query and a killed connection (KILL from a second connection, while
 * the first is parked in the server), a refused connection, a read timeout against a silent server and
 * a read timeout on a query that outlasts it.
 * asyncshim-test: link=mariadb */
#include "shim_probe.h"
#include "test_util.h"

#include <mysql.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

static const char *host, *user, *pw, *db, *sock;
static unsigned port;

static MYSQL *connect_tcp(void)
{
    MYSQL *m = mysql_init(NULL);
    if (!mysql_real_connect(m, host, user, pw, db, port, NULL, CLIENT_MULTI_STATEMENTS)) {
        fprintf(stderr, "connect: %u %s\n", mysql_errno(m), mysql_error(m));
        printf("connect failed: %u\n", mysql_errno(m));
        exit(1);
    }
    return m;
}

static void query_or_die(MYSQL *m, const char *q)
{
    if (mysql_query(m, q)) {
        printf("query failed: %s: %u %s\n", q, mysql_errno(m), mysql_error(m));
        exit(1);
    }
}

/* FNV-1a over the bytes of every field, with lengths and NULL markers so that field boundaries count. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void large_result(MYSQL *m, int streamed)
{
    /* About 7.5 MB: 50,000 rows of a number, 120 varying bytes and an MD5. */
    query_or_die(m, "SELECT seq, REPEAT(CHAR(65 + seq % 26), 40 + seq % 80), MD5(seq), "
                    "IF(seq % 1000 = 0, NULL, seq * 1.5) FROM seq_1_to_50000");
    MYSQL_RES *res = streamed ? mysql_use_result(m) : mysql_store_result(m);
    if (!res) {
        printf("result failed: %u %s\n", mysql_errno(m), mysql_error(m));
        exit(1);
    }
    uint64_t h = 1469598103934665603ULL, bytes = 0, rows = 0;
    unsigned nf = mysql_num_fields(res);
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res))) {
        unsigned long *len = mysql_fetch_lengths(res);
        for (unsigned i = 0; i < nf; i++) {
            unsigned long l = row[i] ? len[i] : ~0UL;
            h = fnv(h, &l, sizeof l);
            if (row[i]) {
                h = fnv(h, row[i], len[i]);
                bytes += len[i];
            }
        }
        rows++;
    }
    printf("large result (%s): %llu rows, %llu bytes, fnv %016llx, errno %u\n",
           streamed ? "use_result" : "store_result", (unsigned long long)rows, (unsigned long long)bytes,
           (unsigned long long)h, mysql_errno(m));
    mysql_free_result(res);
}

static void prepared(MYSQL *m)
{
    query_or_die(m, "CREATE TEMPORARY TABLE ps (id INT PRIMARY KEY, name VARCHAR(64), val DOUBLE, "
                    "data BLOB, note VARCHAR(16) NULL)");
    MYSQL_STMT *st = mysql_stmt_init(m);
    const char *ins = "INSERT INTO ps VALUES (?, ?, ?, ?, ?)";
    if (mysql_stmt_prepare(st, ins, strlen(ins))) {
        printf("prepare insert: %u %s\n", mysql_stmt_errno(st), mysql_stmt_error(st));
        exit(1);
    }
    printf("insert params: %lu\n", mysql_stmt_param_count(st));
    int id;
    char name[64], data[4096];
    unsigned long name_len, data_len;
    double val;
    my_bool note_null;
    MYSQL_BIND b[5];
    memset(b, 0, sizeof b);
    b[0].buffer_type = MYSQL_TYPE_LONG;
    b[0].buffer = &id;
    b[1].buffer_type = MYSQL_TYPE_STRING;
    b[1].buffer = name;
    b[1].length = &name_len;
    b[2].buffer_type = MYSQL_TYPE_DOUBLE;
    b[2].buffer = &val;
    b[3].buffer_type = MYSQL_TYPE_BLOB;
    b[3].buffer = data;
    b[3].length = &data_len;
    b[4].buffer_type = MYSQL_TYPE_STRING;
    b[4].buffer = (char *)"note";
    b[4].buffer_length = 4;
    b[4].is_null = &note_null;
    mysql_stmt_bind_param(st, b);
    unsigned long long affected = 0;
    for (id = 1; id <= 1000; id++) {
        name_len = (unsigned long)snprintf(name, sizeof name, "name-%d-%s", id, id % 7 ? "x" : "seven");
        val = id / 8.0;
        data_len = (unsigned long)(id * 3 % sizeof data);
        for (unsigned long i = 0; i < data_len; i++)
            data[i] = (char)((id * 31 + i) & 0xff);   /* binary, including NUL bytes */
        note_null = id % 3 == 0;
        if (mysql_stmt_execute(st)) {
            printf("execute insert %d: %u %s\n", id, mysql_stmt_errno(st), mysql_stmt_error(st));
            exit(1);
        }
        affected += mysql_stmt_affected_rows(st);
    }
    printf("inserted: %llu\n", affected);
    /* A duplicate key through the same statement: a server error on a prepared statement. */
    id = 5;
    if (mysql_stmt_execute(st))
        printf("duplicate insert: %u %s (sqlstate %s)\n", mysql_stmt_errno(st), mysql_stmt_error(st),
               mysql_stmt_sqlstate(st));
    else
        printf("duplicate insert: accepted\n");
    mysql_stmt_close(st);

    st = mysql_stmt_init(m);
    const char *sel = "SELECT id, name, val, data, note FROM ps WHERE id BETWEEN ? AND ? ORDER BY id";
    if (mysql_stmt_prepare(st, sel, strlen(sel))) {
        printf("prepare select: %u %s\n", mysql_stmt_errno(st), mysql_stmt_error(st));
        exit(1);
    }
    int lo = 100, hi = 900;
    MYSQL_BIND p[2];
    memset(p, 0, sizeof p);
    p[0].buffer_type = MYSQL_TYPE_LONG;
    p[0].buffer = &lo;
    p[1].buffer_type = MYSQL_TYPE_LONG;
    p[1].buffer = &hi;
    mysql_stmt_bind_param(st, p);
    int rid;
    char rname[64], rdata[4096], rnote[16];
    unsigned long rname_len, rdata_len, rnote_len;
    double rval;
    my_bool rnote_null;
    MYSQL_BIND r[5];
    memset(r, 0, sizeof r);
    r[0].buffer_type = MYSQL_TYPE_LONG;
    r[0].buffer = &rid;
    r[1].buffer_type = MYSQL_TYPE_STRING;
    r[1].buffer = rname;
    r[1].buffer_length = sizeof rname;
    r[1].length = &rname_len;
    r[2].buffer_type = MYSQL_TYPE_DOUBLE;
    r[2].buffer = &rval;
    r[3].buffer_type = MYSQL_TYPE_BLOB;
    r[3].buffer = rdata;
    r[3].buffer_length = sizeof rdata;
    r[3].length = &rdata_len;
    r[4].buffer_type = MYSQL_TYPE_STRING;
    r[4].buffer = rnote;
    r[4].buffer_length = sizeof rnote;
    r[4].length = &rnote_len;
    r[4].is_null = &rnote_null;
    if (mysql_stmt_execute(st) || mysql_stmt_bind_result(st, r)) {
        printf("execute select: %u %s\n", mysql_stmt_errno(st), mysql_stmt_error(st));
        exit(1);
    }
    uint64_t h = 1469598103934665603ULL;
    int rows = 0, bad = 0, rc;
    while ((rc = mysql_stmt_fetch(st)) == 0) {
        rows++;
        h = fnv(h, &rid, sizeof rid);
        h = fnv(h, rname, rname_len);
        h = fnv(h, &rval, sizeof rval);
        h = fnv(h, rdata, rdata_len);
        h = fnv(h, &rnote_null, sizeof rnote_null);
        if (rdata_len != (unsigned long)(rid * 3 % 4096) || rval != rid / 8.0)
            bad++;
        for (unsigned long i = 0; i < rdata_len; i++)
            if (rdata[i] != (char)((rid * 31 + i) & 0xff)) {
                bad++;
                break;
            }
    }
    printf("prepared select: %d rows, %d bad, end %s, fnv %016llx\n", rows, bad,
           rc == MYSQL_NO_DATA ? "MYSQL_NO_DATA" : "error", (unsigned long long)h);
    mysql_stmt_close(st);
}

static void multi_statements(MYSQL *m)
{
    query_or_die(m, "SELECT 1 AS a; SELECT 'two', 2.5; DO 1; SELECT COUNT(*) FROM seq_1_to_1234");
    int n = 0;
    do {
        MYSQL_RES *res = mysql_store_result(m);
        n++;
        if (res) {
            MYSQL_ROW row = mysql_fetch_row(res);
            printf("multi result %d: %u fields, first '%s'\n", n, mysql_num_fields(res), row ? row[0] : "none");
            mysql_free_result(res);
        } else {
            printf("multi result %d: no result set, field count %u\n", n, mysql_field_count(m));
        }
    } while (mysql_next_result(m) == 0);
    printf("multi errno: %u\n", mysql_errno(m));
}

static void socket_connection(void)
{
    MYSQL *m = mysql_init(NULL);
    if (!mysql_real_connect(m, "localhost", user, pw, db, 0, sock, 0)) {
        printf("socket connect: %u\n", mysql_errno(m));
        fprintf(stderr, "socket connect: %s\n", mysql_error(m));
    } else {
        query_or_die(m, "SELECT CONCAT('via ', IF(@@hostname = @@hostname, 'socket', '?')), SUM(seq) FROM seq_1_to_100000");
        MYSQL_RES *res = mysql_store_result(m);
        MYSQL_ROW row = mysql_fetch_row(res);
        printf("socket connection: %s sum %s host_info '%s'\n", row[0], row[1], mysql_get_host_info(m));
        mysql_free_result(res);
    }
    mysql_close(m);
}

static void errors_simple(void)
{
    MYSQL *m = mysql_init(NULL);
    if (mysql_real_connect(m, host, user, "wrong-password", db, port, NULL, 0))
        printf("bad password: accepted\n");
    else
        printf("bad password: %u %s (sqlstate %s)\n", mysql_errno(m), mysql_error(m), mysql_sqlstate(m));
    mysql_close(m);

    m = connect_tcp();
    if (mysql_query(m, "SELEC 1"))
        printf("bad query: %u %s\n", mysql_errno(m), mysql_error(m));
    if (mysql_query(m, "SELECT * FROM no_such_table"))
        printf("missing table: %u %s\n", mysql_errno(m), mysql_error(m));
    query_or_die(m, "SELECT 'still usable'");
    MYSQL_RES *res = mysql_store_result(m);
    printf("after errors: %s\n", mysql_fetch_row(res)[0]);
    mysql_free_result(res);
    mysql_close(m);
}

/* A victim connection runs a long query; a killer connection waits until the server shows it running,
 * then kills the query or the whole connection. */
struct victim {
    MYSQL *m;
    const char *query;
    atomic_int done;
    unsigned err;
    char msg[512];
    char first[64];
};

static void *victim_run(void *arg)
{
    struct victim *v = arg;
    if (mysql_query(v->m, v->query)) {
        v->err = mysql_errno(v->m);
        snprintf(v->msg, sizeof v->msg, "%s", mysql_error(v->m));
        snprintf(v->first, sizeof v->first, "(no result)");
    } else {
        MYSQL_RES *res = mysql_store_result(v->m);
        MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
        v->err = mysql_errno(v->m);
        snprintf(v->msg, sizeof v->msg, "%s", mysql_error(v->m));
        snprintf(v->first, sizeof v->first, "%s", row && row[0] ? row[0] : "(no row)");
        if (res)
            mysql_free_result(res);
    }
    atomic_store(&v->done, 1);
    return NULL;
}

static void kill_case(const char *what)
{
    MYSQL *killer = connect_tcp();
    struct victim v = {.m = connect_tcp(), .query = "SELECT SLEEP(20) AS s, 'victim'"};
    unsigned long id = mysql_thread_id(v.m);
    pthread_t t;
    pthread_create(&t, NULL, victim_run, &v);
    char q[256];
    snprintf(q, sizeof q, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %lu AND "
                          "INFO LIKE 'SELECT SLEEP(20)%%'", id);
    int seen = 0;
    for (int i = 0; i < 1000 && !seen; i++) {   /* at most 10 s */
        query_or_die(killer, q);
        MYSQL_RES *res = mysql_store_result(killer);
        seen = atoi(mysql_fetch_row(res)[0]) == 1;
        mysql_free_result(res);
        if (!seen)
            usleep(10000);
    }
    printf("kill %s: victim seen running: %s\n", what, seen ? "yes" : "no");
    snprintf(q, sizeof q, "KILL %s %lu", what, id);
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    if (mysql_query(killer, q))
        printf("kill %s: KILL failed: %u %s\n", what, mysql_errno(killer), mysql_error(killer));
    pthread_join(t, NULL);
    double secs = (now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
    fprintf(stderr, "kill %s: victim returned %.3f s after KILL\n", what, secs);
    CHECK(secs < 5, strcmp(what, "QUERY") ? "killed connection returns promptly" : "killed query returns promptly");
    printf("kill %s: victim error %u '%s', first column %s\n", what, v.err, v.msg, v.first);
    /* Afterwards: a killed query leaves the connection usable; a killed connection is gone. */
    int rc = mysql_query(v.m, "SELECT 'alive'");
    printf("kill %s: next query on victim: %s %u\n", what, rc ? "error" : "ok", rc ? mysql_errno(v.m) : 0);
    if (!rc)
        mysql_free_result(mysql_store_result(v.m));
    mysql_close(v.m);
    mysql_close(killer);
}

static void refused(unsigned closed_port)
{
    MYSQL *m = mysql_init(NULL);
    if (mysql_real_connect(m, "127.0.0.1", user, pw, db, closed_port, NULL, 0))
        printf("closed port: connected?\n");
    else {
        /* The message names the port only in some client versions; code and the text without it. */
        printf("closed port: %u %s\n", mysql_errno(m), mysql_error(m));
    }
    mysql_close(m);
}

static void silent_server(unsigned silent_port)
{
    MYSQL *m = mysql_init(NULL);
    unsigned t = 1;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &t);
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &t);
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    if (mysql_real_connect(m, "127.0.0.1", user, pw, db, silent_port, NULL, 0))
        printf("silent server: connected?\n");
    else
        printf("silent server: %u %s\n", mysql_errno(m), mysql_error(m));
    double secs = (now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
    fprintf(stderr, "silent server: gave up after %.3f s\n", secs);
    CHECK(secs >= 0.9 && secs < 8, "silent server: gave up after the timeout");
    mysql_close(m);
}

/* A query that outlasts the client's read timeout: the client gives up on its own (the server is alive). */
static void read_timeout(void)
{
    MYSQL *m = mysql_init(NULL);
    unsigned t = 1;
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &t);
    if (!mysql_real_connect(m, host, user, pw, db, port, NULL, 0)) {
        printf("read timeout: connect failed %u\n", mysql_errno(m));
        exit(1);
    }
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    int rc = mysql_query(m, "SELECT SLEEP(4)");
    double secs = (now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
    printf("read timeout: query %s %u %s\n", rc ? "failed" : "succeeded", mysql_errno(m), mysql_error(m));
    fprintf(stderr, "read timeout: query returned after %.3f s\n", secs);
    CHECK(secs >= 0.9 && secs < 3.5, "read timeout: gave up after about the timeout");
    mysql_close(m);
}

int main(int argc, char **argv)
{
    test_init();
    if (argc != 3) {
        fprintf(stderr, "usage: %s CLOSED_PORT SILENT_PORT\n", argv[0]);
        return 2;
    }
    host = getenv("MARIADB_HOST");
    user = getenv("MARIADB_USER");
    pw = getenv("MARIADB_PASSWORD");
    db = getenv("MARIADB_DB");
    sock = getenv("MARIADB_SOCKET");
    port = getenv("MARIADB_PORT") ? (unsigned)atoi(getenv("MARIADB_PORT")) : 0;
    if (!host || !user || !pw || !db || !sock || !port) {
        fprintf(stderr, "MARIADB_* environment missing\n");
        return 2;
    }
    mysql_library_init(0, NULL, NULL);
    MYSQL *m = connect_tcp();
    large_result(m, 1);
    large_result(m, 0);
    prepared(m);
    multi_statements(m);
    mysql_close(m);
    socket_connection();
    errors_simple();
    kill_case("QUERY");
    kill_case("CONNECTION");
    refused((unsigned)atoi(argv[1]));
    silent_server((unsigned)atoi(argv[2]));
    read_timeout();
    mysql_library_end();
    return test_exit_status();
}
