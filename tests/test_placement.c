/* test_placement.c - the process-wide gateway -> partition check. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gwsieve/placement.h"
#include "gwsieve/util.h"
#include "suites.h"

static gws_place_t note(const char *gw, int32_t partition) {
        return gws_placement_note(gw, strlen(gw), partition);
}

static gws_placement_stats_t stats(void) {
        gws_placement_stats_t st;
        gws_placement_stats(&st);
        return st;
}

/* A gateway met again on its partition is at home; met on another it is
 * split, counted once however many partitions follow. Ids are compared
 * by bytes and length (not NUL-terminated, prefixes differ). */
START_TEST(placement_home_and_split) {
        gws_placement_reset();
        ck_assert_int_eq(note("gw-1", 3), GWS_PLACE_HOME);
        ck_assert_int_eq(note("gw-1", 3), GWS_PLACE_HOME);
        ck_assert_int_eq(note("gw-10", 5), GWS_PLACE_HOME);
        ck_assert_int_eq(gws_placement_note("gw-10", 4, 5), GWS_PLACE_SPLIT);
        ck_assert_int_eq(note("gw-1", 4), GWS_PLACE_SPLIT);
        ck_assert_int_eq(note("gw-1", 7), GWS_PLACE_SPLIT);
        ck_assert_int_eq(note("gw-1", 3), GWS_PLACE_HOME); /* first stays */
        ck_assert_int_eq(gws_placement_note("", 0, 0), GWS_PLACE_HOME);
        ck_assert_int_eq(gws_placement_note("", 0, 1), GWS_PLACE_SPLIT);
        ck_assert_uint_eq(stats().gateways, 3);
        ck_assert_uint_eq(stats().split, 2);
        ck_assert_uint_eq(stats().untracked, 0);
        gws_placement_reset();
        ck_assert_uint_eq(stats().gateways, 0);
        ck_assert_uint_eq(stats().split, 0);
        ck_assert_int_eq(note("gw-1", 4), GWS_PLACE_HOME); /* forgotten */
        gws_placement_reset();
}
END_TEST

/* The table grows from 64 slots, keeps every gateway through the moves,
 * and stops at GWS_PLACEMENT_MAX: later gateways are counted as untracked,
 * known ones are still checked. */
START_TEST(placement_grows_and_bounds) {
        char gw[32];
        int i;
        gws_placement_reset();
        for (i = 0; i < GWS_PLACEMENT_MAX; i++) {
                snprintf(gw, sizeof(gw), "gateway-%d", i);
                ck_assert_int_eq(note(gw, i % 12), GWS_PLACE_HOME);
        }
        for (i = 0; i < GWS_PLACEMENT_MAX; i += 997) {
                snprintf(gw, sizeof(gw), "gateway-%d", i);
                ck_assert_int_eq(note(gw, i % 12), GWS_PLACE_HOME);
                ck_assert_int_eq(note(gw, i % 12 + 1), GWS_PLACE_SPLIT);
        }
        ck_assert_int_eq(note("one-too-many", 0), GWS_PLACE_UNTRACKED);
        ck_assert_int_eq(note("one-too-many", 1), GWS_PLACE_UNTRACKED);
        ck_assert_int_eq(note("gateway-0", 5), GWS_PLACE_SPLIT);
        ck_assert_uint_eq(stats().gateways, GWS_PLACEMENT_MAX);
        ck_assert_uint_eq(stats().split, (GWS_PLACEMENT_MAX + 996) / 997);
        ck_assert_uint_eq(stats().untracked, 2);
        gws_placement_reset();
}
END_TEST

/* The warning names the gateway, cut at 64 bytes but never inside a UTF-8
 * sequence: 'a' and 40 two-byte letters are shown as 'a' and 31 of them
 * (63 bytes), then the closing quote. stderr is caught in a file. */
START_TEST(placement_warning_cuts_at_a_character) {
        char gw[128], want[128], out[4096];
        FILE *tmp = tmpfile();
        int saved = dup(2), i;
        size_t n;

        ck_assert_ptr_nonnull(tmp);
        gw[0] = 'a';
        for (i = 0; i < 40; i++)
                memcpy(gw + 1 + 2 * i, "\xc3\xa9", 2); /* é */
        gw[81] = '\0';
        memcpy(want, gw, 63);
        strcpy(want + 63, "\" arrives on input partitions 1 and 2");
        gws_placement_reset();
        fflush(stderr);
        ck_assert_int_ne(dup2(fileno(tmp), 2), -1);
        ck_assert_int_eq(note(gw, 1), GWS_PLACE_HOME);
        ck_assert_int_eq(note(gw, 2), GWS_PLACE_SPLIT);
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        rewind(tmp);
        n = fread(out, 1, sizeof(out) - 1, tmp);
        out[n] = '\0';
        fclose(tmp);
        ck_assert_msg(strstr(out, want) != NULL, "log: %s", out);
        ck_assert(gws_utf8_valid(out, n));
        gws_placement_reset();
}
END_TEST

Suite *gws_placement_suite(void) {
        Suite *s = suite_create("placement");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, placement_home_and_split);
        tcase_add_test(tc, placement_grows_and_bounds);
        tcase_add_test(tc, placement_warning_cuts_at_a_character);
        suite_add_tcase(s, tc);
        return s;
}
