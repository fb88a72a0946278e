/* test_pipeline.c - one message through the pipeline, and replay.
 *
 * Allocation failures: the test binary is linked with
 * -Wl,--wrap=realloc (as with calloc, tests/test_changelog.c), so every
 * realloc() of gwsieve's code goes through __wrap_realloc(): a gws_buf_t
 * that grows, a JSON tape. While realloc_fails is set, reallocs of the
 * thread that set it fail (test_realloc_fail(): other suites arm it too,
 * suites.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "gwsieve/pipeline.h"
#include "gwsieve/record.h"
#include "gwsieve/replay.h"
#include "suites.h"

void *__real_realloc(void *p, size_t size);
void *__wrap_realloc(void *p, size_t size);

static int realloc_fails;  /* atomic: reallocs left to fail, -1 all */
static int realloc_failed; /* atomic: how many failed */
static pthread_t realloc_thread;

void *__wrap_realloc(void *p, size_t size) {
        int left = __atomic_load_n(&realloc_fails, __ATOMIC_ACQUIRE);
        if (left && pthread_equal(pthread_self(), realloc_thread)) {
                if (left > 0) /* only this thread writes it meanwhile */
                        __atomic_store_n(&realloc_fails, left - 1,
                                         __ATOMIC_RELEASE);
                __atomic_add_fetch(&realloc_failed, 1, __ATOMIC_RELAXED);
                return NULL;
        }
        return __real_realloc(p, size);
}

/* From now on the next \p n reallocs of this thread fail (-1: all of
 * them; 0: none, realloc_failed kept). Other suites use it (suites.h). */
void test_realloc_fail(int n) {
        realloc_thread = pthread_self();
        if (n)
                __atomic_store_n(&realloc_failed, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&realloc_fails, n, __ATOMIC_RELEASE);
}

int test_realloc_failed(void) {
        return __atomic_load_n(&realloc_failed, __ATOMIC_RELAXED);
}

typedef struct {
        int n[GWS_SINK__CNT];
        json_t *last[GWS_SINK__CNT];
        size_t len[GWS_SINK__CNT]; /* of the last record */
        int fail;
} cap_t;

static int capture(void *opaque, gws_sink_t sink, const char *key,
                   size_t keylen, const char *val, size_t len) {
        cap_t *c = opaque;
        json_error_t e;
        json_t *j;
        (void)key;
        (void)keylen;
        if (c->fail)
                return -1;
        /* duplicate member names are refused: no record has any */
        j = json_loadb(val, len, JSON_REJECT_DUPLICATES, &e);
        ck_assert_msg(j != NULL, "%s record is not JSON: %s: %.*s",
                      gws_sink2str(sink), e.text, (int)(len < 300 ? len : 300),
                      val);
        json_decref(c->last[sink]);
        c->last[sink] = j;
        c->len[sink] = len;
        c->n[sink]++;
        return 0;
}

static gws_config_t *cfg;
static gws_pipeline_t *pl;
static gws_detect_t *det;
static cap_t cap;
static char err[512];

static void setup(void) {
        cfg = gws_config_new();
        gws_config_set(cfg, "filter.normal_sample_rate", "1", err,
                       sizeof(err));
        pl = gws_pipeline_new(cfg, err, sizeof(err));
        det = gws_detect_new(cfg, 0);
        memset(&cap, 0, sizeof(cap));
}
/* The fixture's pipeline and detector again, for \p json loaded over
 * the configuration. */
static void reconfigure(const char *json) {
        gws_pipeline_destroy(pl);
        gws_detect_destroy(det);
        ck_assert_msg(gws_config_load_string(cfg, json, err, sizeof(err)) ==
                          0,
                      "%s", err);
        pl = gws_pipeline_new(cfg, err, sizeof(err));
        ck_assert_msg(pl != NULL, "%s", err);
        det = gws_detect_new(cfg, 0);
        ck_assert_ptr_nonnull(det);
}

static void teardown(void) {
        int i;
        test_realloc_fail(0); /* a test that failed armed (CK_FORK=no) */
        for (i = 0; i < GWS_SINK__CNT; i++)
                json_decref(cap.last[i]);
        gws_detect_destroy(det);
        gws_pipeline_destroy(pl);
        gws_config_destroy(cfg);
}

static gws_outcome_t run1(const char *v, size_t len) {
        gws_input_t in = {v, len, "gw-1", 4, "gw.raw", 3, 42, 0, 0};
        return gws_pipeline_process(pl, det, &in, capture, &cap);
}

#define GOOD                                                                   \
        "{\"id\":\"e1\",\"ts\":\"2026-01-01T00:00:00Z\",\"gateway_id\":"        \
        "\"gw-1\",\"provider\":\"openai\",\"model\":\"gpt-4o\",\"status\":200," \
        "\"latency_ms\":10.5,\"x\":{\"y\":[1,\"\\u00e9\"]},\"sieve\":\"old\"}"

START_TEST(retained_is_input_plus_sieve) {
        json_t *in, *sieve;
        json_error_t e;
        ck_assert_int_eq(run1(GOOD, strlen(GOOD)), GWS_OUT_KEPT);
        ck_assert_int_eq(cap.n[GWS_SINK_RETAINED], 1);
        sieve = json_object_get(cap.last[GWS_SINK_RETAINED], "sieve");
        ck_assert(json_is_object(sieve));
        ck_assert_str_eq(json_string_value(json_object_get(sieve, "kept")),
                         "sample");
        ck_assert(json_is_array(json_object_get(sieve, "reasons")));
        ck_assert(json_is_number(json_object_get(sieve, "score")));
        /* everything else is the input unchanged (its "sieve" replaced) */
        in = json_loads(GOOD, 0, &e);
        json_object_del(in, "sieve");
        json_object_del(cap.last[GWS_SINK_RETAINED], "sieve");
        ck_assert(json_equal(in, cap.last[GWS_SINK_RETAINED]));
        json_decref(in);
}
END_TEST

START_TEST(dropped_and_errors) {
        const char *err503 =
            "{\"id\":\"e2\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
            "\"model\":\"m\",\"status\":503,\"latency_ms\":1}";
        gws_pipeline_stats_t st;
        gws_config_set(cfg, "filter.normal_sample_rate", "0", err,
                       sizeof(err));
        ck_assert_int_eq(run1(GOOD, strlen(GOOD)), GWS_OUT_DROPPED);
        ck_assert_int_eq(cap.n[GWS_SINK_RETAINED], 0);
        ck_assert_int_eq(run1(err503, strlen(err503)), GWS_OUT_KEPT);
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(cap.last[GWS_SINK_RETAINED],
                                             "sieve"),
                             "kept")),
                         "error");
        memset(&st, 0, sizeof(st));
        gws_pipeline_stats_add(pl, &st);
        ck_assert_uint_eq(st.in, 2);
        ck_assert_uint_eq(st.kept[GWS_KEEP_NONE], 1);
        ck_assert_uint_eq(st.kept[GWS_KEEP_ERROR], 1);
}
END_TEST

/* Stats read while a worker processes (the service renders /metrics so):
 * gwsieve_events_sampled_out_total is kept[GWS_KEEP_NONE] less
 * dropped_by_rule, so no snapshot may hold more drops by rule than
 * unkept events. With every normal event kept (sample rate 1) and a drop
 * rule on each, the two move together: a snapshot that read kept[0]
 * before an event and dropped_by_rule after it showed sampled_out at
 * 2^64 - 1, and Prometheus took the next scrape for a counter reset. */
static volatile int drop_loop_stop;

static int discard(void *opaque, gws_sink_t sink, const char *key,
                   size_t keylen, const char *val, size_t len) {
        (void)opaque;
        (void)sink;
        (void)key;
        (void)keylen;
        (void)val;
        (void)len;
        return 0;
}

static void *drop_loop(void *arg) {
        static const char ev[] =
            "{\"id\":\"d\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
            "\"model\":\"m\",\"status\":200,\"latency_ms\":1,"
            "\"user_agent\":\"kube-probe\"}";
        gws_input_t in = {ev, sizeof(ev) - 1, "g", 1, "gw.raw", 3, 0, 0, 0};
        (void)arg;
        while (!__atomic_load_n(&drop_loop_stop, __ATOMIC_RELAXED)) {
                in.offset++;
                gws_pipeline_process(pl, det, &in, discard, NULL);
        }
        return NULL;
}

START_TEST(stats_never_show_more_drops_than_unkept) {
        gws_pipeline_stats_t st;
        pthread_t thr;
        long i, bad = -1;
        reconfigure("{\"filter\":{\"normal_sample_rate\":1,\"rules\":["
                    "{\"name\":\"hc\",\"when\":{\"field\":\"user_agent\","
                    "\"equals\":\"kube-probe\"},\"action\":\"drop\","
                    "\"force\":true}]}}");
        drop_loop_stop = 0;
        ck_assert_int_eq(pthread_create(&thr, NULL, drop_loop, NULL), 0);
        /* the race showed within ~600k snapshots in every run (0.3 s) */
        for (i = 0; i < 2000000 && bad < 0; i++) {
                memset(&st, 0, sizeof(st));
                gws_pipeline_stats_add(pl, &st);
                if (st.kept[GWS_KEEP_NONE] < st.dropped_by_rule)
                        bad = i;
        }
        __atomic_store_n(&drop_loop_stop, 1, __ATOMIC_RELAXED);
        pthread_join(thr, NULL);
        ck_assert_msg(bad < 0,
                      "snapshot %ld: kept[none] %llu < dropped_by_rule %llu "
                      "(sampled out %llu)",
                      bad, (unsigned long long)st.kept[GWS_KEEP_NONE],
                      (unsigned long long)st.dropped_by_rule,
                      (unsigned long long)(st.kept[GWS_KEEP_NONE] -
                                           st.dropped_by_rule));
        memset(&st, 0, sizeof(st));
        gws_pipeline_stats_add(pl, &st);
        ck_assert_uint_gt(st.dropped_by_rule, 0);
        ck_assert_uint_eq(st.kept[GWS_KEEP_NONE], st.dropped_by_rule);
}
END_TEST

/* The same, with drops by rule and normal events not sampled in turn: the
 * sampled-out count (kept[GWS_KEEP_NONE] - dropped_by_rule, as the
 * service renders it) must never go down from one snapshot to the next,
 * or Prometheus takes the counter for reset (a rate() spike of its whole
 * value). Two counters read one after the other count a drop between
 * the reads in kept[] only, as sampled out, and the next snapshot takes
 * it back. */
static void *drop_sample_loop(void *arg) {
        static const char ev[] =
            "{\"id\":\"d\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
            "\"model\":\"m\",\"status\":200,\"latency_ms\":1,"
            "\"user_agent\":\"kube-probe\"}";
        static const char ev2[] =
            "{\"id\":\"s\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
            "\"model\":\"m\",\"status\":200,\"latency_ms\":1}";
        gws_input_t in = {ev, sizeof(ev) - 1, "g", 1, "gw.raw", 3, 0, 0, 0};
        gws_input_t in2 = {ev2, sizeof(ev2) - 1, "g", 1, "gw.raw", 3, 0, 0, 0};
        (void)arg;
        while (!__atomic_load_n(&drop_loop_stop, __ATOMIC_RELAXED)) {
                in.offset += 2;
                gws_pipeline_process(pl, det, &in, discard, NULL);
                in2.offset = in.offset + 1;
                gws_pipeline_process(pl, det, &in2, discard, NULL);
        }
        return NULL;
}

START_TEST(stats_sampled_out_never_goes_down) {
        gws_pipeline_stats_t st;
        pthread_t thr;
        uint64_t prev = 0, cur = 0, until;
        long i, bad = -1;
        reconfigure("{\"filter\":{\"normal_sample_rate\":0,\"rules\":["
                    "{\"name\":\"hc\",\"when\":{\"field\":\"user_agent\","
                    "\"equals\":\"kube-probe\"},\"action\":\"drop\","
                    "\"force\":true}]}}");
        drop_loop_stop = 0;
        ck_assert_int_eq(pthread_create(&thr, NULL, drop_sample_loop, NULL),
                         0);
        /* it went down within 2.5M snapshots in every run (0.6 s); at
         * most 2.5 s of them (ASan on a loaded machine took more than the
         * test's 4 s for 5M) */
        until = gws_mono_ns() + 2500000000ULL;
        for (i = 0; i < 5000000 && bad < 0 &&
                    ((i & 4095) || gws_mono_ns() < until);
             i++) {
                memset(&st, 0, sizeof(st));
                gws_pipeline_stats_add(pl, &st);
                cur = st.kept[GWS_KEEP_NONE] - st.dropped_by_rule;
                if (cur < prev)
                        bad = i;
                else
                        prev = cur;
        }
        __atomic_store_n(&drop_loop_stop, 1, __ATOMIC_RELAXED);
        pthread_join(thr, NULL);
        ck_assert_msg(bad < 0, "snapshot %ld: sampled out %llu after %llu",
                      bad, (unsigned long long)cur,
                      (unsigned long long)prev);
        memset(&st, 0, sizeof(st));
        gws_pipeline_stats_add(pl, &st);
        ck_assert_uint_gt(st.dropped_by_rule, 0);
        ck_assert_uint_gt(st.kept[GWS_KEEP_NONE], st.dropped_by_rule);
}
END_TEST

static const struct {
        const char *in;
        size_t len;
        const char *reason;
        int base64;
} dlq[] = {
    {"not json", 8, "invalid_json", 0},
    {"[1]", 3, "not_object", 0},
    {"{\"id\":\"\xff\"}", 10, "invalid_utf8", 1},
    {"{\"id\":\"e\"}", 10, "missing_field", 0},
    {"", 0, "empty", 0},
    /* regression (fuzzer): NUL bytes must not reach consumers as \u0000 */
    {"\0\0[),2]", 7, "invalid_json", 1},
};

START_TEST(dlq_keeps_original_and_reason) {
        json_t *d, *src;
        ck_assert_int_eq(run1(dlq[_i].in, dlq[_i].len), GWS_OUT_DLQ);
        ck_assert_int_eq(cap.n[GWS_SINK_DLQ], 1);
        d = cap.last[GWS_SINK_DLQ];
        ck_assert_str_eq(json_string_value(json_object_get(d, "reason")),
                         dlq[_i].reason);
        ck_assert_ptr_nonnull(json_object_get(d, "detail"));
        src = json_object_get(d, "source");
        ck_assert_str_eq(json_string_value(json_object_get(src, "topic")),
                         "gw.raw");
        ck_assert_int_eq(json_integer_value(json_object_get(src, "partition")),
                         3);
        ck_assert_int_eq(json_integer_value(json_object_get(src, "offset")),
                         42);
        if (dlq[_i].base64) {
                ck_assert_ptr_null(json_object_get(d, "payload"));
                ck_assert(json_is_string(json_object_get(d,
                                                         "payload_base64")));
        } else {
                json_t *p = json_object_get(d, "payload");
                ck_assert_uint_eq(json_string_length(p), dlq[_i].len);
                ck_assert_int_eq(memcmp(json_string_value(p), dlq[_i].in,
                                        dlq[_i].len), 0);
        }
}
END_TEST

START_TEST(sink_failure_is_reported) {
        cap.fail = 1;
        ck_assert_int_eq(run1(GOOD, strlen(GOOD)), GWS_OUT_FAILED);
        ck_assert_int_eq(run1("x", 1), GWS_OUT_FAILED);
}
END_TEST


