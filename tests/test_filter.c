/* test_filter.c - sampling, default policy, and ordered rules. */
#include <stdio.h>
#include <string.h>

#include "gwsieve/filter.h"
#include "suites.h"

static gws_config_t *cfg;
static char err[512];

static void setup(void) {
        cfg = gws_config_new();
}
static void teardown(void) {
        gws_config_destroy(cfg);
}

static void parse(gws_event_t *ev, const char *json) {
        gws_ev_errinfo_t info;
        ck_assert_int_eq(gws_event_parse(ev, json, strlen(json), NULL, &info),
                         GWS_EV_OK);
}

#define EV(status, extra)                                                      \
        "{\"id\":\"abc\",\"ts\":1,\"gateway_id\":\"gw\",\"provider\":\"openai\"," \
        "\"model\":\"gpt-4o\",\"status\":" #status ",\"latency_ms\":5" extra "}"

/* The filter's decision on the event \p json (parsed, evaluated with a
 * zero score, cleared); \p *rule as gws_filter_eval() sets it (borrowed
 * from \p f). */
static gws_keep_t eval_json(const gws_filter_t *f, const char *json,
                            const char **rule) {
        gws_score_t sc = {0, 0};
        gws_event_t ev;
        gws_keep_t k;
        parse(&ev, json);
        k = gws_filter_eval(f, &ev, &sc, rule);
        gws_event_clear(&ev);
        return k;
}

START_TEST(sampling_is_deterministic) {
        char id[32];
        int i, kept = 0;
        ck_assert_int_eq(gws_filter_sampled("x", 1, 0.0), 0);
        ck_assert_int_eq(gws_filter_sampled("x", 1, 1.0), 1);
        for (i = 0; i < 100000; i++) {
                int n = snprintf(id, sizeof(id), "id-%d", i);
                int a = gws_filter_sampled(id, (size_t)n, 0.1);
                ck_assert_int_eq(a, gws_filter_sampled(id, (size_t)n, 0.1));
                kept += a;
        }
        ck_assert_int_ge(kept, 9500);
        ck_assert_int_le(kept, 10500);
}
END_TEST

START_TEST(default_policy) {
        gws_event_t ev;
        gws_score_t normal = {0, 0}, anom = {0.7, GWS_R_LATENCY};
        gws_config_set(cfg, "filter.normal_sample_rate", "0", err,
                       sizeof(err));
        parse(&ev, EV(503, ""));
        ck_assert_int_eq(gws_filter_decide(cfg, &ev, &normal), GWS_KEEP_ERROR);
        gws_event_clear(&ev);
        parse(&ev, EV(200, ",\"success\":false"));
        ck_assert_int_eq(gws_filter_decide(cfg, &ev, &normal), GWS_KEEP_ERROR);
        gws_event_clear(&ev);
        parse(&ev, EV(200, ""));
        ck_assert_int_eq(gws_filter_decide(cfg, &ev, &normal), GWS_KEEP_NONE);
        ck_assert_int_eq(gws_filter_decide(cfg, &ev, &anom), GWS_KEEP_ANOMALY);
        gws_config_set(cfg, "filter.normal_sample_rate", "1", err,
                       sizeof(err));
        ck_assert_int_eq(gws_filter_decide(cfg, &ev, &normal), GWS_KEEP_SAMPLE);
        gws_event_clear(&ev);
        ck_assert_str_eq(gws_keep2str(GWS_KEEP_ANOMALY), "anomaly");
}
END_TEST

/* A filter of the configuration with \p json loaded over it. */
static gws_filter_t *filter_with(const char *json) {
        gws_filter_t *f;
        ck_assert_msg(gws_config_load_string(cfg, json, err, sizeof(err)) ==
                          0,
                      "%s", err);
        f = gws_filter_new(cfg, err, sizeof(err));
        ck_assert_msg(f != NULL, "%s", err);
        return f;
}

