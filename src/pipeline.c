/* pipeline.c - parse -> score -> filter -> serialise for one message. */
#include "gwsieve/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gwsieve/preset.h"
#include "gwsieve/record.h"
#include "gwsieve/util.h"

struct gws_pipeline_s {
        const gws_config_t *cfg;
        gws_filter_t *filter;       /* compiled rules */
        gws_record_t *rw;           /* trim + redact writer */
        gws_buf_t tmp;              /* redacted DLQ payload / alert */
        gws_preset_t preset;        /* input.format */
        gws_pipeline_msg_t own;     /* gws_pipeline_process()'s and
                                     * gws_pipeline_learn()'s message */
        gws_ev_limits_t lim;
        gws_buf_t out;              /* DLQ / retained serialisation */
        gws_pipeline_stats_t st;    /* written by the owner only */
        /* alert forwarding */
        gws_emit_cb *cb;
        void *opaque;
        gws_detect_t *det;
        int alert_failed;
        uint64_t alert_ip;          /* "[REDACTED:ip]" in alerts' entities
                                     * (counted as GWS_RK_IP) */
        uint64_t sampled_out;       /* normal events not sampled: st.kept
                                     * [GWS_KEEP_NONE] is not written, the
                                     * stats give it as this plus
                                     * st.dropped_by_rule (see
                                     * gws_pipeline_stats_add()) */
};

#define INC(x) __atomic_add_fetch(&(x), 1, __ATOMIC_RELAXED)

const char *gws_sink2str(gws_sink_t s) {
        static const char *names[GWS_SINK__CNT] = {"retained", "alerts",
                                                   "dlq"};
        return (unsigned)s < GWS_SINK__CNT ? names[s] : "unknown";
}

gws_pipeline_t *gws_pipeline_new(const gws_config_t *cfg, char *errstr,
                                 size_t errstr_size) {
        gws_pipeline_t *pl = calloc(1, sizeof(*pl));
        if (!pl) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        pl->cfg = cfg;
        if (gws_preset_from_name(cfg->input_format, &pl->preset) == -1) {
                snprintf(errstr, errstr_size,
                         "\"input.format\": unknown preset \"%s\"",
                         cfg->input_format);
                free(pl);
                return NULL;
        }
        if (!(pl->filter = gws_filter_new(cfg, errstr, errstr_size)) ||
            !(pl->rw = gws_record_new(cfg, errstr, errstr_size))) {
                gws_filter_destroy(pl->filter);
                free(pl);
                return NULL;
        }
        pl->lim.max_bytes = (size_t)cfg->max_event_bytes;
        pl->lim.max_depth = (uint32_t)cfg->max_depth;
        pl->lim.max_fields = (uint32_t)cfg->max_fields;
        pl->lim.max_string = (uint32_t)cfg->max_string_bytes;
        return pl;
}

void gws_pipeline_destroy(gws_pipeline_t *pl) {
        if (!pl)
                return;
        gws_buf_free(&pl->out);
        gws_buf_free(&pl->tmp);
        gws_pipeline_msg_free(&pl->own);
        gws_filter_destroy(pl->filter);
        gws_record_destroy(pl->rw);
        free(pl);
}

