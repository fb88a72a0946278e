/* test_preset.c - cloudflare, litellm and otel-genai logs become valid
 * native events with the expected view; bad input keeps precise reasons;
 * random and mutated input never crashes.
 *
 * Samples live in tests/data/presets/<preset>/, one JSON file each, built
 * from the documented shapes (Cloudflare AI Gateway log objects, LiteLLM's
 * StandardLoggingPayload, OTLP/JSON spans with GenAI attributes). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gwsieve/event.h"
#include "gwsieve/pipeline.h"
#include "gwsieve/preset.h"
#include "suites.h"

#ifndef GWS_TEST_DATA_DIR
#define GWS_TEST_DATA_DIR "tests/data"
#endif

#define CF GWS_PRESET_CLOUDFLARE
#define LL GWS_PRESET_LITELLM
#define OT GWS_PRESET_OTEL_GENAI
#define NONE (-1) /* numeric field absent */

/* ------------------------------------------------------------------------
 * helpers
 * ------------------------------------------------------------------------ */

/* Reads tests/data/presets/<preset>/<file>; caller frees. */
static char *load(gws_preset_t p, const char *file, size_t *len) {
        char path[512];
        FILE *fp;
        char *buf;
        long n;
        snprintf(path, sizeof(path), "%s/presets/%s/%s", GWS_TEST_DATA_DIR,
                 gws_preset_name(p), file);
        fp = fopen(path, "rb");
        ck_assert_msg(fp != NULL, "cannot open %s", path);
        fseek(fp, 0, SEEK_END);
        n = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        buf = malloc((size_t)n + 1);
        ck_assert_ptr_nonnull(buf);
        ck_assert_int_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
        buf[n] = '\0';
        fclose(fp);
        *len = (size_t)n;
        return buf;
}

static int str_is(gws_str_t s, const char *want) {
        if (!want)
                return s.s == NULL;
        return s.s && s.len == strlen(want) && !memcmp(s.s, want, s.len);
}

#define ck_str(S, WANT)                                                        \
        ck_assert_msg(str_is((S), (WANT)), "%s: got \"%.*s\", want \"%s\"",  \
                      #S, (int)(S).len, (S).s ? (S).s : "(null)",            \
                      (WANT) ? (WANT) : "(absent)")

/* ------------------------------------------------------------------------
 * samples: file -> expected event view
 * ------------------------------------------------------------------------ */

typedef struct {
        gws_preset_t p;
        const char *file;
        const char *id, *gw, *provider, *model, *user, *ip, *endpoint,
            *account;
        int64_t ts_ms;
        int status;
        double latency;
        double cost;       /* NONE: absent */
        int64_t tin, tout; /* NONE: absent */
        int success, cached;
        double ttfb;       /* NONE: absent */
        int req, resp;     /* bodies expected in the output */
} sample_t;

static const sample_t samples[] = {
    /* Cloudflare AI Gateway */
    {CF, "openai-chat.json", "01JGZ8Q4W3K2N7R5T9V1X3Z5B7", "prod-gw",
     "openai", "gpt-4o-mini", "u-42", "203.0.113.9", "chat/completions",
     NULL, 1767607200250LL, 200, 812, 0.0000476, 153, 41, 1, 0, NONE, 1, 1},
    {CF, "workers-ai-429.json", "01JGZ8Q4W3K2N7R5T9V1X3Z5B8", "my-gateway",
     "workers-ai", "@cf/meta/llama-3.1-8b-instruct", NULL, NULL,
     "@cf/meta/llama-3.1-8b-instruct", NULL, 1767607201000LL, 429, 35, 0,
     NONE, NONE, 0, 0, NONE, 1, 1},
    {CF, "anthropic-cached.json", "01JGZ8Q4W3K2N7R5T9V1X3Z5B9", "edge-gw",
     "anthropic", "claude-3-5-haiku-20241022", "1001", NULL, "v1/messages",
     NULL, 1767607202000LL, 200, 4, 0.00236, 1200, 350, 1, 1, NONE, 1, 1},
    {CF, "universal-500.json", "01JGZ8Q4W3K2N7R5T9V1X3Z5BA", "cloudflare",
     "google-ai-studio", "gemini-1.5-flash", NULL, NULL,
     "v1beta/models/gemini-1.5-flash:generateContent", NULL,
     1767607203500LL, 500, 2300.5, 0, 0, 0, 0, 0, NONE, 1, 1},
    /* LiteLLM StandardLoggingPayload */
    {LL, "openai-success.json", "chatcmpl-9f8e7d6c-5b4a-4321-9876-0fedcba98765",
     "team-search", "openai", "gpt-4o", "alice", "198.51.100.7", "acompletion",
     "org-acme", 1767607200500LL, 200, 1500, 0.0045, 900, 120, 1, 0, 1500, 1,
     1},
    {LL, "anthropic-stream.json", "chatcmpl-1a2b3c4d", "api.anthropic.com",
     "anthropic", "claude-3-5-sonnet-20241022", "cust-7", "2001:db8::17",
     "acompletion", NULL, 1767607300000LL, 200, 4250, 0.0123, 2000, 400, 1,
     0, 625, 1, 1},
    {LL, "ratelimit-failure.json", "4f3c2b1a-aaaa-4bbb-8ccc-ddddeeeeffff",
     "team-ml", "openai", "gpt-4o", NULL, "10.0.0.5", "completion", NULL,
     1767607400000LL, 429, 250, 0, 0, 0, 0, 0, 250, 1, 0},
    {LL, "timeout-failure.json", "7d6c5b4a-1111-4222-8333-444455556666",
     "myres.openai.azure.com", "azure", "gpt-4o-mini", "bob", "192.0.2.44",
     "acompletion", NULL, 1767607500125LL, 408, 30000, 0, 0, 0, 0, 0, NONE,
     1, 0},
    {LL, "embedding-cached.json", "emb-0001", "litellm", "openai",
     "text-embedding-3-small", NULL, NULL, "aembedding", NULL,
     1767607600000LL, 200, 2, 0, 8, 0, 1, 1, NONE, 1, 1},
    /* OpenTelemetry GenAI spans */
    {OT, "chat-attr-object.json", "eee19b7ec3c1b174", "api.openai.com",
     "openai", "gpt-4o", "bob", "192.0.2.1", "chat", NULL, 1767607200000LL,
     200, 1250, NONE, 120, 30, 1, 0, NONE, 1, 1},
    {OT, "otlp-array-error.json", "b7ad6b7169203331", "gateway-eu",
     "anthropic", "claude-3-haiku-20240307", NULL, NULL, "chat", NULL,
     1767607200000LL, 500, 100, NONE, 77, NONE, 0, 0, NONE, 0, 0},
    {OT, "http-429.json", "00f067aa0ba902b7", "gateway.ai.cloudflare.com",
     "openai", "gpt-4o-mini", "carol", "2001:db8::1", "chat", NULL,
     1767607260123LL, 429, 50, NONE, NONE, NONE, 0, 0, NONE, 1, 0},
    {OT, "embeddings-snake.json", "53995c3f42cd8ad8", "otel", "openai",
     "text-embedding-3-small", NULL, NULL, "embeddings", NULL,
     1767607320000LL, 200, 45, NONE, 8, NONE, 1, 0, NONE, 0, 0},
};
#define N_SAMPLES ((int)(sizeof(samples) / sizeof(samples[0])))

