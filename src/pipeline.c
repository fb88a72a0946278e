/* pipeline.c - parse -> score -> filter -> serialise for one message. */
#include "gwsieve/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gwsieve/util.h"

struct gws_pipeline_s {
        const gws_config_t *cfg;
        gws_filter_t *filter;       /* compiled rules */
        gws_ev_limits_t lim;
        gws_buf_t out;              /* DLQ / retained serialisation */
        gws_pipeline_stats_t st;    /* written by the owner only */
        /* alert forwarding */
        gws_emit_cb *cb;
        void *opaque;
        int alert_failed;
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
        if (!(pl->filter = gws_filter_new(cfg, errstr, errstr_size))) {
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
        gws_filter_destroy(pl->filter);
        free(pl);
}

void gws_pipeline_stats_add(const gws_pipeline_t *pl,
                            gws_pipeline_stats_t *st) {
        int i;
#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
        st->in += LD(pl->st.in);
        for (i = 0; i < GWS_KEEP__CNT; i++)
                st->kept[i] += LD(pl->st.kept[i]);
        for (i = 0; i < GWS_EV_ERR__CNT; i++)
                st->dlq[i] += LD(pl->st.dlq[i]);
        st->alerts += LD(pl->st.alerts);
        st->failed += LD(pl->st.failed);
#undef LD
}

/* The DLQ envelope: reason, detail, source coordinates and the payload
 * (as a string when it is UTF-8, else base64), so nothing is lost and a
 * person can read why. */
static int emit_dlq(gws_pipeline_t *pl, const gws_input_t *in,
                    gws_ev_err_t err, const gws_ev_errinfo_t *info,
                    gws_emit_cb *cb, void *opaque) {
        gws_buf_t *b = &pl->out;
        char detail[512], tbuf[40];
        int r = 0;

        if (err == GWS_EV_ERR_NOT_JSON || err == GWS_EV_ERR_NOT_UTF8 ||
            err == GWS_EV_ERR_TOO_DEEP || err == GWS_EV_ERR_TOO_MANY_FIELDS ||
            err == GWS_EV_ERR_STRING_TOO_LONG)
                snprintf(detail, sizeof(detail), "%s: %s at byte %d",
                         info->what, info->text, info->column - 1);
        else if (err == GWS_EV_ERR_TOO_LARGE)
                snprintf(detail, sizeof(detail), "%s (%zu > %lld bytes)",
                         info->what, in->len,
                         (long long)pl->cfg->max_event_bytes);
        else if (info->field)
                snprintf(detail, sizeof(detail), "field \"%s\" %s",
                         info->field, info->what);
        else
                snprintf(detail, sizeof(detail), "%s",
                         info->what ? info->what : gws_ev_err2str(err));

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
        r |= gws_buf_printf(b, "},\"size\":%zu,\"failed_at\":\"%s\",", in->len,
                            gws_time_format(gws_now_ms(), tbuf, sizeof(tbuf)));
        /* NUL is legal JSON (\u0000) but many consumers reject it
         * (PostgreSQL jsonb, jansson by default): such payloads, like
         * non-UTF-8 ones, travel as base64. */
        if (gws_utf8_valid(in->value, in->len) &&
            !memchr(in->value, '\0', in->len)) {
                r |= gws_buf_puts(b, "\"payload\":");
                r |= gws_buf_json_str(b, in->value, in->len);
        } else {
                r |= gws_buf_puts(b, "\"payload_base64\":\"");
                r |= gws_buf_base64(b, in->value, in->len);
                r |= gws_buf_puts(b, "\"");
        }
        r |= gws_buf_puts(b, "}");
        if (r)
                return -1;
        return cb(opaque, GWS_SINK_DLQ, in->key, in->key ? in->keylen : 0,
                  b->buf, b->len);
}

/* Forwards detector alerts into the sink. */
static int alert_cb(void *opaque, const char *alert_id, const char *json,
                    size_t len) {
        gws_pipeline_t *pl = opaque;
        INC(pl->st.alerts);
        if (pl->cb(pl->opaque, GWS_SINK_ALERTS, alert_id, strlen(alert_id),
                   json, len) == -1) {
                pl->alert_failed = 1;
                return -1;
        }
        return 0;
}

/* Writes the retained record: the input's members as they were (raw
 * bytes, no re-encoding), minus any "sieve" member of the input, plus ours.
 */
static int emit_retained(gws_pipeline_t *pl, const gws_event_t *ev,
                         const gws_score_t *sc, gws_keep_t keep,
                         const char *rule, gws_emit_cb *cb, void *opaque) {
        const gws_jdoc_t *doc = ev->doc;
        const gws_jtok_t *root = &doc->toks[0];
        gws_buf_t *b = &pl->out;
        uint32_t k;
        int i, r = 0, first = 1, nr = 0;

        gws_buf_reset(b);
        if (gws_buf_reserve(b, root->len + 128) == -1)
                return -1;
        b->buf[b->len++] = '{';
        for (k = 1; k < root->next; k = doc->toks[k + 1].next) {
                const gws_jtok_t *kt = &doc->toks[k];
                const gws_jtok_t *vt = &doc->toks[k + 1];
                if (kt->len == 7 && !memcmp(doc->buf + kt->start, "\"sieve\"", 7))
                        continue;
                if (!first)
                        r |= gws_buf_append(b, ",", 1);
                first = 0;
                r |= gws_buf_append(b, doc->buf + kt->start, kt->len);
                r |= gws_buf_append(b, ":", 1);
                r |= gws_buf_append(b, doc->buf + vt->start, vt->len);
        }
        r |= gws_buf_printf(b, "%s\"sieve\":{\"score\":%.4g,\"reasons\":[",
                            first ? "" : ",",
                            (double)(int)(sc->score * 10000 + 0.5) / 10000.0);
        for (i = 0; i < GWS_R__CNT; i++)
                if (sc->reasons & (1u << i))
                        r |= gws_buf_printf(b, "%s\"%s\"", nr++ ? "," : "",
                                            gws_reason_name(i));
        r |= gws_buf_puts(b, "],\"kept\":");
        if (keep == GWS_KEEP_RULE) {
                char kept[160];
                snprintf(kept, sizeof(kept), "rule:%s", rule);
                r |= gws_buf_json_str(b, kept, strlen(kept));
        } else {
                r |= gws_buf_printf(b, "\"%s\"", gws_keep2str(keep));
        }
        r |= gws_buf_puts(b, "}}");
        if (r)
                return -1;
        return cb(opaque, GWS_SINK_RETAINED, ev->gateway_id.s,
                  ev->gateway_id.len, b->buf, b->len);
}

gws_outcome_t gws_pipeline_process(gws_pipeline_t *pl, gws_detect_t *det,
                                   const gws_input_t *in, gws_emit_cb *cb,
                                   void *opaque) {
        gws_event_t ev;
        gws_ev_errinfo_t info;
        gws_ev_err_t err;
        gws_score_t sc;
        gws_keep_t keep;
        gws_outcome_t outcome;
        const char *rule = NULL;

        INC(pl->st.in);
        err = gws_event_parse(&ev, in->value, in->len, &pl->lim, &info);
        if (err != GWS_EV_OK) {
                INC(pl->st.dlq[err]);
                if (emit_dlq(pl, in, err, &info, cb, opaque) == -1) {
                        INC(pl->st.failed);
                        return GWS_OUT_FAILED;
                }
                return GWS_OUT_DLQ;
        }

        pl->cb = cb;
        pl->opaque = opaque;
        pl->alert_failed = 0;
        if (gws_detect_event(det, &ev, &sc, alert_cb, pl) < 0 ||
            pl->alert_failed) {
                INC(pl->st.failed);
                gws_event_clear(&ev);
                return GWS_OUT_FAILED;
        }

        keep = gws_filter_eval(pl->filter, &ev, &sc, &rule);
        INC(pl->st.kept[keep]);
        if (keep == GWS_KEEP_NONE) {
                outcome = GWS_OUT_DROPPED;
        } else if (emit_retained(pl, &ev, &sc, keep, rule, cb, opaque) ==
                   -1) {
                INC(pl->st.failed);
                outcome = GWS_OUT_FAILED;
        } else {
                outcome = GWS_OUT_KEPT;
        }
        gws_event_clear(&ev);
        return outcome;
}