void gws_pipeline_stats_add(const gws_pipeline_t *pl,
                            gws_pipeline_stats_t *st) {
        int i;
        /* kept[GWS_KEEP_NONE] is the two counters of its parts, each read
         * once, so kept[GWS_KEEP_NONE] - dropped_by_rule is the
         * sampled-out counter as read: never below 0, never below what an
         * earlier snapshot gave (read as kept[] and dropped_by_rule one
         * after the other, a drop between the two reads counted as
         * sampled out until the next snapshot, which took it back: a
         * counter reset to Prometheus, 2^64 - 1 read the other way). */
        uint64_t by_rule = __atomic_load_n(&pl->st.dropped_by_rule,
                                           __ATOMIC_RELAXED);
#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
        st->dropped_by_rule += by_rule;
        st->in += LD(pl->st.in);
        st->kept[GWS_KEEP_NONE] += by_rule + LD(pl->sampled_out);
        for (i = GWS_KEEP_NONE + 1; i < GWS_KEEP__CNT; i++)
                st->kept[i] += LD(pl->st.kept[i]);
        for (i = 0; i < GWS_EV_ERR__CNT; i++)
                st->dlq[i] += LD(pl->st.dlq[i]);
        st->alerts += LD(pl->st.alerts);
        for (i = 0; i < GWS_ALERT_KIND__CNT; i++)
                for (int j = 0; j < GWS_ALERT_STATE__CNT; j++)
                        st->alerts_by[i][j] += LD(pl->st.alerts_by[i][j]);
        st->failed += LD(pl->st.failed);
        gws_record_stats_add(pl->rw, &st->rec);
        st->rec.redactions[GWS_RK_IP] += LD(pl->alert_ip);
#undef LD
}

/* How many bytes of the UTF-8 text \p s fit in \p budget bytes once
 * written as a JSON string (gws_buf_json_str(): '"' and '\\' take 2,
 * \n \t \r 2, other control bytes 6), cut at a character. */
static size_t text_fit(const char *s, size_t len, size_t budget) {
        size_t i, used = 0;
        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                size_t w = c == '"' || c == '\\' || c == '\n' || c == '\t' ||
                                   c == '\r'
                               ? 2
                           : c < 0x20 ? 6
                                      : 1;
                if (used + w > budget)
                        break;
                used += w;
        }
        return gws_utf8_cut(s, len, i);
}

/* The payload member of a dead letter (and "payload_truncated":true
 * before it when \p max bytes, as written, do not hold it): a string when
 * it is UTF-8 without NUL, else payload_base64. */
static int dlq_payload(gws_buf_t *b, const char *val, size_t vlen,
                       size_t max) {
        int r = 0;
        if (gws_utf8_valid(val, vlen) && !memchr(val, '\0', vlen)) {
                size_t n = text_fit(val, vlen, max);
                if (n < vlen)
                        r |= gws_buf_puts(b, "\"payload_truncated\":true,");
                r |= gws_buf_puts(b, "\"payload\":");
                r |= gws_buf_json_str(b, val, n);
        } else {
                size_t n = max / 4 * 3;
                if (n < vlen)
                        r |= gws_buf_puts(b, "\"payload_truncated\":true,");
                else
                        n = vlen;
                r |= gws_buf_puts(b, "\"payload_base64\":\"");
                r |= gws_buf_base64(b, val, n);
                r |= gws_buf_puts(b, "\"");
        }
        return r;
}

int gws_pipeline_rejected(gws_buf_t *out, const gws_rejected_t *rj,
                          size_t max_payload) {
        char tbuf[40];
        int r = 0;

        gws_buf_reset(out);
        r |= gws_buf_puts(out, "{\"reason\":\"output_rejected\",\"detail\":");
        r |= gws_buf_json_str(out, rj->why, strlen(rj->why));
        r |= gws_buf_puts(out, ",\"output\":{\"topic\":");
        r |= gws_buf_json_str(out, rj->topic, strlen(rj->topic));
        r |= gws_buf_puts(out, ",\"key\":");
        if (rj->key && gws_utf8_valid(rj->key, rj->keylen))
                r |= gws_buf_json_str(out, rj->key, rj->keylen);
        else
                r |= gws_buf_puts(out, "null");
        r |= gws_buf_puts(out, "},\"source\":{\"topic\":");
        r |= gws_buf_json_str(out, rj->src_topic ? rj->src_topic : "",
                              rj->src_topic ? strlen(rj->src_topic) : 0);
        r |= gws_buf_printf(out, ",\"partition\":%d,\"offset\":%lld},"
                                 "\"size\":%zu,\"failed_at\":\"%s\"",
                            (int)rj->partition, (long long)rj->offset,
                            rj->len,
                            gws_time_format(gws_now_ms(), tbuf, sizeof(tbuf)));
        /* The record was redacted when it was written. */
        if (!max_payload)
                r |= gws_buf_puts(out, ",\"payload_omitted\":true");
        else {
                r |= gws_buf_puts(out, ",");
                r |= dlq_payload(out, rj->payload, rj->len, max_payload);
        }
        r |= gws_buf_puts(out, "}");
        return r ? -1 : 0;
}

