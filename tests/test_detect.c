/* test_detect.c - detectors on synthetic series with known answers. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gwsieve/detect.h"
#include "gwsieve/util.h"
#include "suites.h"

/* A tiny seeded PRNG (the test must not depend on libc's rand). */
static uint64_t st;
static double unif(void) {
        st ^= st << 13;
        st ^= st >> 7;
        st ^= st << 17;
        return (double)(st >> 11) / 9007199254740992.0;
}
static double gauss(void) {
        double u = unif() + 1e-12, v = unif();
        return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

typedef struct {
        json_t *alerts; /* array of parsed alerts */
} sink_t;

static int cb(void *opaque, const char *id, const char *json, size_t len,
              int kind, int state) {
        sink_t *s = opaque;
        json_error_t e;
        json_t *j = json_loadb(json, len, 0, &e);
        char *again;
        ck_assert_msg(j != NULL, "alert is not JSON: %s", e.text);
        /* The detector writes alerts itself: byte for byte what jansson
         * would write for the same object (member order, numbers). */
        again = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        ck_assert_ptr_nonnull(again);
        ck_assert_msg(strlen(again) == len && !memcmp(again, json, len),
                      "alert differs from jansson's rendering:\n%.*s\n%s",
                      (int)len, json, again);
        free(again);
        ck_assert_str_eq(json_string_value(json_object_get(j, "alert_id")),
                         id);
        ck_assert_str_eq(json_string_value(json_object_get(j, "kind")),
                         gws_alert_kind_name(kind));
        ck_assert_str_eq(json_string_value(json_object_get(j, "state")),
                         gws_alert_state_name(state));
        json_array_append_new(s->alerts, j);
        return 0;
}

static gws_config_t *cfg;
static gws_detect_t *det;
static sink_t sink;
static char idbuf[32];
static int evn; /* event id counter; reset per series */

static void setup(void) {
        st = 88172645463325252ULL;
        cfg = gws_config_new();
        det = gws_detect_new(cfg, 0);
        sink.alerts = json_array();
}
static void teardown(void) {
        gws_detect_destroy(det);
        gws_config_destroy(cfg);
        json_decref(sink.alerts);
}

/* A fresh detector with one setting changed. */
static void redetect(const char *key, const char *value) {
        gws_detect_destroy(det);
        ck_assert_int_eq(gws_config_set(cfg, key, value, NULL, 0), 0);
        det = gws_detect_new(cfg, 0);
        ck_assert_ptr_nonnull(det);
}

/* One event; returns its score. */
static gws_score_t feed(int64_t ts, const char *gw, const char *model,
                        int status, double lat, const char *user) {
        gws_event_t ev;
        gws_score_t sc;
        memset(&ev, 0, sizeof(ev));
        snprintf(idbuf, sizeof(idbuf), "ev-%d", evn++);
        ev.id = (gws_str_t){idbuf, strlen(idbuf)};
        ev.gateway_id = (gws_str_t){gw, strlen(gw)};
        ev.provider = (gws_str_t){"openai", 6};
        ev.model = (gws_str_t){model, strlen(model)};
        if (user)
                ev.user_id = (gws_str_t){user, strlen(user)};
        ev.ts_ms = ts;
        ev.status = status;
        ev.success = status < 400;
        ev.latency_ms = lat;
        ck_assert_int_ge(gws_detect_event(det, &ev, &sc, cb, &sink), 0);
        return sc;
}

static json_t *first(const char *kind, const char *state) {
        size_t i;
        json_t *a;
        json_array_foreach(sink.alerts, i, a) {
                if (!strcmp(json_string_value(json_object_get(a, "kind")),
                            kind) &&
                    !strcmp(json_string_value(json_object_get(a, "state")),
                            state))
                        return a;
        }
        return NULL;
}

static int count(const char *kind, const char *state) {
        size_t i;
        json_t *a;
        int n = 0;
        json_array_foreach(sink.alerts, i, a) {
                if (!strcmp(json_string_value(json_object_get(a, "kind")),
                            kind) &&
                    !strcmp(json_string_value(json_object_get(a, "state")),
                            state))
                        n++;
        }
        return n;
}

#define T0 1767225600000LL
#define FUTURE_CONFIRM_EXPECTED 20 /* detect.c FUTURE_CONFIRM */

START_TEST(stable_series_no_alerts) {
        int i, high = 0;
        for (i = 0; i < 5000; i++) {
                gws_score_t sc = feed(T0 + i * 200, "gw", "m", 200,
                                      exp(6.5 + 0.5 * gauss()), NULL);
                high += sc.score >= 0.5;
        }
        ck_assert_int_eq((int)json_array_size(sink.alerts), 0);
        ck_assert_int_le(high, 25); /* <= 0.5% */
}
END_TEST

/* gws_detect_changes(), what a revocation compares with its partition's
 * last snapshot: it moves with every event scored (one before 1970
 * included: its counters move) and every load, and with nothing else (a
 * save, the stats). */
START_TEST(changes_move_with_events_and_loads) {
        gws_buf_t snap = {0};
        gws_detect_stats_t ds;
        gws_detect_t *d2;
        char why[256];
        uint64_t c;

        ck_assert_uint_eq(gws_detect_changes(det), 0);
        feed(T0, "gw", "m", 200, 300, "u1");
        feed(T0 + 200, "gw", "m", 200, 310, "u2");
        ck_assert_uint_eq((c = gws_detect_changes(det)), 2);
        ck_assert_int_eq(gws_detect_save(det, &snap), 0);
        gws_detect_stats(det, &ds);
        ck_assert_uint_eq(gws_detect_changes(det), c);
        feed(-1000, "gw", "m", 200, 300, "u1"); /* refused: skewed */
        ck_assert_uint_eq(gws_detect_changes(det), c + 1);
        d2 = gws_detect_new(cfg, 0);
        ck_assert_ptr_nonnull(d2);
        ck_assert_int_ge(gws_detect_load(d2, snap.buf, snap.len, why,
                                         sizeof(why)),
                         0);
        ck_assert_uint_eq(gws_detect_changes(d2), 1);
        gws_detect_destroy(d2);
        gws_buf_free(&snap);
}
END_TEST

/* Numbers far from 1 (exponent notation) and whole numbers are written as
 * jansson writes reals: the callback compares every alert with its
 * jansson rendering. */
START_TEST(alert_numbers_render_as_jansson) {
        int i;
        int64_t ts = T0;
        json_t *a;
        size_t k;
        double obs = 0;
        for (i = 0; i < 3000; i++, ts += 200)
                feed(ts, "gw", "m", 200, 1e-7 * exp(0.5 * gauss()), NULL);
        for (i = 0; i < 600; i++, ts += 200)
                feed(ts, "gw", "m", 200, 1e20, NULL);
        ck_assert_int_ge(count("latency", "open"), 1);
        json_array_foreach(sink.alerts, k, a) if (!strcmp(
            json_string_value(json_object_get(a, "kind")), "latency"))
            obs = json_real_value(json_object_get(a, "observed"));
        ck_assert_double_ge(obs, 1e19);
}
END_TEST

/* A catch-up (no callback: gws_pipeline_learn()) emits nothing: it moves
 * the alerts' state (open, update, resolve under their stable ids) as
 * the previous owner did, which emitted them. alert_emit() built each
 * alert's whole JSON anyway, for nobody (work on every restore that
 * catches up an incident), and when a buffer of it could not grow (out
 * of memory) the event returned -1 halfway through its scoring: the
 * caught-up state was no longer the previous owner's. Here every
 * realloc fails from event 200 on, once the detector's buffers for
 * keys have grown; the state must be that of the same events learned
 * without failures. */
START_TEST(catch_up_builds_no_alert) {
        gws_detect_t *ok = gws_detect_new(cfg, 0);
        gws_buf_t a = {0}, b = {0};
        int i, failed = 0, refused = 0;
        int64_t ts = T0;
        ck_assert_ptr_nonnull(ok);
        for (i = 0; i < 9000; i++, ts += 200) {
                double mul = (i >= 3000 && i < 3900) ? 10 : 1;
                gws_event_t ev;
                gws_score_t sc;
                int r;
                memset(&ev, 0, sizeof(ev));
                snprintf(idbuf, sizeof(idbuf), "ev-%d", i);
                ev.id = (gws_str_t){idbuf, strlen(idbuf)};
                ev.gateway_id = (gws_str_t){"gw", 2};
                ev.provider = (gws_str_t){"openai", 6};
                ev.model = (gws_str_t){"m", 1};
                ev.ts_ms = ts;
                ev.status = 200;
                ev.success = 1;
                ev.latency_ms = exp(6.5 + 0.5 * gauss()) * mul;
                ck_assert_int_ge(gws_detect_event(ok, &ev, &sc, NULL, NULL),
                                 0);
                if (i >= 200)
                        test_realloc_fail(-1);
                r = gws_detect_event(det, &ev, &sc, NULL, NULL);
                if (i >= 200) {
                        failed += test_realloc_failed();
                        test_realloc_fail(0);
                }
                refused += r < 0;
        }
        fprintf(stderr,
                "catch_up_builds_no_alert: 9000 events without a callback, "
                "reallocs failing from event 200 on: %d failed, %d events "
                "returned -1\n",
                failed, refused);
        ck_assert_int_eq(gws_detect_save(ok, &a), 0);
        ck_assert_int_eq(gws_detect_save(det, &b), 0);
        ck_assert_msg(refused == 0 && a.len == b.len &&
                          !memcmp(a.buf, b.buf, a.len),
                      "%d events returned -1 (%d reallocs failed); the "
                      "states differ: %zu and %zu bytes",
                      refused, failed, a.len, b.len);
        gws_buf_free(&a);
        gws_buf_free(&b);
        gws_detect_destroy(ok);
}
END_TEST

START_TEST(latency_step_open_update_resolve) {
        int i;
        json_t *open = NULL, *a;
        size_t k;
        int64_t ts = T0, last_update = 0;
        for (i = 0; i < 9000; i++, ts += 200) {
                double mul = (i >= 3000 && i < 3900) ? 10 : 1; /* 3 min */
                feed(ts, "gw", "m", 200, exp(6.5 + 0.5 * gauss()) * mul,
                     NULL);
        }
        ck_assert_int_eq(count("latency", "open"), 1);
        ck_assert_int_eq(count("latency", "resolved"), 1);
        json_array_foreach(sink.alerts, k, a) {
                const char *state =
                    json_string_value(json_object_get(a, "state"));
                if (!strcmp(state, "open"))
                        open = a;
                if (!strcmp(state, "update")) {
                        int64_t end;
                        const char *e = json_string_value(json_object_get(
                            json_object_get(a, "window"), "end"));
                        ck_assert_int_eq(gws_time_parse(e, strlen(e), &end),
                                         0);
                        ck_assert_int_ge(end - last_update, 60000);
                        last_update = end;
                }
        }
        ck_assert_ptr_nonnull(open);
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(open, "entity"), "model")),
                         "m");
        ck_assert_double_gt(
            json_real_value(json_object_get(open, "observed")),
            json_real_value(json_object_get(open, "expected")) * 3);
        ck_assert_int_le((int)json_array_size(json_object_get(open,
                                                              "event_ids")),
                         20);
        ck_assert_int_ge((int)json_array_size(json_object_get(open,
                                                              "event_ids")),
                         1);
        ck_assert(json_real_value(json_object_get(open, "score")) <= 1.0);
        ck_assert_ptr_nonnull(json_object_get(open, "reason"));
        ck_assert_ptr_nonnull(json_object_get(open, "emitted_at"));
        /* the open event-time must be within a minute of the step */
        {
                int64_t end;
                const char *e = json_string_value(json_object_get(
                    json_object_get(open, "window"), "end"));
                gws_time_parse(e, strlen(e), &end);
                ck_assert_int_lt(end - (T0 + 3000 * 200), 60000);
        }
        /* same id through the lifecycle */
        json_array_foreach(sink.alerts, k, a)
            ck_assert_str_eq(json_string_value(json_object_get(a, "alert_id")),
                             json_string_value(json_object_get(open,
                                                               "alert_id")));
}
END_TEST

START_TEST(error_storm_and_small_counts) {
        int i;
        int64_t ts = T0;
        /* quiet entity: 3 errors out of 5 must not page */
        for (i = 0; i < 5; i++)
                feed(ts + i * 1000, "quiet", "m", i < 3 ? 500 : 200, 500,
                     NULL);
        ck_assert_int_eq(count("error_rate", "open"), 0);
        for (i = 0; i < 6000; i++, ts += 100) {
                double p = (i >= 4000 && i < 5200) ? 0.6 : 0.015;
                feed(ts, "gw", "m", unif() < p ? 503 : 200,
                     exp(6 + 0.4 * gauss()), NULL);
        }
        ck_assert_int_eq(count("error_rate", "open"), 1);
}
END_TEST

START_TEST(novelty_after_warmup_only) {
        int i;
        gws_score_t sc;
        int64_t ts = T0;
        for (i = 0; i < 2000; i++, ts += 500) /* 1000 s > 600 s warm-up */
                feed(ts, "gw", i % 2 ? "a" : "b", 200, 300, NULL);
        ck_assert_int_eq(count("new_value", "open"), 0);
        sc = feed(ts, "gw", "brand-new", 200, 300, NULL);
        ck_assert(sc.reasons & GWS_R_NEW_VALUE);
        ck_assert_int_eq(count("new_value", "open"), 1);
        /* a sentence: one request, not "1 requests" */
        ck_assert_str_eq(json_string_value(json_object_get(
                             first("new_value", "open"), "reason")),
                         "Gateway gw/openai/brand-new calls a provider/model "
                         "never seen on it before (1 request so far).");
}
END_TEST

/* A model once seen on a gateway is not new again because its entity was
 * evicted: "m-old" is known from the start, then a stream of distinct
 * users through a 16-entity cap evicts its entity (a busy model of the
 * same gateway keeps the gateway itself); when "m-old" comes back it
 * is created again, and was taken for a never-seen model (a false
 * new_value). A model truly new after that still is. */
START_TEST(novelty_survives_eviction) {
        gws_detect_stats_t ds;
        gws_score_t sc;
        char user[24];
        int i;
        int64_t ts = T0;
        redetect("detectors.max_entities", "16");
        feed(ts, "gw", "m-old", 200, 300, "u-old");
        for (i = 0; i < 4000; i++, ts += 250) { /* 1000 s > warm-up */
                snprintf(user, sizeof(user), "u-%d", i);
                feed(ts, "gw", "m-main", 200, 300, user);
        }
        gws_detect_stats(det, &ds);
        ck_assert_uint_gt(ds.evictions, 1000);
        ck_assert_int_eq(count("new_value", "open"), 0);
        sc = feed(ts, "gw", "m-old", 200, 300, "u-old");
        ck_assert_msg(!(sc.reasons & GWS_R_NEW_VALUE) &&
                          count("new_value", "open") == 0,
                      "a model seen at the start was new again after its "
                      "eviction: %d new_value opens",
                      count("new_value", "open"));
        sc = feed(ts + 250, "gw", "m-brand-new", 200, 300, "u-old");
        ck_assert(sc.reasons & GWS_R_NEW_VALUE);
        ck_assert_int_eq(count("new_value", "open"), 1);
}
END_TEST

/* A gateway's novelty warm-up is kept apart from its entity too: "gw"
 * sends for 700 s (novelty_warmup_s 600), then a burst of distinct users
 * on "gw-2" through a 16-entity cap evicts its entity; when "gw" comes
 * back, a model it never sent is new, and one it sent is not. Its entity
 * created again began the warm-up again: the new model was not reported.
 * "gw-3", evicted 100 s into its warm-up, is not taken as warmed (the
 * burst lasts 0.4 s of event time: no rate window closes). The state
 * goes through a snapshot after the eviction: it carries the warm-up
 * with the models seen. */
START_TEST(novelty_warmup_survives_eviction) {
        gws_detect_stats_t ds;
        gws_score_t sc;
        gws_buf_t raw = {0};
        char user[24], err[256];
        int i;
        int64_t ts = T0;
        redetect("detectors.max_entities", "16");
        for (i = 0; i < 2800; i++, ts += 250) {
                feed(ts, "gw", "m-main", 200, 300, NULL);
                if (i >= 2400)
                        feed(ts, "gw-3", "m-main", 200, 300, NULL);
        }
        for (i = 0; i < 400; i++, ts += 1) {
                snprintf(user, sizeof(user), "u-%d", i);
                feed(ts, "gw-2", "m-2", 200, 300, user);
        }
        gws_detect_stats(det, &ds);
        ck_assert_uint_ge(ds.evictions, 300);
        ck_assert_int_eq(count("new_value", "open"), 0);
        ck_assert_int_eq(gws_detect_save(det, &raw), 0);
        gws_detect_destroy(det);
        det = gws_detect_new(cfg, 0);
        ck_assert_msg(gws_detect_load(det, raw.buf, raw.len, err,
                                      sizeof(err)) > 0,
                      "load: %s", err);
        gws_buf_free(&raw);
        ts += 1000;
        sc = feed(ts, "gw", "m-new", 200, 300, NULL);
        ck_assert_msg((sc.reasons & GWS_R_NEW_VALUE) &&
                          count("new_value", "open") == 1,
                      "a model new on a gateway known for 700 s was not "
                      "reported after the gateway's eviction: %d "
                      "new_value opens",
                      count("new_value", "open"));
        sc = feed(ts, "gw", "m-main", 200, 300, NULL);
        ck_assert(!(sc.reasons & GWS_R_NEW_VALUE));
        sc = feed(ts, "gw-3", "m-new", 200, 300, NULL);
        ck_assert(!(sc.reasons & GWS_R_NEW_VALUE));
        ck_assert_int_eq(count("new_value", "open"), 1);
}
END_TEST

/* Alerts are detector state: their memory is in the byte budget. Two
 * detectors see the same events, one with detectors.novelty off: while
 * 300 new_value alerts are open (each with its event ids) the one with
 * them counts their bytes more, and once they resolved and were freed,
 * the same bytes as the other (alerts were not counted at all: the
 * budget said all was well whatever they held). */
