/* test_event.c - the event view and the DLQ reasons, field by field. */
#include <stdio.h>
#include <string.h>

#include "gwsieve/event.h"
#include "suites.h"

#define GOOD                                                                   \
        "{\"id\":\"e1\",\"ts\":\"2026-01-01T00:00:00.5Z\",\"gateway_id\":"      \
        "\"gw-1\",\"provider\":\"openai\",\"model\":\"gpt-4o\",\"status\":200," \
        "\"latency_ms\":812.5"

START_TEST(valid_full) {
        const char *in =
            GOOD ",\"tokens_in\":10,\"tokens_out\":null,\"cost_usd\":0.5,"
                 "\"user_id\":\"u\\u0031\",\"cached\":true,\"extra\":{\"a\":[1]}}";
        gws_event_t ev;
        gws_ev_errinfo_t info;
        ck_assert_int_eq(gws_event_parse(&ev, in, strlen(in), NULL, &info),
                         GWS_EV_OK);
        ck_assert_int_eq(ev.ts_ms, 1767225600500LL);
        ck_assert_int_eq(ev.status, 200);
        ck_assert_double_eq(ev.latency_ms, 812.5);
        ck_assert_int_eq(ev.has_tokens_in, 1);
        ck_assert_int_eq(ev.tokens_in, 10);
        ck_assert_int_eq(ev.has_tokens_out, 0);
        ck_assert_int_eq(ev.has_cost, 1);
        ck_assert_int_eq(ev.cached, 1);
        ck_assert_int_eq(ev.success, 1);
        ck_assert_int_eq((int)ev.user_id.len, 2); /* escape decoded */
        ck_assert_int_eq(memcmp(ev.user_id.s, "u1", 2), 0);
        ck_assert_int_eq(memcmp(ev.model.s, "gpt-4o", 6), 0);
        gws_event_clear(&ev);
}
END_TEST

static int str_is(gws_str_t s, const char *want) {
        return s.len == strlen(want) && !memcmp(s.s, want, s.len);
}

/* Every member the view knows, each with a value of its own, and names
 * that share a known name's length and first letter (or differ only in
 * its last byte) but are not it: field_of() finds members by (length,
 * first letter) and then compares the whole name. */
START_TEST(every_field_by_name) {
        const char *in =
            "{\"tokens_ou\":1,\"account_ix\":\"no\",\"ttfb_mx\":9,"
            "\"id\":\"e9\",\"ts\":1767225600000,\"gateway_id\":\"gw\","
            "\"provider\":\"pr\",\"model\":\"mo\",\"status\":201,"
            "\"latency_ms\":3.5,\"account_id\":\"ac\",\"endpoint\":\"en\","
            "\"user_id\":\"us\",\"client_ip\":\"10.0.0.1\","
            "\"ttfb_ms\":1.25,\"cost_usd\":0.75,\"tokens_in\":11,"
            "\"tokens_out\":12,\"success\":false,\"cached\":true,"
            "\"Status\":500,\"tokens_iN\":99,\"cost_usc\":9,"
            "\"gatewayXid\":\"x\",\"i\":0,\"statuses\":0}";
        gws_event_t ev;
        gws_ev_errinfo_t info;
        ck_assert_int_eq(gws_event_parse(&ev, in, strlen(in), NULL, &info),
                         GWS_EV_OK);
        ck_assert(str_is(ev.id, "e9"));
        ck_assert_int_eq(ev.ts_ms, 1767225600000LL);
        ck_assert(str_is(ev.gateway_id, "gw"));
        ck_assert(str_is(ev.provider, "pr"));
        ck_assert(str_is(ev.model, "mo"));
        ck_assert_int_eq(ev.status, 201);
        ck_assert_double_eq(ev.latency_ms, 3.5);
        ck_assert(str_is(ev.account_id, "ac"));
        ck_assert(str_is(ev.endpoint, "en"));
        ck_assert(str_is(ev.user_id, "us"));
        ck_assert(str_is(ev.client_ip, "10.0.0.1"));
        ck_assert_int_eq(ev.has_ttfb, 1);
        ck_assert_double_eq(ev.ttfb_ms, 1.25);
        ck_assert_int_eq(ev.has_cost, 1);
        ck_assert_double_eq(ev.cost_usd, 0.75);
        ck_assert_int_eq(ev.has_tokens_in, 1);
        ck_assert_int_eq(ev.tokens_in, 11);
        ck_assert_int_eq(ev.has_tokens_out, 1);
        ck_assert_int_eq(ev.tokens_out, 12);
        ck_assert_int_eq(ev.success, 0);
        ck_assert_int_eq(ev.cached, 1);
        gws_event_clear(&ev);
}
END_TEST

