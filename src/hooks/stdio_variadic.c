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

int asyncshim_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = asyncshim_vfprintf(stdout, -1, fmt, ap);
    va_end(ap);
    return r;
}

int asyncshim_fprintf(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = asyncshim_vfprintf(f, -1, fmt, ap);
    va_end(ap);
    return r;
}

int asyncshim_vprintf(const char *fmt, va_list ap)
{
    return asyncshim_vfprintf(stdout, -1, fmt, ap);
}

int asyncshim_vfprintf_c(FILE *f, const char *fmt, va_list ap)
{
    return asyncshim_vfprintf(f, -1, fmt, ap);
}

int asyncshim_printf_chk(int flag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = asyncshim_vfprintf(stdout, flag, fmt, ap);
    va_end(ap);
    return r;
}

int asyncshim_fprintf_chk(FILE *f, int flag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = asyncshim_vfprintf(f, flag, fmt, ap);
    va_end(ap);
    return r;
}

int asyncshim_vprintf_chk(int flag, const char *fmt, va_list ap)
{
    return asyncshim_vfprintf(stdout, flag, fmt, ap);
}

int asyncshim_vfprintf_chk(FILE *f, int flag, const char *fmt, va_list ap)
{
    return asyncshim_vfprintf(f, flag, fmt, ap);
}

int asyncshim_dprintf(int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = asyncshim_vdprintf(fd, -1, fmt, ap);
    va_end(ap);
    return r;
}

int asyncshim_vdprintf_c(int fd, const char *fmt, va_list ap)
{
    return asyncshim_vdprintf(fd, -1, fmt, ap);
}

int asyncshim_dprintf_chk(int fd, int flag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = asyncshim_vdprintf(fd, flag, fmt, ap);
    va_end(ap);
    return r;
}

int asyncshim_vdprintf_chk(int fd, int flag, const char *fmt, va_list ap)
{
    return asyncshim_vdprintf(fd, flag, fmt, ap);
}

int asyncshim_scanf_gnu(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = asyncshim_vfscanf(stdin, 0, fmt, ap);
    va_end(ap);
    return r;
}

int asyncshim_fscanf_gnu(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = asyncshim_vfscanf(f, 0, fmt, ap);
    va_end(ap);
    return r;
}

int asyncshim_vscanf_gnu(const char *fmt, va_list ap)
{
    return asyncshim_vfscanf(stdin, 0, fmt, ap);
}

int asyncshim_vfscanf_gnu(FILE *f, const char *fmt, va_list ap)
{
    return asyncshim_vfscanf(f, 0, fmt, ap);
}

int asyncshim_scanf_c99(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = asyncshim_vfscanf(stdin, 1, fmt, ap);
    va_end(ap);
    return r;
}

int asyncshim_fscanf_c99(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = asyncshim_vfscanf(f, 1, fmt, ap);
    va_end(ap);
    return r;
}

int asyncshim_vscanf_c99(const char *fmt, va_list ap)
{
    return asyncshim_vfscanf(stdin, 1, fmt, ap);
}

int asyncshim_vfscanf_c99(FILE *f, const char *fmt, va_list ap)
{
    return asyncshim_vfscanf(f, 1, fmt, ap);
}

int asyncshim_scanf_c23(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = asyncshim_vfscanf(stdin, 2, fmt, ap);
    va_end(ap);
    return r;
}

int asyncshim_fscanf_c23(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = asyncshim_vfscanf(f, 2, fmt, ap);
    va_end(ap);
    return r;
}

int asyncshim_vscanf_c23(const char *fmt, va_list ap)
{
    return asyncshim_vfscanf(stdin, 2, fmt, ap);
}

int asyncshim_vfscanf_c23(FILE *f, const char *fmt, va_list ap)
{
    return asyncshim_vfscanf(f, 2, fmt, ap);
}
