/* test_json.c - the tokenizer: structure, strictness, limits, strings,
 * numbers (the fast path must equal strtod bit for bit). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gwsieve/json.h"
#include "suites.h"

static const struct {
        const char *in;
        gws_jerr_t err;
} docs[] = {
    {"{}", GWS_JE_OK},
    {" {\"a\" : [1, -2.5e3, true, false, null, \"x\"] } \n", GWS_JE_OK},
    {"[[[]]]", GWS_JE_OK},
    {"\"\\u00e9\\ud83d\\ude00\"", GWS_JE_OK},
    {"0", GWS_JE_OK},
    {"", GWS_JE_SYNTAX},
    {"{", GWS_JE_SYNTAX},
    {"{\"a\"}", GWS_JE_SYNTAX},
    {"{\"a\":1,}", GWS_JE_SYNTAX},
    {"[1,]", GWS_JE_SYNTAX},
    {"[1 2]", GWS_JE_SYNTAX},
    {"01", GWS_JE_SYNTAX},
    {"1.", GWS_JE_SYNTAX},
    {"-", GWS_JE_SYNTAX},
    {"1e", GWS_JE_SYNTAX},
    {"tru", GWS_JE_SYNTAX},
    {"\"a\\x\"", GWS_JE_SYNTAX},
    {"\"a\tb\"", GWS_JE_SYNTAX},
    {"\"abc", GWS_JE_SYNTAX},
    {"{} {}", GWS_JE_SYNTAX},
    {"\"\\ud800\"", GWS_JE_UTF8},
    {"\"\\udc00\"", GWS_JE_UTF8},
    {"\"\xc3\x28\"", GWS_JE_UTF8},
    {"[\"0123456789abcdef0123456789\xff\"]", GWS_JE_UTF8},
    {"\xff\xfe", GWS_JE_UTF8}, /* stray bytes outside strings */
    {"\"0123456789abcdef0123456789abcdef\\\"tail\"", GWS_JE_OK},
};

START_TEST(documents) {
        gws_jdoc_t doc = {0};
        gws_jerr_t e = gws_json_parse(&doc, docs[_i].in, strlen(docs[_i].in),
                                      NULL);
        ck_assert_msg(e == docs[_i].err, "%s: got %d want %d", docs[_i].in, e,
                      docs[_i].err);
        gws_json_free(&doc);
}
END_TEST

START_TEST(tape_structure) {
        const char *in = "{\"a\":{\"b\":[1,2]},\"c\\u0064\":\"x\\ny\"}";
        gws_jdoc_t doc = {0};
        uint32_t v;
        char buf[16];
        ck_assert_int_eq(gws_json_parse(&doc, in, strlen(in), NULL),
                         GWS_JE_OK);
        ck_assert_uint_eq(doc.toks[0].next, doc.ntoks);
        v = gws_json_obj_get(&doc, 0, "a", 1);
        ck_assert_int_eq(doc.toks[v].type, GWS_JT_OBJ);
        v = gws_json_obj_get(&doc, v, "b", 1);
        ck_assert_int_eq(doc.toks[v].type, GWS_JT_ARR);
        ck_assert_uint_eq(doc.toks[v].next - v, 3); /* [ 1 2 */
        v = gws_json_obj_get(&doc, 0, "cd", 2);     /* escaped key */
        ck_assert_uint_ne(v, 0);
        ck_assert_uint_eq(gws_json_str_decode(&doc, &doc.toks[v], buf), 3);
        ck_assert_int_eq(memcmp(buf, "x\ny", 3), 0);
        ck_assert_uint_eq(gws_json_obj_get(&doc, 0, "zz", 2), 0);
        gws_json_free(&doc);
}
END_TEST

START_TEST(limits) {
        gws_json_limits_t lim = {3, 0, 0};
        gws_jdoc_t doc = {0};
        ck_assert_int_eq(gws_json_parse(&doc, "[[[1]]]", 7, &lim), GWS_JE_OK);
        ck_assert_int_eq(gws_json_parse(&doc, "[[[[1]]]]", 9, &lim),
                         GWS_JE_DEPTH);
        lim.max_depth = 0;
        lim.max_tokens = 3;
        ck_assert_int_eq(gws_json_parse(&doc, "[1,2]", 5, &lim), GWS_JE_OK);
        ck_assert_int_eq(gws_json_parse(&doc, "[1,2,3]", 7, &lim),
                         GWS_JE_TOKENS);
        lim.max_tokens = 0;
        lim.max_string = 3;
        ck_assert_int_eq(gws_json_parse(&doc, "\"abc\"", 5, &lim), GWS_JE_OK);
        ck_assert_int_eq(gws_json_parse(&doc, "\"abcd\"", 6, &lim),
                         GWS_JE_STRING);
        gws_json_free(&doc);
}
END_TEST

