/* config.c - the settings table and its loaders (file, env, CLI).
 *
 * One row per scalar setting. The JSON file is walked recursively: objects
 * extend the dotted path, leaves must name a row (else "unknown key"), and
 * the "kafka" object is copied verbatim into librdkafka property lists.
 */
#include "gwsieve/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* ------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------ */

/* T_JSON: an array or object kept as a jansson value (json_t *), validated
 * by the module that uses it (filter rules, trim paths, redact patterns). */
typedef enum { T_STR, T_INT, T_I64, T_DBL, T_BOOL, T_JSON } ctype_t;

typedef struct {
        const char *name;     /* dotted path in the JSON file */
        ctype_t type;
        const char *def;      /* default, as text; NULL: unset (T_STR) */
        size_t off;           /* offsetof(gws_config_t, field) */
        double min, max;      /* numeric bounds (inclusive); T_STR: min
                               * is the least length in bytes */
        const char *choices;  /* T_STR: "a|b|c" or NULL for free text */
        const char *desc;
} crow_t;

#define OFF(f) offsetof(gws_config_t, f)
#define NB 0, 0 /* no bounds */

static const crow_t rows[] = {
    {"topics.input", T_STR, "gw.raw", OFF(topic_input), NB, NULL,
     "input topic of raw gateway events"},
    {"topics.retained", T_STR, "gw.retained", OFF(topic_retained), NB, NULL,
     "output topic of kept, trimmed records"},
    {"topics.alerts", T_STR, "gw.alerts", OFF(topic_alerts), NB, NULL,
     "output topic of alerts"},
    {"topics.dlq", T_STR, "gw.dlq", OFF(topic_dlq), NB, NULL,
     "dead-letter topic for input that cannot be processed"},
    {"state.topic", T_STR, "gw.state", OFF(state_topic), NB, NULL,
     "compacted topic for detector snapshots, so that detector state moves "
     "with its partitions (\"off\": every assigned partition starts "
     "cold)"},
    {"state.interval_ms", T_INT, "30000", OFF(state_interval_ms), 100,
     86400000, NULL,
     "snapshot period per partition (also on revocation and shutdown)"},
    {"state.restore_timeout_ms", T_INT, "60000",
     OFF(state_restore_timeout_ms), 1000, 3600000, NULL,
     "one deadline for a restore, from its first read, shared by the "
     "restores first read in one batch: reading its snapshot, looking up "
     "the committed offset, catching up; a read not done by then is "
     "unreadable (the partition starts cold), a lookup not answered gives "
     "up (restored without catch-up or skip), a catch-up stops where it is "
     "(a shutdown does not wait for it); `gwsieve state` ends within it"},
    {"state.zstd_level", T_INT, "3", OFF(state_zstd_level), 1, 19, NULL,
     "zstd level of snapshots"},
    {"group", T_STR, "gwsieve", OFF(group), NB, NULL,
     "consumer group id (at most 249 characters)"},
    {"workers", T_INT, "2", OFF(workers), 1, 256, NULL,
     "processing threads per process"},
    {"commit_interval_ms", T_INT, "1000", OFF(commit_interval_ms), 10,
     600000, NULL, "how often done offsets are committed"},
    {"fetch_stall_s", T_INT, "60", OFF(fetch_stall_s), 0, 86400, NULL,
     "an assigned partition whose fetcher has not been active for this "
     "long is reported (warning, gwsieve_partitions_not_fetching); 0 = off"},
    {"shutdown_timeout_ms", T_INT, "8000", OFF(shutdown_timeout_ms), 100,
     600000, NULL,
     "bound on draining, flushing and committing at shutdown"},
    {"worker_queue_max", T_INT, "2048", OFF(worker_queue_max), 16, 10000000,
     NULL, "messages queued per worker before its partitions are paused"},
    {"fetch_wakeup", T_BOOL, "true", OFF(fetch_wakeup), NB, NULL,
     "wake librdkafka's fetchers after a full prefetch queue drains "
     "(librdkafka < 2.2 waits up to 1 s)"},
    {"producer_queue_max", T_INT, "50000", OFF(producer_queue_max), 100,
     10000000, NULL,
     "outputs awaiting delivery before all input is paused"},
    {"replay.partitions", T_INT, "12", OFF(partitions), 1, 100000, NULL,
     "replay: partitions to simulate (same partitioner as the producer)"},
    {"replay.partitioner", T_STR, "key", OFF(replay_partitioner), NB,
     "key|random",
     "replay: key = by message key as gwsieve-gen produces (murmur2), "
     "random = spread like librdkafka's partitioner=random (seeded, "
     "repeatable)"},
    {"input.format", T_STR, "native", OFF(input_format), NB,
     "native|cloudflare|litellm|otel-genai",
     "input format preset (other gateways' logs mapped onto native)"},
    {"limits.max_event_bytes", T_I64, "1048576", OFF(max_event_bytes), 64,
     1073741824, NULL, "larger messages go to the dead-letter topic"},
    {"limits.max_depth", T_INT, "32", OFF(max_depth), 2, 1000, NULL,
     "deeper JSON nesting goes to the dead-letter topic"},
    {"limits.max_fields", T_INT, "20000", OFF(max_fields), 16, 10000000,
     NULL, "events with more keys+values go to the dead-letter topic"},
    {"limits.max_string_bytes", T_INT, "1048576", OFF(max_string_bytes), 16,
     1073741824, NULL,
     "events with a longer string go to the dead-letter topic"},
    {"limits.dlq_payload_bytes", T_INT, "262144", OFF(dlq_payload_bytes),
     1024, 67108864, NULL,
     "payload bytes a dead letter carries at most (as written: escaped or "
     "base64); longer payloads are cut (payload_truncated)"},
    {"filter.normal_sample_rate", T_DBL, "0.1", OFF(normal_sample_rate), 0,
     1, NULL, "share of normal events kept (deterministic on id)"},
    {"filter.anomaly_keep_score", T_DBL, "0.5", OFF(anomaly_keep_score), 0,
     1, NULL, "events scoring at least this are kept as anomalies"},
    {"filter.keep_errors", T_BOOL, "true", OFF(keep_errors), NB, NULL,
     "always keep errors (status >= 400 or success false)"},
    {"detectors.latency", T_BOOL, "true", OFF(det_latency), NB, NULL,
     "numeric deviation on latency_ms per gateway+provider+model"},
    {"detectors.tokens", T_BOOL, "true", OFF(det_tokens), NB, NULL,
     "numeric deviation on tokens_in/tokens_out"},
    {"detectors.cost", T_BOOL, "true", OFF(det_cost), NB, NULL,
     "numeric deviation on cost_usd"},
    {"detectors.error_rate", T_BOOL, "true", OFF(det_error_rate), NB, NULL,
     "error share per gateway+provider against its baseline"},
    {"detectors.rate", T_BOOL, "true", OFF(det_rate), NB, NULL,
     "events per minute per gateway against its baseline"},
    {"detectors.novelty", T_BOOL, "true", OFF(det_novelty), NB, NULL,
     "a provider/model never seen for a gateway after warm-up"},
    {"detectors.z_threshold", T_DBL, "3.0", OFF(det_z_threshold), 1, 100,
     NULL, "robust z-score at which an event scores 0.5"},
    {"detectors.warmup_events", T_INT, "50", OFF(det_warmup_events), 1,
     1000000, NULL, "events an entity needs before it is judged"},
    {"detectors.window_s", T_INT, "60", OFF(det_window_s), 5, 86400, NULL,
     "event-time window over which anomalies are counted"},
    {"detectors.min_anomalies", T_INT, "5", OFF(det_min_anomalies), 1,
     1000000, NULL, "anomalous events in a window needed to open an alert"},
    {"detectors.min_share", T_DBL, "0.3", OFF(det_min_share), 0, 1, NULL,
     "share of an entity's window events that must be anomalous"},
    {"detectors.resolve_s", T_INT, "120", OFF(det_resolve_s), 1, 86400,
     NULL, "event time without an anomaly (numeric kinds: one in an "
           "incident, min_share / 3 of the window) before an alert is "
           "resolved"},
    {"detectors.update_interval_s", T_INT, "60", OFF(det_update_interval_s),
     1, 86400, NULL, "minimum event-time gap between alert updates"},
    {"detectors.novelty_warmup_s", T_INT, "600", OFF(det_novelty_warmup_s),
     0, 86400 * 30, NULL,
     "event time a gateway must be known before a new model is novel"},
    {"detectors.max_entities", T_INT, "100000", OFF(det_max_entities), 16,
     100000000, NULL, "tracked entities per partition (LRU evicted)"},
    {"detectors.max_state_mb", T_INT, "256", OFF(det_max_state_mb), 1,
     1048576, NULL,
     "memory of all detector state in the process: entities, their "
     "alerts, the models seen (LRU eviction above it)"},
    {"detectors.error_z", T_DBL, "4.0", OFF(det_error_z), 1, 100, NULL,
     "binomial z-score for an error-rate alert"},
    {"detectors.error_min_errors", T_INT, "8", OFF(det_error_min_errors), 1,
     1000000, NULL, "errors in a window needed for an error-rate alert"},
    {"detectors.heavy_hitter", T_BOOL, "true", OFF(det_heavy_hitter), NB,
     NULL, "one client_ip or user_id suddenly taking a large share of a "
     "gateway's requests or tokens (space-saving sketch per gateway)"},
    {"detectors.hh_share", T_DBL, "0.3", OFF(det_hh_share), 0.01, 1, NULL,
     "share of a gateway's window (requests or tokens) a key must reach"},
    {"detectors.hh_rise", T_DBL, "3.0", OFF(det_hh_rise), 1, 1000, NULL,
     "... and at least this many times its usual share"},
    {"detectors.hh_min_events", T_INT, "30", OFF(det_hh_min_events), 1,
     1000000, NULL, "requests of the key in the window before its share "
     "of requests counts (its share of tokens: the tokens of this many "
     "usual requests, once the window has half its usual tokens)"},
    {"detectors.hh_slots", T_INT, "32", OFF(det_hh_slots), 4, 1024, NULL,
     "counters per gateway and dimension (a key keeps its counter "
     "while its share of the requests plus its share of the tokens is "
     "above about 2/slots)"},
    {"detectors.max_lateness_s", T_INT, "30", OFF(det_max_lateness_s), 0,
     86400, NULL,
     "events up to this much older than the newest are counted in their "
     "windows (capped at 2 windows); older ones are scored but not "
     "counted (late)"},
    {"detectors.max_future_s", T_INT, "3600", OFF(det_max_future_s), 1,
     86400 * 365, NULL,
     "an event this far ahead of the newest moves event time only when "
     "20 in a row agree (clock skew)"},
    {"detectors.gone_after_s", T_INT, "21600", OFF(det_gone_after_s), 60,
     86400 * 30, NULL,
     "event time a gateway may send nothing at all before it is taken as "
     "gone: its rate_drop alert is resolved and its rate is not judged "
     "until it sends again"},
    {"detectors.rate_settle_s", T_INT, "21600", OFF(det_rate_settle_s), 0,
     86400 * 30, NULL,
     "event time a gateway's rate may stay under a quarter (or over 3x) "
     "of its baseline before it is taken as the new level: the baseline "
     "follows and the rate_drop (rate_spike) alert is resolved; 0 = never "
     "(at least two windows otherwise)"},
    {"detectors.numeric_keys", T_STR, GWS_NUMERIC_KEYS_DEFAULT,
     OFF(det_numeric_keys), NB, NULL,
     "entities of numeric deviation (latency, ttfb, tokens, cost): "
     "comma-separated field sets of gateway_id, provider, model, endpoint, "
     "user_id, client_ip joined by '+' (at most 6 sets of 3 fields)"},
    {"filter.rules", T_JSON, "[]", OFF(filter_rules), NB, NULL,
     "ordered rules: [{\"name\",\"when\":{...},\"action\":keep|drop|sample,"
     "\"rate\",\"force\"}]"},
    {"trim.allow", T_JSON, "[]", OFF(trim_allow), NB, NULL,
     "dotted paths to keep (empty = all)"},
    {"trim.deny", T_JSON, "[]", OFF(trim_deny), NB, NULL,
     "dotted paths to remove"},
    {"trim.body_fields", T_JSON, "[\"request\",\"response\"]",
     OFF(trim_body_fields), NB, NULL, "top-level fields holding bodies"},
    {"trim.max_body_bytes", T_INT, "4096", OFF(trim_max_body_bytes), 0,
     1073741824, NULL, "bodies larger than this are truncated (0 = never)"},
    {"trim.drop_bodies_when_sampled", T_BOOL, "true",
     OFF(trim_drop_bodies_sampled), NB, NULL,
     "drop bodies of sampled normal events (kept for errors/anomalies)"},
    {"redact.enabled", T_BOOL, "true", OFF(redact_enabled), NB, NULL,
     "redact secrets and PII in every output string"},
    {"redact.builtins", T_JSON, "null", OFF(redact_builtins), NB, NULL,
     "built-in detectors to use (null = all)"},
    {"redact.custom", T_JSON, "[]", OFF(redact_custom), NB, NULL,
     "extra PCRE2 patterns: [{\"name\":..,\"pattern\":..}]"},
    {"redact.custom_match_limit", T_INT, "100000",
     OFF(redact_custom_match_limit), 1, 1000000000, NULL,
     "PCRE2 match limit of a custom pattern per string (past it, the "
     "rest of the string is redacted and a warning says so)"},
    {"redact.fields", T_JSON,
     "[\"authorization\",\"proxy-authorization\",\"x-api-key\","
     "\"api-key\",\"api_key\",\"apikey\",\"x-goog-api-key\","
     "\"ocp-apim-subscription-key\",\"x-auth-token\",\"cookie\","
     "\"set-cookie\",\"password\",\"client_secret\",\"access_token\","
     "\"refresh_token\",\"aws_secret_access_key\",\"aws_session_token\","
     "\"x-amz-security-token\",\"private_key\",\"api_secret\","
     "\"secret_key\"]",
     OFF(redact_fields), NB, NULL,
     "member names (any case, any depth) whose values are replaced by "
     "[REDACTED:field] whatever they hold (null stays); [] = none"},
    {"redact.ip_truncate", T_BOOL, "false", OFF(redact_ip_truncate), NB,
     NULL, "truncate client_ip (retained records, metadata's copy, "
           "alerts) to /24 (IPv4) or /48 (IPv6); what is no address "
           "becomes [REDACTED:ip]"},
    {"redact.alert_id_key", T_STR, NULL, OFF(redact_alert_id_key), 16, 0,
     NULL,
     "secret of alert ids, at least 16 bytes (a secret: pass it as "
     "GWSIEVE_REDACT_ALERT_ID_KEY); unset, an alert_id is a plain hash "
     "that a list of guessed user ids or e-mails can be checked against; "
     "the same on every worker of the group and in replay"},
    {"series.warmup_rows", T_INT, "400", OFF(series_warmup_rows), 2,
     10000000, NULL,
     "score-series: rows learned before scoring; alarms damped as long"},
    {"series.z_threshold", T_DBL, "5.0", OFF(series_z_threshold), 1, 100,
     NULL, "score-series: robust z-score at which a row scores 0.5"},
    {"series.shift_z", T_DBL, "12", OFF(series_shift_z), 0, 1000, NULL,
     "score-series: z of a short mean against the baseline at score 0.5 "
     "(level shifts; 0 = off)"},
    {"series.shift_alpha", T_DBL, "0.05", OFF(series_shift_alpha), 0.001, 1,
     NULL, "score-series: weight of the short mean (0.05 = ~20 rows)"},
    {"http.listen", T_STR, "127.0.0.1:9464", OFF(http_listen), NB, NULL,
     "ADDR:PORT for /metrics (Prometheus), /healthz and /readyz; \"off\" "
     "disables; 0.0.0.0:9464 in containers"},
    {"log.level", T_STR, "info", OFF(log_level), NB,
     "err|error|warning|warn|notice|info|debug", "log threshold"},
    {"log.format", T_STR, "text", OFF(log_format), NB, "text|json",
     "log line format on stderr"},
    {"stats_interval_ms", T_INT, "5000", OFF(stats_interval_ms), 0, 3600000,
     NULL, "period of the progress log line (0 = off)"},
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* Secrets never printed by gws_config_dump(): librdkafka properties,
 * and rows of the table (shown as "***" when set, null when not).
 * The properties are all those librdkafka 2.0.2 marks _RK_SENSITIVE in
 * src/rdkafka_conf.c (its debug dumps print "[redacted]" for them; a key
 * file's path and the user name count too), and the OIDC client secret,
 * which 2.0.2 does not mark. Its internal "ssl_key" (set only through
 * rd_kafka_conf_set_ssl_cert()) is listed so the list matches. */
static const char *secret_props[] = {"ssl.key.location",
                                     "ssl.key.password",
                                     "ssl.key.pem",
                                     "ssl_key",
                                     "ssl.ca.pem",
                                     "ssl.keystore.password",
                                     "sasl.username",
                                     "sasl.password",
                                     "sasl.oauthbearer.config",
                                     "sasl.oauthbearer.client.secret",
                                     NULL};
static const char *secret_rows[] = {"redact.alert_id_key", NULL};

/* ------------------------------------------------------------------------
 * private helpers
 * ------------------------------------------------------------------------ */

static const crow_t *row_find(const char *name) {
        size_t i;
        for (i = 0; i < NROWS; i++)
                if (!strcmp(rows[i].name, name))
                        return &rows[i];
        return NULL;
}

/* Levenshtein distance, for "did you mean" hints. */
static size_t edit_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b), i, j;
        size_t prev[128], cur[128];
        if (la > 127 || lb > 127)
                return (size_t)-1;
        for (j = 0; j <= lb; j++)
                prev[j] = j;
        for (i = 1; i <= la; i++) {
                cur[0] = i;
                for (j = 1; j <= lb; j++) {
                        size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
                        size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
                        cur[j] = sub < del ? (sub < ins ? sub : ins)
                                           : (del < ins ? del : ins);
                }
                memcpy(prev, cur, (lb + 1) * sizeof(size_t));
        }
        return prev[lb];
}

