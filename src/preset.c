/* preset.c - foreign gateway log formats -> native event JSON.
 *
 * Each preset reads the foreign object (a jansson DOM, parsed once), sets
 * the native fields on a new object, then carries the foreign fields it
 * did not consume (see preset.h for the rules and the mapping tables).
 * The result is serialized straight into the caller's buffer. Every
 * lookup tolerates any JSON type: a foreign field of an unexpected type
 * is either passed on (the native validation names it) or left out.
 */
#include "gwsieve/preset.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* ------------------------------------------------------------------------
 * private types and prototypes
 * ------------------------------------------------------------------------ */

#define USED_MAX 32 /* more than any mapping consumes */

/* One transform: the foreign object, the native one being built, the
 * foreign top-level keys consumed, and the first note. */
typedef struct {
        json_t *src;                /* borrowed: the foreign object */
        json_t *dst;                /* owned: the native object */
        const char *used[USED_MAX]; /* static names of consumed keys */
        int n_used;
        const char *why, *field;    /* first value left out, or NULL */
} xf_t;

static void from_cloudflare(xf_t *x);
static void from_litellm(xf_t *x);
static void from_otel(xf_t *x);

static json_t *load(const char *buf, size_t len, size_t flags,
                    json_error_t *jerr);

static const char *names[GWS_PRESET__CNT] = {"native", "cloudflare",
                                             "litellm", "otel-genai"};

/* Native field names: a carried foreign field with one of these names
 * goes under metadata instead of clobbering the native one. */
static const char *const native_fields[] = {
    "id", "ts", "gateway_id", "provider", "model", "status", "latency_ms",
    "account_id", "endpoint", "method", "success", "cached", "ttfb_ms",
    "tokens_in", "tokens_out", "cost_usd", "client_ip", "user_id",
    "user_agent", "trace_id", "step", "metadata", "request", "response",
    NULL};

/* ------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------ */

int gws_preset_from_name(const char *name, gws_preset_t *out) {
        int i;
        if (!name)
                return -1;
        for (i = 0; i < GWS_PRESET__CNT; i++)
                if (!strcmp(name, names[i])) {
                        *out = (gws_preset_t)i;
                        return 0;
                }
        return -1;
}

const char *gws_preset_name(gws_preset_t p) {
        return (unsigned)p < GWS_PRESET__CNT ? names[p] : "unknown";
}

/* native field -> the foreign field(s) it is read from, per preset; a
 * native name read from the same foreign name is not listed. */
typedef struct {
        const char *native, *source;
} source_t;

static const source_t cf_sources[] = {
    {"ts", "created_at"},
    {"gateway_id", "gateway_id, gateway or metadata.gateway_id"},
    {"status", "status_code"},
    {"latency_ms", "duration"},
    {"endpoint", "path"},
    {"cost_usd", "cost"},
    {"request", "request or request_body"},
    {"response", "response or response_body"},
    {"user_id", "metadata.user_id"},
    {"client_ip", "metadata.client_ip"},
    {NULL, NULL}};

static const source_t ll_sources[] = {
    {"ts", "startTime"},
    {"latency_ms", "endTime - startTime, else response_time"},
    {"ttfb_ms", "completionStartTime"},
    {"provider", "custom_llm_provider or error_information.llm_provider"},
    {"status", "status and error_information"},
    {"success", "status"},
    {"tokens_in", "prompt_tokens"},
    {"tokens_out", "completion_tokens"},
    {"cost_usd", "response_cost"},
    {"cached", "cache_hit"},
    {"endpoint", "call_type"},
    {"request", "messages"},
    {"user_id", "end_user or metadata.user_api_key_end_user_id"},
    {"client_ip", "requester_ip_address"},
    {"account_id", "metadata.user_api_key_org_id"},
    {"gateway_id", "metadata.user_api_key_team_id or api_base"},
    {NULL, NULL}};