START_TEST(trim_truncate_redact) {
        const char *in =
            "{\"id\":\"t1\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
            "\"model\":\"m\",\"status\":500,\"latency_ms\":1,"
            "\"client_ip\":\"10.1.2.3\","
            "\"metadata\":{\"keep\":1,\"internal\":{\"x\":1}},"
            "\"user_id\":\"jane@example.com\","
            "\"request\":{\"messages\":[{\"content\":\"key sk-\\u0070roj-"
            "abcdefghijklmnopqrstuvwxyz \\u00e9\\u00e9\\u00e9"
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}]},"
            "\"response\":\"ok\"}";
        json_t *out, *req;
        const char *txt;
        gws_pipeline_destroy(pl);
        ck_assert_int_eq(
            gws_config_load_string(
                cfg,
                "{\"trim\":{\"deny\":[\"metadata.internal\"],"
                "\"max_body_bytes\":40},\"redact\":{\"ip_truncate\":true}}",
                err, sizeof(err)),
            0);
        pl = gws_pipeline_new(cfg, err, sizeof(err));
        ck_assert_msg(pl != NULL, "%s", err);
        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_KEPT);
        out = cap.last[GWS_SINK_RETAINED];
        /* deny path removed, its sibling kept */
        ck_assert_ptr_null(json_object_get(json_object_get(out, "metadata"),
                                           "internal"));
        ck_assert_ptr_nonnull(json_object_get(json_object_get(out, "metadata"),
                                              "keep"));
        /* e-mail in a top-level string redacted, IP truncated */
        ck_assert_str_eq(json_string_value(json_object_get(out, "user_id")),
                         "[REDACTED:email]");
        ck_assert_str_eq(json_string_value(json_object_get(out, "client_ip")),
                         "10.1.2.0");
        /* the long body became a truncated string, redacted before the
         * cut (the key was written with a \u escape), valid UTF-8 */
        req = json_object_get(out, "request");
        ck_assert(json_is_string(req));
        txt = json_string_value(req);
        ck_assert_ptr_null(strstr(txt, "abcdefghijklmnopqrstuvwxyz"));
        ck_assert_ptr_nonnull(strstr(txt, "...[truncated "));
        ck_assert_int_eq(json_integer_value(json_object_get(
                             json_object_get(json_object_get(out, "sieve"),
                                             "truncated"),
                             "request")) > 40,
                         1);
        /* short body untouched */
        ck_assert_str_eq(json_string_value(json_object_get(out, "response")),
                         "ok");
}
END_TEST

/* A body that is a string is cut as text: decoded, redacted, cut at a
 * character, marked. It was cut as JSON text and encoded again: the
 * record showed its quotes and escapes ("\"line 1\\nline 2...") and a
 * cut could fall inside an escape ("\u00"). */
START_TEST(string_body_truncated_as_text) {
        const char *in =
            "{\"id\":\"t2\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
            "\"model\":\"m\",\"status\":500,\"latency_ms\":1,"
            "\"response\":\"line 1\\nline 2 \\\"q\\\" \\u00e9\\u00e9\\u00e9"
            "\\u00e9\\u00e9\\u00e9\\u00e9 jane@example.com "
            "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\"}";
        const char *txt;
        size_t n;
        gws_pipeline_destroy(pl);
        ck_assert_int_eq(gws_config_load_string(
                             cfg, "{\"trim\":{\"max_body_bytes\":21}}", err,
                             sizeof(err)),
                         0);
        pl = gws_pipeline_new(cfg, err, sizeof(err));
        ck_assert_msg(pl != NULL, "%s", err);
        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_KEPT);
        txt = json_string_value(
            json_object_get(cap.last[GWS_SINK_RETAINED], "response"));
        ck_assert_ptr_nonnull(txt);
        /* 21 bytes of text: "line 1\nline 2 "q" é" + the next é cut */
        ck_assert_msg(!strncmp(txt, "line 1\nline 2 \"q\" \xc3\xa9...", 23),
                      "%s", txt);
        ck_assert_ptr_nonnull(strstr(txt, "...[truncated "));
        n = strlen(txt);
        ck_assert(gws_utf8_valid(txt, n));
        /* redacted before the cut, whatever is left of it */
        ck_assert_ptr_null(strstr(txt, "jane@"));
}
END_TEST

/* A body longer than trim.max_body_bytes as written but not once
 * rendered (whitespace, escapes, a long secret replaced) is written as
 * it is, and its redactions and trimmed members are counted once: the
 * body was rendered for the cut, counted, then written again and
 * counted again. */
START_TEST(body_not_cut_counted_once) {
        const char *in =
            "{\"id\":\"t3\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
            "\"model\":\"m\",\"status\":500,\"latency_ms\":1,"
            "\"request\":{\"user\":     \"jane@example.com\",         "
            "\"internal\":      1,        \"pad\":                   \"x\"},"
            "\"response\":\"bob@example.com \\u00e9\\u00e9\\u00e9\\u00e9"
            "\\u00e9\\u00e9\\u00e9\\u00e9\"}";
        gws_pipeline_stats_t st;
        json_t *out;
        reconfigure("{\"trim\":{\"deny\":[\"request.internal\"],"
                    "\"max_body_bytes\":60}}");
        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_KEPT);
        out = cap.last[GWS_SINK_RETAINED];
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(out, "request"), "user")),
                         "[REDACTED:email]");
        ck_assert_str_eq(json_string_value(json_object_get(out, "response")),
                         "[REDACTED:email] \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
        memset(&st, 0, sizeof(st));
        gws_pipeline_stats_add(pl, &st);
        ck_assert_msg(st.rec.redactions[GWS_RK_EMAIL] == 2 &&
                          st.rec.fields_trimmed == 1 &&
                          st.rec.bodies_truncated == 0,
                      "2 e-mails and 1 member removed, no body cut; "
                      "counted %llu e-mails, %llu members removed, %llu "
                      "bodies truncated",
                      (unsigned long long)st.rec.redactions[GWS_RK_EMAIL],
                      (unsigned long long)st.rec.fields_trimmed,
                      (unsigned long long)st.rec.bodies_truncated);
}
END_TEST

/* Required fields stay whatever trim.deny says (the README's promise):
 * a deny list was checked before them and removed "id" and "model". A
 * rule name that does not fit "kept" is cut at a character: it was cut
 * at byte 160, inside a UTF-8 sequence, and the record was not UTF-8. */
START_TEST(deny_keeps_required_and_rule_name_cut_at_a_character) {
        json_t *out;
        char conf[2048];
        size_t n;
        int i;
        n = (size_t)snprintf(conf, sizeof(conf),
                             "{\"trim\":{\"deny\":[\"model\",\"id\","
                             "\"status\"]},\"filter\":{\"rules\":[{\"name\":"
                             "\"x");
        for (i = 0; i < 23; i++)
                n += (size_t)snprintf(conf + n, sizeof(conf) - n,
                                      "\xd0\xbf\xd1\x80\xd0\xb0\xd0\xb2"
                                      "\xd0\xb8\xd0\xbb\xd0\xbe");
        snprintf(conf + n, sizeof(conf) - n,
                 "\",\"when\":{\"field\":\"gateway_id\",\"equals\":\"gw-1\"},"
                 "\"action\":\"keep\"}]}}");
        gws_pipeline_destroy(pl);
        ck_assert_int_eq(gws_config_load_string(cfg, conf, err, sizeof(err)),
                         0);
        pl = gws_pipeline_new(cfg, err, sizeof(err));
        ck_assert_msg(pl != NULL, "%s", err);
        /* capture() fails the test when a record is not JSON (jansson
         * refuses invalid UTF-8) */
        ck_assert_int_eq(run1(GOOD, strlen(GOOD)), GWS_OUT_KEPT);
        out = cap.last[GWS_SINK_RETAINED];
        ck_assert_str_eq(json_string_value(json_object_get(out, "id")), "e1");
        ck_assert_str_eq(json_string_value(json_object_get(out, "model")),
                         "gpt-4o");
        ck_assert_int_eq(json_integer_value(json_object_get(out, "status")),
                         200);
        ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(
                                         json_object_get(out, "sieve"),
                                         "kept")),
                                     "rule:x"));
}
END_TEST

/* trim.allow keeps only its paths and their subtrees: a value on the way
 * to an allowed path is kept only as the container that leads there.
 * Under "request.model" a request body that is a string has no such
 * path, and the scalars of an array on the way ("messages": ["raw
 * prompt", {...}]) none either, nor a "labels" string under
 * "labels.team"; all were written whole. */
START_TEST(allow_keeps_only_its_paths) {
        const char *in[] = {
            "{\"id\":\"al1\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
            "\"model\":\"m\",\"status\":500,\"latency_ms\":1,"
            "\"request\":\"the whole prompt, jane's secret plan\","
            "\"metadata\":{\"tier\":\"gold\",\"a\":\"x\",\"n\":null}}",
            "{\"id\":\"al2\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
            "\"model\":\"m\",\"status\":500,\"latency_ms\":1,"
            "\"request\":{\"model\":\"gpt-4o\",\"temperature\":0.5,"
            "\"messages\":[\"a raw prompt\",{\"role\":\"user\",\"content\":"
            "\"c\"},[\"nested prompt\",{\"role\":\"system\"}],7]},"
            "\"labels\":\"not an object\"}"};
        gws_pipeline_stats_t st;
        json_t *out, *meta = json_pack("{ss}", "tier", "gold");
        json_t *req = json_loads("{\"model\":\"gpt-4o\",\"messages\":"
                                 "[{\"role\":\"user\"},[{\"role\":"
                                 "\"system\"}]]}",
                                 0, NULL);
        char *s;
        int ok;
        reconfigure("{\"trim\":{\"allow\":[\"request.model\","
                    "\"request.messages.role\",\"metadata.tier\","
                    "\"labels.team\"]}}");
        ck_assert_int_eq(run1(in[0], strlen(in[0])), GWS_OUT_KEPT);
        out = cap.last[GWS_SINK_RETAINED];
        s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
        ok = !json_object_get(out, "request") &&
             json_equal(json_object_get(out, "metadata"), meta);
        json_decref(meta);
        ck_assert_msg(ok,
                      "only request.model, request.messages.role, "
                      "metadata.tier and labels.team allowed: %s",
                      s);
        free(s);
        ck_assert_int_eq(run1(in[1], strlen(in[1])), GWS_OUT_KEPT);
        out = cap.last[GWS_SINK_RETAINED];
        s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
        ok = !json_object_get(out, "labels") &&
             json_equal(json_object_get(out, "request"), req);
        json_decref(req);
        ck_assert_msg(ok,
                      "only request.model, request.messages.role, "
                      "metadata.tier and labels.team allowed: %s",
                      s);
        free(s);
        memset(&st, 0, sizeof(st));
        gws_pipeline_stats_add(pl, &st);
        /* al1: request, metadata.a, metadata.n; al2: request.temperature,
         * two prompts, 7, content, labels */
        ck_assert_int_eq(st.rec.fields_trimmed, 3 + 6);
}
END_TEST

START_TEST(ids_are_not_mistaken_for_cards) {
        /* regression (integration run): a UUID id whose last two groups
         * are 16 Luhn-valid digits was rewritten as a card number */
        const char *in =
            "{\"id\":\"06f2904c-9f73-4a8c-9006-445509614832\",\"ts\":1,"
            "\"gateway_id\":\"g\",\"provider\":\"p\",\"model\":\"m\","
            "\"status\":500,\"latency_ms\":1}";
        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_KEPT);
        ck_assert_str_eq(json_string_value(json_object_get(
                             cap.last[GWS_SINK_RETAINED], "id")),
                         "06f2904c-9f73-4a8c-9006-445509614832");
}
END_TEST

/* An alert goes out redacted (alert_cb(): gws_record_redact_json()),
 * under its alert_id as the Kafka key. The alert_id is gwsieve's own 16
 * hex digits, the same on open, update and resolved: one of all decimal
 * digits that passes Luhn with an issuer prefix (~1 alert in 50,000), or
 * any id under a custom pattern of hex tokens, was replaced in the record
 * ("[REDACTED:card_number]"): the record then differed from its key, and
 * alerts shared one id. The rest of the alert is redacted as before. */
START_TEST(alert_id_is_not_redacted) {
        static const char *alert =
            "{\"alert_id\":\"4111111111111111\",\"state\":\"open\","
            "\"kind\":\"latency\",\"entity\":{\"user_id\":"
            "\"jane@example.com\"},\"event_ids\":[\"4111111111111111\"],"
            "\"reason\":\"Latency of user_id jane@example.com is high.\"}";
        gws_record_t *rw;
        gws_buf_t out = {0};
        json_t *j;
        int pass;

        for (pass = 0; pass < 2; pass++) {
                if (pass)
                        ck_assert_int_eq(
                            gws_config_set(cfg, "redact.custom",
                                           "[{\"name\":\"hex\",\"pattern\":"
                                           "\"\\\\b[0-9a-f]{16}\\\\b\"}]",
                                           err, sizeof(err)),
                            0);
                rw = gws_record_new(cfg, err, sizeof(err));
                ck_assert_msg(rw != NULL, "%s", err);
                ck_assert_int_gt(gws_record_redact_json(rw, alert,
                                                        strlen(alert), &out),
                                 0);
                j = json_loadb(out.buf, out.len, 0, NULL);
                ck_assert_ptr_nonnull(j);
                ck_assert_msg(!strcmp(json_string_value(json_object_get(
                                          j, "alert_id")),
                                      "4111111111111111"),
                              "pass %d: %.*s", pass, (int)out.len, out.buf);
                /* an event id is input: redacted as any string */
                ck_assert_str_ne(json_string_value(json_array_get(
                                     json_object_get(j, "event_ids"), 0)),
                                 "4111111111111111");
                ck_assert_ptr_null(strstr(out.buf, "jane@example.com"));
                json_decref(j);
                gws_record_destroy(rw);
        }
        gws_buf_free(&out);
}
END_TEST

/* redact.fields applies to what came from the input, not to the alert
 * contract's own members (alert.md): a user listing "score" or "window"
 * must not turn a number or an object into a string. An entity's values
 * are the input's: listed, they are replaced. */
START_TEST(fields_leave_the_alert_contract) {
        static const char *alert =
            "{\"alert_id\":\"a1\",\"state\":\"open\",\"kind\":\"latency\","
            "\"entity\":{\"user_id\":\"u-1\",\"model\":\"m\"},"
            "\"score\":0.9,\"observed\":12.5,\"window\":{\"start\":\"s\","
            "\"end\":\"e\"},\"reason\":\"Latency is high.\"}";
        gws_record_t *rw;
        gws_buf_t out = {0};
        json_t *j;

        ck_assert_int_eq(
            gws_config_set(cfg, "redact.fields",
                           "[\"score\",\"observed\",\"window\",\"reason\","
                           "\"user_id\"]",
                           err, sizeof(err)),
            0);
        rw = gws_record_new(cfg, err, sizeof(err));
        ck_assert_msg(rw != NULL, "%s", err);
        ck_assert_int_ge(
            gws_record_redact_json(rw, alert, strlen(alert), &out), 0);
        j = json_loadb(out.buf, out.len, 0, NULL);
        ck_assert_ptr_nonnull(j);
        ck_assert_msg(json_is_number(json_object_get(j, "score")) &&
                          json_is_number(json_object_get(j, "observed")) &&
                          json_is_object(json_object_get(j, "window")) &&
                          !strcmp(json_string_value(
                                      json_object_get(j, "reason")),
                                  "Latency is high."),
                      "the alert's own members changed: %.*s", (int)out.len,
                      out.buf);
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(j, "entity"), "user_id")),
                         "[REDACTED:field]");
        json_decref(j);
        gws_record_destroy(rw);
        gws_buf_free(&out);
}
END_TEST

START_TEST(sampled_events_drop_bodies) {
        const char *in =
            "{\"id\":\"s1\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
            "\"model\":\"m\",\"status\":200,\"latency_ms\":1,"
            "\"request\":{\"a\":1},\"response\":\"r\"}";
        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_KEPT);
        ck_assert_ptr_null(json_object_get(cap.last[GWS_SINK_RETAINED],
                                           "request"));
        ck_assert_ptr_null(json_object_get(cap.last[GWS_SINK_RETAINED],
                                           "response"));
}
END_TEST

/* Member names written with escapes are the same names (the event view
 * decodes them): "requ\u0065st" is the request body and was kept whole
 * in a sampled record (bodies dropped) and never truncated, and
 * "si\u0065ve" stayed next to the record's own sieve member (two
 * "sieve" keys). */
START_TEST(escaped_member_names_are_the_same_names) {
        const char *in =
            "{\"id\":\"s2\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
            "\"model\":\"m\",\"status\":200,\"latency_ms\":1,"
            "\"requ\\u0065st\":{\"a\":1},\"si\\u0065ve\":\"old\"}";
        /* (capture() refuses a record with two "sieve" members) */
        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_KEPT);
        ck_assert_ptr_null(json_object_get(cap.last[GWS_SINK_RETAINED],
                                           "request"));
        ck_assert(json_is_object(
            json_object_get(cap.last[GWS_SINK_RETAINED], "sieve")));
}
END_TEST

