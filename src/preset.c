/* preset.c - foreign gateway log formats -> native event JSON. */
#include "gwsieve/preset.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static const char *names[GWS_PRESET__CNT] = {"native", "cloudflare",
                                             "litellm", "otel-genai"};

/* Native field names: a foreign field with one of these names that is not
 * mapped goes under metadata instead of clobbering the native one. */
static const char *native_fields[] = {
    "id", "ts", "gateway_id", "provider", "model", "status", "latency_ms",
    "account_id", "endpoint", "method", "success", "cached", "ttfb_ms",
    "tokens_in", "tokens_out", "cost_usd", "client_ip", "user_id",
    "user_agent", "trace_id", "step", "metadata", "request", "response",
    NULL};

int gws_preset_from_name(const char *name, gws_preset_t *out) {
        int i;
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

/* ------------------------------------------------------------------------
 * helpers
 * ------------------------------------------------------------------------ */

static int is_native(const char *k) {
        const char **n;
        for (n = native_fields; *n; n++)
                if (!strcmp(*n, k))
                        return 1;
        return 0;
}

/* Copies src[k] to dst[nk] if present and not null. */
static void copy(json_t *dst, const char *nk, json_t *src, const char *k) {
        json_t *v = json_object_get(src, k);
        if (v && !json_is_null(v))
                json_object_set(dst, nk, v);
}

/* Number from a JSON number or a numeric string; NAN if neither. */
static double num(json_t *v) {
        char *end;
        double d;
        if (json_is_number(v))
                return json_number_value(v);
        if (json_is_string(v) && *json_string_value(v)) {
                d = strtod(json_string_value(v), &end);
                if (!*end)
                        return d;
        }
        return NAN;
}

/* Unix nanoseconds from a JSON integer or a digit string (doubles would
 * lose ~256 ns at today's epoch). @returns 0 or -1. */
static int nanos(json_t *v, uint64_t *out) {
        const char *p;
        uint64_t n = 0;
        if (json_is_integer(v) && json_integer_value(v) >= 0) {
                *out = (uint64_t)json_integer_value(v);
                return 0;
        }
        if (!json_is_string(v) || !*(p = json_string_value(v)))
                return -1;
        for (; *p; p++) {
                if (*p < '0' || *p > '9' || n > UINT64_MAX / 10 - 1)
                        return -1;
                n = n * 10 + (uint64_t)(*p - '0');
        }
        *out = n;
        return 0;
}

static void set_int(json_t *dst, const char *k, double d) {
        if (isfinite(d) && d >= 0 && d < 9e15)
                json_object_set_new(dst, k, json_integer((json_int_t)d));
}

static void set_real(json_t *dst, const char *k, double d) {
        if (isfinite(d) && d >= 0)
                json_object_set_new(dst, k, json_real(d));
}

/* The metadata object of \p dst (created on demand). */
static json_t *meta(json_t *dst) {
        json_t *m = json_object_get(dst, "metadata");
        if (!json_is_object(m)) {
                m = json_object();
                json_object_set_new(dst, "metadata", m);
        }
        return m;
}

/* Carries the fields of \p src not listed in \p used. */
static void carry(json_t *dst, json_t *src, const char *const *used) {
        const char *k;
        json_t *v;
        json_object_foreach(src, k, v) {
                const char *const *u;
                int skip = 0;
                for (u = used; *u && !skip; u++)
                        skip = !strcmp(*u, k);
                if (skip)
                        continue;
                if (is_native(k))
                        json_object_set(meta(dst), k, v);
                else
                        json_object_set(dst, k, v);
        }
}

/* ------------------------------------------------------------------------
 * cloudflare
 * ------------------------------------------------------------------------ */

static void from_cloudflare(json_t *src, json_t *dst) {
        static const char *const used[] = {
            "id", "created_at", "gateway_id", "gateway", "provider", "model",
            "path", "status_code", "duration", "success", "cached",
            "tokens_in", "tokens_out", "cost", "metadata", "user_agent",
            "request", "response", NULL};
        json_t *md = json_object_get(src, "metadata"), *gw;
        copy(dst, "id", src, "id");
        copy(dst, "ts", src, "created_at");
        if (md && json_is_string(md)) {
                json_error_t e;
                json_t *p = json_loads(json_string_value(md), 0, &e);
                if (json_is_object(p))
                        json_object_set_new(dst, "metadata", p);
                else {
                        json_decref(p);
                        json_object_set(meta(dst), "metadata_raw", md);
                }
        } else if (json_is_object(md)) {
                json_object_set(dst, "metadata", md);
        }
        md = json_object_get(dst, "metadata");
        if ((gw = json_object_get(src, "gateway_id")) ||
            (gw = json_object_get(src, "gateway")) ||
            (md && (gw = json_object_get(md, "gateway_id"))))
                json_object_set(dst, "gateway_id", gw);
        else
                json_object_set_new(dst, "gateway_id",
                                    json_string("cloudflare"));
        copy(dst, "provider", src, "provider");
        copy(dst, "model", src, "model");
        copy(dst, "endpoint", src, "path");
        copy(dst, "status", src, "status_code");
        copy(dst, "latency_ms", src, "duration");
        copy(dst, "success", src, "success");
        copy(dst, "cached", src, "cached");
        copy(dst, "tokens_in", src, "tokens_in");
        copy(dst, "tokens_out", src, "tokens_out");
        copy(dst, "cost_usd", src, "cost");
        copy(dst, "user_agent", src, "user_agent");
        copy(dst, "request", src, "request");
        copy(dst, "response", src, "response");
        if (md) {
                copy(dst, "user_id", md, "user_id");
                copy(dst, "client_ip", md, "client_ip");
        }
        carry(dst, src, used);
}

/* ------------------------------------------------------------------------
 * litellm
 * ------------------------------------------------------------------------ */

static void from_litellm(json_t *src, json_t *dst) {
        static const char *const used[] = {
            "id", "startTime", "endTime", "completionStartTime",
            "response_time", "custom_llm_provider", "model", "status",
            "error_information", "prompt_tokens", "completion_tokens",
            "response_cost", "cache_hit", "end_user", "requester_ip_address",
            "call_type", "messages", "response", "metadata", "trace_id",
            NULL};
        json_t *md = json_object_get(src, "metadata"), *v, *ei;
        double st = num(json_object_get(src, "startTime"));
        double en = num(json_object_get(src, "endTime"));
        double cs = num(json_object_get(src, "completionStartTime"));
        double rt = num(json_object_get(src, "response_time"));
        const char *status;

        copy(dst, "id", src, "id");
        if (isfinite(st))
                set_int(dst, "ts", st * 1000);
        if (isfinite(st) && isfinite(en) && en >= st)
                set_real(dst, "latency_ms", (en - st) * 1000);
        else if (isfinite(rt))
                set_real(dst, "latency_ms", rt * 1000);
        if (isfinite(st) && isfinite(cs) && cs >= st)
                set_real(dst, "ttfb_ms", (cs - st) * 1000);
        copy(dst, "provider", src, "custom_llm_provider");
        copy(dst, "model", src, "model");
        status = json_string_value(json_object_get(src, "status"));
        if (status && !strcmp(status, "success")) {
                json_object_set_new(dst, "status", json_integer(200));
                json_object_set_new(dst, "success", json_true());
        } else if (status) {
                double code = NAN;
                ei = json_object_get(src, "error_information");
                if (json_is_object(ei))
                        code = num(json_object_get(ei, "error_code"));
                json_object_set_new(
                    dst, "status",
                    json_integer(isfinite(code) && code >= 100 && code <= 599
                                     ? (json_int_t)code
                                     : 500));
                json_object_set_new(dst, "success", json_false());
                if (json_is_object(ei))
                        json_object_set(meta(dst), "error_information", ei);
        }
        copy(dst, "tokens_in", src, "prompt_tokens");
        copy(dst, "tokens_out", src, "completion_tokens");
        copy(dst, "cost_usd", src, "response_cost");
        copy(dst, "cached", src, "cache_hit");
        copy(dst, "user_id", src, "end_user");
        copy(dst, "client_ip", src, "requester_ip_address");
        copy(dst, "endpoint", src, "call_type");
        copy(dst, "trace_id", src, "trace_id");
        if ((v = json_object_get(src, "messages")) && !json_is_null(v)) {
                json_t *req = json_object();
                json_object_set(req, "messages", v);
                json_object_set_new(dst, "request", req);
        }
        copy(dst, "response", src, "response");
        if (json_is_object(md)) {
                json_t *m = meta(dst);
                const char *k;
                json_object_foreach(md, k, v) json_object_set(m, k, v);
                if (!json_object_get(dst, "client_ip"))
                        copy(dst, "client_ip", md, "requester_ip_address");
                if (!json_object_get(dst, "user_id"))
                        copy(dst, "user_id", md, "user_api_key_user_id");
        }
        if (json_is_object(md) &&
            json_is_string(v = json_object_get(md, "user_api_key_team_id")))
                json_object_set(dst, "gateway_id", v);
        else if (json_is_string(v = json_object_get(src, "model_group")))
                json_object_set(dst, "gateway_id", v);
        else
                json_object_set_new(dst, "gateway_id", json_string("litellm"));
        carry(dst, src, used);
}

/* ------------------------------------------------------------------------
 * otel-genai
 * ------------------------------------------------------------------------ */

/* OTLP AnyValue -> plain JSON value (new reference) or NULL. */
static json_t *otlp_value(json_t *av) {
        json_t *v;
        if (!json_is_object(av))
                return json_incref(av);
        if ((v = json_object_get(av, "stringValue")))
                return json_incref(v);
        if ((v = json_object_get(av, "intValue"))) {
                double d = num(v);
                return isfinite(d) ? json_integer((json_int_t)d) : NULL;
        }
        if ((v = json_object_get(av, "doubleValue")))
                return json_real(num(v));
        if ((v = json_object_get(av, "boolValue")))
                return json_incref(v);
        return json_incref(av);
}

/* attributes as an object (given, or built from the OTLP array). */
static json_t *attrs_of(json_t *x) {
        json_t *a = json_object_get(x, "attributes"), *o, *it;
        size_t i;
        if (json_is_object(a))
                return json_incref(a);
        o = json_object();
        if (json_is_array(a)) {
                json_array_foreach(a, i, it) {
                        const char *k = json_string_value(
                            json_object_get(it, "key"));
                        json_t *v = otlp_value(json_object_get(it, "value"));
                        if (k && v)
                                json_object_set_new(o, k, v);
                        else
                                json_decref(v);
                }
        }
        return o;
}

static void from_otel(json_t *src, json_t *dst) {
        json_t *at = attrs_of(src), *res = json_object_get(src, "resource");
        json_t *rat = json_is_object(res) ? attrs_of(res) : json_object();
        json_t *v, *m;
        uint64_t s = 0, e = 0;
        int has_s = nanos(json_object_get(src, "startTimeUnixNano"), &s) == 0;
        int has_e = nanos(json_object_get(src, "endTimeUnixNano"), &e) == 0;
        const char *k;
        static const char *const mapped[] = {
            "gen_ai.provider.name", "gen_ai.system", "gen_ai.request.model",
            "gen_ai.response.model", "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens", "http.response.status_code",
            "gen_ai.operation.name", "server.address", "user.id",
            "enduser.id", "client.address", NULL};

        if (!(v = json_object_get(src, "spanId")))
                v = json_object_get(src, "span_id");
        if (v)
                json_object_set(dst, "id", v);
        if (!(v = json_object_get(src, "traceId")))
                v = json_object_get(src, "trace_id");
        if (v)
                json_object_set(dst, "trace_id", v);
        if (has_s)
                json_object_set_new(dst, "ts",
                                    json_integer((json_int_t)(s / 1000000)));
        if (has_s && has_e && e >= s)
                set_real(dst, "latency_ms", (double)(e - s) / 1e6);
        if ((v = json_object_get(at, "gen_ai.provider.name")) ||
            (v = json_object_get(at, "gen_ai.system")))
                json_object_set(dst, "provider", v);
        if ((v = json_object_get(at, "gen_ai.request.model")) ||
            (v = json_object_get(at, "gen_ai.response.model")))
                json_object_set(dst, "model", v);
        copy(dst, "tokens_in", at, "gen_ai.usage.input_tokens");
        copy(dst, "tokens_out", at, "gen_ai.usage.output_tokens");
        if ((v = json_object_get(at, "http.response.status_code"))) {
                json_object_set(dst, "status", v);
        } else {
                json_t *stt = json_object_get(src, "status");
                json_t *code = json_is_object(stt)
                                   ? json_object_get(stt, "code")
                                   : NULL;
                int err = (json_is_integer(code) &&
                           json_integer_value(code) == 2) ||
                          (json_is_string(code) &&
                           strstr(json_string_value(code), "ERROR"));
                json_object_set_new(dst, "status",
                                    json_integer(err ? 500 : 200));
        }
        copy(dst, "endpoint", at, "gen_ai.operation.name");
        if ((v = json_object_get(at, "server.address")) ||
            (v = json_object_get(rat, "service.name")))
                json_object_set(dst, "gateway_id", v);
        else
                json_object_set_new(dst, "gateway_id", json_string("otel"));
        if ((v = json_object_get(at, "user.id")) ||
            (v = json_object_get(at, "enduser.id")))
                json_object_set(dst, "user_id", v);
        copy(dst, "client_ip", at, "client.address");
        m = meta(dst);
        json_object_foreach(at, k, v) {
                const char *const *u;
                int skip = 0;
                for (u = mapped; *u && !skip; u++)
                        skip = !strcmp(*u, k);
                if (!skip)
                        json_object_set(m, k, v);
        }
        copy(m, "span_name", src, "name");
        json_decref(at);
        json_decref(rat);
}

/* ------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------ */

int gws_preset_transform(gws_preset_t p, const char *buf, size_t len,
                         gws_buf_t *out, const char **why,
                         const char **field) {
        json_error_t jerr;
        json_t *src, *dst;
        char *txt;
        int r;

        *why = NULL;
        *field = NULL;
        if (p == GWS_PRESET_NATIVE)
                return gws_buf_append(out, buf, len);
        if (!(src = json_loadb(buf, len, 0, &jerr))) {
                *why = "the message is not JSON";
                return -1;
        }
        if (!json_is_object(src)) {
                json_decref(src);
                *why = "the message is not a JSON object";
                return -1;
        }
        dst = json_object();
        switch (p) {
        case GWS_PRESET_CLOUDFLARE: from_cloudflare(src, dst); break;
        case GWS_PRESET_LITELLM: from_litellm(src, dst); break;
        default: from_otel(src, dst); break;
        }
        txt = json_dumps(dst, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(dst);
        json_decref(src);
        if (!txt) {
                *why = "out of memory";
                return -1;
        }
        r = gws_buf_puts(out, txt);
        free(txt);
        return r;
}