static const source_t ot_sources[] = {
    {"id", "spanId"},
    {"trace_id", "traceId"},
    {"ts", "startTimeUnixNano"},
    {"latency_ms", "endTimeUnixNano - startTimeUnixNano"},
    {"provider", "gen_ai.provider.name or gen_ai.system"},
    {"model", "gen_ai.request.model or gen_ai.response.model"},
    {"tokens_in", "gen_ai.usage.input_tokens or gen_ai.usage.prompt_tokens"},
    {"tokens_out",
     "gen_ai.usage.output_tokens or gen_ai.usage.completion_tokens"},
    {"status", "http.response.status_code"},
    {"endpoint", "gen_ai.operation.name"},
    {"gateway_id", "server.address or resource service.name"},
    {"user_id", "user.id or enduser.id"},
    {"client_ip", "client.address"},
    {"request", "gen_ai.input.messages"},
    {"response", "gen_ai.output.messages"},
    {NULL, NULL}};

const char *gws_preset_source_field(gws_preset_t p, const char *native) {
        const source_t *t;
        switch (p) {
        case GWS_PRESET_CLOUDFLARE: t = cf_sources; break;
        case GWS_PRESET_LITELLM: t = ll_sources; break;
        case GWS_PRESET_OTEL_GENAI: t = ot_sources; break;
        default: return NULL;
        }
        if (!native)
                return NULL;
        for (; t->native; t++)
                if (!strcmp(t->native, native))
                        return t->source;
        return NULL;
}

static int dump_cb(const char *buf, size_t size, void *data) {
        return gws_buf_append(data, buf, size);
}

int gws_preset_transform(gws_preset_t p, const char *buf, size_t len,
                         gws_buf_t *out, const char **why,
                         const char **field) {
        json_error_t jerr;
        xf_t x;
        int r = -1;

        *why = NULL;
        *field = NULL;
        if (p == GWS_PRESET_NATIVE) {
                if (gws_buf_append(out, buf, len) == -1) {
                        *why = "out of memory";
                        return -1;
                }
                return 0;
        }
        if ((unsigned)p >= GWS_PRESET__CNT) {
                *why = "unknown input preset";
                return -1;
        }

        memset(&x, 0, sizeof(x));
        /* DECODE_ANY: a scalar is JSON, just not an object */
        if (!(x.src = load(buf, len, JSON_DECODE_ANY, &jerr))) {
                switch (json_error_code(&jerr)) {
                case json_error_out_of_memory: *why = "out of memory"; break;
                case json_error_numeric_overflow: /* 1e400: valid JSON */
                        *why = "a number is beyond the range of a double";
                        break;
                case json_error_stack_overflow:
                        *why = "the nesting is deeper than 2048";
                        break;
                default: *why = "the message is not JSON"; break;
                }
                return -1;
        }
        if (!json_is_object(x.src)) {
                *why = "the message is not a JSON object";
                goto out;
        }
        if (!(x.dst = json_object())) {
                *why = "out of memory";
                goto out;
        }

        switch (p) {
        case GWS_PRESET_CLOUDFLARE: from_cloudflare(&x); break;
        case GWS_PRESET_LITELLM: from_litellm(&x); break;
        default: from_otel(&x); break;
        }

        if (json_dump_callback(x.dst, dump_cb, out, JSON_COMPACT) == -1) {
                *why = "out of memory";
                goto out;
        }
        *why = x.why;
        *field = x.field;
        r = 0;
out:
        json_decref(x.dst);
        json_decref(x.src);
        return r;
}

/* ------------------------------------------------------------------------
 * private helpers: reading foreign values
 * ------------------------------------------------------------------------ */

/* json_loadb() for foreign text. JSON_ALLOW_NUL: "\u0000" inside strings
 * is valid JSON and the native parser accepts it. An integer beyond int64
 * is valid JSON too: then retry with every integer read as a real (the
 * counts we map are normalized back to integers). New reference or NULL
 * with *jerr set. */
static json_t *load(const char *buf, size_t len, size_t flags,
                    json_error_t *jerr) {
        json_t *j = json_loadb(buf, len, flags | JSON_ALLOW_NUL, jerr);
        if (!j && json_error_code(jerr) == json_error_numeric_overflow)
                j = json_loadb(buf, len,
                               flags | JSON_ALLOW_NUL |
                                   JSON_DECODE_INT_AS_REAL,
                               jerr);
        return j;
}

/* Records the first value that had to be left out. */
static void note(xf_t *x, const char *why, const char *field) {
        if (!x->why) {
                x->why = why;
                x->field = field;
        }
}

/* src[k] (borrowed), marking k consumed when present; null (= unknown,
 * as a native absent field) reads as NULL. */