/* Member names that redaction changes can become one name: both
 * e-mails below were "[REDACTED:email]", twice in one object (capture()
 * refuses duplicate names). The second and later get "#2", "#3". */
START_TEST(redacted_member_names_stay_distinct) {
        const char *in =
            "{\"id\":\"s3\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
            "\"model\":\"m\",\"status\":200,\"latency_ms\":1,"
            "\"metadata\":{\"jane@a.example\":1,\"x\":0,\"bob@b.example\":2,"
            "\"sam@c.example\":3}}";
        json_t *m;
        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_KEPT);
        m = json_object_get(cap.last[GWS_SINK_RETAINED], "metadata");
        ck_assert_int_eq(json_object_size(m), 4);
        ck_assert_int_eq(json_integer_value(
                             json_object_get(m, "[REDACTED:email]")),
                         1);
        ck_assert_int_eq(json_integer_value(
                             json_object_get(m, "[REDACTED:email]#2")),
                         2);
        ck_assert_int_eq(json_integer_value(
                             json_object_get(m, "[REDACTED:email]#3")),
                         3);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "x")), 0);
}
END_TEST

/* A name redaction writes is not one the object already has, as the
 * input wrote it (a log redacted upstream with the same markers) or as
 * an earlier rewritten name: "[REDACTED:email]" came twice, and
 * "[REDACTED:email]#2" too ("jane@a.example#2" rewritten, then the
 * second e-mail), in retained records and dead letters' payloads alike
 * (capture() refuses duplicate names). */
START_TEST(redacted_names_do_not_take_existing_names) {
        const char *in[] = {
            "{\"id\":\"s4\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
            "\"model\":\"m\",\"status\":200,\"latency_ms\":1,"
            "\"metadata\":{\"jane@a.example\":1,\"[REDACTED:email]\":0,"
            "\"bob@b.example\":2,\"[REDACTED:email]#\\u0032\":9}}",
            "{\"id\":\"s5\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
            "\"model\":\"m\",\"status\":200,\"latency_ms\":1,"
            "\"metadata\":{\"jane@a.example#2\":1,\"bob@b.example\":2}}",
            "{\"id\":\"s6\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
            "\"model\":\"m\",\"status\":\"no\",\"latency_ms\":1,"
            "\"metadata\":{\"jane@a.example\":1,\"[REDACTED:email]\":0}}"};
        json_error_t e;
        const char *pay;
        json_t *m;
        size_t i;
        for (i = 0; i < 2; i++) {
                ck_assert_int_eq(run1(in[i], strlen(in[i])), GWS_OUT_KEPT);
                m = json_object_get(cap.last[GWS_SINK_RETAINED], "metadata");
                ck_assert_int_eq(json_object_size(m), i ? 2 : 4);
        }
        /* the second record: its first name, its second name */
        ck_assert_int_eq(json_integer_value(
                             json_object_get(m, "[REDACTED:email]#2")),
                         1);
        /* the first record's literal names kept as they came */
        ck_assert_int_eq(run1(in[0], strlen(in[0])), GWS_OUT_KEPT);
        m = json_object_get(cap.last[GWS_SINK_RETAINED], "metadata");
        ck_assert_int_eq(json_integer_value(
                             json_object_get(m, "[REDACTED:email]")),
                         0);
        ck_assert_int_eq(json_integer_value(
                             json_object_get(m, "[REDACTED:email]#2")),
                         9);
        ck_assert_int_eq(run1(in[2], strlen(in[2])), GWS_OUT_DLQ);
        pay = json_string_value(
            json_object_get(cap.last[GWS_SINK_DLQ], "payload"));
        ck_assert_ptr_nonnull(pay);
        m = json_loads(pay, JSON_REJECT_DUPLICATES, &e);
        ck_assert_msg(m != NULL, "the dead letter's payload: %s: %s", e.text,
                      pay);
        json_decref(m);
}
END_TEST

START_TEST(dlq_payload_is_redacted) {
        const char *in = "not json but has sk-abcdefghijklmnopqrstuvwxyz0";
        const char *p;
        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_DLQ);
        p = json_string_value(json_object_get(cap.last[GWS_SINK_DLQ],
                                              "payload"));
        ck_assert_str_eq(p, "not json but has [REDACTED:openai_key]");
}
END_TEST

/* A payload that does not parse (here: cut short) is redacted as text,
 * and its JSON escapes hid secrets: "\nsk-..." was not at a word start. */
START_TEST(dlq_text_payload_escapes_hide_nothing) {
        const char *in = "{\"id\":\"d2\",\"prompt\":\"my key:\\nsk-proj-"
                         "AAAAAAAAAAAAAAAAAAAAAAAAAAAA and mail:\\njohn.doe@"
                         "example.com";
        const char *p;
        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_DLQ);
        p = json_string_value(json_object_get(cap.last[GWS_SINK_DLQ],
                                              "payload"));
        ck_assert_ptr_nonnull(p);
        ck_assert_str_eq(p, "{\"id\":\"d2\",\"prompt\":\"my key:\\n"
                            "[REDACTED:openai_key] and mail:\\n"
                            "[REDACTED:email]");
}
END_TEST

/* The same for redact.custom patterns: they matched the payload as
 * written, so "\nACCT-123456" had the "n" glued to it and a \b pattern
 * missed it, while the built-ins caught their secrets there. */
START_TEST(dlq_text_payload_custom_patterns_see_escapes) {
        const char *in = "{\"id\":\"d3\",\"prompt\":\"acct:\\nACCT-123456,"
                         "\\tACCT-234567 or \\u0041CCT-345678";
        const char *p;
        gws_pipeline_stats_t st;
        gws_pipeline_destroy(pl);
        ck_assert_int_eq(
            gws_config_load_string(cfg,
                                   "{\"redact\":{\"custom\":[{\"name\":"
                                   "\"acct\",\"pattern\":"
                                   "\"\\\\bACCT-[0-9]{6}\\\\b\"}]}}",
                                   err, sizeof(err)),
            0);
        pl = gws_pipeline_new(cfg, err, sizeof(err));
        ck_assert_msg(pl != NULL, "%s", err);
        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_DLQ);
        p = json_string_value(json_object_get(cap.last[GWS_SINK_DLQ],
                                              "payload"));
        ck_assert_ptr_nonnull(p);
        ck_assert_str_eq(p, "{\"id\":\"d3\",\"prompt\":\"acct:\\n"
                            "[REDACTED:acct],\\t[REDACTED:acct] or "
                            "[REDACTED:acct]");
        memset(&st, 0, sizeof(st));
        gws_pipeline_stats_add(pl, &st);
        ck_assert_uint_eq(st.rec.redactions[GWS_RK_CUSTOM], 3);
}
END_TEST

/* Everything written to stderr while \p fn(arg) runs (malloc'd). */
static char *stderr_of(void (*fn)(void *), void *arg) {
        FILE *fp = tmpfile();
        int saved = dup(STDERR_FILENO);
        long n;
        char *text;
        ck_assert_ptr_nonnull(fp);
        ck_assert_int_ge(saved, 0);
        ck_assert_int_ge(dup2(fileno(fp), STDERR_FILENO), 0);
        fn(arg);
        dup2(saved, STDERR_FILENO);
        close(saved);
        n = ftell(fp);
        ck_assert_int_ge(n, 0);
        text = calloc(1, (size_t)n + 1);
        ck_assert_ptr_nonnull(text);
        rewind(fp);
        ck_assert_uint_eq(fread(text, 1, (size_t)n, fp), (size_t)n);
        fclose(fp);
        return text;
}

#define RUNAWAY_EVENT                                                          \
        "{\"id\":\"m1\",\"ts\":\"2026-01-01T00:00:00Z\",\"gateway_id\":"        \
        "\"gw-1\",\"provider\":\"openai\",\"model\":\"gpt-4o\",\"status\":200," \
        "\"latency_ms\":10.5,\"note\":\"x aaaaaaaaaaaab\"}"

static void run_runaway(void *outcome) {
        *(gws_outcome_t *)outcome = run1(RUNAWAY_EVENT, strlen(RUNAWAY_EVENT));
}

/* redact.custom_match_limit bounds what one string costs a pattern that
 * backtracks exponentially ((a+)+$ over a run of a's and a b: about 2^n
 * steps for n a's): past the limit the match fails closed (the rest of
 * the string goes, one redaction), and a warning names the pattern and
 * why. Before, only PCRE2's default of 10M steps applied (~20 ms of one
 * worker per 4 KB string), nothing could lower it, and nothing said why
 * text went missing. */
START_TEST(custom_match_limit_fails_closed_and_warns) {
        gws_pipeline_stats_t st;
        gws_outcome_t o;
        char *log;
        const char *note;

        /* within the default limit: no match, the text stays */
        reconfigure("{\"redact\":{\"custom\":[{\"name\":\"runaway\","
                    "\"pattern\":\"(a+)+$\"}]}}");
        run_runaway(&o);
        ck_assert_int_eq(o, GWS_OUT_KEPT);
        note = json_string_value(
            json_object_get(cap.last[GWS_SINK_RETAINED], "note"));
        ck_assert_ptr_nonnull(note);
        ck_assert_str_eq(note, "x aaaaaaaaaaaab");

        reconfigure("{\"redact\":{\"custom_match_limit\":1000}}");
        log = stderr_of(run_runaway, &o);
        ck_assert_int_eq(o, GWS_OUT_KEPT);
        note = json_string_value(
            json_object_get(cap.last[GWS_SINK_RETAINED], "note"));
        ck_assert_ptr_nonnull(note);
        ck_assert_str_eq(note, "[REDACTED:runaway]");
        memset(&st, 0, sizeof(st));
        gws_pipeline_stats_add(pl, &st);
        ck_assert_uint_eq(st.rec.redactions[GWS_RK_CUSTOM], 1);
        ck_assert_msg(strstr(log, "redact.custom[0] \"runaway\"") &&
                          strstr(log, "match limit"),
                      "no warning naming the pattern and the limit: '%s'",
                      log);
        free(log);
}
END_TEST

/* A dead letter whose payload is JSON (a missing field, a wrong type) is
 * redacted as JSON, strings decoded: as text, a key after an escaped
 * newline ("\nsk-...") was not at a word start, an escaped letter
 * ("sk-\u0070roj-") hid a key, and an e-mail after "\n" took the "n"
 * along and left "\[REDACTED:email]": no longer JSON. */
START_TEST(dlq_json_payload_is_redacted_as_json) {
        const char *in =
            "{\"id\":\"d1\",\"prompt\":\"my key:\\nsk-proj-AAAAAAAAAAAAAAAA"
            "AAAAAAAAAAAA and\\nBearer abcdefghijklmnopqrstuvwxyz012345 "
            "mail:\\njohn.doe@example.com sk-\\u0070roj-BBBBBBBBBBBBBBBBBB"
            "BBBBBBBB\"}";
        const char *p;
        json_t *j;
        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_DLQ);
        p = json_string_value(json_object_get(cap.last[GWS_SINK_DLQ],
                                              "payload"));
        ck_assert_ptr_nonnull(p);
        ck_assert_msg(!strstr(p, "AAAAAAAA") && !strstr(p, "abcdefghij") &&
                          !strstr(p, "john.doe") && !strstr(p, "BBBBBBBB"),
                      "not redacted: %s", p);
        j = json_loads(p, 0, NULL);
        ck_assert_msg(j != NULL, "the payload is no longer JSON: %s", p);
        ck_assert_str_eq(json_string_value(json_object_get(j, "id")), "d1");
        json_decref(j);
}
END_TEST

/* A body kept as a string that holds JSON (Cloudflare's request_body,
 * a LiteLLM or OTel message list written as text) is decoded once for
 * the scanners: the JSON inside still has its own escapes, so a key
 * after an escaped newline ("\nsk-...": the "n" glued to it) or written
 * with an escape ("\u0073k-...") must be found in the inner text
 * decoded too, and the e-mail after "\t". */
START_TEST(double_encoded_body_hides_nothing) {
        const char *in =
            "{\"id\":\"b1\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
            "\"model\":\"m\",\"status\":500,\"latency_ms\":1,"
            "\"request\":\"{\\\"messages\\\":[{\\\"role\\\":\\\"user\\\","
            "\\\"content\\\":\\\"my key:\\\\nsk-proj-AAAAAAAAAAAAAAAAAAAAAAAA"
            " and \\\\u0073k-proj-BBBBBBBBBBBBBBBBBBBBBBBB, mail:\\\\t"
            "john.doe@example.com\\\"}]}\"}";
        const char *txt;
        json_t *inner;
        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_KEPT);
        txt = json_string_value(
            json_object_get(cap.last[GWS_SINK_RETAINED], "request"));
        ck_assert_ptr_nonnull(txt);
        ck_assert_msg(!strstr(txt, "AAAAAAAA") && !strstr(txt, "BBBBBBBB") &&
                          !strstr(txt, "john.doe"),
                      "not redacted: %s", txt);
        /* the text is still the JSON it was */
        inner = json_loads(txt, 0, NULL);
        ck_assert_msg(inner != NULL, "no longer JSON: %s", txt);
        json_decref(inner);
}
END_TEST

/* A card number written as a JSON number (a payment's "pan":
 * 4111111111111111 in metadata or a body) is a card number: the scanners
 * saw strings only, and numbers went out as they came. Numbers that are
 * no card (Luhn, issuer, length, a fraction) and the contract's numeric
 * fields stay numbers. */
START_TEST(card_numbers_as_json_numbers) {
        const char *in =
            "{\"id\":\"c1\",\"ts\":1767225600000,\"gateway_id\":\"g\","
            "\"provider\":\"p\",\"model\":\"m\",\"status\":500,"
            "\"latency_ms\":1,\"cc\":378282246310005,"
            "\"metadata\":{\"card\":4111111111111111,"
            "\"order\":4111111111111112,\"amount\":12.5,"
            "\"big\":5555555555554444.5},"
            "\"request\":{\"payment\":[{\"pan\":5555555555554444}]}}";
        gws_pipeline_stats_t st;
        json_t *out, *md;
        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_KEPT);
        out = cap.last[GWS_SINK_RETAINED];
        md = json_object_get(out, "metadata");
        if (!json_is_string(json_object_get(md, "card")) ||
            !json_is_string(json_object_get(out, "cc")) ||
            !json_is_string(json_object_get(
                json_array_get(
                    json_object_get(json_object_get(out, "request"),
                                    "payment"),
                    0),
                "pan")))
                ck_abort_msg("card numbers left as numbers: %s",
                             json_dumps(out, JSON_COMPACT));
        ck_assert_str_eq(json_string_value(json_object_get(md, "card")),
                         "[REDACTED:card_number]");
        ck_assert(json_is_integer(json_object_get(md, "order")));
        ck_assert(json_is_real(json_object_get(md, "big")));
        ck_assert(json_is_integer(json_object_get(out, "ts")));
        memset(&st, 0, sizeof(st));
        gws_pipeline_stats_add(pl, &st);
        ck_assert_uint_eq(st.rec.redactions[GWS_RK_CARD], 3);
}
END_TEST

/* redact.fields: the values of members with these names (any case,
 * escapes decoded, at any depth) are replaced whatever they hold, for
 * credentials that no detector can tell from text: a Basic header, an
 * Azure or Mistral key (hex or plain letters), a cookie. null stays;
 * the contract's required fields cannot be listed; [] turns it off. */
#define CRED_BODY                                                              \
        "\"request\":{\"headers\":{\"Authorization\":\"Basic "                  \
        "dXNlcjpwYXNzd29yZA==\",\"X-API-Key\":\"3f9a0c1e5b7d4a2f8e6c9b1a0d3f"   \
        "5e7c\",\"Cookie\":null,\"x-goog-api-key\":{\"v\":\"k\"},"            \
        "\"proxy-authoriz\\u0061tion\":\"Digest abc\",\"accept\":\"json\"},"    \
        "\"api_key\":\"plainkey0000\",\"model\":\"gpt-4o\"},\"password\":1234"
/* request.headers of the retained record of \p in, with \p conf loaded
 * over the configuration. */
static json_t *headers_kept(const char *conf, const char *in) {
        reconfigure(conf);
        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_KEPT);
        return json_object_get(
            json_object_get(cap.last[GWS_SINK_RETAINED], "request"),
            "headers");
}