START_TEST(alert_bytes_in_the_budget) {
        gws_config_t *cfg2 = gws_config_new();
        gws_detect_t *off, *on;
        gws_detect_stats_t son, soff;
        char model[24];
        int i, pass;
        int64_t ts;
        ck_assert_int_eq(gws_config_set(cfg2, "detectors.novelty", "false",
                                        NULL, 0), 0);
        off = gws_detect_new(cfg2, 0);
        on = det;
        for (pass = 0; pass < 2; pass++) {
                det = pass ? off : on;
                ts = T0;
                for (i = 0; i < 2800; i++, ts += 250) /* 700 s: warm */
                        feed(ts, "gw", "m-main", 200, 300, "u");
                for (i = 0; i < 300; i++, ts += 50) {
                        snprintf(model, sizeof(model), "m-new-%d", i);
                        feed(ts, "gw", model, 200, 300, "u");
                        feed(ts + 25, "gw", model, 200, 300, "u");
                }
        }
        gws_detect_stats(on, &son);
        gws_detect_stats(off, &soff);
        ck_assert_uint_eq(son.alerts_open, soff.alerts_open + 300);
        ck_assert_uint_eq(son.entities, soff.entities);
        ck_assert_msg(son.bytes >= soff.bytes + 300 * 200 &&
                          son.bytes <= soff.bytes + 300 * 2000,
                      "300 open alerts: %llu bytes, without them %llu",
                      (unsigned long long)son.bytes,
                      (unsigned long long)soff.bytes);
        ck_assert_uint_ge(son.process_bytes, son.bytes + soff.bytes);
        for (pass = 0; pass < 2; pass++) { /* 300 s: resolved */
                det = pass ? off : on;
                for (i = 0, ts = T0 + 800000; i < 1200; i++, ts += 250)
                        feed(ts, "gw", "m-main", 200, 300, "u");
        }
        gws_detect_stats(on, &son);
        gws_detect_stats(off, &soff);
        ck_assert_uint_eq(son.alerts_resolved, soff.alerts_resolved + 300);
        ck_assert_uint_eq(son.alerts_open, son.alerts_resolved);
        ck_assert_uint_eq(son.entities, soff.entities);
        ck_assert_uint_eq(son.bytes, soff.bytes);
        det = on;
        gws_detect_destroy(off);
        gws_config_destroy(cfg2);
}
END_TEST

/* Open alerts pin their entities, and now hold budget: with a 1 MB
 * budget and every model new (no warm-up), new_value alerts fill it;
 * then new entities are not tracked (the eviction loop ends: nothing can
 * go), the budget holds within an alert or so, and once the alerts
 * resolved, new entities are tracked again. */
START_TEST(alerts_holding_the_budget) {
        gws_detect_stats_t ds;
        char model[24];
        uint64_t untracked;
        int i;
        static const char *set[][2] = {{"detectors.max_state_mb", "1"},
                                       {"detectors.novelty_warmup_s", "0"}};
        for (i = 0; i < 2; i++)
                ck_assert_int_eq(gws_config_set(cfg, set[i][0], set[i][1],
                                                NULL, 0), 0);
        redetect("detectors.max_entities", "100000");
        for (i = 0; i < 20000; i++) { /* 20 s: none resolves */
                snprintf(model, sizeof(model), "m-%d", i);
                feed(T0 + i, "gw", model, 200, 300, NULL);
        }
        gws_detect_stats(det, &ds);
        ck_assert_uint_gt(ds.untracked, 0);
        ck_assert_uint_gt(ds.alerts_open, 500);
        ck_assert_uint_lt(ds.alerts_open, 20000);
        ck_assert_msg(ds.process_bytes <= (1u << 20) + 4096,
                      "%llu bytes for a 1 MiB budget",
                      (unsigned long long)ds.process_bytes);
        untracked = ds.untracked;
        for (i = 0; i < 2000; i++) /* 200 s later: resolved */
                feed(T0 + 200000 + i * 100, "gw", "m-0", 200, 300, NULL);
        for (i = 0; i < 1000; i++) {
                snprintf(model, sizeof(model), "m-late-%d", i);
                feed(T0 + 400000 + i * 100, "gw-2", model, 200, 300, NULL);
        }
        gws_detect_stats(det, &ds);
        ck_assert_uint_eq(ds.untracked, untracked);
        ck_assert_uint_le(ds.process_bytes, (1u << 20) + 4096);
}
END_TEST

/* A full byte budget (a stream of new users evicting old ones, as at
 * scale) must not blind the numeric detectors: an entity's anomaly
 * window is allocated at its first anomaly, and that allocation was
 * refused, not made room for, whenever the budget was full; a latency
 * step on a busy model then counted no anomaly and opened nothing. */
START_TEST(latency_alert_under_a_full_budget) {
        gws_detect_stats_t ds;
        char user[32];
        int i, evicted_before_step = 0;
        int64_t ts = T0;
        ck_assert_int_eq(
            gws_config_set(cfg, "detectors.max_state_mb", "1", NULL, 0), 0);
        redetect("detectors.max_entities", "100000");
        for (i = 0; i < 12000; i++, ts += 200) {
                /* steady (no stray anomaly before the step), then 10x
                 * for 3 min */
                double lat = (300 + i % 7) * (i >= 6000 && i < 6900 ? 10 : 1);
                if (i == 6000) {
                        gws_detect_stats(det, &ds);
                        evicted_before_step = (int)ds.evictions;
                }
                snprintf(user, sizeof(user), "u-%d", i);
                feed(ts, "gw", "m", 200, lat, user);
        }
        ck_assert_msg(evicted_before_step > 0,
                      "the budget was not full before the step");
        gws_detect_stats(det, &ds);
        ck_assert_msg(ds.process_bytes <= (1u << 20) + 4096,
                      "%llu bytes for a 1 MiB budget",
                      (unsigned long long)ds.process_bytes);
        ck_assert_msg(count("latency", "open") >= 1,
                      "latency step under a full budget: %d open, %llu "
                      "evictions", count("latency", "open"),
                      (unsigned long long)ds.evictions);
}
END_TEST

/* Long non-ASCII ids and keys are cut at a character in alerts: an event
 * id was cut at byte 128 and the entity in the reason at byte 254, both
 * inside a UTF-8 sequence; the alert was not UTF-8, its redaction could
 * not parse it and it went out as it was (cb() parses every alert). */
START_TEST(alert_cuts_at_a_character) {
        char id[160], model[300];
        gws_event_t ev;
        gws_score_t sc;
        json_t *a;
        int i;
        int64_t ts = T0;
        for (i = 0; i < 2000; i++, ts += 500)
                feed(ts, "gw", i % 2 ? "a" : "b", 200, 300, NULL);
        memset(id, 'x', 127);
        strcpy(id + 127, "\xc3\xa9-tail");
        memset(model, 'm', 243); /* "gw/openai/" + 243: 253 bytes */
        strcpy(model + 243, "\xc3\xa9\xc3\xa9");
        memset(&ev, 0, sizeof(ev));
        ev.id = (gws_str_t){id, strlen(id)};
        ev.gateway_id = (gws_str_t){"gw", 2};
        ev.provider = (gws_str_t){"openai", 6};
        ev.model = (gws_str_t){model, strlen(model)};
        ev.ts_ms = ts;
        ev.status = 200;
        ev.success = 1;
        ev.latency_ms = 300;
        ck_assert_int_ge(gws_detect_event(det, &ev, &sc, cb, &sink), 0);
        ck_assert_int_eq(count("new_value", "open"), 1);
        a = json_array_get(sink.alerts, json_array_size(sink.alerts) - 1);
        ck_assert_uint_eq(strlen(json_string_value(json_array_get(
                              json_object_get(a, "event_ids"), 0))),
                          127);
}
END_TEST

/* An alert whose reason cannot be written (out of memory) fails like any
 * other allocation failure of the alert: gws_detect_event() returns -1
 * (the pipeline's GWS_OUT_FAILED), no alert. It went out with the reason
 * cut: the sentences whose gws_buf_printf() failed were left out, here
 * all of it, "reason":"". A first run finds the event that opens the
 * latency alert of latency_step_open_update_resolve's series; the second
 * feeds the same events up to it, then that one while one realloc fails:
 * the first of the event, the alert reason's buffer (the detector's first
 * alert: empty until now; the event's keys have their room from the
 * events before, the alert's own buffer grows after the reason). */
static double step_latency(int i) {
        double mul = (i >= 3000 && i < 3900) ? 10 : 1;
        return exp(6.5 + 0.5 * gauss()) * mul;
}

START_TEST(alert_reason_out_of_memory_fails_the_alert) {
        gws_event_t ev;
        gws_score_t sc;
        json_t *a;
        const char *reason;
        size_t j;
        int i, k = -1, r, nfail, nalerts;

        for (i = 0; i < 9000 && k < 0; i++) {
                feed(T0 + i * 200LL, "gw", "m", 200, step_latency(i), NULL);
                if (json_array_size(sink.alerts))
                        k = i;
        }
        ck_assert_msg(k > 0, "no alert in the first run");

        gws_detect_destroy(det);
        det = gws_detect_new(cfg, 0);
        ck_assert_ptr_nonnull(det);
        json_array_clear(sink.alerts);
        st = 88172645463325252ULL; /* the same series (setup()) */
        evn = 0;
        for (i = 0; i < k; i++)
                feed(T0 + i * 200LL, "gw", "m", 200, step_latency(i), NULL);
        ck_assert_int_eq((int)json_array_size(sink.alerts), 0);

        memset(&ev, 0, sizeof(ev));
        snprintf(idbuf, sizeof(idbuf), "ev-%d", evn++);
        ev.id = (gws_str_t){idbuf, strlen(idbuf)};
        ev.gateway_id = (gws_str_t){"gw", 2};
        ev.provider = (gws_str_t){"openai", 6};
        ev.model = (gws_str_t){"m", 1};
        ev.ts_ms = T0 + k * 200LL;
        ev.status = 200;
        ev.success = 1;
        ev.latency_ms = step_latency(k);
        test_realloc_fail(1);
        r = gws_detect_event(det, &ev, &sc, cb, &sink);
        test_realloc_fail(0);
        nfail = test_realloc_failed();
        nalerts = (int)json_array_size(sink.alerts);
        reason = nalerts ? json_string_value(json_object_get(
                               json_array_get(sink.alerts, 0), "reason"))
                         : NULL;
        fprintf(stderr,
                "alert_reason_out_of_memory_fails_the_alert: event %d: "
                "returned %d, %d realloc(s) failed, %d alert(s) sent%s%s%s\n",
                k, r, nfail, nalerts, reason ? ", reason \"" : "",
                reason ? reason : "", reason ? "\"" : "");
        ck_assert_int_eq(nfail, 1);
        ck_assert_int_eq(r, -1);
        ck_assert_int_eq(nalerts, 0);

        /* memory back: the alert's next records carry their reason */
        for (i = k + 1; i < 9000; i++)
                feed(T0 + i * 200LL, "gw", "m", 200, step_latency(i), NULL);
        ck_assert_int_ge(count("latency", "resolved"), 1);
        json_array_foreach(sink.alerts, j, a) {
                reason = json_string_value(json_object_get(a, "reason"));
                ck_assert_ptr_nonnull(reason);
                ck_assert_msg(
                    !strncmp(reason, "Latency of openai/m is ", 23),
                    "reason: %s", reason);
        }
}
END_TEST

/* The entity cap holds, and eviction keeps what is in use: a route seen
 * every 10 events keeps its baselines while 50k other gateways stream
 * through a 500-entity cap (sampled LRU evicts the longest unused of its
 * sample; an arbitrary pick
 * evicts the route now and then, and a re-created route is warming up
 * and scores nothing). */
START_TEST(eviction_keeps_recently_used) {
        gws_detect_stats_t ds;
        gws_score_t sc;
        char gw[32];
        int i;
        redetect("detectors.max_entities", "500");
        for (i = 0; i < 50000; i++) {
                snprintf(gw, sizeof(gw), "gw-%d", i);
                feed(T0 + i, gw, "m", 200, 100, NULL);
                if (i % 10 == 0)
                        feed(T0 + i, "gw-kept", "m-kept", 200, 100, NULL);
        }
        gws_detect_stats(det, &ds);
        ck_assert_uint_le(ds.entities, 500); /* the cap holds */
        ck_assert_uint_gt(ds.evictions, 100000);
        sc = feed(T0 + 50000, "gw-kept", "m-kept", 200, 100000, NULL);
        ck_assert(sc.reasons & GWS_R_LATENCY);
}
END_TEST

START_TEST(byte_budget_under_cardinality_attack) {
        gws_detect_stats_t s1, s2;
        gws_detect_t *other;
        char key[48];
        int i;
        redetect("detectors.max_state_mb", "1");
        other = gws_detect_new(cfg, 1); /* a second partition, same budget */
        /* warm a model so token anomalies are judged, then a million-user
         * style flood of distinct users with huge prompts */
        for (i = 0; i < 200; i++)
                feed(T0 + i * 10, "gw", "m", 200, 100, "u0");
        for (i = 0; i < 50000; i++) {
                gws_event_t ev;
                gws_score_t sc;
                snprintf(key, sizeof(key), "attacker-%d", i);
                memset(&ev, 0, sizeof(ev));
                ev.id = (gws_str_t){key, strlen(key)};
                ev.gateway_id = (gws_str_t){"gw", 2};
                ev.provider = (gws_str_t){"openai", 6};
                ev.model = (gws_str_t){"m", 1};
                ev.user_id = (gws_str_t){key, strlen(key)};
                ev.ts_ms = T0 + 2000 + i;
                ev.status = 200;
                ev.success = 1;
                ev.latency_ms = 100;
                ev.tokens_in = 1000000;
                ev.has_tokens_in = 1;
                ck_assert_int_ge(gws_detect_event(det, &ev, &sc, cb, &sink),
                                 0);
        }
        for (i = 0; i < 20000; i++) {
                gws_detect_t *saved = det;
                snprintf(key, sizeof(key), "gw-%d", i);
                det = other;
                feed(T0 + i, key, "m", 200, 100, NULL);
                det = saved;
        }
        gws_detect_stats(det, &s1);
        gws_detect_stats(other, &s2);
        ck_assert_uint_le(s1.process_bytes, 1u << 20);
        ck_assert_uint_eq(s1.process_bytes, s1.bytes + s2.bytes);
        ck_assert_uint_gt(s1.evictions + s2.evictions, 0);
        gws_detect_destroy(other);
}
END_TEST

/* One event with the fields concentration and lateness look at. */
static gws_score_t feedx(int64_t ts, const char *gw, const char *ip,
                         const char *user, int64_t tokens) {
        gws_event_t ev;
        gws_score_t sc;
        memset(&ev, 0, sizeof(ev));
        snprintf(idbuf, sizeof(idbuf), "ev-%d", evn++);
        ev.id = (gws_str_t){idbuf, strlen(idbuf)};
        ev.gateway_id = (gws_str_t){gw, strlen(gw)};
        ev.provider = (gws_str_t){"openai", 6};
        ev.model = (gws_str_t){"m", 1};
        if (ip)
                ev.client_ip = (gws_str_t){ip, strlen(ip)};
        if (user)
                ev.user_id = (gws_str_t){user, strlen(user)};
        ev.ts_ms = ts;
        ev.status = 200;
        ev.success = 1;
        ev.latency_ms = exp(6 + 0.3 * gauss());
        ev.tokens_in = tokens;
        ev.has_tokens_in = tokens > 0;
        ck_assert_int_ge(gws_detect_event(det, &ev, &sc, cb, &sink), 0);
        return sc;
}

/* 10 events/s from 200 IPs and users for 20 min, then \p hot makes 60%
 * of the requests for 2 min. @returns the event time reached; no
 * heavy_hitter alert may open in the first part. */
static int hh_noise; /* also a stream of new users on another gateway */

static void hh_noise_feed(int64_t ts) {
        char user[32];
        if (!hh_noise)
                return;
        snprintf(user, sizeof(user), "n-%d", hh_noise++);
        feedx(ts, "gw-noise", NULL, user, 100);
}

static int64_t hh_ip_takes_over(const char *hot) {
        char ip[32], user[32];
        int64_t ts = T0;
        int i;
        for (i = 0; i < 12000; i++, ts += 100) {
                snprintf(ip, sizeof(ip), "10.0.0.%d", (int)(unif() * 200));
                snprintf(user, sizeof(user), "u-%d", (int)(unif() * 200));
                feedx(ts, "gw", ip, user, 100);
                hh_noise_feed(ts);
        }
        ck_assert_int_eq(count("heavy_hitter", "open"), 0);
        for (i = 0; i < 3000; i++, ts += 40) {
                if (unif() < 0.6)
                        snprintf(ip, sizeof(ip), "%s", hot);
                else
                        snprintf(ip, sizeof(ip), "10.0.0.%d",
                                 (int)(unif() * 200));
                snprintf(user, sizeof(user), "u-%d", (int)(unif() * 200));
                feedx(ts, "gw", ip, user, 100);
                hh_noise_feed(ts);
        }
        return ts;
}

/* One heavy_hitter alert naming the IP that took over; resolved when
 * traffic is back to normal. */
START_TEST(heavy_hitter_ip_takes_over) {
        char ip[32];
        int64_t ts = hh_ip_takes_over("203.0.113.9");
        json_t *a, *ent;
        int i;
        ck_assert_int_eq(count("heavy_hitter", "open"), 1);
        a = first("heavy_hitter", "open");
        ent = json_object_get(a, "entity");
        ck_assert_str_eq(json_string_value(json_object_get(ent, "client_ip")),
                         "203.0.113.9");
        ck_assert_str_eq(json_string_value(json_object_get(ent, "gateway_id")),
                         "gw");
        ck_assert_str_eq(json_string_value(json_object_get(a, "metric")),
                         "share_of_requests");
        ck_assert(json_real_value(json_object_get(a, "observed")) >= 0.3);
        ck_assert(json_real_value(json_object_get(a, "expected")) < 0.05);
        ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(
                                         a, "reason")),
                                     "Client IP 203.0.113.9"));
        /* back to normal: resolved */
        for (i = 0; i < 3000; i++, ts += 100) {
                snprintf(ip, sizeof(ip), "10.0.0.%d", (int)(unif() * 200));
                feedx(ts, "gw", ip, NULL, 100);
        }
        ck_assert_int_eq(count("heavy_hitter", "resolved"), 1);
}
END_TEST

/* The same under a full byte budget (a stream of new users on another
 * gateway evicts old entities all along): a busy gateway's heavy-hitter
 * summaries were allocated only when the budget had room, so they never
 * were, and the IP that took over went unreported. */
START_TEST(heavy_hitter_under_a_full_budget) {
        gws_detect_stats_t ds;
        json_t *a;
        int i;
        ck_assert_int_eq(
            gws_config_set(cfg, "detectors.max_state_mb", "1", NULL, 0), 0);
        redetect("detectors.max_entities", "100000");
        hh_noise = 1;
        for (i = 0; i < 5000; i++) /* full before any window closes */
                hh_noise_feed(T0);
        gws_detect_stats(det, &ds);
        ck_assert_uint_gt(ds.evictions, 0);
        hh_ip_takes_over("203.0.113.9");
        hh_noise = 0;
        gws_detect_stats(det, &ds);
        ck_assert_uint_gt(ds.evictions, 0);
        ck_assert_uint_le(ds.process_bytes, (1u << 20) + 4096);
        ck_assert_msg(count("heavy_hitter", "open") == 1,
                      "%d heavy_hitter opened under a full budget (%llu "
                      "evictions)", count("heavy_hitter", "open"),
                      (unsigned long long)ds.evictions);
        a = first("heavy_hitter", "open");
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(a, "entity"), "client_ip")),
                         "203.0.113.9");
}
END_TEST