static json_t *use(xf_t *x, const char *k) {
        json_t *v = json_object_get(x->src, k);
        if (!v)
                return NULL;
        if (x->n_used < USED_MAX)
                x->used[x->n_used++] = k;
        return json_is_null(v) ? NULL : v;
}

/* The first non-null of two alternative foreign names. */
static json_t *use2(xf_t *x, const char *k1, const char *k2) {
        json_t *v = use(x, k1);
        return v ? v : use(x, k2);
}

static int is_used(const xf_t *x, const char *k) {
        int i;
        for (i = 0; i < x->n_used; i++)
                if (!strcmp(x->used[i], k))
                        return 1;
        return 0;
}

/* o[k] of an object, NULL when o is not an object, k absent or null. */
static json_t *get(const json_t *o, const char *k) {
        json_t *v = json_object_get(o, k);
        return v && !json_is_null(v) ? v : NULL;
}

/* v when it is a non-empty string, else NULL. */
static json_t *nonempty(json_t *v) {
        return json_is_string(v) && json_string_length(v) ? v : NULL;
}

/* A JSON number, or a string that is wholly a finite decimal number.
 * @returns 0 and sets *d, or -1. */
static int num_of(const json_t *v, double *d) {
        char tmp[64], *end;
        size_t n;
        if (json_is_number(v)) {
                *d = json_number_value(v);
                return isfinite(*d) ? 0 : -1;
        }
        if (!json_is_string(v) || !(n = json_string_length(v)) ||
            n >= sizeof(tmp))
                return -1;
        memcpy(tmp, json_string_value(v), n + 1); /* may hold a NUL */
        if (!((tmp[0] >= '0' && tmp[0] <= '9') || tmp[0] == '-' ||
              tmp[0] == '.') ||
            strpbrk(tmp, "xXiInN"))
                return -1; /* no " 1", "+1", "0x1f", "-inf", "nan" */
        *d = strtod(tmp, &end);
        return end == tmp + n && isfinite(*d) ? 0 : -1;
}

/* A count for tokens/status (new reference, NULL when v is NULL): an
 * integer; an integral real or decimal string within int64 becomes one;
 * anything else is passed on as is for the native validation to name. */
static json_t *count_of(json_t *v) {
        double d;
        if (!v || json_is_integer(v))
                return json_incref(v);
        if (num_of(v, &d) == 0 && d == floor(d) && fabs(d) < 9.2e18)
                return json_integer((json_int_t)d);
        return json_incref(v);
}

/* A non-negative-or-not number (new reference, NULL when v is NULL): a
 * numeric string becomes a number, anything else is passed on. */
static json_t *number_of(json_t *v) {
        double d;
        if (json_is_string(v) && num_of(v, &d) == 0)
                return json_real(d);
        return json_incref(v);
}

/* Epoch milliseconds as a JSON integer (a real when out of int64 range:
 * the native validation then rejects it as not epoch milliseconds). */
static json_t *ms_value(double ms) {
        if (fabs(ms) < 9e15)
                return json_integer((json_int_t)llround(ms));
        return json_real(ms);
}

/* Milliseconds rounded to the microsecond: differences of epoch seconds
 * as doubles carry ~0.2 us of noise at today's epoch. */
static json_t *dur_value(double ms) {
        return json_real(round(ms * 1000.0) / 1000.0);
}

/* A request/response body: objects and strings as they are, anything
 * else wrapped so the native type (object or string) holds. */
static json_t *body_of(json_t *v) {
        if (!v)
                return NULL;
        if (json_is_object(v) || json_is_string(v))
                return json_incref(v);
        return json_pack("{sO}", "value", v);
}

/* A JSON text inside a string (OTel content attributes, Cloudflare
 * metadata): the parsed object or array, else NULL. New reference. */
static json_t *parse_str(const json_t *v) {
        json_error_t jerr;
        if (!json_is_string(v))
                return NULL;
        return load(json_string_value(v), json_string_length(v), 0, &jerr);
}

/* An id-like value: a non-empty string, or an integer as text (metadata
 * values may be numbers). New reference or NULL. */
static json_t *idstr(json_t *v) {
        if (nonempty(v))
                return json_incref(v);
        if (json_is_integer(v))
                return json_sprintf("%" JSON_INTEGER_FORMAT,
                                    json_integer_value(v));
        return NULL;
}