/* Cloud credentials no scanner can tell from text (an AWS secret access
 * key is 40 base64 characters, a session token longer) are caught by
 * name in the default redact.fields, as the README's list promises for
 * credentials: a tool call's arguments or a metadata object carry them
 * under these names. */
START_TEST(cloud_credentials_by_name) {
        static const char *const names[] = {
            "aws_secret_access_key", "aws_session_token", "private_key",
            "api_secret", "secret_key", "x-amz-security-token"};
        const char *in =
            "{\"id\":\"c1\",\"ts\":\"2026-01-01T00:00:00Z\",\"gateway_id\":"
            "\"gw-1\",\"provider\":\"openai\",\"model\":\"gpt-4o\",\"status\":"
            "500,\"latency_ms\":10,\"metadata\":{"
            "\"aws_secret_access_key\":\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\","
            "\"aws_session_token\":\"IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3Qt\","
            "\"private_key\":\"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\","
            "\"api_secret\":\"9f8e7d6c5b4a\",\"secret_key\":\"abc123def456\","
            "\"X-Amz-Security-Token\":\"FwoGZXIvYXdzEJr\"}}";
        json_t *md;
        size_t i;
        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_KEPT);
        md = json_object_get(cap.last[GWS_SINK_RETAINED], "metadata");
        ck_assert_ptr_nonnull(md);
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                const char *k, *v = NULL;
                json_t *val;
                json_object_foreach(md, k, val) {
                        if (!strcasecmp(k, names[i]))
                                v = json_string_value(val);
                }
                ck_assert_msg(v && !strcmp(v, "[REDACTED:field]"),
                              "metadata.%s went out as \"%s\"", names[i],
                              v ? v : "(missing)");
        }
}
END_TEST

START_TEST(credential_fields_redacted) {
        const char *in =
            "{\"id\":\"c1\",\"ts\":\"2026-01-01T00:00:00Z\",\"gateway_id\":"
            "\"gw-1\",\"provider\":\"openai\",\"model\":\"gpt-4o\",\"status\":"
            "500,\"latency_ms\":10," CRED_BODY "}";
        const char *dead = "{\"id\":\"c2\"," CRED_BODY "}";
        static const char *const refused[] = {
            "{\"redact\":{\"fields\":[\"model\"]}}",
            "{\"redact\":{\"fields\":[\"\"]}}",
            "{\"redact\":{\"fields\":[7]}}"};
        gws_pipeline_stats_t st;
        json_t *rec, *h, *req;
        const char *p;
        size_t i;

        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_KEPT);
        rec = cap.last[GWS_SINK_RETAINED];
        req = json_object_get(rec, "request");
        h = json_object_get(req, "headers");
        ck_assert_str_eq(json_string_value(json_object_get(h, "Authorization")),
                         "[REDACTED:field]");
        ck_assert_str_eq(json_string_value(json_object_get(h, "X-API-Key")),
                         "[REDACTED:field]");
        ck_assert_str_eq(
            json_string_value(json_object_get(h, "x-goog-api-key")),
            "[REDACTED:field]");
        ck_assert_str_eq(
            json_string_value(json_object_get(h, "proxy-authorization")),
            "[REDACTED:field]");
        ck_assert(json_is_null(json_object_get(h, "Cookie")));
        ck_assert_str_eq(json_string_value(json_object_get(h, "accept")),
                         "json");
        ck_assert_str_eq(json_string_value(json_object_get(req, "api_key")),
                         "[REDACTED:field]");
        ck_assert_str_eq(json_string_value(json_object_get(rec, "password")),
                         "[REDACTED:field]");
        ck_assert_str_eq(json_string_value(json_object_get(req, "model")),
                         "gpt-4o");
        ck_assert_str_eq(json_string_value(json_object_get(rec, "model")),
                         "gpt-4o");
        memset(&st, 0, sizeof(st));
        gws_pipeline_stats_add(pl, &st);
        ck_assert_uint_eq(st.rec.redactions[GWS_RK_FIELD], 6);
        ck_assert_str_eq(gws_redact_kind_name(GWS_RK_FIELD), "field");

        /* a dead letter's JSON payload too */
        ck_assert_int_eq(run1(dead, strlen(dead)), GWS_OUT_DLQ);
        p = json_string_value(json_object_get(cap.last[GWS_SINK_DLQ],
                                              "payload"));
        ck_assert_ptr_nonnull(p);
        ck_assert_msg(!strstr(p, "dXNlcjpw") && !strstr(p, "3f9a0c1e") &&
                          !strstr(p, "plainkey") && !strstr(p, "1234") &&
                          !strstr(p, "Digest"),
                      "a credential survives: %s", p);

        /* the list is the user's: [] turns it off */
        h = headers_kept("{\"redact\":{\"fields\":[]}}", in);
        ck_assert_str_eq(json_string_value(json_object_get(h, "X-API-Key")),
                         "3f9a0c1e5b7d4a2f8e6c9b1a0d3f5e7c");
        /* and so does redact.enabled=false */
        h = headers_kept(
            "{\"redact\":{\"enabled\":false,\"fields\":[\"accept\"]}}", in);
        ck_assert_str_eq(json_string_value(json_object_get(h, "accept")),
                         "json");
        /* a body listed is replaced, not written cut to max_body_bytes
         * (its text would be) */
        reconfigure("{\"redact\":{\"enabled\":true,\"fields\":"
                    "[\"request\"]},\"trim\":{\"max_body_bytes\":16}}");
        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_KEPT);
        ck_assert_str_eq(json_string_value(json_object_get(
                             cap.last[GWS_SINK_RETAINED], "request")),
                         "[REDACTED:field]");
        ck_assert_ptr_null(json_object_get(
            json_object_get(cap.last[GWS_SINK_RETAINED], "sieve"),
            "truncated"));
        for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
                gws_pipeline_t *bad;
                ck_assert_int_eq(
                    gws_config_load_string(cfg, refused[i], err, sizeof(err)),
                    0);
                bad = gws_pipeline_new(cfg, err, sizeof(err));
                ck_assert_msg(bad == NULL, "accepted: %s", refused[i]);
                ck_assert_msg(strstr(err, "redact.fields[0]"), "%s: %s",
                              refused[i], err);
                gws_config_load_string(cfg, "{\"redact\":{\"fields\":[]}}",
                                       err, sizeof(err));
        }
}
END_TEST

/* A DLQ record carries at most limits.dlq_payload_bytes of the payload
 * as written (escaped or base64), cut at a character, and says so; the
 * source coordinates point at the whole message. Unbounded, 400 KB of
 * control bytes (each \u0001: 6 bytes) made a 2.4 MB record, over the
 * producer's message.max.bytes (2 x max_event_bytes + 64 KB): produce
 * refused it, the service stopped, and every restart met it again. */
START_TEST(dlq_envelope_is_bounded) {
        static const struct {
                size_t n;
                const char *unit;
                const char *reason;
        } big[] = {
            {400000, "\x01", "invalid_json"},   /* 6x when escaped */
            {300000, "\xc3\xa9" "a", "invalid_json"}, /* UTF-8, cut mid-é */
            {1100000, "a", "too_large"},
            {200000, "\xff", "invalid_utf8"},   /* base64 */
        };
        size_t i, k;
        for (i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
                size_t ul = strlen(big[i].unit), len = big[i].n * ul;
                char *in = malloc(len);
                json_t *d, *pl_;
                ck_assert_ptr_nonnull(in);
                for (k = 0; k < big[i].n; k++)
                        memcpy(in + k * ul, big[i].unit, ul);
                ck_assert_int_eq(run1(in, len), GWS_OUT_DLQ);
                d = cap.last[GWS_SINK_DLQ];
                ck_assert_str_eq(json_string_value(json_object_get(d,
                                                                   "reason")),
                                 big[i].reason);
                ck_assert_msg(cap.len[GWS_SINK_DLQ] <= 262144 + 2048,
                              "%s: a %zu-byte DLQ record for %zu bytes",
                              big[i].reason, cap.len[GWS_SINK_DLQ], len);
                ck_assert(json_is_true(json_object_get(d,
                                                       "payload_truncated")));
                ck_assert_int_eq(json_integer_value(json_object_get(d, "size")),
                                 (json_int_t)len);
                pl_ = json_object_get(d, "payload");
                if (!pl_)
                        pl_ = json_object_get(d, "payload_base64");
                ck_assert(json_is_string(pl_));
                ck_assert_uint_gt(json_string_length(pl_), 1000);
                free(in);
        }
        /* a payload within the bound is whole, with no flag */
        ck_assert_int_eq(run1("{\"x\":", 5), GWS_OUT_DLQ);
        ck_assert_ptr_null(json_object_get(cap.last[GWS_SINK_DLQ],
                                           "payload_truncated"));
}
END_TEST

/* The dead letter of an output record refused for good: the output
 * topic and key, the source coordinates, the error, the record as
 * payload (cut to the bound, at a character) or, for a refused dead
 * letter, no payload at all. */
START_TEST(rejected_envelope) {
        gws_buf_t b = {0};
        gws_rejected_t rj = {0};
        json_t *d, *o, *src;
        json_error_t je;
        size_t i, len = 300000;
        char *rec = malloc(len + 1);

        ck_assert_ptr_nonnull(rec);
        /* a retained record of 300 KB of "é" inside a string */
        memcpy(rec, "{\"id\":\"r1\",\"x\":\"", 16);
        for (i = 16; i + 2 < len - 2; i += 2)
                memcpy(rec + i, "\xc3\xa9", 2);
        memcpy(rec + i, "\"}", 2);
        len = i + 2;
        rj.topic = "gw.retained";
        rj.why = "the output record was refused: Broker: Message size too "
                 "large (300000 bytes)";
        rj.key = "gw-07";
        rj.keylen = 5;
        rj.payload = rec;
        rj.len = len;
        rj.src_topic = "gw.raw";
        rj.partition = 4;
        rj.offset = 1832;
        ck_assert_int_eq(gws_pipeline_rejected(&b, &rj, 1000), 0);
        d = json_loadb(b.buf, b.len, 0, &je);
        ck_assert_msg(d != NULL, "not JSON (%s): %.200s", je.text, b.buf);
        ck_assert_str_eq(json_string_value(json_object_get(d, "reason")),
                         "output_rejected");
        ck_assert_str_eq(json_string_value(json_object_get(d, "detail")),
                         rj.why);
        o = json_object_get(d, "output");
        ck_assert_str_eq(json_string_value(json_object_get(o, "topic")),
                         "gw.retained");
        ck_assert_str_eq(json_string_value(json_object_get(o, "key")),
                         "gw-07");
        src = json_object_get(d, "source");
        ck_assert_str_eq(json_string_value(json_object_get(src, "topic")),
                         "gw.raw");
        ck_assert_int_eq(json_integer_value(json_object_get(src, "partition")),
                         4);
        ck_assert_int_eq(json_integer_value(json_object_get(src, "offset")),
                         1832);
        ck_assert_int_eq(json_integer_value(json_object_get(d, "size")),
                         (json_int_t)len);
        ck_assert(json_is_true(json_object_get(d, "payload_truncated")));
        /* 1000 bytes as written, cut at a character ("é" is 2 bytes) */
        ck_assert_uint_le(json_string_length(json_object_get(d, "payload")),
                          1000);
        ck_assert_uint_ge(json_string_length(json_object_get(d, "payload")),
                          990);
        ck_assert(gws_utf8_valid(
            json_string_value(json_object_get(d, "payload")),
            json_string_length(json_object_get(d, "payload"))));
        json_decref(d);

        /* whole when it fits; no key */
        rj.payload = "{\"id\":\"r2\"}";
        rj.len = strlen(rj.payload);
        rj.key = NULL;
        ck_assert_int_eq(gws_pipeline_rejected(&b, &rj, 1000), 0);
        d = json_loadb(b.buf, b.len, 0, &je);
        ck_assert_ptr_nonnull(d);
        ck_assert_str_eq(json_string_value(json_object_get(d, "payload")),
                         "{\"id\":\"r2\"}");
        ck_assert(json_is_null(json_object_get(json_object_get(d, "output"),
                                               "key")));
        ck_assert_ptr_null(json_object_get(d, "payload_truncated"));
        json_decref(d);

        /* a refused dead letter: coordinates only */
        rj.topic = "gw.dlq";
        rj.payload = rec;
        rj.len = len;
        ck_assert_int_eq(gws_pipeline_rejected(&b, &rj, 0), 0);
        ck_assert_uint_lt(b.len, 600);
        d = json_loadb(b.buf, b.len, 0, &je);
        ck_assert_ptr_nonnull(d);
        ck_assert(json_is_true(json_object_get(d, "payload_omitted")));
        ck_assert_ptr_null(json_object_get(d, "payload"));
        ck_assert_int_eq(json_integer_value(json_object_get(d, "size")),
                         (json_int_t)len);
        json_decref(d);
        gws_buf_free(&b);
        free(rec);
}
END_TEST

/* A preset that had to leave a foreign value out says which one, next to
 * the native complaint. */
START_TEST(preset_note_in_dlq_detail) {
        const char *in =
            "{\"id\":\"l1\",\"startTime\":\"yesterday\",\"endTime\":"
            "1767225600.5,\"model\":\"gpt-4o\",\"custom_llm_provider\":"
            "\"openai\",\"status\":\"success\"}";
        const char *detail;
        gws_pipeline_destroy(pl);
        ck_assert_int_eq(gws_config_set(cfg, "input.format", "litellm", err,
                                        sizeof(err)), 0);
        pl = gws_pipeline_new(cfg, err, sizeof(err));
        ck_assert_ptr_nonnull(pl);
        ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_DLQ);
        detail = json_string_value(json_object_get(cap.last[GWS_SINK_DLQ],
                                                   "detail"));
        ck_assert_ptr_nonnull(detail);
        ck_assert_msg(strstr(detail, "\"ts\"") &&
                          strstr(detail, "litellm: startTime is not a number"),
                      "detail: %s", detail);
}
END_TEST

/* redact.ip_truncate fails closed in retained records. A value that
 * inet_pton() could not read (a port, brackets, a list, a JSON escape)
 * was kept whole, and metadata.client_ip (where the cloudflare preset
 * finds the address; metadata is copied along) was never truncated. */
static const struct {
        const char *val;  /* JSON text */
        const char *want; /* JSON text */
        int top;          /* also the top-level client_ip (string or null:
                           * anything else is a wrong_type dead letter) */
} ipv[] = {
    {"\"10.1.2.3\"", "\"10.1.2.0\"", 1},
    {"\"1.2.3.4:5678\"", "\"1.2.3.0\"", 1},
    {"\"[2001:db8::1]:443\"", "\"2001:db8::\"", 1},
    {"\"1.2.3.4, 10.0.0.1\"", "\"1.2.3.0, 10.0.0.0\"", 1},
    {"\"1.2.3\\u002e4\"", "\"1.2.3.0\"", 1},
    {"\"unknown\"", "\"[REDACTED:ip]\"", 1},
    {"null", "null", 1},
    {"16909060", "\"[REDACTED:ip]\"", 0},
    {"[\"1.2.3.4\"]", "\"[REDACTED:ip]\"", 0},
    {"{\"v4\":\"1.2.3.4\"}", "\"[REDACTED:ip]\"", 0},
};