/* Member names are compared decoded, whatever their length escaped: JSON
 * spells "gateway_id" also as "\u0067ateway_id" (17 bytes with quotes) or
 * with every character escaped (62 bytes); before, names of more than 16
 * bytes as written were skipped, so such a gateway_id was "missing" and
 * such a user_id not read, while filter rules and redaction found them. */
START_TEST(escaped_names) {
        const char *in =
            "{\"id\":\"e\",\"ts\":1767225600000,\"\\u0067ateway_id\":\"gw\","
            "\"provider\":\"p\",\"model\":\"m\",\"status\":200,"
            "\"latency_ms\":1,\"\\u0075\\u0073\\u0065\\u0072\\u005f\\u0069"
            "\\u0064\":\"u-7\",\"\\u0074\\u006f\\u006b\\u0065\\u006e\\u0073"
            "\\u005f\\u006f\\u0075\\u0074\":-1}";
        gws_event_t ev;
        gws_ev_errinfo_t info;
        gws_ev_err_t e = gws_event_parse(&ev, in, strlen(in), NULL, &info);
        /* the last member, tokens_out, is negative */
        ck_assert_msg(e == GWS_EV_ERR_BAD_VALUE, "got %s (%s %s)",
                      gws_ev_err2str(e), info.field ? info.field : "-",
                      info.what ? info.what : "-");
        ck_assert_str_eq(info.field, "tokens_out");
        gws_event_clear(&ev);
        in = "{\"id\":\"e\",\"ts\":1767225600000,\"\\u0067ateway_id\":\"gw\","
             "\"provider\":\"p\",\"model\":\"m\",\"status\":200,"
             "\"latency_ms\":1,\"\\u0075\\u0073\\u0065\\u0072\\u005f\\u0069"
             "\\u0064\":\"u-7\"}";
        e = gws_event_parse(&ev, in, strlen(in), NULL, &info);
        ck_assert_msg(e == GWS_EV_OK, "got %s (%s %s)", gws_ev_err2str(e),
                      info.field ? info.field : "-",
                      info.what ? info.what : "-");
        ck_assert(str_is(ev.gateway_id, "gw"));
        ck_assert(str_is(ev.user_id, "u-7"));
        gws_event_clear(&ev);
}
END_TEST

START_TEST(epoch_and_success_default) {
        const char *in = "{\"id\":\"e\",\"ts\":1767225600000,\"gateway_id\":"
                         "\"g\",\"provider\":\"p\",\"model\":\"m\","
                         "\"status\":503,\"latency_ms\":1}";
        gws_event_t ev;
        gws_ev_errinfo_t info;
        ck_assert_int_eq(gws_event_parse(&ev, in, strlen(in), NULL, &info),
                         GWS_EV_OK);
        ck_assert_int_eq(ev.ts_ms, 1767225600000LL);
        ck_assert_int_eq(ev.success, 0);
        ck_assert_int_eq(gws_event_is_error(&ev), 1);
        gws_event_clear(&ev);
}
END_TEST

/* JSON has one number type: 100.0 and 1e2 are the integer 100 (JSON
 * Schema's "integer" is a number without a fraction), and what a
 * gateway writes through a double (Python's float, a float column)
 * comes so. The input presets took them (count_of()); the native
 * format dead-lettered them as wrong_type. An integer past int64 is no
 * wrong type but out of range. */