/* Transforms a sample file; returns the native text (caller frees). */
static void transform_file(gws_preset_t p, const char *file, gws_buf_t *out) {
        const char *why, *field;
        size_t len;
        char *in = load(p, file, &len);
        ck_assert_msg(gws_preset_transform(p, in, len, out, &why, &field) ==
                          0,
                      "%s: %s", file, why ? why : "");
        ck_assert_msg(why == NULL, "%s: unexpected note %s", file, why);
        free(in);
}

START_TEST(sample_maps_to_native) {
        const sample_t *t = &samples[_i];
        gws_buf_t out = {0};
        gws_event_t ev;
        gws_ev_errinfo_t info;
        json_t *o;

        transform_file(t->p, t->file, &out);
        ck_assert_msg(gws_event_parse(&ev, out.buf, out.len, NULL, &info) ==
                          GWS_EV_OK,
                      "%s -> %s: %s %s", t->file, out.buf,
                      info.field ? info.field : "",
                      info.what ? info.what : "");
        ck_str(ev.id, t->id);
        ck_str(ev.gateway_id, t->gw);
        ck_str(ev.provider, t->provider);
        ck_str(ev.model, t->model);
        ck_str(ev.user_id, t->user);
        ck_str(ev.client_ip, t->ip);
        ck_str(ev.endpoint, t->endpoint);
        ck_str(ev.account_id, t->account);
        ck_assert_int_eq(ev.ts_ms, t->ts_ms);
        ck_assert_int_eq(ev.status, t->status);
        ck_assert_double_eq_tol(ev.latency_ms, t->latency, 1e-6);
        ck_assert_int_eq(ev.has_cost, t->cost != NONE);
        if (t->cost != NONE)
                ck_assert_double_eq_tol(ev.cost_usd, t->cost, 1e-12);
        ck_assert_int_eq(ev.has_tokens_in, t->tin != NONE);
        if (t->tin != NONE)
                ck_assert_int_eq(ev.tokens_in, t->tin);
        ck_assert_int_eq(ev.has_tokens_out, t->tout != NONE);
        if (t->tout != NONE)
                ck_assert_int_eq(ev.tokens_out, t->tout);
        ck_assert_int_eq(ev.has_ttfb, t->ttfb != NONE);
        if (t->ttfb != NONE)
                ck_assert_double_eq_tol(ev.ttfb_ms, t->ttfb, 1e-6);
        ck_assert_int_eq(ev.success, t->success);
        ck_assert_int_eq(ev.cached, t->cached);
        ck_assert_int_eq(gws_event_is_error(&ev), !t->success);
        gws_event_clear(&ev);

        /* bodies: objects or strings, as the native format says */
        ck_assert_ptr_nonnull(o = json_loadb(out.buf, out.len, 0, NULL));
        ck_assert_int_eq(json_object_get(o, "request") != NULL, t->req);
        ck_assert_int_eq(json_object_get(o, "response") != NULL, t->resp);
        if (t->req)
                ck_assert(json_is_object(json_object_get(o, "request")) ||
                          json_is_string(json_object_get(o, "request")));
        if (t->resp)
                ck_assert(json_is_object(json_object_get(o, "response")) ||
                          json_is_string(json_object_get(o, "response")));
        if ((json_object_get(o, "metadata")))
                ck_assert(json_is_object(json_object_get(o, "metadata")));
        json_decref(o);
        gws_buf_free(&out);
}
END_TEST

/* ------------------------------------------------------------------------
 * carried fields: paths into the native output
 * ------------------------------------------------------------------------ */

/* o at a "/"-separated path of object keys and array indexes. */
static json_t *at(json_t *o, const char *path) {
        char key[128];
        const char *p = path, *e;
        while (o && *p) {
                e = strchr(p, '/');
                if (!e)
                        e = p + strlen(p);
                snprintf(key, sizeof(key), "%.*s", (int)(e - p), p);
                o = json_is_array(o) ? json_array_get(o, strtoul(key, NULL, 10))
                                     : json_object_get(o, key);
                p = *e ? e + 1 : e;
        }
        return o;
}

#define ANY "*"

static const struct {
        gws_preset_t p;
        const char *file, *path;
        const char *want; /* JSON text of the value; ANY: an object or an
                             array; NULL: absent */
} carried[] = {
    /* unknown foreign fields ride along under their own names */
    {CF, "openai-chat.json", "event_id",
     "\"c1d2e3f4-0000-4000-8000-000000000001\""},
    {CF, "openai-chat.json", "model_type", "\"chat\""},
    {CF, "openai-chat.json", "step", "0"},
    {CF, "openai-chat.json", "metadata/team", "\"search\""},
    {CF, "openai-chat.json", "request/messages/0", ANY},
    {CF, "openai-chat.json", "user_agent", "\"OpenAI/Python 1.54.3\""},
    /* metadata that is not JSON is kept as a string */
    {CF, "workers-ai-429.json", "metadata_raw", "\"not json\""},
    {CF, "workers-ai-429.json", "metadata", NULL},
    {CF, "anthropic-cached.json", "metadata/plan", "\"pro\""},
    {CF, "anthropic-cached.json", "response/content/0", ANY},
    {CF, "anthropic-cached.json", "response/stop_reason", "\"end_turn\""},
    /* a universal-endpoint request (an array) is wrapped */
    {CF, "universal-500.json", "request/value", ANY},
    {CF, "universal-500.json", "response",
     "\"upstream connect error or disconnect/reset before headers\""},
    {CF, "universal-500.json", "step", "1"},
    {LL, "openai-success.json", "trace_id",
     "\"b1946ac9-2b3c-4d5e-8f90-123456789abc\""},
    {LL, "openai-success.json", "api_base", "\"https://api.openai.com/v1\""},
    {LL, "openai-success.json", "metadata/user_api_key_alias",
     "\"search-svc\""},
    {LL, "openai-success.json", "model_parameters/max_tokens", "256"},
    {LL, "openai-success.json", "request/messages/0", ANY},
    {LL, "openai-success.json", "response/id", "\"chatcmpl-123\""},
    /* a foreign field with a native name goes under metadata */
    {LL, "anthropic-stream.json", "metadata/user_id",
     "\"not-the-native-one\""},
    {LL, "anthropic-stream.json", "user_id", "\"cust-7\""},
    {LL, "anthropic-stream.json", "model_group", "\"claude-sonnet\""},
    {LL, "ratelimit-failure.json", "error_information/error_class",
     "\"RateLimitError\""},
    {LL, "ratelimit-failure.json", "success", "false"},
    {LL, "embedding-cached.json", "request/messages",
     "\"The quick brown fox\""},
    {LL, "embedding-cached.json", "response/value", ANY},
    {OT, "chat-attr-object.json", "trace_id",
     "\"5b8efff798038103d269b633813fc60c\""},
    {OT, "chat-attr-object.json", "metadata/gen_ai.response.id",
     "\"chatcmpl-xyz\""},
    {OT, "chat-attr-object.json", "metadata/server.port", "443"},
    {OT, "chat-attr-object.json", "metadata/gen_ai.request.model", NULL},
    {OT, "chat-attr-object.json", "parentSpanId", "\"eee19b7ec3c1b173\""},
    {OT, "chat-attr-object.json", "name", "\"chat gpt-4o\""},
    {OT, "chat-attr-object.json", "response/messages", ANY},
    /* OTLP AnyValues are unwrapped; the span status is not the native */
    {OT, "otlp-array-error.json", "metadata/gen_ai.request.max_tokens",
     "1024"},
    {OT, "otlp-array-error.json", "metadata/gen_ai.request.top_p", "0.9"},
    {OT, "otlp-array-error.json", "metadata/gen_ai.request.stream", "true"},
    {OT, "otlp-array-error.json", "metadata/status/message",
     "\"overloaded_error\""},
    {OT, "otlp-array-error.json", "resource/attributes", ANY},
    /* content attributes recorded as JSON strings are parsed */
    {OT, "http-429.json", "request/messages", ANY},
    {OT, "http-429.json", "request/system_instructions", ANY},
    {OT, "http-429.json", "metadata/error.type", "\"429\""},
    {OT, "embeddings-snake.json", "metadata/gen_ai.embeddings.dimension.count",
     "1536"},
};

