/* The printf, dprintf and scanf families' variadic entries (hooks/stdio_write.rs and hooks/stdio.rs export
 * the symbols as jumps here): each takes its arguments as a va_list and hands them to asyncshim_vfprintf,
 * asyncshim_vdprintf or asyncshim_vfscanf, which work cooperatively or call glibc's own function. Written
 * in C because Rust cannot define a variadic function on stable. flag -1 marks the unfortified printf
 * forms; the scanf variant is 0 for GNU conversions (plain scanf), 1 for C99 (__isoc99_), 2 for C23. */
#include <stdarg.h>
#include <stdio.h>

int asyncshim_vfprintf(FILE *f, int flag, const char *fmt, va_list ap);
int asyncshim_vdprintf(int fd, int flag, const char *fmt, va_list ap);
int asyncshim_vfscanf(FILE *f, int variant, const char *fmt, va_list ap);

/* A variadic entry: its arguments after fmt become the va_list `ap` of `call`, whose result it returns. */
#define VARIADIC(name, params, call) \
    int name params                  \
    {                                \
        va_list ap;                  \
        va_start(ap, fmt);           \
        int r = call;                \
        va_end(ap);                  \
        return r;                    \
    }

/* printf's forms: `flag` -1 for the unfortified ones, the caller's for the _chk ones. */
VARIADIC(asyncshim_printf, (const char *fmt, ...), asyncshim_vfprintf(stdout, -1, fmt, ap))
VARIADIC(asyncshim_fprintf, (FILE *f, const char *fmt, ...), asyncshim_vfprintf(f, -1, fmt, ap))
int asyncshim_vprintf(const char *fmt, va_list ap) { return asyncshim_vfprintf(stdout, -1, fmt, ap); }
int asyncshim_vfprintf_c(FILE *f, const char *fmt, va_list ap) { return asyncshim_vfprintf(f, -1, fmt, ap); }
VARIADIC(asyncshim_printf_chk, (int flag, const char *fmt, ...), asyncshim_vfprintf(stdout, flag, fmt, ap))
VARIADIC(asyncshim_fprintf_chk, (FILE *f, int flag, const char *fmt, ...), asyncshim_vfprintf(f, flag, fmt, ap))
int asyncshim_vprintf_chk(int flag, const char *fmt, va_list ap) { return asyncshim_vfprintf(stdout, flag, fmt, ap); }
int asyncshim_vfprintf_chk(FILE *f, int flag, const char *fmt, va_list ap) { return asyncshim_vfprintf(f, flag, fmt, ap); }

/* dprintf's. */
VARIADIC(asyncshim_dprintf, (int fd, const char *fmt, ...), asyncshim_vdprintf(fd, -1, fmt, ap))
int asyncshim_vdprintf_c(int fd, const char *fmt, va_list ap) { return asyncshim_vdprintf(fd, -1, fmt, ap); }
VARIADIC(asyncshim_dprintf_chk, (int fd, int flag, const char *fmt, ...), asyncshim_vdprintf(fd, flag, fmt, ap))
int asyncshim_vdprintf_chk(int fd, int flag, const char *fmt, va_list ap) { return asyncshim_vdprintf(fd, flag, fmt, ap); }

/* The scanf family for one conversion variant. */
#define SCANF_FAMILY(suffix, variant)                                                                     \
    VARIADIC(asyncshim_scanf_##suffix, (const char *fmt, ...), asyncshim_vfscanf(stdin, variant, fmt, ap)) \
    VARIADIC(asyncshim_fscanf_##suffix, (FILE *f, const char *fmt, ...), asyncshim_vfscanf(f, variant, fmt, ap)) \
    int asyncshim_vscanf_##suffix(const char *fmt, va_list ap) { return asyncshim_vfscanf(stdin, variant, fmt, ap); } \
    int asyncshim_vfscanf_##suffix(FILE *f, const char *fmt, va_list ap) { return asyncshim_vfscanf(f, variant, fmt, ap); }

SCANF_FAMILY(gnu, 0)
SCANF_FAMILY(c99, 1)
SCANF_FAMILY(c23, 2)
