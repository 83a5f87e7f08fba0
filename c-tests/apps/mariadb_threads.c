/* mariadb_threads — N threads, each with its own blocking libmariadb connection, all running
 * `SELECT SLEEP(S), id, CONCAT(...)` at the same moment. Helper of mariadb_threads.sh.
 *
 *   mariadb_threads N SLEEP_SECS MAX_PHASE_SECS     (server from MARIADB_HOST/PORT/USER/PASSWORD/DB)
 *
 * Then each thread streams a 2,000-row result and checks every row.
 * stdout (identical natively and under the shim): connection and row counts and the bound checks.
 * The bounds: the query phase (release of all threads to the last row) must end within MAX_PHASE_SECS —
 * the N server-side sleeps overlap natively, and under the shim they must overlap too, not serialise
 * on a few workers; and while all queries are in flight the process has about N+1 OS threads natively
 * but at most workers + 8 under the shim (the point of M:N).
 * asyncshim-test: link=mariadb */
#include "shim_probe.h"
#include "test_util.h"

#include <dirent.h>
#include <mysql.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

static const char *host, *user, *pw, *db;
static unsigned port;
static double sleep_secs;
static atomic_int connected, failed_connect, go, correct, wrong, in_query, bulk_ok, bulk_bad;

/* Second phase: every thread streams a result of ROWS rows at once, checking each row, so that many
 * partial reads of many sockets interleave on the workers. */
enum { ROWS = 2000 };
static int check_bulk(MYSQL *m, long id)
{
    char q[256];
    snprintf(q, sizeof q, "SELECT seq, seq * %ld, REPEAT(CHAR(65 + (seq + %ld) %% 26), seq %% 50) "
                          "FROM seq_1_to_%d", id, id, ROWS);
    if (mysql_query(m, q) != 0) {
        fprintf(stderr, "thread %ld: bulk query: %u %s\n", id, mysql_errno(m), mysql_error(m));
        return 0;
    }
    MYSQL_RES *res = mysql_use_result(m);
    if (!res)
        return 0;
    MYSQL_ROW row;
    long n = 0, bad = 0;
    while ((row = mysql_fetch_row(res))) {
        n++;
        unsigned long *len = mysql_fetch_lengths(res);
        char c = (char)('A' + (n + id) % 26);
        if (atol(row[0]) != n || atol(row[1]) != n * id || len[2] != (unsigned long)(n % 50))
            bad++;
        else
            for (unsigned long i = 0; i < len[2]; i++)
                if (row[2][i] != c) {
                    bad++;
                    break;
                }
    }
    int ok = n == ROWS && bad == 0 && mysql_errno(m) == 0;
    if (!ok)
        fprintf(stderr, "thread %ld: bulk: %ld rows, %ld bad, errno %u\n", id, n, bad, mysql_errno(m));
    mysql_free_result(res);
    return ok;
}

static void *worker(void *arg)
{
    long id = (long)arg;
    MYSQL *m = mysql_init(NULL);
    unsigned timeout = 30;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    if (!mysql_real_connect(m, host, user, pw, db, port, NULL, 0)) {
        fprintf(stderr, "thread %ld: connect: %u %s\n", id, mysql_errno(m), mysql_error(m));
        atomic_fetch_add(&failed_connect, 1);
        mysql_close(m);
        return NULL;
    }
    atomic_fetch_add(&connected, 1);
    /* All queries start together: the check is that their waits overlap. */
    while (!atomic_load(&go))
        usleep(1000);
    if (atomic_load(&go) < 0) {
        mysql_close(m);
        return NULL;
    }
    char q[128];
    snprintf(q, sizeof q, "SELECT SLEEP(%.3f), %ld, CONCAT('thread-', %ld)", sleep_secs, id, id);
    atomic_fetch_add(&in_query, 1);
    int ok = 0;
    if (mysql_query(m, q) != 0) {
        fprintf(stderr, "thread %ld: query: %u %s\n", id, mysql_errno(m), mysql_error(m));
    } else {
        MYSQL_RES *res = mysql_store_result(m);
        MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
        char want[64];
        snprintf(want, sizeof want, "thread-%ld", id);
        if (row && row[0] && strcmp(row[0], "0") == 0 && row[1] && atol(row[1]) == id && row[2] &&
            strcmp(row[2], want) == 0 && mysql_num_rows(res) == 1)
            ok = 1;
        else
            fprintf(stderr, "thread %ld: unexpected row\n", id);
        if (res)
            mysql_free_result(res);
    }
    atomic_fetch_add(ok ? &correct : &wrong, 1);
    atomic_fetch_add(check_bulk(m, id) ? &bulk_ok : &bulk_bad, 1);
    mysql_close(m);
    return NULL;
}

