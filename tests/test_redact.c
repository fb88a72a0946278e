/* test_redact.c - planted secrets are all redacted with the right kind;
 * look-alikes stay byte-identical; custom patterns; IP truncation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gwsieve/redact.h"
#include "suites.h"

static gws_redact_t *r;
static gws_redact_scratch_t *sc;

static void setup(void) {
        char err[256];
        r = gws_redact_new(NULL, NULL, NULL, 0, err, sizeof(err));
        sc = gws_redact_scratch_new(r);
}
static void teardown(void) {
        gws_redact_scratch_destroy(sc);
        gws_redact_destroy(r);
}

/* secret, expected kind; each is planted at start, middle and end and
 * next to punctuation by the test. */
static const struct {
        const char *secret;
        gws_redact_kind_t kind;
} secrets[] = {
    {"sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", GWS_RK_OPENAI_KEY},
    {"sk-abcdefghijklmnopqrstuvwxyz012345", GWS_RK_OPENAI_KEY},
    {"sk-svcacct-AAAAbbbbCCCCddddEEEEffff", GWS_RK_OPENAI_KEY},
    {"sk-ant-api03-abcdefghijklmnopqrstuvwxyz-ABCDEFG", GWS_RK_ANTHROPIC_KEY},
    {"AKIAIOSFODNN7EXAMPLE", GWS_RK_AWS_ACCESS_KEY},
    {"ASIAY34FZKBOKMUTVV7A", GWS_RK_AWS_ACCESS_KEY},
    {"AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", GWS_RK_GOOGLE_API_KEY},
    {"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", GWS_RK_GITHUB_TOKEN},
    {"github_pat_11ABCDEFG0abcdefghijklmn_opqrstuvwxyz0123456789ABCDEFGHIJ",
     GWS_RK_GITHUB_TOKEN},
    {"xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
     GWS_RK_SLACK_TOKEN},
    /* app-level and rotating (refresh) tokens */
    {"xapp-1-A01B2C3D4E5-1234567890123-abcdef0123456789abcdef",
     GWS_RK_SLACK_TOKEN},
    {"xoxe-1-My0xLTEyMzQ1Njc4OTAtYWJjZGVmZ2hpams", GWS_RK_SLACK_TOKEN},
    {"sk_live_51H8xYzAbCdEfGhIjKlMnOpQr", GWS_RK_STRIPE_KEY},
    {"rk_test_4eC39HqLyjWDarjtT1zdp7dc", GWS_RK_STRIPE_KEY},
    {"hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", GWS_RK_HUGGINGFACE_TOKEN},
    /* a password in a URL's userinfo (RFC 3986 3.2.1), the host an
     * address: no e-mail either */
    {"postgres://admin:s3cr3tP4ss@10.0.0.5:5432/db", GWS_RK_URL_CREDENTIAL},
    {"https://bot:hunter2hunter2@[2001:db8::1]/x", GWS_RK_URL_CREDENTIAL},
    /* RFC 7617: base64 of user:password */
    {"Basic dXNlcm5hbWU6c3VwZXJzZWNyZXRwYXNzd29yZA==", GWS_RK_BASIC_AUTH},
    {"BASIC YWRtaW46aHVudGVyMg", GWS_RK_BASIC_AUTH},
    {"https://api.example.com/v1/chat?api_key=9f8e7d6c5b4a3928", GWS_RK_URL_CREDENTIAL},
    {"https://x.blob.core.windows.net/c/b?sv=2022-11-02&SIG=AbCd%2F12%3D", GWS_RK_URL_CREDENTIAL},
    {"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
     "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     GWS_RK_JWT},
    {"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n"
     "-----END RSA PRIVATE KEY-----",
     GWS_RK_PRIVATE_KEY},
    {"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGXabcdEFGH\n"
     "-----END PGP PRIVATE KEY BLOCK-----",
     GWS_RK_PRIVATE_KEY},
    {"jane.doe+ai@example.co.uk", GWS_RK_EMAIL},
    {"4111 1111 1111 1111", GWS_RK_CARD},
    {"5500-0000-0000-0004", GWS_RK_CARD},
    {"378282246310005", GWS_RK_CARD},
    /* US social security numbers, written as they are (3-2-4) */
    {"078-05-1120", GWS_RK_SSN},
    {"219-09-9999", GWS_RK_SSN},
    /* phone numbers in international form (E.164, '+' and the country
     * code), with the usual separators */
    {"+1 415 555 0100", GWS_RK_PHONE},
    {"+44 20 7946 0958", GWS_RK_PHONE},
    {"+49-30-12345678", GWS_RK_PHONE},
    {"+1 (415) 555-0100", GWS_RK_PHONE},
    {"+33612345678", GWS_RK_PHONE},
};

static const char *wraps[] = {"%s", "key: %s and more", "x (%s)",
                              "line1\nline2 \"%s\"\n", "url?a=1&k=%s&b=2",
                              "%s, %s"};

START_TEST(secrets_all_redacted) {
        size_t w;
        for (w = 0; w < sizeof(wraps) / sizeof(wraps[0]); w++) {
                char in[1024], want[64];
                uint64_t counts[GWS_RK__CNT] = {0};
                gws_buf_t out = {0};
                int n;
                snprintf(in, sizeof(in), wraps[w], secrets[_i].secret,
                         secrets[_i].secret);
                ck_assert_int_eq(gws_redact_maybe(r, in, strlen(in)), 1);
                n = gws_redact_text(r, sc, in, strlen(in), &out, counts);
                ck_assert_msg(n >= 1, "not redacted in \"%s\"", in);
                ck_assert_msg(!strstr(out.buf, secrets[_i].secret),
                              "secret survives: %s", out.buf);
                snprintf(want, sizeof(want), "[REDACTED:%s]",
                         gws_redact_kind_name(secrets[_i].kind));
                ck_assert_msg(strstr(out.buf, want), "%s: got %s",
                              secrets[_i].secret, out.buf);
                ck_assert_uint_eq(counts[secrets[_i].kind], (uint64_t)n);
                gws_buf_free(&out);
        }
}
END_TEST

START_TEST(bearer_keeps_the_word) {
        const char *in = "Authorization: Bearer abcDEF123456._~+/ghijkl";
        gws_buf_t out = {0};
        ck_assert_int_eq(gws_redact_text(r, sc, in, strlen(in), &out, NULL),
                         1);
        ck_assert_str_eq(out.buf,
                         "Authorization: Bearer [REDACTED:bearer_token]");
        gws_buf_free(&out);
}
END_TEST

/* The auth scheme is case-insensitive (RFC 9110, 11.1): "BEARER" and
 * "bEaReR" carry the same token as "Bearer", at the start of a string,
 * after 16 bytes or more (the vector prefilter) and in a short one. */
START_TEST(bearer_any_case) {
        static const char *const words[] = {"BEARER", "bEaReR", "BEarer",
                                            "bearer"};
        static const char *const forms[] = {
            "%s abcdefghijklmnopqrstuvwxyz0123",
            "Authorization header value: %s abcdefghijklmnopqrstuvwxyz0123 "
            "and more text after it",
            "h: %s abcdefghijklmnop"};
        size_t w, k;
        for (w = 0; w < sizeof(forms) / sizeof(forms[0]); w++)
                for (k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
                        char in[256], want[64];
                        gws_buf_t out = {0};
                        snprintf(in, sizeof(in), forms[w], words[k]);
                        ck_assert_msg(gws_redact_maybe(r, in, strlen(in)) == 1,
                                      "prefilter passes over \"%s\"", in);
                        ck_assert_msg(gws_redact_text(r, sc, in, strlen(in),
                                                      &out, NULL) == 1,
                                      "not redacted: \"%s\"", in);
                        snprintf(want, sizeof(want),
                                 "%s [REDACTED:bearer_token]", words[k]);
                        ck_assert_msg(strstr(out.buf, want), "%s -> %s", in,
                                      out.buf);
                        gws_buf_free(&out);
                }
}
END_TEST

static const char *lookalikes[] = {
    "task-manager", "skeleton key", "sk-short", "ask-me-anything-later",
    "xAKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPL", "AKIAIOSFODNN7EXAMPLEX",
    "ghp_short", "xoxb-1", "Bearer short", "bearer", "eyJ alone",
    "basic information about it", "Basic Understanding of Kafka",
    "BASIC programming", "Basic dXNlcm5hbWU", "Basic YWI6Y2R",
    "why?Because", "R&D department", "?page=2&sort=asc", "&keyboard=qwerty12",
    "tokens=12345678", "?key=abcde", "&password=", "a?token", 
    "eyJhbGciOiJIUzI1NiJ9 only one part", "user@localhost", "a@b.c",
    "order 1234567890123 (not Luhn)", "ts 1767225600000",
    "-----BEGIN CERTIFICATE-----", "@mention",
    /* not SSNs: area 000, 666 or 9xx, group 00, serial 0000, other
     * shapes (a date, a phone, a longer hyphenated id) */
    "000-12-3456", "666-12-3456", "912-34-5678", "123-00-4567",
    "123-45-0000", "2026-12-02", "415-555-0100", "123-45-6789-01",
    "x123-45-6789", "v1.123-45-6789",
    /* not phones: too few or too many digits, a sum, a version, a
     * signed number in a formula */
    "+1234567", "+1 234", "a+12345678", "+12345678901234567",
    "+0 415 555 0100", "score +15.5%", "1+2+3+4+5+6+7+8+9",
    "4111 1111 1111 1112", "12345678901234567890123", "e-mail me",
    "v1.2.3-rc.4", "uuid 56b77b63-586b-4a9a-9ac7-43eadaf12514",
    /* regression: UUID whose last groups are 16 Luhn-valid digits */
    "06f2904c-9f73-4a8c-9006-445509614832",
    "chatcmpl-06f2904c-9f73-4a8c-9006-445509614832",
    "epoch 1767225600123", "1767225600123", "id 9006 445509614832",
    "sk_test_helpers_module", "risk_live_preview_enabled_flag_here",
    "hf_hub_download(repo_id)", "https://example.com/@user",
    "https://user@example", "-----BEGIN PGP PUBLIC KEY BLOCK-----",
    "see http://a.b/c:d@ here", "xapp-short",
    "",
};

START_TEST(lookalikes_untouched) {
        const char *in = lookalikes[_i];
        gws_buf_t out = {0};
        ck_assert_int_eq(gws_redact_text(r, sc, in, strlen(in), &out, NULL),
                         0);
        ck_assert_uint_eq(out.len, 0); /* nothing written */
        ck_assert_int_eq(gws_redact_maybe(r, in, strlen(in)), 0);
}
END_TEST

/* The prefilter tests 16 bytes at a time: a secret or a look-alike must be
 * treated the same at every offset from the start of the text (every lane,
 * and the scalar tail of short texts), after a word boundary or glued to a
 * letter. */
START_TEST(same_at_every_alignment) {
        const char *glue[] = {" ", "z", "-", "\n"};
        size_t n0 = sizeof(secrets) / sizeof(secrets[0]);
        size_t n1 = sizeof(lookalikes) / sizeof(lookalikes[0]);
        size_t x, k, g;
        for (x = 0; x < n0 + n1; x++)
        for (g = 0; g < sizeof(glue) / sizeof(glue[0]); g++) {
                const char *sec = x < n0 ? secrets[x].secret
                                         : lookalikes[x - n0];
                gws_buf_t ref = {0}, out = {0};
                char in[512];
                int nref = -1, mref = -1, n, m;
                for (k = 0; k < 34; k++) {
                        size_t len;
                        memset(in, ' ', k);
                        len = k + (size_t)snprintf(in + k, sizeof(in) - k,
                                                   "%s%s tail", glue[g], sec);
                        gws_buf_reset(&out);
                        n = gws_redact_text(r, sc, in, len, &out, NULL);
                        m = gws_redact_maybe(r, in, len);
                        if (n > 0) /* a changed text keeps the padding */
                                ck_assert_int_eq(memcmp(out.buf, in, k), 0);
                        if (k == 0) {
                                nref = n;
                                mref = m;
                                gws_buf_append(&ref, out.buf ? out.buf : "",
                                               out.len);
                                continue;
                        }
                        ck_assert_msg(n == nref && m == mref,
                                      "\"%s%s\" at %zu: %d/%d, at 0: %d/%d",
                                      glue[g], sec, k, n, m, nref, mref);
                        if (n > 0)
                                ck_assert_int_eq(memcmp(out.buf + k, ref.buf,
                                                        ref.len), 0);
                }
                gws_buf_free(&ref);
                gws_buf_free(&out);
        }
}
END_TEST

/* Bytes that did not parse as JSON (a dead letter's payload) may still
 * hold JSON escapes: a key after "\n" was not at a word start (the "n"
 * before it), an e-mail after "\n" took the "n" along. An escape of one
 * character separates words as that character would; the bytes around
 * the redactions stay as they were. */
START_TEST(escaped_text_separates_words) {
        static const struct {
                const char *in, *out;
        } t[] = {
            {"{\"p\":\"key:\\nsk-proj-AAAAAAAAAAAAAAAAAAAAAAAAAAAA\" trunc",
             "{\"p\":\"key:\\n[REDACTED:openai_key]\" trunc"},
            {"mail\\njohn.doe@example.com\\tok",
             "mail\\n[REDACTED:email]\\tok"},
            {"\\\"Bearer abcdefghijklmnopqrstuvwxyz012345\\\"",
             "\\\"Bearer [REDACTED:bearer_token]\\\""},
            /* an escaped backslash: the n after it is a letter */
            {"x\\\\nsk-proj-AAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL},
            {"no escapes sk-proj-AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
             "no escapes [REDACTED:openai_key]"},
        };
        size_t i;
        for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                gws_buf_t out = {0};
                int n = gws_redact_text_escaped(r, sc, t[i].in,
                                                strlen(t[i].in), &out, NULL);
                if (!t[i].out) {
                        ck_assert_msg(n == 0, "%zu: %d redactions: %s", i, n,
                                      out.buf);
                } else {
                        ck_assert_msg(n == 1, "%zu: %d redactions", i, n);
                        ck_assert_str_eq(out.buf, t[i].out);
                }
                gws_buf_free(&out);
        }
}
END_TEST

/* gws_redact_text_escaped() with custom patterns: they matched the text
 * as written, so the letter of an escape ("\nACCT-...") glued to the
 * secret and \b failed, and a \u escape ("\u0041CCT-...", "\u0020") was
 * six bytes of text. They now match the text decoded, like the built-in
 * detectors, and a match replaces the bytes that spell it, whole escapes
 * included (never half of one). */
START_TEST(custom_pattern_sees_escapes_decoded) {
        static const struct {
                const char *in, *out;
                int n;
        } t[] = {
            {"x\\nACCT-123456 y", "x\\n[REDACTED:acct] y", 1},
            {"{\"a\":\"\\tACCT-123456\\\"}", "{\"a\":\"\\t[REDACTED:acct]\\\"}",
             1},
            {"q\\u0020ACCT-123456\\u0022", "q\\u0020[REDACTED:acct]\\u0022",
             1},
            /* an escaped letter is that letter */
            {"x \\u0041CCT-123456 y", "x [REDACTED:acct] y", 1},
            {"x \\u0041CCT-12345\\u0036\\n", "x [REDACTED:acct]\\n", 1},
            /* an escaped backslash: the n after it is a letter */
            {"x\\\\nACCT-123456", "", 0},
            /* invalid or cut escapes are the bytes they are */
            {"\\u00ZZ ACCT-123456 \\u00", "\\u00ZZ [REDACTED:acct] \\u00", 1},
            /* the built-ins too: "sk-\u0070roj-" is a key */
            {"k: sk-\\u0070roj-AAAAAAAAAAAAAAAAAAAAAAAAAAAA\\n",
             "k: [REDACTED:openai_key]\\n", 1},
            {"k:\\u000ask-proj-AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
             "k:\\u000a[REDACTED:openai_key]", 1},
        };
        const char *names[] = {"acct"};
        const char *pats[] = {"\\bACCT-[0-9]{6}\\b"};
        char err[256];
        gws_redact_t *c = gws_redact_new(NULL, names, pats, 1, err,
                                         sizeof(err));
        gws_redact_scratch_t *s2;
        size_t i;
        ck_assert_msg(c != NULL, "%s", err);
        s2 = gws_redact_scratch_new(c);
        for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                gws_buf_t out = {0};
                int n = gws_redact_text_escaped(c, s2, t[i].in,
                                                strlen(t[i].in), &out, NULL);
                ck_assert_msg(n == t[i].n, "%zu: %d redactions, not %d: %.*s",
                              i, n, t[i].n, (int)out.len,
                              out.buf ? out.buf : "");
                ck_assert_msg(out.len == strlen(t[i].out) &&
                                  !memcmp(out.buf ? out.buf : "", t[i].out,
                                          out.len),
                              "%zu: \"%.*s\", not \"%s\"", i, (int)out.len,
                              out.buf ? out.buf : "", t[i].out);
                gws_buf_free(&out);
        }
        gws_redact_scratch_destroy(s2);
        gws_redact_destroy(c);
}
END_TEST

