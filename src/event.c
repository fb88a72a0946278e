/* event.c - validation of raw gateway events into the event view.
 *
 * One tokenizer pass (json.c), then one walk over the root object's
 * members that records where each known field is; validation then follows
 * the input contract field by field and stops at the first problem. No
 * DOM, no allocation per field: strings are slices of the input, or of the
 * per-document arena when they contained escapes.
 */
#include "gwsieve/event.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gwsieve/util.h"

/* ------------------------------------------------------------------------
 * recycled documents
 * ------------------------------------------------------------------------ */

struct gws_evdoc_s {
        gws_jdoc_t doc;
        gws_buf_t arena;          /* decoded strings; reserved up front */
        struct gws_evdoc_s *next; /* thread cache */
};

/* Per-thread free list, freed by the key destructor at thread exit. */
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void evdoc_free_list(void *p) {
        gws_evdoc_t *ed = p, *next;
        for (; ed; ed = next) {
                next = ed->next;
                gws_json_free(&ed->doc);
                gws_buf_free(&ed->arena);
                free(ed);
        }
}

static void cache_init(void) {
        pthread_key_create(&cache_key, evdoc_free_list);
}

static gws_evdoc_t *evdoc_get(void) {
        gws_evdoc_t *ed;
        pthread_once(&cache_once, cache_init);
        if ((ed = pthread_getspecific(cache_key))) {
                pthread_setspecific(cache_key, ed->next);
                ed->next = NULL;
                return ed;
        }
        return calloc(1, sizeof(*ed));
}

static void evdoc_put(gws_evdoc_t *ed) {
        /* Keep a few per thread; a huge event's buffers are not kept. */
        if (ed->arena.size > (1u << 20)) {
                gws_buf_free(&ed->arena);
        }
        pthread_once(&cache_once, cache_init);
        ed->next = pthread_getspecific(cache_key);
        pthread_setspecific(cache_key, ed);
}

/* ------------------------------------------------------------------------
 * reasons
 * ------------------------------------------------------------------------ */

static const char *err_names[GWS_EV_ERR__CNT] = {
    [GWS_EV_OK] = "ok",
    [GWS_EV_ERR_EMPTY] = "empty",
    [GWS_EV_ERR_TOO_LARGE] = "too_large",
    [GWS_EV_ERR_NOT_UTF8] = "invalid_utf8",
    [GWS_EV_ERR_NOT_JSON] = "invalid_json",
    [GWS_EV_ERR_NOT_OBJECT] = "not_object",
    [GWS_EV_ERR_MISSING_FIELD] = "missing_field",
    [GWS_EV_ERR_WRONG_TYPE] = "wrong_type",
    [GWS_EV_ERR_BAD_VALUE] = "invalid_value",
    [GWS_EV_ERR_NOMEM] = "out_of_memory",
    [GWS_EV_ERR_TOO_DEEP] = "too_deep",
    [GWS_EV_ERR_TOO_MANY_FIELDS] = "too_many_fields",
    [GWS_EV_ERR_STRING_TOO_LONG] = "string_too_long",
};

const char *gws_ev_err2str(gws_ev_err_t err) {
        if ((unsigned)err >= GWS_EV_ERR__CNT)
                return "unknown";
        return err_names[err];
}

#define FAIL(ERR, FIELD, WHAT)                                                 \
        do {                                                                   \
                info->field = (FIELD);                                         \
                info->what = (WHAT);                                           \
                return (ERR);                                                  \
        } while (0)

/* ------------------------------------------------------------------------
 * fields
 * ------------------------------------------------------------------------ */

enum {
        F_ID, F_TS, F_GATEWAY_ID, F_PROVIDER, F_MODEL, F_STATUS, F_LATENCY,
        F_ACCOUNT_ID, F_ENDPOINT, F_USER_ID, F_CLIENT_IP, F_TTFB, F_COST,
        F_TOKENS_IN, F_TOKENS_OUT, F_SUCCESS, F_CACHED,
        /* checked for their type only, not kept in the view */
        F_METHOD, F_USER_AGENT, F_TRACE_ID, F_STEP, F_METADATA, F_REQUEST,
        F_RESPONSE, F__CNT
};