/* "name x count, ..." of this process's OS threads (from /proc/self/task), for a failure report. */
static void thread_names(char *out, size_t cap)
{
    char names[64][16];
    int counts[64], kinds = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[64], name[16] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, name, sizeof name - 1);
        close(fd);
        name[n > 0 ? n - 1 : 0] = '\0';
        int k;
        for (k = 0; k < kinds && strcmp(names[k], name) != 0; k++)
            ;
        if (k == kinds && kinds < 64) {
            snprintf(names[kinds], sizeof names[kinds], "%s", name);
            counts[kinds++] = 0;
        }
        if (k < kinds)
            counts[k]++;
    }
    if (d)
        closedir(d);
    size_t len = 0;
    out[0] = '\0';
    for (int k = 0; k < kinds && len < cap; k++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s x %d", k ? ", " : "", names[k], counts[k]);
}

int main(int argc, char **argv)
{
    test_init();
    if (argc != 4) {
        fprintf(stderr, "usage: %s N SLEEP_SECS MAX_PHASE_SECS\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]);
    sleep_secs = atof(argv[2]);
    double max_phase = atof(argv[3]);
    host = getenv("MARIADB_HOST");
    user = getenv("MARIADB_USER");
    pw = getenv("MARIADB_PASSWORD");
    db = getenv("MARIADB_DB");
    port = getenv("MARIADB_PORT") ? (unsigned)atoi(getenv("MARIADB_PORT")) : 0;
    if (!host || !user || !pw || !db || !port) {
        fprintf(stderr, "MARIADB_* environment missing\n");
        return 2;
    }
    /* Must precede the threads: it initialises the library's global state non-thread-safely. */
    if (mysql_library_init(0, NULL, NULL)) {
        fprintf(stderr, "mysql_library_init failed\n");
        return 2;
    }
    pthread_t *t = calloc((size_t)n, sizeof *t);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int created = 0;
    for (long i = 0; i < n; i++) {
        if (pthread_create(&t[i], &attr, worker, (void *)i) != 0)
            break;
        created++;
    }
    CHECK(created == n, "all threads created");

    int64_t deadline = now_ns(CLOCK_MONOTONIC) + 60LL * 1000000000LL;
    while (atomic_load(&connected) + atomic_load(&failed_connect) < created &&
           now_ns(CLOCK_MONOTONIC) < deadline)
        usleep(2000);
    int64_t t_connected = now_ns(CLOCK_MONOTONIC);
    printf("connected: %d of %d\n", atomic_load(&connected), n);

    atomic_store(&go, 1);
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    /* Sample the OS threads once every thread has sent its query and the server sleeps are running. */
    while (atomic_load(&in_query) < atomic_load(&connected) && now_ns(CLOCK_MONOTONIC) < t0 + 5000000000LL)
        usleep(1000);
    usleep((useconds_t)(sleep_secs * 1e6 / 3));
    int threads_in_flight = os_threads();
    char names[4096];
    thread_names(names, sizeof names);
    int still_in_query = atomic_load(&in_query) - atomic_load(&correct) - atomic_load(&wrong);
    /* The phase ends when the last sleep row is in; the bulk reads after it are not part of it. */
    while (atomic_load(&correct) + atomic_load(&wrong) < atomic_load(&connected) &&
           now_ns(CLOCK_MONOTONIC) < t0 + 60000000000LL)
        usleep(1000);
    int64_t t1 = now_ns(CLOCK_MONOTONIC);
    for (int i = 0; i < created; i++)
        pthread_join(t[i], NULL);
    fprintf(stderr, "bulk phase done %.3f s after the sleeps\n", (now_ns(CLOCK_MONOTONIC) - t1) / 1e9);
    double phase = (double)(t1 - t0) / 1e9;

    printf("correct rows: %d of %d\n", atomic_load(&correct), n);
    printf("wrong rows: %d\n", atomic_load(&wrong));
    printf("bulk results correct: %d of %d\n", atomic_load(&bulk_ok), n);
    fprintf(stderr, "connect phase %.3f s, query phase %.3f s (bound %.3f s), OS threads in flight %d "
                    "(%d queries still running), shim %d, workers %d\n",
            (double)(t_connected - (deadline - 60LL * 1000000000LL)) / 1e9, phase, max_phase,
            threads_in_flight, still_in_query, under_shim(), shim_workers());
    CHECK(phase >= sleep_secs, "query phase not shorter than one sleep");
    CHECK(phase <= max_phase, "query sleeps overlap (phase within bound)");
    /* The sample is meaningful only while (nearly) all queries were still in the server. */
    CHECK(still_in_query >= n * 9 / 10, "thread count sampled while queries in flight");
    if (under_shim()) {
        if (!CHECK(threads_in_flight > 0 && threads_in_flight <= shim_workers() + 8, "OS threads in flight bounded"))
            fprintf(stderr, "OS threads (name x count) at the sample: %s\n", names);
    }
    else
        CHECK(threads_in_flight >= n, "OS threads in flight bounded");
    free(t);
    mysql_library_end();
    return test_exit_status();
}