START_TEST(ip_truncate_fails_closed) {
        /* with and without redaction, with and without a trim path
         * inside metadata */
        static const char *confs[] = {
            "{\"redact\":{\"ip_truncate\":true}}",
            "{\"redact\":{\"enabled\":false,\"ip_truncate\":true},"
            "\"trim\":{\"deny\":[\"metadata.other\"]}}"};
        char in[1024];
        json_t *want, *out, *md;
        json_error_t e;
        gws_pipeline_stats_t st;
        size_t c;
        want = json_loads(ipv[_i].want, JSON_DECODE_ANY, &e);
        ck_assert_ptr_nonnull(want);
        snprintf(in, sizeof(in),
                 "{\"id\":\"i1\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":"
                 "\"p\",\"model\":\"m\",\"status\":500,\"latency_ms\":1,"
                 "%s%s%s\"metadata\":{\"other\":1,\"client_ip\":%s}}",
                 ipv[_i].top ? "\"client_ip\":" : "",
                 ipv[_i].top ? ipv[_i].val : "", ipv[_i].top ? "," : "",
                 ipv[_i].val);
        for (c = 0; c < sizeof(confs) / sizeof(confs[0]); c++) {
                gws_pipeline_destroy(pl);
                ck_assert_int_eq(gws_config_load_string(cfg, confs[c], err,
                                                        sizeof(err)),
                                 0);
                pl = gws_pipeline_new(cfg, err, sizeof(err));
                ck_assert_msg(pl != NULL, "%s", err);
                ck_assert_int_eq(run1(in, strlen(in)), GWS_OUT_KEPT);
                out = cap.last[GWS_SINK_RETAINED];
                md = json_object_get(out, "metadata");
                if (ipv[_i].top)
                        ck_assert_msg(json_equal(json_object_get(out,
                                                                 "client_ip"),
                                                 want),
                                      "%s -> client_ip %s", ipv[_i].val,
                                      json_dumps(out, JSON_ENCODE_ANY));
                ck_assert_msg(json_equal(json_object_get(md, "client_ip"),
                                         want),
                              "%s -> metadata %s", ipv[_i].val,
                              json_dumps(md, JSON_ENCODE_ANY));
                ck_assert_int_eq(json_object_get(md, "other") != NULL,
                                 c == 0);
                /* replacements count as redactions of kind "ip" */
                memset(&st, 0, sizeof(st));
                gws_pipeline_stats_add(pl, &st);
                ck_assert_uint_eq(
                    st.rec.redactions[GWS_RK_IP],
                    strstr(ipv[_i].want, "REDACTED") ? 1u + ipv[_i].top : 0);
        }
        json_decref(want);
}
END_TEST

/* redact.ip_truncate in dead letters: they carried the input as it was,
 * full addresses included. A payload that is JSON has the members the
 * record writer truncates truncated wherever they are (the presets'
 * names: the payload is in the input's format) and the address literals
 * of its other strings (an OTLP attribute list, Cloudflare's metadata
 * string); one redacted as text its address literals, escapes decoded.
 * Numbers that are no address stay; an address-like token that is none
 * ("300.1.2.3") is replaced; the envelope (source, offset) is not
 * touched. */
#define IPDLQ                                                                  \
        "{\"id\":\"i1\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","     \
        "\"status\":500,\"latency_ms\":1,\"client_ip\":\"203.0.113.9\","       \
        "\"requester_ip_address\":\"unknown\",\"metadata\":{\"client_ip\":"    \
        "\"1.2.3.4:5678\",\"network.peer.address\":"                          \
        "\"2001:db8:abcd:1234::5\"},\"attributes\":[{\"key\":"                 \
        "\"client.address\",\"value\":{\"stringValue\":\"198.51.100.7\"}}],"   \
        "\"cf\":\"{\\\"client_ip\\\":\\\"192.0.2.33\\\"}\",\"note\":"          \
        "\"v1.2.3.4 1.2.3.4.5 at 12:00:00 2026-01-01T10:00:00Z\\n10.9.8.7 "    \
        "[2001:db8::1]:443 300.1.2.3\",\"size\":16909060}"
START_TEST(dlq_payload_ip_truncate) {
        static const char *confs[] = {
            "{\"redact\":{\"ip_truncate\":true}}",
            "{\"redact\":{\"enabled\":false,\"ip_truncate\":true}}"};
        static const char *gone[] = {"203.0.113.9", "1.2.3.4:", "abcd:1234",
                                     "198.51.100.7", "192.0.2.33",
                                     "10.9.8.7", "db8::1", "300.1.2.3"};
        static const char *kept[] = {
            "203.0.113.0", "1.2.3.0", "2001:db8:abcd::", "198.51.100.0",
            "192.0.2.0", "v1.2.3.4 1.2.3.4.5 at 12:00:00 2026-01-01T10:00:00Z",
            "10.9.8.0 [2001:db8::]:443 [REDACTED:ip]", "16909060"};
        const char *in = IPDLQ;
        gws_pipeline_stats_t st;
        json_t *d, *src;
        const char *p;
        size_t c, k, len;
        int text;
        for (c = 0; c < 2 * sizeof(confs) / sizeof(confs[0]); c++) {
                text = (int)(c & 1); /* cut short: not JSON */
                len = strlen(in) - (size_t)text;
                gws_pipeline_destroy(pl);
                ck_assert_int_eq(gws_config_load_string(cfg, confs[c / 2],
                                                        err, sizeof(err)),
                                 0);
                pl = gws_pipeline_new(cfg, err, sizeof(err));
                ck_assert_msg(pl != NULL, "%s", err);
                ck_assert_int_eq(run1(in, len), GWS_OUT_DLQ);
                d = cap.last[GWS_SINK_DLQ];
                ck_assert_str_eq(json_string_value(json_object_get(d,
                                                                   "reason")),
                                 text ? "invalid_json" : "missing_field");
                src = json_object_get(d, "source");
                ck_assert_int_eq(
                    json_integer_value(json_object_get(src, "partition")), 3);
                ck_assert_int_eq(
                    json_integer_value(json_object_get(src, "offset")), 42);
                p = json_string_value(json_object_get(d, "payload"));
                ck_assert_ptr_nonnull(p);
                /* the payload as written: JSON text, escaped */
                for (k = 0; k < sizeof(gone) / sizeof(gone[0]); k++)
                        ck_assert_msg(!strstr(p, gone[k]),
                                      "conf %zu: %s left in %s", c, gone[k],
                                      p);
                for (k = 0; k < sizeof(kept) / sizeof(kept[0]); k++)
                        ck_assert_msg(strstr(p, kept[k]),
                                      "conf %zu: no %s in %s", c, kept[k], p);
                /* the name the writer truncates fails closed (JSON only:
                 * text has no names) */
                if (!text) {
                        json_t *pj = json_loads(p, 0, NULL);
                        ck_assert_ptr_nonnull(pj);
                        ck_assert_str_eq(
                            json_string_value(json_object_get(
                                pj, "requester_ip_address")),
                            "[REDACTED:ip]");
                        json_decref(pj);
                }
                memset(&st, 0, sizeof(st));
                gws_pipeline_stats_add(pl, &st);
                ck_assert_uint_eq(st.rec.redactions[GWS_RK_IP],
                                  text ? 1 : 2);
        }
}
END_TEST

/* The address under a name written with an escape (the event parser
 * reads "client\u005fip" as client_ip), and the copies the presets leave
 * in metadata: cloudflare's metadata.client_ip, LiteLLM's
 * metadata.requester_ip_address. */
START_TEST(ip_truncate_escaped_name_and_presets) {
        static const struct {
                const char *format, *in, *meta_key;
        } t[] = {
            {"native",
             "{\"id\":\"n1\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":"
             "\"p\",\"model\":\"m\",\"status\":500,\"latency_ms\":1,"
             "\"client\\u005fip\":\"203.0.113.9\",\"metadata\":"
             "{\"client\\u005fip\":\"203.0.113.9\"}}",
             "client_ip"},
            {"cloudflare",
             "{\"id\":\"c1\",\"created_at\":\"2026-01-05T10:00:00Z\","
             "\"provider\":\"openai\",\"model\":\"m\",\"status_code\":500,"
             "\"duration\":5,\"metadata\":\"{\\\"client_ip\\\":"
             "\\\"203.0.113.9\\\",\\\"user_id\\\":\\\"u\\\"}\"}",
             "client_ip"},
            {"litellm",
             "{\"id\":\"l1\",\"startTime\":1767225600,\"endTime\":"
             "1767225600.5,\"model\":\"m\",\"custom_llm_provider\":"
             "\"openai\",\"status\":\"failure\",\"metadata\":"
             "{\"requester_ip_address\":\"203.0.113.9\"}}",
             "requester_ip_address"},
            /* OpenTelemetry: client.address is mapped to client_ip, the
             * other address attributes go to metadata as named */
            {"otel-genai",
             "{\"spanId\":\"o1\",\"startTimeUnixNano\":"
             "\"1767225600000000000\",\"endTimeUnixNano\":"
             "\"1767225600500000000\",\"attributes\":{"
             "\"gen_ai.system\":\"openai\",\"gen_ai.request.model\":"
             "\"m\",\"http.response.status_code\":500,"
             "\"client.address\":\"203.0.113.9\","
             "\"network.peer.address\":\"203.0.113.9\"}}",
             "network.peer.address"},
            {"otel-genai",
             "{\"spanId\":\"o2\",\"startTimeUnixNano\":"
             "\"1767225600000000000\",\"endTimeUnixNano\":"
             "\"1767225600500000000\",\"attributes\":{"
             "\"gen_ai.system\":\"openai\",\"gen_ai.request.model\":"
             "\"m\",\"http.response.status_code\":500,"
             "\"client.address\":\"203.0.113.9\","
             "\"http.client_ip\":\"203.0.113.9\"}}",
             "http.client_ip"},
        };
        size_t i;
        json_t *out;
        const char *mv;
        for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                gws_pipeline_destroy(pl);
                ck_assert_int_eq(gws_config_set(cfg, "input.format",
                                                t[i].format, err,
                                                sizeof(err)),
                                 0);
                ck_assert_int_eq(gws_config_set(cfg, "redact.ip_truncate",
                                                "true", err, sizeof(err)),
                                 0);
                pl = gws_pipeline_new(cfg, err, sizeof(err));
                ck_assert_msg(pl != NULL, "%s", err);
                ck_assert_int_eq(run1(t[i].in, strlen(t[i].in)),
                                 GWS_OUT_KEPT);
                out = cap.last[GWS_SINK_RETAINED];
                ck_assert_str_eq(json_string_value(json_object_get(
                                     out, "client_ip")),
                                 "203.0.113.0");
                mv = json_string_value(json_object_get(
                    json_object_get(out, "metadata"), t[i].meta_key));
                ck_assert_msg(mv && !strcmp(mv, "203.0.113.0"), "%s: %s",
                              t[i].format, json_dumps(out, JSON_COMPACT));
        }
}
END_TEST

static const struct {
        const char *in;
        const char *key;
} keys[] = {
    {"{\"gateway_id\":\"gw-1\"}", "gw-1"},
    {"{\"a\":{\"gateway_id\":\"inner\"},\"gateway_id\":\"outer\"}", "outer"},
    {"{\"a\":\"x\\\"gateway_id\\\":\",\"gateway_id\" : \"g\"}", "g"},
    {"{\"x\":[{\"gateway_id\":\"no\"}]}", NULL},
    {"not json", NULL},
};

START_TEST(replay_key_table) {
        const char *s = NULL;
        size_t n = 0;
        int r = gws_replay_key(keys[_i].in, strlen(keys[_i].in), &s, &n);
        if (!keys[_i].key) {
                ck_assert_int_eq(r, -1);
                return;
        }
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(n, strlen(keys[_i].key));
        ck_assert_int_eq(memcmp(s, keys[_i].key, n), 0);
}
END_TEST

/* A temporary directory (\p dir, a mkdtemp template) and its input file
 * \p in, opened for writing. */
static FILE *replay_input(char *dir, char *in, size_t insz) {
        FILE *fp;
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(in, insz, "%s/in.ndjson", dir);
        ck_assert_ptr_nonnull(fp = fopen(in, "w"));
        return fp;
}

static void rm_dir(const char *dir) {
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        ck_assert_int_eq(system(cmd), 0);
}

static int count_lines(const char *path) {
        FILE *fp = fopen(path, "r");
        int c, n = 0;
        ck_assert_ptr_nonnull(fp);
        while ((c = fgetc(fp)) != EOF)
                n += c == '\n';
        fclose(fp);
        return n;
}

START_TEST(replay_files_match_stats) {
        char dir[] = "/tmp/gws-replay-XXXXXX", in[600], path[700];
        gws_replay_result_t res;
        FILE *fp;
        int i;
        fp = replay_input(dir, in, sizeof(in));
        for (i = 0; i < 50; i++)
                fprintf(fp, "{\"id\":\"r%d\",\"ts\":%d,\"gateway_id\":\"g%d\","
                            "\"provider\":\"p\",\"model\":\"m\",\"status\":%d,"
                            "\"latency_ms\":5}\n",
                        i, 1000 * i, i % 5, i % 10 ? 200 : 500);
        fprintf(fp, "\n{broken\n[]\n");
        fclose(fp);
        gws_config_set(cfg, "filter.normal_sample_rate", "0.5", err,
                       sizeof(err));
        ck_assert_int_eq(gws_replay_run(cfg, in, dir, NULL, &res, err, sizeof(err)),
                         0);
        ck_assert_uint_eq(res.st.in, 52);
        snprintf(path, sizeof(path), "%s/dlq.ndjson", dir);
        ck_assert_int_eq(count_lines(path), 2);
        snprintf(path, sizeof(path), "%s/retained.ndjson", dir);
        ck_assert_int_eq(count_lines(path),
                         (int)(res.st.kept[GWS_KEEP_ERROR] +
                               res.st.kept[GWS_KEEP_ANOMALY] +
                               res.st.kept[GWS_KEEP_SAMPLE] +
                               res.st.kept[GWS_KEEP_RULE]));
        ck_assert_uint_ge(res.st.kept[GWS_KEEP_ERROR], 5);
        ck_assert_int_eq(gws_replay_run(cfg, "/nonexistent/x", dir, NULL, &res, err,
                                        sizeof(err)),
                         -1);
        ck_assert_ptr_nonnull(strstr(err, "/nonexistent/x"));
        rm_dir(dir);
}
END_TEST

/* Replay says why it stopped. An event that could not be processed
 * (GWS_OUT_FAILED without a write error: out of memory, here every
 * realloc failing, so the first line's) is not a write error; it was
 * reported as one, "line 1: cannot write output: Input/output error",
 * an errno no write had set. A write that failed (retained.ndjson on
 * /dev/full: the stdio buffer's first flush, some lines in) names the
 * file and its errno. */
START_TEST(replay_says_why_it_stopped) {
        char dir[] = "/tmp/gws-replay-XXXXXX", in[600], path[700];
        gws_replay_result_t res;
        FILE *fp;
        int i, r, nfail;
        fp = replay_input(dir, in, sizeof(in));
        for (i = 0; i < 50; i++)
                fprintf(fp, "{\"id\":\"r%d\",\"ts\":%d,\"gateway_id\":\"g%d\","
                            "\"provider\":\"p\",\"model\":\"m\",\"status\":200,"
                            "\"latency_ms\":5}\n",
                        i, 1000 * i, i % 5);
        fclose(fp);

        err[0] = '\0';
        test_realloc_fail(-1);
        r = gws_replay_run(cfg, in, dir, NULL, &res, err, sizeof(err));
        test_realloc_fail(0);
        nfail = test_realloc_failed();
        fprintf(stderr,
                "replay_says_why_it_stopped: out of memory: %d realloc(s) "
                "failed, returned %d: %s\n",
                nfail, r, err);
        ck_assert_int_gt(nfail, 0);
        ck_assert_int_eq(r, -1);
        ck_assert_msg(!strncmp(err, "line 1: event could not be processed",
                               36) &&
                          !strstr(err, "cannot write"),
                      "%s", err);
        snprintf(path, sizeof(path), "%s/retained.ndjson", dir);
        ck_assert_int_eq(count_lines(path), 0);

        /* a real write error */
        if (access("/dev/full", W_OK) == 0) {
                ck_assert_int_eq(unlink(path), 0);
                ck_assert_int_eq(symlink("/dev/full", path), 0);
                err[0] = '\0';
                r = gws_replay_run(cfg, in, dir, NULL, &res, err, sizeof(err));
                fprintf(stderr,
                        "replay_says_why_it_stopped: /dev/full: returned "
                        "%d: %s\n",
                        r, err);
                ck_assert_int_eq(r, -1);
                ck_assert_msg(!strncmp(err, "line ", 5) &&
                                  strstr(err, ": cannot write ") &&
                                  strstr(err, path) &&
                                  strstr(err, strerror(ENOSPC)) &&
                                  !strstr(err, "could not be processed"),
                              "%s", err);
                ck_assert_uint_gt(res.lines, 1);
                ck_assert_uint_lt(res.lines, 50);
        }
        rm_dir(dir);
}
END_TEST

/* A replay that cannot start leaves the outputs of the one before as
 * they were: the three files were created (truncated) before the input
 * was opened and before the configuration's pipeline was built, so a
 * mistyped --input, or a filter rule with a typo, emptied the previous
 * results and then failed. */