/* The one heavy_hitter alert opened: on user \p user, measure \p metric. */
static json_t *hh_one_user(const char *user, const char *metric) {
        json_t *a;
        ck_assert_msg(count("heavy_hitter", "open") == 1,
                      "%d heavy_hitter opened", count("heavy_hitter", "open"));
        a = first("heavy_hitter", "open");
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(a, "entity"), "user_id")),
                         user);
        ck_assert_str_eq(json_string_value(json_object_get(a, "metric")),
                         metric);
        return a;
}

/* A key that always had most of the traffic is not news; a user whose
 * requests are usual but whose tokens take over is. */
START_TEST(heavy_hitter_usual_share_and_tokens) {
        char ip[32], user[32];
        int64_t ts = T0;
        int i;
        for (i = 0; i < 15000; i++, ts += 100) {
                if (unif() < 0.7)
                        snprintf(ip, sizeof(ip), "192.0.2.1"); /* a NAT */
                else
                        snprintf(ip, sizeof(ip), "10.0.0.%d",
                                 (int)(unif() * 100));
                snprintf(user, sizeof(user), "u-%d", (int)(unif() * 10));
                feedx(ts, "gw", ip, user,
                      /* from minute 20 on, u-7 sends 40x the tokens */
                      i >= 12000 && !strcmp(user, "u-7") ? 4000 : 100);
        }
        hh_one_user("u-7", "share_of_tokens");
}
END_TEST

/* A busy gateway: \p per_s events/s from \p users users (100 tokens
 * each) for 20 min; then for 6 min user "hog" sends one request of every
 * \p every with \p tokens tokens (far fewer requests than 1/hh_slots of
 * the gateway's, most of its tokens). One heavy_hitter alert must open,
 * for the hog, on its share of tokens. */
static void hh_token_hog(int per_s, int users, int every, int64_t tokens) {
        char user[32];
        int64_t ts = T0, step = 1000 / per_s;
        int i, n = 26 * 60 * per_s;
        json_t *a;
        for (i = 0; i < n; i++, ts += step) {
                if (i >= 20 * 60 * per_s && i % every == 0) {
                        feedx(ts, "gw", NULL, "hog", tokens);
                        continue;
                }
                snprintf(user, sizeof(user), "u-%d", (int)(unif() * users));
                feedx(ts, "gw", NULL, user, 100);
                if (i == 20 * 60 * per_s - 1)
                        ck_assert_int_eq(count("heavy_hitter", "open"), 0);
        }
        a = hh_one_user("hog", "share_of_tokens");
        ck_assert(json_real_value(json_object_get(a, "observed")) >= 0.6);
}

/* 3000 requests a window from 500 users (6 each): the hog's 37 requests
 * (1.25%, under the 1/32 a slot is guaranteed for) carry 71% of the
 * tokens. Its slot went to a newcomer again and again (eviction counted
 * requests only), so its share of tokens was never seen. */
START_TEST(heavy_hitter_token_hog_among_many_users) {
        hh_token_hog(50, 500, 80, 20000);
}
END_TEST

/* A busy gateway: 50 events/s from 500 users for 26 min, small prompts
 * with a heavy tail (100 tokens median, 1 in 200 fifty times that:
 * about 420k tokens a window); with \p hog, from minute 20 on user "hog"
 * sends 1-2 enormous prompts a window (800k tokens a window, about 65% of
 * its tokens: cost exhaustion). No heavy_hitter may open before the
 * hog. */
static void hh_big_prompts(int hog) {
        char user[32];
        int64_t ts = T0, tok;
        int i, n = 26 * 60 * 50;
        for (i = 0; i < n; i++, ts += 20) {
                int64_t w = (ts - T0) % 60000; /* time in the window */
                if (hog && i >= 20 * 60 * 50 &&
                    (w == 10000 || (w == 40000 && (ts / 60000) % 2))) {
                        feedx(ts, "gw", NULL, "hog",
                              (ts / 60000) % 2 ? 400000 : 800000);
                        continue;
                }
                snprintf(user, sizeof(user), "u-%d", (int)(unif() * 500));
                tok = (int64_t)(100 * exp(0.5 * gauss()));
                if (unif() < 0.005)
                        tok *= 50;
                feedx(ts, "gw", NULL, user, tok > 0 ? tok : 1);
                if (i == 20 * 60 * 50 - 1)
                        ck_assert_int_eq(count("heavy_hitter", "open"), 0);
        }
}

/* The hog's 1-2 requests a window are far under hh_min_events (30): its
 * share of the tokens was never looked at, and nothing caught it. */
START_TEST(heavy_hitter_few_enormous_prompts) {
        json_t *a;
        hh_big_prompts(1);
        a = hh_one_user("hog", "share_of_tokens");
        ck_assert(json_real_value(json_object_get(a, "observed")) >= 0.6);
}
END_TEST

/* The same traffic without the hog opens nothing: not a user whose one
 * large prompt is most of a window's first few requests' tokens. */
START_TEST(heavy_hitter_big_prompts_no_hog) {
        hh_big_prompts(0);
        ck_assert_int_eq(count("heavy_hitter", "open"), 0);
}
END_TEST

/* Events arrive up to 20 s out of order (under the 30 s bound): the rate
 * baseline sees every event, so a steady series raises nothing and a
 * gateway going silent is still caught; an event 10 min old is late
 * (scored, not counted). */
/* An event before 1970 (the event view refuses them; this is the
 * detector's own guard): its negative window and bucket indexes once
 * wrote before the windows' arrays (UBSan: index -2 out of bounds) and
 * its watermark made every later event of the gateway late. It is now
 * counted as skewed and nothing else. */
START_TEST(event_before_1970_is_skipped) {
        gws_detect_stats_t s;
        int i;
        feed(-60000, "gw", "m", 200, 400, NULL);
        feed(-20000, "gw", "m", 200, 400, NULL);
        for (i = 0; i < 2000; i++)
                feed(T0 + i * 100, "gw", "m", 200, exp(6 + 0.3 * gauss()),
                     NULL);
        gws_detect_stats(det, &s);
        ck_assert_uint_eq(s.late, 0);
        ck_assert_uint_eq(s.skewed, 2);
}
END_TEST

START_TEST(out_of_order_within_bound) {
        gws_detect_stats_t s;
        int64_t base = T0, ts;
        int i, j;
        /* 30 s blocks, emitted in a shuffled order: max disorder < 30 s */
        for (i = 0; i < 120; i++) {
                int64_t blk[150];
                for (j = 0; j < 150; j++)
                        blk[j] = base + i * 30000 + (int64_t)(unif() * 30000);
                for (j = 0; j < 150; j++)
                        feed(blk[j], "gw", "m", 200, exp(6 + 0.3 * gauss()),
                             NULL);
        }
        gws_detect_stats(det, &s);
        ck_assert_uint_eq(s.late, 0);
        ck_assert_int_eq((int)json_array_size(sink.alerts), 0);
        ts = base + 120 * 30000;
        feed(ts - 600000, "gw", "m", 200, 400, NULL);
        gws_detect_stats(det, &s);
        ck_assert_uint_eq(s.late, 1);
        /* silence on gw while another gateway keeps event time going */
        for (i = 0; i < 600; i++)
                feed(ts + i * 1000, "other", "m", 200, 300, NULL);
        ck_assert_int_eq(count("rate_drop", "open"), 1);
}
END_TEST

static int64_t alert_win(const json_t *a, const char *which);

/* alert.md: window is {"start","end"} of event time, start where the
 * incident began (its first anomalous event). Anomalies that arrive out of
 * order, within detectors.max_lateness_s, are counted: the one that opens
 * the alert may be older than the first one seen, and every record must
 * still have start <= end. */
START_TEST(late_anomalies_window_in_order) {
        int64_t ts = T0, top;
        size_t k;
        json_t *a;
        int i;
        for (i = 0; i < 3000; i++, ts += 200)
                feed(ts, "gw", "m", 200, exp(6.5 + 0.2 * gauss()), NULL);
        /* a slowdown whose events come newest first, 100 ms apart:
         * 20 s of disorder, under the 30 s bound */
        top = ts + 20000;
        for (i = 0; i < 200; i++)
                feed(top - i * 100, "gw", "m", 200, 20000, NULL);
        ck_assert_int_eq(count("latency", "open"), 1);
        json_array_foreach(sink.alerts, k, a)
            ck_assert_msg(alert_win(a, "start") <= alert_win(a, "end"),
                          "%s: window.start %lld ms after window.end",
                          json_string_value(json_object_get(a, "state")),
                          (long long)(alert_win(a, "start") -
                                      alert_win(a, "end")));
        a = first("latency", "open");
        ck_assert_int_le(alert_win(a, "start"), top);
}
END_TEST

/* A silent gateway's window closes on the first second of event time past
 * its end plus the lateness bound (60 s + 30 s), driven by another
 * gateway: not a second later, although the per-second tick only scans
 * the gateways when one of their windows can close. */
START_TEST(rate_drop_when_window_closes) {
        int64_t b = T0 + 20 * 60000; /* a window boundary */
        int64_t ts;
        /* 20 windows of 2 events/s on gw and 1/s on other */
        for (ts = T0; ts < b; ts += 500) {
                feed(ts, "gw", "m", 200, 300, NULL);
                if (ts % 1000 == 0)
                        feed(ts, "other", "m", 200, 300, NULL);
        }
        ck_assert_int_eq(count("rate_drop", "open"), 0);
        /* gw goes silent at b: its window [b, b+60 s) closes at b+90 s */
        for (ts = b; ts < b + 90000; ts += 1000)
                feed(ts, "other", "m", 200, 300, NULL);
        ck_assert_int_eq(count("rate_drop", "open"), 0);
        feed(b + 90000, "other", "m", 200, 300, NULL);
        ck_assert_int_eq(count("rate_drop", "open"), 1);
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(first("rate_drop", "open"),
                                             "entity"),
                             "gateway_id")),
                         "gw");
}
END_TEST

/* detectors.rate=false turns the rate detectors off: rate_drop too.
 * Each of a gateway's own events closes its past windows (only the
 * per-second tick checked the setting), so a gateway that slowed down
 * to one event a minute still got a rate_drop. Same series with the
 * detector on: it opens. */
START_TEST(rate_off_raises_no_rate_drop) {
        int on, i;
        int64_t ts;
        for (on = 1; on >= 0; on--) {
                redetect("detectors.rate", on ? "true" : "false");
                json_array_clear(sink.alerts);
                for (ts = T0; ts < T0 + 20 * 60000; ts += 500) {
                        feed(ts, "gw", "m", 200, 300, NULL);
                        if (ts % 1000 == 0)
                                feed(ts, "other", "m", 200, 300, NULL);
                }
                /* gw: one event a minute for 5 minutes */
                for (i = 0; i < 300; i++) {
                        ts = T0 + 20 * 60000 + i * 1000;
                        feed(ts, "other", "m", 200, 300, NULL);
                        if (i % 60 == 30)
                                feed(ts, "gw", "m", 200, 300, NULL);
                }
                ck_assert_int_eq(count("rate_drop", "open"), on);
        }
}
END_TEST

/* One event from a clock a day ahead must not make everyone late. */
START_TEST(clock_skew_does_not_move_event_time) {
        gws_detect_stats_t s;
        int i;
        for (i = 0; i < 3000; i++) {
                if (i == 1500)
                        feed(T0 + 86400000LL, "gw", "m", 200, 400, NULL);
                feed(T0 + i * 200, "gw", "m", 200, exp(6 + 0.3 * gauss()),
                     NULL);
        }
        gws_detect_stats(det, &s);
        ck_assert_uint_eq(s.skewed, 1);
        ck_assert_uint_eq(s.late, 0);
        ck_assert_int_eq((int)json_array_size(sink.alerts), 0);
        /* a real jump (20 events in a row agree) is followed */
        for (i = 0; i < 40; i++)
                feed(T0 + 86400000LL + i * 200, "gw", "m", 200, 400, NULL);
        feed(T0 + 3000 * 200, "gw", "m", 200, 400, NULL);
        gws_detect_stats(det, &s);
        ck_assert_uint_eq(s.late, 1);
}
END_TEST

/* On a fresh detector: 100 events from \p base, alternating gateways "a"
 * and \p other, then 25 three hours ahead (ahead of the wall clock) the
 * same way, then one back at the old time: the 20th of the run moves event
 * time (19 skewed), so the last event is late. */
static void jump_is_followed(int64_t base, const char *other) {
        gws_detect_stats_t s;
        int64_t ts = base;
        int i;
        for (i = 0; i < 100; i++, ts += 200)
                feed(ts, i % 2 ? "a" : other, "m", 200, 400, NULL);
        for (i = 0; i < 25; i++)
                feed(ts + 3 * 3600000LL + i * 200, i % 2 ? "a" : other, "m",
                     200, 400, NULL);
        feed(ts, "a", "m", 200, 400, NULL);
        gws_detect_stats(det, &s);
        ck_assert_uint_eq(s.skewed, FUTURE_CONFIRM_EXPECTED - 1);
        ck_assert_uint_eq(s.late, 1);
}

/* Two gateways share a partition; one's clock jumps hours ahead of the
 * wall clock and it sends 200 events in a row while the other is quiet
 * (a busy gateway on its partition). Twenty in a row used to move the
 * partition's event time there: every later event of the other gateway
 * was late, counted in no window, and its latency incident went unseen.
 * A jump ahead of the wall clock is followed only when more than one
 * gateway agrees (a host clock that is behind) or the partition has only
 * that gateway. */
START_TEST(clock_skew_one_gateway_does_not_move_event_time) {
        gws_detect_stats_t s;
        int64_t base = gws_now_ms() - 3600000LL, ts = base;
        int i;
        for (i = 0; i < 3000; i++, ts += 200)
                feed(ts, i % 2 ? "a" : "b", "m", 200,
                     exp(6 + 0.3 * gauss()), NULL);
        for (i = 0; i < 200; i++)
                feed(ts + 3 * 3600000LL + i * 200, "a", "m", 200, 400, NULL);
        for (i = 0; i < 1500; i++, ts += 200) {
                double mul = i >= 300 ? 10 : 1; /* b slows down */
                feed(ts, "b", "m", 200, exp(6 + 0.3 * gauss()) * mul, NULL);
        }
        gws_detect_stats(det, &s);
        ck_assert_uint_eq(s.skewed, 200);
        ck_assert_uint_eq(s.late, 0);
        ck_assert_int_eq(count("latency", "open"), 1);

        /* alone on its partition, a gateway's jump is followed */
        redetect("detectors.max_lateness_s", "30");
        jump_is_followed(base, "a");
        /* two gateways that agree (this host's clock is behind) too */
        redetect("detectors.max_lateness_s", "31");
        jump_is_followed(base, "b");
}
END_TEST

/* Year 5000: ahead of any wall clock this code will meet. */
#define T_FAR 95617584000000LL

/* The first event of a partition starts its event time, unless it is far
 * ahead of the wall clock: a gateway with a wrong clock must not make all
 * later events late (they would be counted in no window and raise no
 * alert). Twenty in a row still start it there (a host clock that is
 * behind). */
START_TEST(clock_skew_first_event_of_partition) {
        gws_detect_stats_t s;
        int i;
        feed(T_FAR, "gw", "m", 200, 400, NULL);
        for (i = 0; i < 600; i++)
                feed(T0 + i * 200, "gw", "m", 200, exp(6 + 0.3 * gauss()),
                     NULL);
        gws_detect_stats(det, &s);
        ck_assert_uint_eq(s.skewed, 1);
        ck_assert_uint_eq(s.late, 0);
        ck_assert_int_eq((int)json_array_size(sink.alerts), 0);

        redetect("detectors.max_lateness_s", "30"); /* fresh, as before */
        for (i = 0; i < 25; i++)
                feed(T_FAR + i * 200, "gw", "m", 200, 400, NULL);
        feed(T0, "gw", "m", 200, 400, NULL);
        gws_detect_stats(det, &s);
        ck_assert_uint_eq(s.skewed, 19);
        ck_assert_uint_eq(s.late, 1);
}
END_TEST

/* A new gateway whose first event is skewed (ahead) must not start its
 * rate window there: its later, correct events would all be late. */
START_TEST(clock_skew_first_event_of_gateway) {
        gws_detect_stats_t s;
        int i;
        for (i = 0; i < 3000; i++)
                feed(T0 + i * 200, "a", "m", 200, exp(6 + 0.3 * gauss()),
                     NULL);
        feed(T0 + 86400000LL, "b", "m", 200, 400, NULL);
        for (i = 3000; i < 6000; i++)
                feed(T0 + i * 200, i % 2 ? "a" : "b", "m", 200,
                     exp(6 + 0.3 * gauss()), NULL);
        gws_detect_stats(det, &s);
        ck_assert_uint_eq(s.skewed, 1);
        ck_assert_uint_eq(s.late, 0);
}
END_TEST

/* A new gateway whose first event is late by years: scored, not counted,
 * and cheap. It used to start the gateway's rate window there and close
 * every window since, one by one: 0.16 s of CPU for an event stamped
 * 1970 at the default 60 s windows; here (year 5000, 5 s windows) hours. */
START_TEST(late_first_event_of_gateway_is_cheap) {
        gws_detect_stats_t s;
        int i;
        redetect("detectors.window_s", "5");
        for (i = 0; i < 25; i++)
                feed(T_FAR + i * 200, "a", "m", 200, 400, NULL);
        feed(T0, "b", "m", 200, 400, NULL);
        for (i = 25; i < 1000; i++)
                feed(T_FAR + i * 200, i % 2 ? "a" : "b", "m", 200, 400,
                     NULL);
        gws_detect_stats(det, &s);
        ck_assert_uint_eq(s.late, 1);
        ck_assert_int_eq((int)json_array_size(sink.alerts), 0);
}
END_TEST

/* Novelty is judged in event time: a late or skewed first event must not
 * date a gateway or a model. A new gateway first seen through an event
 * from 1970 is new, so its models are known from the start (it was
 * "known" for 56 years: all of them were novel); a new model first seen
 * through an event a day ahead is novel for one window from now (it was
 * novel until a day from now: every event of it scored 0.9). */
