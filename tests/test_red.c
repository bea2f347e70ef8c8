/* tests/test_red.c - what every module shares (red.c): error messages
 * (formatted, the code returned, an argument may be the message itself),
 * status names, name tables (several names for one value, the first is the
 * canonical one; an absent name is RED_E_ARG) and red_strndup. */
#include <criterion/criterion.h>
#include <string.h>

#include "../red_internal.h"

Test(red, error_set_formats_returns_the_code_and_may_quote_itself) {
    red_error err;
    cr_expect(red_error_set(&err, RED_E_FORMAT, "%s:%d: expected %s", "f.json", 7, "a key") == RED_E_FORMAT);
    cr_expect(err.code == RED_E_FORMAT);
    cr_expect_str_eq(err.msg, "f.json:7: expected a key");
    /* a caller adding context to the error it got back */
    cr_expect(red_error_set(&err, RED_E_IO, "loading the teacher: %s", err.msg) == RED_E_IO);
    cr_expect_str_eq(err.msg, "loading the teacher: f.json:7: expected a key");
    cr_expect(red_error_set(NULL, RED_E_NOMEM, "ignored %d", 1) == RED_E_NOMEM, "a NULL error still returns the code");
}

Test(red, error_set_truncates_long_messages_terminated) {
    red_error err;
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    red_error_set(&err, RED_E_ARG, "%s", big);
    cr_expect(strlen(err.msg) == sizeof err.msg - 1, "message of %zu bytes", strlen(err.msg));
}

Test(red, status_names_are_distinct) {
    red_status s, t;
    for (s = RED_OK; s <= RED_E_INTERRUPTED; s++)
        for (t = s + 1; t <= RED_E_INTERRUPTED; t++)
            cr_expect(strcmp(red_status_name(s), red_status_name(t)) != 0, "%d and %d share a name", s, t);
    cr_expect_str_eq(red_status_name(RED_OK), "ok");
    cr_expect_str_eq(red_status_name((red_status)99), "unknown status");
}

Test(red, name_tables_find_aliases_and_give_the_canonical_name) {
    static const red_name colours[] = {{"red", 1}, {"crimson", 1}, {"green", 2}, {NULL, 0}};
    int v = -1;
    cr_expect(red_name_find(colours, "crimson", &v) == RED_OK && v == 1);
    cr_expect(red_name_find(colours, "green", &v) == RED_OK && v == 2);
    v = -1;
    cr_expect(red_name_find(colours, "blue", &v) == RED_E_ARG && v == -1, "an absent name leaves the value alone");
    cr_expect(red_name_find(colours, "Red", &v) == RED_E_ARG, "names are case-sensitive");
    cr_expect_str_eq(red_name_of(colours, 1), "red");
    cr_expect_str_eq(red_name_of(colours, 3), "?");
}

Test(red, strndup_copies_n_bytes_and_terminates) {
    char *d = red_strndup("abcdef", 3);
    cr_assert(d != NULL);
    cr_expect_str_eq(d, "abc");
    free(d);
    d = red_strndup("a\0b", 3);
    cr_assert(d != NULL);
    cr_expect(d[0] == 'a' && d[1] == 0 && d[2] == 'b' && d[3] == 0, "embedded NULs are copied");
    free(d);
}
