/* test_state.c - detector snapshots: save/load equivalence, the state
 * record's checks (truncated, corrupt, foreign, other versions and
 * settings), and the size figures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "gwsieve/detect.h"
#include "gwsieve/state.h"
#include "gwsieve/util.h"
#include "suites.h"

static uint64_t rng;
static double unif(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (double)(rng >> 11) / 9007199254740992.0;
}
static double gauss(void) {
        double u = unif() + 1e-12, v = unif();
        return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* Alerts as one string per alert, without emitted_at (wall clock). */
static int sink_cb(void *opaque, const char *id, const char *json,
                   size_t len, int kind, int state) {
        json_t *arr = opaque, *j = json_loadb(json, len, 0, NULL);
        char *s;
        (void)id, (void)kind, (void)state;
        ck_assert_ptr_nonnull(j);
        json_object_del(j, "emitted_at");
        s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        json_array_append_new(arr, json_string(s));
        free(s);
        json_decref(j);
        return 0;
}

#define T0 1767225600000LL

#define LE32(p) ((uint32_t)(p)[0] | (uint32_t)(p)[1] << 8 | \
                 (uint32_t)(p)[2] << 16 | (uint32_t)(p)[3] << 24)

/* Format 5 snapshot \p in as format 4 had it (into \p out, reset
 * first): the fingerprints of the models seen after the entities, not
 * before them. \p hend: where the header ends and the fingerprints begin
 * (an unused detector's snapshot, which ends with u32 0 fingerprints and
 * u32 0 entities, less 8 bytes). */
static void to_format_4(const gws_buf_t *in, size_t hend, gws_buf_t *out) {
        const unsigned char *s = (const unsigned char *)in->buf;
        size_t fend;
        ck_assert_uint_ge(in->len, hend + 8);
        fend = hend + 4 + 8 * (size_t)LE32(s + hend);
        ck_assert_uint_le(fend + 4, in->len);
        gws_buf_reset(out);
        gws_buf_append(out, in->buf, hend);
        out->buf[4] = 4;
        gws_buf_append(out, in->buf + fend, in->len - fend);
        gws_buf_append(out, in->buf + hend, fend - hend);
}

/* Event \p i of a synthetic stream: 4 gateways, 3 models, 200 users;
 * from i = 6000 to 9000 model m1 is 8x slower on gw-1 and user u-7 sends
 * 30x the tokens; gw-3 calls a new model from 7000 on. */
static double feed(gws_detect_t *d, int i, json_t *alerts) {
        static const char *gws[] = {"gw-0", "gw-1", "gw-2", "gw-3"};
        static const char *models[] = {"m0", "m1", "m2", "m-new"};
        char id[32], user[16], ip[24];
        gws_event_t ev;
        gws_score_t sc;
        int g = (int)(unif() * 4), m = (int)(unif() * 3), u;
        double lat = exp(6 + m + 0.4 * gauss()), tok = exp(6 + 0.5 * gauss());

        u = (int)(pow(unif(), 2) * 200);
        if (g == 3 && i >= 7000 && unif() < 0.3)
                m = 3;
        if (i >= 6000 && i < 9000 && g == 1 && m == 1)
                lat *= 8;
        if (i >= 6000 && i < 9000 && u == 7)
                tok *= 30;
        memset(&ev, 0, sizeof(ev));
        snprintf(id, sizeof(id), "ev-%d", i);
        snprintf(user, sizeof(user), "u-%d", u);
        snprintf(ip, sizeof(ip), "10.0.%d.%d", g, u % 50);
        ev.id = (gws_str_t){id, strlen(id)};
        ev.gateway_id = (gws_str_t){gws[g], strlen(gws[g])};
        ev.provider = (gws_str_t){"openai", 6};
        ev.model = (gws_str_t){models[m], strlen(models[m])};
        ev.user_id = (gws_str_t){user, strlen(user)};
        ev.client_ip = (gws_str_t){ip, strlen(ip)};
        ev.ts_ms = T0 + (int64_t)i * 100 + (int64_t)(unif() * 2000);
        ev.status = unif() < 0.01 ? 500 : 200;
        ev.success = ev.status < 400;
        ev.latency_ms = lat;
        ev.ttfb_ms = lat * 0.3;
        ev.has_ttfb = 1;
        ev.tokens_in = (int64_t)tok;
        ev.has_tokens_in = 1;
        ev.tokens_out = (int64_t)(tok / 3);
        ev.has_tokens_out = 1;
        ev.cost_usd = tok * 1e-6;
        ev.has_cost = 1;
        ck_assert_int_ge(gws_detect_event(d, &ev, &sc, sink_cb, alerts), 0);
        return sc.score;
}

static gws_config_t *cfg;

static void setup(void) {
        rng = 0x9E3779B97F4A7C15ULL;
        cfg = gws_config_new();
}
static void teardown(void) { gws_config_destroy(cfg); }

/* Save at event 7500 (mid-incident, alerts open), restore into a new
 * detector through the state record, then feed both the same rest of the
 * stream: every score and every alert must be the same. */
START_TEST(restore_continues_identically) {
        gws_detect_t *a = gws_detect_new(cfg, 3), *b = gws_detect_new(cfg, 3);
        json_t *aa = json_array(), *ba = json_array(), *pre = json_array();
        gws_buf_t raw = {0}, rec = {0}, back = {0};
        gws_state_info_t info;
        gws_detect_stats_t sa, sb;
        char err[256];
        uint64_t saved;
        int i, n, open_before = 0;
        size_t k;
        json_t *v;

        for (i = 0; i < 7500; i++)
                feed(a, i, pre);
        json_array_foreach(pre, k, v) open_before +=
            strstr(json_string_value(v), "\"state\":\"open\"") != NULL;
        ck_assert_int_ge(open_before, 2); /* incidents under way */
        ck_assert_int_eq(gws_detect_save(a, &raw), 0);
        gws_detect_stats(a, &sa);
        ck_assert_int_eq(gws_state_encode(&rec, "g", "gw.raw", 3, 7500,
                                          7400, (uint32_t)sa.entities,
                                          raw.buf, raw.len, 3, err,
                                          sizeof(err)),
                         0);
        ck_assert_int_eq(gws_state_decode(rec.buf, rec.len, "g", "gw.raw", 3, 0,
                                          &back, &info, err, sizeof(err)),
                         GWS_STATE_OK);
        ck_assert_int_eq(info.offset, 7500);
        ck_assert_int_eq(info.delivered, 7400);
        ck_assert_uint_eq(back.len, raw.len);
        n = gws_detect_load(b, back.buf, back.len, err, sizeof(err));
        ck_assert_msg(n > 0, "load: %s", err);
        gws_detect_stats(b, &sb);
        ck_assert_uint_eq(sb.entities, sa.entities);
        ck_assert_uint_eq(sb.bytes, sa.bytes);
        /* saving the restored state gives the same bytes */
        gws_buf_reset(&back);
        ck_assert_int_eq(gws_detect_save(b, &back), 0);
        ck_assert_uint_eq(back.len, raw.len);
        ck_assert(!memcmp(back.buf, raw.buf, raw.len));

        saved = rng;
        for (i = 7500; i < 14000; i++)
                feed(a, i, aa);
        rng = saved;
        for (i = 7500; i < 14000; i++)
                feed(b, i, ba);
        ck_assert_int_gt((int)json_array_size(aa), 0);
        ck_assert(json_equal(aa, ba));
        gws_detect_stats(a, &sa);
        gws_detect_stats(b, &sb);
        ck_assert_uint_eq(sa.alerts_resolved, sb.alerts_resolved);
        ck_assert_uint_gt(sa.alerts_resolved, 0);
        printf("state: %llu entities, snapshot %zu bytes raw (%.0f B/entity)"
               ", %zu zstd (%.0f B/entity); %zu alert records after the "
               "restore, identical\n",
               (unsigned long long)sa.entities, raw.len,
               (double)raw.len / (double)sa.entities, rec.len,
               (double)rec.len / (double)sa.entities, json_array_size(aa));
        json_decref(aa);
        json_decref(ba);
        json_decref(pre);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        gws_buf_free(&back);
        gws_detect_destroy(a);
        gws_detect_destroy(b);
}
END_TEST

