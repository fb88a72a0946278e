/* test_json.c - the tokenizer: structure, strictness, limits, strings,
 * numbers (the fast path must equal strtod bit for bit). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gwsieve/json.h"
#include "ref/json_ref.h"
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

/* A number is a number however many digits it is written with: some
 * serializers write a double's exact decimal expansion (0.1 as 55
 * digits), or pad fractions. 64 characters and more were refused (the
 * copy for strtod() was a 64-byte buffer), and the event went to the
 * dead-letter topic as if latency_ms were negative. */
START_TEST(long_numbers_read) {
        static const char *const nums[] = {
            "0.1000000000000000055511151231257827021181583404541015625",
            "1.0000000000000000000000000000000000000000000000000000000000000"
            "0000001",
            "123.45000000000000000000000000000000000000000000000000000000000"
            "000000000000000000000000000000000000000000000000000000000000000",
            "-2.5000000000000000000000000000000000000000000000000000000000000"
            "00000e-3"};
        gws_jdoc_t doc = {0};
        size_t i;
        for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
                double got = -1, want = strtod(nums[i], NULL);
                ck_assert_int_eq(
                    gws_json_parse(&doc, nums[i], strlen(nums[i]), NULL),
                    GWS_JE_OK);
                ck_assert_msg(gws_json_num(&doc, &doc.toks[0], &got) == 0,
                              "%zu characters refused: %s", strlen(nums[i]),
                              nums[i]);
                ck_assert_msg(memcmp(&got, &want, sizeof(got)) == 0,
                              "%s: %.17g, strtod %.17g", nums[i], got, want);
        }
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
                switch (i % 6) {
                case 4: n = snprintf(buf, sizeof(buf), "%.*e", (int)(x % 15),
                                     (double)(x >> 11) /
                                         ((x & 1) ? 1e9 : 1e-9)); break;
                case 5: n = snprintf(buf, sizeof(buf), "-%lluE%+d",
                                     (unsigned long long)(x >> 40),
                                     (int)(x % 61) - 30); break;
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


/* ------------------------------------------------------------------------
 * Differential: gws_json_parse() against the frozen reference tokenizer
 * (tests/ref/json_ref.c, the tokenizer before its fast path). On every
 * input both must agree: the result, and on success every token, on error
 * the offset and the description. Inputs: gateway events shaped like the
 * generator's (compact, pretty-printed, with escapes and UTF-8), the
 * documents above, and each of them mutated one to three times with the
 * bytes that matter to a tokenizer, under four sets of limits.
 * ------------------------------------------------------------------------ */

static const char *const diff_seeds[] = {
    "{\"id\":\"d4ed335a-6c15-4c2c-910f-626274703747\",\"ts\":\"2026-12-02T04:"
    "55:37.160Z\",\"gateway_id\":\"gw-03\",\"account_id\":\"acct-1074\","
    "\"provider\":\"google-ai-studio\",\"model\":\"gemini-1.5-flash\","
    "\"endpoint\":\"generateContent\",\"method\":\"POST\",\"status\":200,"
    "\"success\":true,\"cached\":false,\"latency_ms\":424.7,\"ttfb_ms\":154."
    "5,\"tokens_in\":652,\"tokens_out\":220,\"cost_usd\":0.000115,\"client_"
    "ip\":\"10.3.0.1\",\"user_id\":\"u-03-00275\",\"user_agent\":\"curl/8.5."
    "0\",\"metadata\":{\"app\":\"app-0\",\"env\":\"prod\",\"team\":\"team-2"
    "\"},\"request\":{\"model\":\"gemini-1.5-flash\",\"messages\":[{\"role\""
    ":\"system\",\"content\":\"handler review invoice summarize python betw"
    "een consider request error async explain explain ticket joins\"},{\"ro"
    "le\":\"user\",\"content\":\"handler and await with orders a kubernetes "
    "capital summarize await and sorted refund consider customer pull ticke"
    "t customer deploy account short coffee that error ticket\"}],\"tempera"
    "ture\":0.9,\"max_tokens\":1024},\"response\":{\"id\":\"chatcmpl-361082"
    "39\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"messag"
    "e\":{\"role\":\"assistant\",\"content\":\"account for sql ticket this "
    "ticket are kubernetes invoice joins short orders are error\"},\"finish"
    "_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":652,\"completion_tok"
    "ens\":220,\"x\":[-0,1e5,-2.5E-3,1E+2,null,[],{},[[{}]]]}}}",
    "{\n  \"id\" : \"e1\",\n\t\"ts\": 1764651337160 ,\r\n  \"status\" :"
    " 503, \"tags\" : [ \"a\" , \"b\" ] ,\n  \"body\" : { \"k\" : [ 1 , 2."
    "5 , true , false , null ] }\n}\n",
    "{\"q\":\"line\\none\\ttab \\\"quoted\\\" back\\\\slash \\/ \\b\\f\\r"
    "\\u00e9\\ud83d\\ude00 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\","
    "\"k\\u0065y\":\"v\",\"n\":[12345678901234567890,0.1,-1e-400,1e400]}",
    "[\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abc\","
    "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\","
    "\"\\\\\\\\\\\\\\\"\",\"\",\"\\\"\",{\"\":\"\"}]",
    "  [ ] ",
    "\"only a string\"",
    "-12.5e+7",
};

static const char diff_bytes[] = "\"\\{}[]:,  \n\t\r0123456789-+.eEtfnlu"
                                 "a\x00\x01\x1f\x7f\x80\xbf\xc2\xc3\xe2\xed"
                                 "\xf0\xf4\xf5\xff";

static uint64_t diff_rng(uint64_t *s) {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

/* One input under one set of limits: both tokenizers, same answer. */
static void diff_one(gws_jdoc_t *a, gws_jdoc_t *b, const char *in, size_t n,
                     const gws_json_limits_t *lim, uint64_t seed) {
        gws_jerr_t ea = gws_json_parse(a, in, n, lim);
        gws_jerr_t eb = gws_json_ref_parse(b, in, n, lim);
        uint32_t k;

        ck_assert_msg(ea == eb,
                      "seed %llu: result %d, the reference %d (%s at %zu) on "
                      "%.*s",
                      (unsigned long long)seed, ea, eb,
                      b->err_what ? b->err_what : "ok", b->err_off,
                      (int)(n < 300 ? n : 300), in);
        if (eb != GWS_JE_OK) {
                ck_assert_msg(a->err_off == b->err_off &&
                                  !strcmp(a->err_what, b->err_what),
                              "seed %llu: error \"%s\" at %zu, the reference "
                              "\"%s\" at %zu",
                              (unsigned long long)seed, a->err_what,
                              a->err_off, b->err_what, b->err_off);
                return;
        }
        ck_assert_uint_eq(a->ntoks, b->ntoks);
        for (k = 0; k < a->ntoks; k++) {
                const gws_jtok_t *x = &a->toks[k], *y = &b->toks[k];
                ck_assert_msg(x->start == y->start && x->len == y->len &&
                                  x->next == y->next && x->type == y->type &&
                                  x->flags == y->flags && x->depth == y->depth,
                              "seed %llu token %u: start %u len %u next %u "
                              "type %u flags %u depth %u, the reference %u %u "
                              "%u %u %u %u",
                              (unsigned long long)seed, k, x->start, x->len,
                              x->next, x->type, x->flags, x->depth, y->start,
                              y->len, y->next, y->type, y->flags, y->depth);
        }
}

START_TEST(matches_reference) {
        static const gws_json_limits_t lims[] = {
            {0, 0, 0}, {3, 0, 0}, {0, 40, 0}, {0, 0, 30}};
        gws_jdoc_t a = {0}, b = {0};
        char buf[4096];
        uint64_t rng = 0x9e3779b97f4a7c15ULL;
        size_t nseed = sizeof(diff_seeds) / sizeof(diff_seeds[0]);
        size_t ndoc = sizeof(docs) / sizeof(docs[0]);
        size_t iter, i, l;
        int m, nm;

        /* Every seed and document, and every prefix of the first seed
         * (each place the input can end), under every limit. */
        for (l = 0; l < sizeof(lims) / sizeof(lims[0]); l++) {
                for (i = 0; i < nseed; i++)
                        diff_one(&a, &b, diff_seeds[i], strlen(diff_seeds[i]),
                                 &lims[l], i);
                for (i = 0; i < ndoc; i++)
                        diff_one(&a, &b, docs[i].in, strlen(docs[i].in),
                                 &lims[l], i);
                for (i = 0; i <= strlen(diff_seeds[0]); i++)
                        diff_one(&a, &b, diff_seeds[0], i, &lims[l], i);
        }
        for (iter = 0; iter < 60000; iter++) {
                uint64_t seed = rng;
                const char *src;
                size_t n;
                if (diff_rng(&rng) % 4) {
                        src = diff_seeds[diff_rng(&rng) % nseed];
                } else {
                        src = docs[diff_rng(&rng) % ndoc].in;
                }
                n = strlen(src);
                memcpy(buf, src, n);
                nm = 1 + (int)(diff_rng(&rng) % 3);
                for (m = 0; m < nm; m++) {
                        uint64_t r = diff_rng(&rng);
                        size_t at = n ? (size_t)(r >> 8) % n : 0;
                        char c = diff_bytes[(r >> 40) % (sizeof(diff_bytes) -
                                                         1)];
                        switch (r % 5) {
                        case 0: /* replace */
                        case 1:
                                if (n)
                                        buf[at] = c;
                                break;
                        case 2: /* insert */
                                if (n + 1 < sizeof(buf)) {
                                        memmove(buf + at + 1, buf + at,
                                                n - at);
                                        buf[at] = c;
                                        n++;
                                }
                                break;
                        case 3: /* delete */
                                if (n) {
                                        memmove(buf + at, buf + at + 1,
                                                n - at - 1);
                                        n--;
                                }
                                break;
                        default: /* cut */
                                n = at;
                                break;
                        }
                }
                diff_one(&a, &b, buf, n, &lims[iter % 4 ? 0 : iter / 4 % 4],
                         seed);
        }
        gws_json_free(&a);
        gws_json_free(&b);
}
END_TEST

Suite *gws_json_suite(void) {
        Suite *s = suite_create("json");
        TCase *tc = tcase_create("tokenize");
        tcase_add_loop_test(tc, documents, 0, sizeof(docs) / sizeof(docs[0]));
        tcase_add_test(tc, tape_structure);
        tcase_add_test(tc, limits);
        tcase_add_test(tc, numbers_equal_strtod);
        tcase_add_test(tc, long_numbers_read);
        tcase_add_test(tc, strings_across_blocks);
        tcase_add_test(tc, matches_reference);
        suite_add_tcase(s, tc);
        return s;
}
