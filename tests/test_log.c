/* test_log.c - the logger: what each line on stderr holds.
 *
 * Each test points stderr (fd 2) at a temp file while it logs, then reads
 * the lines back (Check forks every test, so the redirection and the
 * logger's settings end with it; under CK_FORK=no the teardown puts
 * stderr back and resets the format).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "gwsieve/log.h"
#include "suites.h"

static FILE *cap_fp;
static int saved_fd = -1;
static char *cap_text;

static void cap_begin(void) {
        cap_fp = tmpfile();
        ck_assert_ptr_nonnull(cap_fp);
        saved_fd = dup(STDERR_FILENO);
        ck_assert_int_ge(saved_fd, 0);
        ck_assert_int_ge(dup2(fileno(cap_fp), STDERR_FILENO), 0);
}

/* @returns everything logged since cap_begin() (owned by the fixture). */
static const char *cap_end(void) {
        long n;
        dup2(saved_fd, STDERR_FILENO);
        close(saved_fd);
        saved_fd = -1;
        n = ftell(cap_fp);
        ck_assert_int_ge(n, 0);
        free(cap_text);
        cap_text = calloc(1, (size_t)n + 1);
        ck_assert_ptr_nonnull(cap_text);
        rewind(cap_fp);
        ck_assert_uint_eq(fread(cap_text, 1, (size_t)n, cap_fp), (size_t)n);
        fclose(cap_fp);
        cap_fp = NULL;
        return cap_text;
}

static void setup(void) {
        gws_log_level = GWS_LOG_DEBUG;
}

static void teardown(void) {
        if (saved_fd >= 0) {
                dup2(saved_fd, STDERR_FILENO);
                close(saved_fd);
                saved_fd = -1;
        }
        if (cap_fp)
                fclose(cap_fp);
        cap_fp = NULL;
        free(cap_text);
        cap_text = NULL;
        gws_log_set_json(0);
        gws_log_level = GWS_LOG_INFO;
}

/* The one JSON line logged for \p msg (as "%s"): parsed by jansson,
 * which refuses invalid UTF-8. @returns its "msg" member (new ref). */
static json_t *json_line_of(const char *msg) {
        json_error_t e;
        const char *out, *nl;
        json_t *j, *m;
        gws_log_set_json(1);
        cap_begin();
        gws_log(GWS_LOG_INFO, "TEST", "%s", msg);
        out = cap_end();
        nl = strchr(out, '\n');
        ck_assert_msg(nl && !nl[1], "not one line: %s", out);
        j = json_loadb(out, (size_t)(nl - out), 0, &e);
        ck_assert_msg(j != NULL, "not JSON (%s at %d): %.200s", e.text,
                      e.position, out);
        m = json_object_get(j, "msg");
        ck_assert(json_is_string(m));
        json_incref(m);
        json_decref(j);
        return m;
}

/* Bytes that are not UTF-8 (a stray byte, a lone continuation, an
 * overlong form, a surrogate, a sequence cut short) become U+FFFD each,
 * what surrounds them is kept: the line stays JSON. librdkafka's
 * messages carry strings from brokers; a gateway id may be any bytes. */
START_TEST(json_lines_stay_utf8) {
        static const struct {
                const char *in, *want;
        } rows[] = {
            {"a \xff\xfe z", "a \xef\xbf\xbd\xef\xbf\xbd z"},
            {"lone \x80 cont", "lone \xef\xbf\xbd cont"},
            {"overlong \xc0\xaf", "overlong \xef\xbf\xbd\xef\xbf\xbd"},
            {"surrogate \xed\xa0\x80!",
             "surrogate \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!"},
            {"cut \xe2\x82", "cut \xef\xbf\xbd\xef\xbf\xbd"},
            {"kept: \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
             "kept: \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        };
        size_t i;
        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                json_t *m = json_line_of(rows[i].in);
                ck_assert_msg(!strcmp(json_string_value(m), rows[i].want),
                              "row %zu: msg \"%s\"", i, json_string_value(m));
                json_decref(m);
        }
}
END_TEST

/* A message longer than the logger keeps is cut at a character: the cut
 * never leaves half of a UTF-8 sequence (one of 2, 3 or 4 bytes, at
 * each offset around the limit), whether the message or the line
 * reaches the limit. */
START_TEST(long_json_lines_cut_at_a_character) {
        static const char *chars[] = {"\xc3\xa9", "\xe2\x82\xac",
                                      "\xf0\x9f\x98\x80"};
        char msg[4200];
        size_t c, at;
        for (c = 0; c < 3; c++) {
                size_t w = strlen(chars[c]);
                for (at = 2040; at < 2050; at++) {
                        json_t *m;
                        memset(msg, 'x', sizeof(msg) - 1);
                        msg[sizeof(msg) - 1] = '\0';
                        memcpy(msg + at, chars[c], w);
                        m = json_line_of(msg);
                        ck_assert(!strstr(json_string_value(m),
                                          "\xef\xbf\xbd"));
                        json_decref(m);
                }
        }
        /* control bytes take six bytes each in the line (\u0001): the
         * line fills up before the message ends, and is cut there */
        for (c = 0; c < 3; c++) {
                size_t w = strlen(chars[c]), j, o;
                for (j = 0; j < 4; j++) {
                        json_t *m;
                        memset(msg, 'x', j);
                        memset(msg + j, '\x01', 740);
                        for (o = j + 740; o + w < 2000; o += w)
                                memcpy(msg + o, chars[c], w);
                        msg[o] = '\0';
                        m = json_line_of(msg);
                        ck_assert(!strstr(json_string_value(m),
                                          "\xef\xbf\xbd"));
                        json_decref(m);
                }
        }
}
END_TEST

/* A text line is one line whatever the message holds: a newline or a
 * carriage return in it (a gateway id is any JSON string, librdkafka
 * passes on brokers' strings) is written as \n or \r, other control
 * bytes as \xNN (tab and UTF-8 as they are), so no message can start a
 * line that looks like another (log injection) or split one for the log
 * shipper. */
START_TEST(text_lines_stay_one_line) {
        const char *out, *nl;
        gws_log_set_json(0);
        cap_begin();
        gws_log(GWS_LOG_WARNING, "PLACEMENT", "gateway \"%s\" arrives",
                "gw\n2026-01-01T00:00:00.000Z gwsieve[1] ERROR  FATAL "
                "forged\r\x1b[2K\x7f \xc3\xa9\t.");
        out = cap_end();
        nl = strchr(out, '\n');
        ck_assert_msg(nl && !nl[1], "not one line: %s", out);
        ck_assert_msg(strstr(out, " WARN   PLACEMENT gateway \"gw\\n2026-01-"
                                  "01T00:00:00.000Z gwsieve[1] ERROR  FATAL "
                                  "forged\\r\\x1b[2K\\x7f \xc3\xa9\t.\" "
                                  "arrives\n"),
                      "%s", out);
}
END_TEST

Suite *gws_log_suite(void) {
        Suite *s = suite_create("log");
        TCase *tc = tcase_create("log");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, json_lines_stay_utf8);
        tcase_add_test(tc, long_json_lines_cut_at_a_character);
        tcase_add_test(tc, text_lines_stay_one_line);
        suite_add_tcase(s, tc);
        return s;
}