/* Every way a record can be wrong is named, and none crashes. */
START_TEST(bad_records_are_named) {
        gws_detect_t *a = gws_detect_new(cfg, 0), *b;
        json_t *al = json_array();
        gws_buf_t raw = {0}, rec = {0}, out = {0}, bad = {0};
        gws_state_info_t info;
        gws_config_t *other = gws_config_new();
        char err[256];
        size_t cut;
        int i;

        for (i = 0; i < 3000; i++)
                feed(a, i, al);
        ck_assert_int_eq(gws_detect_save(a, &raw), 0);
        ck_assert_int_eq(gws_state_encode(&rec, "grp", "gw.raw", 0, 3000,
                                          2990, 1, raw.buf, raw.len, 3, err,
                                          sizeof(err)),
                         0);
#define DECODE(buf, len, part)                                                 \
        gws_state_decode(buf, len, "grp", "gw.raw", part, 0, &out, &info,     \
                         err, sizeof(err))
        ck_assert_int_eq(DECODE(rec.buf, rec.len, 0), GWS_STATE_OK);
        /* another partition's record (or another group's) */
        ck_assert_int_eq(DECODE(rec.buf, rec.len, 1), GWS_STATE_FOREIGN);
        ck_assert_ptr_nonnull(strstr(err, "partition 0"));
        ck_assert_int_eq(gws_state_decode(rec.buf, rec.len, "other", "gw.raw",
                                          0, 0, &out, &info, err, sizeof(err)),
                         GWS_STATE_FOREIGN);
        /* truncated anywhere */
        for (cut = 0; cut < rec.len; cut += rec.len / 97 + 1) {
                gws_state_result_t r = DECODE(rec.buf, cut, 0);
                ck_assert_msg(r == GWS_STATE_TRUNCATED ||
                                  r == GWS_STATE_CHECKSUM,
                              "cut at %zu: %s", cut,
                              gws_state_result_name(r));
        }
        ck_assert_int_eq(DECODE(rec.buf, rec.len - 3, 0),
                         GWS_STATE_TRUNCATED);
        /* one bit flipped anywhere after the magic */
        gws_buf_append(&bad, rec.buf, rec.len);
        for (cut = 6; cut < rec.len; cut += rec.len / 113 + 1) {
                gws_state_result_t r;
                bad.buf[cut] ^= 0x10;
                r = DECODE(bad.buf, bad.len, 0);
                ck_assert_msg(r != GWS_STATE_OK, "flip at %zu accepted", cut);
                bad.buf[cut] ^= 0x10;
        }
        bad.buf[rec.len / 2] ^= 1;
        ck_assert_int_eq(DECODE(bad.buf, bad.len, 0), GWS_STATE_CHECKSUM);
        bad.buf[rec.len / 2] ^= 1;
        bad.buf[4] = 9; /* envelope version */
        ck_assert_int_eq(DECODE(bad.buf, bad.len, 0),
                         GWS_STATE_VERSION_MISMATCH);
        ck_assert_int_eq(DECODE("{\"json\":1}", 10, 0),
                         GWS_STATE_NOT_SNAPSHOT);
        ck_assert_int_eq(DECODE("", 0, 0), GWS_STATE_TRUNCATED);

        /* the detector's own checks: other settings, cut payloads */
        ck_assert_int_eq(gws_config_set(other, "detectors.numeric_keys",
                                        "provider+model", err, sizeof(err)),
                         0);
        b = gws_detect_new(other, 0);
        ck_assert_int_eq(gws_detect_load(b, raw.buf, raw.len, err,
                                         sizeof(err)),
                         -1);
        ck_assert_ptr_nonnull(strstr(err, "incompatible"));
        gws_detect_destroy(b);
        for (cut = 0; cut < raw.len; cut += raw.len / 61 + 1) {
                b = gws_detect_new(cfg, 0);
                ck_assert_int_eq(gws_detect_load(b, raw.buf, cut, err,
                                                 sizeof(err)),
                                 -1);
                gws_detect_destroy(b);
        }
        json_decref(al);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        gws_buf_free(&out);
        gws_buf_free(&bad);
        gws_config_destroy(other);
        gws_detect_destroy(a);
}
END_TEST

/* Snapshot fields the loader must bound (found by fuzz_state): an alert
 * claiming more event ids than an alert holds was refused, but freed with
 * that count (out-of-bounds read, frees of garbage); an entity twice was
 * read over the first copy (its numeric windows leaked); event times were
 * taken as they came. The count byte
 * is found from the alert's first event id (u8 length + bytes) right
 * after it and the ring position. */
/* Replaces one byte of the first occurrence of \p what in \p raw with
 * 0xff (never valid UTF-8). @returns 1 if found. */
static int spoil(gws_buf_t *raw, const char *what, size_t at) {
        size_t n = strlen(what), pos;
        for (pos = 0; pos + n <= raw->len; pos++)
                if (!memcmp(raw->buf + pos, what, n)) {
                        raw->buf[pos + at] = (char)0xff;
                        return 1;
                }
        return 0;
}

/* Strings of a snapshot end up in alerts (entity values, alert and event
 * ids), which are JSON: a forged or corrupt one that is not UTF-8 is
 * refused, not written out as invalid JSON. */
START_TEST(non_utf8_snapshot_strings_are_refused) {
        gws_detect_t *a = gws_detect_new(cfg, 0), *b;
        json_t *al = json_array(), *alert;
        gws_buf_t raw = {0};
        char err[256], gw[64];
        const char *what[3];
        int i, k;

        for (i = 0; i < 9000 && !json_array_size(al); i++)
                feed(a, i, al);
        ck_assert_int_gt((int)json_array_size(al), 0);
        alert = json_loads(json_string_value(json_array_get(al, 0)), 0, NULL);
        /* an entity key (the gateway, a part of every key of its
         * entities), the alert id, an event id */
        snprintf(gw, sizeof(gw), "%s",
                 json_string_value(json_object_get(
                     json_object_get(alert, "entity"), "gateway_id")));
        what[0] = gw;
        what[1] = json_string_value(json_object_get(alert, "alert_id"));
        what[2] = json_string_value(
            json_array_get(json_object_get(alert, "event_ids"), 0));
        for (k = 0; k < 3; k++) {
                ck_assert_ptr_nonnull(what[k]);
                gws_buf_reset(&raw);
                ck_assert_int_eq(gws_detect_save(a, &raw), 0);
                ck_assert_msg(spoil(&raw, what[k], 1), "\"%s\" not found",
                              what[k]);
                b = gws_detect_new(cfg, 0);
                err[0] = '\0';
                ck_assert_msg(gws_detect_load(b, raw.buf, raw.len, err,
                                              sizeof(err)) == -1,
                              "a snapshot with \"%s\" spoiled was loaded",
                              what[k]);
                ck_assert_msg(strstr(err, "not UTF-8"), "%s", err);
                gws_detect_destroy(b);
        }
        json_decref(alert);
        json_decref(al);
        gws_buf_free(&raw);
        gws_detect_destroy(a);
}
END_TEST

static size_t snapshot_as_format_2(const unsigned char *s, size_t len,
                                   size_t hdr, gws_buf_t *out);

