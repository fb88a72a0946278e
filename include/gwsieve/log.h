/* log.h - one logger for gwsieve and for librdkafka's log/error callbacks.
 *
 * Lines go to stderr as "<RFC3339 time> <prog>[<pid>] <LEVEL> <FAC> <message>"
 * (or one JSON object per line with gws_log_set_json(1)). Every call is one
 * line: in text, a newline or carriage return of the message is written as
 * \n or \r, other control bytes as \xNN. The level is checked before the
 * arguments are evaluated (redis serverLog), so debug logging on the hot path
 * costs one comparison when disabled.
 *
 * @locality any thread: one write(2) per line, so lines never interleave.
 */
#ifndef GWS_LOG_H
#define GWS_LOG_H

#include <stdarg.h>

/** Syslog levels, as librdkafka's log_cb reports them. */
typedef enum {
        GWS_LOG_ERR     = 3,
        GWS_LOG_WARNING = 4,
        GWS_LOG_NOTICE  = 5,
        GWS_LOG_INFO    = 6,
        GWS_LOG_DEBUG   = 7,
} gws_log_level_t;

extern int gws_log_level; /**< current threshold; read without a lock */

#define gws_log(LVL, FAC, ...)                                                 \
        do {                                                                   \
                if ((int)(LVL) <= gws_log_level)                               \
                        gws_log0((LVL), (FAC), __VA_ARGS__);                   \
        } while (0)

/** @brief Writes one line (use the gws_log() macro instead). */
void gws_log0(int level, const char *fac, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** @brief Sets the threshold from a name (err, warning, notice, info, debug).
 *  @returns 0, or -1 if \p name is not a level (the level is unchanged). */
int gws_log_set_level_name(const char *name);

/** @brief 1: one JSON object per line ({"ts","level","prog","pid","fac",
 *  "msg"}), always valid UTF-8: bytes of the message that are not UTF-8
 *  are written as U+FFFD each, and a message cut at the length limit is
 *  cut between characters. */
void gws_log_set_json(int on);

/** @brief Sets the program name shown in each line (borrowed, must outlive
 *  the process' logging, e.g. a string literal or argv[0]). */
void gws_log_set_prog(const char *prog);

#endif /* GWS_LOG_H */