/* ------------------------------------------------------------------------
 * private helpers: writing native values
 * ------------------------------------------------------------------------ */

/* dst[k] = v (steals v; v may be NULL = nothing to set). */
static void put_new(xf_t *x, const char *k, json_t *v) {
        if (v)
                json_object_set_new(x->dst, k, v);
}

/* dst[k] = v (borrowed; v may be NULL). */
static void put(xf_t *x, const char *k, json_t *v) {
        if (v && !json_is_null(v))
                json_object_set(x->dst, k, v);
}

/* The native metadata object (created on demand); NULL only on OOM. */
static json_t *meta(xf_t *x) {
        json_t *m = json_object_get(x->dst, "metadata");
        if (!json_is_object(m)) {
                m = json_object();
                if (json_object_set_new(x->dst, "metadata", m) == -1)
                        return NULL;
        }
        return m;
}

/* Foreign metadata -> native metadata: an object is copied (shallow, so
 * later additions do not touch the foreign DOM), a string holding a JSON
 * object is parsed, anything else is kept as top-level metadata_raw. */
static void put_metadata(xf_t *x, json_t *v) {
        json_t *p;
        if (!v)
                return;
        if (json_is_object(v)) {
                put_new(x, "metadata", json_copy(v));
                return;
        }
        p = parse_str(v); /* json_is_* evaluate their argument twice */
        if (json_is_object(p)) {
                put_new(x, "metadata", p);
                return;
        }
        json_decref(p);
        put(x, "metadata_raw", v);
}

/* Carries the foreign fields not consumed: under their own names, or
 * under metadata for native names; never overwrites. */
static void carry(xf_t *x) {
        const char *const *n;
        const char *k;
        json_t *v, *m;
        json_object_foreach(x->src, k, v) {
                int native = 0;
                if (is_used(x, k))
                        continue;
                for (n = native_fields; *n && !native; n++)
                        native = !strcmp(*n, k);
                if (!native) {
                        if (!json_object_get(x->dst, k))
                                json_object_set(x->dst, k, v);
                } else if ((m = meta(x)) && !json_object_get(m, k)) {
                        json_object_set(m, k, v);
                }
        }
}

/* ------------------------------------------------------------------------
 * cloudflare
 * ------------------------------------------------------------------------ */

/* created_at: RFC 3339 strings go to the native parser as they are;
 * epoch numbers (or digit strings) are scaled by magnitude. */
static void cf_ts(xf_t *x, json_t *v) {
        double d;
        if (!v)
                return;
        if (num_of(v, &d) == 0 && d >= 0) {
                if (d < 1e11)         /* seconds (until year 5138) */
                        d *= 1e3;
                else if (d >= 1e17)   /* nanoseconds */
                        d /= 1e6;
                else if (d >= 1e14)   /* microseconds */
                        d /= 1e3;
                put_new(x, "ts", ms_value(d));
                return;
        }
        put(x, "ts", v); /* string: RFC 3339, else named by native */
}

static void from_cloudflare(xf_t *x) {
        json_t *v, *md;

        put(x, "id", use(x, "id"));
        cf_ts(x, use(x, "created_at"));
        put_metadata(x, use(x, "metadata"));
        md = json_object_get(x->dst, "metadata");

        if ((v = use2(x, "gateway_id", "gateway")))
                put(x, "gateway_id", v);
        else if ((v = idstr(get(md, "gateway_id"))))
                put_new(x, "gateway_id", v);
        else
                put_new(x, "gateway_id", json_string("cloudflare"));
        put(x, "account_id", use(x, "account_id"));
        put(x, "provider", use(x, "provider"));
        put(x, "model", use(x, "model"));
        put(x, "endpoint", use(x, "path"));
        /* status_code is optional in Cloudflare's API, success is not:
         * without the code, success decides (a 500 for a failure: the
         * error share counts it, the status is not known) */
        if ((v = use(x, "status_code")))
                put_new(x, "status", count_of(v));
        else if (json_is_boolean(v = get(x->src, "success")))
                put_new(x, "status",
                        json_integer(json_is_true(v) ? 200 : 500));
        put_new(x, "latency_ms", number_of(use(x, "duration")));
        put(x, "success", use(x, "success"));
        put(x, "cached", use(x, "cached"));
        put_new(x, "tokens_in", count_of(use(x, "tokens_in")));
        put_new(x, "tokens_out", count_of(use(x, "tokens_out")));
        put_new(x, "cost_usd", number_of(use(x, "cost")));
        put_new(x, "step", count_of(use(x, "step")));
        put(x, "user_agent", use(x, "user_agent"));
        put_new(x, "request", body_of(use2(x, "request", "request_body")));
        put_new(x, "response",
                body_of(use2(x, "response", "response_body")));
        put_new(x, "user_id", idstr(get(md, "user_id")));
        put(x, "client_ip", nonempty(get(md, "client_ip")));
        carry(x);
}