/* The DLQ envelope: reason, detail, source coordinates and the payload
 * (as a string when it is UTF-8, else base64), so nothing is lost and a
 * person can read why. */
static int emit_dlq(gws_pipeline_t *pl, const gws_input_t *in,
                    gws_ev_err_t err, const gws_ev_errinfo_t *info,
                    const char *conv_why, gws_emit_cb *cb, void *opaque) {
        gws_buf_t *b = &pl->out;
        /* the whole message's, when replay kept only part of it */
        size_t size = in->whole_len > in->len ? in->whole_len : in->len;
        char detail[512], tbuf[40];
        const char *val, *src;
        size_t vlen;
        int r = 0, rr;

        if (err == GWS_EV_ERR_NOT_JSON || err == GWS_EV_ERR_NOT_UTF8 ||
            err == GWS_EV_ERR_TOO_DEEP || err == GWS_EV_ERR_TOO_MANY_FIELDS ||
            err == GWS_EV_ERR_STRING_TOO_LONG)
                snprintf(detail, sizeof(detail), "%s: %s at byte %d",
                         info->what, info->text, info->column - 1);
        else if (err == GWS_EV_ERR_TOO_LARGE)
                snprintf(detail, sizeof(detail), "%s (%zu > %lld bytes)",
                         info->what, size,
                         (long long)pl->cfg->max_event_bytes);
        else if (info->field)
                snprintf(detail, sizeof(detail), "field \"%s\" %s",
                         info->field, info->what);
        else
                snprintf(detail, sizeof(detail), "%s",
                         info->what ? info->what : gws_ev_err2str(err));
        if (conv_why) {
                size_t n = strlen(detail);
                snprintf(detail + n, sizeof(detail) - n, " (%s: %s)",
                         gws_preset_name(pl->preset), conv_why);
        } else if ((src = gws_preset_source_field(pl->preset, info->field))) {
                /* the name the sender knows: prompt_tokens, not tokens_in */
                size_t n = strlen(detail);
                snprintf(detail + n, sizeof(detail) - n, " (%s: from %s)",
                         gws_preset_name(pl->preset), src);
        }

        gws_buf_reset(b);
        r |= gws_buf_puts(b, "{\"reason\":");
        r |= gws_buf_json_str(b, gws_ev_err2str(err),
                              strlen(gws_ev_err2str(err)));
        r |= gws_buf_puts(b, ",\"detail\":");
        r |= gws_buf_json_str(b, detail, strlen(detail));
        if (info->field) {
                r |= gws_buf_puts(b, ",\"field\":");
                r |= gws_buf_json_str(b, info->field, strlen(info->field));
        }
        r |= gws_buf_puts(b, ",\"source\":{\"topic\":");
        r |= gws_buf_json_str(b, in->topic ? in->topic : "",
                              in->topic ? strlen(in->topic) : 0);
        r |= gws_buf_printf(b, ",\"partition\":%d,\"offset\":%lld,\"key\":",
                            (int)in->partition, (long long)in->offset);
        if (in->key && gws_utf8_valid(in->key, in->keylen))
                r |= gws_buf_json_str(b, in->key, in->keylen);
        else
                r |= gws_buf_puts(b, "null");
        if (in->line) /* replay: partition and offset are simulated */
                r |= gws_buf_printf(b, ",\"line\":%llu",
                                    (unsigned long long)in->line);
        r |= gws_buf_printf(b, "},\"size\":%zu,\"failed_at\":\"%s\",", size,
                            gws_time_format(gws_now_ms(), tbuf, sizeof(tbuf)));
        /* The payload is redacted as text first (secrets in bytes that did
         * not even parse must not leak either). NUL is legal JSON
         * (\u0000) but many consumers reject it (PostgreSQL jsonb, jansson
         * by default): such payloads, like non-UTF-8 ones, travel as
         * base64. */
        val = in->value;
        vlen = in->len;
        /* A payload that is JSON (a missing field, a wrong type, ...) is
         * redacted as JSON, its strings decoded: as text, escapes hid
         * secrets ("\nsk-..." is not at a word start, "sk-\u0070roj-"
         * not a key) and a redaction could swallow an escape's letter.
         * Any other as text, escapes decoded. Under redact.ip_truncate
         * its addresses are truncated too. Nothing changed: the original
         * bytes, whitespace and all. */
        if ((rr = gws_record_redact_dlq(pl->rw, in->value, in->len,
                                        &pl->tmp)) < 0)
                return -1;
        if (rr > 0) {
                val = pl->tmp.buf;
                vlen = pl->tmp.len;
        }
        r |= dlq_payload(b, val, vlen, (size_t)pl->cfg->dlq_payload_bytes);
        r |= gws_buf_puts(b, "}");
        if (r || cb(opaque, GWS_SINK_DLQ, in->key, in->key ? in->keylen : 0,
                    b->buf, b->len) == -1)
                return -1;
        /* Counted once the sink has it (gwsieve_dlq_total,
         * gwsieve_redactions_total), as alerts are (alert_cb()): a dead
         * letter that could not be written or was refused is in no
         * output, and its event is read again after the restart. */
        INC(pl->st.dlq[err]);
        gws_record_sent(pl->rw);
        return 0;
}