START_TEST(bad_snapshot_fields_are_refused) {
        gws_detect_t *a = gws_detect_new(cfg, 0), *b;
        json_t *al = json_array(), *alert, *ids;
        gws_buf_t raw = {0};
        char err[256], pat[64];
        const char *first;
        size_t plen, pos;
        int i, found = 0;

        for (i = 0; i < 9000 && !json_array_size(al); i++)
                feed(a, i, al);
        ck_assert_int_gt((int)json_array_size(al), 0);
        /* sink_cb keeps each alert as its JSON text */
        alert = json_loads(json_string_value(json_array_get(al, 0)), 0, NULL);
        ids = json_object_get(alert, "event_ids");
        first = json_string_value(json_array_get(ids, 0));
        ck_assert_ptr_nonnull(first);
        ck_assert_int_eq(gws_detect_save(a, &raw), 0);
        plen = strlen(first);
        pat[0] = (char)plen;
        memcpy(pat + 1, first, plen);
        for (pos = 2; pos + plen + 1 <= raw.len; pos++) {
                if (memcmp(raw.buf + pos, pat, plen + 1) ||
                    (size_t)(unsigned char)raw.buf[pos - 2] !=
                        json_array_size(ids))
                        continue;
                found = 1;
                raw.buf[pos - 2] = (char)200; /* nids */
                break;
        }
        ck_assert_msg(found, "alert ids not found in the snapshot");
        b = gws_detect_new(cfg, 0);
        ck_assert_int_eq(gws_detect_load(b, raw.buf, raw.len, err,
                                         sizeof(err)),
                         -1);
        ck_assert_ptr_nonnull(strstr(err, "corrupt"));
        gws_detect_destroy(b);

        /* every entity twice (the numeric windows of the first copy were
         * leaked, its values overwritten): the header of an unused
         * detector tells where the entities start */
        {
                gws_detect_t *e0 = gws_detect_new(cfg, 0);
                gws_buf_t h = {0}, dup = {0}, scratch = {0}, v4 = {0};
                uint32_t n;
                size_t at, end;
                ck_assert_int_eq(gws_detect_save(e0, &h), 0);
                gws_buf_reset(&raw);
                ck_assert_int_eq(gws_detect_save(a, &raw), 0);
                /* in format 4 (the entities are read alike): they start
                 * here, u32 count before; an unused detector's snapshot
                 * ends with u32 0 (no model seen) */
                to_format_4(&raw, h.len - 8, &v4);
                at = h.len - 4;
                end = snapshot_as_format_2((const unsigned char *)v4.buf,
                                           v4.len, at, &scratch);
                memcpy(&n, v4.buf + at - 4, 4); /* little-endian host */
                n *= 2;
                gws_buf_append(&dup, v4.buf, at - 4);
                gws_buf_append(&dup, (const char *)&n, 4);
                gws_buf_append(&dup, v4.buf + at, end - at);
                gws_buf_append(&dup, v4.buf + at, v4.len - at);
                b = gws_detect_new(cfg, 0);
                ck_assert_int_eq(gws_detect_load(b, dup.buf, dup.len, err,
                                                 sizeof(err)),
                                 -1);
                ck_assert_msg(strstr(err, "an entity twice"), "%s", err);
                gws_detect_destroy(b);

                /* event time out of any event's range (a forged value
                 * overflowed ts - first_ts), a skew run or a run back
                 * past its bound: the header ends with i64 wm, u32
                 * future_run, i64 last_tick, u32 past_run (then, in
                 * format 4, u32 count) */
                {
                        static const struct {
                                size_t back; /* bytes before the end */
                                int width;
                                int64_t v;
                        } bad[] = {{28, 8, INT64_MAX / 2},
                                   {28, 8, INT64_MIN + 1},
                                   {20, 4, 1000},
                                   {16, 8, -(INT64_MAX / 2)},
                                   {8, 4, 20},
                                   {8, 4, -1}};
                        size_t k;
                        for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                                gws_buf_reset(&dup);
                                gws_buf_append(&dup, v4.buf, v4.len);
                                memcpy(dup.buf + at - bad[k].back, &bad[k].v,
                                       (size_t)bad[k].width);
                                b = gws_detect_new(cfg, 0);
                                ck_assert_msg(gws_detect_load(b, dup.buf,
                                                              dup.len, err,
                                                              sizeof(err)) ==
                                                  -1,
                                              "forged header field %zu "
                                              "accepted",
                                              k);
                                gws_detect_destroy(b);
                        }
                }
                gws_detect_destroy(e0);
                gws_buf_free(&h);
                gws_buf_free(&dup);
                gws_buf_free(&scratch);
                gws_buf_free(&v4);
        }
        json_decref(alert);
        json_decref(al);
        gws_buf_free(&raw);
        gws_detect_destroy(a);
}
END_TEST

/* The delivered offset travels in the envelope (clamped to the state's
 * offset), and a version 1 record (written before it existed: 8 bytes
 * shorter, no delivered offset) is still read, with -1 for it. */
START_TEST(delivered_offset_and_version_1) {
        gws_buf_t rec = {0}, v1 = {0}, out = {0};
        gws_state_info_t info;
        static const unsigned char zero[8];
        const char raw[] = "not a detector, just bytes to carry";
        char err[256];
        uint64_t h;
        int i;

        ck_assert_int_eq(gws_state_encode(&rec, "grp", "gw.raw", 5, 900, 850,
                                          7, raw, sizeof(raw), 3, err,
                                          sizeof(err)),
                         0);
        ck_assert_int_eq(gws_state_decode(rec.buf, rec.len, "grp", "gw.raw",
                                          5, 0, &out, &info, err, sizeof(err)),
                         GWS_STATE_OK);
        ck_assert_int_eq(info.offset, 900);
        ck_assert_int_eq(info.delivered, 850);
        ck_assert_uint_eq(info.entities, 7);
        /* what a writer's logs read of its own record */
        ck_assert_uint_eq(gws_state_entities(rec.buf, rec.len), 7);
        ck_assert_uint_eq(gws_state_entities(rec.buf, 47), 0);
        ck_assert_mem_eq(out.buf, raw, sizeof(raw));
        /* never above the state's own offset; -1 stays unknown */
        ck_assert_int_eq(gws_state_encode(&rec, "grp", "gw.raw", 5, 900, 901,
                                          7, raw, sizeof(raw), 3, err,
                                          sizeof(err)),
                         0);
        gws_state_decode(rec.buf, rec.len, "grp", "gw.raw", 5, 0, &out, &info,
                         err, sizeof(err));
        ck_assert_int_eq(info.delivered, 900);
        ck_assert_int_eq(gws_state_encode(&rec, "grp", "gw.raw", 5, 900, -1,
                                          7, raw, sizeof(raw), 3, err,
                                          sizeof(err)),
                         0);
        gws_state_decode(rec.buf, rec.len, "grp", "gw.raw", 5, 0, &out, &info,
                         err, sizeof(err));
        ck_assert_int_eq(info.delivered, -1);

        /* version 1: the same record without bytes 40..47, re-summed as
         * version 1 did (bytes 0..31, 8 zero bytes, bytes 40.. on) */
        ck_assert_int_eq(gws_state_encode(&rec, "grp", "gw.raw", 5, 900, 850,
                                          7, raw, sizeof(raw), 3, err,
                                          sizeof(err)),
                         0);
        gws_buf_append(&v1, rec.buf, 40);
        gws_buf_append(&v1, rec.buf + 48, rec.len - 48);
        v1.buf[4] = 1;
        v1.buf[5] = 0;
        h = gws_hash64(v1.buf, 32, 0x6777737461746531ULL);
        h = gws_hash64(zero, 8, h);
        h = gws_hash64(v1.buf + 40, v1.len - 40, h);
        for (i = 0; i < 8; i++)
                v1.buf[32 + i] = (char)(h >> (8 * i));
        ck_assert_int_eq(gws_state_decode(v1.buf, v1.len, "grp", "gw.raw", 5, 0,
                                          &out, &info, err, sizeof(err)),
                         GWS_STATE_OK);
        ck_assert_int_eq(info.offset, 900);
        ck_assert_int_eq(info.delivered, -1);
        ck_assert_mem_eq(out.buf, raw, sizeof(raw));
        /* a version 1 record is checked like any other */
        v1.buf[v1.len / 2] ^= 4;
        ck_assert_int_eq(gws_state_decode(v1.buf, v1.len, "grp", "gw.raw", 5, 0,
                                          &out, &info, err, sizeof(err)),
                         GWS_STATE_CHECKSUM);
        v1.buf[4] = 3; /* a version this build does not know */
        ck_assert_int_eq(gws_state_decode(v1.buf, v1.len, "grp", "gw.raw", 5, 0,
                                          &out, &info, err, sizeof(err)),
                         GWS_STATE_VERSION_MISMATCH);
        ck_assert_ptr_nonnull(strstr(err, "version 3"));
        gws_buf_free(&rec);
        gws_buf_free(&v1);
        gws_buf_free(&out);
}
END_TEST