static void unknown_key(const char *name, char *errstr, size_t errstr_size) {
        size_t i, best = (size_t)-1, d;
        const char *hint = NULL;
        for (i = 0; i < NROWS; i++) {
                d = edit_distance(name, rows[i].name);
                if (d < best) {
                        best = d;
                        hint = rows[i].name;
                }
        }
        if (hint && best <= 3)
                snprintf(errstr, errstr_size,
                         "unknown key \"%s\" (did you mean \"%s\"?)", name,
                         hint);
        else
                snprintf(errstr, errstr_size,
                         "unknown key \"%s\" (see `gwsieve --help-config`)",
                         name);
}

static int choice_ok(const char *choices, const char *v) {
        const char *p = choices, *bar;
        size_t n, vl = strlen(v);
        while (p && *p) {
                bar = strchr(p, '|');
                n = bar ? (size_t)(bar - p) : strlen(p);
                if (n == vl && !strncmp(p, v, n))
                        return 1;
                p = bar ? bar + 1 : NULL;
        }
        return 0;
}

/* Whether \p v may be read as a number: strtoll() and strtod() skip
 * leading white space (" 5" was taken where "5 " was refused) and strtod()
 * reads hex ("0x1p-1"); a number is decimal text and nothing else. */
static int decimal_text(const char *v) {
        return !isspace((unsigned char)*v) && !strpbrk(v, "xX");
}