START_TEST(clock_skew_does_not_date_novelty) {
        gws_score_t sc;
        int64_t ts = T0;
        int i, novel = 0;
        for (i = 0; i < 2000; i++, ts += 500) /* 1000 s > 600 s warm-up */
                feed(ts, "gw", "a", 200, 300, NULL);
        feed(1000, "gw-new", "a", 200, 300, NULL); /* late */
        for (i = 0; i < 200; i++, ts += 500)
                feed(ts, "gw-new", i % 2 ? "a" : "b", 200, 300, NULL);
        ck_assert_int_eq(count("new_value", "open"), 0);

        feed(ts + 86400000LL, "gw", "c", 200, 300, NULL); /* skewed */
        for (i = 0; i < 400; i++, ts += 500) { /* 200 s > the 60 s window */
                sc = feed(ts, "gw", "c", 200, 300, NULL);
                novel += !!(sc.reasons & GWS_R_NEW_VALUE);
        }
        ck_assert_int_eq(count("new_value", "open"), 1);
        ck_assert_int_le(novel, 121); /* 60 s of 2 events/s, + 1 */
}
END_TEST

/* The error-share baseline learns per completed bucket; a skewed event
 * must not move its bucket a day ahead (no bucket would complete for a
 * day, the baseline would stay in warm-up and the storm go unseen). */
START_TEST(clock_skew_does_not_stop_error_baseline) {
        int i;
        int64_t ts = T0;
        for (i = 0; i < 10; i++, ts += 100)
                feed(ts, "gw", "m", 200, 300, NULL);
        feed(ts + 86400000LL, "gw", "m", 200, 300, NULL);
        for (i = 0; i < 6000; i++, ts += 100) {
                double p = (i >= 4000 && i < 5200) ? 0.6 : 0.015;
                feed(ts, "gw", "m", unif() < p ? 503 : 200,
                     exp(6 + 0.4 * gauss()), NULL);
        }
        ck_assert_int_eq(count("error_rate", "open"), 1);
}
END_TEST

/* Every kind's opens and resolves, for "each open is resolved". */
static void assert_all_resolved(void) {
        size_t i;
        json_t *a;
        json_array_foreach(sink.alerts, i, a) {
                const char *kind =
                    json_string_value(json_object_get(a, "kind"));
                ck_assert_msg(count(kind, "open") == count(kind, "resolved"),
                              "%s: %d open, %d resolved", kind,
                              count(kind, "open"), count(kind, "resolved"));
        }
}

#define YEARS_100 (100 * 365 * 86400000LL)

/* A partition with one gateway, whose clock jumps 100 years ahead for 25
 * events and is then fixed. The jump is followed (nothing says this
 * host's clock is not the wrong one); the watermark stayed there, so
 * every later, correct event was late: counted in no window, no alert
 * (a latency incident went unseen). 20 events in a row far behind a
 * watermark that is itself far ahead of the wall clock now move event
 * time back. The back run comes 55 s into a window: that window restarts
 * partial and is neither judged nor learned (else a rate_drop for its
 * 5 s of counted events). Every alert of the era that ended (the jump's
 * rate_drop) is resolved. */
/* The fixture's detector, saved as it is, loads again: the snapshot
 * load refuses values no detector writes (alert times past event time by
 * more than the lateness bound, among others), so what a detector writes
 * after event time moved ahead or back must pass those checks. */
static void reloads(const char *when) {
        gws_buf_t snap = {0};
        gws_detect_t *d2 = gws_detect_new(cfg, 0);
        char why[256] = "";
        ck_assert_ptr_nonnull(d2);
        ck_assert_int_eq(gws_detect_save(det, &snap), 0);
        ck_assert_msg(gws_detect_load(d2, snap.buf, snap.len, why,
                                      sizeof(why)) >= 0,
                      "%s: its own snapshot refused: %s", when, why);
        gws_detect_destroy(d2);
        gws_buf_free(&snap);
}

START_TEST(clock_jump_back_one_gateway) {
        gws_detect_stats_t s;
        int64_t ts = T0, back;
        int i;
        json_t *a;
        size_t k;
        uint64_t ahead0, back0, ahead, back1;
        gws_detect_time_jumps(&ahead0, &back0);
        for (i = 0; i < 3000; i++, ts += 200)
                feed(ts, "gw", "m", 200, exp(6 + 0.3 * gauss()), NULL);
        for (i = 0; i < 25; i++)
                feed(ts + YEARS_100 + i * 200, "gw", "m", 200,
                     exp(6 + 0.3 * gauss()), NULL);
        gws_detect_stats(det, &s);
        ck_assert_uint_eq(s.skewed, FUTURE_CONFIRM_EXPECTED - 1);
        ck_assert_uint_eq(s.late, 0);
        reloads("100 years ahead");
        /* counted (process-wide: tests of other detectors run before) */
        gws_detect_time_jumps(&ahead, &back1);
        ck_assert_uint_eq(ahead - ahead0, 1);
        ck_assert_uint_eq(back1 - back0, 0);
        /* the clock is fixed: back 55 s into a window */
        back = (ts / 60000 + 2) * 60000 + 55000 -
               (FUTURE_CONFIRM_EXPECTED - 1) * 200;
        for (i = 0, ts = back; i < 3000; i++, ts += 200) {
                double mul = i >= 1000 && i < 1900 ? 10 : 1; /* 3 min */
                feed(ts, "gw", "m", 200, exp(6 + 0.3 * gauss()) * mul, NULL);
        }
        gws_detect_stats(det, &s);
        ck_assert_uint_eq(s.late, FUTURE_CONFIRM_EXPECTED - 1);
        ck_assert_uint_eq(s.skewed, FUTURE_CONFIRM_EXPECTED - 1);
        gws_detect_time_jumps(&ahead, &back1);
        ck_assert_uint_eq(ahead - ahead0, 1);
        ck_assert_uint_eq(back1 - back0, 1);
        ck_assert_int_eq(count("latency", "open"), 1);
        /* the forward jump's rate_drop (100 empty windows), and nothing
         * of the kind after the way back */
        ck_assert_int_eq(count("rate_drop", "open"), 1);
        json_array_foreach(sink.alerts, k, a) {
                int64_t end;
                const char *e = json_string_value(json_object_get(
                    json_object_get(a, "window"), "end"));
                const char *state =
                    json_string_value(json_object_get(a, "state"));
                ck_assert_int_eq(gws_time_parse(e, strlen(e), &end), 0);
                if (strcmp(state, "open"))
                        continue;
                if (!strcmp(json_string_value(json_object_get(a, "kind")),
                            "latency"))
                        ck_assert_int_lt(end - (back + 1000 * 200), 60000);
                else
                        ck_assert_int_gt(end, back + YEARS_100 / 2);
        }
        assert_all_resolved();
        reloads("back again");
}
END_TEST

/* The way back asks for the agreement the way there did. Two gateways:
 * this host's clock is hours behind theirs (both jump ahead of it
 * together: followed). One of them then sends 25 events in a row from
 * this host's time: refused (late), as one gateway among others cannot
 * move event time ahead of the wall clock either; the refused run waits
 * at its end, and the other gateway's first event back completes it. */
START_TEST(clock_jump_back_needs_the_same_agreement) {
        gws_detect_stats_t s;
        int64_t base = gws_now_ms() - 3600000LL, ts = base;
        int i;
        for (i = 0; i < 100; i++, ts += 200)
                feed(ts, i % 2 ? "a" : "b", "m", 200, 400, NULL);
        for (i = 0; i < 25; i++)
                feed(ts + 3 * 3600000LL + i * 200, i % 2 ? "a" : "b", "m",
                     200, 400, NULL);
        for (i = 0; i < 25; i++, ts += 200)
                feed(ts, "a", "m", 200, 400, NULL);
        gws_detect_stats(det, &s);
        ck_assert_uint_eq(s.skewed, FUTURE_CONFIRM_EXPECTED - 1);
        ck_assert_uint_eq(s.late, 25);
        for (i = 0; i < 25; i++, ts += 200)
                feed(ts, i % 2 ? "a" : "b", "m", 200, 400, NULL);
        gws_detect_stats(det, &s);
        ck_assert_uint_eq(s.late, 25);
        /* event time is back: a single event 3 h ahead is skewed again */
        feed(ts + 3 * 3600000LL, "a", "m", 200, 400, NULL);
        gws_detect_stats(det, &s);
        ck_assert_uint_eq(s.skewed, FUTURE_CONFIRM_EXPECTED);
        reloads("clock jump back needs the same agreement");
}
END_TEST

/* gw and other share a partition; gw's traffic drops (rate_drop opens),
 * then it stops for good (decommissioned, or its key moved to another
 * partition) while other keeps event time going for a day. The alert
 * stayed open forever, updated every minute, and its entity could never
 * be evicted. Silent for detectors.gone_after_s, the gateway is taken as
 * gone: the alert is resolved, saying so, and its rate is no longer
 * judged (no new alert) until it sends again; then it is judged at once
 * (its baseline is kept), its first window partial. */
START_TEST(silent_gateway_rate_drop_resolves) {
        int64_t ts;
        json_t *res;
        int updates;
        for (ts = T0; ts < T0 + 20 * 60000; ts += 500) {
                feed(ts, "gw", "m", 200, 300, NULL);
                if (ts % 1000 == 0)
                        feed(ts, "other", "m", 200, 300, NULL);
        }
        for (; ts < T0 + 25 * 60000; ts += 500) { /* a tenth */
                if (ts % 5000 == 0)
                        feed(ts, "gw", "m", 200, 300, NULL);
                if (ts % 1000 == 0)
                        feed(ts, "other", "m", 200, 300, NULL);
        }
        ck_assert_int_eq(count("rate_drop", "open"), 1);
        for (; ts < T0 + 25 * 60000 + 86400000LL; ts += 1000)
                feed(ts, "other", "m", 200, 300, NULL);
        ck_assert_int_eq(count("rate_drop", "open"), 1);
        ck_assert_int_eq(count("rate_drop", "resolved"), 1);
        updates = count("rate_drop", "update");
        /* default gone_after_s: 6 h of updates, one a minute */
        ck_assert_int_ge(updates, 6 * 60 - 10);
        ck_assert_int_le(updates, 6 * 60 + 10);
        res = first("rate_drop", "resolved");
        ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(
                                         res, "reason")),
                                     "gone"));
        /* back at a tenth of its traffic: judged at once (a new alert),
         * its first, partial window not */
        for (; ts < T0 + 25 * 60000 + 86400000LL + 5 * 60000; ts += 500) {
                if (ts % 5000 == 0)
                        feed(ts, "gw", "m", 200, 300, NULL);
                if (ts % 1000 == 0)
                        feed(ts, "other", "m", 200, 300, NULL);
        }
        ck_assert_int_eq(count("rate_drop", "open"), 2);
}
END_TEST

/* "Gone" is silence in a row: one event after 50 silent minutes starts
 * the count again (detectors.gone_after_s 1 h here). */
START_TEST(rate_drop_gone_needs_silence_in_a_row) {
        int64_t ts, blip, back;
        redetect("detectors.gone_after_s", "3600");
        for (ts = T0; ts < T0 + 20 * 60000; ts += 500) {
                feed(ts, "gw", "m", 200, 300, NULL);
                if (ts % 1000 == 0)
                        feed(ts, "other", "m", 200, 300, NULL);
        }
        blip = ts + 50 * 60000;
        for (; ts < blip; ts += 1000)
                feed(ts, "other", "m", 200, 300, NULL);
        ck_assert_int_eq(count("rate_drop", "open"), 1);
        feed(blip, "gw", "m", 200, 300, NULL);
        for (; ts < blip + 55 * 60000; ts += 1000)
                feed(ts, "other", "m", 200, 300, NULL);
        ck_assert_int_eq(count("rate_drop", "resolved"), 0);
        for (; ts < blip + 65 * 60000; ts += 1000)
                feed(ts, "other", "m", 200, 300, NULL);
        ck_assert_int_eq(count("rate_drop", "resolved"), 1);
        ck_assert_int_eq(count("rate_drop", "open"), 1);
        /* back at its full rate 55 s into a window: that window's 5 s of
         * events are not a drop (partial: not judged) */
        back = (ts / 60000 + 1) * 60000 + 55000;
        for (; ts < back; ts += 1000)
                feed(ts, "other", "m", 200, 300, NULL);
        for (; ts < back + 5 * 60000; ts += 500) {
                feed(ts, "gw", "m", 200, 300, NULL);
                if (ts % 1000 == 0)
                        feed(ts, "other", "m", 200, 300, NULL);
        }
        ck_assert_int_eq(count("rate_drop", "open"), 1);
        assert_all_resolved();
}
END_TEST

/* Gateway gw alone, one event every \p step ms from \p ts to \p until.
 * @returns the time after its last event. */
static int64_t steady(int64_t ts, int64_t until, int64_t step) {
        for (; ts < until; ts += step)
                feed(ts, "gw", "m", 200, 300, NULL);
        return ts;
}

/* A gateway whose traffic falls to a tenth for good (half of its users
 * moved elsewhere, a region shrank): one rate_drop opens. Windows under
 * a quarter of the baseline are not learned (an outage must not become
 * the baseline), so it stayed open for ever, updated every minute, and
 * no further rate_drop could open for the gateway. Once the new level
 * has held for detectors.rate_settle_s (default 6 h) it is the baseline:
 * the alert resolves saying so, a return to the old level is a
 * rate_spike (not a rate_drop) and a drop from the new level is a new
 * rate_drop. */
START_TEST(rate_drop_settles_at_new_level) {
        int64_t ts, drop = T0 + 20 * 60000, end = drop + 8 * 3600000LL;
        json_t *res;
        const char *why;
        ts = steady(T0, drop, 50); /* 20 events/s */
        ts = steady(ts, end, 500); /* 2 events/s, for good */
        ck_assert_int_eq(count("rate_drop", "open"), 1);
        ck_assert_int_eq(count("rate_drop", "resolved"), 1);
        res = first("rate_drop", "resolved");
        why = json_string_value(json_object_get(res, "reason"));
        ck_assert_msg(strstr(why, "settled at the new level"), "%s", why);
        /* after 6 h at the new level, within a few windows */
        ck_assert_int_ge(alert_win(res, "end"), drop + 6 * 3600000LL);
        ck_assert_int_le(alert_win(res, "end"),
                         drop + 6 * 3600000LL + 3 * 60000);
        ck_assert_int_le(count("rate_drop", "update"), 6 * 60 + 5);
        /* back at the old level: 10x the new baseline */
        ts = steady(ts, end + 10 * 60000, 50);
        ck_assert_int_eq(count("rate_drop", "open"), 1);
        ck_assert_int_eq(count("rate_spike", "open"), 1);
        /* at the new level again: nothing; then a tenth of it */
        ts = steady(ts, end + 20 * 60000, 500);
        ck_assert_int_eq(count("rate_drop", "open"), 1);
        ts = steady(ts, end + 30 * 60000, 5000);
        ck_assert_int_eq(count("rate_drop", "open"), 2);
        ck_assert_int_eq(count("rate_spike", "open"), 1);
}
END_TEST

/* An outage (a twentieth of the traffic for 20 minutes) is one alert,
 * open for the whole of it, resolved as the traffic comes back, not as
 * a new level. */
START_TEST(rate_drop_outage_stays_open) {
        int64_t ts, drop = T0 + 20 * 60000, back = drop + 20 * 60000;
        json_t *res;
        ts = steady(T0, drop, 50);
        ts = steady(ts, back, 1000);
        ck_assert_int_eq(count("rate_drop", "open"), 1);
        ck_assert_int_eq(count("rate_drop", "resolved"), 0);
        ck_assert_int_ge(count("rate_drop", "update"), 15);
        ts = steady(ts, back + 10 * 60000, 50);
        ck_assert_int_eq(count("rate_drop", "open"), 1);
        ck_assert_int_eq(count("rate_drop", "resolved"), 1);
        res = first("rate_drop", "resolved");
        ck_assert_int_ge(alert_win(res, "end"), back);
        ck_assert_int_le(alert_win(res, "end"), back + 5 * 60000);
        ck_assert_ptr_null(strstr(json_string_value(json_object_get(
                                      res, "reason")),
                                  "settled"));
        ck_assert_int_eq(count("rate_spike", "open"), 0);
        assert_all_resolved();
}
END_TEST

/* The same for a gateway whose traffic rises tenfold for good (windows
 * over three times the baseline are not learned either): its rate_spike
 * settles after detectors.rate_settle_s (1 h here), and the old level is
 * then a drop. rate_settle_s 0 keeps the old behaviour: the alert stays
 * open. */
START_TEST(rate_spike_settles_at_new_level) {
        int off;
        for (off = 0; off <= 1; off++) {
                int64_t ts, rise = T0 + 20 * 60000;
                int64_t end = rise + 2 * 3600000LL;
                json_t *res;
                redetect("detectors.rate_settle_s", off ? "0" : "3600");
                json_array_clear(sink.alerts);
                ts = steady(T0, rise, 500); /* 2 events/s */
                ts = steady(ts, end, 50); /* 20 events/s */
                ck_assert_int_eq(count("rate_spike", "open"), 1);
                ck_assert_int_eq(count("rate_spike", "resolved"), !off);
                if (off) {
                        ck_assert_int_ge(count("rate_spike", "update"),
                                         100);
                        continue;
                }
                res = first("rate_spike", "resolved");
                ck_assert_ptr_nonnull(strstr(
                    json_string_value(json_object_get(res, "reason")),
                    "settled at the new level"));
                ck_assert_int_ge(alert_win(res, "end"), rise + 3600000LL);
                ck_assert_int_le(alert_win(res, "end"),
                                 rise + 3600000LL + 3 * 60000);
                ts = steady(ts, end + 10 * 60000, 500);
                ck_assert_int_eq(count("rate_spike", "open"), 1);
                ck_assert_int_eq(count("rate_drop", "open"), 1);
        }
}
END_TEST

/* A rate_drop's window starts where the traffic dropped: the start of
 * the first low window. It started at that window's end, where closing
 * it confirmed the drop, one window late, and rate_settle_s (counted
 * from the start) settled the new level a window late too. A rate_spike
 * starts at its first anomalous event, within the first high window
 * (the early check judges the window so far). */