/* Detector snapshots of format 1 (before the run back, the partial rate
 * window and silent_from: no past_run in the header, 8 bytes less per
 * alert) still load, and go on as the format 2 snapshot of the same
 * state would; a format this build does not know is named. The state is
 * taken in warm-up, with no alert records: this test removes the
 * header's past_run only (an alert would make the load fail, not pass). */
START_TEST(detector_format_1_loads) {
        gws_detect_t *a = gws_detect_new(cfg, 3), *b, *e0;
        json_t *al = json_array();
        gws_buf_t raw = {0}, h = {0}, v1 = {0}, again = {0}, scratch = {0},
                  v4 = {0};
        char err[256];
        size_t at, end;
        int i;

        for (i = 0; i < 400; i++)
                feed(a, i, al);
        ck_assert_int_eq((int)json_array_size(al), 0);
        ck_assert_int_eq(gws_detect_save(a, &raw), 0);
        e0 = gws_detect_new(cfg, 3);
        ck_assert_int_eq(gws_detect_save(e0, &h), 0);
        /* in format 4, entities start here: u32 past_run, u32 count
         * before (the empty state ends with u32 0 models seen); they end
         * before the models seen */
        to_format_4(&raw, h.len - 8, &v4);
        at = h.len - 4;
        end = snapshot_as_format_2((const unsigned char *)v4.buf, v4.len,
                                   at, &scratch);
        gws_buf_append(&v1, v4.buf, at - 8);
        gws_buf_append(&v1, v4.buf + at - 4, end - (at - 4));
        v1.buf[4] = 1;
        b = gws_detect_new(cfg, 3);
        ck_assert_msg(gws_detect_load(b, v1.buf, v1.len, err, sizeof(err)) >
                          0,
                      "load: %s", err);
        ck_assert_int_eq(gws_detect_save(b, &again), 0);
        ck_assert_uint_eq(again.len, raw.len);
        ck_assert(!memcmp(again.buf, raw.buf, raw.len));
        gws_detect_destroy(b);

        v1.buf[4] = 6;
        b = gws_detect_new(cfg, 3);
        ck_assert_int_eq(gws_detect_load(b, v1.buf, v1.len, err, sizeof(err)),
                         -1);
        ck_assert_msg(strstr(err, "format 6"), "%s", err);
        gws_detect_destroy(b);
        json_decref(al);
        gws_buf_free(&raw);
        gws_buf_free(&h);
        gws_buf_free(&v1);
        gws_buf_free(&again);
        gws_buf_free(&scratch);
        gws_buf_free(&v4);
        gws_detect_destroy(a);
        gws_detect_destroy(e0);
}
END_TEST

/* Format 4 snapshot \p s (\p len bytes, entities from byte \p hdr on;
 * to_format_4() of what gws_detect_save() writes) as format 2 would have
 * it: without the holds of the numeric windows, the alerts' last_n and
 * the models seen after the entities. @returns where the entities end
 * (the models seen begin). */
static size_t snapshot_walk(const unsigned char *s, size_t len, size_t hdr,
                            gws_buf_t *out, unsigned char *slot_prio,
                            int *nslots);

static size_t snapshot_as_format_2(const unsigned char *s, size_t len,
                                   size_t hdr, gws_buf_t *out) {
        return snapshot_walk(s, len, hdr, out, NULL, NULL);
}

/* The same walk; with \p slot_prio (\p s itself, writable), every
 * heavy-hitter slot's prio is first set, in place, to what builds before
 * format 4's token weights wrote: hist + cur (requests only); their
 * count in \p nslots. */
static size_t snapshot_walk(const unsigned char *s, size_t len, size_t hdr,
                            gws_buf_t *out, unsigned char *slot_prio,
                            int *nslots) {
        size_t p = hdr, from;
        uint32_t nents = LE32(s + hdr - 4), i;
        gws_buf_append(out, (const char *)s, hdr);
        out->buf[4] = 2;
        for (i = 0; i < nents; i++) {
                unsigned klen = s[p + 1] | (unsigned)s[p + 2] << 8, parts,
                         amask;
                int k;
                uint32_t used, j;
                from = p;
                /* type, klen, key, first_ts, window, baselines, gx */
                p += 3 + klen + 8 + 96 + 5 * 20 + 44;
                parts = s[p];
                amask = s[p + 1];
                p += 2;
                if (parts & 1)
                        p += 3 * 96; /* numeric windows */
                gws_buf_append(out, (const char *)s + from, p - from);
                if (parts & 1)
                        p += 3 * 16; /* their holds: format 3 */
                from = p;
                for (k = 0; k < 2; k++) {
                        if (!(parts & (2u << k)))
                                continue;
                        used = LE32(s + p + 20);
                        p += 24;
                        for (j = 0; j < used; j++) {
                                float hist, cur;
                                if (slot_prio) {
                                        /* little-endian host */
                                        memcpy(&cur, s + p + 12, 4);
                                        memcpy(&hist, s + p + 28, 4);
                                        hist += cur;
                                        memcpy(slot_prio + p + 8, &hist, 4);
                                        ++*nslots;
                                }
                                p += 8 + 7 * 4 + 1 + s[p + 8 + 7 * 4];
                        }
                }
                for (k = 0; k < 8; k++) {
                        unsigned nids;
                        if (!(amask & (1u << k)))
                                continue;
                        p += 1 + 24 + 4 * 8 + 4 * 8 + 2 * 4;
                        nids = s[p];
                        p += 2;
                        for (j = 0; j < nids; j++)
                                p += 1 + s[p];
                        p += 8; /* silent_from */
                        gws_buf_append(out, (const char *)s + from, p - from);
                        p += 4; /* last_n: format 3 */
                        from = p;
                }
                gws_buf_append(out, (const char *)s + from, p - from);
        }
        /* u32 n, n u64: the models seen (format 4) */
        ck_assert_uint_eq(p + 4 + 8 * (size_t)LE32(s + p), len);
        return p;
}

/* A format 2 snapshot taken mid-incident (open alerts, numeric windows,
 * heavy-hitter summaries) loads: no hold is under way after it, and
 * pending anomalies have no last_n; saving it again and taking the new
 * fields out gives the same bytes, and the open alerts go on and
 * resolve. A format 3 snapshot of the same state loads too. (Checked once against the format 2 writer itself: a snapshot
 * of the previous build loaded, saved and taken back this way was the
 * same bytes.) */
START_TEST(detector_format_2_loads) {
        gws_detect_t *a = gws_detect_new(cfg, 3), *b, *e0;
        json_t *al = json_array(), *bl = json_array();
        gws_buf_t raw = {0}, h = {0}, v2 = {0}, again = {0}, again2 = {0},
                  raw4 = {0}, again4 = {0};
        gws_detect_stats_t sa, sb;
        char err[256];
        size_t end;
        int i;

        for (i = 0; i < 7500; i++)
                feed(a, i, al);
        ck_assert_int_eq(gws_detect_save(a, &raw), 0);
        e0 = gws_detect_new(cfg, 3);
        ck_assert_int_eq(gws_detect_save(e0, &h), 0);
        to_format_4(&raw, h.len - 8, &raw4);
        snapshot_as_format_2((const unsigned char *)raw4.buf, raw4.len,
                             h.len - 4, &v2);
        ck_assert_uint_lt(v2.len, raw.len); /* it had holds, last_n and
                                             * the models seen */
        b = gws_detect_new(cfg, 3);
        ck_assert_msg(gws_detect_load(b, v2.buf, v2.len, err, sizeof(err)) >
                          0,
                      "load: %s", err);
        gws_detect_stats(a, &sa);
        gws_detect_stats(b, &sb);
        ck_assert_uint_eq(sb.entities, sa.entities);
        ck_assert_int_eq(gws_detect_save(b, &again), 0);
        to_format_4(&again, h.len - 8, &again4);
        snapshot_as_format_2((const unsigned char *)again4.buf, again4.len,
                             h.len - 4, &again2);
        ck_assert_uint_eq(again2.len, v2.len);
        ck_assert(!memcmp(again2.buf, v2.buf, v2.len));
        for (i = 7500; i < 14000; i++)
                feed(b, i, bl);
        gws_detect_stats(b, &sb);
        ck_assert_uint_gt(sb.alerts_resolved, 0);
        gws_detect_destroy(b);

        /* format 3: no models seen after the entities; they are then
         * those of its GPM entities, which are all of them when none
         * was evicted, so saving it again gives the same bytes */
        end = snapshot_as_format_2((const unsigned char *)raw4.buf,
                                   raw4.len, h.len - 4, &again2);
        ck_assert_uint_gt(LE32((const unsigned char *)raw4.buf + end), 0);
        gws_buf_reset(&v2);
        gws_buf_append(&v2, raw4.buf, end);
        v2.buf[4] = 3;
        b = gws_detect_new(cfg, 3);
        ck_assert_msg(gws_detect_load(b, v2.buf, v2.len, err, sizeof(err)) >
                          0,
                      "load: %s", err);
        gws_buf_reset(&again);
        ck_assert_int_eq(gws_detect_save(b, &again), 0);
        ck_assert_uint_eq(again.len, raw.len);
        ck_assert(!memcmp(again.buf, raw.buf, raw.len));
        json_decref(al);
        json_decref(bl);
        gws_buf_free(&raw);
        gws_buf_free(&h);
        gws_buf_free(&v2);
        gws_buf_free(&again);
        gws_buf_free(&again2);
        gws_buf_free(&raw4);
        gws_buf_free(&again4);
        gws_detect_destroy(a);
        gws_detect_destroy(b);
        gws_detect_destroy(e0);
}
END_TEST