static const struct {
        const char *name;
        size_t len;
} fields[F__CNT] = {
#define FLD(n) {n, sizeof(n) - 1}
    FLD("id"),         FLD("ts"),        FLD("gateway_id"), FLD("provider"),
    FLD("model"),      FLD("status"),    FLD("latency_ms"), FLD("account_id"),
    FLD("endpoint"),   FLD("user_id"),   FLD("client_ip"),  FLD("ttfb_ms"),
    FLD("cost_usd"),   FLD("tokens_in"), FLD("tokens_out"), FLD("success"),
    FLD("cached"),     FLD("method"),    FLD("user_agent"), FLD("trace_id"),
    FLD("step"),       FLD("metadata"),  FLD("request"),    FLD("response"),
#undef FLD
};

/* Maps a member name to its field, or -1.
 *
 * A switch on the length, then fixed-size compares (which the compiler
 * turns into one or two loads each): the earlier linear scan over all 17
 * names cost ~1,300 Ir per event on ~25 members (38M of the 84M the event
 * view spent on the 30k-event replay, plus 330,000 libc memcmp calls). */
static int field_of(const char *k, size_t n) {
#define IS(lit) (!memcmp(k, lit, sizeof(lit) - 1))
        switch (n) {
        case 2:
                return IS("id") ? F_ID : IS("ts") ? F_TS : -1;
        case 4:
                return IS("step") ? F_STEP : -1;
        case 5:
                return IS("model") ? F_MODEL : -1;
        case 6:
                return IS("status")   ? F_STATUS
                       : IS("cached") ? F_CACHED
                       : IS("method") ? F_METHOD
                                      : -1;
        case 7:
                return IS("ttfb_ms")   ? F_TTFB
                       : IS("user_id") ? F_USER_ID
                       : IS("success") ? F_SUCCESS
                       : IS("request") ? F_REQUEST
                                       : -1;
        case 8:
                return IS("provider")   ? F_PROVIDER
                       : IS("endpoint") ? F_ENDPOINT
                       : IS("cost_usd") ? F_COST
                       : IS("trace_id") ? F_TRACE_ID
                       : IS("metadata") ? F_METADATA
                       : IS("response") ? F_RESPONSE
                                        : -1;
        case 9:
                return IS("client_ip")   ? F_CLIENT_IP
                       : IS("tokens_in") ? F_TOKENS_IN
                                         : -1;
        case 10:
                return IS("gateway_id")   ? F_GATEWAY_ID
                       : IS("latency_ms") ? F_LATENCY
                       : IS("account_id") ? F_ACCOUNT_ID
                       : IS("tokens_out") ? F_TOKENS_OUT
                       : IS("user_agent") ? F_USER_AGENT
                                          : -1;
        default:
                return -1;
        }
#undef IS
}

typedef struct {
        const gws_jdoc_t *doc;
        gws_buf_t *arena;
        uint32_t at[F__CNT]; /* value token index, 0 = absent */
} scan_t;

static const gws_jtok_t *tok_at(const scan_t *sc, int f) {
        uint32_t i = sc->at[f];
        if (!i || sc->doc->toks[i].type == GWS_JT_NULL)
                return NULL;
        return &sc->doc->toks[i];
}

static void str_of(scan_t *sc, const gws_jtok_t *t, gws_str_t *out) {
        if (!(t->flags & GWS_JF_ESC)) {
                out->s = sc->doc->buf + t->start + 1;
                out->len = t->len - 2;
                return;
        }
        /* The arena was reserved for the whole input: no realloc here, so
         * earlier slices stay valid. */
        out->s = sc->arena->buf + sc->arena->len;
        out->len = gws_json_str_decode(sc->doc, t,
                                       sc->arena->buf + sc->arena->len);
        sc->arena->len += out->len;
}