START_TEST(integral_numbers_are_integers) {
        static const struct {
                const char *extra;
                gws_ev_err_t err;
                const char *field;
                int64_t tin;
                int status;
        } cases[] = {
            {",\"tokens_in\":100.0}", GWS_EV_OK, NULL, 100, 200},
            {",\"tokens_in\":1e2}", GWS_EV_OK, NULL, 100, 200},
            {",\"tokens_in\":1.5E3}", GWS_EV_OK, NULL, 1500, 200},
            {",\"tokens_in\":-0.0}", GWS_EV_OK, NULL, 0, 200},
            {",\"status\":404.0}", GWS_EV_OK, NULL, -1, 404},
            {",\"status\":2e2,\"step\":3.0}", GWS_EV_OK, NULL, -1, 200},
            {",\"tokens_in\":1.5}", GWS_EV_ERR_WRONG_TYPE, "tokens_in", 0, 0},
            {",\"tokens_in\":1e-1}", GWS_EV_ERR_WRONG_TYPE, "tokens_in", 0,
             0},
            {",\"step\":2.5}", GWS_EV_ERR_WRONG_TYPE, "step", 0, 0},
            {",\"tokens_in\":99999999999999999999}", GWS_EV_ERR_BAD_VALUE,
             "tokens_in", 0, 0},
            {",\"tokens_out\":1e400}", GWS_EV_ERR_BAD_VALUE, "tokens_out", 0,
             0},
            {",\"status\":1e19}", GWS_EV_ERR_BAD_VALUE, "status", 0, 0},
        };
        size_t k;
        for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                char in[512];
                gws_event_t ev;
                gws_ev_errinfo_t info;
                gws_ev_err_t e;
                snprintf(in, sizeof(in), "%s%s", GOOD, cases[k].extra);
                e = gws_event_parse(&ev, in, strlen(in), NULL, &info);
                ck_assert_msg(e == cases[k].err, "%s: got %s (%s %s), want %s",
                              cases[k].extra, gws_ev_err2str(e),
                              info.field ? info.field : "-",
                              info.what ? info.what : "-",
                              gws_ev_err2str(cases[k].err));
                if (e != GWS_EV_OK) {
                        ck_assert_str_eq(info.field, cases[k].field);
                        continue;
                }
                if (cases[k].tin >= 0) {
                        ck_assert(ev.has_tokens_in);
                        ck_assert_int_eq(ev.tokens_in, cases[k].tin);
                }
                ck_assert_int_eq(ev.status, cases[k].status);
                gws_event_clear(&ev);
        }
}
END_TEST

/* A number beyond a double (1e400 is valid JSON) was refused as "must be
 * >= 0", which 1e400 is: the dead letter sent its reader looking for a
 * negative number. */
START_TEST(numbers_beyond_a_double_are_out_of_range) {
        static const struct {
                const char *extra;
                const char *field, *what;
        } cases[] = {
            {",\"latency_ms\":1e400}", "latency_ms", "is out of range"},
            {",\"latency_ms\":-1e400}", "latency_ms", "is out of range"},
            {",\"ttfb_ms\":1E+999}", "ttfb_ms", "is out of range"},
            {",\"cost_usd\":1e400}", "cost_usd", "is out of range"},
            {",\"latency_ms\":-5}", "latency_ms", "must be >= 0"},
            {",\"cost_usd\":-0.5}", "cost_usd", "must be >= 0"},
        };
        size_t k;
        for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                char in[512];
                gws_event_t ev;
                gws_ev_errinfo_t info;
                gws_ev_err_t e;
                snprintf(in, sizeof(in), "%s%s", GOOD, cases[k].extra);
                e = gws_event_parse(&ev, in, strlen(in), NULL, &info);
                ck_assert_msg(e == GWS_EV_ERR_BAD_VALUE, "%s: got %s",
                              cases[k].extra, gws_ev_err2str(e));
                ck_assert_str_eq(info.field, cases[k].field);
                ck_assert_msg(!strcmp(info.what, cases[k].what),
                              "%s: '%s', want '%s'", cases[k].extra,
                              info.what, cases[k].what);
        }
}
END_TEST

