/* event.c - validation of raw gateway events into the event view.
 *
 * The document is parsed once (jansson) and every later stage reads the
 * view or, for output, the same document. Validation follows the input
 * contract field by field and stops at the first problem.
 */
#include "gwsieve/event.h"

#include <math.h>
#include <string.h>

#include "gwsieve/util.h"

static const char *err_names[GWS_EV_ERR__CNT] = {
    [GWS_EV_OK] = "ok",
    [GWS_EV_ERR_EMPTY] = "empty",
    [GWS_EV_ERR_TOO_LARGE] = "too_large",
    [GWS_EV_ERR_NOT_UTF8] = "invalid_utf8",
    [GWS_EV_ERR_NOT_JSON] = "invalid_json",
    [GWS_EV_ERR_NOT_OBJECT] = "not_object",
    [GWS_EV_ERR_MISSING_FIELD] = "missing_field",
    [GWS_EV_ERR_WRONG_TYPE] = "wrong_type",
    [GWS_EV_ERR_BAD_VALUE] = "invalid_value",
    [GWS_EV_ERR_NOMEM] = "out_of_memory",
};

const char *gws_ev_err2str(gws_ev_err_t err) {
        if ((unsigned)err >= GWS_EV_ERR__CNT)
                return "unknown";
        return err_names[err];
}

#define FAIL(ERR, FIELD, WHAT)                                                 \
        do {                                                                   \
                info->field = (FIELD);                                         \
                info->what = (WHAT);                                           \
                return (ERR);                                                  \
        } while (0)

/* Required non-empty string field. */
static gws_ev_err_t req_str(json_t *root, const char *name, gws_str_t *out,
                            gws_ev_errinfo_t *info) {
        json_t *v = json_object_get(root, name);
        if (!v || json_is_null(v))
                FAIL(GWS_EV_ERR_MISSING_FIELD, name, "is required");
        if (!json_is_string(v))
                FAIL(GWS_EV_ERR_WRONG_TYPE, name, "must be a string");
        out->s = json_string_value(v);
        out->len = json_string_length(v);
        if (!out->len)
                FAIL(GWS_EV_ERR_BAD_VALUE, name, "must not be empty");
        return GWS_EV_OK;
}

/* Optional string field: absent/null is fine, another type is not. */
static gws_ev_err_t opt_str(json_t *root, const char *name, gws_str_t *out,
                            gws_ev_errinfo_t *info) {
        json_t *v = json_object_get(root, name);
        out->s = NULL;
        out->len = 0;
        if (!v || json_is_null(v))
                return GWS_EV_OK;
        if (!json_is_string(v))
                FAIL(GWS_EV_ERR_WRONG_TYPE, name, "must be a string");
        out->s = json_string_value(v);
        out->len = json_string_length(v);
        return GWS_EV_OK;
}

/* Optional non-negative number; *has = 0 when absent or null. */
static gws_ev_err_t opt_num(json_t *root, const char *name, double *out,
                            int *has, gws_ev_errinfo_t *info) {
        json_t *v = json_object_get(root, name);
        *has = 0;
        if (!v || json_is_null(v))
                return GWS_EV_OK;
        if (!json_is_number(v))
                FAIL(GWS_EV_ERR_WRONG_TYPE, name, "must be a number");
        *out = json_number_value(v);
        if (!isfinite(*out) || *out < 0)
                FAIL(GWS_EV_ERR_BAD_VALUE, name, "must be >= 0");
        *has = 1;
        return GWS_EV_OK;
}

static gws_ev_err_t opt_count(json_t *root, const char *name, int64_t *out,
                              int *has, gws_ev_errinfo_t *info) {
        json_t *v = json_object_get(root, name);
        *has = 0;
        if (!v || json_is_null(v))
                return GWS_EV_OK;
        if (!json_is_integer(v))
                FAIL(GWS_EV_ERR_WRONG_TYPE, name, "must be an integer");
        *out = json_integer_value(v);
        if (*out < 0)
                FAIL(GWS_EV_ERR_BAD_VALUE, name, "must be >= 0");
        *has = 1;
        return GWS_EV_OK;
}

static gws_ev_err_t opt_bool(json_t *root, const char *name, int *out,
                             int *has, gws_ev_errinfo_t *info) {
        json_t *v = json_object_get(root, name);
        *has = 0;
        if (!v || json_is_null(v))
                return GWS_EV_OK;
        if (!json_is_boolean(v))
                FAIL(GWS_EV_ERR_WRONG_TYPE, name, "must be true or false");
        *out = json_is_true(v);
        *has = 1;
        return GWS_EV_OK;
}