/* A heavy-hitter slot's prio (its eviction order) is not read from a
 * snapshot but recomputed from its counts: those of builds before the
 * token weights (requests only, hist + cur) load as if saved by this
 * one, in format 4 and in format 2. */
START_TEST(detector_hh_prio_recomputed_on_load) {
        gws_detect_t *a = gws_detect_new(cfg, 3), *b, *e0;
        json_t *al = json_array();
        gws_buf_t raw = {0}, h = {0}, old = {0}, again = {0}, v2 = {0},
                  w2 = {0}, raw4 = {0}, again4 = {0};
        char err[256];
        int i, v, nslots = 0;

        for (i = 0; i < 7500; i++)
                feed(a, i, al);
        ck_assert_int_eq(gws_detect_save(a, &raw), 0);
        e0 = gws_detect_new(cfg, 3);
        ck_assert_int_eq(gws_detect_save(e0, &h), 0);
        to_format_4(&raw, h.len - 8, &raw4);
        gws_buf_append(&old, raw4.buf, raw4.len);
        snapshot_walk((const unsigned char *)old.buf, old.len, h.len - 4,
                      &v2, (unsigned char *)old.buf, &nslots);
        ck_assert_int_gt(nslots, 100);
        ck_assert(memcmp(old.buf, raw4.buf, raw4.len)); /* other prio */
        for (v = 4; v >= 2; v -= 2) {
                gws_buf_reset(&v2);
                if (v == 4)
                        gws_buf_append(&v2, old.buf, old.len);
                else
                        snapshot_as_format_2((const unsigned char *)old.buf,
                                             old.len, h.len - 4, &v2);
                b = gws_detect_new(cfg, 3);
                ck_assert_msg(gws_detect_load(b, v2.buf, v2.len, err,
                                              sizeof(err)) > 0,
                              "load format %d: %s", v, err);
                gws_buf_reset(&again);
                ck_assert_int_eq(gws_detect_save(b, &again), 0);
                gws_detect_destroy(b);
                if (v == 2) { /* format 2 has less: compare as such */
                        gws_buf_reset(&v2);
                        snapshot_as_format_2((const unsigned char *)raw4.buf,
                                             raw4.len, h.len - 4, &v2);
                        to_format_4(&again, h.len - 8, &again4);
                        gws_buf_reset(&w2);
                        snapshot_as_format_2(
                            (const unsigned char *)again4.buf, again4.len,
                            h.len - 4, &w2);
                        ck_assert_msg(w2.len == v2.len &&
                                          !memcmp(w2.buf, v2.buf, v2.len),
                                      "format 2: prio kept as loaded");
                        continue;
                }
                ck_assert_uint_eq(again.len, raw.len);
                ck_assert_msg(!memcmp(again.buf, raw.buf, raw.len),
                              "format 4: prio kept as loaded");
        }
        json_decref(al);
        gws_buf_free(&raw);
        gws_buf_free(&h);
        gws_buf_free(&old);
        gws_buf_free(&again);
        gws_buf_free(&raw4);
        gws_buf_free(&again4);
        gws_buf_free(&v2);
        gws_buf_free(&w2);
        gws_detect_destroy(a);
        gws_detect_destroy(e0);
}
END_TEST

/* One event of \p model on gateway \p gw from \p user at \p ts; 1 if
 * it was scored as a never-seen model. */
static int feed_model_on(gws_detect_t *d, int64_t ts, const char *gw,
                         const char *model, const char *user,
                         json_t *alerts) {
        gws_event_t ev;
        gws_score_t sc;
        memset(&ev, 0, sizeof(ev));
        ev.id = (gws_str_t){user, strlen(user)};
        ev.gateway_id = (gws_str_t){gw, strlen(gw)};
        ev.provider = (gws_str_t){"openai", 6};
        ev.model = (gws_str_t){model, strlen(model)};
        ev.user_id = (gws_str_t){user, strlen(user)};
        ev.ts_ms = ts;
        ev.status = 200;
        ev.success = 1;
        ev.latency_ms = 300;
        ck_assert_int_ge(gws_detect_event(d, &ev, &sc, sink_cb, alerts), 0);
        return (sc.reasons & GWS_R_NEW_VALUE) != 0;
}

/* The same on gateway "gw". */
static int feed_model(gws_detect_t *d, int64_t ts, const char *model,
                      const char *user, json_t *alerts) {
        return feed_model_on(d, ts, "gw", model, user, alerts);
}

/* The models a partition has seen move with its snapshot: "m-old",
 * known from the start and then evicted (a 16-entity cap, a stream of
 * distinct users), is not new after a restore either, while one never
 * seen is. */
START_TEST(novelty_memory_survives_restore) {
        gws_detect_t *a, *b;
        json_t *al = json_array();
        gws_buf_t raw = {0}, h = {0}, scratch = {0}, v4 = {0};
        char err[256], user[24];
        int64_t ts = T0;
        size_t hend;
        int i, v;
        ck_assert_int_eq(gws_config_set(cfg, "detectors.max_entities", "16",
                                        err, sizeof(err)), 0);
        a = gws_detect_new(cfg, 0);
        feed_model(a, ts, "m-old", "u-old", al);
        for (i = 0; i < 4000; i++, ts += 250) {
                snprintf(user, sizeof(user), "u-%d", i);
                feed_model(a, ts, "m-main", user, al);
        }
        ck_assert_int_eq(gws_detect_save(a, &raw), 0);
        b = gws_detect_new(cfg, 0);
        ck_assert_msg(gws_detect_load(b, raw.buf, raw.len, err,
                                      sizeof(err)) > 0,
                      "load: %s", err);
        ck_assert_msg(!feed_model(b, ts, "m-old", "u-old", al),
                      "m-old was new after the restore");
        ck_assert(feed_model(b, ts + 250, "m-brand-new", "u-old", al));
        gws_detect_destroy(b);
        b = gws_detect_new(cfg, 0); /* unused: its header's length */
        ck_assert_int_eq(gws_detect_save(b, &h), 0);
        gws_detect_destroy(b);
        hend = h.len - 8;
        ck_assert_uint_gt(LE32((const unsigned char *)raw.buf + hend), 0);
        to_format_4(&raw, hend, &v4);
        /* in format 5 (after the header) and in format 4 (after the
         * entities, still read) alike: the models seen restore, and are
         * checked like the rest: cut short, a fingerprint 0, a count
         * beyond the bound */
        for (v = 5; v >= 4; v--) {
                gws_buf_t *x = v == 5 ? &raw : &v4;
                size_t at = hend;
                if (v == 4) {
                        gws_buf_reset(&scratch);
                        at = snapshot_as_format_2(
                            (const unsigned char *)v4.buf, v4.len,
                            h.len - 4, &scratch);
                }
                b = gws_detect_new(cfg, 0);
                ck_assert_msg(gws_detect_load(b, x->buf, x->len, err,
                                              sizeof(err)) > 0,
                              "load format %d: %s", v, err);
                ck_assert_msg(!feed_model(b, ts, "m-old", "u-old", al),
                              "format %d: m-old was new", v);
                gws_detect_destroy(b);
                b = gws_detect_new(cfg, 0);
                ck_assert_int_eq(gws_detect_load(b, x->buf, x->len - 1, err,
                                                 sizeof(err)),
                                 -1);
                gws_detect_destroy(b);
                memset(x->buf + at + 4, 0, 8); /* the first */
                b = gws_detect_new(cfg, 0);
                ck_assert_int_eq(gws_detect_load(b, x->buf, x->len, err,
                                                 sizeof(err)),
                                 -1);
                ck_assert_msg(strstr(err, "fingerprint 0"), "%s", err);
                gws_detect_destroy(b);
                memcpy(x->buf + at, "\x01\x00\x01\x00", 4); /* 65537 */
                b = gws_detect_new(cfg, 0);
                ck_assert_int_eq(gws_detect_load(b, x->buf, x->len, err,
                                                 sizeof(err)),
                                 -1);
                ck_assert_msg(strstr(err, "too many models"), "%s", err);
                if (v == 5)
                        gws_detect_destroy(b);
        }
        json_decref(al);
        gws_buf_free(&raw);
        gws_buf_free(&h);
        gws_buf_free(&scratch);
        gws_buf_free(&v4);
        gws_detect_destroy(a);
        gws_detect_destroy(b);
}
END_TEST