/* ------------------------------------------------------------------------
 * litellm
 * ------------------------------------------------------------------------ */

/* LiteLLM exception classes -> the HTTP status they carry
 * (docs.litellm.ai/docs/exception_mapping), matched by suffix so that
 * "litellm.RateLimitError" and "openai.APITimeoutError" match too (the
 * OpenAI and Anthropic SDKs' classes have the same names: otel-genai
 * reads its error.type with this map as well).
 * Unlisted classes (APIConnectionError, APIError, ...) mean 500. */
static int ll_class_status(const char *cls) {
        static const struct {
                const char *suffix;
                int status;
        } map[] = {
            {"AuthenticationError", 401}, {"PermissionDeniedError", 403},
            {"NotFoundError", 404},       {"Timeout", 408},
            {"TimeoutError", 408},        {"UnprocessableEntityError", 422},
            {"RateLimitError", 429},      {"ServiceUnavailableError", 503},
            {"BadRequestError", 400},     {"ContextWindowExceededError", 400},
            {"ContentPolicyViolationError", 400},
            {"UnsupportedParamsError", 400},
            {"InvalidRequestError", 400}, {NULL, 0}};
        size_t n, m;
        int i;
        if (!cls)
                return 0;
        n = strlen(cls);
        for (i = 0; map[i].suffix; i++) {
                m = strlen(map[i].suffix);
                if (n >= m && !strcmp(cls + n - m, map[i].suffix))
                        return map[i].status;
        }
        return 0;
}

/* startTime etc.: epoch seconds (a number or numeric string), or an RFC
 * 3339 string (some exporters serialize datetimes). @returns 0 and sets
 * *s (epoch seconds), or -1. */
static int ll_secs(const json_t *v, double *s) {
        int64_t ms;
        if (num_of(v, s) == 0)
                return 0;
        if (json_is_string(v) &&
            gws_time_parse(json_string_value(v), json_string_length(v),
                           &ms) == 0) {
                *s = (double)ms / 1e3;
                return 0;
        }
        return -1;
}

/* The host of a URL ("https://user@host:port/path" -> "host"), or NULL.
 * New reference. */
static json_t *url_host(const json_t *v) {
        const char *s = json_string_value(v), *p, *e, *at;
        if (!s)
                return NULL;
        p = (p = strstr(s, "://")) ? p + 3 : s;
        e = p + strcspn(p, "/?#");
        for (at = p; at < e; at++)
                if (*at == '@')
                        p = at + 1;
        if (p < e && *p == '[') { /* [v6]:port */
                const char *rb = memchr(p, ']', (size_t)(e - p));
                if (rb)
                        e = rb + 1;
        } else {
                const char *c = memchr(p, ':', (size_t)(e - p));
                if (c)
                        e = c;
        }
        return e > p ? json_stringn(p, (size_t)(e - p)) : NULL;
}