START_TEST(custom_patterns) {
        const char *names[] = {"ticket", "empty"};
        const char *pats[] = {"TICKET-[0-9]{4,}", "x*"};
        const char *bad[] = {"(unclosed"};
        char err[256];
        gws_redact_t *c = gws_redact_new(NULL, names, pats, 2, err,
                                         sizeof(err));
        gws_redact_scratch_t *s2;
        uint64_t counts[GWS_RK__CNT] = {0};
        gws_buf_t out = {0};
        const char *in = "see TICKET-12345 and mail bob@example.com";
        ck_assert_msg(c != NULL, "%s", err);
        s2 = gws_redact_scratch_new(c);
        ck_assert_int_eq(gws_redact_text(c, s2, in, strlen(in), &out, counts),
                         2);
        ck_assert_str_eq(out.buf,
                         "see [REDACTED:ticket] and mail [REDACTED:email]");
        ck_assert_uint_eq(counts[GWS_RK_CUSTOM], 1);
        ck_assert_uint_eq(counts[GWS_RK_EMAIL], 1);
        gws_buf_free(&out);
        gws_redact_scratch_destroy(s2);
        gws_redact_destroy(c);
        ck_assert_ptr_null(gws_redact_new(NULL, names, bad, 1, err,
                                          sizeof(err)));
        ck_assert_ptr_nonnull(strstr(err, "redact.custom[0] \"ticket\""));
        ck_assert_ptr_nonnull(strstr(err, "offset"));
}
END_TEST