static const struct {
        const char *in;
        gws_ev_err_t err;
        const char *field;
} bad[] = {
    {"", GWS_EV_ERR_EMPTY, NULL},
    {"not json", GWS_EV_ERR_NOT_JSON, NULL},
    {"{\"id\":", GWS_EV_ERR_NOT_JSON, NULL},
    {"{\"a\":1} x", GWS_EV_ERR_NOT_JSON, NULL},
    {"[1,2]", GWS_EV_ERR_NOT_OBJECT, NULL},
    {"\"str\"", GWS_EV_ERR_NOT_OBJECT, NULL},
    {"{\"id\":\"\xff\"}", GWS_EV_ERR_NOT_UTF8, NULL},
    {"{\"id\":\"\\ud800\"}", GWS_EV_ERR_NOT_UTF8, NULL},
    {"{\"ts\":1}", GWS_EV_ERR_MISSING_FIELD, "id"},
    {GOOD "}", GWS_EV_OK, NULL},
    {"{\"id\":\"e\",\"gateway_id\":\"g\",\"provider\":\"p\",\"model\":\"m\","
     "\"status\":200,\"latency_ms\":1}",
     GWS_EV_ERR_MISSING_FIELD, "ts"},
    {"{\"id\":\"e\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
     "\"status\":200,\"latency_ms\":1}",
     GWS_EV_ERR_MISSING_FIELD, "model"},
    {"{\"id\":\"e\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
     "\"model\":\"m\",\"latency_ms\":1}",
     GWS_EV_ERR_MISSING_FIELD, "status"},
    {"{\"id\":\"e\",\"ts\":1,\"gateway_id\":\"g\",\"provider\":\"p\","
     "\"model\":\"m\",\"status\":200}",
     GWS_EV_ERR_MISSING_FIELD, "latency_ms"},
    {GOOD ",\"status\":\"200\"}", GWS_EV_ERR_WRONG_TYPE, "status"},
    {GOOD ",\"status\":99}", GWS_EV_ERR_BAD_VALUE, "status"},
    {GOOD ",\"status\":600}", GWS_EV_ERR_BAD_VALUE, "status"},
    {GOOD ",\"latency_ms\":\"x\"}", GWS_EV_ERR_WRONG_TYPE, "latency_ms"},
    {GOOD ",\"latency_ms\":-1}", GWS_EV_ERR_BAD_VALUE, "latency_ms"},
    {GOOD ",\"tokens_in\":1.5}", GWS_EV_ERR_WRONG_TYPE, "tokens_in"},
    {GOOD ",\"tokens_in\":-1}", GWS_EV_ERR_BAD_VALUE, "tokens_in"},
    {GOOD ",\"success\":\"yes\"}", GWS_EV_ERR_WRONG_TYPE, "success"},
    {GOOD ",\"user_id\":5}", GWS_EV_ERR_WRONG_TYPE, "user_id"},
    {GOOD ",\"model\":\"\"}", GWS_EV_ERR_BAD_VALUE, "model"},
    {GOOD ",\"ts\":\"yesterday\"}", GWS_EV_ERR_BAD_VALUE, "ts"},
    /* before 1970 (negative epoch ms broke the detectors' windows), or
     * past what epoch milliseconds accept (1e14) */
    {GOOD ",\"ts\":\"1969-12-31T23:59:00Z\"}", GWS_EV_ERR_BAD_VALUE, "ts"},
    {GOOD ",\"ts\":\"1970-01-01T00:30:00+01:00\"}", GWS_EV_ERR_BAD_VALUE,
     "ts"},
    {GOOD ",\"ts\":\"9999-12-31T23:59:59Z\"}", GWS_EV_ERR_BAD_VALUE, "ts"},
    {GOOD ",\"ts\":true}", GWS_EV_ERR_WRONG_TYPE, "ts"},
    /* the contract's other typed fields (they were not checked: any
     * value passed) */
    {GOOD ",\"step\":2,\"trace_id\":\"t\",\"method\":\"POST\","
     "\"user_agent\":\"ua\",\"metadata\":{\"a\":1},\"request\":\"hi\","
     "\"response\":{\"b\":[]}}", GWS_EV_OK, NULL},
    {GOOD ",\"step\":null,\"trace_id\":null,\"method\":null,"
     "\"user_agent\":null,\"metadata\":null,\"request\":null,"
     "\"response\":null}", GWS_EV_OK, NULL},
    {GOOD ",\"step\":\"2\"}", GWS_EV_ERR_WRONG_TYPE, "step"},
    {GOOD ",\"step\":1.5}", GWS_EV_ERR_WRONG_TYPE, "step"},
    {GOOD ",\"trace_id\":7}", GWS_EV_ERR_WRONG_TYPE, "trace_id"},
    {GOOD ",\"method\":true}", GWS_EV_ERR_WRONG_TYPE, "method"},
    {GOOD ",\"user_agent\":{}}", GWS_EV_ERR_WRONG_TYPE, "user_agent"},
    {GOOD ",\"metadata\":\"{}\"}", GWS_EV_ERR_WRONG_TYPE, "metadata"},
    {GOOD ",\"metadata\":[1]}", GWS_EV_ERR_WRONG_TYPE, "metadata"},
    {GOOD ",\"request\":[\"hi\"]}", GWS_EV_ERR_WRONG_TYPE, "request"},
    {GOOD ",\"response\":5}", GWS_EV_ERR_WRONG_TYPE, "response"},
    /* U+001F joins the fields of the detectors' entity keys, and alerts
     * cut ids and entities at U+0000: escaped in an id-like field, the
     * gateway "a\u001fb" with provider "c" was the same entity as the
     * gateway "a" with provider "b\u001fc" */
    {GOOD ",\"gateway_id\":\"a\\u001fb\"}", GWS_EV_ERR_BAD_VALUE,
     "gateway_id"},
    {GOOD ",\"provider\":\"b\\u001Fc\"}", GWS_EV_ERR_BAD_VALUE, "provider"},
    {GOOD ",\"user_id\":\"u\\u001f\"}", GWS_EV_ERR_BAD_VALUE, "user_id"},
    {GOOD ",\"id\":\"e\\u0000x\"}", GWS_EV_ERR_BAD_VALUE, "id"},
    {GOOD ",\"model\":\"\\u0000\"}", GWS_EV_ERR_BAD_VALUE, "model"},
    {GOOD ",\"user_id\":\"tab\\there\\u0001\\u001e\"}", GWS_EV_OK, NULL},
};