START_TEST(rules_first_match_and_force) {
        gws_filter_t *f;
        const char *rule;
        f = filter_with(
            "{\"filter\":{\"normal_sample_rate\":0,\"rules\":["
            "{\"name\":\"vip\",\"when\":{\"all\":[{\"field\":"
            "\"metadata.tier\",\"in\":[\"gold\",\"platinum\"]},{\"field\":"
            "\"tokens_in\",\"gte\":100}]},\"action\":\"keep\"},"
            "{\"name\":\"no-emb\",\"when\":{\"field\":\"endpoint\","
            "\"prefix\":\"emb\"},\"action\":\"drop\"},"
            "{\"name\":\"hard\",\"when\":{\"field\":\"user_id\",\"equals\":"
            "\"bot\"},\"action\":\"drop\",\"force\":true},"
            "{\"name\":\"none\",\"when\":{\"not\":{\"field\":\"user_id\","
            "\"exists\":true}},\"action\":\"sample\",\"rate\":1}]}}");
        ck_assert_int_eq(gws_filter_rule_count(f), 4);

        ck_assert_int_eq(eval_json(f, EV(200, ",\"user_id\":\"u\",\"tokens_in\":150,"
                           "\"metadata\":{\"tier\":\"gold\"}"), &rule), GWS_KEEP_RULE);
        ck_assert_str_eq(rule, "vip");

        /* drop rule does not drop an error unless forced */
        ck_assert_int_eq(eval_json(f, EV(500, ",\"user_id\":\"u\",\"endpoint\":\"embeddings\""), &rule), GWS_KEEP_ERROR);
        ck_assert_int_eq(eval_json(f, EV(500, ",\"user_id\":\"bot\""), &rule), GWS_KEEP_NONE);
        ck_assert_str_eq(rule, "hard");

        /* no user: sample rule at rate 1 keeps it as rule:none */
        ck_assert_int_eq(eval_json(f, EV(200, ""), &rule), GWS_KEEP_RULE);
        ck_assert_str_eq(rule, "none");
        gws_filter_destroy(f);
}
END_TEST

/* A name given twice: rules read the value the event view reads (the
 * last, as most JSON parsers do), at any depth. Before, rules read the
 * first: a force-drop rule on model "gpt-4o" dropped an event the
 * detectors scored as model "o1". */
START_TEST(duplicate_names_last_wins) {
        gws_filter_t *f;
        gws_event_t ev;
        gws_score_t sc = {0, 0};
        const char *rule;
        f = filter_with(
            "{\"filter\":{\"normal_sample_rate\":0,\"rules\":["
            "{\"name\":\"old\",\"when\":{\"field\":\"model\",\"equals\":"
            "\"gpt-4o\"},\"action\":\"drop\",\"force\":true},"
            "{\"name\":\"gold\",\"when\":{\"field\":\"metadata.tier\","
            "\"equals\":\"gold\"},\"action\":\"keep\"}]}}");

        parse(&ev, EV(200, ",\"model\":\"o1\",\"metadata\":{\"tier\":"
                           "\"free\",\"tier\":\"gold\"}"));
        ck_assert_int_eq((int)ev.model.len, 2); /* the view: the last */
        ck_assert_int_eq(gws_filter_eval(f, &ev, &sc, &rule), GWS_KEEP_RULE);
        ck_assert_str_eq(rule, "gold");
        gws_event_clear(&ev);
        gws_filter_destroy(f);
}
END_TEST

/* null is absent, for the events ("user_id": null is no user id) and for
 * `exists`; `equals: null` and `in: [..., null]` took only a written
 * null, so {"equals": null} and {"not": {"exists": true}} disagreed on
 * an event without the field. */
START_TEST(null_matches_absent) {
        gws_filter_t *f;
        const char *rule;
        f = filter_with(
            "{\"filter\":{\"normal_sample_rate\":0,\"rules\":["
            "{\"name\":\"anon\",\"when\":{\"field\":\"user_id\",\"equals\":"
            "null},\"action\":\"keep\"},"
            "{\"name\":\"notier\",\"when\":{\"field\":\"metadata.tier\","
            "\"in\":[\"free\",null]},\"action\":\"keep\"}]}}");
        ck_assert_int_eq(eval_json(f, EV(200, ""), &rule), GWS_KEEP_RULE);
        ck_assert_str_eq(rule, "anon");
        ck_assert_int_eq(eval_json(f, EV(200, ",\"user_id\":null"), &rule),
                         GWS_KEEP_RULE);
        ck_assert_str_eq(rule, "anon");
        ck_assert_int_eq(eval_json(f, EV(200, ",\"user_id\":\"u1\""), &rule),
                         GWS_KEEP_RULE);
        ck_assert_str_eq(rule, "notier"); /* no metadata: no tier */
        ck_assert_int_eq(eval_json(f, EV(200, ",\"user_id\":\"u1\","
                                              "\"metadata\":{\"tier\":\"gold\"}"),
                                   &rule),
                         GWS_KEEP_NONE);
        ck_assert_int_eq(eval_json(f, EV(200, ",\"user_id\":\"u1\","
                                              "\"metadata\":{\"tier\":null}"),
                                   &rule),
                         GWS_KEEP_RULE);
        gws_filter_destroy(f);
}
END_TEST