/* Restored over the byte budget (detectors.max_state_mb, shared with the
 * process's other partitions: here a smaller one), a snapshot's entities
 * are loaded until those that carry open alerts (they cannot be evicted)
 * fill the budget; the rest start cold. The models seen were written
 * after the entities and were lost with them: "m-old", known from the
 * start and evicted, was new after the restore. 3,000 new models on
 * "gw-b" (each an open new_value alert) fill the budget. With every
 * model new on its gateway (novelty_warmup_s 0), the gateways' warm-up
 * plays no part. */
START_TEST(novelty_memory_survives_restore_over_budget) {
        gws_detect_t *a, *b;
        gws_detect_stats_t sa;
        json_t *al = json_array();
        gws_buf_t raw = {0}, h = {0}, v4 = {0};
        char err[256], name[24];
        int64_t ts = T0, back;
        int i, n;
        ck_assert_int_eq(gws_config_set(cfg, "detectors.max_state_mb", "2",
                                        err, sizeof(err)), 0);
        ck_assert_int_eq(gws_config_set(cfg, "detectors.novelty_warmup_s",
                                        "0", err, sizeof(err)), 0);
        a = gws_detect_new(cfg, 0);
        feed_model(a, ts, "m-old", "u-old", al);
        for (i = 0; i < 12000; i++, ts += 100) {
                snprintf(name, sizeof(name), "u-%d", i);
                feed_model(a, ts, "m-main", name, al);
        }
        for (i = 0; i < 3000; i++, ts += 10) {
                snprintf(name, sizeof(name), "m-%d", i);
                feed_model_on(a, ts, "gw-b", name, "u-b", al);
        }
        gws_detect_stats(a, &sa);
        ck_assert_uint_gt(sa.evictions, 0);
        ck_assert_uint_gt(sa.entities, 3000);
        ck_assert_int_eq(gws_detect_save(a, &raw), 0);
        gws_detect_destroy(a);
        ck_assert_int_eq(gws_config_set(cfg, "detectors.max_state_mb", "1",
                                        err, sizeof(err)), 0);
        b = gws_detect_new(cfg, 0);
        n = gws_detect_load(b, raw.buf, raw.len, err, sizeof(err));
        ck_assert_msg(n > 0, "load: %s", err);
        fprintf(stderr, "over budget: %d of %llu entities restored\n", n,
                (unsigned long long)sa.entities);
        ck_assert_int_lt(n, (int)sa.entities);
        /* the new_value alerts resolve (resolve_s): room again */
        for (back = ts, i = 0; i < 300; i++, ts += 1000)
                feed_model(b, ts, "m-main", "u-main", al);
        ck_assert_msg(!feed_model(b, ts, "m-old", "u-old", al),
                      "m-old was new after a restore of %d of %llu "
                      "entities", n, (unsigned long long)sa.entities);
        ck_assert(feed_model(b, ts + 10, "m-brand-new", "u-old", al));
        gws_detect_destroy(b);
        /* the same snapshot in format 4 loads the same entities, and
         * loses the models seen that came after them (why format 5
         * puts them first) */
        b = gws_detect_new(cfg, 0); /* unused: its header's length */
        ck_assert_int_eq(gws_detect_save(b, &h), 0);
        to_format_4(&raw, h.len - 8, &v4);
        ck_assert_int_eq(gws_detect_load(b, v4.buf, v4.len, err,
                                         sizeof(err)),
                         n);
        for (ts = back, i = 0; i < 300; i++, ts += 1000)
                feed_model(b, ts, "m-main", "u-main", al);
        ck_assert(feed_model(b, ts, "m-old", "u-old", al));
        json_decref(al);
        gws_buf_free(&raw);
        gws_buf_free(&h);
        gws_buf_free(&v4);
        gws_detect_destroy(b);
}
END_TEST

/* One gateway on its partition; event \p i: 2000 at 5/s from T0, then
 * 25 a century ahead (a clock that jumped), then from \p back on at 5/s
 * again (the clock set right), 10x slower from i = 3000 to 3600. */
static void feed_clock(gws_detect_t *d, int i, int64_t back,
                       json_t *alerts) {
        char id[32];
        gws_event_t ev;
        gws_score_t sc;
        double lat = exp(6 + 0.3 * gauss());
        memset(&ev, 0, sizeof(ev));
        snprintf(id, sizeof(id), "ev-%d", i);
        ev.id = (gws_str_t){id, strlen(id)};
        ev.gateway_id = (gws_str_t){"gw", 2};
        ev.provider = (gws_str_t){"openai", 6};
        ev.model = (gws_str_t){"m", 1};
        if (i < 2000)
                ev.ts_ms = T0 + (int64_t)i * 200;
        else if (i < 2025)
                ev.ts_ms = T0 + 3155760000000LL + (int64_t)i * 200;
        else
                ev.ts_ms = back + (int64_t)(i - 2025) * 200;
        ev.status = 200;
        ev.success = 1;
        ev.latency_ms = i >= 3000 && i < 3600 ? 10 * lat : lat;
        ck_assert_int_ge(gws_detect_event(d, &ev, &sc, sink_cb, alerts), 0);
}

/* Feeds event \p i to \p a and, with the same random draws, to \p b. */
static void feed_clock2(gws_detect_t *a, gws_detect_t *b, int i,
                        int64_t back, json_t *aa, json_t *ba) {
        uint64_t r0 = rng;
        feed_clock(a, i, back, aa);
        rng = r0;
        feed_clock(b, i, back, ba);
}

/* Restores \p a's snapshot into a new detector; saving that gives the
 * same bytes. */
static gws_detect_t *clone_by_snapshot(gws_detect_t *a) {
        gws_detect_t *b = gws_detect_new(cfg, 0);
        gws_buf_t raw = {0}, again = {0};
        char err[256];
        ck_assert_int_eq(gws_detect_save(a, &raw), 0);
        ck_assert_msg(gws_detect_load(b, raw.buf, raw.len, err,
                                      sizeof(err)) > 0,
                      "load: %s", err);
        ck_assert_int_eq(gws_detect_save(b, &again), 0);
        ck_assert_uint_eq(again.len, raw.len);
        ck_assert(!memcmp(again.buf, raw.buf, raw.len));
        gws_buf_free(&raw);
        gws_buf_free(&again);
        return b;
}