START_TEST(fields_are_carried) {
        gws_buf_t out = {0};
        json_t *o, *v, *want;
        transform_file(carried[_i].p, carried[_i].file, &out);
        ck_assert_ptr_nonnull(o = json_loadb(out.buf, out.len, 0, NULL));
        v = at(o, carried[_i].path);
        if (!carried[_i].want) {
                ck_assert_msg(v == NULL, "%s present: %s", carried[_i].path,
                              out.buf);
        } else if (!strcmp(carried[_i].want, ANY)) {
                ck_assert_msg(json_is_array(v) || json_is_object(v), "%s: %s",
                              carried[_i].path, out.buf);
        } else {
                ck_assert_ptr_nonnull(want =
                                          json_loads(carried[_i].want,
                                                     JSON_DECODE_ANY, NULL));
                ck_assert_msg(v && json_equal(v, want), "%s: %s",
                              carried[_i].path, out.buf);
                json_decref(want);
        }
        json_decref(o);
        gws_buf_free(&out);
}
END_TEST

/* ------------------------------------------------------------------------
 * errors: rejected messages, left-out values, native reasons
 * ------------------------------------------------------------------------ */

#define CF_OK                                                                  \
        "\"id\":\"a\",\"created_at\":\"2026-01-05T10:00:00Z\",\"provider\":"  \
        "\"openai\",\"path\":\"chat/completions\",\"duration\":12"
#define LL_OK                                                                  \
        "\"id\":\"a\",\"startTime\":1767607200,\"endTime\":1767607201,"       \
        "\"custom_llm_provider\":\"openai\""
#define OT_OK                                                                  \
        "\"spanId\":\"a\",\"startTimeUnixNano\":\"1767607200000000000\","     \
        "\"endTimeUnixNano\":\"1767607200500000000\""

static const struct {
        gws_preset_t p;
        const char *in;
        int len;            /* -1: strlen */
        int rc;             /* gws_preset_transform */
        const char *why;    /* substring of *why, or NULL for none */
        const char *field;  /* *field */
        gws_ev_err_t err;   /* native parse of the output (rc 0) */
        const char *nfield; /* the field the native parser names */
} errors[] = {
    /* not a JSON object: rejected, the native parser names the reason */
    {CF, "{x", -1, -1, "not JSON", NULL, 0, NULL},
    {CF, "[1,2]", -1, -1, "not a JSON object", NULL, 0, NULL},
    {LL, "\"str\"", -1, -1, "not a JSON object", NULL, 0, NULL},
    {LL, "", 0, -1, "not JSON", NULL, 0, NULL},
    {OT, "\xff\xfe{}", -1, -1, "not JSON", NULL, 0, NULL},
    {OT, "{\"a\":1} {}", -1, -1, "not JSON", NULL, 0, NULL},
    {OT, "null", -1, -1, "not", NULL, 0, NULL},
    /* a missing model: the native validation names it */
    {CF, "{" CF_OK ",\"status_code\":200}", -1, 0, NULL, NULL,
     GWS_EV_ERR_MISSING_FIELD, "model"},
    {LL, "{" LL_OK ",\"status\":\"success\"}", -1, 0, NULL, NULL,
     GWS_EV_ERR_MISSING_FIELD, "model"},
    {OT, "{" OT_OK ",\"attributes\":{\"gen_ai.provider.name\":\"openai\"}}",
     -1, 0, NULL, NULL, GWS_EV_ERR_MISSING_FIELD, "model"},
    /* wrong types are passed on under the native name */
    {CF, "{" CF_OK ",\"model\":\"m\",\"status_code\":\"abc\"}", -1, 0, NULL,
     NULL, GWS_EV_ERR_WRONG_TYPE, "status"},
    {CF, "{" CF_OK ",\"model\":42,\"status_code\":200}", -1, 0, NULL, NULL,
     GWS_EV_ERR_WRONG_TYPE, "model"},
    {CF, "{" CF_OK ",\"model\":\"m\",\"status_code\":200,\"cost\":\"x\"}",
     -1, 0, NULL, NULL, GWS_EV_ERR_WRONG_TYPE, "cost_usd"},
    {CF, "{" CF_OK ",\"model\":\"m\",\"status_code\":200,\"success\":1}", -1,
     0, NULL, NULL, GWS_EV_ERR_WRONG_TYPE, "success"},
    {LL, "{" LL_OK ",\"model\":\"m\",\"status\":\"success\","
         "\"prompt_tokens\":\"many\"}",
     -1, 0, NULL, NULL, GWS_EV_ERR_WRONG_TYPE, "tokens_in"},
    {LL, "{" LL_OK ",\"model\":\"m\",\"status\":\"success\","
         "\"completion_tokens\":12.5}",
     -1, 0, NULL, NULL, GWS_EV_ERR_WRONG_TYPE, "tokens_out"},
    {OT, "{" OT_OK ",\"attributes\":{\"gen_ai.provider.name\":\"p\","
         "\"gen_ai.request.model\":\"m\",\"gen_ai.usage.input_tokens\":true}}",
     -1, 0, NULL, NULL, GWS_EV_ERR_WRONG_TYPE, "tokens_in"},
    {OT, "{\"spanId\":7,\"startTimeUnixNano\":1,\"endTimeUnixNano\":2,"
         "\"attributes\":{\"gen_ai.provider.name\":\"p\","
         "\"gen_ai.request.model\":\"m\"}}",
     -1, 0, NULL, NULL, GWS_EV_ERR_WRONG_TYPE, "id"},
    {CF, "{" CF_OK ",\"model\":\"m\",\"status_code\":200,"
         "\"created_at\":\"last tuesday\"}",
     -1, 0, NULL, NULL, GWS_EV_ERR_BAD_VALUE, "ts"},
    {CF, "{" CF_OK ",\"model\":\"m\",\"status_code\":99}", -1, 0, NULL, NULL,
     GWS_EV_ERR_BAD_VALUE, "status"},
    {CF, "{" CF_OK ",\"model\":\"m\",\"status_code\":200,\"duration\":-1}",
     -1, 0, NULL, NULL, GWS_EV_ERR_BAD_VALUE, "latency_ms"},
    /* values that cannot be computed with are left out, with a note */
    {LL, "{\"id\":\"a\",\"startTime\":\"yesterday\",\"endTime\":1,"
         "\"custom_llm_provider\":\"p\",\"model\":\"m\",\"status\":"
         "\"success\"}",
     -1, 0, "startTime is not a number", "startTime",
     GWS_EV_ERR_MISSING_FIELD, "ts"},
    {LL, "{" LL_OK ",\"model\":\"m\",\"status\":\"pending\"}", -1, 0,
     "status", "status", GWS_EV_ERR_MISSING_FIELD, "status"},
    {OT, "{\"spanId\":\"a\",\"startTimeUnixNano\":\"-5\","
         "\"endTimeUnixNano\":\"9\",\"attributes\":{\"gen_ai.system\":\"p\","
         "\"gen_ai.request.model\":\"m\"}}",
     -1, 0, "nanoseconds", "startTimeUnixNano", GWS_EV_ERR_MISSING_FIELD,
     "ts"},
    {OT, "{" OT_OK ",\"attributes\":5}", -1, 0, "attributes", "attributes",
     GWS_EV_ERR_MISSING_FIELD, "provider"},
    /* an end before the start gives no latency: said, not left unsaid */
    {LL, "{\"id\":\"a\",\"startTime\":1767607201,\"endTime\":1767607200,"
         "\"custom_llm_provider\":\"p\",\"model\":\"m\",\"status\":"
         "\"success\"}",
     -1, 0, "endTime is before startTime", "endTime",
     GWS_EV_ERR_MISSING_FIELD, "latency_ms"},
    {OT, "{\"spanId\":\"a\",\"startTimeUnixNano\":\"1767607200500000000\","
         "\"endTimeUnixNano\":\"1767607200000000000\",\"attributes\":{"
         "\"gen_ai.system\":\"p\",\"gen_ai.request.model\":\"m\"}}",
     -1, 0, "endTimeUnixNano is before startTimeUnixNano", "endTimeUnixNano",
     GWS_EV_ERR_MISSING_FIELD, "latency_ms"},
    /* a required field absent in the foreign object */
    {LL, "{\"id\":\"a\",\"endTime\":1767607201,\"custom_llm_provider\":"
         "\"p\",\"model\":\"m\",\"status\":\"success\"}",
     -1, 0, NULL, NULL, GWS_EV_ERR_MISSING_FIELD, "ts"},
    {CF, "{\"created_at\":1767607200,\"provider\":\"p\",\"model\":\"m\","
         "\"status_code\":200,\"duration\":1}",
     -1, 0, NULL, NULL, GWS_EV_ERR_MISSING_FIELD, "id"},
    /* numbers beyond int64 are valid JSON: still transformed */
    {CF, "{" CF_OK ",\"model\":\"m\",\"status_code\":200,"
         "\"huge\":123456789012345678901234567890}",
     -1, 0, NULL, NULL, GWS_EV_OK, NULL},
    {CF, "{" CF_OK ",\"model\":\"m\",\"status_code\":200,"
         "\"tokens_in\":123456789012345678901234567890}",
     -1, 0, NULL, NULL, GWS_EV_ERR_BAD_VALUE, "tokens_in"}, /* too large */
    /* integral reals and digit strings are counts */
    {CF, "{" CF_OK ",\"model\":\"m\",\"status_code\":\"200\","
         "\"tokens_in\":12.0,\"tokens_out\":\"7\"}",
     -1, 0, NULL, NULL, GWS_EV_OK, NULL},
    /* RFC 3339 start times; HTTP status as a string attribute */
    {LL, "{\"id\":\"a\",\"startTime\":\"2026-01-05T10:00:00Z\","
         "\"response_time\":0.5,\"custom_llm_provider\":\"p\",\"model\":"
         "\"m\",\"status\":\"failure\",\"error_information\":"
         "{\"error_class\":\"litellm.RateLimitError\"}}",
     -1, 0, NULL, NULL, GWS_EV_OK, NULL},
    {OT, "{" OT_OK ",\"attributes\":{\"gen_ai.system\":\"p\","
         "\"gen_ai.request.model\":\"m\","
         "\"http.response.status_code\":\"503\"}}",
     -1, 0, NULL, NULL, GWS_EV_OK, NULL},
    /* NUL inside a string is valid JSON */
    {OT, "{" OT_OK ",\"attributes\":{\"gen_ai.system\":\"p\","
         "\"gen_ai.request.model\":\"m\",\"x\":\"a\\u0000b\"}}",
     -1, 0, NULL, NULL, GWS_EV_OK, NULL},
};

