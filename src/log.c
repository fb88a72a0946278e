/* log.c - the logger: text or JSON lines on stderr, one write(2) per line. */
#include "gwsieve/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* Appends \p s JSON-escaped to buf[*of..size). */
static void json_escape_into(char *buf, size_t size, size_t *of,
                             const char *s) {
        for (; *s && *of + 7 < size; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\') {
                        buf[(*of)++] = '\\';
                        buf[(*of)++] = (char)c;
                } else if (c < 0x20) {
                        *of += (size_t)snprintf(buf + *of, size - *of,
                                                "\\u%04x", c);
                } else {
                        buf[(*of)++] = (char)c;
                }
        }
}

void gws_log0(int level, const char *fac, const char *fmt, ...) {
        char msg[2048], line[4608], tbuf[40];
        struct timespec ts;
        struct tm tm;
        va_list ap;
        size_t of;
        int r;

        if (level < 0)
                level = 0;
        if (level > 7)
                level = 7;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

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
                json_escape_into(line, sizeof(line), &of, fac);
                if (of + 10 < sizeof(line)) {
                        memcpy(line + of, "\",\"msg\":\"", 9);
                        of += 9;
                }
                json_escape_into(line, sizeof(line), &of, msg);
                if (of + 3 >= sizeof(line))
                        of = sizeof(line) - 3;
                line[of++] = '"';
                line[of++] = '}';
                line[of++] = '\n';
        } else {
                r = snprintf(line, sizeof(line), "%s.%03ldZ %s[%d] %-6s %s %s\n",
                             tbuf, ts.tv_nsec / 1000000, log_prog,
                             (int)getpid(), level_names[level], fac, msg);
                of = r < 0 ? 0 : (size_t)r;
                if (of >= sizeof(line)) {
                        of = sizeof(line) - 1;
                        line[of - 1] = '\n';
                }
        }
        /* One write so concurrent lines never interleave. */
        if (write(STDERR_FILENO, line, of) < 0) {
                /* nowhere left to report it */
        }
}