/* One custom pattern over \p in; the redacted text, or "" when nothing
 * matched (static buffer). */
static const char *custom1(const char *pat, const char *in, size_t len,
                           int *n) {
        static char res[512];
        const char *names[] = {"sec"};
        char err[256];
        gws_redact_t *c = gws_redact_new(NULL, names, &pat, 1, err,
                                         sizeof(err));
        gws_redact_scratch_t *s2;
        gws_buf_t out = {0};
        ck_assert_msg(c != NULL, "%s", err);
        s2 = gws_redact_scratch_new(c);
        *n = gws_redact_text(c, s2, in, len, &out, NULL);
        ck_assert_uint_lt(out.len, sizeof(res));
        memcpy(res, out.buf ? out.buf : "", out.len);
        res[out.len] = '\0';
        gws_buf_free(&out);
        gws_redact_scratch_destroy(s2);
        gws_redact_destroy(c);
        return res;
}

/* Text that is not UTF-8 (a DLQ payload that did not parse is redacted as
 * bytes): the pattern still matches in the valid parts. pcre2_match()
 * returned PCRE2_ERROR_UTF8_* for the whole subject, taken for "no more
 * matches": the secret stayed. */
/* A repetition over a long run (a 3000-character token; base64 blobs
 * are as long) ran out of PCRE2's default JIT stack, 32 KB of the
 * machine stack: the match failed and, failing closed, took the rest of
 * the string with it (" tail" too). */