static void from_litellm(xf_t *x) {
        json_t *v, *md, *ei = get(x->src, "error_information");
        const char *status;
        double st = 0, en = 0, cs = 0, rt = 0;
        int has_st, has_en = 0;

        put(x, "id", use(x, "id"));
        put(x, "trace_id", use(x, "trace_id"));

        /* times: epoch seconds -> ms */
        if ((v = use(x, "startTime"))) {
                if ((has_st = ll_secs(v, &st) == 0))
                        put_new(x, "ts", ms_value(st * 1e3));
                else
                        note(x, "startTime is not a number", "startTime");
        } else {
                has_st = 0;
        }
        if ((v = use(x, "endTime")) && !(has_en = ll_secs(v, &en) == 0))
                note(x, "endTime is not a number", "endTime");
        /* no latency from it: said, if response_time does not give one
         * either (the note is only shown with a dead letter) */
        if (has_st && has_en && en < st)
                note(x, "endTime is before startTime", "endTime");
        if (has_st && has_en && en >= st)
                put_new(x, "latency_ms", dur_value((en - st) * 1e3));
        else if (num_of(get(x->src, "response_time"), &rt) == 0 && rt >= 0)
                put_new(x, "latency_ms", dur_value(rt * 1e3));
        if ((v = use(x, "completionStartTime")) && has_st &&
            ll_secs(v, &cs) == 0 && cs >= st)
                put_new(x, "ttfb_ms", dur_value((cs - st) * 1e3));

        if (!(v = use(x, "custom_llm_provider")))
                v = get(ei, "llm_provider");
        put(x, "provider", v);
        put(x, "model", use(x, "model"));

        /* status: success | failure (+ error_information) */
        if ((v = use(x, "status"))) {
                status = json_string_value(v);
                if (status && !strcmp(status, "success")) {
                        put_new(x, "status", json_integer(200));
                        put_new(x, "success", json_true());
                } else if (status && !strcmp(status, "failure")) {
                        double code = 0;
                        int sc = 0;
                        if (num_of(get(ei, "error_code"), &code) == 0 &&
                            code >= 100 && code <= 599)
                                sc = (int)code;
                        else
                                sc = ll_class_status(json_string_value(
                                    get(ei, "error_class")));
                        put_new(x, "status", json_integer(sc ? sc : 500));
                        put_new(x, "success", json_false());
                } else {
                        note(x, "status is not \"success\" or \"failure\"",
                             "status");
                }
        } else {
                /* payloads older than the status field: an error decides
                 * (its code or class, else error_str), else success */
                const char *es =
                    json_string_value(nonempty(get(x->src, "error_str")));
                const char *ec =
                    json_string_value(nonempty(get(ei, "error_class")));
                char cls[128];
                double code = 0;
                int sc = 0;
                if (num_of(get(ei, "error_code"), &code) == 0 &&
                    code >= 100 && code <= 599)
                        sc = (int)code;
                else if (ec)
                        sc = ll_class_status(ec);
                else if (es) {
                        /* "litellm.RateLimitError: ...": the class */
                        size_t n = strcspn(es, ": ");
                        if (n < sizeof(cls)) {
                                memcpy(cls, es, n);
                                cls[n] = '\0';
                                sc = ll_class_status(cls);
                        }
                }
                if (sc || ec || es) {
                        put_new(x, "status", json_integer(sc ? sc : 500));
                        put_new(x, "success", json_false());
                } else {
                        put_new(x, "status", json_integer(200));
                        put_new(x, "success", json_true());
                }
        }

        put_new(x, "tokens_in", count_of(use(x, "prompt_tokens")));
        put_new(x, "tokens_out", count_of(use(x, "completion_tokens")));
        put_new(x, "cost_usd", number_of(use(x, "response_cost")));
        put(x, "cached", use(x, "cache_hit"));
        put(x, "endpoint", use(x, "call_type"));
        put(x, "user_agent", use(x, "user_agent"));
        if ((v = use(x, "messages")))
                put_new(x, "request", json_pack("{sO}", "messages", v));
        put_new(x, "response", body_of(use(x, "response")));

        put_metadata(x, use(x, "metadata"));
        md = json_object_get(x->dst, "metadata");
        /* end_user is "" when the caller sent none, a number when the
         * caller's user was one (idstr(): "7") */
        if (!(v = idstr(use(x, "end_user"))))
                v = idstr(get(md, "user_api_key_end_user_id"));
        put_new(x, "user_id", v);
        if (!(v = nonempty(use(x, "requester_ip_address"))))
                v = nonempty(get(md, "requester_ip_address"));
        put(x, "client_ip", v);
        put(x, "account_id", nonempty(get(md, "user_api_key_org_id")));
        if ((v = nonempty(get(md, "user_api_key_team_id"))))
                put(x, "gateway_id", v);
        else if ((v = url_host(get(x->src, "api_base"))))
                put_new(x, "gateway_id", v);
        else
                put_new(x, "gateway_id", json_string("litellm"));
        carry(x);
}

/* ------------------------------------------------------------------------
 * otel-genai
 * ------------------------------------------------------------------------ */