/* A snapshot taken while a run back is under way (10 of 20), and one
 * taken in the partial rate window after it (5 s of a window counted,
 * a rate_drop if it were judged), restore to the same state: the run
 * goes on where it was, the way back happens on the same event, the
 * partial window is not judged, and the alerts are the same. */
START_TEST(restore_during_way_back) {
        gws_detect_t *a = gws_detect_new(cfg, 0), *b, *c;
        json_t *aa = json_array(), *ba = json_array(), *pre = json_array();
        gws_detect_stats_t sa, sb;
        /* the 20th event back is 55 s into a window */
        int64_t back = T0 + 10 * 60000 + 55000 - 19 * 200;
        int i;

        for (i = 0; i < 2035; i++)
                feed_clock(a, i, back, pre);
        b = clone_by_snapshot(a);
        for (i = 2035; i < 2055; i++)
                feed_clock2(a, b, i, back, aa, ba);
        gws_detect_stats(b, &sb);
        ck_assert_uint_eq(sb.late, 9); /* 10 before the snapshot */
        c = clone_by_snapshot(b);
        gws_detect_destroy(b);
        for (i = 2055; i < 5000; i++)
                feed_clock2(a, c, i, back, aa, ba);
        gws_detect_stats(a, &sa);
        ck_assert_uint_eq(sa.late, 19);
        ck_assert_int_eq((int)json_array_size(aa), (int)json_array_size(ba));
        ck_assert(json_equal(aa, ba));
        /* the century's rate_drop resolved at the way back; the latency
         * step opened and resolved; no rate_drop of the partial window */
        {
                size_t k;
                json_t *v;
                int drops = 0, lat = 0;
                json_array_foreach(aa, k, v) {
                        const char *j = json_string_value(v);
                        drops += strstr(j, "\"kind\":\"rate_drop\"") &&
                                 strstr(j, "\"state\":\"open\"");
                        lat += strstr(j, "\"kind\":\"latency\"") &&
                               strstr(j, "\"state\":\"open\"");
                }
                ck_assert_int_eq(drops, 0);
                ck_assert_int_eq(lat, 1);
        }
        json_decref(aa);
        json_decref(ba);
        json_decref(pre);
        gws_detect_destroy(a);
        gws_detect_destroy(c);
}
END_TEST

/* Event at \p ts of gateway \p gw (constant latency: no random draws). */
static void feed_gw(gws_detect_t *d, int64_t ts, const char *gw,
                    json_t *alerts) {
        char id[32];
        gws_event_t ev;
        gws_score_t sc;
        memset(&ev, 0, sizeof(ev));
        snprintf(id, sizeof(id), "%s-%lld", gw, (long long)ts);
        ev.id = (gws_str_t){id, strlen(id)};
        ev.gateway_id = (gws_str_t){gw, strlen(gw)};
        ev.provider = (gws_str_t){"openai", 6};
        ev.model = (gws_str_t){"m", 1};
        ev.ts_ms = ts;
        ev.status = 200;
        ev.success = 1;
        ev.latency_ms = 300;
        ck_assert_int_ge(gws_detect_event(d, &ev, &sc, sink_cb, alerts), 0);
}

/* Alerts of \p arr (rendered) in \p state whose text has \p text. */
static int alerts_with(json_t *arr, const char *state, const char *text) {
        char want[64];
        size_t k;
        json_t *v;
        int n = 0;
        snprintf(want, sizeof(want), "\"state\":\"%s\"", state);
        json_array_foreach(arr, k, v) n +=
            strstr(json_string_value(v), want) &&
            strstr(json_string_value(v), text);
        return n;
}

/* \p a and its clone \p b emitted the same alerts after the clone (aa,
 * ba); frees them all. */
static void assert_alike_and_free(gws_detect_t *a, gws_detect_t *b,
                                  json_t *aa, json_t *ba, json_t *pre) {
        ck_assert(json_equal(aa, ba));
        json_decref(aa);
        json_decref(ba);
        json_decref(pre);
        gws_detect_destroy(a);
        gws_detect_destroy(b);
}

/* A snapshot taken 40 minutes into a gateway's silence (its rate_drop
 * open, gone_after_s 1 h) restores the silence's start: the alert is
 * resolved as gone on the same event as without the restore. */
START_TEST(restore_during_silence) {
        gws_detect_t *a, *b;
        json_t *aa = json_array(), *ba = json_array(), *pre = json_array();
        char err[256];
        int64_t ts;

        ck_assert_int_eq(gws_config_set(cfg, "detectors.gone_after_s", "3600",
                                        err, sizeof(err)),
                         0);
        a = gws_detect_new(cfg, 0);
        for (ts = T0; ts < T0 + 20 * 60000; ts += 500) {
                feed_gw(a, ts, "gw", pre);
                if (ts % 1000 == 0)
                        feed_gw(a, ts, "other", pre);
        }
        for (; ts < T0 + 60 * 60000; ts += 1000)
                feed_gw(a, ts, "other", pre);
        b = clone_by_snapshot(a);
        for (; ts < T0 + 120 * 60000; ts += 1000) {
                feed_gw(a, ts, "other", aa);
                feed_gw(b, ts, "other", ba);
        }
        ck_assert_int_eq(alerts_with(aa, "resolved", "taken as gone"), 1);
        assert_alike_and_free(a, b, aa, ba, pre);
}
END_TEST

/* A snapshot taken 40 minutes into a gateway's new, lower level (its
 * rate_drop open, rate_settle_s 1 h) keeps when the drop began (the
 * alert's first anomaly): the alert settles on the same event as
 * without the restore, and the new baseline judges alike after it. */
START_TEST(restore_during_new_level) {
        gws_detect_t *a, *b;
        json_t *aa = json_array(), *ba = json_array(), *pre = json_array();
        char err[256];
        int64_t ts;

        ck_assert_int_eq(gws_config_set(cfg, "detectors.rate_settle_s",
                                        "3600", err, sizeof(err)),
                         0);
        a = gws_detect_new(cfg, 0);
        for (ts = T0; ts < T0 + 20 * 60000; ts += 100)
                feed_gw(a, ts, "gw", pre);
        for (; ts < T0 + 60 * 60000; ts += 1000) /* a tenth */
                feed_gw(a, ts, "gw", pre);
        b = clone_by_snapshot(a);
        for (; ts < T0 + 120 * 60000; ts += 1000) {
                feed_gw(a, ts, "gw", aa);
                feed_gw(b, ts, "gw", ba);
        }
        for (; ts < T0 + 130 * 60000; ts += 10000) { /* a tenth again */
                feed_gw(a, ts, "gw", aa);
                feed_gw(b, ts, "gw", ba);
        }
        ck_assert_int_eq(alerts_with(aa, "resolved",
                                     "settled at the new level"),
                         1);
        /* the drop from the new level */
        ck_assert_int_eq(alerts_with(aa, "open", "rate_drop"), 1);
        assert_alike_and_free(a, b, aa, ba, pre);
}
END_TEST

/* Re-sums a version 2 record after a test changed it (bytes 0..31, 8
 * zero bytes, bytes 40.. on): a record forged by whoever can write to the
 * state topic (the sum is no signature). */
static void resum(gws_buf_t *b) {
        static const unsigned char zero[8];
        uint64_t h = gws_hash64(b->buf, 32, 0x6777737461746531ULL);
        int i;
        h = gws_hash64(zero, 8, h);
        h = gws_hash64(b->buf + 40, b->len - 40, h);
        for (i = 0; i < 8; i++)
                b->buf[32 + i] = (char)(h >> (8 * i));
}

static void put64(gws_buf_t *b, size_t at, uint64_t v) {
        int i;
        for (i = 0; i < 8; i++)
                b->buf[at + i] = (char)(v >> (8 * i));
}

/* Offsets and sizes a writer can get wrong (or forge with a valid sum)
 * are refused before they are used: a delivered offset above the state's
 * offset made the new owner skip every event it was given (skip_below
 * INT64_MAX) and commit them unprocessed; a negative offset became a
 * logical one (end, beginning) for the catch-up; a declared size of 4 GiB
 * was reserved before zstd found the frame shorter. */
