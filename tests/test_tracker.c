/* test_tracker.c - only the highest contiguous done offset is committable. */
#include <pthread.h>
#include <stdlib.h>

#include "gwsieve/tracker.h"
#include "suites.h"

START_TEST(contiguous_only) {
        gws_tracker_t *t = gws_tracker_new(NULL);
        gws_tracker_entry_t *e[10];
        int i;
        for (i = 0; i < 10; i++)
                e[i] = gws_tracker_add(t, 100 + i);
        gws_tracker_ref(e[0]); /* one output awaiting delivery */
        ck_assert_int_eq(gws_tracker_committable(t), -1);
        /* later entries finish first: nothing committable yet */
        for (i = 9; i >= 1; i--)
                ck_assert_int_eq(gws_tracker_release(e[i]), 0);
        ck_assert_int_eq(gws_tracker_committable(t), -1);
        ck_assert_uint_eq(gws_tracker_pending(t), 10);
        ck_assert_int_eq(gws_tracker_release(e[0]), 0); /* processing ref */
        ck_assert_int_eq(gws_tracker_committable(t), -1);
        /* the delivery report releases the head: all 10 pop at once */
        ck_assert_int_eq(gws_tracker_release(e[0]), 10);
        ck_assert_int_eq(gws_tracker_committable(t), 110);
        ck_assert_uint_eq(gws_tracker_pending(t), 0);
        gws_tracker_destroy(t);
}
END_TEST

START_TEST(gaps_in_offsets) {
        gws_tracker_t *t = gws_tracker_new(NULL);
        gws_tracker_entry_t *a = gws_tracker_add(t, 5);
        gws_tracker_entry_t *b = gws_tracker_add(t, 9); /* compacted gap */
        gws_tracker_release(a);
        ck_assert_int_eq(gws_tracker_committable(t), 6);
        gws_tracker_release(b);
        ck_assert_int_eq(gws_tracker_committable(t), 10);
        gws_tracker_destroy(t);
}
END_TEST

START_TEST(destroy_with_pending) {
        gws_tracker_t *t = gws_tracker_new(NULL);
        gws_tracker_add(t, 1);
        gws_tracker_add(t, 2);
        gws_tracker_destroy(t); /* ASan: nothing leaks */
}
END_TEST

#define NCONC 100000
static gws_tracker_entry_t *conc[NCONC];

static void *releaser(void *arg) {
        int start = (int)(intptr_t)arg, i;
        for (i = start; i < NCONC; i += 2)
                gws_tracker_release(conc[i]);
        return NULL;
}

START_TEST(concurrent_release) {
        gws_tracker_t *t = gws_tracker_new(NULL);
        pthread_t a, b;
        int i;
        for (i = 0; i < NCONC; i++)
                conc[i] = gws_tracker_add(t, i);
        pthread_create(&a, NULL, releaser, (void *)(intptr_t)0);
        pthread_create(&b, NULL, releaser, (void *)(intptr_t)1);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        ck_assert_int_eq(gws_tracker_committable(t), NCONC);
        ck_assert_uint_eq(gws_tracker_pending(t), 0);
        gws_tracker_destroy(t);
}
END_TEST

/* Popped entries are reused (a short free list): a reused entry must start
 * clean (one reference, its own offset, end of the FIFO), whatever order
 * the previous round finished in. */
START_TEST(entries_reused) {
        gws_tracker_t *t = gws_tracker_new(NULL);
        gws_tracker_entry_t *e[64], *first[64];
        int64_t off = 0;
        int r, i, reused = 0;
        for (r = 0; r < 200; r++) {
                int n = 1 + r % 64;
                for (i = 0; i < n; i++) {
                        e[i] = gws_tracker_add(t, off + i);
                        ck_assert_ptr_nonnull(e[i]);
                        ck_assert_int_eq(gws_tracker_offset(e[i]), off + i);
                        if (r == 63)
                                first[i] = e[i];
                        if (r > 63 && i < 64)
                                reused += e[i] == first[i % 64] ||
                                          e[i] == first[(i + 1) % 64];
                }
                /* odd round: last to first; even: every other, then rest */
                if (r % 2)
                        for (i = n - 1; i >= 0; i--)
                                gws_tracker_release(e[i]);
                else {
                        for (i = 1; i < n; i += 2)
                                gws_tracker_release(e[i]);
                        ck_assert_int_eq(gws_tracker_committable(t),
                                         r ? off : -1);
                        for (i = 0; i < n; i += 2)
                                gws_tracker_release(e[i]);
                }
                off += n;
                ck_assert_int_eq(gws_tracker_committable(t), off);
                ck_assert_uint_eq(gws_tracker_pending(t), 0);
        }
        ck_assert_int_gt(reused, 0);
        gws_tracker_destroy(t);
}
END_TEST

