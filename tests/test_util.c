/* test_util.c - time parsing/formatting, UTF-8, hashing, partitioner,
 * JSON string escaping and base64. */
#include <jansson.h>
#include <string.h>

#include "gwsieve/util.h"
#include "suites.h"

static const struct {
        const char *s;
        int ok;
        int64_t ms;
} times[] = {
    {"1970-01-01T00:00:00Z", 1, 0},
    {"2026-01-01T00:00:00.123Z", 1, 1767225600123LL},
    {"2026-01-01T00:00:00.1Z", 1, 1767225600100LL},
    {"2026-01-01T00:00:00.123456789Z", 1, 1767225600123LL},
    {"2026-01-01T02:00:00+02:00", 1, 1767225600000LL},
    {"2025-12-31T19:30:00-04:30", 1, 1767225600000LL},
    {"2026-01-01t00:00:00z", 1, 1767225600000LL},
    {"2026-01-01 00:00:00Z", 1, 1767225600000LL},
    {"2024-02-29T00:00:00Z", 1, 1709164800000LL},
    {"2026-13-01T00:00:00Z", 0, 0},
    {"2026-02-30T00:00:00Z", 0, 0},
    /* February 29 only in leap years (Gregorian: not in 1900 or 2100,
     * in 2000); before, any year's was taken for March 1 */
    {"2026-02-29T00:00:00Z", 0, 0},
    {"2100-02-29T00:00:00Z", 0, 0},
    {"1900-02-29T00:00:00Z", 0, 0},
    {"2000-02-29T12:00:00Z", 1, 951825600000LL},
    {"2026-01-01T24:00:00Z", 0, 0},
    /* second 60 is a leap second, 23:59:60 in UTC only (RFC 3339 5.7),
     * taken for the next second; before, any minute's was taken for the
     * next minute */
    {"2016-12-31T23:59:60Z", 1, 1483228800000LL},
    {"1990-12-31T15:59:60-08:00", 1, 662688000000LL},
    {"2026-01-01T12:34:60Z", 0, 0},
    {"2016-12-31T23:59:60+01:00", 0, 0},
    {"2026-01-01T00:00:00", 0, 0},
    {"2026-01-01T00:00:00.Z", 0, 0},
    {"2026-01-01T00:00:00Zjunk", 0, 0},
    {"yesterday", 0, 0},
    {"", 0, 0},
};

START_TEST(time_parse_table) {
        int64_t ms = -1;
        int r = gws_time_parse(times[_i].s, strlen(times[_i].s), &ms);
        ck_assert_msg((r == 0) == times[_i].ok, "%s: r=%d", times[_i].s, r);
        if (times[_i].ok)
                ck_assert_int_eq(ms, times[_i].ms);
}
END_TEST

START_TEST(time_format_roundtrip) {
        char buf[40];
        int64_t v[] = {0, 1767225600123LL, 1709164800999LL}, ms;
        size_t i;
        for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
                gws_time_format(v[i], buf, sizeof(buf));
                ck_assert_int_eq(gws_time_parse(buf, strlen(buf), &ms), 0);
                ck_assert_int_eq(ms, v[i]);
        }
        ck_assert_str_eq(gws_time_format(1767225600123LL, buf, sizeof(buf)),
                         "2026-01-01T00:00:00.123Z");
}
END_TEST

static const struct {
        const char *b;
        size_t n;
        int ok;
} utf8[] = {
    {"plain ascii", 11, 1},
    {"\xc3\xa9", 2, 1},              /* é */
    {"\xe2\x82\xac", 3, 1},          /* € */
    {"\xf0\x9f\x98\x80", 4, 1},      /* 😀 */
    {"\xc0\x80", 2, 0},              /* overlong NUL */
    {"\xe0\x80\x80", 3, 0},          /* overlong */
    {"\xf0\x80\x80\x80", 4, 0},      /* overlong */
    {"\xed\xa0\x80", 3, 0},          /* surrogate */
    {"\xf4\x90\x80\x80", 4, 0},      /* > U+10FFFF */
    {"\xc3", 1, 0},                  /* truncated */
    {"\xe2\x82", 2, 0},              /* truncated */
    {"\xff", 1, 0},
};

