/* test_hh.c - the heavy-hitter summary (hh.h). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gwsieve/hh.h"
#include "suites.h"

/* Space-saving: a key that holds a slot keeps its counts; a newcomer
 * over full slots takes the lightest one with its counts as error
 * bounds, and the summary's totals count every request. */
START_TEST(space_saving_bounds) {
        gws_hh_t *hh = gws_hh_new(4);
        char key[16];
        int i, sl;

        ck_assert_ptr_nonnull(hh);
        for (i = 0; i < 100; i++)
                gws_hh_add(hh, "heavy", 5, 10);
        for (i = 0; i < 40; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                gws_hh_add(hh, key, strlen(key), 1);
        }
        sl = gws_hh_add(hh, "heavy", 5, 10);
        ck_assert_int_eq(hh->used, 4);
        ck_assert_mem_eq(hh->key[sl], "heavy", 5);
        ck_assert(hh->cur[sl] - hh->err[sl] == 101);
        ck_assert(hh->tok[sl] - hh->terr[sl] == 1010);
        ck_assert(hh->total == 141);
        ck_assert(hh->ttotal == 1050);
        /* the newest key's lower bound is its own request */
        sl = gws_hh_add(hh, "late", 4, 3);
        ck_assert(hh->cur[sl] - hh->err[sl] == 1);
        ck_assert(hh->tok[sl] - hh->terr[sl] == 3);
        free(hh);
}
END_TEST

/* Counts are exact however busy the window: one key's 2^24 + 6 requests
 * of 1000 tokens each in one window (a gateway at 4.7k requests/s with
 * detectors.window_s 3600, or 280k/s at the default 60 s) are 2^24 + 6
 * requests and 1000 times as many tokens, for the key and in the totals;
 * closing the window learns them. As float counters they stopped at 2^24
 * (x + 1 == x there), and the tokens drifted from the first 2^24 on. */
START_TEST(counts_exact_past_2_24) {
        gws_hh_t *hh = gws_hh_new(8);
        const double n = 16777216.0 + 6;
        uint32_t i;
        int sl = -1;

        ck_assert_ptr_nonnull(hh);
        for (i = 0; i < (uint32_t)n; i++)
                sl = gws_hh_add(hh, "flood", 5, 1000);
        gws_hh_add(hh, "other", 5, 7);
        fprintf(stderr,
                "counts_exact_past_2_24: cur %.0f, total %.0f, tok %.0f, "
                "ttotal %.0f (want %.0f, %.0f, %.0f, %.0f)\n",
                (double)hh->cur[sl], (double)hh->total,
                (double)hh->tok[sl], (double)hh->ttotal, n, n + 1,
                n * 1000, n * 1000 + 7);
        ck_assert(hh->cur[sl] - hh->err[sl] == n);
        ck_assert(hh->total == n + 1);
        ck_assert(hh->tok[sl] - hh->terr[sl] == n * 1000);
        ck_assert(hh->ttotal == n * 1000 + 7);
        gws_hh_close(hh); /* the first window is learned whole */
        gws_hh_weigh(hh);
        ck_assert(hh->htotal == (float)(n + 1));
        ck_assert(hh->hist[sl] == (float)n);
        ck_assert(hh->total == 0 && hh->cur[sl] == 0);
        free(hh);
}
END_TEST

Suite *gws_hh_suite(void) {
        Suite *s = suite_create("hh");
        TCase *tc = tcase_create("core");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, space_saving_bounds);
        tcase_add_test(tc, counts_exact_past_2_24);
        suite_add_tcase(s, tc);
        return s;
}