/* 1 if an id-like string holds U+001F, which joins the fields of the
 * detectors' entity keys (the gateway "a\u001fb" with the provider "c"
 * was the entity of the gateway "a" with the provider "b\u001fc"), or
 * U+0000, where alerts cut ids and entities. Only an escape can spell
 * either: the tokenizer refuses raw control bytes. */
static int bad_id_char(const gws_jtok_t *t, const gws_str_t *s) {
        return (t->flags & GWS_JF_ESC) &&
               (memchr(s->s, 0x1f, s->len) || memchr(s->s, 0, s->len));
}

static gws_ev_err_t req_str(scan_t *sc, int f, gws_str_t *out,
                            gws_ev_errinfo_t *info) {
        const gws_jtok_t *t = tok_at(sc, f);
        if (!t)
                FAIL(GWS_EV_ERR_MISSING_FIELD, fields[f].name, "is required");
        if (t->type != GWS_JT_STR)
                FAIL(GWS_EV_ERR_WRONG_TYPE, fields[f].name,
                     "must be a string");
        str_of(sc, t, out);
        if (!out->len)
                FAIL(GWS_EV_ERR_BAD_VALUE, fields[f].name,
                     "must not be empty");
        if (bad_id_char(t, out))
                FAIL(GWS_EV_ERR_BAD_VALUE, fields[f].name,
                     "must not contain U+0000 or U+001F");
        return GWS_EV_OK;
}

static gws_ev_err_t opt_str(scan_t *sc, int f, gws_str_t *out,
                            gws_ev_errinfo_t *info) {
        const gws_jtok_t *t = tok_at(sc, f);
        out->s = NULL;
        out->len = 0;
        if (!t)
                return GWS_EV_OK;
        if (t->type != GWS_JT_STR)
                FAIL(GWS_EV_ERR_WRONG_TYPE, fields[f].name,
                     "must be a string");
        str_of(sc, t, out);
        if (bad_id_char(t, out))
                FAIL(GWS_EV_ERR_BAD_VALUE, fields[f].name,
                     "must not contain U+0000 or U+001F");
        return GWS_EV_OK;
}

static gws_ev_err_t opt_num(scan_t *sc, int f, double *out, int *has,
                            gws_ev_errinfo_t *info) {
        const gws_jtok_t *t = tok_at(sc, f);
        *has = 0;
        if (!t)
                return GWS_EV_OK;
        if (t->type != GWS_JT_NUM)
                FAIL(GWS_EV_ERR_WRONG_TYPE, fields[f].name,
                     "must be a number");
        if (gws_json_num(sc->doc, t, out) == -1 || !isfinite(*out))
                FAIL(GWS_EV_ERR_BAD_VALUE, fields[f].name,
                     "is out of range"); /* 1e400: valid JSON */
        if (*out < 0)
                FAIL(GWS_EV_ERR_BAD_VALUE, fields[f].name, "must be >= 0");
        *has = 1;
        return GWS_EV_OK;
}

/* An integer of the contract (status, step, tokens): JSON has one number
 * type, so 100.0 and 1e2 are the integer 100 (JSON Schema's "integer"),
 * as the input presets read them (preset.c, count_of()) and as a gateway
 * that goes through a double writes them. @returns 0, -1 not an integer
 * (a fraction, or not a number), -2 beyond int64. */
static int ev_int(const gws_jdoc_t *doc, const gws_jtok_t *t, int64_t *out) {
        const char *p = doc->buf + t->start, *end = p + t->len;
        double d;
        if (t->type != GWS_JT_NUM)
                return -1;
        if (gws_json_int(doc, t, out) == 0)
                return 0; /* the usual case: digits only */
        if (gws_json_num(doc, t, &d) == -1)
                return -2; /* beyond a double: 1e400 */
        if (d != floor(d))
                return -1;
        if (d == 0) /* 0.0, or a fraction that underflowed: 1e-400 */
                for (; p < end && (*p | 0x20) != 'e'; p++)
                        if (*p >= '1' && *p <= '9')
                                return -1;
        if (!(fabs(d) < 9223372036854775808.0))
                return -2;
        *out = (int64_t)d;
        return 0;
}