static gws_ev_err_t validate(gws_event_t *ev, gws_ev_errinfo_t *info) {
        json_t *root = ev->root, *v;
        gws_ev_err_t err;
        double d;
        int has, b;
        int64_t i64;

        if ((err = req_str(root, "id", &ev->id, info)) ||
            (err = req_str(root, "gateway_id", &ev->gateway_id, info)) ||
            (err = req_str(root, "provider", &ev->provider, info)) ||
            (err = req_str(root, "model", &ev->model, info)))
                return err;

        v = json_object_get(root, "ts");
        if (!v || json_is_null(v))
                FAIL(GWS_EV_ERR_MISSING_FIELD, "ts", "is required");
        if (json_is_string(v)) {
                if (gws_time_parse(json_string_value(v), json_string_length(v),
                                   &ev->ts_ms) == -1)
                        FAIL(GWS_EV_ERR_BAD_VALUE, "ts",
                             "is not an RFC 3339 timestamp");
        } else if (json_is_number(v)) {
                d = json_number_value(v);
                if (!isfinite(d) || d < 0 || d > 1e14)
                        FAIL(GWS_EV_ERR_BAD_VALUE, "ts",
                             "is not epoch milliseconds");
                ev->ts_ms = (int64_t)d;
        } else {
                FAIL(GWS_EV_ERR_WRONG_TYPE, "ts",
                     "must be an RFC 3339 string or epoch milliseconds");
        }

        v = json_object_get(root, "status");
        if (!v || json_is_null(v))
                FAIL(GWS_EV_ERR_MISSING_FIELD, "status", "is required");
        if (!json_is_integer(v))
                FAIL(GWS_EV_ERR_WRONG_TYPE, "status", "must be an integer");
        i64 = json_integer_value(v);
        if (i64 < 100 || i64 > 599)
                FAIL(GWS_EV_ERR_BAD_VALUE, "status",
                     "must be an HTTP status 100..599");
        ev->status = (int)i64;

        v = json_object_get(root, "latency_ms");
        if (!v || json_is_null(v))
                FAIL(GWS_EV_ERR_MISSING_FIELD, "latency_ms", "is required");
        if ((err = opt_num(root, "latency_ms", &ev->latency_ms, &has, info)))
                return err;

        if ((err = opt_str(root, "account_id", &ev->account_id, info)) ||
            (err = opt_str(root, "endpoint", &ev->endpoint, info)) ||
            (err = opt_str(root, "user_id", &ev->user_id, info)) ||
            (err = opt_str(root, "client_ip", &ev->client_ip, info)))
                return err;

        if ((err = opt_num(root, "ttfb_ms", &ev->ttfb_ms, &has, info)))
                return err;
        ev->has_ttfb = (unsigned)has;
        if ((err = opt_num(root, "cost_usd", &ev->cost_usd, &has, info)))
                return err;
        ev->has_cost = (unsigned)has;
        if ((err = opt_count(root, "tokens_in", &ev->tokens_in, &has, info)))
                return err;
        ev->has_tokens_in = (unsigned)has;
        if ((err = opt_count(root, "tokens_out", &ev->tokens_out, &has,
                             info)))
                return err;
        ev->has_tokens_out = (unsigned)has;

        if ((err = opt_bool(root, "success", &b, &has, info)))
                return err;
        ev->success = has ? (unsigned)b : ev->status < 400;
        if ((err = opt_bool(root, "cached", &b, &has, info)))
                return err;
        ev->cached = has ? (unsigned)b : 0;
        return GWS_EV_OK;
}

gws_ev_err_t gws_event_parse(gws_event_t *ev, const char *buf, size_t len,
                             const gws_ev_limits_t *lim,
                             gws_ev_errinfo_t *info) {
        json_error_t jerr;
        gws_ev_err_t err;

        memset(ev, 0, sizeof(*ev));
        memset(info, 0, sizeof(*info));
        if (!len)
                FAIL(GWS_EV_ERR_EMPTY, NULL, "the message is empty");
        if (lim && lim->max_bytes && len > lim->max_bytes)
                FAIL(GWS_EV_ERR_TOO_LARGE, NULL,
                     "the message exceeds limits.max_event_bytes");
        if (!gws_utf8_valid(buf, len))
                FAIL(GWS_EV_ERR_NOT_UTF8, NULL,
                     "the message is not valid UTF-8");

        ev->root = json_loadb(buf, len, JSON_DECODE_ANY, &jerr);
        if (!ev->root) {
                info->line = jerr.line;
                info->column = jerr.column;
                snprintf(info->text, sizeof(info->text), "%s", jerr.text);
                FAIL(GWS_EV_ERR_NOT_JSON, NULL, "the message is not JSON");
        }
        if (!json_is_object(ev->root)) {
                gws_event_clear(ev);
                FAIL(GWS_EV_ERR_NOT_OBJECT, NULL,
                     "the message is JSON but not an object");
        }
        if ((err = validate(ev, info)) != GWS_EV_OK) {
                gws_event_clear(ev);
                return err;
        }
        return GWS_EV_OK;
}

void gws_event_clear(gws_event_t *ev) {
        if (ev->root)
                json_decref(ev->root);
        memset(ev, 0, sizeof(*ev));
}