/* Sets row \p r from text \p v. */
static int row_set(gws_config_t *cfg, const crow_t *r, const char *v,
                   char *errstr, size_t errstr_size) {
        char *end = NULL, *dup;
        void *field = (char *)cfg + r->off;
        double d;
        long long ll;

        switch (r->type) {
        case T_JSON: {
                json_error_t jerr;
                /* duplicate names refused, as in the file
                 * (gws_config_load_file()) */
                json_t *j = json_loads(v,
                                       JSON_DECODE_ANY |
                                           JSON_REJECT_DUPLICATES,
                                       &jerr);
                if (!j) {
                        snprintf(errstr, errstr_size,
                                 "\"%s\": not JSON: %s", r->name, jerr.text);
                        return -1;
                }
                if (!json_is_array(j) && !json_is_null(j)) {
                        snprintf(errstr, errstr_size,
                                 "\"%s\": expected an array", r->name);
                        json_decref(j);
                        return -1;
                }
                json_decref(*(json_t **)field);
                *(json_t **)field = j;
                return 0;
        }
        case T_STR:
                if (!*v) {
                        snprintf(errstr, errstr_size,
                                 "\"%s\": must not be empty", r->name);
                        return -1;
                }
                /* the value is not printed: the row may be a secret */
                if (r->min > 0 && strlen(v) < (size_t)r->min) {
                        snprintf(errstr, errstr_size,
                                 "\"%s\": %zu bytes, at least %.0f", r->name,
                                 strlen(v), r->min);
                        return -1;
                }
                if (r->choices && !choice_ok(r->choices, v)) {
                        snprintf(errstr, errstr_size,
                                 "\"%s\": \"%s\" is not one of %s", r->name,
                                 v, r->choices);
                        return -1;
                }
                if (!(dup = strdup(v))) {
                        snprintf(errstr, errstr_size, "out of memory");
                        return -1;
                }
                free(*(char **)field);
                *(char **)field = dup;
                return 0;
        case T_BOOL:
                if (!strcmp(v, "true") || !strcmp(v, "1") ||
                    !strcmp(v, "yes") || !strcmp(v, "on"))
                        *(int *)field = 1;
                else if (!strcmp(v, "false") || !strcmp(v, "0") ||
                         !strcmp(v, "no") || !strcmp(v, "off"))
                        *(int *)field = 0;
                else {
                        snprintf(errstr, errstr_size,
                                 "\"%s\": expected true or false, got \"%s\"",
                                 r->name, v);
                        return -1;
                }
                return 0;
        case T_INT:
        case T_I64:
                errno = 0;
                ll = strtoll(v, &end, 10);
                if (errno || end == v || *end || !decimal_text(v)) {
                        snprintf(errstr, errstr_size,
                                 "\"%s\": expected an integer, got \"%s\"",
                                 r->name, v);
                        return -1;
                }
                if ((r->min != 0 || r->max != 0) &&
                    ((double)ll < r->min || (double)ll > r->max)) {
                        snprintf(errstr, errstr_size,
                                 "\"%s\": %lld is out of range [%.0f, %.0f]",
                                 r->name, ll, r->min, r->max);
                        return -1;
                }
                if (r->type == T_INT)
                        *(int *)field = (int)ll;
                else
                        *(int64_t *)field = (int64_t)ll;
                return 0;
        case T_DBL:
                errno = 0;
                d = strtod(v, &end);
                if (errno || end == v || *end || !isfinite(d) ||
                    !decimal_text(v)) {
                        snprintf(errstr, errstr_size,
                                 "\"%s\": expected a number, got \"%s\"",
                                 r->name, v);
                        return -1;
                }
                if ((r->min != 0 || r->max != 0) &&
                    (d < r->min || d > r->max)) {
                        snprintf(errstr, errstr_size,
                                 "\"%s\": %g is out of range [%g, %g]",
                                 r->name, d, r->min, r->max);
                        return -1;
                }
                *(double *)field = d;
                return 0;
        }
        return -1;
}

