/* test_preset.c - cloudflare, litellm and otel-genai logs become valid
 * native events with the expected view; bad input keeps precise reasons. */
#include <math.h>
#include <string.h>

#include "gwsieve/event.h"
#include "gwsieve/pipeline.h"
#include "gwsieve/preset.h"
#include "suites.h"

static const struct {
        gws_preset_t p;
        const char *in;
        const char *id, *gw, *provider, *model, *user, *ip;
        int64_t ts_ms;
        int status;
        double latency, cost;
        int64_t tin, tout;
} samples[] = {
    /* Cloudflare AI Gateway log objects */
    {GWS_PRESET_CLOUDFLARE,
     "{\"id\":\"01JD2R3V0PK0R3\",\"created_at\":\"2026-01-05T10:00:00.250Z\","
     "\"provider\":\"openai\",\"model\":\"gpt-4o-mini\",\"path\":"
     "\"chat/completions\",\"success\":true,\"cached\":false,"
     "\"status_code\":200,\"duration\":812,\"tokens_in\":153,"
     "\"tokens_out\":41,\"cost\":0.0000476,\"metadata\":"
     "\"{\\\"user_id\\\":\\\"u-42\\\",\\\"client_ip\\\":\\\"203.0.113.9\\\","
     "\\\"gateway_id\\\":\\\"prod-gw\\\"}\",\"request\":{\"messages\":[]},"
     "\"response\":{\"choices\":[]}}",
     "01JD2R3V0PK0R3", "prod-gw", "openai", "gpt-4o-mini", "u-42",
     "203.0.113.9", 1767607200250LL, 200, 812, 0.0000476, 153, 41},
    {GWS_PRESET_CLOUDFLARE,
     "{\"id\":\"cf2\",\"created_at\":\"2026-01-05T10:00:01Z\","
     "\"gateway\":\"my-gateway\",\"provider\":\"workers-ai\",\"model\":"
     "\"@cf/meta/llama-3.1-8b-instruct\",\"path\":\"run\",\"success\":false,"
     "\"cached\":false,\"status_code\":429,\"duration\":35,"
     "\"tokens_in\":null,\"tokens_out\":null,\"cost\":0,\"metadata\":\"not "
     "json\",\"event_id\":\"e9\"}",
     "cf2", "my-gateway", "workers-ai", "@cf/meta/llama-3.1-8b-instruct",
     NULL, NULL, 1767607201000LL, 429, 35, 0, -1, -1},
    /* LiteLLM StandardLoggingPayload */
    {GWS_PRESET_LITELLM,
     "{\"id\":\"chatcmpl-9f\",\"trace_id\":\"t-1\",\"call_type\":"
     "\"acompletion\",\"status\":\"success\",\"custom_llm_provider\":"
     "\"anthropic\",\"model\":\"claude-3-5-sonnet\",\"model_group\":"
     "\"sonnet\",\"startTime\":1767607200.5,\"endTime\":1767607202.0,"
     "\"completionStartTime\":1767607200.9,\"response_time\":1.5,"
     "\"prompt_tokens\":900,\"completion_tokens\":120,\"total_tokens\":1020,"
     "\"response_cost\":0.0045,\"cache_hit\":false,\"end_user\":"
     "\"alice\",\"requester_ip_address\":\"198.51.100.7\",\"messages\":"
     "[{\"role\":\"user\",\"content\":\"hi\"}],\"response\":{\"id\":\"r\"},"
     "\"metadata\":{\"user_api_key_team_id\":\"team-a\","
     "\"user_api_key_alias\":\"svc\"},\"api_base\":\"https://x\"}",
     "chatcmpl-9f", "team-a", "anthropic", "claude-3-5-sonnet", "alice",
     "198.51.100.7", 1767607200500LL, 200, 1500, 0.0045, 900, 120},
    {GWS_PRESET_LITELLM,
     "{\"id\":\"l2\",\"status\":\"failure\",\"custom_llm_provider\":"
     "\"openai\",\"model\":\"gpt-4o\",\"model_group\":\"gpt4\","
     "\"startTime\":1767607300,\"endTime\":1767607300.25,"
     "\"error_information\":{\"error_code\":\"429\",\"error_class\":"
     "\"RateLimitError\"},\"prompt_tokens\":0,\"completion_tokens\":0,"
     "\"response_cost\":0,\"metadata\":{\"requester_ip_address\":"
     "\"10.0.0.5\"}}",
     "l2", "gpt4", "openai", "gpt-4o", NULL, "10.0.0.5", 1767607300000LL,
     429, 250, 0, 0, 0},
    /* OpenTelemetry GenAI spans (attribute object and OTLP array) */
    {GWS_PRESET_OTEL_GENAI,
     "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":"
     "\"eee19b7ec3c1b174\",\"name\":\"chat gpt-4o\",\"startTimeUnixNano\":"
     "\"1767607200000000000\",\"endTimeUnixNano\":\"1767607201250000000\","
     "\"attributes\":{\"gen_ai.provider.name\":\"openai\","
     "\"gen_ai.request.model\":\"gpt-4o\",\"gen_ai.operation.name\":"
     "\"chat\",\"gen_ai.usage.input_tokens\":120,"
     "\"gen_ai.usage.output_tokens\":30,\"server.address\":"
     "\"api.openai.com\",\"user.id\":\"bob\",\"client.address\":"
     "\"192.0.2.1\"}}",
     "eee19b7ec3c1b174", "api.openai.com", "openai", "gpt-4o", "bob",
     "192.0.2.1", 1767607200000LL, 200, 1250, -1, 120, 30},
    {GWS_PRESET_OTEL_GENAI,
     "{\"traceId\":\"ab\",\"spanId\":\"cd\",\"startTimeUnixNano\":"
     "1767607200000000000,\"endTimeUnixNano\":1767607200100000000,"
     "\"status\":{\"code\":2},\"resource\":{\"attributes\":[{\"key\":"
     "\"service.name\",\"value\":{\"stringValue\":\"gateway-eu\"}}]},"
     "\"attributes\":[{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":"
     "\"anthropic\"}},{\"key\":\"gen_ai.response.model\",\"value\":"
     "{\"stringValue\":\"claude-3-haiku\"}},{\"key\":"
     "\"gen_ai.usage.input_tokens\",\"value\":{\"intValue\":\"77\"}}]}",
     "cd", "gateway-eu", "anthropic", "claude-3-haiku", NULL, NULL,
     1767607200000LL, 500, 100, -1, 77, -1},
};