/* A replay whose input is one of its own outputs (DIR/retained.ndjson
 * replayed again with --out-dir DIR, by a hard link or a symbolic link
 * too) must be refused before any output is opened: opening the outputs
 * truncated the input, and the replay read an empty file and said it was
 * done, the records lost. */
START_TEST(replay_input_is_not_an_output) {
        char dir[] = "/tmp/gws-replay-XXXXXX", in[600], path[700], ln[720];
        gws_replay_result_t res;
        FILE *fp;
        int k;
        fp = replay_input(dir, in, sizeof(in));
        fclose(fp);
        snprintf(path, sizeof(path), "%s/retained.ndjson", dir);
        ck_assert_ptr_nonnull(fp = fopen(path, "w"));
        fputs("{\"id\":\"a\",\"ts\":1000,\"gateway_id\":\"g\",\"provider\":"
              "\"p\",\"model\":\"m\",\"status\":200,\"latency_ms\":5}\n",
              fp);
        fclose(fp);
        snprintf(ln, sizeof(ln), "%s/link.ndjson", dir);
        ck_assert_int_eq(symlink(path, ln), 0);
        for (k = 0; k < 2; k++) {
                err[0] = '\0';
                ck_assert_msg(gws_replay_run(cfg, k ? ln : path, dir, NULL,
                                             &res, err, sizeof(err)) == -2,
                              "replay of its own output %s ran (%s)",
                              k ? "through a link" : "", err);
                ck_assert_ptr_nonnull(strstr(err, "retained.ndjson"));
                ck_assert_int_eq(count_lines(path), 1);
        }
        unlink(ln);
        rm_dir(dir);
}
END_TEST

START_TEST(replay_refusal_keeps_previous_outputs) {
        static const char *names[] = {"retained.ndjson", "alerts.ndjson",
                                      "dlq.ndjson"};
        char dir[] = "/tmp/gws-replay-XXXXXX", in[600], path[700];
        gws_replay_result_t res;
        FILE *fp;
        int i, k;
        fp = replay_input(dir, in, sizeof(in));
        fclose(fp);
        for (k = 0; k < 2; k++) {
                for (i = 0; i < 3; i++) {
                        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                        ck_assert_ptr_nonnull(fp = fopen(path, "w"));
                        fprintf(fp, "{\"previous\":%d}\n", i);
                        fclose(fp);
                }
                if (k == 0) {
                        /* the input cannot be opened */
                        snprintf(path, sizeof(path), "%s/missing.ndjson",
                                 dir);
                        ck_assert_int_eq(gws_replay_run(cfg, path, dir, NULL, &res,
                                                        err, sizeof(err)),
                                         -1);
                        ck_assert_ptr_nonnull(strstr(err, "missing.ndjson"));
                } else {
                        /* the pipeline cannot be built: a rule without a
                         * name (found only when the filter compiles) */
                        ck_assert_int_eq(
                            gws_config_set(cfg, "filter.rules",
                                           "[{\"when\":\"status >= 500\","
                                           "\"action\":\"keep\"}]",
                                           err, sizeof(err)),
                            0);
                        ck_assert_int_eq(gws_replay_run(cfg, in, dir, NULL, &res,
                                                        err, sizeof(err)),
                                         -2);
                        ck_assert_ptr_nonnull(strstr(err, "filter.rules"));
                }
                for (i = 0; i < 3; i++) {
                        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                        ck_assert_msg(count_lines(path) == 1,
                                      "case %d: %s was emptied by a replay "
                                      "that did not start (%s)",
                                      k, names[i], err);
                }
        }
        rm_dir(dir);
}
END_TEST

/* A UTF-8 byte order mark opening the input file (Windows editors,
 * PowerShell's Out-File, Excel's "CSV UTF-8" write one) belongs to the
 * file, not to its first message: the first event went to the DLQ as
 * invalid_json ("unexpected character at byte 0"). One in the middle of
 * the file, or opening a later line, is the message's and stays. */
/* A replay's dead letters say which line of the input they are (its
 * source's partition and offset are simulated: no one can find the line
 * from them), blank lines counted as lines, as an editor numbers them. */
START_TEST(replay_dead_letters_name_the_line) {
        char dir[] = "/tmp/gws-replay-XXXXXX", in[600], path[700];
        char line[8192];
        gws_replay_result_t res;
        json_t *dl;
        json_error_t jerr;
        FILE *fp;
        int n = 0;
        fp = replay_input(dir, in, sizeof(in));
        fputs("{\"id\":\"a\",\"ts\":1000,\"gateway_id\":\"g\",\"provider\":"
              "\"p\",\"model\":\"m\",\"status\":200,\"latency_ms\":5}\n"
              "\n"
              "{\"id\":\"b\",\"ts\":2000,\"gateway_id\":\"g\"}\n"
              "not json\n",
              fp);
        fclose(fp);
        ck_assert_int_eq(
            gws_replay_run(cfg, in, dir, NULL, &res, err, sizeof(err)), 0);
        snprintf(path, sizeof(path), "%s/dlq.ndjson", dir);
        ck_assert_ptr_nonnull(fp = fopen(path, "r"));
        while (fgets(line, sizeof(line), fp)) {
                json_int_t want = n ? 4 : 3;
                ck_assert_ptr_nonnull(dl = json_loads(line, 0, &jerr));
                ck_assert_msg(json_integer_value(json_object_get(
                                  json_object_get(dl, "source"), "line")) ==
                                  want,
                              "dead letter %d should name line %lld: %s", n,
                              (long long)want, line);
                json_decref(dl);
                n++;
        }
        fclose(fp);
        ck_assert_int_eq(n, 2);
        rm_dir(dir);
}
END_TEST

/* A line of nothing but spaces and tabs (an editor's indented empty line,
 * "\t\r\n" from a CRLF file) separates as an empty line does: it was an
 * invalid_json dead letter where the empty line beside it was skipped. */
START_TEST(replay_skips_whitespace_lines) {
        char dir[] = "/tmp/gws-replay-XXXXXX", in[600];
        gws_replay_result_t res;
        FILE *fp;
        int i;
        fp = replay_input(dir, in, sizeof(in));
        fputs("{\"id\":\"a\",\"ts\":1000,\"gateway_id\":\"g\",\"provider\":"
              "\"p\",\"model\":\"m\",\"status\":200,\"latency_ms\":5}\n"
              "   \n"
              "\t\r\n"
              "\n"
              " \t {\"id\":\"b\",\"ts\":2000,\"gateway_id\":\"g\",\"provider\":"
              "\"p\",\"model\":\"m\",\"status\":200,\"latency_ms\":5} \n",
              fp);
        fclose(fp);
        ck_assert_int_eq(
            gws_replay_run(cfg, in, dir, NULL, &res, err, sizeof(err)), 0);
        for (i = 0; i < GWS_EV_ERR__CNT; i++)
                ck_assert_msg(res.st.dlq[i] == 0, "%llu dead letter(s) of "
                              "reason %d", (unsigned long long)res.st.dlq[i],
                              i);
        ck_assert_uint_eq(res.lines, 5);
        ck_assert_uint_eq(res.st.in, 2);
        rm_dir(dir);
}
END_TEST

START_TEST(replay_skips_utf8_bom) {
        char dir[] = "/tmp/gws-replay-XXXXXX", in[600], path[700];
        gws_replay_result_t res;
        FILE *fp;
        int i;
        fp = replay_input(dir, in, sizeof(in));
        fputs("\xEF\xBB\xBF", fp);
        for (i = 0; i < 3; i++)
                fprintf(fp, "%s{\"id\":\"b%d\",\"ts\":%d,\"gateway_id\":\"g\","
                            "\"provider\":\"p\",\"model\":\"m\",\"status\":200,"
                            "\"latency_ms\":5}\r\n",
                        i == 2 ? "\xEF\xBB\xBF" : "", i, 1000 * i);
        fclose(fp);
        gws_config_set(cfg, "filter.normal_sample_rate", "1", err,
                       sizeof(err));
        ck_assert_int_eq(
            gws_replay_run(cfg, in, dir, NULL, &res, err, sizeof(err)), 0);
        ck_assert_uint_eq(res.st.in, 3);
        ck_assert_msg(res.st.dlq[GWS_EV_ERR_NOT_JSON] == 1,
                      "%llu invalid_json dead letters, expected 1 (the "
                      "third line's mark is its own)",
                      (unsigned long long)res.st.dlq[GWS_EV_ERR_NOT_JSON]);
        ck_assert_uint_eq(res.st.kept[GWS_KEEP_SAMPLE], 2);
        snprintf(path, sizeof(path), "%s/retained.ndjson", dir);
        ck_assert_int_eq(count_lines(path), 2);
        rm_dir(dir);
}
END_TEST

/* replay.partitioner: "key" keeps one gateway in one simulated partition
 * (one set of its entities); "random" spreads it over the partitions as
 * -X partitioner=random does, the same way on every run, and the summary
 * says that the gateway arrives on several partitions. */
START_TEST(replay_partitioner_random_spreads) {
        char dir[] = "/tmp/gws-replay-XXXXXX", in[600];
        gws_replay_result_t res;
        uint64_t spread;
        FILE *fp;
        int i;
        fp = replay_input(dir, in, sizeof(in));
        for (i = 0; i < 120; i++)
                fprintf(fp, "{\"id\":\"r%d\",\"ts\":%d,\"gateway_id\":\"g0\","
                            "\"provider\":\"p\",\"model\":\"m\",\"status\":200,"
                            "\"latency_ms\":5}\n",
                        i, 1000 * i);
        fclose(fp);
        ck_assert_int_eq(gws_replay_run(cfg, in, dir, NULL, &res, err, sizeof(err)),
                         0);
        ck_assert_uint_eq(res.det.entities, 4); /* G, GP, GPM, p+m */
        ck_assert_uint_eq(res.place.gateways, 1);
        ck_assert_uint_eq(res.place.split, 0);
        ck_assert_int_eq(gws_config_set(cfg, "replay.partitioner", "random",
                                        err, sizeof(err)),
                         0);
        ck_assert_int_eq(gws_replay_run(cfg, in, dir, NULL, &res, err, sizeof(err)),
                         0);
        spread = res.det.entities;
        ck_assert_uint_ge(spread, 4 * 10); /* >= 10 of 12 partitions */
        /* placement.h: g0 met on several partitions; each run counts its
         * own (the table is reset per replay) */
        ck_assert_uint_eq(res.place.gateways, 1);
        ck_assert_uint_eq(res.place.split, 1);
        ck_assert_int_eq(gws_replay_run(cfg, in, dir, NULL, &res, err, sizeof(err)),
                         0);
        ck_assert_uint_eq(res.det.entities, spread); /* repeatable */
        ck_assert_int_eq(gws_config_set(cfg, "replay.partitioner", "round",
                                        err, sizeof(err)),
                         -1);
        ck_assert_ptr_nonnull(strstr(err, "replay.partitioner"));
        rm_dir(dir);
}
END_TEST

/* redact.ip_truncate in alerts: an entity's client_ip that is no
 * address is shown as "[REDACTED:ip]" (detect.c), and each alert that
 * carries it counts as a redaction of kind "ip", as a retained record or
 * a dead letter does. Latency alerts on the key set model+client_ip of a
 * client "host.internal" (open, update, resolved). Alerts were not
 * counted: only the retained records were. */
static int alerts_redacted; /* alerts whose entity client_ip is replaced */

static int capture_alert_ip(void *opaque, gws_sink_t sink, const char *key,
                            size_t keylen, const char *val, size_t len) {
        int r = capture(opaque, sink, key, keylen, val, len);
        const char *ip;
        if (r == 0 && sink == GWS_SINK_ALERTS &&
            (ip = json_string_value(json_object_get(
                 json_object_get(cap.last[sink], "entity"), "client_ip"))) &&
            !strcmp(ip, "[REDACTED:ip]"))
                alerts_redacted++;
        return r;
}

/* Event \p i of the latency step the alert tests feed: one a second,
 * 300 s normal, 40 s slow, 300 s normal again, on gateway "g", model
 * "p"/"m", with the JSON member \p member (the entity the alert will
 * name). Written to \p in; @returns its length. */
static size_t latency_step(char *in, size_t size, int i, const char *member) {
        snprintf(in, size,
                 "{\"id\":\"e%d\",\"ts\":%lld,\"gateway_id\":\"g\","
                 "\"provider\":\"p\",\"model\":\"m\",\"status\":200,"
                 "\"latency_ms\":%d,%s}",
                 i, 1767225600000LL + i * 1000LL,
                 i >= 300 && i < 340 ? 5000 : 90 + i % 21, member);
        return strlen(in);
}

/* Every output, in order, as "sink<TAB>record" lines, the records'
 * wall-clock members removed (emitted_at, failed_at). */
static int log_sink(void *opaque, gws_sink_t sink, const char *key,
                    size_t keylen, const char *val, size_t len) {
        gws_buf_t *b = opaque;
        json_t *j = json_loadb(val, len, 0, NULL);
        char *d;
        (void)key;
        (void)keylen;
        ck_assert_ptr_nonnull(j);
        json_object_del(j, "emitted_at");
        json_object_del(j, "failed_at");
        d = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        ck_assert_int_eq(gws_buf_printf(b, "%s\t%s\n", gws_sink2str(sink), d),
                         0);
        free(d);
        json_decref(j);
        return 0;
}

/* Input \p i of parse_ahead_matches_process: the latency step on two
 * partitions from five users, every 50th input not JSON (a dead
 * letter). */
static gws_input_t ahead_input(char (*bufs)[512], int i) {
        /* keys that differ from one input of a partition to the next */
        static const char *const users[5] = {
            "\"user_id\":\"u-1\"", "\"user_id\":\"u-2\"",
            "\"user_id\":\"u-3\",\"client_ip\":\"10.0.0.7\"",
            "\"user_id\":\"u-4\"", "\"user_id\":\"u-5\""};
        gws_input_t gi = {bufs[i & 1], 0, "g", 1, "gw.raw", i % 2, i, 0, 0};
        if (i % 50 == 49)
                gi.len = (size_t)snprintf(bufs[i & 1], 512, "{\"id\":\"e%d\",",
                                          i);
        else
                gi.len = latency_step(bufs[i & 1], 512, i,
                                      users[i / 2 % 5]);
        return gi;
}

/* The workers' parse-ahead (gws_pipeline_parse() of the next input
 * before gws_pipeline_finish() of the current, gws_pipeline_prefetch()
 * in between) gives exactly the outputs and counts of
 * gws_pipeline_process() one input at a time: the same records, dead
 * letters and alerts in the same order, and the same detector states. Also when an input was parsed
 * for no detector or for another partition's (finish prepares its keys
 * again), and when a parsed input is discarded instead of processed
 * (the worker's lost, stopped or skipped messages). */