START_TEST(utf8_table) {
        ck_assert_int_eq(gws_utf8_valid(utf8[_i].b, utf8[_i].n), utf8[_i].ok);
}
END_TEST

START_TEST(hash_and_partition) {
        ck_assert_uint_eq(gws_crc32("123456789", 9), 0xCBF43926U);
        ck_assert_int_eq(gws_partition_for_key("gw-01", 5, 12),
                         (int32_t)(gws_crc32("gw-01", 5) % 12));
        /* Sampling depends on these values: they must never change. */
        ck_assert_uint_eq(gws_hash64("", 0, 0), gws_hash64("", 0, 0));
        ck_assert_uint_ne(gws_hash64("a", 1, 0), gws_hash64("b", 1, 0));
        ck_assert_uint_ne(gws_hash64("a", 1, 0), gws_hash64("a", 1, 1));
}
END_TEST

/* SipHash-2-4 against the reference: key 00 01 .. 0f, message 00 01 ..
 * (len - 1). Length 15 is the paper's worked example (its appendix A,
 * a129ca6149be45e5); the others are entries of the reference
 * implementation's vectors_sip64 table: no tail, tails of 1 and 7 bytes,
 * one and two whole blocks. */
static const struct {
        size_t len;
        uint64_t out;
} sip_vectors[] = {{0, 0x726fdb47dd0e0e31ULL},  {1, 0x74f839c593dc67fdULL},
                   {7, 0xab0200f58b01d137ULL},  {8, 0x93f5f5799a932462ULL},
                   {15, 0xa129ca6149be45e5ULL}, {16, 0x3f2acc7f57c29bdbULL}};

START_TEST(siphash24_reference_vectors) {
        uint8_t key[16], msg[64];
        int i;
        for (i = 0; i < 16; i++)
                key[i] = (uint8_t)i;
        for (i = 0; i < 64; i++)
                msg[i] = (uint8_t)i;
        ck_assert_msg(gws_siphash24(key, msg, sip_vectors[_i].len) ==
                          sip_vectors[_i].out,
                      "length %zu: %016llx, expected %016llx",
                      sip_vectors[_i].len,
                      (unsigned long long)gws_siphash24(key, msg,
                                                        sip_vectors[_i].len),
                      (unsigned long long)sip_vectors[_i].out);
        /* keyed: another key, another output */
        key[0] ^= 1;
        ck_assert(gws_siphash24(key, msg, sip_vectors[_i].len) !=
                  sip_vectors[_i].out);
}
END_TEST

/* The table hash: every byte and the length matter, and keys that differ
 * in one character spread over the low bits (the table masks them). */
START_TEST(hash_fast_spreads) {
        enum { N = 1 << 16, BITS = 14 };
        static unsigned char seen[1 << BITS];
        char key[64];
        size_t i, used = 0, len;
        uint64_t a, b;

        memset(seen, 0, sizeof(seen));
        for (i = 0; i < N; i++) {
                len = (size_t)snprintf(key, sizeof(key), "gw-07\x1fu-%05zu", i);
                a = gws_hash64_fast(key, len, 3);
                if (!seen[a & ((1u << BITS) - 1)]++)
                        used++;
        }
        /* 64k keys in 16k buckets: a uniform hash fills all but ~e^-4
         * (1.8%) of them; a weak one leaves whole ranges empty. */
        ck_assert_uint_gt(used, (1u << BITS) * 97 / 100);
        for (len = 0; len <= 17; len++) {
                memset(key, 'x', sizeof(key));
                a = gws_hash64_fast(key, len, 0);
                key[len ? len - 1 : 0] = 'y';
                b = gws_hash64_fast(key, len, 0);
                if (len)
                        ck_assert_uint_ne(a, b); /* the last byte counts */
                ck_assert_uint_ne(a, gws_hash64_fast(key, len, 1));
                ck_assert_uint_ne(gws_hash64_fast("xxxxxxxxxxxxxxxxxx", len,
                                                  0),
                                  gws_hash64_fast("xxxxxxxxxxxxxxxxxx",
                                                  len + 1, 0));
        }
}
END_TEST