START_TEST(errors_are_precise) {
        gws_buf_t out = {0};
        const char *why = "unset", *field = "unset";
        gws_event_t ev;
        gws_ev_errinfo_t info;
        gws_ev_err_t err;
        size_t len = errors[_i].len < 0 ? strlen(errors[_i].in)
                                        : (size_t)errors[_i].len;
        int rc = gws_preset_transform(errors[_i].p, errors[_i].in, len, &out,
                                      &why, &field);
        ck_assert_msg(rc == errors[_i].rc, "%s: rc %d (%s)", errors[_i].in,
                      rc, why ? why : "");
        if (errors[_i].why)
                ck_assert_msg(why && strstr(why, errors[_i].why),
                              "%s: why \"%s\"", errors[_i].in,
                              why ? why : "(null)");
        else
                ck_assert_ptr_null(why);
        if (errors[_i].field)
                ck_assert_str_eq(field, errors[_i].field);
        else
                ck_assert_ptr_null(field);
        if (rc == 0) {
                err = gws_event_parse(&ev, out.buf, out.len, NULL, &info);
                ck_assert_msg(err == errors[_i].err, "%s -> %s: %s %s %s",
                              errors[_i].in, out.buf, gws_ev_err2str(err),
                              info.field ? info.field : "",
                              info.what ? info.what : "");
                if (errors[_i].nfield)
                        ck_assert_str_eq(info.field, errors[_i].nfield);
                gws_event_clear(&ev);
        }
        gws_buf_free(&out);
}
END_TEST

/* ------------------------------------------------------------------------
 * derived values: epochs, statuses, durations
 * ------------------------------------------------------------------------ */

#define CF_BASE                                                                \
        "\"id\":\"a\",\"provider\":\"p\",\"model\":\"m\",\"status_code\":200," \
        "\"duration\":1"
#define LL_BASE "\"id\":\"a\",\"custom_llm_provider\":\"p\",\"model\":\"m\""
#define OT_BASE                                                                \
        "\"spanId\":\"a\",\"startTimeUnixNano\":1767607200000000000,"          \
        "\"endTimeUnixNano\":1767607200000000000"
#define OT_ATTRS "\"gen_ai.system\":\"p\",\"gen_ai.request.model\":\"m\""

