/* io_files.c — regular-file I/O keeps its native semantics under the shim, which tries reads with
 * RWF_NOWAIT and sends uncached reads and fsync to helper threads (issue 7).
 * Checks read/write/pread/pwrite/fsync/fdatasync results, file positions, EOF, O_APPEND, errors (EBADF,
 * EINVAL, ESPIPE, EFAULT), a full read of a file evicted from the page cache (POSIX_FADV_DONTNEED), and
 * that concurrent uncached reads from many threads return the right bytes.
 * asyncshim-test: timeout=60 */
#include "shim_probe.h"
#include "test_util.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>

#define BIG (8 << 20)

static char path[] = "/tmp/asyncshim-io-files-XXXXXX";
static unsigned char *pattern;

static unsigned char byte_at(long i)
{
    return (unsigned char)((i * 131 + (i >> 12)) & 0xff);
}

static int evict(int fd)
{
    return fsync(fd) == 0 && posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
}

struct reader {
    int part;
    int ok;
};

static void *part_reader(void *arg)
{
    struct reader *r = arg;
    int fd = open(path, O_RDONLY);
    long chunk = BIG / 16, off = r->part * chunk;
    unsigned char *buf = malloc(chunk);
    ssize_t n = pread(fd, buf, chunk, off);
    r->ok = n == chunk && memcmp(buf, pattern + off, chunk) == 0;
    free(buf);
    close(fd);
    return NULL;
}

int main(void)
{
    test_init();
    int fd = mkstemp(path);
    CHECK(fd >= 0, "temporary file");
    pattern = malloc(BIG);
    for (long i = 0; i < BIG; i++)
        pattern[i] = byte_at(i);

    /* Writes: full counts, position advances. */
    ssize_t w = write(fd, pattern, BIG);
    printf("write of 8 MiB: %zd, position %ld\n", w, (long)lseek(fd, 0, SEEK_CUR));
    w = pwrite(fd, pattern + 100, 50, 100);
    printf("pwrite at 100: %zd, position still %ld\n", w, (long)lseek(fd, 0, SEEK_CUR));
    int s1 = fsync(fd);
    int s2 = fdatasync(fd);
    printf("fsync: %d, fdatasync: %d\n", s1, s2);

    /* A full read of a file the page cache no longer holds. */
    CHECK(evict(fd), "file evicted from the page cache");
    unsigned char *buf = malloc(BIG + 10);
    lseek(fd, 0, SEEK_SET);
    int64_t t0 = mono_ns();
    ssize_t r = read(fd, buf, BIG + 10);
    int64_t cold = mono_ns() - t0;
    printf("read of the evicted file asking 10 bytes more: %zd (EOF cut it), position %ld\n", r,
           (long)lseek(fd, 0, SEEK_CUR));
    CHECK(r == BIG && memcmp(buf, pattern, BIG) == 0, "every byte read back");
    printf("read at EOF: %zd\n", read(fd, buf, 10));

    /* Cached reads and preads. */
    lseek(fd, 4096, SEEK_SET);
    r = read(fd, buf, 10000);
    CHECK(r == 10000 && memcmp(buf, pattern + 4096, 10000) == 0, "cached read from the middle");
    r = pread(fd, buf, 777, 123456);
    CHECK(r == 777 && memcmp(buf, pattern + 123456, 777) == 0, "pread");
    printf("position after pread: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    r = pread(fd, buf, 100, BIG - 30);
    printf("pread across EOF: %zd\n", r);
    t0 = mono_ns();
    for (int i = 0; i < 20000; i++)
        pread(fd, buf, 4096, (i % 256) * 4096L);
    fprintf(stderr, "cached 4 KiB pread: %.0f ns; cold 8 MiB read %.1f ms\n", (mono_ns() - t0) / 20000.0, cold / 1e6);

    /* Many threads reading evicted parts at once. */
    CHECK(evict(fd), "evicted again");
    struct reader rd[16];
    pthread_t th[16];
    for (int i = 0; i < 16; i++) {
        rd[i].part = i;
        pthread_create(&th[i], NULL, part_reader, &rd[i]);
    }
    int good = 0;
    for (int i = 0; i < 16; i++) {
        pthread_join(th[i], NULL);
        good += rd[i].ok;
    }
    printf("16 threads preading evicted parts: %d right\n", good);

    /* O_APPEND: Linux appends pwrite data whatever the offset. */
    int a = open(path, O_WRONLY | O_APPEND);
    r = pwrite(a, "tail", 4, 0);
    printf("pwrite on O_APPEND at 0: %zd, size now %ld\n", r, (long)lseek(a, 0, SEEK_END));
    close(a);

    /* Errors, as the kernel gives them. */
    errno = 0;
    r = pread(fd, buf, 10, -1);
    printf("pread at -1: %zd %s\n", r, errname(errno));
    int p[2];
    pipe(p);
    errno = 0;
    r = pread(p[0], buf, 10, 0);
    printf("pread on a pipe: %zd %s\n", r, r < 0 && errno == ESPIPE ? "ESPIPE" : errname(errno));
    errno = 0;
    r = pwrite(p[1], "x", 1, 0);
    printf("pwrite on a pipe: %zd %s\n", r, r < 0 && errno == ESPIPE ? "ESPIPE" : errname(errno));
    close(p[0]);
    close(p[1]);
    lseek(fd, 0, SEEK_SET);
    errno = 0;
    r = read(fd, NULL, 10);
    printf("read into NULL: %zd %s\n", r, errname(errno));
    errno = 0;
    r = pread(fd, NULL, 10, 0);
    printf("pread into NULL: %zd %s\n", r, errname(errno));
    int ro = open(path, O_RDONLY);
    errno = 0;
    r = write(ro, "x", 1);
    printf("write to a read-only fd: %zd %s\n", r, r < 0 && errno == EBADF ? "EBADF" : errname(errno));
    close(ro);
    close(fd);
    errno = 0;
    r = read(fd, buf, 1);
    printf("read of a closed fd: %zd %s\n", r, errno == EBADF ? "EBADF" : errname(errno));
    errno = 0;
    int fs = fsync(fd);
    printf("fsync of a closed fd: %d %s\n", fs, errno == EBADF ? "EBADF" : errname(errno));
    errno = 0;
    r = pwrite(fd, "x", 1, 0);
    printf("pwrite to a closed fd: %zd %s\n", r, errno == EBADF ? "EBADF" : errname(errno));
    unlink(path);
    free(buf);
    return test_exit_status();
}
