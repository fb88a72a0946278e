/* fuzz_common.h - what the libFuzzer targets and the state seed writer
 * share: the record check of the pipeline targets, the detector settings
 * of the state target (a snapshot only loads under the settings it was
 * taken with) and a synthetic event.
 */
#ifndef GWS_FUZZ_COMMON_H
#define GWS_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gwsieve/detect.h"
#include "gwsieve/event.h"
#include "gwsieve/pipeline.h"

/* Small windows and summaries keep snapshots (the state target's inputs)
 * to a few KB; a short warm-up opens alerts, so that snapshots carry
 * them. */
#define FUZZ_STATE_CONFIG                                                      \
        "{\"detectors\":{\"warmup_events\":5,\"min_anomalies\":2,"            \
        "\"hh_slots\":4,\"hh_min_events\":3,\"max_entities\":256,"           \
        "\"numeric_keys\":\"provider+model,user_id\"}}"

/* Event \p i of a small synthetic stream from 2026-01-01 on: two
 * gateways, three models, a few users and IPs, every 7th an error, every
 * 50th slow; \p idbuf (16 bytes) holds its id. */
static inline void fuzz_event(gws_event_t *ev, int i, int64_t ts,
                              char idbuf[16]) {
        static const char *gws[] = {"gw-a", "gw-b"};
        static const char *models[] = {"m1", "m2", "m3"};
        static const char *users[] = {"u1", "u2", "u3", "u4"};
        static const char *ips[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3"};
        const char *g = gws[i % 2], *m = models[i % 3], *u = users[i % 4],
                   *ip = ips[i % 3];
        memset(ev, 0, sizeof(*ev));
        snprintf(idbuf, 16, "e%d", i);
        ev->id = (gws_str_t){idbuf, strlen(idbuf)};
        ev->gateway_id = (gws_str_t){g, strlen(g)};
        ev->provider = (gws_str_t){"openai", 6};
        ev->model = (gws_str_t){m, strlen(m)};
        ev->user_id = (gws_str_t){u, strlen(u)};
        ev->client_ip = (gws_str_t){ip, strlen(ip)};
        ev->ts_ms = ts;
        ev->status = i % 7 ? 200 : 503;
        ev->success = ev->status < 400;
        ev->latency_ms = i % 50 ? 300 + i % 13 : 30000;
        ev->tokens_in = 100 + i % 17;
        ev->tokens_out = 50 + i % 5;
        ev->cost_usd = 0.001 * (1 + i % 3);
        ev->has_tokens_in = ev->has_tokens_out = ev->has_cost = 1;
}

static inline int fuzz_check_record(void *opaque, gws_sink_t sink,
                                    const char *key, size_t keylen,
                                    const char *val, size_t len);

/* Alert sink of the state targets: every alert is one valid JSON object
 * (a loaded snapshot's strings end up in it), else abort(); counts into
 * *(int *)opaque if given. */
static inline int fuzz_count_alert(void *opaque, const char *id,
                                   const char *json, size_t len, int kind,
                                   int state) {
        (void)id;
        (void)kind;
        (void)state;
        fuzz_check_record(NULL, GWS_SINK_ALERTS, NULL, 0, json, len);
        if (opaque)
                ++*(int *)opaque;
        return 0;
}

/* The pipeline targets' sink: every record is one valid JSON object
 * (checked with jansson, an independent parser), else abort(). */
static inline int fuzz_check_record(void *opaque, gws_sink_t sink,
                                    const char *key, size_t keylen,
                                    const char *val, size_t len) {
        json_error_t jerr;
        /* Any valid JSON: \u0000 inside strings and integers beyond
         * int64 are legal (RFC 8259), jansson just needs to be told. */
        json_t *j = json_loadb(val, len,
                               JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL,
                               &jerr);
        (void)opaque;
        (void)key;
        (void)keylen;
        if (!j || !json_is_object(j)) {
                fprintf(stderr, "invalid %s record (%s): %.*s\n",
                        gws_sink2str(sink), j ? "not an object" : jerr.text,
                        (int)(len > 2000 ? 2000 : len), val);
                abort();
        }
        json_decref(j);
        return 0;
}

#endif /* GWS_FUZZ_COMMON_H */