/* Integers above 2^53 (account or customer ids written as numbers) are
 * compared exactly: as doubles, 9007199254740993 equalled
 * 9007199254740992, and a rule on one id kept (or force-dropped) its
 * neighbour's events. */
START_TEST(large_integers_compare_exactly) {
        gws_filter_t *f;
        const char *rule;
        f = filter_with(
            "{\"filter\":{\"normal_sample_rate\":0,\"rules\":["
            "{\"name\":\"acct\",\"when\":{\"field\":\"metadata.acct\","
            "\"equals\":9007199254740993},\"action\":\"keep\"},"
            "{\"name\":\"big\",\"when\":{\"field\":\"metadata.n\","
            "\"gt\":9007199254740992},\"action\":\"keep\"}]}}");

        ck_assert_int_eq(eval_json(f, EV(200, ",\"metadata\":{\"acct\":9007199254740992}"), &rule), GWS_KEEP_NONE);
        ck_assert_int_eq(eval_json(f, EV(200, ",\"metadata\":{\"acct\":9007199254740993}"), &rule), GWS_KEEP_RULE);
        ck_assert_str_eq(rule, "acct");
        ck_assert_int_eq(eval_json(f, EV(200, ",\"metadata\":{\"n\":9007199254740993}"), &rule), GWS_KEEP_RULE);
        ck_assert_str_eq(rule, "big");
        ck_assert_int_eq(eval_json(f, EV(200, ",\"metadata\":{\"n\":9007199254740992}"), &rule), GWS_KEEP_NONE);
        /* small numbers as before: 1000 equals 1000.0 and 1e3 */
        gws_filter_destroy(f);
        f = filter_with(
            "{\"filter\":{\"rules\":[{\"name\":\"k\",\"when\":"
            "{\"field\":\"tokens_in\",\"equals\":1000},"
            "\"action\":\"keep\"}]}}");
        ck_assert_int_eq(eval_json(f, EV(200, ",\"metadata\":{\"x\":1},\"tokens_in\":1000"), &rule), GWS_KEEP_RULE);
        gws_filter_destroy(f);
}
END_TEST

/* A number is compared by its value, however it is written: JSON has
 * one number type, and a gateway or a shipper that goes through a double
 * (or Python's float) writes 9007199254740993.0 or 9.007199254740993e15.
 * Those went through a double too and compared as their neighbours;
 * 9223372036854775808, beyond int64, equalled INT64_MAX; fractions
 * beyond a double's 17 digits vanished (999.99999999999999999 was not
 * below 1000); and 1e400, beyond a double, compared with nothing. */
static const struct {
        const char *op;    /* the rule's operator and value */
        const char *value; /* metadata.n as written */
        int match;
} numrows[] = {
    {"\"equals\":9007199254740993", "9007199254740993.0", 1},
    {"\"equals\":9007199254740993", "9.007199254740993e15", 1},
    {"\"equals\":9007199254740993", "90071992547409930e-1", 1},
    {"\"equals\":9007199254740993", "9007199254740992.0", 0},
    {"\"equals\":9007199254740993", "9007199254740993.5", 0},
    {"\"in\":[1,9223372036854775807]", "9223372036854775808", 0},
    {"\"equals\":9223372036854775807", "9223372036854775807.0", 1},
    {"\"equals\":-9223372036854775808", "-9223372036854775808", 1},
    {"\"equals\":-9223372036854775808", "-9223372036854775809", 0},
    {"\"lte\":9223372036854775807", "9223372036854775808", 0},
    {"\"gt\":9007199254740992", "9007199254740992.5", 1},
    {"\"lt\":1000", "999.99999999999999999", 1},
    {"\"gte\":1000", "999.99999999999999999", 0},
    {"\"gt\":5", "1e400", 1},
    {"\"lt\":5", "-1e400", 1},
    {"\"gt\":0.5", "1e400", 1},
    {"\"equals\":0", "-0.0e-7", 1},
    {"\"equals\":0", "1e-400", 0},
    {"\"gt\":0", "1e-400", 1},
    {"\"lt\":0", "-1e-400", 1},
    {"\"equals\":100", "1E+2", 1},
    {"\"equals\":100", "0.0001e6", 1},
    {"\"gte\":100", "99.9", 0},
};

