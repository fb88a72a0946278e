/* event.h - parse one raw gateway event into the event view every later
 * stage reads (../shared/schema/gateway-event.md, native format).
 *
 * The event is tokenized once (json.h) into a tape that points into the
 * input bytes; the view's strings point into those bytes, or into the
 * event's arena when they had escapes. Both stay valid until
 * gws_event_clear(), and the input bytes must outlive the event. Documents
 * are recycled per thread, so steady-state parsing allocates nothing.
 * Parsing reports a small reason code plus the offending field, never a
 * formatted string (per-message hot path); the DLQ writer formats the
 * detail only for the rare failure.
 */
#ifndef GWS_EVENT_H
#define GWS_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "gwsieve/json.h"

/** Why an input message cannot be processed (the DLQ "reason"). */
typedef enum {
        GWS_EV_OK = 0,
        GWS_EV_ERR_EMPTY,         /**< zero-length message */
        GWS_EV_ERR_TOO_LARGE,     /**< over limits.max_event_bytes */
        GWS_EV_ERR_NOT_UTF8,      /**< bytes are not valid UTF-8 */
        GWS_EV_ERR_NOT_JSON,      /**< not parseable JSON */
        GWS_EV_ERR_NOT_OBJECT,    /**< JSON, but not an object */
        GWS_EV_ERR_MISSING_FIELD, /**< a required field is absent */
        GWS_EV_ERR_WRONG_TYPE,    /**< a field has the wrong JSON type */
        GWS_EV_ERR_BAD_VALUE,     /**< right type, invalid value */
        GWS_EV_ERR_NOMEM,         /**< allocation failed */
        GWS_EV_ERR_TOO_DEEP,      /**< nesting over limits.max_depth */
        GWS_EV_ERR_TOO_MANY_FIELDS, /**< over limits.max_fields values */
        GWS_EV_ERR_STRING_TOO_LONG, /**< a string over limits.max_string_bytes */
        GWS_EV_ERR__CNT
} gws_ev_err_t;

/** @returns the stable reason code, e.g. "missing_field". */
const char *gws_ev_err2str(gws_ev_err_t err);

/** A borrowed string slice. */
typedef struct gws_str_s {
        const char *s; /**< not NUL-terminated in general; NULL = absent */
        size_t len;
} gws_str_t;

/** Where parsing failed, for the DLQ detail. */
typedef struct gws_ev_errinfo_s {
        const char *field; /**< static field name, or NULL */
        const char *what;  /**< static description ("must be an integer") */
        int line, column;  /**< JSON syntax errors: position, else 0 */
        char text[160];    /**< JSON syntax errors: the parser's message */
} gws_ev_errinfo_t;

typedef struct gws_evdoc_s gws_evdoc_t; /* tape + arena, recycled */

/** The event view. Strings are borrowed from the input or the arena. */
typedef struct gws_event_s {
        gws_evdoc_t *ed;         /**< owned until gws_event_clear() */
        const gws_jdoc_t *doc;   /**< the token tape (root object = 0) */
        gws_str_t id, gateway_id, provider, model;
        gws_str_t account_id, endpoint, user_id, client_ip;
        int64_t ts_ms;           /**< event time, epoch ms */
        int status;              /**< HTTP status 100..599 */
        double latency_ms;
        double ttfb_ms;          /**< valid if has_ttfb */
        double cost_usd;         /**< valid if has_cost */
        int64_t tokens_in;       /**< valid if has_tokens_in */
        int64_t tokens_out;      /**< valid if has_tokens_out */
        unsigned has_ttfb : 1, has_cost : 1, has_tokens_in : 1,
            has_tokens_out : 1;
        unsigned success : 1;    /**< success field, else status < 400 */
        unsigned cached : 1;
} gws_event_t;

/** Limits against hostile input (0 = the default in brackets). */
typedef struct gws_ev_limits_s {
        size_t max_bytes;      /**< whole message [unlimited] */
        uint32_t max_depth;    /**< nesting [64] */
        uint32_t max_fields;   /**< keys + values [1M] */
        uint32_t max_string;   /**< bytes of one string [unlimited] */
} gws_ev_limits_t;

/** @brief Parses and validates \p len bytes into \p ev.
 *  @returns GWS_EV_OK, or a reason with \p info filled; on error \p ev
 *           holds nothing to free (gws_event_clear() is still safe). */
gws_ev_err_t gws_event_parse(gws_event_t *ev, const char *buf, size_t len,
                             const gws_ev_limits_t *lim,
                             gws_ev_errinfo_t *info);

/** @brief Releases the document (back to this thread's cache); \p ev may
 *  be parsed into again. */
void gws_event_clear(gws_event_t *ev);

/** @returns 1 if the event is an error (status >= 400 or success false). */
static inline int gws_event_is_error(const gws_event_t *ev) {
        return ev->status >= 400 || !ev->success;
}

#endif /* GWS_EVENT_H */