START_TEST(json_str_escaping) {
        gws_buf_t b = {0};
        const char in[] = "q\"b\\n\n\t\x01 \xc3\xa9";
        json_t *j;
        json_error_t err;
        gws_buf_json_str(&b, in, sizeof(in) - 1);
        ck_assert_str_eq(b.buf, "\"q\\\"b\\\\n\\n\\t\\u0001 \xc3\xa9\"");
        j = json_loadb(b.buf, b.len, JSON_DECODE_ANY, &err);
        ck_assert_ptr_nonnull(j);
        ck_assert_str_eq(json_string_value(j), in);
        json_decref(j);
        gws_buf_free(&b);
}
END_TEST

/* The escaping reads 16 bytes at a time: every byte value, at every
 * offset of a text of every length to 40, in a run of plain bytes or next
 * to other escapes, gives what a byte-at-a-time escaper gives. */
static size_t ref_escape(char *o, const unsigned char *s, size_t len) {
        size_t i, k = 0;
        o[k++] = '"';
        for (i = 0; i < len; i++) {
                unsigned c = s[i];
                if (c == '"' || c == '\\')
                        k += (size_t)sprintf(o + k, "\\%c", c);
                else if (c == '\n')
                        k += (size_t)sprintf(o + k, "\\n");
                else if (c == '\t')
                        k += (size_t)sprintf(o + k, "\\t");
                else if (c == '\r')
                        k += (size_t)sprintf(o + k, "\\r");
                else if (c < 0x20)
                        k += (size_t)sprintf(o + k, "\\u%04x", c);
                else
                        o[k++] = (char)c;
        }
        o[k++] = '"';
        o[k] = '\0';
        return k;
}

START_TEST(json_str_every_byte_every_offset) {
        unsigned char in[40];
        char want[40 * 6 + 3];
        gws_buf_t b = {0};
        size_t len, at, k;
        unsigned c;
        for (len = 1; len <= sizeof(in); len++)
                for (at = 0; at < len; at++)
                        for (c = 0; c < 256; c++) {
                                for (k = 0; k < len; k++)
                                        in[k] = (unsigned char)(k % 7 == 3
                                                                    ? '"'
                                                                    : 'a' + k % 26);
                                in[at] = (unsigned char)c;
                                gws_buf_reset(&b);
                                gws_buf_append(&b, "x", 1);
                                /* checked, not ck_assert()ed: each of
                                 * those is a message to the runner (a
                                 * system call); 4 x 210k of them took
                                 * the test past its 4 s on a busy
                                 * machine */
                                if (gws_buf_json_str(&b, (const char *)in,
                                                     len) != 0 ||
                                    b.len != 1 + ref_escape(want, in, len) ||
                                    memcmp(b.buf + 1, want, b.len - 1) ||
                                    b.buf[b.len] != '\0')
                                        ck_abort_msg("byte 0x%02x at %zu of "
                                                     "%zu: \"%.*s\", want "
                                                     "%s",
                                                     c, at, len,
                                                     (int)(b.len - 1),
                                                     b.buf + 1, want);
                        }
        gws_buf_free(&b);
}
END_TEST

/* gws_buf_printf formats into the room there is and formats again only
 * when the output does not fit; gws_buf_append grows: both must give the
 * bytes snprintf gives, NUL-terminated, for every size. */