/* The batch calls (a worker's run of one partition's messages): entries
 * added in one round hold one reference each, a batch release pops only
 * the done head and reports what it popped, and an entry still referenced
 * (an output awaiting delivery) holds every later offset back until its
 * own release, from another thread. */
#define NBATCH 1000
static gws_tracker_entry_t *held[NBATCH];

static void *late_delivery(void *arg) {
        int i;
        (void)arg;
        for (i = 0; i < NBATCH; i += 3)
                gws_tracker_release(held[i]);
        return NULL;
}

START_TEST(batch_add_release) {
        gws_tracker_t *t = gws_tracker_new(NULL);
        gws_tracker_entry_t *e[NBATCH], *done[NBATCH];
        int64_t offs[NBATCH];
        size_t i, nd = 0;
        pthread_t d;
        int popped = 0;
        for (i = 0; i < NBATCH; i++)
                offs[i] = 100 + 2 * (int64_t)i; /* gaps are fine */
        ck_assert_uint_eq(gws_tracker_add_many(t, offs, NBATCH, e), NBATCH);
        ck_assert_uint_eq(gws_tracker_pending(t), NBATCH);
        for (i = 0; i < NBATCH; i++) {
                ck_assert_int_eq(gws_tracker_offset(e[i]), offs[i]);
                if (i % 3 == 0) { /* one output awaiting delivery */
                        gws_tracker_ref(e[i]);
                        held[i] = e[i];
                }
        }
        /* the worker's batch release: every entry, in runs of 7 */
        for (i = 0; i < NBATCH; i++) {
                done[nd++] = e[i];
                if (nd == 7 || i + 1 == NBATCH) {
                        popped += gws_tracker_release_many(t, done, nd);
                        nd = 0;
                }
        }
        /* offset 100 is still awaited: nothing is committable */
        ck_assert_int_eq(popped, 0);
        ck_assert_int_eq(gws_tracker_committable(t), -1);
        ck_assert_uint_eq(gws_tracker_pending(t), NBATCH);
        pthread_create(&d, NULL, late_delivery, NULL);
        pthread_join(d, NULL);
        ck_assert_int_eq(gws_tracker_committable(t), offs[NBATCH - 1] + 1);
        ck_assert_uint_eq(gws_tracker_pending(t), 0);
        /* a batch release whose entries all stay referenced pops nothing */
        ck_assert_uint_eq(gws_tracker_add_many(t, offs, 0, e), 0);
        offs[0] = offs[NBATCH - 1] + 1;
        offs[1] = offs[0] + 1;
        ck_assert_uint_eq(gws_tracker_add_many(t, offs, 2, e), 2);
        gws_tracker_ref(e[0]);
        gws_tracker_ref(e[1]);
        ck_assert_int_eq(gws_tracker_release_many(t, e, 2), 0);
        ck_assert_uint_eq(gws_tracker_pending(t), 2);
        ck_assert_int_eq(gws_tracker_release_many(t, e, 2), 2);
        ck_assert_int_eq(gws_tracker_committable(t), offs[1] + 1);
        gws_tracker_destroy(t);
}
END_TEST

/* Against a model (an array of done flags), with a fixed seed: rounds
 * of adds, then releases in random order that leave 0-39 entries live
 * for the next round. The first rounds start from an empty FIFO, add up
 * to a chunk's edge (128 entries) and past it, and release all but the
 * round's last offset in reverse order, then a new entry, then that
 * last one (a full chunk all popped while a newer one waits). The
 * committable offset must be the first not-done offset, and the pending
 * count what is not popped. */