START_TEST(parse_ahead_matches_process) {
        enum { N = 640 };
        gws_pipeline_t *pa = gws_pipeline_new(cfg, err, sizeof(err)),
                       *pb = gws_pipeline_new(cfg, err, sizeof(err));
        gws_detect_t *da[2], *db[2];
        gws_pipeline_msg_t m[2];
        gws_pipeline_stats_t sa = {0}, sb = {0};
        gws_buf_t la = {0}, lb = {0};
        char bufs[2][512];
        gws_input_t in[2];
        int i, c = 0;

        memset(m, 0, sizeof(m));
        ck_assert_ptr_nonnull(pa);
        ck_assert_ptr_nonnull(pb);
        for (i = 0; i < 2; i++) {
                da[i] = gws_detect_new(cfg, i);
                db[i] = gws_detect_new(cfg, i);
                ck_assert_ptr_nonnull(da[i]);
                ck_assert_ptr_nonnull(db[i]);
        }
        /* one at a time; every 13th input is not processed */
        for (i = 0; i < N; i++) {
                gws_input_t gi = ahead_input(bufs, i);
                if (i % 13 != 12)
                        gws_pipeline_process(pa, da[i % 2], &gi, log_sink,
                                             &la);
        }
        /* parsed one ahead: every 7th for no detector, every 11th for
         * the other partition's */
        for (i = 0; i < N; i++) {
                if (i == 0) {
                        in[c] = ahead_input(bufs, 0);
                        gws_pipeline_parse(pb, db[0], &in[c], &m[c]);
                }
                gws_pipeline_prefetch(&m[c]);
                if (i + 1 < N) {
                        int j = i + 1;
                        in[c ^ 1] = ahead_input(bufs, j);
                        gws_pipeline_parse(pb,
                                           j % 7 == 0    ? NULL
                                           : j % 11 == 0 ? db[(j + 1) % 2]
                                                         : db[j % 2],
                                           &in[c ^ 1], &m[c ^ 1]);
                }
                if (i % 13 != 12)
                        gws_pipeline_finish(pb, db[i % 2], &in[c], &m[c],
                                            log_sink, &lb);
                else
                        gws_pipeline_discard(&m[c]);
                ck_assert_int_eq(m[c].parsed, 0);
                c ^= 1;
        }
        gws_pipeline_stats_add(pa, &sa);
        gws_pipeline_stats_add(pb, &sb);
        fprintf(stderr,
                "parse_ahead_matches_process: %llu processed, %llu dead "
                "letters, %llu alerts, %zu bytes of output each\n",
                (unsigned long long)sb.in,
                (unsigned long long)sb.dlq[GWS_EV_ERR_NOT_JSON],
                (unsigned long long)sb.alerts, lb.len);
        ck_assert_uint_gt(sb.alerts, 0);
        ck_assert_uint_gt(sb.dlq[GWS_EV_ERR_NOT_JSON], 0);
        ck_assert_uint_eq(sa.in, sb.in);
        ck_assert_uint_eq(sa.alerts, sb.alerts);
        ck_assert_int_eq(la.len, lb.len);
        ck_assert_msg(!memcmp(la.buf, lb.buf, la.len),
                      "outputs differ between process and parse-ahead");
        /* and the detector states, entity by entity (snapshots) */
        for (i = 0; i < 2; i++) {
                gws_buf_t xa = {0}, xb = {0};
                ck_assert_int_eq(gws_detect_save(da[i], &xa), 0);
                ck_assert_int_eq(gws_detect_save(db[i], &xb), 0);
                ck_assert_msg(xa.len == xb.len &&
                                  !memcmp(xa.buf, xb.buf, xa.len),
                              "partition %d: detector states differ (%zu "
                              "and %zu bytes)",
                              i, xa.len, xb.len);
                gws_buf_free(&xa);
                gws_buf_free(&xb);
        }
        for (i = 0; i < 2; i++) {
                gws_pipeline_msg_free(&m[i]);
                gws_detect_destroy(da[i]);
                gws_detect_destroy(db[i]);
        }
        gws_pipeline_destroy(pa);
        gws_pipeline_destroy(pb);
        gws_buf_free(&la);
        gws_buf_free(&lb);
}
END_TEST

START_TEST(alert_ip_redactions_are_counted) {
        static const char *confs[] = {
            "{\"redact\":{\"ip_truncate\":true},"
            "\"detectors\":{\"numeric_keys\":\"model+client_ip\"}}",
            "{\"redact\":{\"enabled\":false,\"ip_truncate\":true},"
            "\"detectors\":{\"numeric_keys\":\"model+client_ip\"}}"};
        gws_pipeline_stats_t st;
        char in[512];
        size_t c;
        int i;
        for (c = 0; c < sizeof(confs) / sizeof(confs[0]); c++) {
                reconfigure(confs[c]);
                memset(cap.n, 0, sizeof(cap.n));
                alerts_redacted = 0;
                /* 1 event a second: 300 s normal, 40 s slow, 300 s
                 * normal again */
                for (i = 0; i < 640; i++) {
                        gws_input_t gi = {in, 0, "g", 1, "gw.raw", 3, i, 0, 0};
                        gi.len = latency_step(in, sizeof(in), i,
                                              "\"client_ip\":\"host.internal\"");
                        ck_assert_int_eq(gws_pipeline_process(
                                             pl, det, &gi, capture_alert_ip,
                                             &cap),
                                         GWS_OUT_KEPT);
                }
                memset(&st, 0, sizeof(st));
                gws_pipeline_stats_add(pl, &st);
                fprintf(stderr,
                        "alert_ip_redactions_are_counted: conf %zu: %d "
                        "retained, %d alerts (%d with client_ip "
                        "[REDACTED:ip]), redactions{kind=\"ip\"} %llu\n",
                        c, cap.n[GWS_SINK_RETAINED], cap.n[GWS_SINK_ALERTS],
                        alerts_redacted,
                        (unsigned long long)st.rec.redactions[GWS_RK_IP]);
                ck_assert_int_ge(alerts_redacted, 2); /* open, resolved */
                ck_assert_uint_eq(st.rec.redactions[GWS_RK_IP],
                                  (uint64_t)cap.n[GWS_SINK_RETAINED] +
                                      (uint64_t)alerts_redacted);
        }
}
END_TEST

/* gwsieve_alerts_total (and the replay summary's alerts) count alert
 * records handed to the sink. An alert the sink refuses is not counted,
 * nor is its entity's client_ip replaced under redact.ip_truncate (a
 * redaction in no output); the event fails. An alert the sink took
 * counts even when its event then fails (here: the event's retained
 * record refused): it left, and the event read again after the restart
 * sends it again, counted by the new process. Latency alerts of
 * alert_ip_redactions_are_counted's series (open, resolved). */
static int refuse_alerts; /* 1: alerts; 0: the record after an alert */
static int alert_taken;   /* an alert was taken, its event's record not
                           * seen yet */
static int refused;

static int capture_refusing(void *opaque, gws_sink_t sink, const char *key,
                            size_t keylen, const char *val, size_t len) {
        if (sink == GWS_SINK_ALERTS && refuse_alerts) {
                refused++;
                return -1;
        }
        if (sink == GWS_SINK_RETAINED && alert_taken) {
                alert_taken = 0;
                refused++;
                return -1;
        }
        if (sink == GWS_SINK_ALERTS)
                alert_taken = 1;
        return capture(opaque, sink, key, keylen, val, len);
}

START_TEST(alerts_counted_when_sent) {
        gws_pipeline_stats_t st;
        gws_outcome_t out;
        char in[512];
        uint64_t nby = 0;
        int i, j, nfailed = 0;

        reconfigure("{\"redact\":{\"ip_truncate\":true},"
                    "\"detectors\":{\"numeric_keys\":\"model+client_ip\"}}");
        refuse_alerts = _i == 0;
        alert_taken = 0;
        refused = 0;
        for (i = 0; i < 640; i++) {
                gws_input_t gi = {in, 0, "g", 1, "gw.raw", 3, i, 0, 0};
                gi.len = latency_step(in, sizeof(in), i,
                                      "\"client_ip\":\"host.internal\"");
                out = gws_pipeline_process(pl, det, &gi, capture_refusing,
                                           &cap);
                ck_assert(out == GWS_OUT_KEPT || out == GWS_OUT_FAILED);
                nfailed += out == GWS_OUT_FAILED;
        }
        memset(&st, 0, sizeof(st));
        gws_pipeline_stats_add(pl, &st);
        for (i = 0; i < GWS_ALERT_KIND__CNT; i++)
                for (j = 0; j < GWS_ALERT_STATE__CNT; j++)
                        nby += st.alerts_by[i][j];
        fprintf(stderr,
                "alerts_counted_when_sent: %s refused: %d event(s) failed, "
                "%d alert(s) sent, counted %llu (by kind and state %llu), "
                "%d retained, redactions{kind=\"ip\"} %llu\n",
                _i == 0 ? "alerts" : "their events' records", nfailed,
                cap.n[GWS_SINK_ALERTS], (unsigned long long)st.alerts,
                (unsigned long long)nby, cap.n[GWS_SINK_RETAINED],
                (unsigned long long)st.rec.redactions[GWS_RK_IP]);
        ck_assert_int_ge(refused, 2); /* open, resolved */
        ck_assert_int_eq(nfailed, refused);
        ck_assert_uint_eq(st.failed, (uint64_t)refused);
        ck_assert_uint_eq(st.alerts, (uint64_t)cap.n[GWS_SINK_ALERTS]);
        ck_assert_uint_eq(nby, (uint64_t)cap.n[GWS_SINK_ALERTS]);
        if (_i == 0) {
                ck_assert_int_eq(cap.n[GWS_SINK_ALERTS], 0);
                /* the events that failed wrote no record */
                ck_assert_uint_eq(st.rec.redactions[GWS_RK_IP],
                                  (uint64_t)cap.n[GWS_SINK_RETAINED]);
        } else {
                ck_assert_int_eq(cap.n[GWS_SINK_ALERTS], refused);
        }
}
END_TEST

/* gwsieve_events_retained_total, gwsieve_dlq_total and
 * gwsieve_redactions_total (and the trimming figures of the replay
 * summary) count records the sink took, as gwsieve_alerts_total does
 * (alerts_counted_when_sent): a record the sink refused is in no output.
 * Loop 0: the sink refuses a retained record (kept as an error: a 500
 * with an e-mail, an OpenAI key, a denied path and a body over
 * trim.max_body_bytes); loop 1: a dead letter (a payload cut short, with
 * a key and an e-mail). The event fails and counts nothing but its
 * failure; read again and sent, it counts once: what a pipeline that only
 * sent it counts. Loop 2: the sink refuses the alerts of JANE's latency
 * series (numeric key model+user_id: the alert's entity names her
 * e-mail, redacted in the alert); their events fail, and the e-mails
 * counted are those of the retained records sent, one each. */
static int refuse_sink; /* the sink capture_refuse() refuses */
static int nrefused;

static int capture_refuse(void *opaque, gws_sink_t sink, const char *key,
                          size_t keylen, const char *val, size_t len) {
        if ((int)sink == refuse_sink) {
                nrefused++;
                return -1;
        }
        return capture(opaque, sink, key, keylen, val, len);
}

static const struct {
        gws_sink_t sink;     /* refused */
        const char *in;      /* the event (loops 0, 1) */
        gws_outcome_t sent;  /* its outcome when sent */
} refusals[] = {
    {GWS_SINK_RETAINED,
     "{\"id\":\"t1\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
     "\"model\":\"m\",\"status\":500,\"latency_ms\":1,"
     "\"client_ip\":\"host.internal\","
     "\"metadata\":{\"keep\":1,\"internal\":{\"x\":1}},"
     "\"user_id\":\"jane@example.com\","
     "\"request\":{\"messages\":[{\"content\":\"key sk-proj-"
     "abcdefghijklmnopqrstuvwxyz "
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}]}}",
     GWS_OUT_KEPT},
    {GWS_SINK_DLQ,
     "{\"id\":\"d2\",\"prompt\":\"my key: sk-proj-AAAAAAAAAAAAAAAAAAAAAAAAAAAA"
     " and mail: john.doe@example.com",
     GWS_OUT_DLQ},
    {GWS_SINK_ALERTS, NULL, GWS_OUT_KEPT},
};

/* The counters a record adds: retained by reason, dead letters by
 * reason, redactions by kind, trimming. */
static void counted_eq(const gws_pipeline_stats_t *a,
                       const gws_pipeline_stats_t *b) {
        int i;
        for (i = 0; i < GWS_KEEP__CNT; i++)
                ck_assert_uint_eq(a->kept[i], b->kept[i]);
        for (i = 0; i < GWS_EV_ERR__CNT; i++)
                ck_assert_uint_eq(a->dlq[i], b->dlq[i]);
        for (i = 0; i < GWS_RK__CNT; i++)
                ck_assert_uint_eq(a->rec.redactions[i], b->rec.redactions[i]);
        ck_assert_uint_eq(a->rec.bodies_truncated, b->rec.bodies_truncated);
        ck_assert_uint_eq(a->rec.bodies_dropped, b->rec.bodies_dropped);
        ck_assert_uint_eq(a->rec.fields_trimmed, b->rec.fields_trimmed);
}

static uint64_t redactions_of(const gws_pipeline_stats_t *st) {
        uint64_t n = 0;
        int i;
        for (i = 0; i < GWS_RK__CNT; i++)
                n += st->rec.redactions[i];
        return n;
}

START_TEST(outputs_counted_when_sent) {
        static const gws_pipeline_stats_t none;
        gws_pipeline_stats_t st, st1, ref;
        gws_pipeline_t *pl2;
        gws_input_t gi = {NULL, 0, "g", 1, "gw.raw", 3, 7, 0, 0};
        gws_outcome_t out;
        char in[512];
        int i, nfailed = 0;

        reconfigure(_i == 2 ? "{\"detectors\":{\"numeric_keys\":"
                              "\"model+user_id\"}}"
                            : "{\"trim\":{\"deny\":[\"metadata.internal\"],"
                              "\"max_body_bytes\":40},"
                              "\"redact\":{\"ip_truncate\":true}}");
        refuse_sink = (int)refusals[_i].sink;
        nrefused = 0;

        if (_i == 2) {
                for (i = 0; i < 640; i++) {
                        gi.value = in;
                        gi.offset = i;
                        gi.len = latency_step(
                            in, sizeof(in), i,
                            "\"user_id\":\"jane.doe@example.com\"");
                        out = gws_pipeline_process(pl, det, &gi,
                                                   capture_refuse, &cap);
                        ck_assert(out == GWS_OUT_KEPT ||
                                  out == GWS_OUT_FAILED);
                        nfailed += out == GWS_OUT_FAILED;
                }
                memset(&st, 0, sizeof(st));
                gws_pipeline_stats_add(pl, &st);
                fprintf(stderr,
                        "outputs_counted_when_sent: alerts refused: %d "
                        "event(s) failed, %d retained sent, counted %llu; "
                        "redactions{kind=\"email\"} %llu\n",
                        nfailed, cap.n[GWS_SINK_RETAINED],
                        (unsigned long long)(st.kept[GWS_KEEP_ANOMALY] +
                                             st.kept[GWS_KEEP_SAMPLE]),
                        (unsigned long long)st.rec.redactions[GWS_RK_EMAIL]);
                ck_assert_int_ge(nrefused, 2); /* open, resolved */
                ck_assert_int_eq(nfailed, nrefused);
                ck_assert_int_eq(cap.n[GWS_SINK_ALERTS], 0);
                ck_assert_uint_eq(st.kept[GWS_KEEP_ERROR] +
                                      st.kept[GWS_KEEP_ANOMALY] +
                                      st.kept[GWS_KEEP_SAMPLE] +
                                      st.kept[GWS_KEEP_RULE],
                                  (uint64_t)cap.n[GWS_SINK_RETAINED]);
                /* one e-mail per retained record sent, none of the
                 * refused alerts */
                ck_assert_uint_eq(st.rec.redactions[GWS_RK_EMAIL],
                                  (uint64_t)cap.n[GWS_SINK_RETAINED]);
                ck_assert_uint_eq(redactions_of(&st),
                                  (uint64_t)cap.n[GWS_SINK_RETAINED]);
                return;
        }

        gi.value = refusals[_i].in;
        gi.len = strlen(gi.value);
        out = gws_pipeline_process(pl, det, &gi, capture_refuse, &cap);
        memset(&st, 0, sizeof(st));
        gws_pipeline_stats_add(pl, &st);
        /* read again after the restart, and sent */
        refuse_sink = -1;
        ck_assert_int_eq(gws_pipeline_process(pl, det, &gi, capture_refuse,
                                              &cap),
                         refusals[_i].sent);
        memset(&st1, 0, sizeof(st1));
        gws_pipeline_stats_add(pl, &st1);
        /* a pipeline that only sent it */
        pl2 = gws_pipeline_new(cfg, err, sizeof(err));
        ck_assert_msg(pl2 != NULL, "%s", err);
        ck_assert_int_eq(gws_pipeline_process(pl2, det, &gi, capture, &cap),
                         refusals[_i].sent);
        memset(&ref, 0, sizeof(ref));
        gws_pipeline_stats_add(pl2, &ref);
        gws_pipeline_destroy(pl2);
        fprintf(stderr,
                "outputs_counted_when_sent: %s refused: outcome %s; "
                "counted then: retained %llu, dead letters %llu, "
                "redactions %llu, bodies truncated %llu, fields trimmed "
                "%llu; sent once: redactions %llu, bodies truncated %llu, "
                "fields trimmed %llu; refused then sent: redactions %llu\n",
                gws_sink2str(refusals[_i].sink),
                out == GWS_OUT_FAILED ? "failed" : "not failed",
                (unsigned long long)(st.kept[GWS_KEEP_ERROR] +
                                     st.kept[GWS_KEEP_ANOMALY] +
                                     st.kept[GWS_KEEP_SAMPLE] +
                                     st.kept[GWS_KEEP_RULE]),
                (unsigned long long)(st.dlq[GWS_EV_ERR_NOT_JSON]),
                (unsigned long long)redactions_of(&st),
                (unsigned long long)st.rec.bodies_truncated,
                (unsigned long long)st.rec.fields_trimmed,
                (unsigned long long)redactions_of(&ref),
                (unsigned long long)ref.rec.bodies_truncated,
                (unsigned long long)ref.rec.fields_trimmed,
                (unsigned long long)redactions_of(&st1));
        ck_assert_int_eq(out, GWS_OUT_FAILED);
        ck_assert_int_eq(nrefused, 1);
        ck_assert_uint_eq(st.in, 1);
        ck_assert_uint_eq(st.failed, 1);
        counted_eq(&st, &none);
        /* what is compared counts something */
        ck_assert_uint_ge(redactions_of(&ref), 2);
        if (_i == 0) {
                ck_assert_uint_eq(ref.kept[GWS_KEEP_ERROR], 1);
                ck_assert_uint_eq(ref.rec.bodies_truncated, 1);
                ck_assert_uint_eq(ref.rec.fields_trimmed, 1);
        } else {
                ck_assert_uint_eq(ref.dlq[GWS_EV_ERR_NOT_JSON], 1);
        }
        counted_eq(&st1, &ref);
        ck_assert_uint_eq(st1.failed, 1);
}
END_TEST