static const struct {
        gws_preset_t p;
        const char *in;
        int64_t ts_ms;
        int status;
        double latency;
} derived[] = {
    /* created_at: RFC 3339 or epoch s / ms / us / ns, numbers or digits */
    {CF, "{" CF_BASE ",\"created_at\":1767607200}", 1767607200000LL, 200, 1},
    {CF, "{" CF_BASE ",\"created_at\":1767607200.25}", 1767607200250LL, 200,
     1},
    {CF, "{" CF_BASE ",\"created_at\":1767607200250}", 1767607200250LL, 200,
     1},
    {CF, "{" CF_BASE ",\"created_at\":\"1767607200250000\"}",
     1767607200250LL, 200, 1},
    {CF, "{" CF_BASE ",\"created_at\":1767607200250000000}",
     1767607200250LL, 200, 1},
    {CF, "{" CF_BASE ",\"created_at\":\"2026-01-05T11:00:00.250+01:00\"}",
     1767607200250LL, 200, 1},
    /* Cloudflare's status_code is optional in its API, success is not:
     * without the code, success decides (it was dead-lettered as a
     * missing status) */
    {CF, "{\"id\":\"a\",\"provider\":\"p\",\"model\":\"m\","
         "\"duration\":1,\"created_at\":1767607200,\"success\":true}",
     1767607200000LL, 200, 1},
    {CF, "{\"id\":\"a\",\"provider\":\"p\",\"model\":\"m\","
         "\"duration\":1,\"created_at\":1767607200,\"success\":false}",
     1767607200000LL, 500, 1},
    /* LiteLLM payloads older than their status field: an error decides
     * (error_information's code or class, else error_str), else success */
    {LL, "{" LL_BASE ",\"startTime\":1767607200,\"endTime\":1767607200.5}",
     1767607200000LL, 200, 500},
    {LL, "{" LL_BASE ",\"startTime\":1767607200,\"endTime\":1767607200.5,"
         "\"error_str\":\"litellm.APIConnectionError: reset\"}",
     1767607200000LL, 500, 500},
    {LL, "{" LL_BASE ",\"startTime\":1767607200,\"endTime\":1767607200.5,"
         "\"error_information\":{\"error_class\":\"RateLimitError\"}}",
     1767607200000LL, 429, 500},
    /* failure status: error_code, else the exception class, else 500 */
    {LL, "{" LL_BASE ",\"startTime\":1767607200,\"endTime\":1767607200.5,"
         "\"status\":\"failure\",\"error_information\":{\"error_code\":503}}",
     1767607200000LL, 503, 500},
    {LL, "{" LL_BASE ",\"startTime\":1767607200,\"endTime\":1767607200.5,"
         "\"status\":\"failure\",\"error_information\":{\"error_code\":"
         "\"bad\",\"error_class\":\"litellm.AuthenticationError\"}}",
     1767607200000LL, 401, 500},
    {LL, "{" LL_BASE ",\"startTime\":1767607200,\"endTime\":1767607200.5,"
         "\"status\":\"failure\",\"error_information\":{\"error_class\":"
         "\"ContextWindowExceededError\"}}",
     1767607200000LL, 400, 500},
    {LL, "{" LL_BASE ",\"startTime\":1767607200,\"endTime\":1767607200.5,"
         "\"status\":\"failure\",\"error_information\":{\"error_class\":"
         "\"APIConnectionError\"}}",
     1767607200000LL, 500, 500},
    {LL, "{" LL_BASE ",\"startTime\":1767607200,\"endTime\":1767607200.5,"
         "\"status\":\"failure\"}",
     1767607200000LL, 500, 500},
    /* RFC 3339 start time; response_time when endTime is unusable */
    {LL, "{" LL_BASE ",\"startTime\":\"2026-01-05T10:00:00.5Z\","
         "\"response_time\":0.75,\"status\":\"success\"}",
     1767607200500LL, 200, 750},
    {LL, "{" LL_BASE ",\"startTime\":\"1767607200.5\",\"endTime\":1,"
         "\"response_time\":\"0.75\",\"status\":\"success\"}",
     1767607200500LL, 200, 750},
    /* span status: http status, else error.type / ERROR -> 500, else 200 */
    {OT, "{" OT_BASE ",\"attributes\":{" OT_ATTRS
         ",\"http.response.status_code\":\"503\"}}",
     1767607200000LL, 503, 0},
    {OT, "{" OT_BASE ",\"attributes\":{" OT_ATTRS
         ",\"error.type\":\"timeout\"}}",
     1767607200000LL, 500, 0},
    /* error.type without http.response.status_code: an HTTP status as
     * text (the HTTP conventions' value), or the exception class the
     * instrumentations record (openai-v2: type(error).__qualname__) */
    {OT, "{" OT_BASE ",\"attributes\":{" OT_ATTRS
         ",\"error.type\":\"429\"}}",
     1767607200000LL, 429, 0},
    {OT, "{" OT_BASE ",\"status\":{\"code\":2},\"attributes\":{" OT_ATTRS
         ",\"error.type\":\"RateLimitError\"}}",
     1767607200000LL, 429, 0},
    {OT, "{" OT_BASE ",\"status\":{\"code\":2},\"attributes\":{" OT_ATTRS
         ",\"error.type\":\"APITimeoutError\"}}",
     1767607200000LL, 408, 0},
    {OT, "{" OT_BASE ",\"status\":{\"code\":\"STATUS_CODE_ERROR\"},"
         "\"attributes\":{" OT_ATTRS "}}",
     1767607200000LL, 500, 0},
    {OT, "{" OT_BASE ",\"status\":{\"code\":1},\"attributes\":{" OT_ATTRS
         "}}",
     1767607200000LL, 200, 0},
    /* nanoseconds as strings are exact: 1 ns of latency survives */
    {OT, "{\"spanId\":\"a\",\"startTimeUnixNano\":\"1767607200999999999\","
         "\"endTimeUnixNano\":\"1767607201000000000\",\"attributes\":{"
         OT_ATTRS "}}",
     1767607200999LL, 200, 1e-6},
};

/* LiteLLM's end_user is whatever the caller passed as "user": a number
 * too (an account number). It was dropped, neither mapped to user_id nor
 * carried, so the user's heavy-hitter and token detectors never saw it. */
START_TEST(numeric_end_user_kept) {
        static const char in[] =
            "{" LL_BASE ",\"startTime\":1767607200,\"endTime\":1767607200.5,"
            "\"status\":\"success\",\"end_user\":7}";
        gws_buf_t out = {0};
        const char *why, *field;
        gws_event_t ev;
        gws_ev_errinfo_t info;
        ck_assert_int_eq(gws_preset_transform(LL, in, strlen(in), &out, &why,
                                              &field),
                         0);
        ck_assert_int_eq(gws_event_parse(&ev, out.buf, out.len, NULL, &info),
                         GWS_EV_OK);
        ck_assert_msg(ev.user_id.len == 1 && ev.user_id.s[0] == '7',
                      "end_user 7 -> %s", out.buf);
        gws_event_clear(&ev);
        gws_buf_free(&out);
}
END_TEST

START_TEST(values_are_derived) {
        gws_buf_t out = {0};
        const char *why, *field;
        gws_event_t ev;
        gws_ev_errinfo_t info;
        ck_assert_int_eq(gws_preset_transform(derived[_i].p, derived[_i].in,
                                              strlen(derived[_i].in), &out,
                                              &why, &field),
                         0);
        ck_assert_msg(gws_event_parse(&ev, out.buf, out.len, NULL, &info) ==
                          GWS_EV_OK,
                      "%s -> %s: %s %s", derived[_i].in, out.buf,
                      info.field ? info.field : "",
                      info.what ? info.what : "");
        ck_assert_int_eq(ev.ts_ms, derived[_i].ts_ms);
        ck_assert_int_eq(ev.status, derived[_i].status);
        ck_assert_double_eq_tol(ev.latency_ms, derived[_i].latency, 1e-9);
        gws_event_clear(&ev);
        gws_buf_free(&out);
}
END_TEST

/* ------------------------------------------------------------------------
 * names, native round trip
 * ------------------------------------------------------------------------ */

