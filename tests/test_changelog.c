/* test_changelog.c - the changelog against an in-process mock cluster
 * (librdkafka's rdkafka_mock, one broker): a restore without a snapshot,
 * a snapshot written and restored, and a restore thread that cannot
 * allocate.
 *
 * Allocation failures: the test binary is linked with -Wl,--wrap=calloc,
 * so every calloc() of gwsieve's code (the gws_core library and the
 * tests) goes through __wrap_calloc(). While fail_size is set, calloc(1,
 * fail_size) fails on every thread but the test's own; while
 * slow_calloc_us is set, every calloc() of gwsieve's code on another
 * thread (the restore thread: librdkafka's own threads do not come here)
 * waits that long first, which makes learning an event with a new entity
 * slow.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "gwsieve/changelog.h"
#include "gwsieve/config.h"
#include "gwsieve/service.h"
#include "gwsieve/util.h"
#include "suites.h"

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);

static size_t fail_size;   /* atomic: 0 = no failures */
static int failed_callocs; /* atomic */
static int slow_calloc_us; /* atomic: 0 = none */
static int slow_callocs;   /* atomic */
static pthread_t test_thread;

void *__wrap_calloc(size_t n, size_t size) {
        size_t fs = __atomic_load_n(&fail_size, __ATOMIC_ACQUIRE);
        int us = __atomic_load_n(&slow_calloc_us, __ATOMIC_ACQUIRE);
        if (fs && n == 1 && size == fs &&
            !pthread_equal(pthread_self(), test_thread)) {
                __atomic_add_fetch(&failed_callocs, 1, __ATOMIC_RELAXED);
                return NULL;
        }
        if (us && !pthread_equal(pthread_self(), test_thread)) {
                __atomic_add_fetch(&slow_callocs, 1, __ATOMIC_RELAXED);
                usleep((useconds_t)us);
        }
        return __real_calloc(n, size);
}

typedef struct fx_s {
        rd_kafka_t *mk;          /* owns the mock cluster
                                  * (test.mock.num.brokers) */
        rd_kafka_mock_cluster_t *mc;
        rd_kafka_t *prod;        /* snapshots */
        gws_config_t *cfg;
        gws_changelog_t *cl;
} fx_t;

/* Delivery reports of snapshots (test thread, rd_kafka_poll). */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                  void *opaque) {
        fx_t *f = opaque;
        (void)rk;
        gws_changelog_on_delivery(f->cl, rkm);
}

/* Starts \p f on a mock cluster of \p nbrokers brokers. With 2, broker 2
 * leads the partitions of \p on2 (a bit mask: 0x1 "gw.state" [1], 0x2
 * "gw.raw" [1] and [3], 0x4 the group's coordinator), broker 1 the
 * others. */