START_TEST(forged_offsets_and_sizes_are_refused) {
        gws_buf_t rec = {0}, out = {0};
        gws_state_info_t info;
        const char raw[] = "not a detector, just bytes to carry";
        char err[256];

#define ENC()                                                                  \
        ck_assert_int_eq(gws_state_encode(&rec, "grp", "gw.raw", 5, 100, 50,  \
                                          7, raw, sizeof(raw), 3, err,        \
                                          sizeof(err)),                       \
                         0)
#define DEC()                                                                  \
        gws_state_decode(rec.buf, rec.len, "grp", "gw.raw", 5, 0, &out,       \
                         &info, err, sizeof(err))
        ENC();
        ck_assert_int_eq(DEC(), GWS_STATE_OK);
        /* delivered above the offset */
        put64(&rec, 40, (uint64_t)INT64_MAX);
        resum(&rec);
        ck_assert_int_eq(DEC(), GWS_STATE_CORRUPT);
        ck_assert_ptr_nonnull(strstr(err, "delivered"));
        ENC();
        put64(&rec, 40, (uint64_t)101);
        resum(&rec);
        ck_assert_int_eq(DEC(), GWS_STATE_CORRUPT);
        /* below -1 (unknown) */
        ENC();
        put64(&rec, 40, (uint64_t)-2);
        resum(&rec);
        ck_assert_int_eq(DEC(), GWS_STATE_CORRUPT);
        /* -1 and equal to the offset are fine */
        ENC();
        put64(&rec, 40, (uint64_t)-1);
        resum(&rec);
        ck_assert_int_eq(DEC(), GWS_STATE_OK);
        put64(&rec, 40, 100);
        resum(&rec);
        ck_assert_int_eq(DEC(), GWS_STATE_OK);
        /* negative offsets: logical offsets to librdkafka */
        ENC();
        put64(&rec, 8, (uint64_t)-2);
        put64(&rec, 40, (uint64_t)-1);
        resum(&rec);
        ck_assert_int_eq(DEC(), GWS_STATE_CORRUPT);
        ck_assert_ptr_nonnull(strstr(err, "offset -2"));
        /* a declared size the frame does not have: refused before any
         * room is reserved for it */
        gws_buf_free(&out);
        ENC();
        rec.buf[24] = (char)0xf0;
        rec.buf[25] = rec.buf[26] = rec.buf[27] = (char)0xff;
        resum(&rec);
        ck_assert_int_eq(DEC(), GWS_STATE_CORRUPT);
        ck_assert_uint_lt(out.size, 1 << 20);
        /* a size above what this process can hold (max_raw) */
        ENC();
        ck_assert_int_eq(gws_state_decode(rec.buf, rec.len, "grp", "gw.raw",
                                          5, sizeof(raw) - 1, &out, &info,
                                          err, sizeof(err)),
                         GWS_STATE_CORRUPT);
        ck_assert_ptr_nonnull(strstr(err, "more than the 35"));
        ck_assert_int_eq(gws_state_decode(rec.buf, rec.len, "grp", "gw.raw",
                                          5, sizeof(raw), &out, &info, err,
                                          sizeof(err)),
                         GWS_STATE_OK);
#undef ENC
#undef DEC
        gws_buf_free(&rec);
        gws_buf_free(&out);
}
END_TEST

static double secs(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Figures for the README: 100k user entities (a cardinality that needs
 * the state topic most), bytes per entity raw and zstd, save and restore
 * time. Printed, not asserted on (a shared machine). */
START_TEST(figures_100k_entities) {
        gws_detect_t *a = gws_detect_new(cfg, 0), *b = gws_detect_new(cfg, 0);
        gws_buf_t raw = {0}, rec = {0}, back = {0};
        gws_state_info_t info;
        gws_detect_stats_t st;
        char err[256], user[24], id[24];
        double t0, t_save, t_enc, t_dec, t_load;
        int i, n;

        ck_assert_int_eq(gws_config_set(cfg, "detectors.max_entities",
                                        "1000000", err, sizeof(err)),
                         0);
        gws_detect_destroy(a);
        gws_detect_destroy(b);
        a = gws_detect_new(cfg, 0);
        b = gws_detect_new(cfg, 0);
        for (i = 0; i < 200000; i++) {
                gws_event_t ev;
                gws_score_t sc;
                memset(&ev, 0, sizeof(ev));
                snprintf(user, sizeof(user), "user-%06d", i % 97000);
                snprintf(id, sizeof(id), "ev-%d", i);
                ev.id = (gws_str_t){id, strlen(id)};
                ev.gateway_id = (gws_str_t){"gw-1", 4};
                ev.provider = (gws_str_t){"openai", 6};
                ev.model = (gws_str_t){"gpt-4o", 6};
                ev.user_id = (gws_str_t){user, strlen(user)};
                ev.ts_ms = T0 + i * 10;
                ev.status = 200;
                ev.success = 1;
                ev.latency_ms = exp(6 + 0.4 * gauss());
                ev.tokens_in = (int64_t)exp(6 + 0.5 * gauss());
                ev.has_tokens_in = 1;
                gws_detect_event(a, &ev, &sc, NULL, NULL);
        }
        gws_detect_stats(a, &st);
        ck_assert_uint_ge(st.entities, 97000);
        t0 = secs();
        ck_assert_int_eq(gws_detect_save(a, &raw), 0);
        t_save = secs() - t0;
        t0 = secs();
        ck_assert_int_eq(gws_state_encode(&rec, "g", "t", 0, 1, 1,
                                          (uint32_t)st.entities, raw.buf,
                                          raw.len, 3, err, sizeof(err)),
                         0);
        t_enc = secs() - t0;
        t0 = secs();
        ck_assert_int_eq(gws_state_decode(rec.buf, rec.len, "g", "t", 0, 0,
                                          &back, &info, err, sizeof(err)),
                         GWS_STATE_OK);
        t_dec = secs() - t0;
        t0 = secs();
        n = gws_detect_load(b, back.buf, back.len, err, sizeof(err));
        t_load = secs() - t0;
        ck_assert_int_eq(n, (int)st.entities);
        ck_assert_uint_lt(rec.len, raw.len / 2);
        printf("state figures: %llu entities (%.0f B/entity in memory): "
               "raw %.1f MB (%.0f B/entity), zstd-3 %.1f MB (%.0f "
               "B/entity, %.1fx); save %.0f ms + zstd %.0f ms; unzstd %.0f "
               "ms + restore %.0f ms (per 100k entities: %.0f ms)\n",
               (unsigned long long)st.entities,
               (double)st.bytes / (double)st.entities, raw.len / 1e6,
               (double)raw.len / (double)st.entities, rec.len / 1e6,
               (double)rec.len / (double)st.entities,
               (double)raw.len / (double)rec.len, t_save * 1e3, t_enc * 1e3,
               t_dec * 1e3, t_load * 1e3,
               (t_dec + t_load) * 1e3 * 100000.0 / (double)st.entities);
        gws_buf_free(&raw);
        gws_buf_free(&rec);
        gws_buf_free(&back);
        gws_detect_destroy(a);
        gws_detect_destroy(b);
}
END_TEST

Suite *gws_state_suite(void) {
        Suite *s = suite_create("state");
        TCase *tc = tcase_create("snapshots");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, restore_continues_identically);
        tcase_add_test(tc, bad_records_are_named);
        tcase_add_test(tc, bad_snapshot_fields_are_refused);
        tcase_add_test(tc, non_utf8_snapshot_strings_are_refused);
        tcase_add_test(tc, delivered_offset_and_version_1);
        tcase_add_test(tc, detector_format_1_loads);
        tcase_add_test(tc, detector_format_2_loads);
        tcase_add_test(tc, detector_hh_prio_recomputed_on_load);
        tcase_add_test(tc, novelty_memory_survives_restore);
        tcase_add_test(tc, novelty_memory_survives_restore_over_budget);
        tcase_add_test(tc, restore_during_way_back);
        tcase_add_test(tc, restore_during_silence);
        tcase_add_test(tc, restore_during_new_level);
        tcase_add_test(tc, forged_offsets_and_sizes_are_refused);
        tcase_add_test(tc, figures_100k_entities);
        suite_add_tcase(s, tc);
        return s;
}