/* JSON scalar -> text: a string as it is (borrowed from \p v: a PEM
 * certificate chain is several KB, and a copy into a fixed buffer cut
 * it), any other scalar written into \p buf (64 bytes are enough).
 * @returns the text, or NULL if \p v is not a scalar. */
static const char *json_scalar_text(json_t *v, char *buf, size_t size) {
        switch (json_typeof(v)) {
        case JSON_STRING:
                return json_string_value(v);
        case JSON_INTEGER:
                snprintf(buf, size, "%" JSON_INTEGER_FORMAT,
                         json_integer_value(v));
                return buf;
        case JSON_REAL:
                snprintf(buf, size, "%.17g", json_real_value(v));
                return buf;
        case JSON_TRUE:
                snprintf(buf, size, "true");
                return buf;
        case JSON_FALSE:
                snprintf(buf, size, "false");
                return buf;
        default:
                return NULL;
        }
}

static const char *json_type_name(json_t *v) {
        switch (json_typeof(v)) {
        case JSON_OBJECT: return "an object";
        case JSON_ARRAY: return "an array";
        case JSON_STRING: return "a string";
        case JSON_INTEGER: return "an integer";
        case JSON_REAL: return "a number";
        case JSON_TRUE:
        case JSON_FALSE: return "a boolean";
        default: return "null";
        }
}

