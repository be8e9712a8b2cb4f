/*
 * hex.h — hexadecimal digits: the value of one digit and the byte of two.
 *
 * Shared by the secret-file reader (net/auth.c), the shell's "\xHH" escapes
 * (tools/cmd_shell.c) and the %HH fields of the linearizability checker's
 * history files (tests/lib/lincheck.c).  Header-only (static inline): it has
 * no state and nothing to link.
 */
#ifndef HSTORE_HEX_H
#define HSTORE_HEX_H

/* The value of hex digit c (either case), or -1 when c is none. */
static inline int hex_digit_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The byte written as the two hex digits at p (p[0] the high one), or -1
 * when either is not a hex digit.  Reads p[1] only when p[0] is a digit. */
static inline int hex_byte(const char *p)
{
    int hi = hex_digit_value((unsigned char)p[0]);
    if (hi < 0)
        return -1;
    int lo = hex_digit_value((unsigned char)p[1]);
    if (lo < 0)
        return -1;
    return hi << 4 | lo;
}

/* The hex digit of v (0 to 15), upper case. */
static inline char hex_digit_upper(unsigned v)
{
    return "0123456789ABCDEF"[v & 15];
}

#endif