static void fx_start_brokers(fx_t *f, int nbrokers, int on2) {
        char err[512], n[8];
        rd_kafka_conf_t *c = rd_kafka_conf_new(), *pc, *rc;
        const char *boot;
        int i;

        memset(f, 0, sizeof(*f));
        test_thread = pthread_self();
        snprintf(n, sizeof(n), "%d", nbrokers);
        ck_assert_int_eq(rd_kafka_conf_set(c, "test.mock.num.brokers", n,
                                           err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
        f->mk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
        ck_assert_msg(f->mk != NULL, "mock handle: %s", err);
        f->mc = rd_kafka_handle_mock_cluster(f->mk);
        ck_assert_ptr_nonnull(f->mc);
        ck_assert_int_eq(rd_kafka_mock_topic_create(f->mc, "gw.state", 2, 1),
                         0);
        ck_assert_int_eq(rd_kafka_mock_topic_create(f->mc, "gw.raw", 4, 1),
                         0);
        if (nbrokers == 2) {
                for (i = 0; i < 2; i++)
                        ck_assert_int_eq(rd_kafka_mock_partition_set_leader(
                                             f->mc, "gw.state", i,
                                             i == 1 && (on2 & 0x1) ? 2 : 1),
                                         0);
                for (i = 0; i < 4; i++)
                        ck_assert_int_eq(rd_kafka_mock_partition_set_leader(
                                             f->mc, "gw.raw", i,
                                             i % 2 && (on2 & 0x2) ? 2 : 1),
                                         0);
                ck_assert_int_eq(rd_kafka_mock_coordinator_set(
                                     f->mc, "group", "gws-test-changelog",
                                     on2 & 0x4 ? 2 : 1),
                                 0);
        }
        boot = rd_kafka_mock_cluster_bootstraps(f->mc);

        f->cfg = gws_config_new();
        ck_assert_ptr_nonnull(f->cfg);
        ck_assert_int_eq(gws_config_set(f->cfg, "kafka.bootstrap.servers",
                                        boot, err, sizeof(err)),
                         0);
        ck_assert_int_eq(gws_config_set(f->cfg, "group", "gws-test-changelog",
                                        err, sizeof(err)),
                         0);
        ck_assert_int_eq(gws_config_set(f->cfg, "topics.input", "gw.raw", err,
                                        sizeof(err)),
                         0);
        ck_assert_int_eq(gws_config_set(f->cfg, "state.topic", "gw.state",
                                        err, sizeof(err)),
                         0);

        pc = rd_kafka_conf_new();
        ck_assert_int_eq(rd_kafka_conf_set(pc, "bootstrap.servers", boot, err,
                                           sizeof(err)),
                         RD_KAFKA_CONF_OK);
        rd_kafka_conf_set_dr_msg_cb(pc, dr_cb);
        rd_kafka_conf_set_opaque(pc, f);
        f->prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
        ck_assert_msg(f->prod != NULL, "producer: %s", err);

        rc = gws_service_reader_conf(f->cfg, "gws-test-restore", err,
                                     sizeof(err));
        ck_assert_msg(rc != NULL, "reader conf: %s", err);
        f->cl = gws_changelog_new(f->cfg, f->prod, rc, err, sizeof(err));
        ck_assert_msg(f->cl != NULL, "changelog: %s", err);
}

static void fx_start(fx_t *f) {
        fx_start_brokers(f, 1, 0);
}

static void fx_stop(fx_t *f) {
        gws_changelog_destroy(f->cl);
        rd_kafka_flush(f->prod, 5000);
        rd_kafka_destroy(f->prod);
        gws_config_destroy(f->cfg);
        rd_kafka_destroy(f->mk); /* and its mock cluster */
}

/* The next finished restore, waiting up to \p ms. @returns NULL if none. */
static gws_restore_t *done_wait(fx_t *f, int ms) {
        int64_t end = gws_mono_ms() + ms;
        gws_restore_t *r;
        while (!(r = gws_changelog_done(f->cl)) && gws_mono_ms() < end) {
                rd_kafka_poll(f->prod, 0);
                usleep(10 * 1000);
        }
        return r;
}

/* Writes \p det's snapshot of \p part at (\p offset, \p delivered) and
 * waits for its acknowledgement. */
static void snapshot_put(fx_t *f, int32_t part, int64_t offset,
                         int64_t delivered, gws_detect_t *det, gws_buf_t *raw,
                         gws_buf_t *rec) {
        int i;
        ck_assert_int_eq(gws_changelog_save(f->cl, part, offset, delivered,
                                            det, raw, rec),
                         0);
        for (i = 0; i < 1000 && !gws_changelog_wait_delivered(f->cl, 0); i++)
                rd_kafka_poll(f->prod, 10);
        ck_assert_msg(gws_changelog_wait_delivered(f->cl, 0),
                      "snapshot not acknowledged within 10 s");
}

/* Snapshots of input partitions 2 (offset 10) and 3 (offset 11), of
 * empty detectors, on state partitions 0 and 1 of \p f: what the
 * inspection tests look for. */
static void put_snapshots_2_3(fx_t *f) {
        gws_buf_t raw = {0}, rec = {0};
        int i;
        for (i = 0; i < 2; i++) {
                gws_detect_t *det = gws_detect_new(f->cfg, 2 + i);
                ck_assert_ptr_nonnull(det);
                snapshot_put(f, 2 + i, 10 + i, 10 + i, det, &raw, &rec);
                gws_detect_destroy(det);
        }
        gws_buf_free(&raw);
        gws_buf_free(&rec);
}

/* Restores \p part (committed offset \p committed, NULL: unknown) and
 * waits up to 30 s for the result. */
static gws_restore_t *restore_one(fx_t *f, int32_t part,
                                  const int64_t *committed) {
        uint64_t gen = 1;
        gws_restore_t *r;
        ck_assert_int_eq(
            gws_changelog_restore(f->cl, &part, &gen, committed, 1), 0);
        r = done_wait(f, 30000);
        ck_assert_msg(r != NULL, "no restore result within 30 s");
        return r;
}

/* Produces \p n messages of \p len bytes of \p val to input partition
 * \p part. @returns its low watermark afterwards. */
static int64_t input_fill(fx_t *f, int32_t part, int n, const void *val,
                          size_t len) {
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_t *in;
        char err[512];
        int64_t lo = -1, hi = -1;
        int i;
        ck_assert_int_eq(rd_kafka_conf_set(
                             c, "bootstrap.servers",
                             rd_kafka_mock_cluster_bootstraps(f->mc), err,
                             sizeof(err)),
                         RD_KAFKA_CONF_OK);
        in = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
        ck_assert_msg(in != NULL, "input producer: %s", err);
        for (i = 0; i < n; i++)
                while (rd_kafka_producev(in, RD_KAFKA_V_TOPIC("gw.raw"),
                                         RD_KAFKA_V_PARTITION(part),
                                         RD_KAFKA_V_VALUE((void *)val, len),
                                         RD_KAFKA_V_MSGFLAGS(
                                             RD_KAFKA_MSG_F_COPY),
                                         RD_KAFKA_V_END) ==
                       RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(in, 10);
        ck_assert_int_eq(rd_kafka_flush(in, 30000), 0);
        ck_assert_int_eq(rd_kafka_query_watermark_offsets(in, "gw.raw", part,
                                                          &lo, &hi, 10000),
                         0);
        ck_assert_int_eq(hi, n);
        rd_kafka_destroy(in);
        return lo;
}

/* `gwsieve state` reads the keys a restore reads and no other: a
 * record under "<group>/<topic>/02" (strtol took it for partition 2) is
 * not partition 2's snapshot, which a restore (its exact key) finds. */
START_TEST(inspect_takes_only_the_restore_key) {
        fx_t f;
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det;
        gws_state_view_t *rows = NULL;
        rd_kafka_conf_t *rc;
        char err[512];
        const char *bogus[] = {"gws-test-changelog/gw.raw/02",
                               "gws-test-changelog/gw.raw/+2",
                               "gws-test-changelog/gw.raw/ 2"};
        size_t i;
        int n;

        fx_start(&f);
        det = gws_detect_new(f.cfg, 2);
        ck_assert_ptr_nonnull(det);
        snapshot_put(&f, 2, 10, 8, det, &raw, &rec);
        for (i = 0; i < sizeof(bogus) / sizeof(bogus[0]); i++)
                ck_assert_int_eq(
                    rd_kafka_producev(f.prod, RD_KAFKA_V_TOPIC("gw.state"),
                                      RD_KAFKA_V_PARTITION(0),
                                      RD_KAFKA_V_KEY(bogus[i],
                                                     strlen(bogus[i])),
                                      RD_KAFKA_V_VALUE("not a snapshot", 14),
                                      RD_KAFKA_V_MSGFLAGS(
                                          RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_END),
                    0);
        ck_assert_int_eq(rd_kafka_flush(f.prod, 10000), 0);
        rc = gws_service_reader_conf(f.cfg, "gws-test-inspect", err,
                                     sizeof(err));
        ck_assert_msg(rc != NULL, "%s", err);
        n = gws_changelog_inspect(f.cfg, rc, 10000, &rows, err, sizeof(err));
        ck_assert_msg(n == 4, "inspect: %d rows (%s)", n, err);
        ck_assert_int_eq(rows[2].partition, 2);
        ck_assert_msg(rows[2].result == GWS_STATE_OK, "result %d: %s",
                      (int)rows[2].result, rows[2].reason);
        ck_assert_int_eq(rows[2].info.offset, 10);
        free(rows);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

START_TEST(restore_without_snapshot_is_cold) {
        fx_t f;
        int32_t part = 1;
        uint64_t gen = 5;
        gws_restore_t *r;

        fx_start(&f);
        ck_assert_int_eq(gws_changelog_restore(f.cl, &part, &gen, NULL, 1), 0);
        r = done_wait(&f, 20000);
        ck_assert_msg(r != NULL, "no restore result within 20 s");
        ck_assert_int_eq(r->partition, 1);
        ck_assert_uint_eq(r->gen, 5);
        ck_assert_int_eq(r->result, GWS_STATE_MISSING);
        ck_assert_int_eq(r->caught_to, -1);
        ck_assert_ptr_nonnull(r->det);
        gws_restore_free(r);
        fx_stop(&f);
}
END_TEST

START_TEST(snapshot_is_restored) {
        fx_t f;
        int32_t part = 2;
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det;
        gws_restore_t *r;

        fx_start(&f);
        det = gws_detect_new(f.cfg, part);
        ck_assert_ptr_nonnull(det);
        snapshot_put(&f, part, 10, 8, det, &raw, &rec);
        r = restore_one(&f, part, NULL);
        ck_assert_msg(r->result == GWS_STATE_OK, "result %d: %s",
                      (int)r->result, r->reason);
        ck_assert_int_eq(r->snap_offset, 10);
        ck_assert_int_eq(r->caught_to, 10); /* no commit: no catch-up */
        ck_assert_ptr_nonnull(r->det);
        gws_restore_free(r);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

/* Every queued restore must come back, or the service keeps its partition
 * paused for good: a result the restore thread cannot allocate was lost. */
START_TEST(restore_result_survives_allocation_failure) {
        fx_t f;
        int32_t parts[2] = {0, 3};
        uint64_t gens[2] = {7, 8};
        gws_restore_t *r[2];
        int i;

        fx_start(&f);
        __atomic_store_n(&failed_callocs, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&fail_size, sizeof(gws_restore_t), __ATOMIC_RELEASE);
        ck_assert_int_eq(gws_changelog_restore(f.cl, parts, gens, NULL, 2), 0);
        for (i = 0; i < 2; i++)
                r[i] = done_wait(&f, 20000);
        __atomic_store_n(&fail_size, 0, __ATOMIC_RELEASE);
        for (i = 0; i < 2; i++) {
                ck_assert_msg(r[i] != NULL,
                              "restore %d of 2 never came back (%d "
                              "allocation(s) of a result failed on the "
                              "restore thread)",
                              i + 1, failed_callocs);
                ck_assert_int_eq(r[i]->partition, parts[i]);
                ck_assert_uint_eq(r[i]->gen, gens[i]);
                ck_assert_int_eq(r[i]->result, GWS_STATE_MISSING);
                gws_restore_free(r[i]);
        }
        fx_stop(&f);
}
END_TEST

/* Commits \p offset for input partition \p part in the group. */
static void group_commit(fx_t *f, int32_t part, int64_t offset) {
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *l;
        rd_kafka_t *gc;
        char err[512];
        ck_assert_int_eq(rd_kafka_conf_set(
                             c, "bootstrap.servers",
                             rd_kafka_mock_cluster_bootstraps(f->mc), err,
                             sizeof(err)),
                         RD_KAFKA_CONF_OK);
        ck_assert_int_eq(rd_kafka_conf_set(c, "group.id", f->cfg->group, err,
                                           sizeof(err)),
                         RD_KAFKA_CONF_OK);
        gc = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
        ck_assert_msg(gc != NULL, "group consumer: %s", err);
        l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, "gw.raw", part)->offset = offset;
        ck_assert_int_eq(rd_kafka_commit(gc, l, 0), 0);
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_consumer_close(gc);
        rd_kafka_destroy(gc);
}

/* A catch-up from a snapshot whose offset is below the input partition's
 * log start (retention deleted the first events; the mock keeps ~5 MB per
 * partition) reads what is left, from the log start to the committed
 * offset, and says what is missing. The restore consumer once took
 * librdkafka's default auto.offset.reset (latest): the catch-up jumped to
 * the end of the partition, learned nothing, and said nothing. */
START_TEST(catch_up_starts_at_the_log_start) {
        enum { N = 8000, SIZE = 1000 };
        fx_t f;
        int32_t part = 1;
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det;
        gws_restore_t *r;
        static char val[SIZE];
        int64_t lo, committed = N - 100;

        fx_start(&f);
        memset(val, 'x', sizeof(val));
        lo = input_fill(&f, part, N, val, sizeof(val));
        ck_assert_msg(lo > 0, "the mock kept all %d messages: the test needs "
                              "the log start moved", N);

        /* the group committed near the end */
        group_commit(&f, part, committed);

        /* the snapshot from before the first event; the committed offset
         * looked up by the restore itself */
        det = gws_detect_new(f.cfg, part);
        ck_assert_ptr_nonnull(det);
        snapshot_put(&f, part, 0, 0, det, &raw, &rec);
        r = restore_one(&f, part, NULL);
        ck_assert_msg(r->result == GWS_STATE_OK, "result %d: %s",
                      (int)r->result, r->reason);
        ck_assert_int_eq(r->committed, committed);
        ck_assert_msg(r->caught_up == committed - lo,
                      "caught up %lld events, not the %lld from the log "
                      "start %lld to the committed offset %lld",
                      (long long)r->caught_up, (long long)(committed - lo),
                      (long long)lo, (long long)committed);
        ck_assert_int_eq(r->caught_to, committed);
        gws_restore_free(r);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

/* On started \p f: state.restore_timeout_ms \p timeout, 100 input
 * events on \p part and a snapshot of an empty detector at offset 10
 * (delivered 10). @returns the detector (the caller's). */
static gws_detect_t *catch_up_ready(fx_t *f, int32_t part,
                                    const char *timeout, gws_buf_t *raw,
                                    gws_buf_t *rec) {
        gws_detect_t *det;
        char err[256];
        ck_assert_int_eq(gws_config_set(f->cfg, "state.restore_timeout_ms",
                                        timeout, err, sizeof(err)),
                         0);
        input_fill(f, part, 100, "{}", 2);
        det = gws_detect_new(f->cfg, part);
        ck_assert_ptr_nonnull(det);
        snapshot_put(f, part, 10, 10, det, raw, rec);
        return det;
}

/* fx_start(), then catch_up_ready(). */
static gws_detect_t *fx_catch_up(fx_t *f, int32_t part, const char *timeout,
                                 gws_buf_t *raw, gws_buf_t *rec) {
        fx_start(f);
        return catch_up_ready(f, part, timeout, raw, rec);
}

/* The service found the group's committed offset before it assigned the
 * partition (its consumer starts there): the restore catches up to that
 * offset, with no lookup of its own. The restore once looked it up again
 * and took a failed lookup (OffsetFetch refused while the coordinator
 * moves) for "no commit": restored without the catch-up, reported ok,
 * nothing logged. A restore that has to look it up and cannot keeps
 * trying until state.restore_timeout_ms, then restores without catch-up
 * and says so (not asserted: the log). */
START_TEST(restore_takes_the_committed_offset_it_is_given) {
        fx_t f;
        int32_t part = 3;
        int64_t committed = 60, unknown = GWS_COMMITTED_UNKNOWN, t0;
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det;
        gws_restore_t *r;
        rd_kafka_resp_err_t errs[400];
        int i;

        det = fx_catch_up(&f, part, "2000", &raw, &rec);
        /* every OffsetFetch (ApiKey 9) of the test fails */
        for (i = 0; i < 400; i++)
                errs[i] = RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE;
        rd_kafka_mock_push_request_errors_array(f.mc, 9, 400, errs);

        r = restore_one(&f, part, &committed);
        ck_assert_msg(r->result == GWS_STATE_OK, "result %d: %s",
                      (int)r->result, r->reason);
        ck_assert_int_eq(r->committed, 60);
        ck_assert_int_eq(r->caught_up, 50);
        ck_assert_int_eq(r->caught_to, 60);
        gws_restore_free(r);

        /* unknown, and the lookup keeps failing: bounded, no catch-up */
        t0 = gws_mono_ms();
        r = restore_one(&f, part, &unknown);
        ck_assert_int_eq(r->result, GWS_STATE_OK);
        ck_assert_int_eq(r->committed, -1);
        ck_assert_int_eq(r->caught_up, 0);
        ck_assert_int_eq(r->caught_to, 10);
        ck_assert_int_lt(gws_mono_ms() - t0, 15000);
        gws_restore_free(r);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

/* A catch-up whose reads the broker refuses for good (Fetch of the input
 * answered TOPIC_AUTHORIZATION_FAILED: no Read ACL on it) stops there,
 * as at its deadline: the restore comes back from its snapshot without
 * the catch-up, at once. It once waited all of state.restore_timeout_ms
 * (20 s here) for fetches that could not succeed. The input partition's
 * leader is broker 2, the state partition's broker 1, so the snapshot
 * itself is read. */
START_TEST(catch_up_refused_stops_at_once) {
        fx_t f;
        int32_t part = 1;
        int64_t committed = 60, t0, ms;
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det;
        gws_restore_t *r;
        int i;

        fx_start_brokers(&f, 2, 0x2);
        det = catch_up_ready(&f, part, "20000", &raw, &rec);
        for (i = 0; i < 2000; i++)
                ck_assert_int_eq(
                    rd_kafka_mock_broker_push_request_error_rtts(
                        f.mc, 2, 1 /* Fetch */, 1,
                        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 0),
                    0);
        t0 = gws_mono_ms();
        r = restore_one(&f, part, &committed);
        ms = gws_mono_ms() - t0;
        fprintf(stderr,
                "catch_up_refused_stops_at_once: %s, caught up %lld to "
                "%lld in %lld ms (state.restore_timeout_ms 20000)\n",
                gws_state_result_name(r->result), (long long)r->caught_up,
                (long long)r->caught_to, (long long)ms);
        ck_assert_msg(r->result == GWS_STATE_OK, "result %s: %s",
                      gws_state_result_name(r->result), r->reason);
        ck_assert_int_eq(r->caught_up, 0);
        ck_assert_int_eq(r->caught_to, 10);
        /* generous: not the 20 s deadline */
        ck_assert_msg(ms < 10000, "the refused catch-up took %lld ms",
                      (long long)ms);
        gws_restore_free(r);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

/* Delays the next \p n responses to requests \p api_key of the mock's
 * broker 1 (the group's coordinator, and the leader the tests read from)
 * by \p ms each: OffsetFetch (9) for a coordinator that does not answer,
 * ListOffsets (2) for a slow broker as the restore consumer's start
 * offset lookups see it. */
static void request_slow(fx_t *f, int16_t api_key, int n, int ms) {
        int i;
        for (i = 0; i < n; i++)
                ck_assert_int_eq(rd_kafka_mock_broker_push_request_error_rtts(
                                     f->mc, 1, api_key, 1,
                                     RD_KAFKA_RESP_ERR_NO_ERROR, ms),
                                 0);
}

/* A lookup of the group's committed offset (unknown to the caller) that
 * the coordinator does not answer ends at state.restore_timeout_ms
 * (2.2 s): the restore comes back then, from its snapshot without
 * catch-up. Each call of the lookup once waited at least 1 s, whatever
 * was left: the first call (2 s, its most) timed out with 0.2 s left,
 * and the second waited 1 s more: 3.1 s. */
START_TEST(committed_lookup_ends_at_its_deadline) {
        fx_t f;
        int32_t part = 1;
        int64_t unknown = GWS_COMMITTED_UNKNOWN, t0, ms;
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det;
        gws_restore_t *r;

        det = fx_catch_up(&f, part, "2200", &raw, &rec);
        /* a first restore, so that the consumer is connected and the
         * one measured reads its snapshot in milliseconds */
        r = restore_one(&f, part, NULL);
        ck_assert_int_eq(r->result, GWS_STATE_OK);
        gws_restore_free(r);
        request_slow(&f, 9 /* OffsetFetch */, 10, 30000);
        t0 = gws_mono_ms();
        r = restore_one(&f, part, &unknown);
        ms = gws_mono_ms() - t0;
        fprintf(stderr,
                "committed_lookup_ends_at_its_deadline: %s after %lld ms "
                "(state.restore_timeout_ms 2200), committed %lld\n",
                gws_state_result_name(r->result), (long long)ms,
                (long long)r->committed);
        ck_assert_int_eq(r->result, GWS_STATE_OK);
        ck_assert_int_eq(r->committed, -1);
        ck_assert_int_eq(r->caught_to, 10);
        /* generous: the lookup is the restore's only wait */
        ck_assert_msg(ms < 2200 + 600,
                      "the restore took %lld ms with "
                      "state.restore_timeout_ms 2200",
                      (long long)ms);
        gws_restore_free(r);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

/* A catch-up that cannot read the input (its partition has no leader)
 * stops at state.restore_timeout_ms: the restore is ok, but its state
 * holds nothing past the snapshot, and caught_to says so (the service
 * snapshots a restored partition at caught_to when it is revoked before
 * any new input: a snapshot at the committed offset would claim events
 * the state never saw). With the leader back it reaches the commit. */
START_TEST(catch_up_cut_short_ends_below_the_commit) {
        fx_t f;
        int32_t part = 2;
        int64_t committed = 60;
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det;
        gws_restore_t *r;

        det = fx_catch_up(&f, part, "1500", &raw, &rec);
        ck_assert_int_eq(
            rd_kafka_mock_partition_set_leader(f.mc, "gw.raw", part, -1), 0);
        r = restore_one(&f, part, &committed);
        ck_assert_msg(r->result == GWS_STATE_OK, "result %d: %s",
                      (int)r->result, r->reason);
        ck_assert_int_eq(r->caught_up, 0);
        ck_assert_int_eq(r->caught_to, 10);
        gws_restore_free(r);

        ck_assert_int_eq(
            rd_kafka_mock_partition_set_leader(f.mc, "gw.raw", part, 1), 0);
        r = restore_one(&f, part, &committed);
        ck_assert_int_eq(r->result, GWS_STATE_OK);
        ck_assert_int_eq(r->caught_up, 50);
        ck_assert_int_eq(r->caught_to, 60);
        gws_restore_free(r);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

/* A restore has one deadline, state.restore_timeout_ms (3 s) from its
 * start: a read of the state topic that takes 2 s (its ListOffsets
 * answered after 2 s) leaves its catch-up (stuck: the input partition
 * has no leader) 1 s, not 3 s more. The catch-up once had a deadline of
 * its own, counted from the end of the read: the restore came back after
 * 5 s. */
START_TEST(restore_has_one_deadline) {
        fx_t f;
        int32_t part = 2;
        int64_t committed = 60, t0, ms;
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det;
        gws_restore_t *r;

        det = fx_catch_up(&f, part, "3000", &raw, &rec);
        ck_assert_int_eq(
            rd_kafka_mock_partition_set_leader(f.mc, "gw.raw", part, -1), 0);
        request_slow(&f, 2 /* ListOffsets */, 1, 2000);
        t0 = gws_mono_ms();
        r = restore_one(&f, part, &committed);
        ms = gws_mono_ms() - t0;
        fprintf(stderr,
                "restore_has_one_deadline: %s after %lld ms "
                "(state.restore_timeout_ms 3000), caught up to %lld\n",
                gws_state_result_name(r->result), (long long)ms,
                (long long)r->caught_to);
        ck_assert_msg(r->result == GWS_STATE_OK, "result %s: %s",
                      gws_state_result_name(r->result), r->reason);
        ck_assert_int_eq(r->snap_offset, 10);
        ck_assert_int_eq(r->caught_up, 0);
        ck_assert_int_eq(r->caught_to, 10);
        /* the read really was slow: the catch-up had less than the whole
         * deadline */
        ck_assert_msg(ms >= 2900, "the restore took %lld ms", (long long)ms);
        /* generous: polls of 100 ms */
        ck_assert_msg(ms < 3000 + 1000,
                      "the restore took %lld ms with "
                      "state.restore_timeout_ms 3000",
                      (long long)ms);
        gws_restore_free(r);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

/* A catch-up ends at the restore's deadline also while events keep
 * coming: 2,000 events of 2,000 users to catch up, each new user's entity
 * allocated in 2 ms (slow_calloc_us), state.restore_timeout_ms 1 s. The
 * catch-up once looked at its deadline only when a poll came back empty,
 * which never happens while librdkafka has the next events queued: it
 * learned all 2,000 (5.3 s). */
START_TEST(catch_up_ends_at_its_deadline_while_events_flow) {
        enum { N = 2000 };
        fx_t f;
        int32_t part = 1;
        int64_t committed = N, t0, ms;
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det;
        gws_restore_t *r;
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_t *in;
        char err[512], ev[256];
        int i, n;

        fx_start(&f);
        ck_assert_int_eq(gws_config_set(f.cfg, "state.restore_timeout_ms",
                                        "1000", err, sizeof(err)),
                         0);
        ck_assert_int_eq(rd_kafka_conf_set(
                             c, "bootstrap.servers",
                             rd_kafka_mock_cluster_bootstraps(f.mc), err,
                             sizeof(err)),
                         RD_KAFKA_CONF_OK);
        in = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
        ck_assert_msg(in != NULL, "input producer: %s", err);
        for (i = 0; i < N; i++) {
                n = snprintf(ev, sizeof(ev),
                             "{\"id\":\"e%d\",\"ts\":%lld,"
                             "\"gateway_id\":\"g\",\"provider\":\"p\","
                             "\"model\":\"m\",\"status\":200,"
                             "\"latency_ms\":100,\"user_id\":\"u%d\"}",
                             i, 1767225600000LL + i, i);
                while (rd_kafka_producev(in, RD_KAFKA_V_TOPIC("gw.raw"),
                                         RD_KAFKA_V_PARTITION(part),
                                         RD_KAFKA_V_VALUE(ev, (size_t)n),
                                         RD_KAFKA_V_MSGFLAGS(
                                             RD_KAFKA_MSG_F_COPY),
                                         RD_KAFKA_V_END) ==
                       RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(in, 10);
        }
        ck_assert_int_eq(rd_kafka_flush(in, 30000), 0);
        rd_kafka_destroy(in);
        det = gws_detect_new(f.cfg, part);
        ck_assert_ptr_nonnull(det);
        snapshot_put(&f, part, 0, 0, det, &raw, &rec);

        __atomic_store_n(&slow_callocs, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&slow_calloc_us, 2000, __ATOMIC_RELEASE);
        t0 = gws_mono_ms();
        r = restore_one(&f, part, &committed);
        ms = gws_mono_ms() - t0;
        __atomic_store_n(&slow_calloc_us, 0, __ATOMIC_RELEASE);
        fprintf(stderr,
                "catch_up_ends_at_its_deadline_while_events_flow: %s after "
                "%lld ms (state.restore_timeout_ms 1000), caught up %lld "
                "events of %d, %d slow callocs\n",
                gws_state_result_name(r->result), (long long)ms,
                (long long)r->caught_up, N,
                __atomic_load_n(&slow_callocs, __ATOMIC_RELAXED));
        ck_assert_msg(r->result == GWS_STATE_OK, "result %s: %s",
                      gws_state_result_name(r->result), r->reason);
        ck_assert_int_lt(r->caught_to, N);
        ck_assert_int_eq(r->caught_to, r->caught_up);
        /* generous: an event and a poll */
        ck_assert_msg(ms < 1000 + 1500,
                      "the restore took %lld ms with "
                      "state.restore_timeout_ms 1000",
                      (long long)ms);
        gws_restore_free(r);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

/* Makes every Fetch of the mock cluster fail (NOT_LEADER_FOR_PARTITION,
 * retried by the consumer) until fetch_ok(): a state partition whose
 * leader is gone, as the restore consumer sees it. */
static void fetch_fails(fx_t *f) {
        rd_kafka_resp_err_t errs[2000];
        int i;
        for (i = 0; i < 2000; i++)
                errs[i] = RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;
        rd_kafka_mock_push_request_errors_array(f->mc, 1 /* Fetch */, 2000,
                                                errs);
}

static void fetch_ok(fx_t *f) {
        rd_kafka_mock_clear_request_errors(f->mc, 1 /* Fetch */);
}

/* A snapshot exists but the state topic cannot be read within
 * state.restore_timeout_ms: the partition starts cold as "unreadable",
 * with the read error as the reason. It was reported "corrupt", as if
 * the snapshot itself were bad. */
START_TEST(unreadable_state_topic_is_not_corrupt) {
        fx_t f;
        int32_t part = 2;
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det;
        gws_restore_t *r;
        gws_changelog_stats_t st;
        char err[256];

        fx_start(&f);
        ck_assert_int_eq(gws_config_set(f.cfg, "state.restore_timeout_ms",
                                        "1500", err, sizeof(err)),
                         0);
        det = gws_detect_new(f.cfg, part);
        ck_assert_ptr_nonnull(det);
        snapshot_put(&f, part, 10, 10, det, &raw, &rec);
        fetch_fails(&f);
        r = restore_one(&f, part, NULL);
        ck_assert_msg(r->result == GWS_STATE_UNREADABLE, "result %s: %s",
                      gws_state_result_name(r->result), r->reason);
        ck_assert_msg(strstr(r->reason, "gw.state") != NULL, "reason: %s",
                      r->reason);
        ck_assert_ptr_nonnull(r->det); /* cold */
        ck_assert_int_eq(r->snap_offset, -1);
        gws_restore_free(r);
        gws_changelog_stats(f.cl, &st);
        ck_assert_uint_eq(st.restores[GWS_STATE_UNREADABLE], 1);
        ck_assert_uint_eq(st.restores[GWS_STATE_CORRUPT], 0);

        /* readable again: the snapshot is there */
        fetch_ok(&f);
        r = restore_one(&f, part, NULL);
        ck_assert_msg(r->result == GWS_STATE_OK, "result %s: %s",
                      gws_state_result_name(r->result), r->reason);
        ck_assert_int_eq(r->snap_offset, 10);
        gws_restore_free(r);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

/* The snapshot of a partition whose restore could not read the state
 * topic survives: the cold detector's snapshots (periodic, revocation,
 * shutdown: all gws_changelog_save()) are held, so the next restore finds
 * the good one. Until a restore of the partition reads the topic again:
 * then they are written again. The cold detector's first snapshot once
 * replaced the good one for good (the restore after it found offset 50,
 * the cold state, instead of 10). */
START_TEST(snapshot_survives_an_unreadable_restore) {
        fx_t f;
        int32_t part = 3;
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det;
        gws_restore_t *r, *cold;
        gws_changelog_stats_t st;
        char err[256];
        int rc, i;

        fx_start(&f);
        ck_assert_int_eq(gws_config_set(f.cfg, "state.restore_timeout_ms",
                                        "1500", err, sizeof(err)),
                         0);
        det = gws_detect_new(f.cfg, part);
        ck_assert_ptr_nonnull(det);
        snapshot_put(&f, part, 10, 10, det, &raw, &rec);
        fetch_fails(&f);
        cold = restore_one(&f, part, NULL);
        ck_assert_int_eq(cold->result, GWS_STATE_UNREADABLE);
        fetch_ok(&f);

        /* the cold partition's snapshot, as its worker takes it */
        rc = gws_changelog_save(f.cl, part, 50, 50, cold->det, &raw, &rec);
        for (i = 0; i < 1000 && !gws_changelog_wait_delivered(f.cl, 0); i++)
                rd_kafka_poll(f.prod, 10);
        r = restore_one(&f, part, NULL);
        ck_assert_msg(r->result == GWS_STATE_OK, "result %s: %s",
                      gws_state_result_name(r->result), r->reason);
        ck_assert_msg(r->snap_offset == 10,
                      "the snapshot at offset 10 was replaced by the cold "
                      "partition's (offset %lld)",
                      (long long)r->snap_offset);
        ck_assert_int_eq(rc, 1); /* held, nothing produced */
        gws_changelog_stats(f.cl, &st);
        ck_assert_uint_eq(st.held, 1);
        ck_assert_uint_eq(st.failed, 0);
        gws_restore_free(cold);

        /* restored: its snapshots are written again */
        ck_assert_int_eq(gws_changelog_held(f.cl, part), 0);
        snapshot_put(&f, part, 60, 60, r->det, &raw, &rec);
        gws_restore_free(r);
        r = restore_one(&f, part, NULL);
        ck_assert_int_eq(r->result, GWS_STATE_OK);
        ck_assert_int_eq(r->snap_offset, 60);
        gws_restore_free(r);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

/* Writes a snapshot of \p part at offset 10, sets
 * state.restore_timeout_ms to \p limit, delays the next \p n ListOffsets
 * responses by \p rtt_ms and restores \p part. @returns the result; \p ms:
 * how long the restore took. */
static gws_restore_t *restore_slow_broker(fx_t *f, int32_t part,
                                          const char *limit, int n,
                                          int rtt_ms, int64_t *ms) {
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det;
        gws_restore_t *r;
        char err[256];
        int64_t t0;

        ck_assert_int_eq(gws_config_set(f->cfg, "state.restore_timeout_ms",
                                        limit, err, sizeof(err)),
                         0);
        det = gws_detect_new(f->cfg, part);
        ck_assert_ptr_nonnull(det);
        snapshot_put(f, part, 10, 10, det, &raw, &rec);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        request_slow(f, 2 /* ListOffsets */, n, rtt_ms);
        t0 = gws_mono_ms();
        r = restore_one(f, part, NULL);
        *ms = gws_mono_ms() - t0;
        fprintf(stderr, "restore against ListOffsets answered in %d ms, "
                        "limit %s ms: %s after %lld ms%s%s\n",
                rtt_ms, limit, gws_state_result_name(r->result),
                (long long)*ms, r->reason[0] ? ": " : "", r->reason);
        return r;
}

/* The read of the state topic ends at state.restore_timeout_ms: a broker
 * that answers ListOffsets after 5 s does not hold a restore with a
 * 1.5 s limit for 5 s. The read once gave its watermark query a fixed
 * 10 s whatever the limit (the restore took 5.0 s). */
START_TEST(restore_read_ends_at_its_deadline) {
        fx_t f;
        gws_restore_t *r;
        int64_t ms;

        fx_start(&f);
        r = restore_slow_broker(&f, 2, "1500", 4, 5000, &ms);
        ck_assert_msg(ms < 1500 + 1000,
                      "the restore took %lld ms with "
                      "state.restore_timeout_ms 1500 (%s: %s)",
                      (long long)ms, gws_state_result_name(r->result),
                      r->reason);
        ck_assert_int_eq(r->result, GWS_STATE_UNREADABLE);
        gws_restore_free(r);
        fx_stop(&f);
}
END_TEST

/* ...and a long limit is the read's to use: a broker that answers after
 * 11 s is slow, not unreadable, when state.restore_timeout_ms is 30 s.
 * The fixed 10 s once failed the read (unreadable: the partition started
 * cold and its snapshots were held) with 19 s left. */
START_TEST(restore_read_uses_its_whole_deadline) {
        fx_t f;
        gws_restore_t *r;
        int64_t ms;

        fx_start(&f);
        r = restore_slow_broker(&f, 3, "30000", 2, 11000, &ms);
        ck_assert_msg(r->result == GWS_STATE_OK, "result %s after %lld ms: %s",
                      gws_state_result_name(r->result), (long long)ms,
                      r->reason);
        ck_assert_int_eq(r->snap_offset, 10);
        gws_restore_free(r);
        fx_stop(&f);
}
END_TEST

/* Input partitions 2 and 3 keep their snapshots on state partitions 0
 * and 1 and are restored in one batch while state partition 1 has no
 * leader: partition 3 starts cold (unreadable, held), partition 2
 * restores its snapshot and is not held. A failed read once made every
 * job of the batch unreadable: partition 2 lost its state and its
 * snapshots were held although its state partition read fine. */
START_TEST(unreadable_state_partition_fails_only_its_restores) {
        fx_t f;
        int32_t parts[2] = {2, 3};
        uint64_t gens[2] = {1, 1};
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det[2];
        gws_restore_t *r[2] = {NULL, NULL}, *x;
        gws_changelog_stats_t st;
        char err[256];
        int i;

        fx_start(&f);
        ck_assert_int_eq(gws_config_set(f.cfg, "state.restore_timeout_ms",
                                        "1500", err, sizeof(err)),
                         0);
        for (i = 0; i < 2; i++) {
                det[i] = gws_detect_new(f.cfg, parts[i]);
                ck_assert_ptr_nonnull(det[i]);
                snapshot_put(&f, parts[i], 10 + i, 10 + i, det[i], &raw, &rec);
        }
        ck_assert_int_eq(rd_kafka_mock_partition_set_leader(f.mc, "gw.state",
                                                            1, -1),
                         0);
        ck_assert_int_eq(gws_changelog_restore(f.cl, parts, gens, NULL, 2), 0);
        for (i = 0; i < 2; i++) {
                x = done_wait(&f, 30000);
                ck_assert_msg(x != NULL, "restore %d of 2 never came back",
                              i + 1);
                r[x->partition == 3] = x;
        }
        for (i = 0; i < 2; i++)
                fprintf(stderr,
                        "unreadable_state_partition_fails_only_its_restores: "
                        "partition %d: %s (%s), held %d\n",
                        (int)r[i]->partition,
                        gws_state_result_name(r[i]->result), r[i]->reason,
                        gws_changelog_held(f.cl, r[i]->partition));
        ck_assert_ptr_nonnull(r[0]);
        ck_assert_ptr_nonnull(r[1]);
        ck_assert_msg(r[0]->result == GWS_STATE_OK,
                      "partition 2 (state partition 0, readable): %s: %s",
                      gws_state_result_name(r[0]->result), r[0]->reason);
        ck_assert_int_eq(r[0]->snap_offset, 10);
        ck_assert_int_eq(gws_changelog_held(f.cl, 2), 0);
        ck_assert_msg(r[1]->result == GWS_STATE_UNREADABLE, "partition 3: %s",
                      gws_state_result_name(r[1]->result));
        ck_assert_msg(strstr(r[1]->reason, "\"gw.state\" [1]") != NULL,
                      "reason: %s", r[1]->reason);
        ck_assert_int_eq(gws_changelog_held(f.cl, 3), 1);
        gws_changelog_stats(f.cl, &st);
        ck_assert_uint_eq(st.restores[GWS_STATE_OK], 1);
        ck_assert_uint_eq(st.restores[GWS_STATE_UNREADABLE], 1);
        for (i = 0; i < 2; i++) {
                gws_restore_free(r[i]);
                gws_detect_destroy(det[i]);
        }

        /* the leader back: partition 3 restores, its hold ends */
        ck_assert_int_eq(rd_kafka_mock_partition_set_leader(f.mc, "gw.state",
                                                            1, 1),
                         0);
        x = restore_one(&f, 3, NULL);
        ck_assert_msg(x->result == GWS_STATE_OK, "result %s: %s",
                      gws_state_result_name(x->result), x->reason);
        ck_assert_int_eq(x->snap_offset, 11);
        ck_assert_int_eq(gws_changelog_held(f.cl, 3), 0);
        gws_restore_free(x);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

/* fx_start() with a restore timeout of 5 s, a snapshot of input
 * partition 2 (state partition 0) at offset 10, and state partition 1
 * (input partitions 1 and 3) without a leader. @returns the detector
 * snapshotted (the caller's). */
static gws_detect_t *fx_start_half_readable(fx_t *f, gws_buf_t *raw,
                                            gws_buf_t *rec) {
        gws_detect_t *det;
        char err[256];
        fx_start(f);
        ck_assert_int_eq(gws_config_set(f->cfg, "state.restore_timeout_ms",
                                        "5000", err, sizeof(err)),
                         0);
        det = gws_detect_new(f->cfg, 2);
        ck_assert_ptr_nonnull(det);
        snapshot_put(f, 2, 10, 10, det, raw, rec);
        ck_assert_int_eq(rd_kafka_mock_partition_set_leader(f->mc, "gw.state",
                                                            1, -1),
                         0);
        return det;
}

/* One batch over both state partitions while state partition 1 has no
 * leader (restore timeout 5 s): input partitions 0 and 2 (state partition
 * 0, readable, 2 with a snapshot) must come back as soon as their state
 * partition is read, not after the read of the other one times out; 1
 * and 3 (state partition 1) still come back unreadable at the timeout,
 * with their generations, their times reported from the request. The
 * healthy restores once waited the whole restore timeout with the rest. */
START_TEST(readable_restores_do_not_wait_for_an_unreadable_partition) {
        fx_t f;
        int32_t parts[4] = {0, 1, 2, 3};
        uint64_t gens[4] = {11, 12, 13, 14};
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det;
        gws_restore_t *r[4] = {NULL, NULL, NULL, NULL}, *x;
        int64_t t0, at[4];
        int i;

        det = fx_start_half_readable(&f, &raw, &rec);
        t0 = gws_mono_ms();
        ck_assert_int_eq(gws_changelog_restore(f.cl, parts, gens, NULL, 4), 0);
        for (i = 0; i < 4; i++) {
                x = done_wait(&f, 30000);
                ck_assert_msg(x != NULL, "restore %d of 4 never came back",
                              i + 1);
                ck_assert_int_ge(x->partition, 0);
                ck_assert_int_lt(x->partition, 4);
                ck_assert_ptr_null(r[x->partition]);
                r[x->partition] = x;
                at[x->partition] = gws_mono_ms() - t0;
        }
        for (i = 0; i < 4; i++)
                fprintf(stderr,
                        "readable_restores_do_not_wait_for_an_unreadable_"
                        "partition: partition %d: %s after %lld ms (its "
                        "ms %.0f), gen %llu, held %d\n",
                        i, gws_state_result_name(r[i]->result),
                        (long long)at[i], r[i]->ms,
                        (unsigned long long)r[i]->gen,
                        gws_changelog_held(f.cl, i));
        for (i = 0; i < 4; i++) {
                ck_assert_uint_eq(r[i]->gen, gens[i]);
                if (i % 2 == 0) {
                        ck_assert_msg(r[i]->result == (i == 2
                                                           ? GWS_STATE_OK
                                                           : GWS_STATE_MISSING),
                                      "partition %d: %s: %s", i,
                                      gws_state_result_name(r[i]->result),
                                      r[i]->reason);
                        /* generous: read in milliseconds */
                        ck_assert_msg(at[i] < 2000,
                                      "partition %d (readable) came back "
                                      "after %lld ms",
                                      i, (long long)at[i]);
                        ck_assert_int_eq(gws_changelog_held(f.cl, i), 0);
                } else {
                        ck_assert_msg(r[i]->result == GWS_STATE_UNREADABLE,
                                      "partition %d: %s", i,
                                      gws_state_result_name(r[i]->result));
                        ck_assert_msg(strstr(r[i]->reason,
                                             "\"gw.state\" [1] timed out") !=
                                          NULL,
                                      "reason: %s", r[i]->reason);
                        /* at the timeout from the request, not before,
                         * not a second read's timeout later */
                        ck_assert_msg(at[i] >= 4500 && r[i]->ms >= 4500,
                                      "partition %d failed after %lld ms",
                                      i, (long long)at[i]);
                        ck_assert_msg(at[i] < 9000,
                                      "partition %d failed after %lld ms",
                                      i, (long long)at[i]);
                        ck_assert_int_eq(gws_changelog_held(f.cl, i), 1);
                }
        }
        ck_assert_int_eq(r[2]->snap_offset, 10);
        for (i = 0; i < 4; i++)
                gws_restore_free(r[i]);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

/* A restore requested while the restore thread reads a state partition
 * without a leader for an earlier one (restore timeout 5 s): it must not
 * wait for that read's deadline, and the earlier one still fails 5 s
 * after its request, not later. It once waited for the other's read. */
START_TEST(restore_queued_during_an_unreadable_read_does_not_wait) {
        fx_t f;
        int32_t p1 = 1, p2 = 2;
        uint64_t g1 = 21, g2 = 22;
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det;
        gws_restore_t *r1 = NULL, *r2 = NULL, *x;
        int64_t t1, t2, at1 = 0, at2 = 0;
        int i;

        det = fx_start_half_readable(&f, &raw, &rec);
        t1 = gws_mono_ms();
        ck_assert_int_eq(gws_changelog_restore(f.cl, &p1, &g1, NULL, 1), 0);
        ck_assert_ptr_null(done_wait(&f, 1500));
        t2 = gws_mono_ms();
        ck_assert_int_eq(gws_changelog_restore(f.cl, &p2, &g2, NULL, 1), 0);
        for (i = 0; i < 2; i++) {
                x = done_wait(&f, 30000);
                ck_assert_msg(x != NULL, "restore %d of 2 never came back",
                              i + 1);
                if (x->partition == 1) {
                        r1 = x;
                        at1 = gws_mono_ms() - t1;
                } else {
                        r2 = x;
                        at2 = gws_mono_ms() - t2;
                }
        }
        ck_assert_ptr_nonnull(r1);
        ck_assert_ptr_nonnull(r2);
        fprintf(stderr,
                "restore_queued_during_an_unreadable_read_does_not_wait: "
                "partition 1: %s %lld ms after its request (%s); partition "
                "2: %s %lld ms after its request\n",
                gws_state_result_name(r1->result), (long long)at1,
                r1->reason, gws_state_result_name(r2->result),
                (long long)at2);
        ck_assert_uint_eq(r2->gen, g2);
        ck_assert_msg(r2->result == GWS_STATE_OK, "partition 2: %s: %s",
                      gws_state_result_name(r2->result), r2->reason);
        ck_assert_int_eq(r2->snap_offset, 10);
        /* generous: read in milliseconds */
        ck_assert_msg(at2 < 2000, "partition 2 came back after %lld ms",
                      (long long)at2);
        ck_assert_uint_eq(r1->gen, g1);
        ck_assert_int_eq(r1->result, GWS_STATE_UNREADABLE);
        ck_assert_msg(at1 >= 4500 && r1->ms >= 4500 && at1 < 9000,
                      "partition 1 failed after %lld ms", (long long)at1);
        ck_assert_int_eq(gws_changelog_held(f.cl, 1), 1);
        gws_restore_free(r1);
        gws_restore_free(r2);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

/* The restore thread stops within a poll or two at destroy while it
 * reads a state partition without a leader (restore timeout 20 s): the
 * destroy once waited for the read's deadline. */
START_TEST(destroy_does_not_wait_for_an_unreadable_read) {
        fx_t f;
        int32_t part = 1;
        uint64_t gen = 1;
        int64_t t;
        char err[256];

        fx_start(&f);
        ck_assert_int_eq(gws_config_set(f.cfg, "state.restore_timeout_ms",
                                        "20000", err, sizeof(err)),
                         0);
        ck_assert_int_eq(rd_kafka_mock_partition_set_leader(f.mc, "gw.state",
                                                            1, -1),
                         0);
        ck_assert_int_eq(gws_changelog_restore(f.cl, &part, &gen, NULL, 1),
                         0);
        ck_assert_ptr_null(done_wait(&f, 1000));
        t = gws_mono_ms();
        gws_changelog_destroy(f.cl);
        f.cl = NULL;
        t = gws_mono_ms() - t;
        fprintf(stderr,
                "destroy_does_not_wait_for_an_unreadable_read: destroy took "
                "%lld ms\n",
                (long long)t);
        /* generous: a poll waits 100 ms */
        ck_assert_msg(t < 5000, "destroy took %lld ms", (long long)t);
        fx_stop(&f);
}
END_TEST

/* Starts \p f with state.restore_timeout_ms 20 s and restores \p part
 * from its snapshot at offset 10 with the committed offset 60 while its
 * input partition has no leader: the catch-up from 10 to 60 fetches
 * nothing and would run to its deadline. Returns once the restore is in
 * its catch-up (no result after 1 s). */
static gws_detect_t *fx_stuck_catch_up(fx_t *f, int32_t part, gws_buf_t *raw,
                                       gws_buf_t *rec) {
        int64_t committed = 60;
        uint64_t gen = 1;
        gws_detect_t *det = fx_catch_up(f, part, "20000", raw, rec);
        ck_assert_int_eq(
            rd_kafka_mock_partition_set_leader(f->mc, "gw.raw", part, -1), 0);
        ck_assert_int_eq(
            gws_changelog_restore(f->cl, &part, &gen, &committed, 1), 0);
        ck_assert_ptr_null(done_wait(f, 1000));
        return det;
}

/* The restore thread stops at destroy while it catches up (restore
 * timeout 20 s, the input partition without a leader): the destroy once
 * waited for the catch-up's deadline. */
START_TEST(destroy_does_not_wait_for_a_catch_up) {
        fx_t f;
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det = fx_stuck_catch_up(&f, 2, &raw, &rec);
        int64_t t = gws_mono_ms();

        gws_changelog_destroy(f.cl);
        f.cl = NULL;
        t = gws_mono_ms() - t;
        fprintf(stderr,
                "destroy_does_not_wait_for_a_catch_up: destroy took %lld "
                "ms\n",
                (long long)t);
        /* generous: a poll waits 100 ms */
        ck_assert_msg(t < 5000, "destroy took %lld ms", (long long)t);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

/* ...nor for a lookup of the group's committed offset (unknown to the
 * caller) that the coordinator answers after 30 s: the lookup once waited
 * up to 10 s per call, until state.restore_timeout_ms (20 s). */
START_TEST(destroy_does_not_wait_for_a_committed_lookup) {
        fx_t f;
        int32_t part = 1;
        uint64_t gen = 1;
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det;
        char err[256];
        int64_t t;
        int i;

        fx_start(&f);
        ck_assert_int_eq(gws_config_set(f.cfg, "state.restore_timeout_ms",
                                        "20000", err, sizeof(err)),
                         0);
        det = gws_detect_new(f.cfg, part);
        ck_assert_ptr_nonnull(det);
        snapshot_put(&f, part, 10, 10, det, &raw, &rec);
        for (i = 0; i < 30; i++)
                ck_assert_int_eq(rd_kafka_mock_broker_push_request_error_rtts(
                                     f.mc, 1, 9 /* OffsetFetch */, 1,
                                     RD_KAFKA_RESP_ERR_NO_ERROR, 30000),
                                 0);
        ck_assert_int_eq(gws_changelog_restore(f.cl, &part, &gen, NULL, 1),
                         0);
        ck_assert_ptr_null(done_wait(&f, 1500));
        t = gws_mono_ms();
        gws_changelog_destroy(f.cl);
        f.cl = NULL;
        t = gws_mono_ms() - t;
        fprintf(stderr,
                "destroy_does_not_wait_for_a_committed_lookup: destroy took "
                "%lld ms\n",
                (long long)t);
        /* generous: a lookup waits 2 s at most per call */
        ck_assert_msg(t < 5000, "destroy took %lld ms", (long long)t);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

/* gws_changelog_stop() (the service's shutdown) cuts a catch-up where it
 * is: its result comes at once, marked stopped, with no detector (a
 * partial catch-up is not installed: the partition's snapshot on the
 * state topic stays its latest). The catch-up once ran on to its
 * deadline (20 s here) and was reported as a restore. */
START_TEST(stop_cuts_a_catch_up_where_it_is) {
        fx_t f;
        int32_t part = 2;
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det = fx_stuck_catch_up(&f, part, &raw, &rec);
        gws_changelog_stats_t st;
        gws_restore_t *r;
        int64_t t = gws_mono_ms();

        gws_changelog_stop(f.cl);
        r = done_wait(&f, 30000);
        t = gws_mono_ms() - t;
        fprintf(stderr,
                "stop_cuts_a_catch_up_where_it_is: result %lld ms after the "
                "stop: %s\n",
                (long long)t,
                !r ? "none" : r->stopped ? "stopped" : "not stopped");
        ck_assert_ptr_nonnull(r);
        ck_assert_msg(t < 5000, "result %lld ms after the stop",
                      (long long)t);
        ck_assert_int_eq(r->partition, part);
        ck_assert_int_eq(r->stopped, 1);
        ck_assert_ptr_null(r->det);
        gws_changelog_stats(f.cl, &st);
        ck_assert_int_eq(st.restores[GWS_STATE_OK], 0);
        gws_restore_free(r);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

/* `gwsieve state` while state partition 1 has no leader: input
 * partitions 0 and 2 (state partition 0) get their rows, 2 with its
 * snapshot, and 1 and 3 (state partition 1) a row "unreadable" with the
 * read's error, whether a snapshot is there unknown: one second in
 * (WATCH_ELECTION_MS), the metadata still saying there is no leader
 * (inspect_waits_out_an_election; the read once waited for its
 * timeout, "reading "gw.state" [1] timed out after 1516 ms: nothing
 * fetched"). The whole command once failed for the one partition
 * ("reading "gw.state" [1] timed out
 * ..."), no row printed. */
START_TEST(inspect_shows_an_unreadable_state_partition) {
        fx_t f;
        gws_state_view_t *rows = NULL;
        rd_kafka_conf_t *rc;
        char err[512], *text = NULL;
        size_t tlen = 0;
        FILE *fp;
        int i, n;

        fx_start(&f);
        put_snapshots_2_3(&f);
        ck_assert_int_eq(rd_kafka_mock_partition_set_leader(f.mc, "gw.state",
                                                            1, -1),
                         0);
        rc = gws_service_reader_conf(f.cfg, "gws-test-inspect", err,
                                     sizeof(err));
        ck_assert_msg(rc != NULL, "%s", err);
        n = gws_changelog_inspect(f.cfg, rc, 3000, &rows, err, sizeof(err));
        fprintf(stderr, "inspect_shows_an_unreadable_state_partition: %d "
                        "rows%s%s\n",
                n, n < 0 ? ": " : "", n < 0 ? err : "");
        ck_assert_msg(n == 4, "inspect: %d rows (%s)", n, err);
        fp = open_memstream(&text, &tlen);
        ck_assert_ptr_nonnull(fp);
        gws_changelog_print_inspect(f.cfg, rows, n, 0, fp);
        gws_changelog_print_inspect(f.cfg, rows, n, 1, fp);
        fclose(fp);
        fprintf(stderr, "%s", text);
        ck_assert_int_eq(rows[0].result, GWS_STATE_MISSING);
        ck_assert_msg(rows[2].result == GWS_STATE_OK, "partition 2: %s: %s",
                      gws_state_result_name(rows[2].result), rows[2].reason);
        ck_assert_int_eq(rows[2].info.offset, 10);
        for (i = 1; i < 4; i += 2) {
                ck_assert_msg(rows[i].result == GWS_STATE_UNREADABLE,
                              "partition %d: %s", i,
                              gws_state_result_name(rows[i].result));
                ck_assert_msg(strstr(rows[i].reason, "\"gw.state\" [1]") !=
                                  NULL,
                              "partition %d: %s", i, rows[i].reason);
        }
        /* the text: each row says it, with the reason; the size of a
         * record not read is unknown */
        ck_assert_msg(strstr(text, "        3 unreadable ") &&
                          strstr(text, "reading \"gw.state\" [1]: no leader") &&
                          strstr(text, "1 of 4 partitions have a usable "
                                       "snapshot; 2 unknown") &&
                          strstr(text, "\"partition\":3,\"snapshot\":"
                                       "\"unreadable\""),
                      "%s", text);
        ck_assert_msg(!strstr(text, "        3 unreadable            -"
                                    "          -          -          "
                                    "-         -          0"),
                      "%s", text);
        free(text);
        free(rows);
        fx_stop(&f);
}
END_TEST

/* A leader for \p partition of \p topic, \p after_ms from now (a
 * thread of the test: the election that ends a leaderless spell). */
typedef struct {
        rd_kafka_mock_cluster_t *mc;
        const char *topic;
        int32_t partition, leader;
        int after_ms;
} elect_t;

static void *elect_later(void *arg) {
        elect_t *e = arg;
        usleep((useconds_t)e->after_ms * 1000);
        rd_kafka_mock_partition_set_leader(e->mc, e->topic, e->partition,
                                           e->leader);
        return NULL;
}

/* `gwsieve state` during an election: state partition 1 has no leader
 * when the inspection starts and broker 1 leads it 400 ms later. Its
 * rows are read (3 with its snapshot), as the restores' reads do once
 * the partition has a leader again. The inspection once took the
 * metadata of its start for good: "reading "gw.state" [1]: no leader;
 * nothing fetched after 1 ms", the partition's rows unreadable and the
 * command's exit status 3. */
START_TEST(inspect_waits_out_an_election) {
        fx_t f;
        gws_state_view_t *rows = NULL;
        rd_kafka_conf_t *rc;
        elect_t e;
        pthread_t th;
        char err[512];
        int64_t t0, ms;
        int i, n;

        fx_start(&f);
        put_snapshots_2_3(&f);
        ck_assert_int_eq(rd_kafka_mock_partition_set_leader(f.mc, "gw.state",
                                                            1, -1),
                         0);
        e.mc = f.mc;
        e.topic = "gw.state";
        e.partition = 1;
        e.leader = 1;
        e.after_ms = 400;
        rc = gws_service_reader_conf(f.cfg, "gws-test-inspect", err,
                                     sizeof(err));
        ck_assert_msg(rc != NULL, "%s", err);
        t0 = gws_mono_ms();
        ck_assert_int_eq(pthread_create(&th, NULL, elect_later, &e), 0);
        n = gws_changelog_inspect(f.cfg, rc, 8000, &rows, err, sizeof(err));
        ms = gws_mono_ms() - t0;
        pthread_join(th, NULL);
        ck_assert_msg(n == 4, "inspect: %d rows (%s)", n, err);
        for (i = 0; i < 4; i++)
                fprintf(stderr,
                        "inspect_waits_out_an_election: partition %d %s "
                        "%s (%lld ms)\n",
                        i, gws_state_result_name(rows[i].result),
                        rows[i].reason, (long long)ms);
        ck_assert_int_eq(rows[0].result, GWS_STATE_MISSING);
        ck_assert_int_eq(rows[1].result, GWS_STATE_MISSING);
        ck_assert_msg(rows[3].result == GWS_STATE_OK, "partition 3: %s: %s",
                      gws_state_result_name(rows[3].result), rows[3].reason);
        ck_assert_int_eq(rows[3].info.offset, 11);
        ck_assert_int_eq(rows[2].result, GWS_STATE_OK);
        free(rows);
        fx_stop(&f);
}
END_TEST

/* Runs `gwsieve state`'s library part on \p f with \p timeout_ms,
 * printing the rows. @returns them (4: gw.raw's partitions); \p ms: how
 * long it took. */
static gws_state_view_t *inspect_timed(fx_t *f, const char *name,
                                       int timeout_ms, int64_t *ms) {
        gws_state_view_t *rows = NULL;
        rd_kafka_conf_t *rc;
        char err[512];
        int64_t t0;
        int n;

        rc = gws_service_reader_conf(f->cfg, "gws-test-inspect", err,
                                     sizeof(err));
        ck_assert_msg(rc != NULL, "%s", err);
        t0 = gws_mono_ms();
        n = gws_changelog_inspect(f->cfg, rc, timeout_ms, &rows, err,
                                  sizeof(err));
        *ms = gws_mono_ms() - t0;
        fprintf(stderr, "%s: %d rows after %lld ms (timeout %d ms)%s%s\n",
                name, n, (long long)*ms, timeout_ms, n < 0 ? ": " : "",
                n < 0 ? err : "");
        ck_assert_msg(n == 4, "inspect: %d rows (%s)", n, err);
        gws_changelog_print_inspect(f->cfg, rows, n, 0, stderr);
        return rows;
}

/* `gwsieve state` while broker 2, the leader of state partition 1 (where
 * input partitions 1 and 3 keep their snapshots), is down, with a 10 s
 * timeout: rows 1 and 3 say unreadable, naming the state partition and
 * the broker, once the consumer has failed to connect to it twice (in
 * well under a second); the other rows are as usual. The read once waited
 * for the whole timeout for the partition it could not fetch, although
 * the other one was read in milliseconds (10.0 s). */
START_TEST(inspect_reports_a_state_partition_whose_leader_is_down) {
        fx_t f;
        gws_state_view_t *rows;
        int64_t ms;
        int i;

        fx_start_brokers(&f, 2, 0x1);
        put_snapshots_2_3(&f);
        group_commit(&f, 2, 10);
        ck_assert_int_eq(rd_kafka_mock_broker_set_down(f.mc, 2), 0);
        rows = inspect_timed(
            &f, "inspect_reports_a_state_partition_whose_leader_is_down",
            10000, &ms);
        /* generous: the read of the readable one is done in
         * milliseconds, the broker found down within a second */
        ck_assert_msg(ms < 5000, "inspect took %lld ms", (long long)ms);
        ck_assert_int_eq(rows[0].result, GWS_STATE_MISSING);
        ck_assert_msg(rows[2].result == GWS_STATE_OK, "partition 2: %s: %s",
                      gws_state_result_name(rows[2].result), rows[2].reason);
        ck_assert_int_eq(rows[2].info.offset, 10);
        ck_assert_int_eq(rows[2].committed, 10);
        ck_assert_int_eq(rows[2].end, 0);
        for (i = 1; i < 4; i += 2) {
                ck_assert_msg(rows[i].result == GWS_STATE_UNREADABLE,
                              "partition %d: %s", i,
                              gws_state_result_name(rows[i].result));
                ck_assert_msg(strstr(rows[i].reason, "\"gw.state\" [1]") &&
                                  strstr(rows[i].reason, "broker 2"),
                              "partition %d: %s", i, rows[i].reason);
        }
        free(rows);
        fx_stop(&f);
}
END_TEST

/* `gwsieve state` ends by its timeout (3 s) while broker 2, the leader of
 * input partitions 1 and 3 and the group's coordinator, is down: the
 * rows of the state topic (on broker 1) are as usual, the committed
 * offsets unknown (no answer within the timeout), the ends of input
 * partitions 0 and 2 known, those of 1 and 3 not. The command once hung
 * until the broker was back: librdkafka 2.0.2's
 * rd_kafka_query_watermark_offsets() does not return while the
 * partition's leader is down, whatever its timeout (librdkafka issue
 * #2588); before it, the committed offsets' lookup had the whole timeout
 * again after the read. */
START_TEST(inspect_ends_by_its_timeout_with_a_broker_down) {
        fx_t f;
        gws_buf_t raw = {0}, rec = {0};
        gws_detect_t *det;
        gws_state_view_t *rows;
        int64_t ms;
        int i;

        fx_start_brokers(&f, 2, 0x2 | 0x4);
        det = gws_detect_new(f.cfg, 2);
        ck_assert_ptr_nonnull(det);
        snapshot_put(&f, 2, 10, 10, det, &raw, &rec);
        input_fill(&f, 2, 7, "{}", 2);
        ck_assert_int_eq(rd_kafka_mock_broker_set_down(f.mc, 2), 0);
        rows = inspect_timed(
            &f, "inspect_ends_by_its_timeout_with_a_broker_down", 3000, &ms);
        /* generous: polls of 100 ms */
        ck_assert_msg(ms < 3000 + 1500, "inspect took %lld ms",
                      (long long)ms);
        ck_assert_msg(rows[2].result == GWS_STATE_OK, "partition 2: %s: %s",
                      gws_state_result_name(rows[2].result), rows[2].reason);
        ck_assert_int_eq(rows[2].info.offset, 10);
        for (i = 0; i < 4; i++) {
                if (i != 2)
                        ck_assert_int_eq(rows[i].result, GWS_STATE_MISSING);
                ck_assert_int_eq(rows[i].committed, -1);
        }
        ck_assert_int_eq(rows[0].end, 0);
        ck_assert_int_eq(rows[2].end, 7);
        ck_assert_int_eq(rows[1].end, -1);
        ck_assert_int_eq(rows[3].end, -1);
        free(rows);
        gws_detect_destroy(det);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        fx_stop(&f);
}
END_TEST

/* How `gwsieve state` prints a committed offset it could not look up
 * (a refused or timed-out OffsetFetch) next to one known to be absent:
 * "?" and a plan that says it is unknown, JSON null with the error, and
 * a line that counts them; "-" and "no committed offset" only for the
 * absent one (both once printed "-" and that plan). */
START_TEST(print_inspect_committed_unknown) {
        gws_config_t *cfg = gws_config_new();
        gws_state_view_t rows[2];
        char *text = NULL;
        size_t tlen = 0;
        FILE *fp;
        int i;

        ck_assert_ptr_nonnull(cfg);
        memset(rows, 0, sizeof(rows));
        for (i = 0; i < 2; i++) {
                rows[i].partition = i;
                rows[i].result = GWS_STATE_OK;
                rows[i].info.offset = 400;
                rows[i].info.delivered = 250;
                rows[i].info.written_ms = gws_now_ms();
                rows[i].committed = -1;
                rows[i].end = 600;
        }
        snprintf(rows[1].committed_error, sizeof(rows[1].committed_error),
                 "Broker: Group authorization failed");
        fp = open_memstream(&text, &tlen);
        ck_assert_ptr_nonnull(fp);
        gws_changelog_print_inspect(cfg, rows, 2, 0, fp);
        gws_changelog_print_inspect(cfg, rows, 2, 1, fp);
        fclose(fp);
        fprintf(stderr, "%s", text);
        ck_assert_msg(strstr(text, "       250          -        600") &&
                          strstr(text, "restores; no committed offset") &&
                          strstr(text, "       250          ?        600") &&
                          strstr(text, "restores; committed offset unknown") &&
                          strstr(text, "the committed offsets of 1 "
                                       "partition(s) are unknown (\"?\"): "
                                       "Broker: Group authorization failed") &&
                          strstr(text, "\"partition\":0,\"snapshot\":\"ok\","
                                       "\"offset\":400,\"delivered\":250,"
                                       "\"committed\":-1,") &&
                          strstr(text, "\"committed\":null,\"committed_error"
                                       "\":\"Broker: Group authorization "
                                       "failed\",\"end\":600"),
                      "%s", text);
        free(text);
        gws_config_destroy(cfg);
}
END_TEST

Suite *gws_changelog_suite(void) {
        Suite *s = suite_create("changelog");
        TCase *tc = tcase_create("mock");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, restore_without_snapshot_is_cold);
        tcase_add_test(tc, inspect_takes_only_the_restore_key);
        tcase_add_test(tc, snapshot_is_restored);
        tcase_add_test(tc, restore_result_survives_allocation_failure);
        tcase_add_test(tc, catch_up_starts_at_the_log_start);
        tcase_add_test(tc, restore_takes_the_committed_offset_it_is_given);
        tcase_add_test(tc, committed_lookup_ends_at_its_deadline);
        tcase_add_test(tc, catch_up_cut_short_ends_below_the_commit);
        tcase_add_test(tc, restore_has_one_deadline);
        tcase_add_test(tc, catch_up_ends_at_its_deadline_while_events_flow);
        tcase_add_test(tc, unreadable_state_topic_is_not_corrupt);
        tcase_add_test(tc, snapshot_survives_an_unreadable_restore);
        tcase_add_test(tc, restore_read_ends_at_its_deadline);
        tcase_add_test(tc, restore_read_uses_its_whole_deadline);
        tcase_add_test(tc, unreadable_state_partition_fails_only_its_restores);
        tcase_add_test(tc,
                       readable_restores_do_not_wait_for_an_unreadable_partition);
        tcase_add_test(tc,
                       restore_queued_during_an_unreadable_read_does_not_wait);
        tcase_add_test(tc, destroy_does_not_wait_for_an_unreadable_read);
        tcase_add_test(tc, destroy_does_not_wait_for_a_catch_up);
        tcase_add_test(tc, destroy_does_not_wait_for_a_committed_lookup);
        tcase_add_test(tc, stop_cuts_a_catch_up_where_it_is);
        tcase_add_test(tc, inspect_shows_an_unreadable_state_partition);
        tcase_add_test(tc, inspect_waits_out_an_election);
        tcase_add_test(tc, print_inspect_committed_unknown);
        tcase_add_test(tc, catch_up_refused_stops_at_once);
        tcase_add_test(tc,
                       inspect_reports_a_state_partition_whose_leader_is_down);
        tcase_add_test(tc, inspect_ends_by_its_timeout_with_a_broker_down);
        suite_add_tcase(s, tc);
        return s;
}