static int load_kafka(gws_config_t *cfg, json_t *obj, gws_kv_t **list,
                      const char *path, char *errstr, size_t errstr_size) {
        const char *k, *text;
        json_t *v;
        char buf[64];

        json_object_foreach(obj, k, v) {
                if (json_is_object(v) && list == &cfg->kafka &&
                    (!strcmp(k, "consumer") || !strcmp(k, "producer"))) {
                        char sub[64];
                        snprintf(sub, sizeof(sub), "%s.%s", path, k);
                        if (load_kafka(cfg, v,
                                       !strcmp(k, "consumer")
                                           ? &cfg->kafka_consumer
                                           : &cfg->kafka_producer,
                                       sub, errstr, errstr_size) == -1)
                                return -1;
                        continue;
                }
                if (!(text = json_scalar_text(v, buf, sizeof(buf)))) {
                        snprintf(errstr, errstr_size,
                                 "\"%s.%s\": librdkafka properties must be "
                                 "strings, numbers or booleans, not %s",
                                 path, k, json_type_name(v));
                        return -1;
                }
                if (gws_config_kv_set(list, k, text) == -1) {
                        snprintf(errstr, errstr_size, "out of memory");
                        return -1;
                }
        }
        return 0;
}

static int load_object(gws_config_t *cfg, json_t *obj, const char *prefix,
                       char *errstr, size_t errstr_size) {
        const char *k, *text;
        json_t *v;
        char path[256], buf[64];
        const crow_t *r;

        json_object_foreach(obj, k, v) {
                snprintf(path, sizeof(path), "%s%s%s", prefix,
                         *prefix ? "." : "", k);
                if (!strcmp(path, "kafka")) {
                        if (!json_is_object(v)) {
                                snprintf(errstr, errstr_size,
                                         "\"kafka\": expected an object of "
                                         "librdkafka properties, got %s",
                                         json_type_name(v));
                                return -1;
                        }
                        if (load_kafka(cfg, v, &cfg->kafka, "kafka", errstr,
                                       errstr_size) == -1)
                                return -1;
                        continue;
                }
                if ((r = row_find(path)) && r->type == T_JSON) {
                        if (!json_is_array(v) && !json_is_null(v)) {
                                snprintf(errstr, errstr_size,
                                         "\"%s\": expected an array, got %s",
                                         path, json_type_name(v));
                                return -1;
                        }
                        json_decref(*(json_t **)((char *)cfg + r->off));
                        *(json_t **)((char *)cfg + r->off) = json_incref(v);
                        continue;
                }
                if (json_is_object(v)) {
                        if (row_find(path)) {
                                snprintf(errstr, errstr_size,
                                         "\"%s\": expected a value, got an "
                                         "object", path);
                                return -1;
                        }
                        if (load_object(cfg, v, path, errstr, errstr_size) ==
                            -1)
                                return -1;
                        continue;
                }
                if (!(r = row_find(path))) {
                        unknown_key(path, errstr, errstr_size);
                        return -1;
                }
                if (!(text = json_scalar_text(v, buf, sizeof(buf))) ||
                    (r->type == T_STR && !json_is_string(v)) ||
                    (r->type == T_BOOL && !json_is_boolean(v)) ||
                    ((r->type == T_INT || r->type == T_I64) &&
                     !json_is_integer(v)) ||
                    (r->type == T_DBL && !json_is_number(v))) {
                        static const char *tn[] = {"a string", "an integer",
                                                   "an integer", "a number",
                                                   "a boolean", "an array"};
                        snprintf(errstr, errstr_size,
                                 "\"%s\": expected %s, got %s", path,
                                 tn[r->type], json_type_name(v));
                        return -1;
                }
                if (row_set(cfg, r, text, errstr, errstr_size) == -1)
                        return -1;
        }
        return 0;
}