static int str_is(gws_str_t s, const char *want) {
        if (!want)
                return s.s == NULL;
        return s.s && s.len == strlen(want) && !memcmp(s.s, want, s.len);
}

START_TEST(sample_maps_to_native) {
        gws_buf_t out = {0};
        const char *why, *field;
        gws_event_t ev;
        gws_ev_errinfo_t info;
        ck_assert_int_eq(gws_preset_transform(samples[_i].p, samples[_i].in,
                                              strlen(samples[_i].in), &out,
                                              &why, &field),
                         0);
        ck_assert_msg(gws_event_parse(&ev, out.buf, out.len, NULL, &info) ==
                          GWS_EV_OK,
                      "%s: %s %s", out.buf, info.field ? info.field : "",
                      info.what ? info.what : "");
        ck_assert(str_is(ev.id, samples[_i].id));
        ck_assert(str_is(ev.gateway_id, samples[_i].gw));
        ck_assert(str_is(ev.provider, samples[_i].provider));
        ck_assert(str_is(ev.model, samples[_i].model));
        ck_assert(str_is(ev.user_id, samples[_i].user));
        ck_assert(str_is(ev.client_ip, samples[_i].ip));
        ck_assert_int_eq(ev.ts_ms, samples[_i].ts_ms);
        ck_assert_int_eq(ev.status, samples[_i].status);
        ck_assert_double_eq_tol(ev.latency_ms, samples[_i].latency, 1e-6);
        if (samples[_i].cost >= 0)
                ck_assert_double_eq_tol(ev.cost_usd, samples[_i].cost, 1e-12);
        if (samples[_i].tin >= 0)
                ck_assert_int_eq(ev.tokens_in, samples[_i].tin);
        else
                ck_assert_int_eq(ev.has_tokens_in, 0);
        if (samples[_i].tout >= 0)
                ck_assert_int_eq(ev.tokens_out, samples[_i].tout);
        ck_assert_int_eq(gws_event_is_error(&ev), samples[_i].status >= 400);
        gws_event_clear(&ev);
        gws_buf_free(&out);
}
END_TEST

START_TEST(names_and_errors) {
        gws_preset_t p;
        gws_buf_t out = {0};
        const char *why, *field;
        ck_assert_int_eq(gws_preset_from_name("litellm", &p), 0);
        ck_assert_int_eq(p, GWS_PRESET_LITELLM);
        ck_assert_str_eq(gws_preset_name(GWS_PRESET_OTEL_GENAI), "otel-genai");
        ck_assert_int_eq(gws_preset_from_name("splunk", &p), -1);
        ck_assert_int_eq(gws_preset_transform(GWS_PRESET_CLOUDFLARE, "[1]", 3,
                                              &out, &why, &field),
                         -1);
        ck_assert_ptr_nonnull(strstr(why, "object"));
        ck_assert_int_eq(gws_preset_transform(GWS_PRESET_LITELLM, "{x", 2,
                                              &out, &why, &field),
                         -1);
        gws_buf_free(&out);
}
END_TEST

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
        gws_input_t in = {samples[2].in, strlen(samples[2].in), NULL, 0,
                          "gw.raw", 0, 0};
        gws_config_set(cfg, "input.format", "litellm", err, sizeof(err));
        gws_config_set(cfg, "filter.normal_sample_rate", "1", err,
                       sizeof(err));
        pl = gws_pipeline_new(cfg, err, sizeof(err));
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
}
END_TEST

Suite *gws_preset_suite(void) {
        Suite *s = suite_create("preset");
        TCase *tc = tcase_create("formats");
        tcase_add_loop_test(tc, sample_maps_to_native, 0,
                            sizeof(samples) / sizeof(samples[0]));
        tcase_add_test(tc, names_and_errors);
        tcase_add_test(tc, pipeline_with_preset);
        suite_add_tcase(s, tc);
        return s;
}