static json_t *otlp_value(json_t *av, int depth);

/* OTLP KeyValue list -> object (new reference). */
static json_t *otlp_kvlist(json_t *arr, int depth) {
        json_t *o = json_object(), *it;
        size_t i;
        json_array_foreach(arr, i, it) {
                const char *k = json_string_value(json_object_get(it, "key"));
                json_t *v = otlp_value(json_object_get(it, "value"), depth);
                if (k && v)
                        json_object_set_new(o, k, v);
                else
                        json_decref(v);
        }
        return o;
}

/* OTLP AnyValue -> plain JSON value (new reference) or NULL. A value
 * that is not an AnyValue wrapper is taken as it is. */
static json_t *otlp_value(json_t *av, int depth) {
        json_t *v;
        double d;
        if (!json_is_object(av))
                return json_incref(av);
        if (depth > 64) /* jansson already bounds nesting; be explicit */
                return NULL;
        if ((v = json_object_get(av, "stringValue")) ||
            (v = json_object_get(av, "boolValue")) ||
            (v = json_object_get(av, "bytesValue")))
                return json_incref(v);
        if ((v = json_object_get(av, "intValue")))
                return count_of(v); /* int64 as a JSON string */
        if ((v = json_object_get(av, "doubleValue")))
                return num_of(v, &d) == 0 ? json_real(d) : json_incref(v);
        if ((v = json_object_get(av, "arrayValue"))) {
                json_t *a = json_array(), *it;
                size_t i;
                json_array_foreach(json_object_get(v, "values"), i, it)
                        json_array_append_new(a, otlp_value(it, depth + 1));
                return a;
        }
        if ((v = json_object_get(av, "kvlistValue")))
                return otlp_kvlist(json_object_get(v, "values"), depth + 1);
        return json_incref(av);
}

/* The attributes of x (a span or a resource) as an object: given as one,
 * or built from the OTLP array. New reference; NULL if absent/unusable. */
static json_t *attrs_of(json_t *x) {
        json_t *a = json_object_get(x, "attributes");
        if (json_is_object(a))
                return json_incref(a);
        if (json_is_array(a))
                return otlp_kvlist(a, 0);
        return NULL;
}

/* Unix nanoseconds from an integer, a real or a digit string (doubles
 * lose ~256 ns at today's epoch, so strings are read exactly).
 * @returns 0 or -1. */
static int nanos(const json_t *v, uint64_t *out) {
        const char *p;
        size_t i, n;
        uint64_t u = 0;
        double d;
        if (json_is_integer(v)) {
                if (json_integer_value(v) < 0)
                        return -1;
                *out = (uint64_t)json_integer_value(v);
                return 0;
        }
        if (json_is_real(v)) {
                d = json_real_value(v);
                if (!(d >= 0 && d < 1.8e19))
                        return -1;
                *out = (uint64_t)d;
                return 0;
        }
        if (!json_is_string(v) || !(n = json_string_length(v)) || n > 20)
                return -1;
        p = json_string_value(v);
        for (i = 0; i < n; i++) {
                if (p[i] < '0' || p[i] > '9' || u > (UINT64_MAX - 9) / 10)
                        return -1;
                u = u * 10 + (uint64_t)(p[i] - '0');
        }
        *out = u;
        return 0;
}

/* A content attribute: JSON text is parsed, other values kept. */
static json_t *content_of(json_t *v) {
        json_t *p = parse_str(v);
        return p ? p : json_incref(v);
}

/* attribute names mapped to native fields (not copied into metadata) */
static const char *const otel_mapped[] = {
    "gen_ai.provider.name", "gen_ai.system", "gen_ai.request.model",
    "gen_ai.response.model", "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens", "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens", "http.response.status_code",
    "gen_ai.operation.name", "server.address", "user.id", "enduser.id",
    "client.address", "gen_ai.input.messages", "gen_ai.system_instructions",
    "gen_ai.output.messages", NULL};