START_TEST(rate_drop_starts_at_the_drop) {
        int64_t ts, drop = T0 + 20 * 60000, rise;
        json_t *a;
        redetect("detectors.rate_settle_s", "1800");
        ts = steady(T0, drop, 50);                   /* 20 events/s */
        ts = steady(ts, drop + 40 * 60000, 500);     /* 2 events/s */
        ck_assert_int_eq(count("rate_drop", "open"), 1);
        a = first("rate_drop", "open");
        ck_assert_msg(alert_win(a, "start") == drop,
                      "rate_drop starts %lld ms after the drop",
                      (long long)(alert_win(a, "start") - drop));
        /* settles once the new level has held 30 min from the drop */
        ck_assert_int_eq(count("rate_drop", "resolved"), 1);
        a = first("rate_drop", "resolved");
        ck_assert_int_eq(alert_win(a, "start"), drop);
        ck_assert_msg(alert_win(a, "end") == drop + 30 * 60000,
                      "settled %lld ms after drop + 30 min",
                      (long long)(alert_win(a, "end") - drop - 30 * 60000));
        /* back to 20 events/s on a window boundary: a rate_spike, from
         * its first anomalous event, within that window */
        rise = (ts / 60000 + 1) * 60000;
        ts = steady(ts, rise, 500);
        ts = steady(ts, rise + 5 * 60000, 50);
        ck_assert_int_eq(count("rate_spike", "open"), 1);
        a = first("rate_spike", "open");
        ck_assert_int_ge(alert_win(a, "start"), rise);
        ck_assert_msg(alert_win(a, "start") < rise + 15000,
                      "rate_spike starts %lld ms after the rise",
                      (long long)(alert_win(a, "start") - rise));
}
END_TEST

/* The event time of the open record of alert \p id (when it opened). */
static int64_t opened_at(const char *id) {
        size_t i;
        json_t *a;
        json_array_foreach(sink.alerts, i, a) {
                if (!strcmp(json_string_value(json_object_get(a,
                                                              "alert_id")),
                            id) &&
                    !strcmp(json_string_value(json_object_get(a, "state")),
                            "open"))
                        return alert_win(a, "end");
        }
        ck_abort_msg("alert %s has no open record", id);
        return 0;
}

/* Alerts resolved together go out oldest first (by the time they
 * opened, then by id), whichever path resolves them: the per-second
 * tick did, the way back of event time (wm_rewind()) went down the
 * open list, newest first. A latency incident, then an error storm 90 s
 * later, both still open when event time moves back: latency must be
 * resolved first. */
START_TEST(clock_jump_back_resolves_oldest_first) {
        int64_t ts = T0, ahead, back, prev = INT64_MIN;
        const char *prev_kind = NULL;
        size_t k;
        json_t *a;
        int i, rewound = 0;
        for (i = 0; i < 3000; i++, ts += 200)
                feed(ts, "gw", "m", 200, exp(6 + 0.3 * gauss()), NULL);
        /* 100 years ahead, followed (one gateway), 10 min of traffic */
        ahead = ts + YEARS_100;
        for (i = 0; i < 3000; i++) {
                double mul = i >= 2000 ? 10 : 1;     /* slow from 400 s */
                int err = i >= 2460 && i % 2;        /* errors from 492 s */
                feed(ahead + i * 200, "gw", "m", err ? 500 : 200,
                     exp(6 + 0.3 * gauss()) * mul, NULL);
        }
        ck_assert_int_eq(count("latency", "open"), 1);
        ck_assert_int_eq(count("error_rate", "open"), 1);
        ck_assert_int_eq(count("latency", "resolved"), 0);
        ck_assert_int_eq(count("error_rate", "resolved"), 0);
        /* the clock is set right: event time moves back */
        back = (ts / 60000 + 2) * 60000;
        for (i = 0; i < 30; i++)
                feed(back + i * 200, "gw", "m", 200,
                     exp(6 + 0.3 * gauss()), NULL);
        json_array_foreach(sink.alerts, k, a) {
                const char *kind, *why;
                int64_t opened;
                if (strcmp(json_string_value(json_object_get(a, "state")),
                           "resolved"))
                        continue;
                why = json_string_value(json_object_get(a, "reason"));
                if (!strstr(why, "event time moved back"))
                        continue;
                kind = json_string_value(json_object_get(a, "kind"));
                opened = opened_at(json_string_value(json_object_get(
                    a, "alert_id")));
                ck_assert_msg(opened >= prev,
                              "%s (opened %lld) resolved after %s (opened "
                              "%lld): %lld ms out of order",
                              kind, (long long)(opened - ahead), prev_kind,
                              (long long)(prev - ahead),
                              (long long)(prev - opened));
                prev = opened;
                prev_kind = kind;
                rewound++;
        }
        ck_assert_int_ge(rewound, 2);
        assert_all_resolved();
        reloads("clock jump back resolves oldest first");
}
END_TEST

static char *run_series(uint64_t seed) {
        gws_detect_t *d = gws_detect_new(cfg, 3);
        json_t *all = json_array();
        sink_t s2 = {all};
        gws_detect_t *saved = det;
        sink_t saved_sink = sink;
        char *out;
        size_t k;
        json_t *a;
        int i;
        det = d;
        sink = s2;
        st = seed;
        evn = 0;
        for (i = 0; i < 6000; i++)
                feed(T0 + i * 150, "gw", "m", unif() < 0.02 ? 500 : 200,
                     exp(6 + 0.5 * gauss()) * (i > 3000 && i < 3500 ? 12 : 1),
                     NULL);
        json_array_foreach(all, k, a) json_object_del(a, "emitted_at");
        out = json_dumps(all, JSON_COMPACT);
        det = saved;
        sink = saved_sink;
        gws_detect_destroy(d);
        json_decref(all);
        return out;
}

START_TEST(deterministic) {
        char *a = run_series(42), *b = run_series(42);
        /* (no ck_assert_str_eq: Check cannot carry messages this long) */
        ck_assert_msg(!strcmp(a, b), "alerts differ between two runs");
        ck_assert_ptr_nonnull(strstr(a, "\"open\""));
        free(a);
        free(b);
}
END_TEST

/* Strong outliers keep their order: nothing rounds to exactly 1.0. */
START_TEST(series_scores_do_not_saturate) {
        double prev = 0, mult[] = {20, 100, 1000, 10000};
        int m, i;
        gws_config_set(cfg, "series.warmup_rows", "100", NULL, 0);
        for (m = 0; m < 4; m++) {
                gws_series_t *sr = gws_series_new(cfg);
                double sc = 0;
                st = 7;
                for (i = 0; i < 300; i++)
                        gws_series_score(sr, 100 + gauss());
                sc = gws_series_score(sr, 100 + mult[m] * 1.25);
                ck_assert_msg(sc > prev && sc < 1.0, "x%.0f scored %.17g",
                              mult[m], sc);
                prev = sc;
                gws_series_destroy(sr);
        }
}
END_TEST

/* Values near DBL_MAX are finite, so gws_series_score() takes them, but
 * divided by a warm-up magnitude below 1 they overflow: the level-shift
 * mean (series.shift_z) becomes inf, then inf - inf = NaN, and stays
 * NaN. z_to_score() scored its NaN z nearly 1 (NaN <= 0 is false; the
 * rest gave NaN and the comparison with 1.0 picked nextafter(1.0, 0.0)):
 * every row scored 0.3 (damped) or, once the damping ran out, an alarm,
 * for the rest of the series. A NaN z scores 0; and since
 * series_absurd_row_keeps_shifts the short mean no longer becomes NaN:
 * the rows after are scored as usual either way. */
START_TEST(series_nan_z_scores_zero) {
        gws_series_t *sr;
        double sc;
        int i;
        gws_config_set(cfg, "series.warmup_rows", "100", NULL, 0);
        sr = gws_series_new(cfg);
        st = 7;
        for (i = 0; i < 300; i++)
                gws_series_score(sr, 0.01 + 0.0001 * gauss());
        gws_series_score(sr, 1.79e308);
        gws_series_score(sr, -1.79e308);
        gws_series_score(sr, 1.79e308);
        for (i = 0; i < 300; i++) {
                sc = gws_series_score(sr, 0.01 + 0.0001 * gauss());
                ck_assert_msg(sc < 0.1, "row %d after the overflow scored "
                                        "%.17g",
                              i, sc);
        }
        gws_series_destroy(sr);
}
END_TEST

/* The highest score of a 15% level shift 200 rows after \p nabs rows of
 * \p absurd (after 300 rows near \p base), each of which must score in
 * [0.5, 1) as the outliers they are, the first undamped. */
static double shift_after_absurd(double base, const double *absurd,
                                 int nabs) {
        gws_series_t *sr = gws_series_new(cfg);
        double sc, hi = 0;
        int i;
        st = 7;
        for (i = 0; i < 300; i++)
                gws_series_score(sr, base + 0.01 * base * gauss());
        for (i = 0; i < nabs; i++) {
                sc = gws_series_score(sr, absurd[i]);
                ck_assert_msg(sc < 1.0 && sc >= (i ? 0.15 : 0.5),
                              "absurd row %d (%g) scored %.17g", i,
                              absurd[i], sc);
        }
        for (i = 0; i < 200; i++)
                gws_series_score(sr, base + 0.01 * base * gauss());
        for (i = 0; i < 300; i++) {
                sc = gws_series_score(sr, 1.15 * base +
                                              0.01 * base * gauss());
                if (sc > hi)
                        hi = sc;
        }
        gws_series_destroy(sr);
        return hi;
}

/* A row that overflows once scaled (|value| near DBL_MAX over a warm-up
 * magnitude below 1, or two such values of opposite signs at a magnitude
 * just above 1, where x - smean overflows) made the level-shift mean inf,
 * then NaN for good: z_to_score() scores a NaN z 0, so no level shift
 * was seen again. The shift 200 rows later scores as it does without
 * those rows. */
START_TEST(series_absurd_row_keeps_shifts) {
        static const double absurd[] = {1.79e308, -1.79e308};
        static const double base[] = {0.01, 1.015};
        double without, with;
        gws_config_set(cfg, "series.warmup_rows", "100", NULL, 0);
        without = shift_after_absurd(base[_i], absurd, 0);
        ck_assert_msg(without >= 0.5, "shift scored %.17g", without);
        with = shift_after_absurd(base[_i], absurd, 1);
        ck_assert_msg(with >= 0.5, "after %g: shift scored %.17g", absurd[0],
                      with);
        with = shift_after_absurd(base[_i], absurd, 2);
        ck_assert_msg(with >= 0.5, "after %g, %g: shift scored %.17g",
                      absurd[0], absurd[1], with);
}
END_TEST

START_TEST(series_onset_scored_then_damped) {
        gws_series_t *sr;
        double sc, first_high = -1, after = 0;
        int i, onset_hits = 0;
        gws_config_set(cfg, "series.warmup_rows", "100", NULL, 0);
        sr = gws_series_new(cfg);
        for (i = 0; i < 3000; i++) {
                double v = 50 + 2 * gauss() + (i >= 2000 ? 40 : 0);
                sc = gws_series_score(sr, v);
                ck_assert(sc >= 0 && sc < 1.0);
                if (i < 100)
                        ck_assert(sc == 0); /* warm-up */
                if (i >= 150 && i < 2000)
                        ck_assert_msg(sc < 0.5, "row %d scored %f", i, sc);
                if (i >= 2000 && sc >= 0.5 && first_high < 0) {
                        first_high = i;
                        onset_hits++;
                }
                if (i > 2000 && i < 2100)
                        after += sc;
        }
        ck_assert_int_eq(onset_hits, 1);
        ck_assert_int_le((int)first_high, 2002);
        ck_assert_double_lt(after / 99, 0.3); /* damped repeats */
        gws_series_destroy(sr);
}
END_TEST


/* ------------------------------------------------------------------------
 * numeric key sets (detectors.numeric_keys) and one alert per incident
 * ------------------------------------------------------------------------ */

/* One successful event with latency and prompt tokens. */
static void feedki(int64_t ts, const char *gw, const char *model,
                   const char *user, const char *ip, double lat,
                   int64_t tokens) {
        gws_event_t ev;
        gws_score_t sc;
        memset(&ev, 0, sizeof(ev));
        snprintf(idbuf, sizeof(idbuf), "ev-%d", evn++);
        ev.id = (gws_str_t){idbuf, strlen(idbuf)};
        ev.gateway_id = (gws_str_t){gw, strlen(gw)};
        ev.provider = (gws_str_t){"openai", 6};
        ev.model = (gws_str_t){model, strlen(model)};
        ev.user_id = (gws_str_t){user, strlen(user)};
        if (ip)
                ev.client_ip = (gws_str_t){ip, strlen(ip)};
        ev.ts_ms = ts;
        ev.status = 200;
        ev.success = 1;
        ev.latency_ms = lat;
        ev.tokens_in = tokens;
        ev.has_tokens_in = 1;
        ck_assert_int_ge(gws_detect_event(det, &ev, &sc, cb, &sink), 0);
}

static void feedk(int64_t ts, const char *gw, const char *model,
                  const char *user, double lat, int64_t tokens) {
        feedki(ts, gw, model, user, NULL, lat, tokens);
}

/* Fields of the entity of the single open alert of \p kind, joined
 * "field=value,..." in entity order. */
static const char *open_entity(const char *kind) {
        static char buf[256];
        json_t *a = first(kind, "open"), *v;
        const char *k;
        size_t o = 0;
        ck_assert_int_eq(count(kind, "open"), 1);
        buf[0] = '\0';
        json_object_foreach(json_object_get(a, "entity"), k, v) {
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s=%s",
                                      o ? "," : "", k, json_string_value(v));
        }
        return buf;
}

/* redact.ip_truncate reaches alerts: the entity's client_ip and the
 * reason name the truncated address (both carried it whole), and an
 * address that cannot be read is replaced. The detector itself still
 * tells the full addresses apart. */
START_TEST(alerts_truncate_client_ip) {
        const char *reason;
        json_t *a;
        int i;
        redetect("redact.ip_truncate", "true");
        hh_ip_takes_over("203.0.113.9:5678");
        ck_assert_int_eq(count("heavy_hitter", "open"), 1);
        a = first("heavy_hitter", "open");
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(a, "entity"), "client_ip")),
                         "203.0.113.0");
        reason = json_string_value(json_object_get(a, "reason"));
        ck_assert_msg(strstr(reason, "Client IP 203.0.113.0 made") &&
                          !strstr(reason, "203.0.113.9"),
                      "%s", reason);

        /* a numeric key set with client_ip in it: one client sends huge
         * prompts (as keys_user_prompts_one_alert) */
        json_array_clear(sink.alerts);
        redetect("detectors.numeric_keys",
                 "provider+model,gateway_id+provider+model,"
                 "gateway_id+client_ip,gateway_id");
        for (i = 0; i < 12000; i++) {
                int u = (int)(unif() * 30);
                double tok = exp(6 + 0.5 * gauss());
                char ip[32];
                snprintf(ip, sizeof(ip), "10.0.0.%d", u);
                if (u == 7)
                        snprintf(ip, sizeof(ip), "host.internal");
                if (i >= 8000 && i < 9500 && u == 7)
                        tok *= 40;
                feedki(T0 + i * 50LL, "gw-a", "m", "u", ip,
                       exp(6 + 0.4 * gauss()), (int64_t)tok);
        }
        ck_assert_str_eq(open_entity("tokens"),
                         "gateway_id=gw-a,client_ip=[REDACTED:ip]");
        reason = json_string_value(
            json_object_get(first("tokens", "open"), "reason"));
        ck_assert_msg(strstr(reason, "on gw-a/[REDACTED:ip] are") &&
                          !strstr(reason, "host.internal"),
                      "%s", reason);
}
END_TEST

/* Under redact.ip_truncate an alert id must not depend on the part of
 * the address that was cut: it hashed the full address, so trying the
 * 256 last octets against the id (with the /24, time, kind and
 * partition the alert shows) gave the address back. Two runs that
 * differ only in the hot client's last octet give the same ids; with
 * truncation off they differ (the full key, as before). */
START_TEST(alert_id_hides_the_truncated_address) {
        static const char *hot[2] = {"203.0.113.9", "203.0.113.77"};
        char ids[2][2][64];
        int trunc, k;
        for (trunc = 0; trunc < 2; trunc++) {
                for (k = 0; k < 2; k++) {
                        json_t *a;
                        st = 88172645463325252ULL;
                        evn = 0;
                        json_array_clear(sink.alerts);
                        redetect("redact.ip_truncate",
                                 trunc ? "true" : "false");
                        hh_ip_takes_over(hot[k]);
                        ck_assert_int_eq(count("heavy_hitter", "open"), 1);
                        a = first("heavy_hitter", "open");
                        snprintf(ids[trunc][k], sizeof(ids[trunc][k]), "%s",
                                 json_string_value(
                                     json_object_get(a, "alert_id")));
                }
        }
        ck_assert_str_ne(ids[0][0], ids[0][1]);
        ck_assert_str_eq(ids[1][0], ids[1][1]);
}
END_TEST

/* ------------------------------------------------------------------------
 * alert ids and redact.alert_id_key
 * ------------------------------------------------------------------------ */

/* Users of id_user_series(): e-mail addresses, as user_id often is (the
 * pipeline redacts them in the alert: "[REDACTED:email]"). */
static const char *const id_users[] = {
    "alice.smith@example.com", "bob@example.com",   "carol@example.org",
    "dave@example.net",        "erin@example.com",  "frank@example.org",
    "grace@example.com",       "heidi@example.net", "ivan@example.com",
    "judy@example.org"};
#define ID_USERS ((int)(sizeof(id_users) / sizeof(id_users[0])))
#define ID_PARTITION 7 /* not 0: the attack reads it from the alert */

/* keys_user_prompts_one_alert's series on partition ID_PARTITION with
 * e-mail users: id_users[0] sends huge prompts, one tokens alert opens
 * on user_id (and resolves). The same series every call. */
static void id_user_series(void) {
        int i;
        gws_detect_destroy(det);
        det = gws_detect_new(cfg, ID_PARTITION);
        ck_assert_ptr_nonnull(det);
        json_array_clear(sink.alerts);
        st = 88172645463325252ULL;
        evn = 0;
        for (i = 0; i < 14000; i++) {
                int u = (int)(unif() * ID_USERS);
                double tok = exp(6 + 0.5 * gauss());
                if (i >= 8000 && i < 9500 && u == 0)
                        tok *= 40;
                feedk(T0 + i * 50LL, "gw-a", "m", id_users[u],
                      exp(6 + 0.4 * gauss()), (int64_t)tok);
        }
        ck_assert_str_eq(open_entity("tokens"),
                         "user_id=alice.smith@example.com");
        ck_assert_int_eq(count("tokens", "resolved"), 1);
}

/* What a reader of the alerts topic can do with an alert whose entity
 * was redacted, knowing detect.c: the id without redact.alert_id_key is
 * gws_hash64(entity key, ts * 31 + kind * 7 + partition), and the open
 * record shows ts (window.end), kind and partition. Hash each candidate
 * user that way. @returns the index of the one that gives the id of
 * open record \p a, or -1. */