/* ev_int()'s refusals, for field \p name. */
#define FAIL_INT(r, name)                                                      \
        FAIL((r) == -2 ? GWS_EV_ERR_BAD_VALUE : GWS_EV_ERR_WRONG_TYPE, name,  \
             (r) == -2 ? "is out of range" : "must be an integer")

static gws_ev_err_t opt_count(scan_t *sc, int f, int64_t *out, int *has,
                              gws_ev_errinfo_t *info) {
        const gws_jtok_t *t = tok_at(sc, f);
        int r;
        *has = 0;
        if (!t)
                return GWS_EV_OK;
        if ((r = ev_int(sc->doc, t, out)))
                FAIL_INT(r, fields[f].name);
        if (*out < 0)
                FAIL(GWS_EV_ERR_BAD_VALUE, fields[f].name, "must be >= 0");
        *has = 1;
        return GWS_EV_OK;
}

static gws_ev_err_t opt_bool(scan_t *sc, int f, int *out, int *has,
                             gws_ev_errinfo_t *info) {
        const gws_jtok_t *t = tok_at(sc, f);
        *has = 0;
        if (!t)
                return GWS_EV_OK;
        if (t->type != GWS_JT_TRUE && t->type != GWS_JT_FALSE)
                FAIL(GWS_EV_ERR_WRONG_TYPE, fields[f].name,
                     "must be true or false");
        *out = t->type == GWS_JT_TRUE;
        *has = 1;
        return GWS_EV_OK;
}

/* A field the view does not keep: only its type is checked (\p t1 or
 * \p t2), as the contract says. */
static gws_ev_err_t opt_type(scan_t *sc, int f, int t1, int t2,
                             const char *what, gws_ev_errinfo_t *info) {
        const gws_jtok_t *t = tok_at(sc, f);
        if (t && t->type != t1 && t->type != t2)
                FAIL(GWS_EV_ERR_WRONG_TYPE, fields[f].name, what);
        return GWS_EV_OK;
}