static void kv_free(gws_kv_t *kv) {
        gws_kv_t *next;
        for (; kv; kv = next) {
                next = kv->next;
                free(kv->name);
                free(kv->value);
                free(kv);
        }
}

/* ------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------ */

gws_config_t *gws_config_new(void) {
        gws_config_t *cfg = calloc(1, sizeof(*cfg));
        char errstr[256];
        size_t i;
        if (!cfg)
                return NULL;
        for (i = 0; i < NROWS; i++) {
                if (!rows[i].def) /* unset: NULL (calloc) */
                        continue;
                if (row_set(cfg, &rows[i], rows[i].def, errstr,
                            sizeof(errstr)) == -1) {
                        gws_config_destroy(cfg);
                        return NULL;
                }
        }
        return cfg;
}

void gws_config_destroy(gws_config_t *cfg) {
        size_t i;
        if (!cfg)
                return;
        for (i = 0; i < NROWS; i++) {
                if (rows[i].type == T_STR)
                        free(*(char **)((char *)cfg + rows[i].off));
                else if (rows[i].type == T_JSON)
                        json_decref(*(json_t **)((char *)cfg + rows[i].off));
        }
        kv_free(cfg->kafka);
        kv_free(cfg->kafka_consumer);
        kv_free(cfg->kafka_producer);
        free(cfg);
}

static int load_root(gws_config_t *cfg, json_t *root, const char *what,
                     json_error_t *jerr, char *errstr, size_t errstr_size) {
        char inner[512];
        int r;
        if (!root) {
                snprintf(errstr, errstr_size, "%s: line %d column %d: %s",
                         what, jerr->line, jerr->column, jerr->text);
                return -1;
        }
        if (!json_is_object(root)) {
                snprintf(errstr, errstr_size,
                         "%s: the configuration must be a JSON object", what);
                json_decref(root);
                return -1;
        }
        r = load_object(cfg, root, "", inner, sizeof(inner));
        json_decref(root);
        if (r == -1)
                snprintf(errstr, errstr_size, "%s: %s", what, inner);
        return r;
}

int gws_config_load_file(gws_config_t *cfg, const char *path, char *errstr,
                         size_t errstr_size) {
        json_error_t jerr;
        json_t *root;
        FILE *fp = fopen(path, "r");
        int err;
        /* opened here, so that a file that cannot be is named with the
         * reason (jansson's says "line -1 column -1: unable to open") */
        if (!fp) {
                snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
                return -1;
        }
        root = json_loadf(fp, JSON_REJECT_DUPLICATES, &jerr);
        err = ferror(fp) ? errno : 0;
        fclose(fp);
        if (!root && err) { /* a directory: EISDIR on the read */
                snprintf(errstr, errstr_size, "%s: %s", path, strerror(err));
                return -1;
        }
        return load_root(cfg, root, path, &jerr, errstr, errstr_size);
}

int gws_config_load_string(gws_config_t *cfg, const char *json, char *errstr,
                           size_t errstr_size) {
        json_error_t jerr;
        json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
        return load_root(cfg, root, "<config>", &jerr, errstr, errstr_size);
}

int gws_config_kv_set(gws_kv_t **list, const char *name, const char *value) {
        gws_kv_t *kv, **tail = list;
        char *v;
        for (kv = *list; kv; kv = kv->next) {
                if (!strcmp(kv->name, name)) {
                        if (!(v = strdup(value)))
                                return -1;
                        free(kv->value);
                        kv->value = v;
                        return 0;
                }
                tail = &kv->next;
        }
        if (!(kv = calloc(1, sizeof(*kv))) || !(kv->name = strdup(name)) ||
            !(kv->value = strdup(value))) {
                if (kv)
                        free(kv->name);
                free(kv);
                return -1;
        }
        *tail = kv;
        return 0;
}

int gws_config_kv_secret(const char *name) {
        const char **s;
        for (s = secret_props; *s; s++)
                if (!strcmp(*s, name))
                        return 1;
        return 0;
}

const char *gws_config_kv_get(const gws_kv_t *list, const char *name) {
        for (; list; list = list->next)
                if (!strcmp(list->name, name))
                        return list->value;
        return NULL;
}

int gws_config_set(gws_config_t *cfg, const char *name, const char *value,
                   char *errstr, size_t errstr_size) {
        const crow_t *r;
        gws_kv_t **list = NULL;
        const char *prop = NULL;

        if (!strncmp(name, "kafka.consumer.", 15)) {
                list = &cfg->kafka_consumer;
                prop = name + 15;
        } else if (!strncmp(name, "kafka.producer.", 15)) {
                list = &cfg->kafka_producer;
                prop = name + 15;
        } else if (!strncmp(name, "kafka.", 6)) {
                list = &cfg->kafka;
                prop = name + 6;
        }
        if (list) {
                if (!*prop) {
                        snprintf(errstr, errstr_size,
                                 "\"%s\": empty librdkafka property name",
                                 name);
                        return -1;
                }
                if (gws_config_kv_set(list, prop, value) == -1) {
                        snprintf(errstr, errstr_size, "out of memory");
                        return -1;
                }
                return 0;
        }
        if (!(r = row_find(name))) {
                unknown_key(name, errstr, errstr_size);
                return -1;
        }
        return row_set(cfg, r, value, errstr, errstr_size);
}

