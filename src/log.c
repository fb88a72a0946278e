/* log.c - the logger: text or JSON lines on stderr, one write(2) per line. */
#include "gwsieve/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gwsieve/util.h"

int gws_log_level = GWS_LOG_INFO;
static int log_json;
static const char *log_prog = "gwsieve";

static const char *level_names[8] = {"EMERG", "ALERT", "CRIT",  "ERROR",
                                     "WARN",  "NOTICE", "INFO", "DEBUG"};

void gws_log_set_json(int on) {
        log_json = on;
}

void gws_log_set_prog(const char *prog) {
        log_prog = prog;
}

int gws_log_set_level_name(const char *name) {
        static const struct {
                const char *name;
                int level;
        } map[] = {{"err", GWS_LOG_ERR},     {"error", GWS_LOG_ERR},
                   {"warning", GWS_LOG_WARNING}, {"warn", GWS_LOG_WARNING},
                   {"notice", GWS_LOG_NOTICE}, {"info", GWS_LOG_INFO},
                   {"debug", GWS_LOG_DEBUG}};
        size_t i;
        for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
                if (!strcmp(map[i].name, name)) {
                        gws_log_level = map[i].level;
                        return 0;
                }
        }
        return -1;
}

/* The length of the UTF-8 sequence at \p s (1 for ASCII), or 0 if the
 * bytes there are not one (a stray or continuation byte, an overlong
 * form, a surrogate, a sequence cut short by the NUL). */
static size_t utf8_len(const unsigned char *s) {
        size_t n = *s < 0x80 ? 1 : *s < 0xc2 ? 0 : *s < 0xe0 ? 2
                             : *s < 0xf0 ? 3 : *s < 0xf5 ? 4 : 0;
        /* gws_utf8_valid() reads no byte past a NUL: one is never a
         * continuation byte, and it stops at the first that is not */
        return n && gws_utf8_valid(s, n) ? n : 0;
}

/* Appends the \p len bytes at \p s JSON-escaped to buf[*of..size), whole
 * characters only, leaving \p reserve bytes free. Bytes that are not
 * UTF-8 are written as U+FFFD each: a JSON text is UTF-8 (RFC 8259), and
 * a line that is not is refused by parsers, so the message is lost. */
static void json_escape_into(char *buf, size_t size, size_t *of,
                             const char *s, size_t len, size_t reserve) {
        const unsigned char *p = (const unsigned char *)s;
        const unsigned char *end = p + len;
        while (p < end) {
                size_t n = utf8_len(p), w;
                if (n > (size_t)(end - p))
                        n = 0;
                w = !n ? 3 : n > 1 ? n : *p == '"' || *p == '\\' ? 2
                                   : *p < 0x20 ? 6 : 1;
                if (*of + w + reserve > size)
                        return;
                if (!n) {
                        memcpy(buf + *of, "\xef\xbf\xbd", 3); /* U+FFFD */
                        p++;
                } else if (w == 2 && n == 1) {
                        buf[*of] = '\\';
                        buf[*of + 1] = (char)*p++;
                } else if (w == 6) {
                        snprintf(buf + *of, 7, "\\u%04x", *p++);
                } else {
                        memcpy(buf + *of, p, n);
                        p += n;
                }
                *of += w;
        }
}

/* Appends the \p len bytes at \p s to buf[*of..size) for a text line,
 * whole characters only, leaving \p reserve bytes free: a newline or a
 * carriage return as \n or \r, other control bytes (but tab) as \xNN, so
 * a message (a gateway id, a broker's string in a librdkafka message)
 * can neither split its line nor start one that looks like ours. */
static void text_escape_into(char *buf, size_t size, size_t *of,
                             const char *s, size_t len, size_t reserve) {
        const unsigned char *p = (const unsigned char *)s;
        const unsigned char *end = p + len;
        while (p < end) {
                size_t n = *p < 0x80 ? 1 : utf8_len(p), w;
                if (!n || n > (size_t)(end - p))
                        n = 1; /* not UTF-8: the byte as it is */
                w = *p == '\n' || *p == '\r' ? 2
                    : (*p < 0x20 && *p != '\t') || *p == 0x7f ? 4 : n;
                if (*of + w + reserve > size)
                        return;
                if (*p == '\n' || *p == '\r')
                        memcpy(buf + *of, *p == '\n' ? "\\n" : "\\r", 2);
                else if (w == 4 && n == 1)
                        snprintf(buf + *of, 5, "\\x%02x", *p);
                else
                        memcpy(buf + *of, p, n);
                *of += w;
                p += n;
        }
}

/* \p len bytes of \p s that vsnprintf() cut at the end of its buffer,
 * less a last UTF-8 sequence it cut short. */
static size_t trim_cut_sequence(const char *s, size_t len) {
        size_t k = len, back = 0;
        while (k > 0 && back < 3 && ((unsigned char)s[k - 1] & 0xc0) == 0x80) {
                k--;
                back++;
        }
        if (k > 0 && (unsigned char)s[k - 1] >= 0xc0) {
                unsigned char c = (unsigned char)s[k - 1];
                size_t want = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
                if (back + 1 < want)
                        return k - 1;
        }
        return len;
}

void gws_log0(int level, const char *fac, const char *fmt, ...) {
        char msg[2048], line[4608], tbuf[40];
        struct timespec ts;
        struct tm tm;
        va_list ap;
        size_t of, mlen;
        int r;

        if (level < 0)
                level = 0;
        if (level > 7)
                level = 7;

        va_start(ap, fmt);
        r = vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        mlen = r < 0 ? 0 : (size_t)r;
        if (mlen >= sizeof(msg))
                mlen = trim_cut_sequence(msg, sizeof(msg) - 1);

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);

        if (log_json) {
                r = snprintf(line, sizeof(line),
                             "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\","
                             "\"prog\":\"%s\",\"pid\":%d,\"fac\":\"",
                             tbuf, ts.tv_nsec / 1000000, level_names[level],
                             log_prog, (int)getpid());
                of = (size_t)r;
                json_escape_into(line, sizeof(line), &of, fac, strlen(fac),
                                 9 + 3);
                memcpy(line + of, "\",\"msg\":\"", 9);
                of += 9;
                /* 3: the closing "}\n */
                json_escape_into(line, sizeof(line), &of, msg, mlen, 3);
                line[of++] = '"';
                line[of++] = '}';
                line[of++] = '\n';
        } else {
                r = snprintf(line, sizeof(line), "%s.%03ldZ %s[%d] %-6s %s ",
                             tbuf, ts.tv_nsec / 1000000, log_prog,
                             (int)getpid(), level_names[level], fac);
                of = r < 0 ? 0 : (size_t)r;
                if (of > sizeof(line) - 1)
                        of = sizeof(line) - 1;
                /* 1: the newline */
                text_escape_into(line, sizeof(line), &of, msg, mlen, 1);
                line[of++] = '\n';
        }
        /* One write so concurrent lines never interleave. */
        if (write(STDERR_FILENO, line, of) < 0) {
                /* nowhere left to report it */
        }
}