static gws_ev_err_t validate(gws_event_t *ev, scan_t *sc,
                             gws_ev_errinfo_t *info) {
        const gws_jtok_t *t;
        gws_ev_err_t err;
        gws_str_t ts;
        double d;
        int has, b, r;
        int64_t i64;

        if ((err = req_str(sc, F_ID, &ev->id, info)) ||
            (err = req_str(sc, F_GATEWAY_ID, &ev->gateway_id, info)) ||
            (err = req_str(sc, F_PROVIDER, &ev->provider, info)) ||
            (err = req_str(sc, F_MODEL, &ev->model, info)))
                return err;

        if (!(t = tok_at(sc, F_TS)))
                FAIL(GWS_EV_ERR_MISSING_FIELD, "ts", "is required");
        if (t->type == GWS_JT_STR) {
                str_of(sc, t, &ts);
                if (gws_time_parse(ts.s, ts.len, &ev->ts_ms) == -1)
                        FAIL(GWS_EV_ERR_BAD_VALUE, "ts",
                             "is not an RFC 3339 timestamp");
                /* what epoch milliseconds accept, below */
                if (ev->ts_ms < 0 || ev->ts_ms > (int64_t)1e14)
                        FAIL(GWS_EV_ERR_BAD_VALUE, "ts",
                             "is before 1970 or after 5138");
        } else if (t->type == GWS_JT_NUM) {
                if (gws_json_num(sc->doc, t, &d) == -1 || !isfinite(d) ||
                    d < 0 || d > 1e14)
                        FAIL(GWS_EV_ERR_BAD_VALUE, "ts",
                             "is not epoch milliseconds");
                ev->ts_ms = (int64_t)d;
        } else {
                FAIL(GWS_EV_ERR_WRONG_TYPE, "ts",
                     "must be an RFC 3339 string or epoch milliseconds");
        }

        if (!(t = tok_at(sc, F_STATUS)))
                FAIL(GWS_EV_ERR_MISSING_FIELD, "status", "is required");
        if ((r = ev_int(sc->doc, t, &i64)))
                FAIL_INT(r, "status");
        if (i64 < 100 || i64 > 599)
                FAIL(GWS_EV_ERR_BAD_VALUE, "status",
                     "must be an HTTP status 100..599");
        ev->status = (int)i64;

        if (!tok_at(sc, F_LATENCY))
                FAIL(GWS_EV_ERR_MISSING_FIELD, "latency_ms", "is required");
        if ((err = opt_num(sc, F_LATENCY, &ev->latency_ms, &has, info)))
                return err;

        if ((err = opt_str(sc, F_ACCOUNT_ID, &ev->account_id, info)) ||
            (err = opt_str(sc, F_ENDPOINT, &ev->endpoint, info)) ||
            (err = opt_str(sc, F_USER_ID, &ev->user_id, info)) ||
            (err = opt_str(sc, F_CLIENT_IP, &ev->client_ip, info)))
                return err;

        if ((err = opt_num(sc, F_TTFB, &ev->ttfb_ms, &has, info)))
                return err;
        ev->has_ttfb = (unsigned)has;
        if ((err = opt_num(sc, F_COST, &ev->cost_usd, &has, info)))
                return err;
        ev->has_cost = (unsigned)has;
        if ((err = opt_count(sc, F_TOKENS_IN, &ev->tokens_in, &has, info)))
                return err;
        ev->has_tokens_in = (unsigned)has;
        if ((err = opt_count(sc, F_TOKENS_OUT, &ev->tokens_out, &has, info)))
                return err;
        ev->has_tokens_out = (unsigned)has;

        if ((err = opt_bool(sc, F_SUCCESS, &b, &has, info)))
                return err;
        ev->success = has ? (unsigned)b : ev->status < 400;
        if ((err = opt_bool(sc, F_CACHED, &b, &has, info)))
                return err;
        ev->cached = has ? (unsigned)b : 0;

        if ((err = opt_type(sc, F_METHOD, GWS_JT_STR, GWS_JT_STR,
                            "must be a string", info)) ||
            (err = opt_type(sc, F_USER_AGENT, GWS_JT_STR, GWS_JT_STR,
                            "must be a string", info)) ||
            (err = opt_type(sc, F_TRACE_ID, GWS_JT_STR, GWS_JT_STR,
                            "must be a string", info)) ||
            (err = opt_type(sc, F_METADATA, GWS_JT_OBJ, GWS_JT_OBJ,
                            "must be an object", info)) ||
            (err = opt_type(sc, F_REQUEST, GWS_JT_OBJ, GWS_JT_STR,
                            "must be an object or a string", info)) ||
            (err = opt_type(sc, F_RESPONSE, GWS_JT_OBJ, GWS_JT_STR,
                            "must be an object or a string", info)))
                return err;
        if ((t = tok_at(sc, F_STEP)) && (r = ev_int(sc->doc, t, &i64)))
                FAIL_INT(r, "step");
        return GWS_EV_OK;
}

/* ------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------ */