static int id_guess_user(const json_t *a) {
        const char *id = json_string_value(json_object_get(a, "alert_id"));
        const char *kind = json_string_value(json_object_get(a, "kind"));
        int64_t ts = alert_win(a, "end");
        int64_t part = json_integer_value(json_object_get(a, "partition"));
        int k, u;
        char hex[24];
        ck_assert_str_eq(json_string_value(json_object_get(a, "state")),
                         "open");
        for (k = 0; k < GWS_ALERT_KIND__CNT; k++)
                if (!strcmp(gws_alert_kind_name(k), kind))
                        break;
        ck_assert_int_lt(k, GWS_ALERT_KIND__CNT);
        for (u = 0; u < ID_USERS; u++) {
                uint64_t seed = (uint64_t)ts * 31 + (uint64_t)k * 7 +
                                (uint64_t)part;
                snprintf(hex, sizeof(hex), "%016llx",
                         (unsigned long long)gws_hash64(
                             id_users[u], strlen(id_users[u]), seed));
                if (!strcmp(hex, id))
                        return u;
        }
        return -1;
}

/* Without redact.alert_id_key, an alert's id gives its user away: the
 * pipeline redacts the e-mail in the entity and the reason, but hashing
 * a list of candidate addresses as detect.c does finds the one whose
 * hash is the id. With the key, ids are SipHash-2-4 under a secret: the
 * same check finds no one. */
START_TEST(alert_id_key_hides_the_user) {
        char plain[32];
        json_t *a;

        id_user_series();
        a = first("tokens", "open");
        ck_assert_int_eq(json_integer_value(json_object_get(a, "partition")),
                         ID_PARTITION);
        snprintf(plain, sizeof(plain), "%s",
                 json_string_value(json_object_get(a, "alert_id")));
        ck_assert_int_eq(id_guess_user(a), 0);
        /* pinned: without the key, ids are what they were (replays and
         * runs of older builds give the same ids) */
        ck_assert_str_eq(plain, "20789e4b4bb70a9f");

        ck_assert_int_eq(gws_config_set(cfg, "redact.alert_id_key",
                                        "test-alert-id-key-0123456789", NULL,
                                        0),
                         0);
        id_user_series();
        a = first("tokens", "open");
        ck_assert_int_eq(id_guess_user(a), -1);
        ck_assert_str_ne(json_string_value(json_object_get(a, "alert_id")),
                         plain);
}
END_TEST

static void reload(const gws_buf_t *raw);

/* latency_step_open_update_resolve's series (one latency alert: open,
 * updates, resolved) on partition 0. At event \p save_at (-1: never)
 * the detector is saved and restored into a new one, with
 * redact.alert_id_key set to \p key_after first (NULL: as it is).
 * @returns the id every latency record has (asserted). */
static const char *id_latency_series(int save_at, const char *key_after) {
        static char id[32];
        gws_buf_t raw = {0};
        size_t k, saved = 0;
        int64_t ts = T0;
        json_t *a;
        int i, updates_after = 0;

        gws_detect_destroy(det);
        det = gws_detect_new(cfg, 0);
        ck_assert_ptr_nonnull(det);
        json_array_clear(sink.alerts);
        st = 88172645463325252ULL;
        evn = 0;
        for (i = 0; i < 9000; i++, ts += 200) {
                double mul = (i >= 3000 && i < 3900) ? 10 : 1; /* 3 min */
                if (i == save_at) {
                        ck_assert_int_eq(count("latency", "open"), 1);
                        ck_assert_int_eq(gws_detect_save(det, &raw), 0);
                        if (key_after)
                                ck_assert_int_eq(
                                    gws_config_set(cfg, "redact.alert_id_key",
                                                   key_after, NULL, 0),
                                    0);
                        reload(&raw);
                        saved = json_array_size(sink.alerts);
                }
                feed(ts, "gw", "m", 200, exp(6.5 + 0.5 * gauss()) * mul,
                     NULL);
        }
        ck_assert_int_eq(count("latency", "open"), 1);
        ck_assert_int_ge(count("latency", "update"), 1);
        ck_assert_int_eq(count("latency", "resolved"), 1);
        id[0] = '\0';
        json_array_foreach(sink.alerts, k, a) {
                const char *aid;
                if (strcmp(json_string_value(json_object_get(a, "kind")),
                           "latency"))
                        continue;
                aid = json_string_value(json_object_get(a, "alert_id"));
                if (!id[0])
                        snprintf(id, sizeof(id), "%s", aid);
                ck_assert_str_eq(aid, id);
                updates_after += k >= saved && !strcmp(json_string_value(
                                     json_object_get(a, "state")),
                                                       "update");
        }
        if (save_at >= 0) /* the restored detector went on with it */
                ck_assert_int_ge(updates_after, 1);
        ck_assert_uint_eq(strlen(id), 16);
        ck_assert_uint_eq(strspn(id, "0123456789abcdef"), 16);
        gws_buf_free(&raw);
        return id;
}

/* With redact.alert_id_key, an alert keeps its id for its life: open,
 * updates and resolved; across a snapshot and restore (the snapshot
 * carries the id: the restored alert is not given a new one, not even
 * when the key changed meanwhile); and the same input gives the same id
 * (replay and run agree). */
START_TEST(alert_id_key_stable_for_the_alert) {
        char once[32];
        ck_assert_int_eq(gws_config_set(cfg, "redact.alert_id_key",
                                        "test-alert-id-key-0123456789", NULL,
                                        0),
                         0);
        snprintf(once, sizeof(once), "%s", id_latency_series(-1, NULL));
        ck_assert_str_eq(id_latency_series(-1, NULL), once);
        ck_assert_str_eq(id_latency_series(3400, NULL), once);
        ck_assert_str_eq(id_latency_series(3400, "another-key-for-alert-ids"),
                         once);
}
END_TEST

/* Each key its ids: two keys (even sharing their first 16 bytes: the
 * whole secret counts) give other ids than each other and than no key,
 * and none lets the guess of alert_id_key_hides_the_user through. */
START_TEST(alert_id_key_other_key_other_ids) {
        static const char *keys[3] = {NULL, "alert-id-key-0123456789-one",
                                      "alert-id-key-0123456789-two"};
        char ids[3][32];
        int i, j;
        for (i = 0; i < 3; i++) {
                json_t *a;
                if (keys[i])
                        ck_assert_int_eq(gws_config_set(cfg,
                                                        "redact.alert_id_key",
                                                        keys[i], NULL, 0),
                                         0);
                id_user_series();
                a = first("tokens", "open");
                ck_assert_int_eq(id_guess_user(a), keys[i] ? -1 : 0);
                snprintf(ids[i], sizeof(ids[i]), "%s",
                         json_string_value(json_object_get(a, "alert_id")));
        }
        for (i = 0; i < 3; i++)
                for (j = i + 1; j < 3; j++)
                        ck_assert_str_ne(ids[i], ids[j]);
}
END_TEST

/* A model that slows down on every gateway is one incident: one latency
 * alert on provider+model, not one per gateway, route or user. */
START_TEST(keys_provider_wide_slowdown_one_alert) {
        static const char *gws[] = {"gw-a", "gw-b", "gw-c"};
        char user[16];
        int i;
        for (i = 0; i < 12000; i++) {
                double mul = i >= 8000 && i < 9200 ? 8 : 1;
                const char *model = i % 2 ? "m" : "other";
                snprintf(user, sizeof(user), "u-%d", (int)(unif() * 40));
                feedk(T0 + i * 50LL, gws[i % 3], model, user,
                      exp(6 + 0.4 * gauss()) * (i % 2 ? mul : 1),
                      (int64_t)exp(6 + 0.5 * gauss()));
        }
        ck_assert_str_eq(open_entity("latency"), "provider=openai,model=m");
        ck_assert_int_eq(count("tokens", "open"), 0);
}
END_TEST

/* One user sending huge prompts: one tokens alert naming the user (its
 * anomalies are all of its requests; for the model they are a few). */
START_TEST(keys_user_prompts_one_alert) {
        char user[16];
        int i;
        for (i = 0; i < 12000; i++) {
                int u = (int)(unif() * 30);
                double tok = exp(6 + 0.5 * gauss());
                snprintf(user, sizeof(user), "u-%d", u);
                if (i >= 8000 && i < 9500 && u == 7)
                        tok *= 40;
                feedk(T0 + i * 50LL, "gw-a", "m", user,
                      exp(6 + 0.4 * gauss()), (int64_t)tok);
        }
        ck_assert_str_eq(open_entity("tokens"), "user_id=u-7");
        ck_assert_int_eq(count("latency", "open"), 0);
}
END_TEST

/* Every route of one gateway slows down (the gateway itself is slow):
 * one alert on the gateway, not one per model. */
START_TEST(keys_gateway_wide_one_alert) {
        static const char *models[] = {"m1", "m2", "m3", "m4"};
        char user[16];
        int i;
        for (i = 0; i < 16000; i++) {
                const char *gw = i % 2 ? "gw-a" : "gw-b";
                double mul = i >= 10000 && i < 11500 && i % 2 ? 6 : 1;
                snprintf(user, sizeof(user), "u-%d", (int)(unif() * 50));
                /* models have their own latency levels */
                feedk(T0 + i * 50LL, gw, models[(i / 2) % 4], user,
                      exp(5 + (i / 2) % 4 + 0.4 * gauss()) * mul,
                      (int64_t)exp(6 + 0.5 * gauss()));
        }
        ck_assert_str_eq(open_entity("latency"), "gateway_id=gw-a");
}
END_TEST

/* Sets that do not pin the model judge values relative to the model: a
 * user who moves from a cheap fast model to a slow one is not an
 * incident. */
START_TEST(keys_user_model_switch_is_normal) {
        char user[16];
        int i;
        for (i = 0; i < 12000; i++) {
                int u = (int)(unif() * 10);
                /* from i = 6000 on, u-3 only uses the slow model */
                int slow = u == 3 ? i >= 6000 : unif() < 0.5;
                snprintf(user, sizeof(user), "u-%d", u);
                feedk(T0 + i * 100LL, "gw-a", slow ? "big" : "small", user,
                      exp((slow ? 8 : 5) + 0.4 * gauss()),
                      (int64_t)exp(6 + 0.5 * gauss()));
        }
        ck_assert_int_eq(count("latency", "open"), 0);
}
END_TEST

/* A configured set is honoured: client_ip alone. */
/* The event's entity keys (detect.c event_keys()): a key set whose field
 * is absent or empty has no entity; a key longer than 60000 bytes has
 * none either (the others of the event still do); gateway, gateway+
 * provider and gateway+provider+model are built from one string and must
 * stay apart. Entities per event are counted with the default sets
 * (provider+model, gateway+provider+model, user_id, gateway): G, GP,
 * GPM, provider+model, user. */
START_TEST(keys_absent_and_long_fields) {
        gws_detect_stats_t dst;
        char *big = malloc(60001);
        int64_t ts = T0;
        ck_assert_ptr_nonnull(big);
        memset(big, 'x', 60000);
        big[60000] = '\0';

        feed(ts += 200, "gw", "m", 200, 100, NULL); /* no user: 4 */
        gws_detect_stats(det, &dst);
        ck_assert_uint_eq(dst.entities, 4);
        feed(ts += 200, "gw", "m", 200, 100, ""); /* empty user: none */
        gws_detect_stats(det, &dst);
        ck_assert_uint_eq(dst.entities, 4);
        feed(ts += 200, "gw", "m", 200, 100, "u"); /* + user */
        gws_detect_stats(det, &dst);
        ck_assert_uint_eq(dst.entities, 5);
        /* "gw" + provider "openai" + a model of 59990 bytes: 60000, the
         * longest key there is (+ GPM, + provider+model) */
        big[59990] = '\0';
        feed(ts += 200, "gw", big, 200, 100, "u");
        gws_detect_stats(det, &dst);
        ck_assert_uint_eq(dst.entities, 7);
        /* one byte more: no GPM (60001), provider+model still (59998) */
        big[59990] = 'x';
        big[59991] = '\0';
        feed(ts += 200, "gw", big, 200, 100, "u");
        gws_detect_stats(det, &dst);
        ck_assert_uint_eq(dst.entities, 8);
        /* a gateway of 59995 bytes: G only of the gateway's (GP would be
         * 60002 bytes); provider+model "m" and the user exist */
        big[59991] = 'x';
        big[59995] = '\0';
        feed(ts += 200, big, "m", 200, 100, "u");
        gws_detect_stats(det, &dst);
        ck_assert_uint_eq(dst.entities, 9);
        /* a gateway named like a gateway+provider key is another entity
         * (its G); its GP and GPM keys are new as well */
        feed(ts += 200, "gw\x1fopenai", "m", 200, 100, "u");
        gws_detect_stats(det, &dst);
        ck_assert_uint_eq(dst.entities, 12);
        ck_assert_uint_eq(dst.untracked, 0);
        free(big);
}
END_TEST

START_TEST(keys_configured_sets) {
        char err[256];
        gws_keyset_t ks[GWS_MAX_KEYSETS];
        ck_assert_int_eq(gws_config_parse_keysets(
                             "model+provider, user_id ,gateway_id+client_ip",
                             ks, err, sizeof(err)),
                         3);
        ck_assert_int_eq(ks[0].nfields, 2);
        ck_assert_int_eq(ks[0].field[0], GWS_KF_PROVIDER); /* canonical */
        ck_assert_int_eq(ks[0].field[1], GWS_KF_MODEL);
        ck_assert_int_eq(ks[2].field[1], GWS_KF_CLIENT_IP);
        ck_assert_int_eq(gws_config_parse_keysets("modle", ks, err,
                                                  sizeof(err)),
                         -1);
        ck_assert_ptr_nonnull(strstr(err, "\"modle\""));
        ck_assert_int_eq(gws_config_parse_keysets("model+model", ks, err,
                                                  sizeof(err)),
                         -1);
        ck_assert_int_eq(gws_config_parse_keysets(
                             "model+provider,provider+model", ks, err,
                             sizeof(err)),
                         -1);
        ck_assert_ptr_nonnull(strstr(err, "repeats"));
        ck_assert_int_eq(gws_config_parse_keysets(
                             "gateway_id+provider+model+user_id", ks, err,
                             sizeof(err)),
                         -1);
        ck_assert_int_eq(gws_config_parse_keysets("a,,b", ks, err,
                                                  sizeof(err)),
                         -1);

        /* Only gateway+provider+model: the previous behaviour. */
        gws_detect_destroy(det);
        ck_assert_int_eq(gws_config_set(cfg, "detectors.numeric_keys",
                                        "gateway_id+provider+model", err,
                                        sizeof(err)),
                         0);
        det = gws_detect_new(cfg, 0);
        {
                int i;
                for (i = 0; i < 9000; i++)
                        feedk(T0 + i * 200LL, "gw", "m", "u",
                              exp(6.5 + 0.5 * gauss()) *
                                  (i >= 3000 && i < 3900 ? 10 : 1),
                              100);
        }
        ck_assert_str_eq(open_entity("latency"),
                         "gateway_id=gw,provider=openai,model=m");
}
END_TEST


/* Regression (found by the fuzzer): with the entity cap full of entities
 * that carry open alerts, creating one entity of an event evicted another
 * entity of the same event, which was then used after it was freed. Run
 * under AddressSanitizer in CI. */