static void from_otel(xf_t *x) {
        json_t *v, *at, *rat = NULL, *m, *req;
        const char *const *mk;
        const char *k;
        uint64_t s = 0, e = 0;
        int has_s = 0, has_e = 0;

        put(x, "id", use2(x, "spanId", "span_id"));
        put(x, "trace_id", use2(x, "traceId", "trace_id"));
        if ((v = use2(x, "startTimeUnixNano", "start_time_unix_nano")) &&
            !(has_s = nanos(v, &s) == 0))
                note(x, "startTimeUnixNano is not Unix nanoseconds",
                     "startTimeUnixNano");
        if ((v = use2(x, "endTimeUnixNano", "end_time_unix_nano")) &&
            !(has_e = nanos(v, &e) == 0))
                note(x, "endTimeUnixNano is not Unix nanoseconds",
                     "endTimeUnixNano");
        if (has_s)
                put_new(x, "ts", json_integer((json_int_t)(s / 1000000)));
        if (has_s && has_e && e >= s)
                put_new(x, "latency_ms", json_real((double)(e - s) / 1e6));
        else if (has_s && has_e)
                note(x, "endTimeUnixNano is before startTimeUnixNano",
                     "endTimeUnixNano");

        v = use(x, "attributes");
        if (!(at = attrs_of(x->src))) {
                if (v)
                        note(x, "attributes is not an object or an array",
                             "attributes");
                at = json_object();
        }
        if ((v = get(x->src, "resource"))) {
                /* OTLP {"attributes": ...}, or a flat attribute object */
                if (!(rat = attrs_of(v)) && json_is_object(v))
                        rat = json_incref(v);
        }

        if (!(v = get(at, "gen_ai.provider.name")))
                v = get(at, "gen_ai.system");
        put(x, "provider", v);
        if (!(v = get(at, "gen_ai.request.model")))
                v = get(at, "gen_ai.response.model");
        put(x, "model", v);
        if (!(v = get(at, "gen_ai.usage.input_tokens")))
                v = get(at, "gen_ai.usage.prompt_tokens");
        put_new(x, "tokens_in", count_of(v));
        if (!(v = get(at, "gen_ai.usage.output_tokens")))
                v = get(at, "gen_ai.usage.completion_tokens");
        put_new(x, "tokens_out", count_of(v));

        if ((v = get(at, "http.response.status_code"))) {
                put_new(x, "status", count_of(v));
        } else {
                /* OTLP/JSON status.code: 2 or "STATUS_CODE_ERROR" */
                json_t *code = get(get(x->src, "status"), "code");
                json_t *et = get(at, "error.type");
                const char *cs = json_string_value(code);
                int err = et || (json_is_integer(code) &&
                                 json_integer_value(code) == 2) ||
                          (cs && strstr(cs, "ERROR"));
                int sc = err ? 500 : 200;
                double d;
                /* error.type: an HTTP status as text (the HTTP
                 * conventions), or the exception class the GenAI
                 * instrumentations record ("RateLimitError") */
                if (et && num_of(et, &d) == 0 && d == floor(d) &&
                    d >= 400 && d <= 599)
                        sc = (int)d;
                else if (et && ll_class_status(json_string_value(et)))
                        sc = ll_class_status(json_string_value(et));
                put_new(x, "status", json_integer(sc));
        }

        put(x, "endpoint", get(at, "gen_ai.operation.name"));
        if ((v = nonempty(get(at, "server.address"))) ||
            (v = nonempty(get(rat, "service.name"))))
                put(x, "gateway_id", v);
        else
                put_new(x, "gateway_id", json_string("otel"));
        if (!(v = get(at, "user.id")))
                v = get(at, "enduser.id");
        put(x, "user_id", v);
        put(x, "client_ip", get(at, "client.address"));

        if ((v = get(at, "gen_ai.input.messages")) ||
            get(at, "gen_ai.system_instructions")) {
                req = json_object();
                if (v)
                        json_object_set_new(req, "messages", content_of(v));
                if ((v = get(at, "gen_ai.system_instructions")))
                        json_object_set_new(req, "system_instructions",
                                            content_of(v));
                put_new(x, "request", req);
        }
        if ((v = get(at, "gen_ai.output.messages")))
                put_new(x, "response",
                        json_pack("{so}", "messages", content_of(v)));

        /* every other attribute -> metadata */
        json_object_foreach(at, k, v) {
                int mapped = 0;
                for (mk = otel_mapped; *mk && !mapped; mk++)
                        mapped = !strcmp(*mk, k);
                if (!mapped && (m = meta(x)))
                        json_object_set(m, k, v);
        }
        json_decref(at);
        json_decref(rat);
        carry(x);
}