START_TEST(custom_pattern_long_repetition) {
        static char in[3100];
        const char *out;
        int n;
        memcpy(in, "ref ", 4);
        memset(in + 4, 'a', 3000);
        strcpy(in + 3004, "#END tail");
        out = custom1("(?:\\w|-)+#END", in, strlen(in), &n);
        ck_assert_int_eq(n, 1);
        ck_assert_str_eq(out, "ref [REDACTED:sec] tail");
}
END_TEST

START_TEST(custom_pattern_on_invalid_utf8) {
        const char in[] = "caf\xe9 secret123 \xff\xfe and secret456 \xc3";
        int n;
        const char *out = custom1("secret[0-9]+", in, sizeof(in) - 1, &n);
        ck_assert_int_eq(n, 2);
        ck_assert_str_eq(out, "caf\xe9 [REDACTED:sec] \xff\xfe and "
                              "[REDACTED:sec] \xc3");
}
END_TEST

/* A pattern that can match empty: after an empty match a non-empty one
 * is tried at the same place (else "x*" wins at every position and
 * "secret..." never matches: the pass stepped on by one byte, so after
 * the multibyte characters pcre2_match() also failed with
 * PCRE2_ERROR_BADUTFOFFSET), then the search goes on one character
 * further. */
START_TEST(custom_pattern_empty_match_steps_by_character) {
        const char *in = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac secret123, "
                         "\xf0\x9f\x98\x80secret456 xx secret789";
        int n;
        const char *out = custom1("x*|secret[0-9]+", in, strlen(in), &n);
        ck_assert_int_eq(n, 4);
        ck_assert_str_eq(out, "h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac "
                              "[REDACTED:sec], \xf0\x9f\x98\x80[REDACTED:sec]"
                              " [REDACTED:sec] [REDACTED:sec]");
        /* empty matches only: nothing written */
        out = custom1("x*", "\xc3\xa9\xc3\xa9", 4, &n);
        ck_assert_int_eq(n, 0);
        ck_assert_str_eq(out, "");
}
END_TEST