START_TEST(eviction_spares_the_current_event) {
        char err[256], model[16], user[16], gw[16];
        int i;
        static const char *set[][2] = {
            {"detectors.max_entities", "16"},
            {"detectors.warmup_events", "2"},
            {"detectors.min_anomalies", "1"},
            {"detectors.min_share", "0"},
            {"detectors.novelty_warmup_s", "0"}};
        for (i = 0; i < 5; i++)
                ck_assert_int_eq(gws_config_set(cfg, set[i][0], set[i][1],
                                                err, sizeof(err)), 0);
        gws_detect_destroy(det);
        det = gws_detect_new(cfg, 0);
        /* New models open novelty alerts (their entities cannot be
         * evicted), spikes open latency alerts: the cap fills with
         * entities that stay, and each event creates several. */
        for (i = 0; i < 20000; i++) {
                snprintf(gw, sizeof(gw), "gw-%d", (int)(unif() * 3));
                snprintf(model, sizeof(model), "m-%d", (int)(unif() * 300));
                snprintf(user, sizeof(user), "u-%d", (int)(unif() * 500));
                feedk(T0 + i * 50LL, gw, model, user,
                      unif() < 0.1 ? 100000 : 100, 100);
        }
        ck_assert_int_gt((int)json_array_size(sink.alerts), 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * busy entities (tens to hundreds of events per second of event time)
 * ------------------------------------------------------------------------ */

#define BUSY_WARM_S 600 /* baseline before the incident */

static int busy_first_inc;         /* evn of the first incident event */
static int64_t busy_inc0, busy_inc1; /* the incident, event time */

/* One gateway and model at \p rate events/s (latency lognormal, sigma
 * 0.4) for BUSY_WARM_S, then for \p inc_s seconds \p frac of the
 * requests \p mul times slower, then normal again for \p after_s. */
static void busy_step(int rate, double frac, double mul, int inc_s,
                      int after_s) {
        int64_t step = 1000 / rate, ts, end;
        busy_inc0 = T0 + BUSY_WARM_S * 1000LL;
        busy_inc1 = busy_inc0 + inc_s * 1000LL;
        end = busy_inc1 + after_s * 1000LL;
        for (ts = T0; ts < end; ts += step) {
                int in = ts >= busy_inc0 && ts < busy_inc1;
                if (ts == busy_inc0)
                        busy_first_inc = evn;
                feed(ts, "gw", "m", 200,
                     exp(6.5 + 0.4 * gauss()) *
                         (in && unif() < frac ? mul : 1),
                     NULL);
        }
}

/* Event time of member \p which ("start", "end") of alert \p a's
 * window. */
static int64_t alert_win(const json_t *a, const char *which) {
        const char *s = json_string_value(
            json_object_get(json_object_get(a, "window"), which));
        int64_t t;
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(gws_time_parse(s, strlen(s), &t), 0);
        return t;
}

/* An incident on a busy entity (100 events/s, half of them 10x slower
 * for 3 min): its alert resolves once the incident is over, although
 * the z-test's usual false positives (a few per thousand events: one
 * every few seconds here) go on; it was resolved only after resolve_s
 * without any anomaly, so it stayed open for ever. While the incident
 * goes on it stays open. */
START_TEST(busy_alert_resolves_after_incident) {
        json_t *res;
        busy_step(100, 0.5, 10, 180, 900);
        ck_assert_int_eq(count("latency", "open"), 1);
        ck_assert_int_eq(count("latency", "resolved"), 1);
        res = first("latency", "resolved");
        ck_assert_int_gt(alert_win(res, "end"), busy_inc1);
        /* resolve_s (120) after the window's share fell (within a
         * window, 60 s) */
        ck_assert_int_le(alert_win(res, "end"), busy_inc1 + 200000);
}
END_TEST

/* The alert that opens on a busy entity names the incident: its window
 * starts at the incident and its first event is one of the incident's.
 * The false positives before it (one every few seconds, never a window
 * apart) were taken as its beginning: it started at the first of them,
 * ten minutes earlier. */
START_TEST(busy_alert_starts_at_incident) {
        json_t *open;
        const char *id0;
        busy_step(100, 0.5, 10, 180, 0);
        ck_assert_ptr_nonnull(open = first("latency", "open"));
        ck_assert_int_ge(alert_win(open, "start"), busy_inc0 - 1000);
        ck_assert_int_le(alert_win(open, "start"), busy_inc0 + 5000);
        id0 = json_string_value(
            json_array_get(json_object_get(open, "event_ids"), 0));
        ck_assert_ptr_nonnull(id0);
        /* at most 100 events (1 s) before the incident */
        ck_assert_int_ge(atoi(id0 + 3), busy_first_inc - 100);
}
END_TEST

/* A sustained step on a busy entity opens an alert (within a window),
 * at 25, 100 and 500 events/s: the baseline's clipped updates (learned
 * 20x slower) absorbed the step in a few thousand events, i.e. seconds,
 * before the window's share of anomalies reached min_share; nothing
 * opened at 50 events/s and more. */
START_TEST(busy_step_opens) {
        static const int rates[] = {25, 100, 500};
        json_t *open;
        busy_step(rates[_i], 1, 10, 180, 0);
        ck_assert_int_eq(count("latency", "open"), 1);
        open = first("latency", "open");
        ck_assert_int_le(alert_win(open, "end"), busy_inc0 + 60000);
}
END_TEST

/* A model's incident on a busy gateway (100 events/s, half of them on
 * the model, 10x slower for 3 min) is one alert, not a second one on its
 * busiest user: the user's own anomalies in the seconds before the
 * model's alert opened stayed in its window while its later events were
 * explained by that alert (and left its n): 44 of 138 remaining events,
 * over min_share. */
START_TEST(busy_model_incident_one_alert) {
        char user[16];
        int64_t ts, inc0 = T0 + BUSY_WARM_S * 1000LL, inc1 = inc0 + 180000;
        for (ts = T0; ts < inc1 + 300000; ts += 10) {
                int m = unif() < 0.5;
                if (unif() < 0.1)
                        snprintf(user, sizeof(user), "u-hot");
                else
                        snprintf(user, sizeof(user), "u-%d",
                                 (int)(unif() * 100));
                feedk(ts, "gw", m ? "m" : "m2", user,
                      exp((m ? 5 : 6.5) + 0.4 * gauss()) *
                          (m && ts >= inc0 && ts < inc1 ? 10 : 1),
                      (int64_t)exp(6 + 0.5 * gauss()));
        }
        ck_assert_str_eq(open_entity("latency"), "provider=openai,model=m");
}
END_TEST

/* ------------------------------------------------------------------------
 * long-running entities (billions of observations of one baseline)
 * ------------------------------------------------------------------------ */

/* A baseline as a snapshot holds it (u32 n, f64 mean, f64 absdev,
 * little-endian: detect.c writes each one so), into \p pat. */
static void baseline_bytes(unsigned char pat[20], uint32_t n, double mean,
                           double absdev) {
        uint64_t u[2];
        int i, k;
        memcpy(&u[0], &mean, 8);
        memcpy(&u[1], &absdev, 8);
        for (i = 0; i < 4; i++)
                pat[i] = (unsigned char)(n >> (8 * i));
        for (k = 0; k < 2; k++)
                for (i = 0; i < 8; i++)
                        pat[4 + 8 * k + i] = (unsigned char)(u[k] >> (8 * i));
}

/* Where snapshot \p s holds the baseline (\p n, \p mean, \p absdev),
 * from byte \p from on; (size_t)-1 if nowhere. Bitwise: a constant
 * series keeps the mean exact and the deviation 0. */
static size_t find_baseline(const gws_buf_t *s, size_t from, uint32_t n,
                            double mean, double absdev) {
        unsigned char pat[20];
        size_t i;
        baseline_bytes(pat, n, mean, absdev);
        for (i = from; i + sizeof(pat) <= s->len; i++)
                if (!memcmp(s->buf + i, pat, sizeof(pat)))
                        return i;
        return (size_t)-1;
}

#define LONG_LAT 300.0 /* the entity's constant latency, ms */

/* Events of one entity (gateway gw, model m; only the gateway+provider+
 * model key set) at LONG_LAT ms, 4 per second from \p *ts; then the
 * entity's latency baseline in snapshot \p raw. @returns its offset. */
static size_t long_entity(int64_t *ts, int events, gws_buf_t *raw) {
        size_t at;
        int i;
        redetect("detectors.numeric_keys", "gateway_id+provider+model");
        for (i = 0; i < events; i++, *ts += 250)
                feed(*ts, "gw", "m", 200, LONG_LAT, NULL);
        ck_assert_int_eq(gws_detect_save(det, raw), 0);
        at = find_baseline(raw, 0, (uint32_t)events, log1p(LONG_LAT), 0);
        ck_assert_msg(at != (size_t)-1, "latency baseline not found");
        ck_assert_msg(find_baseline(raw, at + 1, (uint32_t)events,
                                    log1p(LONG_LAT), 0) == (size_t)-1,
                      "two latency baselines");
        return at;
}

/* Snapshot \p raw into a fresh detector. */
static void reload(const gws_buf_t *raw) {
        char err[256];
        gws_detect_destroy(det);
        det = gws_detect_new(cfg, 0);
        ck_assert_ptr_nonnull(det);
        ck_assert_msg(gws_detect_load(det, raw->buf, raw->len, err,
                                      sizeof(err)) > 0,
                      "load: %s", err);
}

/* A baseline's count near the limits of its u32, as one entity (one
 * gateway+provider+model) reaches them at 10k events/s: past INT_MAX in
 * ~2.5 days, UINT32_MAX in ~5 days. */
static const uint32_t long_counts[] = {2147483648u, /* INT_MAX + 1 */
                                       4294967294u, /* UINT32_MAX - 1 */
                                       4294967295u};

/* A baseline with billions of observations stays warm and keeps its
 * values: its count stops at UINT32_MAX, snapshots carry it as it is,
 * and a latency 10x its baseline is anomalous. Past INT_MAX the count,
 * cast to int, was negative, the baseline cold again (no z-score: no
 * latency, token or cost anomaly of that entity any more); at
 * UINT32_MAX the learning rate 1/(n+1) was 1/0 (n+1 in 32 bits), and
 * the next event made the mean NaN. The count is put there through a
 * snapshot (no hook: the baseline's bytes are found by value). */
START_TEST(baseline_count_saturates) {
        gws_buf_t raw = {0};
        gws_score_t sc;
        unsigned char pat[20];
        uint32_t n0 = long_counts[_i], want;
        int64_t ts = T0;
        size_t at;
        int i;

        at = long_entity(&ts, 200, &raw);
        baseline_bytes(pat, n0, log1p(LONG_LAT), 0);
        memcpy(raw.buf + at, pat, sizeof(pat));
        reload(&raw);
        /* usual values: learned, not anomalous */
        for (i = 0; i < 5; i++, ts += 250) {
                sc = feed(ts, "gw", "m", 200, LONG_LAT, NULL);
                ck_assert(!(sc.reasons & GWS_R_LATENCY));
        }
        /* the count stopped at UINT32_MAX and the baseline is intact, in
         * the snapshot too */
        want = n0 > UINT32_MAX - 5 ? UINT32_MAX : n0 + 5;
        gws_buf_reset(&raw);
        ck_assert_int_eq(gws_detect_save(det, &raw), 0);
        ck_assert_msg(find_baseline(&raw, 0, want, log1p(LONG_LAT), 0) !=
                          (size_t)-1,
                      "a baseline of %u events, 5 more learned: not saved "
                      "as %u events, mean log1p(%.0f), absdev 0",
                      (unsigned)n0, (unsigned)want, LONG_LAT);
        /* a saturated count round-trips, and the baseline is warm */
        reload(&raw);
        sc = feed(ts, "gw", "m", 200, LONG_LAT * 10, NULL);
        ck_assert_msg(sc.reasons & GWS_R_LATENCY,
                      "a latency 10x the baseline of an entity with %u "
                      "events is not anomalous (score %g)",
                      (unsigned)n0, sc.score);
        gws_buf_free(&raw);
}
END_TEST

/* A snapshot of an older build can hold a baseline that reached
 * UINT32_MAX values there: its learning rate was 1/0, and its mean and
 * absdev NaN (-NaN and NaN, as those builds wrote them). Loaded, it
 * starts again (cold, warm after detectors.warmup_events values), like
 * a new entity; it stayed NaN, never anomalous again. */
START_TEST(baseline_spoiled_by_older_build_starts_again) {
        gws_buf_t raw = {0};
        gws_score_t sc;
        unsigned char pat[20];
        int64_t ts = T0;
        size_t at;
        int i;

        at = long_entity(&ts, 200, &raw);
        baseline_bytes(pat, UINT32_MAX, -NAN, NAN);
        memcpy(raw.buf + at, pat, sizeof(pat));
        reload(&raw);
        for (i = 0; i < 60; i++, ts += 250) {
                sc = feed(ts, "gw", "m", 200, LONG_LAT, NULL);
                ck_assert(!(sc.reasons & GWS_R_LATENCY));
        }
        gws_buf_reset(&raw);
        ck_assert_int_eq(gws_detect_save(det, &raw), 0);
        ck_assert_msg(find_baseline(&raw, 0, 60, log1p(LONG_LAT), 0) !=
                          (size_t)-1,
                      "a NaN baseline loaded, 60 values learned: not "
                      "saved as 60 values, mean log1p(%.0f), absdev 0",
                      LONG_LAT);
        sc = feed(ts, "gw", "m", 200, LONG_LAT * 10, NULL);
        ck_assert_msg(sc.reasons & GWS_R_LATENCY,
                      "a latency 10x the baseline learned again is not "
                      "anomalous (score %g)",
                      sc.score);
        gws_buf_free(&raw);
}
END_TEST

/* A latency incident of one minute, from 5 minutes into the stream
 * (one event per 50 ms), opens an alert; the fixture's detector is then
 * saved into \p raw and *\p at set to where the alert's id is in it.
 * @returns the event time reached. */
static int64_t snapshot_with_alert(gws_buf_t *raw, size_t *at) {
        int64_t ts = T0, inc0 = T0 + 300000, end;
        json_t *open;
        const char *id;
        size_t i, idlen;

        redetect("detectors.numeric_keys", "gateway_id+provider+model");
        for (end = inc0 + 60000; ts < end; ts += 50)
                feed(ts, "gw", "m", 200, LONG_LAT * (ts >= inc0 ? 10 : 1),
                     NULL);
        ck_assert_ptr_nonnull(open = first("latency", "open"));
        id = json_string_value(json_object_get(open, "alert_id"));
        ck_assert_ptr_nonnull(id);
        idlen = strlen(id);
        ck_assert_int_eq(gws_detect_save(det, raw), 0);
        *at = (size_t)-1;
        for (i = 0; i + 24 + 64 <= raw->len; i++)
                if (!memcmp(raw->buf + i, id, idlen + 1))
                        *at = i;
        ck_assert_msg(*at != (size_t)-1, "alert id not in the snapshot");
        return ts;
}

/* An alert's anomaly count (u32, since it opened) of a long incident
 * stops at UINT32_MAX: an open alert takes every anomalous event of its
 * entity, 4.3 billion in ~5 days at 10k events/s. It wrapped to 0, and
 * the next anomaly took the alert as a new one: its window.start moved
 * to that event and the count in its reason began again. The count is
 * put near the limit through a snapshot, at the alert's id (the
 * anomalies follow its 24-byte id, 4 i64 times and 4 f64 values). */
START_TEST(alert_anomaly_count_saturates) {
        gws_buf_t raw = {0};
        json_t *open, *last = NULL, *a;
        const char *id, *reason;
        int64_t ts, end;
        size_t i, at;
        unsigned char near[4] = {0xfd, 0xff, 0xff, 0xff}; /* UINT32_MAX-2 */

        ts = snapshot_with_alert(&raw, &at);
        at += 24 + 64; /* the anomaly count */
        open = first("latency", "open");
        id = json_string_value(json_object_get(open, "alert_id"));
        memcpy(raw.buf + at, near, 4);
        reload(&raw);
        /* the incident goes on for 130 s: two updates */
        for (end = ts + 130000; ts < end; ts += 50)
                feed(ts, "gw", "m", 200, LONG_LAT * 10, NULL);
        json_array_foreach(sink.alerts, i, a) {
                if (!strcmp(json_string_value(json_object_get(a, "state")),
                            "update") &&
                    !strcmp(json_string_value(json_object_get(a, "alert_id")),
                            id))
                        last = a;
        }
        ck_assert_ptr_nonnull(last);
        ck_assert_int_eq(alert_win(last, "start"), alert_win(open, "start"));
        reason = json_string_value(json_object_get(last, "reason"));
        ck_assert_ptr_nonnull(reason);
        ck_assert_msg(strstr(reason, "(4294967295 anomalous requests"),
                      "%s", reason);
        gws_buf_free(&raw);
}
END_TEST

/* Loads into \p d2 a copy (\p dup) of snapshot \p raw with \p n bytes
 * at \p at replaced by \p v: a forged snapshot. @returns what
 * gws_detect_load() returns, \p err its reason. */
static int load_patched(gws_detect_t *d2, const gws_buf_t *raw,
                        gws_buf_t *dup, size_t at, const void *v, size_t n,
                        char *err, size_t errsz) {
        gws_buf_reset(dup);
        gws_buf_append(dup, raw->buf, raw->len);
        memcpy(dup->buf + at, v, n);
        err[0] = '\0';
        return gws_detect_load(d2, dup->buf, dup->len, err, errsz);
}

/* A snapshot is read from the state topic, which anyone with write access
 * can forge: an alert's values in it must be what the detector writes,
 * numbers (alert.md: observed and expected finite, score in [0,1]), or
 * the alert's next update carries them. Each value is forged in turn
 * (the alert's f64 values follow its 24-byte id and 4 i64 times:
 * observed, expected, score, peak_score, the score shown); the snapshot
 * must be refused. */
START_TEST(forged_alert_values_refused) {
        static const struct {
                size_t at; /* after the id */
                double v;
                const char *what;
        } bad[] = {{24 + 32, NAN, "observed NaN"},
                   {24 + 32, INFINITY, "observed inf"},
                   {24 + 40, -INFINITY, "expected -inf"},
                   {24 + 48, NAN, "score NaN"},
                   {24 + 56, 2.0, "peak_score 2"},
                   {24 + 56, -1.0, "peak_score -1"},
                   {24 + 56, NAN, "peak_score NaN"}};
        gws_buf_t raw = {0}, dup = {0};
        json_t *a;
        int64_t ts, end;
        size_t i, k, at;
        char err[256];

        ts = snapshot_with_alert(&raw, &at);
        for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                gws_detect_t *d2 = gws_detect_new(cfg, 0);
                json_t *got = json_array();
                sink_t s2 = {got};
                const char *shown = "no update";
                char *txt = NULL;
                int64_t t2 = ts;
                if (load_patched(d2, &raw, &dup, at + bad[k].at, &bad[k].v, 8,
                                 err, sizeof(err)) >= 0) {
                        /* what the incident's next update says */
                        gws_detect_t *keep = det;
                        sink_t keeps = sink;
                        det = d2;
                        sink = s2;
                        for (end = t2 + 70000; t2 < end; t2 += 50)
                                feed(t2, "gw", "m", 200, LONG_LAT * 10,
                                     NULL);
                        det = keep;
                        sink = keeps;
                        json_array_foreach(got, i, a) {
                                free(txt);
                                txt = json_dumps(a, JSON_COMPACT);
                                shown = txt;
                        }
                }
                ck_assert_msg(strstr(err, "corrupt") && !txt,
                              "a snapshot with an alert's %s was loaded; "
                              "its next alert: %.400s",
                              bad[k].what, shown);
                free(txt);
                json_decref(got);
                gws_detect_destroy(d2);
        }
        gws_buf_free(&raw);
        gws_buf_free(&dup);
}
END_TEST

/* A gateway's rate baseline (events per window) and a gateway+provider's
 * error share, forged or corrupt in a snapshot: not a number, negative,
 * or a share above 1. Loaded, an infinite rate baseline opened a
 * rate_drop with "expected":null at the next window, and a NaN one
 * stopped the gateway's rate alerts for good (nothing learns it back).
 * The snapshot must be refused. The gx part follows the entity's key,
 * i64 first_ts, its window (96 bytes) and 5 baselines (100 bytes). */
START_TEST(forged_rate_and_error_baselines_refused) {
        static const struct {
                const char *key; /* type, u16 klen, key */
                size_t klen;
                double v;
                const char *what;
        } bad[] = {{"\x02\x02\x00gw", 5, INFINITY, "rate baseline inf"},
                   {"\x02\x02\x00gw", 5, NAN, "rate baseline NaN"},
                   {"\x02\x02\x00gw", 5, -240, "rate baseline -240"},
                   {"\x01\x09\x00gw\x1fopenai", 12, NAN, "error share NaN"},
                   {"\x01\x09\x00gw\x1fopenai", 12, 1.5, "error share 1.5"},
                   {"\x01\x09\x00gw\x1fopenai", 12, -0.5,
                    "error share -0.5"}};
        gws_buf_t raw = {0}, dup = {0};
        int64_t ts = T0, end;
        size_t i, k;
        char err[256];

        /* 4 events/s for 10 min: a learned rate of 240 per window */
        for (end = T0 + 600000; ts < end; ts += 250)
                feed(ts, "gw", "m", 200, LONG_LAT, NULL);
        ck_assert_int_eq(gws_detect_save(det, &raw), 0);
        for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                gws_detect_t *d2 = gws_detect_new(cfg, 0);
                json_t *got = json_array();
                sink_t s2 = {got};
                size_t at = (size_t)-1;
                char *txt = NULL;
                int64_t t2 = ts;
                for (i = 0; i + bad[k].klen + 212 <= raw.len; i++)
                        if (!memcmp(raw.buf + i, bad[k].key, bad[k].klen)) {
                                ck_assert_msg(at == (size_t)-1,
                                              "entity key twice");
                                at = i + bad[k].klen + 204;
                        }
                ck_assert_msg(at != (size_t)-1, "entity not found");
                if (load_patched(d2, &raw, &dup, at, &bad[k].v, 8, err,
                                 sizeof(err)) >= 0) {
                        /* the traffic drops to one event per 10 s */
                        gws_detect_t *keep = det;
                        sink_t keeps = sink;
                        det = d2;
                        sink = s2;
                        for (end = t2 + 300000; t2 < end; t2 += 10000)
                                feed(t2, "gw", "m", 200, LONG_LAT, NULL);
                        det = keep;
                        sink = keeps;
                        txt = json_array_size(got)
                                  ? json_dumps(json_array_get(got, 0),
                                               JSON_COMPACT)
                                  : strdup("none, the traffic dropped to "
                                           "1 event per 10 s");
                }
                ck_assert_msg(strstr(err, "corrupt") && !txt,
                              "a snapshot with a %s was loaded; its first "
                              "alert: %.300s",
                              bad[k].what, txt);
                json_decref(got);
                gws_detect_destroy(d2);
        }
        gws_buf_free(&raw);
        gws_buf_free(&dup);
}
END_TEST