#define NMODEL 5000
static unsigned model_rand(unsigned *seed) {
        *seed = *seed * 1103515245u + 12345u;
        return *seed >> 16;
}

static void model_check(gws_tracker_t *t, const unsigned char *done,
                        int added, int *popped_to) {
        while (*popped_to < added && done[*popped_to])
                (*popped_to)++;
        ck_assert_int_eq(gws_tracker_committable(t),
                         *popped_to ? 1000 + *popped_to : -1);
        ck_assert_uint_eq(gws_tracker_pending(t),
                          (size_t)(added - *popped_to));
}

START_TEST(matches_a_model) {
        static gws_tracker_entry_t *e[NMODEL + 16];
        static unsigned char done[NMODEL + 16];
        static const int edges[] = {1, 2, 127, 128, 129, 255, 256, 257};
        gws_tracker_t *t = gws_tracker_new(NULL);
        unsigned seed = 12345;
        int added = 0, popped_to = 0, live[NMODEL], nlive = 0, r, i, k;
        for (r = 0; r < (int)(sizeof(edges) / sizeof(edges[0])); r++) {
                int first = added, last;
                for (i = 0; i < edges[r]; i++, added++)
                        ck_assert_ptr_nonnull(
                            e[added] = gws_tracker_add(t, 1000 + added));
                last = added - 1;
                for (i = last - 1; i >= first; i--) {
                        done[i] = 1;
                        gws_tracker_release(e[i]);
                        model_check(t, done, added, &popped_to);
                }
                ck_assert_int_eq(popped_to, last);
                ck_assert_ptr_nonnull(e[added] =
                                          gws_tracker_add(t, 1000 + added));
                added++;
                done[last] = 1;
                gws_tracker_release(e[last]);
                model_check(t, done, added, &popped_to);
                done[added - 1] = 1;
                gws_tracker_release(e[added - 1]);
                model_check(t, done, added, &popped_to);
                ck_assert_int_eq(popped_to, added);
        }
        while (added < NMODEL) {
                int n = (int)(model_rand(&seed) % 300),
                    keep = (int)(model_rand(&seed) % 40);
                if (n > NMODEL - added)
                        n = NMODEL - added;
                for (i = 0; i < n; i++, added++) {
                        ck_assert_ptr_nonnull(
                            e[added] = gws_tracker_add(t, 1000 + added));
                        live[nlive++] = added;
                }
                if (added == NMODEL)
                        keep = 0;
                while (nlive > keep) {
                        k = (int)(model_rand(&seed) % (unsigned)nlive);
                        i = live[k];
                        live[k] = live[--nlive];
                        done[i] = 1;
                        gws_tracker_release(e[i]);
                        model_check(t, done, added, &popped_to);
                }
        }
        ck_assert_int_eq(gws_tracker_committable(t), 1000 + NMODEL);
        ck_assert_uint_eq(gws_tracker_pending(t), 0);
        /* and it goes on after being emptied */
        e[0] = gws_tracker_add(t, 1000 + NMODEL + 5);
        ck_assert_int_eq(gws_tracker_offset(e[0]), 1000 + NMODEL + 5);
        ck_assert_int_eq(gws_tracker_release(e[0]), 1);
        ck_assert_int_eq(gws_tracker_committable(t), 1000 + NMODEL + 6);
        gws_tracker_destroy(t);
}
END_TEST

Suite *gws_tracker_suite(void) {
        Suite *s = suite_create("tracker");
        TCase *tc = tcase_create("offsets");
        tcase_add_test(tc, contiguous_only);
        tcase_add_test(tc, gaps_in_offsets);
        tcase_add_test(tc, destroy_with_pending);
        tcase_add_test(tc, concurrent_release);
        tcase_add_test(tc, entries_reused);
        tcase_add_test(tc, batch_add_release);
        tcase_add_test(tc, matches_a_model);
        suite_add_tcase(s, tc);
        return s;
}