int gws_config_apply_env(gws_config_t *cfg, char *errstr,
                         size_t errstr_size) {
        char var[160], inner[400];
        const char *v;
        size_t i, j;

        for (i = 0; i < NROWS; i++) {
                j = (size_t)snprintf(var, sizeof(var), "GWSIEVE_");
                for (const char *p = rows[i].name; *p && j + 1 < sizeof(var);
                     p++)
                        var[j++] = *p == '.' ? '_' : (char)toupper(*p);
                var[j] = '\0';
                if (!(v = getenv(var)) || !*v)
                        continue;
                if (row_set(cfg, &rows[i], v, inner, sizeof(inner)) == -1) {
                        snprintf(errstr, errstr_size, "environment %s: %s",
                                 var, inner);
                        return -1;
                }
        }
        if ((v = getenv("GWSIEVE_BOOTSTRAP")) && *v &&
            gws_config_kv_set(&cfg->kafka, "bootstrap.servers", v) == -1) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        return 0;
}

const char *const gws_key_field_names[GWS_KF__CNT] = {
    "gateway_id", "provider", "model", "endpoint", "user_id", "client_ip"};

int gws_config_parse_keysets(const char *spec, gws_keyset_t *out,
                             char *errstr, size_t errstr_size) {
        const char *p = spec, *end;
        int n = 0;

        while (*p) {
                gws_keyset_t ks = {0, {0}};
                unsigned seen = 0;

                end = p + strcspn(p, ",");
                while (p < end) {
                        const char *fe = p + strcspn(p, "+,");
                        size_t len;
                        int f, k;

                        while (p < fe && *p == ' ')
                                p++;
                        len = (size_t)(fe - p);
                        while (len && p[len - 1] == ' ')
                                len--;
                        for (f = 0; f < GWS_KF__CNT; f++)
                                if (strlen(gws_key_field_names[f]) == len &&
                                    !strncmp(gws_key_field_names[f], p, len))
                                        break;
                        if (f == GWS_KF__CNT) {
                                snprintf(errstr, errstr_size,
                                         "\"detectors.numeric_keys\": "
                                         "unknown field \"%.*s\" (fields: "
                                         "gateway_id, provider, model, "
                                         "endpoint, user_id, client_ip)",
                                         (int)len, p);
                                return -1;
                        }
                        if (seen & (1u << f) || ks.nfields == 3) {
                                snprintf(errstr, errstr_size,
                                         "\"detectors.numeric_keys\": set "
                                         "%d: %s", n + 1,
                                         seen & (1u << f)
                                             ? "a field appears twice"
                                             : "more than 3 fields");
                                return -1;
                        }
                        seen |= 1u << f;
                        /* Canonical order (the order of the field list),
                         * so "model+provider" and "provider+model" are
                         * the same entity. */
                        for (k = ks.nfields; k > 0 && ks.field[k - 1] > f;
                             k--)
                                ks.field[k] = ks.field[k - 1];
                        ks.field[k] = (uint8_t)f;
                        ks.nfields++;
                        p = *fe == '+' ? fe + 1 : fe;
                }
                if (!ks.nfields) {
                        snprintf(errstr, errstr_size,
                                 "\"detectors.numeric_keys\": empty field "
                                 "set %d", n + 1);
                        return -1;
                }
                for (int i = 0; i < n; i++)
                        if (out[i].nfields == ks.nfields &&
                            !memcmp(out[i].field, ks.field, 3)) {
                                snprintf(errstr, errstr_size,
                                         "\"detectors.numeric_keys\": set "
                                         "%d repeats set %d", n + 1, i + 1);
                                return -1;
                        }
                if (n == GWS_MAX_KEYSETS) {
                        snprintf(errstr, errstr_size,
                                 "\"detectors.numeric_keys\": more than %d "
                                 "field sets", GWS_MAX_KEYSETS);
                        return -1;
                }
                out[n++] = ks;
                p = *end ? end + 1 : end;
        }
        return n;
}

int gws_config_state_on(const gws_config_t *cfg) {
        return cfg->state_topic && *cfg->state_topic &&
               strcmp(cfg->state_topic, "off");
}