/* An alert whose redaction fails (out of memory) must not leave
 * unredacted: it was sent as the detector wrote it, entity and reason
 * naming the user. Latency alerts on the key set model+user_id of a user
 * whose id is an e-mail address (open, then resolved). The second one
 * comes from a pipeline that has not redacted an alert yet (another
 * worker's) while every realloc fails: its writer cannot allocate the
 * alert's tape or output, and only that (the event's tape, the
 * detector's alert and the retained record's buffers have their room
 * already). Nothing with the address may reach the sink, and the event
 * fails as it does when a sink refuses a record (not committed, read
 * again after the restart). With redaction off (the second config) the
 * alert is copied to the same buffer: a copy that could not be made was
 * sent all the same, an empty record. An alert that was not sent is not
 * counted either (gwsieve_alerts_total, the replay summary): it was,
 * before it was redacted. */
#define JANE "jane.doe@example.com"

static int raw_jane;        /* records of any sink carrying JANE */
static char raw_rec[320];  /* the last of them, cut */

static int capture_jane(void *opaque, gws_sink_t sink, const char *key,
                        size_t keylen, const char *val, size_t len) {
        if (memmem(val, len, JANE, strlen(JANE))) {
                raw_jane++;
                snprintf(raw_rec, sizeof(raw_rec), "%s: %.*s",
                         gws_sink2str(sink), (int)(len < 300 ? len : 300),
                         val);
        }
        return capture(opaque, sink, key, keylen, val, len);
}

/* Event \p i of user JANE: one a second, 300 s normal, 40 s slow, 300 s
 * normal again. */
static gws_outcome_t feed_jane(gws_pipeline_t *p, gws_detect_t *d, int i) {
        char in[512];
        gws_input_t gi = {in, 0, "g", 1, "gw.raw", 3, i, 0, 0};
        gi.len = latency_step(in, sizeof(in), i, "\"user_id\":\"" JANE "\"");
        return gws_pipeline_process(p, d, &gi, capture_jane, &cap);
}

static const struct {
        const char *conf;
        const char *uid; /* the alerts' entity user_id */
} alert_oom[] = {
    {"{\"detectors\":{\"numeric_keys\":\"model+user_id\"}}",
     "[REDACTED:email]"},
    {"{\"redact\":{\"enabled\":false},"
     "\"detectors\":{\"numeric_keys\":\"model+user_id\"}}",
     JANE},
};

START_TEST(alert_redaction_failure_sends_nothing) {
        int redacting = strcmp(alert_oom[_i].uid, JANE) != 0;
        gws_pipeline_t *pl2;
        gws_detect_t *d;
        gws_pipeline_stats_t st;
        gws_detect_stats_t ds0, ds1;
        gws_outcome_t out;
        const char *uid;
        uint64_t nby = 0;
        int i, j, k = -1, nalerts = 0, first = -1;

        gws_pipeline_destroy(pl);
        gws_detect_destroy(det);
        ck_assert_int_eq(gws_config_load_string(cfg, alert_oom[_i].conf,
                                                err, sizeof(err)),
                         0);
        pl = gws_pipeline_new(cfg, err, sizeof(err));
        ck_assert_msg(pl != NULL, "%s", err);
        det = gws_detect_new(cfg, 0);
        pl2 = gws_pipeline_new(cfg, err, sizeof(err));
        ck_assert_msg(pl2 != NULL, "%s", err);

        /* A first run (a detector of its own) finds the events that emit
         * alerts, and that redaction does change them. */
        d = gws_detect_new(cfg, 0);
        ck_assert_ptr_nonnull(d);
        for (i = 0; i < 640 && k < 0; i++) {
                int was = cap.n[GWS_SINK_ALERTS];
                ck_assert_int_eq(feed_jane(pl, d, i), GWS_OUT_KEPT);
                if (cap.n[GWS_SINK_ALERTS] == was)
                        continue;
                ck_assert_int_eq(cap.n[GWS_SINK_ALERTS], was + 1);
                uid = json_string_value(json_object_get(
                    json_object_get(cap.last[GWS_SINK_ALERTS], "entity"),
                    "user_id"));
                ck_assert_str_eq(uid ? uid : "(none)", alert_oom[_i].uid);
                if (first < 0)
                        first = i;
                else
                        k = i;
        }
        gws_detect_destroy(d);
        ck_assert_msg(k > 0, "expected two alerts in the first run");
        if (redacting)
                ck_assert_int_eq(raw_jane, 0);

        /* pl2 writes one retained record (a detector of its own, no
         * alert): its record writer has the room for the next */
        d = gws_detect_new(cfg, 0);
        ck_assert_int_eq(feed_jane(pl2, d, 0), GWS_OUT_KEPT);
        gws_detect_destroy(d);

        for (i = 0; i < k; i++)
                ck_assert_int_eq(feed_jane(pl, det, i), GWS_OUT_KEPT);
        nalerts = cap.n[GWS_SINK_ALERTS];
        raw_jane = 0;
        gws_detect_stats(det, &ds0);
        test_realloc_fail(-1);
        out = feed_jane(pl2, det, k);
        test_realloc_fail(0);
        gws_detect_stats(det, &ds1);
        memset(&st, 0, sizeof(st));
        gws_pipeline_stats_add(pl2, &st);
        for (i = 0; i < GWS_ALERT_KIND__CNT; i++)
                for (j = 0; j < GWS_ALERT_STATE__CNT; j++)
                        nby += st.alerts_by[i][j];
        fprintf(stderr,
                "alert_redaction_failure_sends_nothing: conf %d: alerts at "
                "events %d and %d; the second: %llu alert(s) from the "
                "detector, %d realloc(s) failed, %d record(s) with the "
                "address, %d alert(s) sent, counted %llu (by kind and "
                "state %llu), outcome %s\n",
                _i, first, k,
                (unsigned long long)(ds1.alerts_open + ds1.alerts_update +
                                     ds1.alerts_resolved -
                                     ds0.alerts_open - ds0.alerts_update -
                                     ds0.alerts_resolved),
                realloc_failed, raw_jane, cap.n[GWS_SINK_ALERTS] - nalerts,
                (unsigned long long)st.alerts, (unsigned long long)nby,
                out == GWS_OUT_FAILED ? "failed" : "not failed");
        /* it came to be redacted */
        ck_assert_uint_eq(ds1.alerts_open + ds1.alerts_update +
                              ds1.alerts_resolved,
                          ds0.alerts_open + ds0.alerts_update +
                              ds0.alerts_resolved + 1);
        ck_assert_int_gt(realloc_failed, 0);
        /* gwsieve_alerts_total counts alert records sent: not this one */
        ck_assert_uint_eq(st.alerts, 0);
        ck_assert_uint_eq(nby, 0);
        if (redacting)
                ck_assert_msg(raw_jane == 0,
                              "%d record(s) carry the user id unredacted: "
                              "%s",
                              raw_jane, raw_rec);
        ck_assert_int_eq(cap.n[GWS_SINK_ALERTS], nalerts);
        ck_assert_int_eq(out, GWS_OUT_FAILED);
        ck_assert_uint_eq(st.failed, 1);

        /* memory back: the next event goes through as usual */
        ck_assert_int_eq(feed_jane(pl2, det, k + 1), GWS_OUT_KEPT);
        if (redacting)
                ck_assert_int_eq(raw_jane, 0);
        gws_pipeline_destroy(pl2);
}
END_TEST

/* A dead letter's payload that is JSON is redacted as JSON; only one
 * that does not parse is redacted as text. Under redact.ip_truncate the
 * two differ: as JSON a client_ip that is no address fails closed
 * ("[REDACTED:ip]"), as text only address literals are cut and
 * "host.internal" stays. When the JSON redaction ran out of memory, the
 * payload went out redacted as text. A first dead letter (600 bytes that
 * do not parse, nothing to redact) gives the envelope and the JSON tape
 * their room, not the buffer of the redacted payload; then one realloc
 * fails (the first, the JSON redaction's output; memory comes back for
 * the next). */
START_TEST(dlq_json_redaction_failure_sends_nothing) {
        static const char pay[] =
            "{\"id\":\"d1\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":"
            "\"p\",\"status\":200,\"latency_ms\":1,\"client_ip\":"
            "\"host.internal\",\"user_id\":\"" JANE "\"}";
        char warm[601];
        const char *s;
        gws_outcome_t out;
        int ndlq;

        gws_pipeline_destroy(pl);
        ck_assert_int_eq(gws_config_load_string(
                             cfg, "{\"redact\":{\"ip_truncate\":true}}", err,
                             sizeof(err)),
                         0);
        pl = gws_pipeline_new(cfg, err, sizeof(err));
        ck_assert_msg(pl != NULL, "%s", err);

        /* as JSON: both gone */
        ck_assert_int_eq(run1(pay, strlen(pay)), GWS_OUT_DLQ);
        s = json_string_value(json_object_get(cap.last[GWS_SINK_DLQ],
                                              "payload"));
        ck_assert_ptr_nonnull(s);
        ck_assert_ptr_null(strstr(s, "host.internal"));
        ck_assert_ptr_null(strstr(s, JANE));
        ck_assert_ptr_nonnull(strstr(s, "\"client_ip\":\"[REDACTED:ip]\""));

        gws_pipeline_destroy(pl);
        pl = gws_pipeline_new(cfg, err, sizeof(err));
        ck_assert_msg(pl != NULL, "%s", err);
        memset(warm, 'x', sizeof(warm) - 1);
        warm[sizeof(warm) - 1] = '\0';
        ck_assert_int_eq(run1(warm, strlen(warm)), GWS_OUT_DLQ);
        ndlq = cap.n[GWS_SINK_DLQ];
        test_realloc_fail(1);
        out = run1(pay, strlen(pay));
        test_realloc_fail(0);
        s = cap.n[GWS_SINK_DLQ] > ndlq
                ? json_string_value(
                      json_object_get(cap.last[GWS_SINK_DLQ], "payload"))
                : NULL;
        fprintf(stderr,
                "dlq_json_redaction_failure_sends_nothing: %d realloc(s) "
                "failed, %d dead letter(s) sent, outcome %s%s%s\n",
                realloc_failed, cap.n[GWS_SINK_DLQ] - ndlq,
                out == GWS_OUT_FAILED ? "failed" : "not failed",
                s ? ", payload " : "", s ? s : "");
        ck_assert_int_gt(realloc_failed, 0);
        ck_assert_msg(!s || !strstr(s, "host.internal"),
                      "a dead letter carries client_ip in full: %s", s);
        ck_assert_int_eq(cap.n[GWS_SINK_DLQ], ndlq);
        ck_assert_int_eq(out, GWS_OUT_FAILED);

        /* memory back: redacted as JSON again */
        ck_assert_int_eq(run1(pay, strlen(pay)), GWS_OUT_DLQ);
        s = json_string_value(json_object_get(cap.last[GWS_SINK_DLQ],
                                              "payload"));
        ck_assert_ptr_nonnull(s);
        ck_assert_ptr_nonnull(strstr(s, "\"client_ip\":\"[REDACTED:ip]\""));
}
END_TEST

Suite *gws_pipeline_suite(void) {
        Suite *s = suite_create("pipeline");
        TCase *tc = tcase_create("process");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, retained_is_input_plus_sieve);
        tcase_add_test(tc, dropped_and_errors);
        tcase_add_test(tc, stats_never_show_more_drops_than_unkept);
        tcase_add_test(tc, stats_sampled_out_never_goes_down);
        tcase_add_loop_test(tc, dlq_keeps_original_and_reason, 0,
                            sizeof(dlq) / sizeof(dlq[0]));
        tcase_add_test(tc, sink_failure_is_reported);
        tcase_add_test(tc, trim_truncate_redact);
        tcase_add_test(tc, sampled_events_drop_bodies);
        tcase_add_test(tc, escaped_member_names_are_the_same_names);
        tcase_add_test(tc, string_body_truncated_as_text);
        tcase_add_test(tc, body_not_cut_counted_once);
        tcase_add_test(tc, redacted_member_names_stay_distinct);
        tcase_add_test(tc, redacted_names_do_not_take_existing_names);
        tcase_add_test(tc, dlq_text_payload_escapes_hide_nothing);
        tcase_add_test(tc, dlq_text_payload_custom_patterns_see_escapes);
        tcase_add_test(tc, custom_match_limit_fails_closed_and_warns);
        tcase_add_test(tc, ids_are_not_mistaken_for_cards);
        tcase_add_test(tc, allow_keeps_only_its_paths);
        tcase_add_test(tc, alert_id_is_not_redacted);
        tcase_add_test(tc, fields_leave_the_alert_contract);
        tcase_add_test(tc, dlq_payload_is_redacted);
        tcase_add_test(tc, dlq_envelope_is_bounded);
        tcase_add_test(tc, rejected_envelope);
        tcase_add_test(tc, deny_keeps_required_and_rule_name_cut_at_a_character);
        tcase_add_test(tc, dlq_json_payload_is_redacted_as_json);
        tcase_add_test(tc, double_encoded_body_hides_nothing);
        tcase_add_test(tc, card_numbers_as_json_numbers);
        tcase_add_test(tc, credential_fields_redacted);
        tcase_add_test(tc, cloud_credentials_by_name);
        tcase_add_test(tc, preset_note_in_dlq_detail);
        tcase_add_loop_test(tc, ip_truncate_fails_closed, 0,
                            sizeof(ipv) / sizeof(ipv[0]));
        tcase_add_test(tc, ip_truncate_escaped_name_and_presets);
        tcase_add_test(tc, dlq_payload_ip_truncate);
        tcase_add_test(tc, alert_ip_redactions_are_counted);
        tcase_add_test(tc, parse_ahead_matches_process);
        tcase_add_loop_test(tc, alerts_counted_when_sent, 0, 2);
        tcase_add_loop_test(tc, outputs_counted_when_sent, 0,
                            sizeof(refusals) / sizeof(refusals[0]));
        tcase_add_loop_test(tc, alert_redaction_failure_sends_nothing, 0,
                            sizeof(alert_oom) / sizeof(alert_oom[0]));
        tcase_add_test(tc, dlq_json_redaction_failure_sends_nothing);
        suite_add_tcase(s, tc);
        tc = tcase_create("replay");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_loop_test(tc, replay_key_table, 0,
                            sizeof(keys) / sizeof(keys[0]));
        tcase_add_test(tc, replay_files_match_stats);
        tcase_add_test(tc, replay_partitioner_random_spreads);
        tcase_add_test(tc, replay_says_why_it_stopped);
        tcase_add_test(tc, replay_refusal_keeps_previous_outputs);
        tcase_add_test(tc, replay_skips_utf8_bom);
        tcase_add_test(tc, replay_skips_whitespace_lines);
        tcase_add_test(tc, replay_dead_letters_name_the_line);
        tcase_add_test(tc, replay_input_is_not_an_output);
        suite_add_tcase(s, tc);
        return s;
}