START_TEST(buf_printf_and_append_grow) {
        gws_buf_t b = {0};
        char want[4096], piece[600];
        size_t wl = 0;
        int i, n;
        for (i = 0; i < 40; i++) {
                memset(piece, 'a' + i % 26, (size_t)(i * 13 % 500));
                piece[i * 13 % 500] = '\0';
                if (i % 3) {
                        ck_assert_int_eq(gws_buf_printf(&b, "<%d:%s:%.3f>", i,
                                                        piece, i / 7.0), 0);
                        n = snprintf(want + wl, sizeof(want) - wl,
                                     "<%d:%s:%.3f>", i, piece, i / 7.0);
                } else {
                        ck_assert_int_eq(gws_buf_append(&b, piece,
                                                        strlen(piece)), 0);
                        n = snprintf(want + wl, sizeof(want) - wl, "%s",
                                     piece);
                }
                wl += (size_t)n;
                if (wl > 3000) { /* start over: keep want in bounds */
                        gws_buf_reset(&b);
                        wl = 0;
                        continue;
                }
                ck_assert_uint_eq(b.len, wl);
                ck_assert_int_eq(memcmp(b.buf, want, wl), 0);
                ck_assert_int_eq(b.buf[b.len], '\0');
        }
        gws_buf_free(&b);
}
END_TEST

START_TEST(base64_vectors) {
        static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba",
                                   "foobar"};
        static const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==",
                                    "Zm9vYmE=", "Zm9vYmFy"};
        size_t i;
        for (i = 0; i < 7; i++) {
                gws_buf_t b = {0};
                gws_buf_base64(&b, in[i], strlen(in[i]));
                ck_assert_str_eq(b.len ? b.buf : "", out[i]);
                gws_buf_free(&b);
        }
}
END_TEST

/* Cuts never end inside a UTF-8 sequence (placement warnings, alert ids
 * and reasons, dead-letter payloads use it). */
START_TEST(utf8_cut_at_a_character) {
        const char *s = "ab\xc3\xa9z\xf0\x9f\x98\x80!"; /* ab é z 😀 ! */
        size_t len = strlen(s);
        ck_assert_uint_eq(gws_utf8_cut(s, len, 0), 0);
        ck_assert_uint_eq(gws_utf8_cut(s, len, 2), 2);
        ck_assert_uint_eq(gws_utf8_cut(s, len, 3), 2); /* inside é */
        ck_assert_uint_eq(gws_utf8_cut(s, len, 4), 4);
        ck_assert_uint_eq(gws_utf8_cut(s, len, 6), 5); /* inside 😀 */
        ck_assert_uint_eq(gws_utf8_cut(s, len, 7), 5);
        ck_assert_uint_eq(gws_utf8_cut(s, len, 8), 5);
        ck_assert_uint_eq(gws_utf8_cut(s, len, 9), 9);
        ck_assert_uint_eq(gws_utf8_cut(s, len, len), len);
        ck_assert_uint_eq(gws_utf8_cut(s, len, 100), len);
        ck_assert_uint_eq(gws_utf8_cut(s, 3, 2), 2); /* len bounds the read */
}
END_TEST

Suite *gws_util_suite(void) {
        Suite *s = suite_create("util");
        TCase *tc = tcase_create("time");
        tcase_add_loop_test(tc, time_parse_table, 0,
                            sizeof(times) / sizeof(times[0]));
        tcase_add_test(tc, time_format_roundtrip);
        suite_add_tcase(s, tc);
        tc = tcase_create("encoding");
        tcase_add_loop_test(tc, utf8_table, 0, sizeof(utf8) / sizeof(utf8[0]));
        tcase_add_test(tc, json_str_escaping);
        tcase_add_test(tc, json_str_every_byte_every_offset);
        tcase_add_test(tc, base64_vectors);
        tcase_add_test(tc, hash_and_partition);
        tcase_add_test(tc, hash_fast_spreads);
        tcase_add_loop_test(tc, siphash24_reference_vectors, 0,
                            sizeof(sip_vectors) / sizeof(sip_vectors[0]));
        tcase_add_test(tc, buf_printf_and_append_grow);
        tcase_add_test(tc, utf8_cut_at_a_character);
        suite_add_tcase(s, tc);
        return s;
}