int gws_config_validate(const gws_config_t *cfg, char *errstr,
                        size_t errstr_size) {
        const char *names[4] = {cfg->topic_input, cfg->topic_retained,
                                cfg->topic_alerts, cfg->topic_dlq};
        gws_keyset_t ks[GWS_MAX_KEYSETS];
        int i, j;

        if (gws_config_parse_keysets(cfg->det_numeric_keys, ks, errstr,
                                     errstr_size) == -1)
                return -1;
        /* A new level is judged on closed windows: under two, a drop
         * would settle at the first window after the one that found it. */
        if (cfg->det_rate_settle_s > 0 &&
            cfg->det_rate_settle_s < 2 * cfg->det_window_s) {
                snprintf(errstr, errstr_size,
                         "\"detectors.rate_settle_s\": %d is less than two "
                         "windows (detectors.window_s %d): a rate_drop would "
                         "settle as soon as it opened; use 0 to never "
                         "settle, or at least %d",
                         cfg->det_rate_settle_s, cfg->det_window_s,
                         2 * cfg->det_window_s);
                return -1;
        }
        /* Kafka's limit for topic names; the state topic's keys
         * ("<group>/<topic>/<partition>") are built in 512 bytes. */
        {
                const char *what[6] = {"group",         "topics.input",
                                       "topics.retained", "topics.alerts",
                                       "topics.dlq",    "state.topic"};
                const char *val[6] = {cfg->group,        cfg->topic_input,
                                      cfg->topic_retained, cfg->topic_alerts,
                                      cfg->topic_dlq,    cfg->state_topic};
                for (i = 0; i < 6; i++)
                        if (val[i] && strlen(val[i]) > 249) {
                                snprintf(errstr, errstr_size,
                                         "\"%s\": %zu characters, at most "
                                         "249 (Kafka's limit for topic "
                                         "names; the state topic's keys "
                                         "hold the group and the input "
                                         "topic)",
                                         what[i], strlen(val[i]));
                                return -1;
                        }
        }
        if (gws_config_state_on(cfg))
                for (i = 0; i < 4; i++)
                        if (!strcmp(cfg->state_topic, names[i])) {
                                snprintf(errstr, errstr_size,
                                         "\"state.topic\": \"%s\" is also "
                                         "topics.%s; give snapshots their "
                                         "own (compacted) topic",
                                         names[i],
                                         i == 0 ? "input"
                                         : i == 1 ? "retained"
                                         : i == 2 ? "alerts"
                                                  : "dlq");
                                return -1;
                        }
        for (i = 1; i < 4; i++) {
                if (!strcmp(names[0], names[i])) {
                        snprintf(errstr, errstr_size,
                                 "\"topics\": output topic \"%s\" is also the "
                                 "input topic (records would loop)",
                                 names[i]);
                        return -1;
                }
                for (j = i + 1; j < 4; j++)
                        if (!strcmp(names[i], names[j])) {
                                snprintf(errstr, errstr_size,
                                         "\"topics\": \"%s\" is used for two "
                                         "outputs; give each its own topic",
                                         names[i]);
                                return -1;
                        }
        }
        if (gws_config_kv_get(cfg->kafka, "group.id") ||
            gws_config_kv_get(cfg->kafka_consumer, "group.id")) {
                snprintf(errstr, errstr_size,
                         "\"kafka.group.id\": set the top-level \"group\" "
                         "instead");
                return -1;
        }
        if (gws_config_kv_get(cfg->kafka, "enable.auto.commit") ||
            gws_config_kv_get(cfg->kafka_consumer, "enable.auto.commit")) {
                snprintf(errstr, errstr_size,
                         "\"kafka.enable.auto.commit\": gwsieve commits "
                         "offsets itself, only after delivery (at-least-once); "
                         "remove this property");
                return -1;
        }
        return 0;
}

static void dump_kv(json_t *obj, const gws_kv_t *kv) {
        for (; kv; kv = kv->next)
                json_object_set_new(obj, kv->name,
                                    json_string(gws_config_kv_secret(kv->name)
                                                    ? "***"
                                                    : kv->value));
}

void gws_config_dump(const gws_config_t *cfg, FILE *fp) {
        json_t *root = json_object(), *obj, *kafka;
        char path[256], *dot, *seg;
        const char **s;
        size_t i;

        for (i = 0; i < NROWS; i++) {
                const crow_t *r = &rows[i];
                const void *field = (const char *)cfg + r->off;
                json_t *v = NULL;
                switch (r->type) {
                case T_STR: {
                        const char *str = *(char *const *)field;
                        int secret = 0;
                        for (s = secret_rows; *s; s++)
                                secret |= !strcmp(*s, r->name);
                        /* a secret may be any bytes: "***" when set */
                        v = json_string(str && secret ? "***" : str);
                        break;
                }
                case T_INT: v = json_integer(*(const int *)field); break;
                case T_I64: v = json_integer(*(const int64_t *)field); break;
                case T_DBL: v = json_real(*(const double *)field); break;
                case T_BOOL: v = json_boolean(*(const int *)field); break;
                case T_JSON: v = json_incref(*(json_t *const *)field); break;
                }
                if (!v)
                        v = json_null();
                /* Walk/create the nested objects of the dotted path. */
                snprintf(path, sizeof(path), "%s", r->name);
                obj = root;
                seg = path;
                while ((dot = strchr(seg, '.'))) {
                        json_t *child;
                        *dot = '\0';
                        if (!(child = json_object_get(obj, seg))) {
                                child = json_object();
                                json_object_set_new(obj, seg, child);
                        }
                        obj = child;
                        seg = dot + 1;
                }
                json_object_set_new(obj, seg, v);
        }
        kafka = json_object();
        dump_kv(kafka, cfg->kafka);
        if (cfg->kafka_consumer) {
                obj = json_object();
                dump_kv(obj, cfg->kafka_consumer);
                json_object_set_new(kafka, "consumer", obj);
        }
        if (cfg->kafka_producer) {
                obj = json_object();
                dump_kv(obj, cfg->kafka_producer);
                json_object_set_new(kafka, "producer", obj);
        }
        json_object_set_new(root, "kafka", kafka);
        json_dumpf(root, fp, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', fp);
        json_decref(root);
}

void gws_config_print_help(FILE *fp) {
        static const char *tn[] = {"string", "int", "int", "number", "bool",
                                   "array"};
        size_t i;
        fprintf(fp, "Configuration keys (JSON file, nested by the dots; "
                    "env GWSIEVE_<KEY>; --set KEY=VALUE):\n");
        for (i = 0; i < NROWS; i++)
                fprintf(fp, "  %-30s %-6s default %-12s %s%s%s\n",
                        rows[i].name, tn[rows[i].type],
                        rows[i].def ? rows[i].def : "unset",
                        rows[i].desc, rows[i].choices ? "; one of " : "",
                        rows[i].choices ? rows[i].choices : "");
        fprintf(fp, "  %-30s %-6s %-20s %s\n", "kafka.<property>", "string",
                "", "any librdkafka property, both clients");
        fprintf(fp, "  %-30s %-6s %-20s %s\n", "kafka.consumer.<property>",
                "string", "", "consumer only");
        fprintf(fp, "  %-30s %-6s %-20s %s\n", "kafka.producer.<property>",
                "string", "", "producer only");
}