/* Forwards detector alerts into the sink. */
static int alert_cb(void *opaque, const char *alert_id, const char *json,
                    size_t len, int kind, int state) {
        gws_pipeline_t *pl = opaque;
        int nip;
        /* Entities carry user ids and IPs: redact like any output. When
         * that fails (out of memory: the detector writes JSON), the event
         * fails as for a sink that refuses the alert, and as it does when
         * its retained record or dead letter cannot be redacted: nothing
         * unredacted leaves, the service stops without committing the
         * offset and the event, read again after the restart, emits the
         * alert again (at-least-once); replay stops with an error. Not a
         * reduced alert without the entity: that would be another record
         * under the same alert_id and state, its entity lost for good
         * once the offset is committed, and replay's output would depend
         * on memory. The alert was sent as written before. */
        if (gws_record_redact_json(pl->rw, json, len, &pl->tmp) < 0) {
                pl->alert_failed = 1;
                return -1;
        }
        if (pl->cb(pl->opaque, GWS_SINK_ALERTS, alert_id, strlen(alert_id),
                   pl->tmp.buf, pl->tmp.len) == -1) {
                pl->alert_failed = 1;
                return -1;
        }
        /* Counted once the sink has it (gwsieve_alerts_total, the replay
         * summary: alert records sent), not before: an alert that could
         * not be redacted or was refused is in no output. One the sink
         * took counts even if its event fails later (another alert, the
         * retained record): it has left, and is sent (and counted) again
         * when the event is read again after the restart. */
        INC(pl->st.alerts);
        if (kind >= 0 && kind < GWS_ALERT_KIND__CNT && state >= 0 &&
            state < GWS_ALERT_STATE__CNT)
                INC(pl->st.alerts_by[kind][state]);
        gws_record_sent(pl->rw); /* its redactions */
        /* the entity's client_ip replaced (redact.ip_truncate), counted
         * like a retained record's, for an alert sent as well */
        if ((nip = gws_detect_alert_ip_redacted(pl->det)) > 0)
                __atomic_add_fetch(&pl->alert_ip, (uint64_t)nip,
                                   __ATOMIC_RELAXED);
        return 0;
}