START_TEST(names) {
        static const char *const all[] = {"native", "cloudflare", "litellm",
                                          "otel-genai"};
        gws_preset_t p = GWS_PRESET_LITELLM;
        gws_buf_t out = {0};
        const char *why, *field;
        int i;
        for (i = 0; i < GWS_PRESET__CNT; i++) {
                ck_assert_int_eq(gws_preset_from_name(all[i], &p), 0);
                ck_assert_int_eq(p, i);
                ck_assert_str_eq(gws_preset_name(p), all[i]);
        }
        ck_assert_int_eq(gws_preset_from_name("splunk", &p), -1);
        ck_assert_int_eq(gws_preset_from_name("Cloudflare", &p), -1);
        ck_assert_int_eq(gws_preset_from_name("", &p), -1);
        ck_assert_int_eq(gws_preset_from_name(NULL, &p), -1);
        ck_assert_int_eq(p, GWS_PRESET__CNT - 1); /* unchanged */
        ck_assert_str_eq(gws_preset_name(GWS_PRESET__CNT), "unknown");
        ck_assert_str_eq(gws_preset_name((gws_preset_t)-1), "unknown");
        ck_assert_int_eq(gws_preset_transform(GWS_PRESET__CNT, "{}", 2, &out,
                                              &why, &field),
                         -1);
        ck_assert_ptr_nonnull(why);
        gws_buf_free(&out);
}
END_TEST

START_TEST(native_is_copied) {
        static const char ev_txt[] =
            "{\"id\":\"n1\",\"ts\":\"2026-01-05T10:00:00Z\",\"gateway_id\":"
            "\"g\",\"provider\":\"openai\",\"model\":\"gpt-4o\",\"status\":"
            "200,\"latency_ms\":12.5,\"x\":{\"y\":[1,2]}}";
        gws_buf_t out = {0};
        const char *why, *field;
        gws_event_t ev;
        gws_ev_errinfo_t info;

        /* appended after what the buffer holds, byte for byte */
        ck_assert_int_eq(gws_buf_puts(&out, "prefix"), 0);
        ck_assert_int_eq(gws_preset_transform(GWS_PRESET_NATIVE, ev_txt,
                                              sizeof(ev_txt) - 1, &out, &why,
                                              &field),
                         0);
        ck_assert_ptr_null(why);
        ck_assert_ptr_null(field);
        ck_assert_int_eq(out.len, 6 + sizeof(ev_txt) - 1);
        ck_assert_int_eq(memcmp(out.buf + 6, ev_txt, sizeof(ev_txt) - 1), 0);
        ck_assert_int_eq(gws_event_parse(&ev, out.buf + 6, out.len - 6, NULL,
                                         &info),
                         GWS_EV_OK);
        ck_str(ev.id, "n1");
        gws_event_clear(&ev);

        /* not validated: even bytes that are not JSON are copied */
        gws_buf_reset(&out);
        ck_assert_int_eq(gws_preset_transform(GWS_PRESET_NATIVE, "\xff{\0x",
                                              4, &out, &why, &field),
                         0);
        ck_assert_int_eq(out.len, 4);
        ck_assert_int_eq(memcmp(out.buf, "\xff{\0x", 4), 0);
        gws_buf_free(&out);
}
END_TEST

/* ------------------------------------------------------------------------
 * pipeline: input.format end to end
 * ------------------------------------------------------------------------ */

typedef struct {
        int dlq, kept;
        char reason[32];
} cnt_t;

static int sink(void *opaque, gws_sink_t s, const char *key, size_t keylen,
                const char *val, size_t len) {
        cnt_t *c = opaque;
        const char *r;
        (void)key;
        (void)keylen;
        if (s == GWS_SINK_DLQ) {
                c->dlq++;
                if ((r = memmem(val, len, "\"reason\":\"", 10)))
                        sscanf(r + 10, "%31[^\"]", c->reason);
        } else if (s == GWS_SINK_RETAINED) {
                c->kept++;
        }
        return 0;
}

START_TEST(pipeline_with_preset) {
        char err[256];
        gws_config_t *cfg = gws_config_new();
        gws_pipeline_t *pl;
        gws_detect_t *det;
        cnt_t c = {0, 0, ""};
        const char *missing = "{\"id\":\"x\",\"startTime\":1,\"status\":"
                              "\"success\",\"custom_llm_provider\":\"p\"}";
        size_t len;
        char *good = load(LL, "openai-success.json", &len);
        gws_input_t in = {good, len, NULL, 0, "gw.raw", 0, 0, 0, 0};

        ck_assert_int_eq(gws_config_set(cfg, "input.format", "litellm", err,
                                        sizeof(err)),
                         0);
        gws_config_set(cfg, "filter.normal_sample_rate", "1", err,
                       sizeof(err));
        ck_assert_ptr_nonnull(pl = gws_pipeline_new(cfg, err, sizeof(err)));
        det = gws_detect_new(cfg, 0);
        ck_assert_int_eq(gws_pipeline_process(pl, det, &in, sink, &c),
                         GWS_OUT_KEPT);
        in.value = missing;
        in.len = strlen(missing);
        ck_assert_int_eq(gws_pipeline_process(pl, det, &in, sink, &c),
                         GWS_OUT_DLQ);
        ck_assert_str_eq(c.reason, "missing_field"); /* model */
        in.value = "\xff\xfe";
        in.len = 2;
        ck_assert_int_eq(gws_pipeline_process(pl, det, &in, sink, &c),
                         GWS_OUT_DLQ);
        ck_assert_str_eq(c.reason, "invalid_utf8");
        ck_assert_int_eq(c.kept, 1);
        ck_assert_int_eq(gws_config_set(cfg, "input.format", "splunk", err,
                                        sizeof(err)),
                         -1);
        gws_detect_destroy(det);
        gws_pipeline_destroy(pl);
        gws_config_destroy(cfg);
        free(good);
}
END_TEST

/* A message within limits.max_event_bytes is not too large because its
 * conversion is longer: jansson writes every real with 17 significant
 * digits (0.1 -> 0.10000000000000001), so an embedding response of short
 * reals more than doubles. The limit is on the message as received. */
START_TEST(limit_is_on_the_message) {
        char err[256];
        gws_config_t *cfg = gws_config_new();
        gws_pipeline_t *pl;
        gws_detect_t *det;
        cnt_t c = {0, 0, ""};
        gws_buf_t msg = {0};
        gws_input_t in = {NULL, 0, NULL, 0, "gw.raw", 0, 0, 0, 0};
        int i;

        gws_buf_puts(&msg, "{" LL_OK ",\"model\":\"text-embedding-3-small\","
                           "\"status\":\"success\",\"call_type\":"
                           "\"aembedding\",\"response\":{\"data\":[{"
                           "\"embedding\":[0.1");
        for (i = 1; i < 200; i++)
                gws_buf_puts(&msg, ",0.1");
        gws_buf_puts(&msg, "]}]}}");
        ck_assert_int_eq(gws_config_set(cfg, "input.format", "litellm", err,
                                        sizeof(err)),
                         0);
        gws_config_set(cfg, "filter.normal_sample_rate", "1", err,
                       sizeof(err));
        ck_assert_int_eq(gws_config_set(cfg, "limits.max_event_bytes", "2048",
                                        err, sizeof(err)),
                         0);
        ck_assert_int_lt(msg.len, 2048);
        ck_assert_ptr_nonnull(pl = gws_pipeline_new(cfg, err, sizeof(err)));
        det = gws_detect_new(cfg, 0);
        in.value = msg.buf;
        in.len = msg.len;
        ck_assert_msg(gws_pipeline_process(pl, det, &in, sink, &c) ==
                          GWS_OUT_KEPT,
                      "a %zu-byte message went to the DLQ: %s", msg.len,
                      c.reason);
        ck_assert_int_eq(c.kept, 1);
        gws_detect_destroy(det);
        gws_pipeline_destroy(pl);
        gws_config_destroy(cfg);
        gws_buf_free(&msg);
}
END_TEST