START_TEST(numbers_compare_by_value) {
        char json[512], ev[256];
        gws_filter_t *f;
        const char *rule;
        gws_keep_t k;
        snprintf(json, sizeof(json),
                 "{\"filter\":{\"normal_sample_rate\":0,\"rules\":[{\"name\":"
                 "\"n\",\"when\":{\"field\":\"metadata.n\",%s},\"action\":"
                 "\"keep\"}]}}",
                 numrows[_i].op);
        f = filter_with(json);
        snprintf(ev, sizeof(ev), EV(200, ",\"metadata\":{\"n\":%s}"),
                 numrows[_i].value);
        k = eval_json(f, ev, &rule);
        gws_filter_destroy(f);
        ck_assert_msg((k == GWS_KEEP_RULE) == numrows[_i].match,
                      "{%s} on %s: %s, expected %s", numrows[_i].op,
                      numrows[_i].value,
                      k == GWS_KEEP_RULE ? "matched" : "did not match",
                      numrows[_i].match ? "a match" : "none");
}
END_TEST

static const struct {
        const char *rules;
        const char *needle;
} badrules[] = {
    {"[{\"name\":\"a\",\"when\":{\"field\":\"x\",\"equal\":1},"
     "\"action\":\"keep\"}]", "unknown operator \"equal\""},
    {"[{\"when\":{\"field\":\"x\",\"equals\":1},\"action\":\"keep\"}]",
     "filter.rules[0].name"},
    {"[{\"name\":\"a\",\"when\":{\"field\":\"x\",\"equals\":1},"
     "\"action\":\"nuke\"}]", "filter.rules[0].action"},
    {"[{\"name\":\"a\",\"when\":{\"field\":\"x\",\"equals\":1},"
     "\"action\":\"sample\"}]", "needs a rate"},
    {"[{\"name\":\"a\",\"when\":{\"field\":\"x\",\"gt\":\"1\"},"
     "\"action\":\"keep\"}]", "wrong value type"},
    {"[{\"name\":\"a\",\"when\":{\"all\":[]},\"action\":\"keep\"}]",
     "non-empty array"},
    {"[{\"name\":\"a\",\"when\":{\"field\":\"x\",\"equals\":1},"
     "\"action\":\"keep\"},{\"name\":\"a\",\"when\":{\"field\":\"x\","
     "\"equals\":1},\"action\":\"keep\"}]", "used twice"},
};

START_TEST(rule_errors_are_precise) {
        char json[1024];
        gws_filter_t *f;
        snprintf(json, sizeof(json), "{\"filter\":{\"rules\":%s}}",
                 badrules[_i].rules);
        ck_assert_int_eq(gws_config_load_string(cfg, json, err, sizeof(err)),
                         0);
        f = gws_filter_new(cfg, err, sizeof(err));
        ck_assert_ptr_null(f);
        ck_assert_msg(strstr(err, badrules[_i].needle), "%s", err);
}
END_TEST

Suite *gws_filter_suite(void) {
        Suite *s = suite_create("filter");
        TCase *tc = tcase_create("decide");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, sampling_is_deterministic);
        tcase_add_test(tc, default_policy);
        tcase_add_test(tc, rules_first_match_and_force);
        tcase_add_test(tc, duplicate_names_last_wins);
        tcase_add_test(tc, large_integers_compare_exactly);
        tcase_add_test(tc, null_matches_absent);
        tcase_add_loop_test(tc, numbers_compare_by_value, 0,
                            sizeof(numrows) / sizeof(numrows[0]));
        tcase_add_loop_test(tc, rule_errors_are_precise, 0,
                            sizeof(badrules) / sizeof(badrules[0]));
        suite_add_tcase(s, tc);
        return s;
}