/* The retained record: trimmed and redacted by the record writer. */
static int emit_retained(gws_pipeline_t *pl, const gws_event_t *ev,
                         const gws_score_t *sc, gws_keep_t keep,
                         const char *rule, gws_emit_cb *cb, void *opaque) {
        if (gws_record_retained(pl->rw, ev, sc, keep, rule, &pl->out) ==
                -1 ||
            cb(opaque, GWS_SINK_RETAINED, ev->gateway_id.s,
               ev->gateway_id.len, pl->out.buf, pl->out.len) == -1)
                return -1;
        /* Counted once the sink has it (gwsieve_events_retained_total,
         * gwsieve_redactions_total), as alerts are (alert_cb()): a
         * record that could not be written or was refused is in no
         * output, and its event is read again after the restart. */
        INC(pl->st.kept[keep]);
        gws_record_sent(pl->rw);
        return 0;
}

/* Input format (preset) then the native parser. */
static gws_ev_err_t parse_input(gws_pipeline_t *pl, const gws_input_t *in,
                                gws_pipeline_msg_t *m) {
        gws_ev_err_t err;
        m->conv_why = NULL;
        if (pl->preset != GWS_PRESET_NATIVE && in->len &&
            in->len <= pl->lim.max_bytes) {
                const char *why, *fld;
                gws_buf_reset(&m->conv);
                /* On failure the native parser below reads the original
                 * bytes and names the precise reason (UTF-8, JSON, ...). */
                if (gws_preset_transform(pl->preset, in->value, in->len,
                                         &m->conv, &why, &fld) == 0) {
                        /* The size limit is on the message as received
                         * (checked above): the conversion may be longer
                         * (jansson writes reals with 17 digits, 0.1 ->
                         * 0.10000000000000001), and a message within the
                         * limit is not too large. */
                        gws_ev_limits_t lim = pl->lim;
                        lim.max_bytes = 0;
                        /* A foreign value the preset had to leave out
                         * explains the native complaint: the DLQ detail
                         * carries both. */
                        m->conv_why = why;
                        return gws_event_parse(&m->ev, m->conv.buf,
                                               m->conv.len, &lim, &m->info);
                }
                err = gws_event_parse(&m->ev, in->value, in->len, &pl->lim,
                                      &m->info);
                /* The native parser read an object the preset could not
                 * (1e400 is valid JSON, beyond jansson's doubles): its
                 * verdict is on a foreign object taken for a native one
                 * ("gateway_id is required"), not on this event. */
                if (err == GWS_EV_OK || err == GWS_EV_ERR_MISSING_FIELD ||
                    err == GWS_EV_ERR_WRONG_TYPE ||
                    err == GWS_EV_ERR_BAD_VALUE) {
                        if (err == GWS_EV_OK)
                                gws_event_clear(&m->ev);
                        memset(&m->info, 0, sizeof(m->info));
                        if (why && !strcmp(why, "out of memory")) {
                                m->info.what = "out of memory";
                                return GWS_EV_ERR_NOMEM;
                        }
                        m->info.what = "the input preset cannot read the "
                                       "message";
                        m->conv_why = why;
                        return GWS_EV_ERR_BAD_VALUE;
                }
                return err;
        }
        return gws_event_parse(&m->ev, in->value, in->len, &pl->lim,
                               &m->info);
}

void gws_pipeline_parse(gws_pipeline_t *pl, gws_detect_t *det,
                        const gws_input_t *in, gws_pipeline_msg_t *m) {
        m->err = parse_input(pl, in, m);
        m->det = NULL;
        m->parsed = 1;
        if (m->err == GWS_EV_OK && det) {
                gws_detect_prepare(det, &m->ev, &m->keys);
                m->det = det;
        }
}