gws_ev_err_t gws_event_parse(gws_event_t *ev, const char *buf, size_t len,
                             const gws_ev_limits_t *lim,
                             gws_ev_errinfo_t *info) {
        gws_json_limits_t jl = {0, 0, 0};
        gws_evdoc_t *ed;
        gws_jerr_t jerr;
        gws_ev_err_t err;
        scan_t sc;
        uint32_t k;
        const gws_jtok_t *root;

        memset(ev, 0, sizeof(*ev));
        memset(info, 0, sizeof(*info));
        if (!len)
                FAIL(GWS_EV_ERR_EMPTY, NULL, "the message is empty");
        if (lim && lim->max_bytes && len > lim->max_bytes)
                FAIL(GWS_EV_ERR_TOO_LARGE, NULL,
                     "the message exceeds limits.max_event_bytes");
        if (lim) {
                jl.max_depth = lim->max_depth;
                jl.max_tokens = lim->max_fields;
                jl.max_string = lim->max_string;
        }
        if (!(ed = evdoc_get()))
                FAIL(GWS_EV_ERR_NOMEM, NULL, "out of memory");
        ev->ed = ed;
        ev->doc = &ed->doc;

        jerr = gws_json_parse(&ed->doc, buf, len, &jl);
        if (jerr != GWS_JE_OK) {
                info->column = (int)ed->doc.err_off + 1;
                info->line = 1;
                snprintf(info->text, sizeof(info->text), "%s",
                         ed->doc.err_what ? ed->doc.err_what : "error");
                gws_event_clear(ev);
                switch (jerr) {
                case GWS_JE_UTF8:
                        FAIL(GWS_EV_ERR_NOT_UTF8, NULL,
                             "the message is not valid UTF-8");
                case GWS_JE_DEPTH:
                        FAIL(GWS_EV_ERR_TOO_DEEP, NULL,
                             "the message nests deeper than "
                             "limits.max_depth");
                case GWS_JE_TOKENS:
                        FAIL(GWS_EV_ERR_TOO_MANY_FIELDS, NULL,
                             "the message has more values than "
                             "limits.max_fields");
                case GWS_JE_STRING:
                        FAIL(GWS_EV_ERR_STRING_TOO_LONG, NULL,
                             "a string exceeds limits.max_string_bytes");
                case GWS_JE_NOMEM:
                        FAIL(GWS_EV_ERR_NOMEM, NULL, "out of memory");
                default:
                        FAIL(GWS_EV_ERR_NOT_JSON, NULL,
                             "the message is not JSON");
                }
        }
        root = &ed->doc.toks[0];
        if (root->type != GWS_JT_OBJ) {
                gws_event_clear(ev);
                FAIL(GWS_EV_ERR_NOT_OBJECT, NULL,
                     "the message is JSON but not an object");
        }

        gws_buf_reset(&ed->arena);
        if (gws_buf_reserve(&ed->arena, len) == -1) {
                gws_event_clear(ev);
                FAIL(GWS_EV_ERR_NOMEM, NULL, "out of memory");
        }
        memset(&sc, 0, sizeof(sc));
        sc.doc = &ed->doc;
        sc.arena = &ed->arena;
        /* One walk over the members; duplicate names: the last wins, as
         * in most JSON parsers. */
        for (k = 1; k < root->next; k = ed->doc.toks[k + 1].next) {
                const gws_jtok_t *kt = &ed->doc.toks[k];
                const char *name = buf + kt->start + 1;
                size_t n = kt->len - 2;
                /* The longest known name has 10 characters; escaped, 6
                 * bytes each, plus the quotes: 62 bytes. A longer name
                 * decodes to more than 10 bytes (before, 16: a name as
                 * "\u0067ateway_id" was skipped, and the field missing). */
                char tmp[64];
                int f;
                if (kt->flags & GWS_JF_ESC) {
                        if (kt->len > sizeof(tmp))
                                continue;
                        n = gws_json_str_decode(&ed->doc, kt, tmp);
                        name = tmp;
                }
                /* one call site, so field_of() is inlined here: ~660,000
                 * calls on the 30k-event replay, ~5 Ir of call each */
                f = field_of(name, n);
                if (f >= 0)
                        sc.at[f] = k + 1;
        }
        if ((err = validate(ev, &sc, info)) != GWS_EV_OK) {
                gws_event_clear(ev);
                return err;
        }
        return GWS_EV_OK;
}

void gws_event_clear(gws_event_t *ev) {
        if (ev->ed)
                evdoc_put(ev->ed);
        memset(ev, 0, sizeof(*ev));
}