START_TEST(invalid_table) {
        gws_event_t ev;
        gws_ev_errinfo_t info;
        gws_ev_err_t e = gws_event_parse(&ev, bad[_i].in, strlen(bad[_i].in),
                                         NULL, &info);
        ck_assert_msg(e == bad[_i].err, "%s: got %s want %s", bad[_i].in,
                      gws_ev_err2str(e), gws_ev_err2str(bad[_i].err));
        if (bad[_i].field)
                ck_assert_str_eq(info.field, bad[_i].field);
        gws_event_clear(&ev);
}
END_TEST

START_TEST(limits) {
        gws_ev_limits_t lim = {64, 4, 100, 16};
        gws_event_t ev;
        gws_ev_errinfo_t info;
        const char *big = GOOD ",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
        const char *deep = "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":1}}}}}";
        const char *longs = "{\"a\":\"0123456789abcdefXYZ\"}";
        ck_assert_int_eq(gws_event_parse(&ev, big, strlen(big), &lim, &info),
                         GWS_EV_ERR_TOO_LARGE);
        ck_assert_int_eq(
            gws_event_parse(&ev, deep, strlen(deep), &lim, &info),
            GWS_EV_ERR_TOO_DEEP);
        ck_assert_int_eq(
            gws_event_parse(&ev, longs, strlen(longs), &lim, &info),
            GWS_EV_ERR_STRING_TOO_LONG);
        lim.max_fields = 5;
        lim.max_depth = 0;
        lim.max_string = 0;
        ck_assert_int_eq(gws_event_parse(&ev, "[1,2,3,4,5,6,7]", 15, &lim,
                                         &info),
                         GWS_EV_ERR_TOO_MANY_FIELDS);
}
END_TEST

START_TEST(reuse_and_two_alive) {
        const char *a = GOOD "}";
        const char *b = "{\"id\":\"e\\u0032\",\"ts\":1,\"gateway_id\":\"g2\","
                        "\"provider\":\"p\",\"model\":\"m\",\"status\":200,"
                        "\"latency_ms\":1}";
        gws_event_t ea, eb;
        gws_ev_errinfo_t info;
        int i;
        for (i = 0; i < 100; i++) {
                ck_assert_int_eq(gws_event_parse(&ea, a, strlen(a), NULL,
                                                 &info), GWS_EV_OK);
                ck_assert_int_eq(gws_event_parse(&eb, b, strlen(b), NULL,
                                                 &info), GWS_EV_OK);
                /* both views stay valid while both are alive */
                ck_assert_int_eq(memcmp(ea.id.s, "e1", 2), 0);
                ck_assert_int_eq(memcmp(eb.id.s, "e2", 2), 0);
                gws_event_clear(&ea);
                gws_event_clear(&eb);
        }
}
END_TEST

Suite *gws_event_suite(void) {
        Suite *s = suite_create("event");
        TCase *tc = tcase_create("parse");
        tcase_add_test(tc, valid_full);
        tcase_add_test(tc, every_field_by_name);
        tcase_add_test(tc, escaped_names);
        tcase_add_test(tc, epoch_and_success_default);
        tcase_add_test(tc, integral_numbers_are_integers);
        tcase_add_test(tc, numbers_beyond_a_double_are_out_of_range);
        tcase_add_loop_test(tc, invalid_table, 0, sizeof(bad) / sizeof(bad[0]));
        tcase_add_test(tc, limits);
        tcase_add_test(tc, reuse_and_two_alive);
        suite_add_tcase(s, tc);
        return s;
}