START_TEST(numbers_equal_strtod) {
        gws_jdoc_t doc = {0};
        char buf[64];
        uint64_t x = 42;
        int i;
        for (i = 0; i < 200000; i++) {
                double got, want;
                int n;
                x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                switch (i % 4) {
                case 0: n = snprintf(buf, sizeof(buf), "%llu.%03u",
                                     (unsigned long long)(x >> 44),
                                     (unsigned)(x % 1000)); break;
                case 1: n = snprintf(buf, sizeof(buf), "%.*f", (int)(x % 9),
                                     (double)(x >> 20) / 1e6); break;
                case 2: n = snprintf(buf, sizeof(buf), "-%llu",
                                     (unsigned long long)(x >> 8)); break;
                default: n = snprintf(buf, sizeof(buf), "%.17g",
                                      (double)(x >> 11) / 9007199254740992.0);
                }
                ck_assert_int_eq(gws_json_parse(&doc, buf, (size_t)n, NULL),
                                 GWS_JE_OK);
                ck_assert_int_eq(gws_json_num(&doc, &doc.toks[0], &got), 0);
                want = strtod(buf, NULL);
                ck_assert_msg(memcmp(&got, &want, sizeof(got)) == 0,
                              "%s: %.17g != %.17g", buf, got, want);
        }
        gws_json_free(&doc);
}
END_TEST

/* The string scan keeps a bit mask of special bytes per 64-byte block and
 * shares it between strings: every position of a special byte relative to
 * a block (and to the end of the buffer) must give the same answer. */
START_TEST(strings_across_blocks) {
        static const struct {
                const char *ins; /* put at position k of the contents */
                gws_jerr_t err;  /* GWS_JE_OK: one string token */
                int esc;
        } sp[] = {
            {"\\\"", GWS_JE_OK, 1},     {"\\u00e9", GWS_JE_OK, 1},
            {"\xc3\xa9", GWS_JE_OK, 0}, {"\xe2\x82\xac", GWS_JE_OK, 0},
            {"\t", GWS_JE_SYNTAX, 0},   {"\xc3", GWS_JE_UTF8, 0},
            {"\\x", GWS_JE_SYNTAX, 0},  {"", GWS_JE_OK, 0},
        };
        gws_jdoc_t doc = {0};
        char buf[512];
        size_t pad, clen, k, s, n, at;
        for (s = 0; s < sizeof(sp) / sizeof(sp[0]); s++)
        for (pad = 0; pad < 70; pad += 3)
        for (clen = 0; clen < 140; clen += 7)
        for (k = 0; k <= clen; k += 5) {
                gws_jerr_t e;
                size_t il = strlen(sp[s].ins);
                /* [ + pad spaces + "key" : + "contents" ] */
                n = 0;
                buf[n++] = '{';
                memset(buf + n, ' ', pad);
                n += pad;
                memcpy(buf + n, "\"k\":\"", 5);
                n += 5;
                at = n;
                memset(buf + n, 'a', clen);
                memmove(buf + n + k + il, buf + n + k, clen - k);
                memcpy(buf + n + k, sp[s].ins, il);
                n += clen + il;
                buf[n++] = '"';
                buf[n++] = '}';
                e = gws_json_parse(&doc, buf, n, NULL);
                ck_assert_msg(e == sp[s].err, "ins %zu pad %zu len %zu at %zu:"
                              " got %d (%s)", s, pad, clen, k, e,
                              doc.err_what ? doc.err_what : "");
                if (e == GWS_JE_OK) {
                        ck_assert_uint_eq(doc.ntoks, 3);
                        ck_assert_uint_eq(doc.toks[2].start, at - 1);
                        ck_assert_uint_eq(doc.toks[2].len, clen + il + 2);
                        ck_assert_int_eq(!!(doc.toks[2].flags & GWS_JF_ESC),
                                         sp[s].esc);
                } else {
                        ck_assert_uint_eq(doc.err_off, at + k);
                }
                /* cut inside the string: never read past the end */
                e = gws_json_parse(&doc, buf, at + k + il / 2, NULL);
                ck_assert_int_ne(e, GWS_JE_OK);
        }
        gws_json_free(&doc);
}
END_TEST

Suite *gws_json_suite(void) {
        Suite *s = suite_create("json");
        TCase *tc = tcase_create("tokenize");
        tcase_add_loop_test(tc, documents, 0, sizeof(docs) / sizeof(docs[0]));
        tcase_add_test(tc, tape_structure);
        tcase_add_test(tc, limits);
        tcase_add_test(tc, numbers_equal_strtod);
        tcase_add_test(tc, strings_across_blocks);
        suite_add_tcase(s, tc);
        return s;
}