/* A baseline's mean and mean absolute deviation are of log1p or log
 * values: what events give is within +-1500 (relative to the gateway's
 * baseline at most twice log(DBL_MAX)), the deviation not negative. A
 * snapshot with one far outside (finite: the NaN of older builds loads
 * cold, baseline_spoiled_by_older_build_starts_again) is corrupt or
 * forged; loaded, a mean of -1e300 made every usual latency of the
 * entity an anomaly (and its alerts said "expected":-1.0), and clipped
 * updates never learn it back. It must be refused. */
START_TEST(forged_baseline_out_of_range_refused) {
        static const struct {
                double mean, absdev;
        } bad[] = {{-1e300, 0}, {1e300, 0}, {5000, 0}, {log1p(LONG_LAT), -1},
                   {log1p(LONG_LAT), 1e300}};
        gws_buf_t raw = {0}, dup = {0};
        unsigned char pat[20];
        int64_t ts = T0;
        size_t at, k;
        char err[256];

        at = long_entity(&ts, 200, &raw);
        for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                gws_detect_t *d2 = gws_detect_new(cfg, 0), *keep = det;
                int i, anom = 0;
                int64_t t2 = ts;
                baseline_bytes(pat, 200, bad[k].mean, bad[k].absdev);
                if (load_patched(d2, &raw, &dup, at, pat, sizeof(pat), err,
                                 sizeof(err)) >= 0) {
                        det = d2;
                        for (i = 0; i < 100; i++, t2 += 250)
                                anom += !!(feed(t2, "gw", "m", 200, LONG_LAT,
                                                NULL)
                                               .reasons &
                                           GWS_R_LATENCY);
                        det = keep;
                }
                ck_assert_msg(strstr(err, "corrupt"),
                              "a baseline of mean %g, absdev %g was "
                              "loaded; %d of the next 100 usual latencies "
                              "were anomalous, %d alerts",
                              bad[k].mean, bad[k].absdev, anom,
                              (int)json_array_size(sink.alerts));
                gws_detect_destroy(d2);
        }
        gws_buf_free(&raw);
        gws_buf_free(&dup);
}
END_TEST

/* Event times in a snapshot beyond what events give: alerts.md's window
 * is event time, RFC 3339. Forged, an alert's window.start before 1970
 * went out as "-29719-...", an alert whose last anomaly is years ahead
 * of event time was never resolved, and event time (the watermark)
 * years ahead resolved every open alert at year 33658. An alert's times
 * are at most a lateness bound (two windows) ahead of event time, event
 * time within 1970-9999: the snapshot must be refused. Offsets: the
 * alert's i64 times follow its 24-byte id (opened, last anomaly, last
 * update, first anomaly); the watermark follows the fingerprint (21
 * bytes with one key set). */
START_TEST(forged_event_times_refused) {
        static const struct {
                int from_id; /* offset from the alert id, else absolute */
                size_t at;
                int64_t v;
                int incident; /* then 70 s more of it */
                const char *what;
        } bad[] = {{1, 24 + 24, -1000000000000000LL, 1, "window.start -1e15"},
                   {1, 24 + 8, T0 + 1000000000000LL, 0,
                    "last anomaly 31 years ahead"},
                   {0, 21, 1000000000000000LL, 1, "event time 1e15"}};
        gws_buf_t raw = {0}, dup = {0};
        int64_t ts, end;
        size_t i, k, at;
        char err[256];

        ts = snapshot_with_alert(&raw, &at);
        for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                gws_detect_t *d2 = gws_detect_new(cfg, 0);
                json_t *got = json_array(), *a;
                sink_t s2 = {got};
                char shown[400] = "";
                int64_t t2 = ts;
                if (load_patched(d2, &raw, &dup,
                                 (bad[k].from_id ? at : 0) + bad[k].at,
                                 &bad[k].v, 8, err, sizeof(err)) >= 0) {
                        /* 70 s more of the incident (or not), then 5
                         * min quiet */
                        gws_detect_t *keep = det;
                        sink_t keeps = sink;
                        int resolved = 0;
                        det = d2;
                        sink = s2;
                        for (end = t2 + 70000; bad[k].incident && t2 < end;
                             t2 += 50)
                                feed(t2, "gw", "m", 200, LONG_LAT * 10,
                                     NULL);
                        for (end = t2 + 300000; t2 < end; t2 += 50)
                                feed(t2, "gw", "m", 200, LONG_LAT, NULL);
                        det = keep;
                        sink = keeps;
                        json_array_foreach(got, i, a) {
                                json_t *w = json_object_get(a, "window");
                                const char *state = json_string_value(
                                    json_object_get(a, "state"));
                                resolved += !strcmp(state, "resolved");
                                snprintf(shown + strlen(shown),
                                         sizeof(shown) - strlen(shown),
                                         "%s %s..%s; ", state,
                                         json_string_value(json_object_get(
                                             w, "start")),
                                         json_string_value(
                                             json_object_get(w, "end")));
                        }
                        if (!resolved)
                                snprintf(shown + strlen(shown),
                                         sizeof(shown) - strlen(shown),
                                         "not resolved after 5 min "
                                         "without an anomaly");
                }
                ck_assert_msg(strstr(err, "corrupt"),
                              "a snapshot with %s was loaded; its alerts: "
                              "%s",
                              bad[k].what, shown);
                json_decref(got);
                gws_detect_destroy(d2);
        }
        gws_buf_free(&raw);
        gws_buf_free(&dup);
}
END_TEST

/* A gateway's heavy-hitter summaries in a snapshot: counts and usual
 * counts are what requests and tokens give, finite and not negative. A
 * forged or corrupt one was loaded as it was: a NaN or -inf in one key's
 * usual counts or tokens stopped the gateway's heavy_hitter alerts (none
 * opened when one IP then made 60% of the requests), and a NaN or
 * negative usual total reads every key's usual share as 0 for good
 * (nothing learns a NaN back). The snapshot must be refused. Where:
 * the client_ip summary's header (4 f32 totals, 2 u32) precedes its
 * slots (u64 hash, 7 f32: prio, cur, err, tok, terr, hist, htok, then
 * the u8 key length and the key); its first slot is found by its key. */
START_TEST(forged_heavy_hitter_counts_refused) {
        static const struct {
                int slot; /* offset from the first slot, else the header */
                size_t at;
                float v;
                const char *what;
        } bad[] = {{0, 8, NAN, "usual requests per window NaN"},
                   {0, 8, -50, "usual requests per window -50"},
                   {0, 12, INFINITY, "usual tokens per window inf"},
                   {0, 0, INFINITY, "requests this window inf"},
                   {0, 4, -1, "tokens this window -1"},
                   {1, 28, NAN, "a key's usual requests NaN"},
                   {1, 32, -INFINITY, "a key's usual tokens -inf"},
                   {1, 20, NAN, "a key's tokens NaN"},
                   {1, 24, -3, "a key's token overestimate -3"}};
        gws_buf_t raw = {0}, dup = {0};
        char ip[32], user[32], err[256];
        int64_t ts = T0;
        size_t at = (size_t)-1, k;
        int i;

        /* the first part of hh_ip_takes_over(): summaries, no alert */
        for (i = 0; i < 12000; i++, ts += 100) {
                snprintf(ip, sizeof(ip), "10.0.0.%d", (int)(unif() * 200));
                snprintf(user, sizeof(user), "u-%d", (int)(unif() * 200));
                feedx(ts, "gw", ip, user, 100);
        }
        ck_assert_int_eq(gws_detect_save(det, &raw), 0);
        for (k = 36; k + 8 <= raw.len && at == (size_t)-1; k++)
                if (!memcmp(raw.buf + k + 1, "10.0.0.", 7) &&
                    raw.buf[k] >= 8 && raw.buf[k] <= 10 &&
                    k + 1 + raw.buf[k] <= raw.len)
                        at = k - 36; /* the first slot */
        ck_assert_msg(at != (size_t)-1 && at >= 24, "no summary slot found");
        for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                gws_detect_t *d2 = gws_detect_new(cfg, 0), *keep = det;
                sink_t keeps = sink, s2 = {json_array()};
                int64_t t2 = ts;
                int opened = -1;
                if (load_patched(d2, &raw, &dup,
                                 (bad[k].slot ? at : at - 24) + bad[k].at,
                                 &bad[k].v, 4, err, sizeof(err)) >= 0) {
                        /* 203.0.113.9 makes 60% of the requests */
                        det = d2;
                        sink = s2;
                        for (i = 0; i < 3000; i++, t2 += 40) {
                                if (unif() < 0.6)
                                        snprintf(ip, sizeof(ip),
                                                 "203.0.113.9");
                                else
                                        snprintf(ip, sizeof(ip),
                                                 "10.0.0.%d",
                                                 (int)(unif() * 200));
                                feedx(t2, "gw", ip, NULL, 100);
                        }
                        opened = count("heavy_hitter", "open");
                        det = keep;
                        sink = keeps;
                }
                ck_assert_msg(strstr(err, "corrupt"),
                              "a snapshot with %s was loaded; %d "
                              "heavy_hitter alerts opened when one IP "
                              "made 60%% of the requests",
                              bad[k].what, opened);
                json_decref(s2.alerts);
                gws_detect_destroy(d2);
        }
        gws_buf_free(&raw);
        gws_buf_free(&dup);
}
END_TEST

/* An alert's reason is a sentence for people: its "N times the
 * baseline" must be a number, whatever the values. A latency of 1e300
 * ms is valid input (a finite number, not negative), and an entity
 * whose requests took 0 ms (a cache) has a baseline of 0: the ratio
 * must not be written as "infx", "nanx", a 300-digit number or "0.0x"
 * of a value that rose. Each case: 5 min at the usual latency, then a
 * minute at the incident's. */
START_TEST(reason_ratio_readable) {
        static const struct {
                double usual, incident;
        } cases[] = {{300, 1e300}, {300, DBL_MAX}, {0, 5000}};
        size_t k;
        for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                int64_t ts = T0 + (int64_t)k * 86400000, end;
                char gw[16];
                json_t *a;
                const char *reason;
                snprintf(gw, sizeof(gw), "gw-%d", (int)k);
                for (end = ts + 300000; ts < end; ts += 50)
                        feed(ts, gw, "m", 200, cases[k].usual, NULL);
                for (end = ts + 60000; ts < end; ts += 50)
                        feed(ts, gw, "m", 200, cases[k].incident, NULL);
                a = first("latency", "open");
                ck_assert_msg(a != NULL, "no latency alert for %g -> %g",
                              cases[k].usual, cases[k].incident);
                reason = json_string_value(json_object_get(a, "reason"));
                ck_assert_msg(!strstr(reason, "inf") && !strstr(reason, "nan") &&
                                  !strstr(reason, " 0.0x") &&
                                  !strstr(reason, "x its baseline of 0 ms") &&
                                  strlen(reason) < 200,
                              "%g ms usual, then %g ms: \"%s\"",
                              cases[k].usual, cases[k].incident, reason);
                json_array_clear(sink.alerts);
        }
}
END_TEST

/* An alert's expected value is on its measure's scale: a latency, a
 * token count, never negative. Sets without the model field (user_id,
 * gateway_id by default) learn values relative to the model's baseline
 * and add the model's baseline back for the alert; when that baseline
 * has fallen far since, the sum is below 0 and expm1() of it is
 * negative. A user who was fast against a slow model (1 ms against
 * 10 s), the model then fast (1 ms), then the user slow (1 s). */
START_TEST(expected_not_negative) {
        int64_t ts = T0, end;
        size_t i;
        json_t *a;
        int n = 0;
        for (end = ts + 600000; ts < end; ts += 100)
                feed(ts, "gw", "m", 200, (ts / 100) % 10 ? 10000 : 1,
                     (ts / 100) % 10 ? "others" : "u");
        for (end = ts + 1800000; ts < end; ts += 100)
                feed(ts, "gw", "m", 200, 1, "others");
        json_array_clear(sink.alerts);
        for (end = ts + 120000; ts < end; ts += 100)
                feed(ts, "gw", "m", 200, (ts / 100) % 2 ? 1 : 1000,
                     (ts / 100) % 2 ? "others" : "u");
        json_array_foreach(sink.alerts, i, a) {
                double e = json_number_value(json_object_get(a, "expected"));
                if (strcmp(json_string_value(json_object_get(a, "kind")),
                           "latency"))
                        continue;
                n++;
                ck_assert_msg(e >= 0, "a latency alert expects %g ms: %s", e,
                              json_string_value(json_object_get(a, "reason")));
        }
        ck_assert_msg(n > 0, "no latency alert when the user turned slow");
}
END_TEST

Suite *gws_detect_suite(void) {
        Suite *s = suite_create("detect");
        TCase *tc = tcase_create("series");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, stable_series_no_alerts);
        tcase_add_test(tc, changes_move_with_events_and_loads);
        tcase_add_test(tc, latency_step_open_update_resolve);
        tcase_add_test(tc, catch_up_builds_no_alert);
        tcase_add_test(tc, event_before_1970_is_skipped);
        tcase_add_test(tc, alert_cuts_at_a_character);
        tcase_add_test(tc, alert_numbers_render_as_jansson);
        tcase_add_test(tc, alert_reason_out_of_memory_fails_the_alert);
        tcase_add_test(tc, error_storm_and_small_counts);
        tcase_add_test(tc, novelty_after_warmup_only);
        tcase_add_test(tc, novelty_survives_eviction);
        tcase_add_test(tc, novelty_warmup_survives_eviction);
        tcase_add_test(tc, alert_bytes_in_the_budget);
        tcase_add_test(tc, alerts_holding_the_budget);
        tcase_add_test(tc, latency_alert_under_a_full_budget);
        tcase_add_test(tc, eviction_keeps_recently_used);
        tcase_add_test(tc, deterministic);
        tcase_add_test(tc, series_onset_scored_then_damped);
        tcase_add_test(tc, series_nan_z_scores_zero);
        tcase_add_loop_test(tc, series_absurd_row_keeps_shifts, 0, 2);
        tcase_add_test(tc, series_scores_do_not_saturate);
        tcase_add_test(tc, byte_budget_under_cardinality_attack);
        tcase_add_test(tc, heavy_hitter_ip_takes_over);
        tcase_add_test(tc, heavy_hitter_under_a_full_budget);
        tcase_add_test(tc, alerts_truncate_client_ip);
        tcase_add_test(tc, alert_id_hides_the_truncated_address);
        tcase_add_test(tc, alert_id_key_hides_the_user);
        tcase_add_test(tc, alert_id_key_stable_for_the_alert);
        tcase_add_test(tc, alert_id_key_other_key_other_ids);
        tcase_add_test(tc, heavy_hitter_usual_share_and_tokens);
        tcase_add_test(tc, heavy_hitter_few_enormous_prompts);
        tcase_add_test(tc, heavy_hitter_big_prompts_no_hog);
        tcase_add_test(tc, heavy_hitter_token_hog_among_many_users);
        tcase_add_test(tc, out_of_order_within_bound);
        tcase_add_test(tc, late_anomalies_window_in_order);
        tcase_add_test(tc, rate_drop_when_window_closes);
        tcase_add_test(tc, rate_off_raises_no_rate_drop);
        tcase_add_test(tc, clock_skew_does_not_move_event_time);
        tcase_add_test(tc, clock_skew_first_event_of_partition);
        tcase_add_test(tc, clock_skew_one_gateway_does_not_move_event_time);
        tcase_add_test(tc, clock_skew_first_event_of_gateway);
        tcase_add_test(tc, late_first_event_of_gateway_is_cheap);
        tcase_add_test(tc, clock_skew_does_not_date_novelty);
        tcase_add_test(tc, clock_skew_does_not_stop_error_baseline);
        tcase_add_test(tc, clock_jump_back_one_gateway);
        tcase_add_test(tc, clock_jump_back_needs_the_same_agreement);
        tcase_add_test(tc, silent_gateway_rate_drop_resolves);
        tcase_add_test(tc, rate_drop_gone_needs_silence_in_a_row);
        tcase_add_test(tc, rate_drop_settles_at_new_level);
        tcase_add_test(tc, rate_drop_outage_stays_open);
        tcase_add_test(tc, rate_spike_settles_at_new_level);
        tcase_add_test(tc, rate_drop_starts_at_the_drop);
        tcase_add_test(tc, clock_jump_back_resolves_oldest_first);
        tcase_add_test(tc, keys_provider_wide_slowdown_one_alert);
        tcase_add_test(tc, keys_user_prompts_one_alert);
        tcase_add_test(tc, keys_gateway_wide_one_alert);
        tcase_add_test(tc, keys_user_model_switch_is_normal);
        tcase_add_test(tc, keys_configured_sets);
        tcase_add_test(tc, keys_absent_and_long_fields);
        tcase_add_test(tc, eviction_spares_the_current_event);
        tcase_add_test(tc, busy_alert_resolves_after_incident);
        tcase_add_test(tc, busy_alert_starts_at_incident);
        tcase_add_loop_test(tc, busy_step_opens, 0, 3);
        tcase_add_test(tc, busy_model_incident_one_alert);
        tcase_add_loop_test(tc, baseline_count_saturates, 0,
                            (int)(sizeof(long_counts) /
                                  sizeof(long_counts[0])));
        tcase_add_test(tc, baseline_spoiled_by_older_build_starts_again);
        tcase_add_test(tc, alert_anomaly_count_saturates);
        tcase_add_test(tc, forged_alert_values_refused);
        tcase_add_test(tc, forged_rate_and_error_baselines_refused);
        tcase_add_test(tc, forged_baseline_out_of_range_refused);
        tcase_add_test(tc, forged_event_times_refused);
        tcase_add_test(tc, forged_heavy_hitter_counts_refused);
        tcase_add_test(tc, reason_ratio_readable);
        tcase_add_test(tc, expected_not_negative);
        suite_add_tcase(s, tc);
        return s;
}
