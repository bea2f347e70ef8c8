/* red.c - what every module of the library shares, under red.h: status codes
 * and error messages, name tables (name <-> enum, the one source of the
 * command-line and file names), small string helpers. It calls nothing of
 * the library, so everything can stand on it.
 */
#include "red_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ status */

const char *red_status_name(red_status s) {
    switch (s) {
    case RED_OK: return "ok";
    case RED_E_ARG: return "invalid argument";
    case RED_E_NOMEM: return "out of memory";
    case RED_E_IO: return "I/O error";
    case RED_E_FORMAT: return "bad format";
    case RED_E_NOCONV: return "no convergence";
    case RED_E_UNSUPPORTED: return "unsupported";
    case RED_E_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

red_status red_error_set(red_error *err, red_status code, const char *fmt, ...) {
    if (err) {
        /* formatted aside first: an argument may be err->msg itself (a
         * caller adding context to the error it got back) */
        char msg[sizeof err->msg];
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        memcpy(err->msg, msg, sizeof msg);
    }
    return code;
}

/* ------------------------------------------------------------------ name tables */

red_status red_name_find(const red_name *t, const char *name, int *value) {
    for (; t->name; t++)
        if (!strcmp(t->name, name)) {
            *value = t->value;
            return RED_OK;
        }
    return RED_E_ARG;
}

const char *red_name_of(const red_name *t, int value) {
    for (; t->name; t++)
        if (t->value == value) return t->name;
    return "?";
}

/* ------------------------------------------------------------------ strings */

char *red_strndup(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}