/* A dead letter of a preset event names the foreign field the bad or
 * missing native one comes from: a LiteLLM user looks for prompt_tokens,
 * not tokens_in, in their logs. */
static const struct {
        gws_preset_t p;
        const char *in, *field, *source;
} dlq_sources[] = {
    {LL, "{" LL_OK ",\"model\":\"m\",\"status\":\"success\","
         "\"prompt_tokens\":\"many\"}",
     "tokens_in", "prompt_tokens"},
    {LL, "{" LL_OK ",\"model\":\"m\",\"status\":\"success\","
         "\"response_cost\":-0.5}",
     "cost_usd", "response_cost"},
    {LL, "{\"id\":\"a\",\"startTime\":1767607200,\"endTime\":1767607201,"
         "\"model\":\"m\",\"status\":\"success\"}",
     "provider", "custom_llm_provider"},
    {CF, "{" CF_OK ",\"model\":\"m\",\"status_code\":\"abc\"}", "status",
     "status_code"},
    {CF, "{\"id\":\"a\",\"created_at\":\"2026-01-05T10:00:00Z\",\"provider\":"
         "\"openai\",\"model\":\"m\",\"status_code\":200,\"duration\":-1}",
     "latency_ms", "duration"},
    {OT, "{" OT_OK ",\"attributes\":{\"gen_ai.provider.name\":\"p\","
         "\"gen_ai.request.model\":\"m\",\"gen_ai.usage.input_tokens\":true}}",
     "tokens_in", "gen_ai.usage.input_tokens"},
};

static int dlq_text(void *opaque, gws_sink_t s, const char *key,
                    size_t keylen, const char *val, size_t len) {
        gws_buf_t *b = opaque;
        (void)key;
        (void)keylen;
        if (s == GWS_SINK_DLQ)
                gws_buf_append(b, val, len);
        return 0;
}

START_TEST(dlq_names_the_source_field) {
        char err[256];
        gws_config_t *cfg = gws_config_new();
        gws_pipeline_t *pl;
        gws_buf_t dlq = {0};
        gws_input_t in = {dlq_sources[_i].in, strlen(dlq_sources[_i].in),
                          NULL, 0, "gw.raw", 0, 0, 0, 0};
        json_t *o;
        const char *detail;

        ck_assert_int_eq(
            gws_config_set(cfg, "input.format",
                           gws_preset_name(dlq_sources[_i].p), err,
                           sizeof(err)),
            0);
        ck_assert_ptr_nonnull(pl = gws_pipeline_new(cfg, err, sizeof(err)));
        ck_assert_int_eq(gws_pipeline_process(pl, NULL, &in, dlq_text, &dlq),
                         GWS_OUT_DLQ);
        ck_assert_ptr_nonnull(o = json_loadb(dlq.buf, dlq.len, 0, NULL));
        ck_assert_str_eq(json_string_value(json_object_get(o, "field")),
                         dlq_sources[_i].field);
        detail = json_string_value(json_object_get(o, "detail"));
        ck_assert_msg(detail && strstr(detail, dlq_sources[_i].source),
                      "detail \"%s\" does not name %s", detail,
                      dlq_sources[_i].source);
        json_decref(o);
        gws_buf_free(&dlq);
        gws_pipeline_destroy(pl);
        gws_config_destroy(cfg);
}
END_TEST

/* A LiteLLM event with a number beyond the range of a double (valid
 * JSON: 1e400) cannot be read by the preset's parser (jansson). The
 * native parser then read the foreign object as if it were native and
 * dead-lettered it for a missing gateway_id, which it does not lack. */
START_TEST(unreadable_number_is_said) {
        char err[256];
        gws_config_t *cfg = gws_config_new();
        gws_pipeline_t *pl;
        gws_buf_t dlq = {0};
        size_t len;
        char *good = load(LL, "openai-success.json", &len);
        const char *p = strstr(good, "\"temperature\": 0.2");
        gws_buf_t msg = {0};
        gws_input_t in = {NULL, 0, NULL, 0, "gw.raw", 0, 0, 0, 0};
        json_t *o;
        const char *reason, *detail;

        ck_assert_ptr_nonnull(p); /* "temperature": 0.2 -> 1e400 */
        p += strlen("\"temperature\": ");
        gws_buf_append(&msg, good, (size_t)(p - good));
        gws_buf_puts(&msg, "1e400");
        gws_buf_append(&msg, p + 3, len - (size_t)(p + 3 - good));
        in.value = msg.buf;
        in.len = msg.len;
        ck_assert_int_eq(gws_config_set(cfg, "input.format", "litellm", err,
                                        sizeof(err)),
                         0);
        ck_assert_ptr_nonnull(pl = gws_pipeline_new(cfg, err, sizeof(err)));
        ck_assert_int_eq(gws_pipeline_process(pl, NULL, &in, dlq_text, &dlq),
                         GWS_OUT_DLQ);
        ck_assert_ptr_nonnull(o = json_loadb(dlq.buf, dlq.len, 0, NULL));
        reason = json_string_value(json_object_get(o, "reason"));
        detail = json_string_value(json_object_get(o, "detail"));
        ck_assert_msg(!strcmp(reason, "invalid_value") && strstr(detail,
                                                                "range"),
                      "reason %s, detail \"%s\"", reason, detail);
        json_decref(o);
        gws_buf_free(&dlq);
        gws_buf_free(&msg);
        gws_pipeline_destroy(pl);
        gws_config_destroy(cfg);
        free(good);
}
END_TEST

/* ------------------------------------------------------------------------
 * robustness: random and mutated input
 * ------------------------------------------------------------------------ */

#define ROBUST_ITERS 7000 /* per foreign preset: 21k inputs in all */

static uint64_t rng_state;