void gws_pipeline_prefetch(const gws_pipeline_msg_t *m) {
        if (m->parsed && m->det)
                gws_detect_prefetch(m->det, &m->keys);
}

void gws_pipeline_discard(gws_pipeline_msg_t *m) {
        if (!m->parsed)
                return;
        if (m->err == GWS_EV_OK)
                gws_event_clear(&m->ev);
        m->parsed = 0;
        m->det = NULL;
}

void gws_pipeline_msg_free(gws_pipeline_msg_t *m) {
        gws_pipeline_discard(m);
        gws_buf_free(&m->conv);
        gws_detect_keys_free(&m->keys);
}

int gws_pipeline_learn(gws_pipeline_t *pl, gws_detect_t *det,
                       const gws_input_t *in) {
        gws_pipeline_msg_t *m = &pl->own;
        gws_score_t sc;

        gws_pipeline_parse(pl, det, in, m);
        if (m->err != GWS_EV_OK) {
                gws_pipeline_discard(m);
                return 0;
        }
        /* No callback: alerts change state (open, update, resolve under
         * their stable ids) exactly as they did for the previous owner,
         * which emitted them. */
        gws_detect_prefetch(det, &m->keys);
        gws_detect_event_keyed(det, &m->ev, &m->keys, &sc, NULL, NULL);
        gws_pipeline_discard(m);
        return 1;
}

gws_outcome_t gws_pipeline_finish(gws_pipeline_t *pl, gws_detect_t *det,
                                  const gws_input_t *in,
                                  gws_pipeline_msg_t *m, gws_emit_cb *cb,
                                  void *opaque) {
        gws_score_t sc;
        gws_keep_t keep;
        gws_outcome_t outcome;
        const char *rule = NULL;

        INC(pl->st.in);
        if (m->err != GWS_EV_OK) {
                m->parsed = 0;
                if (emit_dlq(pl, in, m->err, &m->info, m->conv_why, cb,
                             opaque) == -1) {
                        INC(pl->st.failed);
                        return GWS_OUT_FAILED;
                }
                return GWS_OUT_DLQ;
        }
        if (m->det != det) /* parsed without (or with another) detector */
                gws_detect_prepare(det, &m->ev, &m->keys);

        pl->cb = cb;
        pl->opaque = opaque;
        pl->det = det;
        pl->alert_failed = 0;
        if (gws_detect_event_keyed(det, &m->ev, &m->keys, &sc, alert_cb,
                                   pl) < 0 ||
            pl->alert_failed) {
                INC(pl->st.failed);
                gws_pipeline_discard(m);
                return GWS_OUT_FAILED;
        }

        keep = gws_filter_eval(pl->filter, &m->ev, &sc, &rule);
        if (keep == GWS_KEEP_NONE) {
                /* kept[GWS_KEEP_NONE] is their sum (gws_pipeline_stats_add) */
                if (rule)
                        INC(pl->st.dropped_by_rule);
                else
                        INC(pl->sampled_out);
                outcome = GWS_OUT_DROPPED;
        } else if (emit_retained(pl, &m->ev, &sc, keep, rule, cb, opaque) ==
                   -1) {
                INC(pl->st.failed);
                outcome = GWS_OUT_FAILED;
        } else {
                outcome = GWS_OUT_KEPT;
        }
        gws_pipeline_discard(m);
        return outcome;
}

gws_outcome_t gws_pipeline_process(gws_pipeline_t *pl, gws_detect_t *det,
                                   const gws_input_t *in, gws_emit_cb *cb,
                                   void *opaque) {
        gws_pipeline_parse(pl, det, in, &pl->own);
        gws_pipeline_prefetch(&pl->own);
        return gws_pipeline_finish(pl, det, in, &pl->own, cb, opaque);
}