/* A match that fails (PCRE2's match limit here; the JIT stack limit
 * likewise) was taken for "no more matches": the rest of the text went
 * out unredacted. The pass fails closed: from where the search stood,
 * the rest is replaced. */
START_TEST(custom_pattern_match_error_fails_closed) {
        char in[128];
        int n;
        const char *out;
        snprintf(in, sizeof(in), "id=7 key=%s!",
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        /* nested quantifiers: exponential backtracking on the a's */
        out = custom1("key=(?:a+)+[bc]", in, strlen(in), &n);
        ck_assert_int_eq(n, 1);
        ck_assert_str_eq(out, "[REDACTED:sec]");
        /* matches before the failure are kept as they were redacted */
        snprintf(in, sizeof(in), "key=ab then key=%s!",
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        out = custom1("key=(?:a+)+[bc]", in, strlen(in), &n);
        ck_assert_int_eq(n, 2);
        ck_assert_str_eq(out, "[REDACTED:sec][REDACTED:sec]");
}
END_TEST

START_TEST(builtin_subset) {
        const char *only[] = {"email", NULL}, *bogus[] = {"emails", NULL};
        char err[256];
        gws_redact_t *e = gws_redact_new(only, NULL, NULL, 0, err,
                                         sizeof(err));
        gws_redact_scratch_t *s2 = gws_redact_scratch_new(e);
        gws_buf_t out = {0};
        const char *in = "a@example.com sk-abcdefghijklmnopqrstuvwxyz";
        ck_assert_int_eq(gws_redact_text(e, s2, in, strlen(in), &out, NULL),
                         1);
        ck_assert_ptr_nonnull(strstr(out.buf, "sk-abcdefghijklmnopqrstuvwxyz"));
        gws_buf_free(&out);
        gws_redact_scratch_destroy(s2);
        gws_redact_destroy(e);
        ck_assert_ptr_null(gws_redact_new(bogus, NULL, NULL, 0, err,
                                          sizeof(err)));
        ck_assert_ptr_nonnull(strstr(err, "\"emails\""));
}
END_TEST

START_TEST(random_text_never_keeps_a_planted_secret) {
        static const char alpha[] = "abc XYZ 019-_.@:/\n";
        uint64_t x = 12345;
        int it;
        for (it = 0; it < 2000; it++) {
                char in[600];
                size_t n = 0, k;
                gws_buf_t out = {0};
                const char *sec = secrets[it % (sizeof(secrets) /
                                                sizeof(secrets[0]))].secret;
                for (k = 0; k < 100; k++) {
                        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                        in[n++] = alpha[(x >> 33) % (sizeof(alpha) - 1)];
                }
                in[n++] = ' ';
                memcpy(in + n, sec, strlen(sec));
                n += strlen(sec);
                in[n++] = ' ';
                in[n] = '\0';
                ck_assert_msg(gws_redact_text(r, sc, in, n, &out, NULL) >= 1,
                              "not redacted (%s): [%s]", sec, in);
                ck_assert_msg(!strstr(out.buf, sec), "%s", out.buf);
                gws_buf_free(&out);
        }
}
END_TEST

/* redact.ip_truncate fails closed: every address it recognises is
 * truncated, anything else becomes "[REDACTED:ip]" (nrep counts those). */
static const struct {
        const char *ip;
        size_t len; /* 0: strlen */
        const char *want;
        int nrep;
} ips[] = {
    {"10.1.2.3", 0, "10.1.2.0", 0},
    {"192.168.255.255", 0, "192.168.255.0", 0},
    {"2001:db8:abcd:12:34::1", 0, "2001:db8:abcd::", 0},
    /* a port, brackets and a zone are dropped */
    {"1.2.3.4:5678", 0, "1.2.3.0", 0},
    {"[2001:db8::1]:443", 0, "2001:db8::", 0},
    {"[2001:db8:abcd:12::1]", 0, "2001:db8:abcd::", 0},
    {"fe80::1%eth0", 0, "fe80::", 0},
    /* IPv4-mapped IPv6: the IPv4 address to /24 */
    {"::ffff:198.51.100.77", 0, "::ffff:198.51.100.0", 0},
    /* 6to4 (2002::/16) holds the client's IPv4 address in bits 16-47:
     * its /48 is the whole IPv4 address, so it is cut to that
     * address's /24 (2002:c633:6400::) */
    {"2002:c633:644d::1", 0, "2002:c633:6400::", 0},
    {"2002:c633:644d:1:2:3:4:5", 0, "2002:c633:6400::", 0},
    /* forwarded lists keep their shape */
    {"1.2.3.4, 10.0.0.1", 0, "1.2.3.0, 10.0.0.0", 0},
    {"1.2.3.4,[2001:db8::1]:8443 ,10.9.8.7:1", 0,
     "1.2.3.0,2001:db8:: ,10.9.8.0", 0},
    {"1.2.3.4, unknown", 0, "1.2.3.0, [REDACTED:ip]", 1},
    /* not an address: replaced, not kept */
    {"not-an-ip", 0, "[REDACTED:ip]", 1},
    {"1.2.3", 0, "[REDACTED:ip]", 1},
    {"1.2.3.4:", 0, "[REDACTED:ip]", 1},
    {"1.2.3.4:123456", 0, "[REDACTED:ip]", 1},
    {"[1.2.3.4", 0, "[REDACTED:ip]", 1},
    {"1.2.3.4\0.evil", 13, "[REDACTED:ip]", 1},
    {"123456789012345678901234567890123456789012345678901234567890.1.2.3.4",
     0, "[REDACTED:ip]", 1},
    /* no address at all */
    {"", 0, "", 0},
};

START_TEST(ip_truncation) {
        gws_buf_t out = {0};
        size_t len = ips[_i].len ? ips[_i].len : strlen(ips[_i].ip);
        int rc = gws_redact_ip_truncate(ips[_i].ip, len, &out);
        ck_assert_msg(rc == ips[_i].nrep, "\"%s\": %d, not %d", ips[_i].ip,
                      rc, ips[_i].nrep);
        ck_assert_msg(out.len == strlen(ips[_i].want) &&
                          !memcmp(out.buf ? out.buf : "", ips[_i].want,
                                  out.len),
                      "\"%s\": \"%.*s\", want \"%s\"", ips[_i].ip,
                      (int)out.len, out.buf ? out.buf : "", ips[_i].want);
        gws_buf_free(&out);
}
END_TEST

/* gws_redact_ip_text(): the address literals of a dead letter's text
 * (redact.ip_truncate); look-alikes that are no address stay, address
 * look-alikes that cannot be read go (fail closed). */
static const struct {
        const char *in, *out; /* out "": unchanged */
        int nrep;             /* [REDACTED:ip] */
} ipt[] = {
    {"a 1.2.3.4:80 b", "a 1.2.3.0:80 b", 0},
    {"host:10.1.2.3, 5.6.7.8.", "host:10.1.2.0, 5.6.7.0.", 0},
    {"1.2.3.4.nip.io", "1.2.3.0.nip.io", 0},
    {"[2001:db8::1]:443 fe80::1%eth0", "[2001:db8::]:443 fe80::%eth0", 0},
    {"::ffff:1.2.3.4", "::ffff:1.2.3.0", 0},
    {"2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:db8:85a3::", 0},
    /* escapes decoded: "\n" is no letter glued on, \u0020 a space */
    {"x\\n10.1.2.3\\u00201.2.3.4\\\"", "x\\n10.1.2.0\\u00201.2.3.0\\\"", 0},
    /* address-like, unreadable: replaced */
    {"300.1.2.3 01.2.3.4", "[REDACTED:ip] [REDACTED:ip]", 2},
    {"mac 00:1a:2b:3c:4d:5e", "mac [REDACTED:ip]", 1},
    {"1:2::3::4", "[REDACTED:ip]", 1},
    /* no address */
    {"v1.2.3.4 1.2.3.4.5 1.2.3 12:00:00 2026-01-01T10:00:00Z", "", 0},
    {"std::vector Foo::Bar sha256:deadbeef dead:beef 10.0.0.0 ::", "", 0},
    {"123e4567-e89b-12d3-a456-426614174000 3.14", "", 0},
};

START_TEST(ip_literals_in_text) {
        gws_buf_t out = {0};
        uint64_t counts[GWS_RK__CNT] = {0};
        int n = gws_redact_ip_text(sc, ipt[_i].in, strlen(ipt[_i].in), 1,
                                   &out, counts);
        ck_assert_msg((n > 0) == (*ipt[_i].out != '\0'), "\"%s\": %d",
                      ipt[_i].in, n);
        ck_assert_msg(out.len == strlen(ipt[_i].out) &&
                          !memcmp(out.buf ? out.buf : "", ipt[_i].out,
                                  out.len),
                      "\"%s\" -> \"%.*s\", not \"%s\"", ipt[_i].in,
                      (int)out.len, out.buf ? out.buf : "", ipt[_i].out);
        ck_assert_uint_eq(counts[GWS_RK_IP], (uint64_t)ipt[_i].nrep);
        gws_buf_free(&out);
}
END_TEST

/* The prefilter skips a text too short for every detector enabled but
 * the e-mail one: each detector's shortest secret, alone, must still be
 * found with only that detector on (and with all), and then, one byte
 * shorter, not (with that detector alone: the shortest Anthropic key
 * less a byte is still an OpenAI one). */
static const struct {
        const char *name, *secret;
} shortest[] = {
    {"openai_key", "sk-abcdefghijklmnopqrst"},
    {"anthropic_key", "sk-ant-abcdefghijklmnopqrst"},
    {"aws_access_key", "AKIAIOSFODNN7EXAMPLE"},
    {"google_api_key", "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"},
    {"github_token", "github_pat_11ABCDEFG0abcdefghijkl"},
    {"slack_token", "xoxb-1234567890"},
    {"stripe_key", "sk_live_abcdefghijklmnopqrst"},
    {"huggingface_token", "hf_abcdefghijklmnopqrstuvwxyz0123"},
    {"bearer_token", "Bearer abcdefghijklmnop"},
    {"basic_auth", "Basic YWI6Y2Rl"},
    {"url_credential", "?key=abcdef"},
    {"jwt", "eyJhbGciOi.eyJzdWIiOi.abcdefghij"},
    {"private_key", "-----BEGIN PRIVATE KEY-----"},
    {"email", "a@b.cd"},
    {"card_number", "4222222222222"},
    {"ssn", "123-45-6789"},
    {"phone", "+12345678"},
};

START_TEST(shortest_secret_each) {
        const char *only[] = {shortest[_i].name, NULL};
        const char *sec = shortest[_i].secret;
        size_t len = strlen(sec);
        char err[256];
        gws_redact_t *r1 = gws_redact_new(only, NULL, NULL, 0, err,
                                          sizeof(err));
        gws_redact_t *rs[2] = {r1, r};
        gws_buf_t out = {0};
        int k;
        ck_assert_ptr_nonnull(r1);
        for (k = 0; k < 2; k++) {
                ck_assert_msg(gws_redact_maybe(rs[k], sec, len) == 1,
                              "%s: \"%s\" passed over", shortest[_i].name,
                              sec);
                gws_buf_reset(&out);
                ck_assert_int_eq(
                    gws_redact_text(rs[k], sc, sec, len, &out, NULL), 1);
        }
        ck_assert_int_eq(gws_redact_maybe(r1, sec, len - 1), 0);
        gws_buf_free(&out);
        gws_redact_destroy(r1);
}
END_TEST

/* A short text (under every other detector's shortest match) is searched
 * for '@' a word or two at a time: an e-mail at any offset of a text of
 * any length up to 16 bytes (and on either side of that) is found. */
START_TEST(short_text_email_at_every_offset) {
        char in[32];
        size_t len, at;
        for (len = 6; len <= 20; len++)
                for (at = 0; at + 6 <= len; at++) {
                        memset(in, ' ', len);
                        memcpy(in + at, "a@b.cd", 6);
                        ck_assert_msg(gws_redact_maybe(r, in, len) == 1,
                                      "\"%.*s\"", (int)len, in);
                        in[at + 1] = '#';
                        ck_assert_int_eq(gws_redact_maybe(r, in, len), 0);
                }
}
END_TEST

/* E-mail addresses beyond ASCII (RFC 6531/6532: UTF-8 local parts,
 * internationalized domains and TLDs, punycode TLDs) are e-mails too,
 * whole: the punctuation around them (typographic quotes, CJK brackets
 * and full stops) and text glued after a TLD stay. */
static const struct {
        const char *in, *want;
} idn_emails[] = {
    {"user@b\xc3\xbc" "cher.de", "[REDACTED:email]"},
    {"j\xc3\xa4" "ne@example.com", "[REDACTED:email]"},
    {"Jos\xc3\xa9.M\xc3\xbcller@stra\xc3\x9f" "e.example.de, ok",
     "[REDACTED:email], ok"},
    {"\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf"
     "\xe5\x91\x8a",
     "[REDACTED:email]"},
    {"mail \xe2\x80\x9cjane@b\xc3\xbc" "cher.de\xe2\x80\x9d now",
     "mail \xe2\x80\x9c[REDACTED:email]\xe2\x80\x9d now"},
    {"\xe3\x80\x8cjane@example.com\xe3\x80\x8d",
     "\xe3\x80\x8c[REDACTED:email]\xe3\x80\x8d"},
    {"\xe3\x83\xa1\xe3\x83\xbc\xe3\x83\xab\xe3\x81\xafjane@example.com"
     "\xe3\x81\xa7\xe3\x81\x99\xe3\x80\x82",
     "\xe3\x83\xa1\xe3\x83\xbc\xe3\x83\xab\xe3\x81\xaf[REDACTED:email]"
     "\xe3\x81\xa7\xe3\x81\x99\xe3\x80\x82"},
    {"user@example.xn--p1ai", "[REDACTED:email]"},
    {"ivan@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84.",
     "[REDACTED:email]."},
};

START_TEST(emails_beyond_ascii) {
        const char *in = idn_emails[_i].in;
        uint64_t counts[GWS_RK__CNT] = {0};
        gws_buf_t out = {0};
        int n = gws_redact_text(r, sc, in, strlen(in), &out, counts);
        ck_assert_msg(n == 1 && out.len == strlen(idn_emails[_i].want) &&
                          !memcmp(out.buf, idn_emails[_i].want, out.len),
                      "\"%s\": %d redaction(s), \"%.*s\", want \"%s\"", in, n,
                      n > 0 ? (int)out.len : 0, n > 0 ? out.buf : "",
                      idn_emails[_i].want);
        ck_assert_uint_eq(counts[GWS_RK_EMAIL], 1);
        gws_buf_free(&out);
}
END_TEST

Suite *gws_redact_suite(void) {
        Suite *s = suite_create("redact");
        TCase *tc = tcase_create("detectors");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_loop_test(tc, secrets_all_redacted, 0,
                            sizeof(secrets) / sizeof(secrets[0]));
        tcase_add_test(tc, bearer_keeps_the_word);
        tcase_add_test(tc, bearer_any_case);
        tcase_add_loop_test(tc, lookalikes_untouched, 0,
                            sizeof(lookalikes) / sizeof(lookalikes[0]));
        tcase_add_test(tc, custom_patterns);
        tcase_add_test(tc, escaped_text_separates_words);
        tcase_add_test(tc, custom_pattern_sees_escapes_decoded);
        tcase_add_test(tc, custom_pattern_on_invalid_utf8);
        tcase_add_test(tc, custom_pattern_long_repetition);
        tcase_add_test(tc, custom_pattern_empty_match_steps_by_character);
        tcase_add_test(tc, custom_pattern_match_error_fails_closed);
        tcase_add_test(tc, same_at_every_alignment);
        tcase_add_test(tc, builtin_subset);
        tcase_add_test(tc, short_text_email_at_every_offset);
        tcase_add_loop_test(tc, emails_beyond_ascii, 0,
                            sizeof(idn_emails) / sizeof(idn_emails[0]));
        tcase_add_loop_test(tc, shortest_secret_each, 0,
                            sizeof(shortest) / sizeof(shortest[0]));
        tcase_add_test(tc, random_text_never_keeps_a_planted_secret);
        tcase_add_loop_test(tc, ip_truncation, 0, sizeof(ips) / sizeof(ips[0]));
        tcase_add_loop_test(tc, ip_literals_in_text, 0,
                            sizeof(ipt) / sizeof(ipt[0]));
        suite_add_tcase(s, tc);
        return s;
}