static uint32_t rnd(void) { /* xorshift64*, fixed seed: reproducible */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

/* Values swapped into samples: every JSON type and the edge cases the
 * mappings read (numeric strings, OTLP AnyValues, huge and negative). */
static const char *const pool[] = {
    "null", "true", "false", "0", "-1", "1.5", "1e308", "-1e308",
    "9223372036854775807", "123456789012345678901234567890", "\"\"",
    "\"abc\"", "\"123\"", "\"-5\"", "\"1e3\"", "\"0x1f\"", "\"nan\"",
    "\"2026-01-05T10:00:00Z\"", "\"a\\u0000b\"", "[]", "{}", "[1,\"x\",{}]",
    "{\"stringValue\":\"s\"}", "{\"intValue\":\"99999999999999999999\"}",
    "{\"doubleValue\":\"NaN\"}", "{\"arrayValue\":{\"values\":[{}]}}",
    "{\"kvlistValue\":{\"values\":[{\"key\":\"k\",\"value\":{}}]}}",
    "[{\"key\":\"gen_ai.system\",\"value\":{\"intValue\":\"x\"}},{\"key\":1}]",
    "{\"code\":2}", "{\"error_code\":\"429\",\"error_class\":7}",
    "\"{\\\"user_id\\\":5,\\\"gateway_id\\\":[]}\"", "\"http://[::1\"",
    "\"https://u@h:1/p\"", "\"success\"", "\"failure\""};

/* One mutated input in *buf (malloc'd), from one of the seeds. */
static size_t mutate(char **buf, char *const *seed, const size_t *seedlen,
                     int nseed) {
        static const char *const toks[] = {
            "{", "}", "[", "]", ",", ":", "\"", "null", "-1", "1e999",
            "\\u0000", "\xc3", "\xed\xa0\x80", "99999999999999999999999",
            "\"attributes\":", "\"metadata\":\"{\"", "{\"key\":"};
        int s = (int)(rnd() % (uint32_t)nseed), m = (int)(rnd() % 6), i;
        size_t len = seedlen[s], pos, n;
        char *b;
        b = malloc(len + 300);
        memcpy(b, seed[s], len);
        switch (m) {
        case 0: /* flip bytes */
                for (i = 0, n = 1 + rnd() % 8; len && i < (int)n; i++)
                        b[rnd() % len] = (char)rnd();
                break;
        case 1: /* truncate */
                len = len ? rnd() % len : 0;
                break;
        case 2: /* insert a token */
                pos = len ? rnd() % len : 0;
                {
                        const char *tk =
                            toks[rnd() % (sizeof(toks) / sizeof(toks[0]))];
                        n = strlen(tk);
                        memmove(b + pos + n, b + pos, len - pos);
                        memcpy(b + pos, tk, n);
                        len += n;
                }
                break;
        case 3: /* splice two seeds */
        {
                int s2 = (int)(rnd() % (uint32_t)nseed);
                size_t cut = len ? rnd() % len : 0,
                       cut2 = seedlen[s2] ? rnd() % seedlen[s2] : 0;
                n = seedlen[s2] - cut2;
                if (n > 299)
                        n = 299;
                memcpy(b + cut, seed[s2] + cut2, n);
                len = cut + n;
                break;
        }
        case 4: /* random bytes, mostly starting like an object */
                len = rnd() % 256;
                for (i = 0; i < (int)len; i++)
                        b[i] = (char)(rnd() % 4 ? 32 + rnd() % 95 : rnd());
                if (len && rnd() % 2)
                        b[0] = '{';
                break;
        default: /* 5: the seed as is (the caller may swap a value) */
                break;
        }
        *buf = b;
        return len;
}

START_TEST(random_input_never_crashes) {
        static const gws_preset_t ps[] = {CF, LL, OT};
        gws_preset_t p = ps[_i];
        char *seed[N_SAMPLES], *in;
        size_t seedlen[N_SAMPLES], len;
        int nseed = 0, i, ok = 0, rejected = 0, notes = 0;
        gws_buf_t out = {0};

        rng_state = 0x9e3779b97f4a7c15ULL ^ (uint64_t)_i;
        for (i = 0; i < N_SAMPLES; i++)
                if (samples[i].p == p) {
                        seed[nseed] = load(p, samples[i].file, &seedlen[nseed]);
                        nseed++;
                }
        for (i = 0; i < ROBUST_ITERS; i++) {
                const char *why = NULL, *field = NULL;
                gws_event_t ev;
                gws_ev_errinfo_t info;
                gws_ev_err_t err;
                json_t *o;
                int rc;

                len = mutate(&in, seed, seedlen, nseed);
                if (i % 3 == 0 && (o = json_loadb(in, len, 0, NULL))) {
                        /* structural: a random member gets a random type */
                        json_t *t = o, *v;
                        const char *k;
                        int hops;
                        for (hops = 0; hops < 3 && json_is_object(t); hops++) {
                                size_t n = json_object_size(t), pick, j = 0;
                                json_t *next = NULL;
                                if (!n)
                                        break;
                                pick = rnd() % n;
                                json_object_foreach(t, k, v) {
                                        if (j++ != pick)
                                                continue;
                                        if ((json_is_object(v) ||
                                             json_is_array(v)) &&
                                            rnd() % 2) {
                                                next = json_is_array(v)
                                                           ? json_array_get(
                                                                 v, 0)
                                                           : v;
                                        } else {
                                                json_object_set_new(
                                                    t, k,
                                                    json_loads(
                                                        pool[rnd() %
                                                             (sizeof(pool) /
                                                              sizeof(pool[0]))],
                                                        JSON_DECODE_ANY |
                                                            JSON_ALLOW_NUL,
                                                        NULL));
                                        }
                                        break;
                                }
                                if (!next)
                                        break;
                                t = next;
                        }
                        free(in);
                        in = json_dumps(o, JSON_COMPACT);
                        len = in ? strlen(in) : 0;
                        json_decref(o);
                        if (!in)
                                continue;
                }

                gws_buf_reset(&out);
                rc = gws_preset_transform(p, in, len, &out, &why, &field);
                if (rc == -1) {
                        ck_assert_ptr_nonnull(why);
                        ck_assert_ptr_null(field);
                        rejected++;
                } else {
                        ck_assert_int_eq(rc, 0);
                        ck_assert_msg(!why == !field, "why/field mismatch");
                        notes += why != NULL;
                        /* the output is always one JSON object */
                        err = gws_event_parse(&ev, out.buf, out.len, NULL,
                                              &info);
                        ck_assert_msg(err != GWS_EV_ERR_EMPTY &&
                                          err != GWS_EV_ERR_NOT_JSON &&
                                          err != GWS_EV_ERR_NOT_UTF8 &&
                                          err != GWS_EV_ERR_NOT_OBJECT,
                                      "iteration %d: %s on %.*s -> %s", i,
                                      gws_ev_err2str(err), (int)len, in,
                                      out.buf);
                        gws_event_clear(&ev);
                        ok++;
                }
                free(in);
        }
        /* every path was exercised */
        ck_assert_int_gt(ok, ROBUST_ITERS / 10);
        ck_assert_int_gt(rejected, ROBUST_ITERS / 10);
        if (p != CF) /* cloudflare passes every value on */
                ck_assert_int_gt(notes, 0);
        for (i = 0; i < nseed; i++)
                free(seed[i]);
        gws_buf_free(&out);
}
END_TEST

Suite *gws_preset_suite(void) {
        Suite *s = suite_create("preset");
        TCase *tc = tcase_create("formats");
        TCase *te = tcase_create("errors");
        TCase *tr = tcase_create("robustness");

        tcase_add_loop_test(tc, sample_maps_to_native, 0, N_SAMPLES);
        tcase_add_loop_test(tc, fields_are_carried, 0,
                            (int)(sizeof(carried) / sizeof(carried[0])));
        tcase_add_test(tc, numeric_end_user_kept);
        tcase_add_loop_test(tc, values_are_derived, 0,
                            (int)(sizeof(derived) / sizeof(derived[0])));
        tcase_add_test(tc, names);
        tcase_add_test(tc, native_is_copied);
        tcase_add_test(tc, pipeline_with_preset);
        tcase_add_test(tc, limit_is_on_the_message);
        tcase_add_test(tc, unreadable_number_is_said);
        tcase_add_loop_test(tc, dlq_names_the_source_field, 0,
                            (int)(sizeof(dlq_sources) /
                                  sizeof(dlq_sources[0])));
        suite_add_tcase(s, tc);

        tcase_add_loop_test(te, errors_are_precise, 0,
                            (int)(sizeof(errors) / sizeof(errors[0])));
        suite_add_tcase(s, te);

        /* ~7k transforms + parses per preset; generous for ASan builds */
        tcase_set_timeout(tr, 120);
        tcase_add_loop_test(tr, random_input_never_crashes, 0, 3);
        suite_add_tcase(s, tr);
        return s;
}
