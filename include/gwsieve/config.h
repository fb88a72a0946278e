/* config.h - gwsieve configuration: defaults < JSON file < env < CLI.
 *
 * Every scalar setting is a row of one table (src/config.c) with its dotted
 * name ("filter.normal_sample_rate"), type, default, bounds and description;
 * loading, validation, environment overrides, `check-config` output and the
 * --help listing are all generated from that table (fluent-bit config_map,
 * redis standardConfig). librdkafka properties live under "kafka" and are
 * passed through verbatim: "kafka": {"prop": "v", "consumer": {...},
 * "producer": {...}}.
 *
 * Ownership: a gws_config_t owns all its strings; gws_config_destroy() frees
 * them. Nothing here is thread-safe for writing; after loading, the config
 * is read-only and may be shared by all threads.
 */
#ifndef GWS_CONFIG_H
#define GWS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/** A list of librdkafka "name=value" properties, in the order set. */
typedef struct gws_kv_s {
        char *name;
        char *value;
        struct gws_kv_s *next;
} gws_kv_t;

/** Fields a numeric-deviation entity can be keyed by
 *  (detectors.numeric_keys), in canonical order. */
typedef enum {
        GWS_KF_GATEWAY, GWS_KF_PROVIDER, GWS_KF_MODEL, GWS_KF_ENDPOINT,
        GWS_KF_USER, GWS_KF_CLIENT_IP, GWS_KF__CNT
} gws_key_field_t;

extern const char *const gws_key_field_names[GWS_KF__CNT];

#define GWS_MAX_KEYSETS 6
#define GWS_NUMERIC_KEYS_DEFAULT \
        "provider+model,gateway_id+provider+model,user_id,gateway_id"

/** One field set: nfields fields (1..3), ascending gws_key_field_t. */
typedef struct {
        int nfields;
        uint8_t field[3];
} gws_keyset_t;

typedef struct gws_config_s {
        /* topics */
        char *topic_input;    /**< raw gateway events (consumed) */
        char *topic_retained; /**< trimmed, kept records */
        char *topic_alerts;   /**< alerts (alert.md) */
        char *topic_dlq;      /**< input that could not be processed */

        char *group;             /**< consumer group id */
        char *state_topic;       /**< detector snapshots, or "off" */
        int state_interval_ms;   /**< snapshot period per partition */
        int state_restore_timeout_ms; /**< bound on restore + catch-up */
        int state_zstd_level;    /**< zstd level of snapshots */
        int workers;             /**< processing threads per process */
        int commit_interval_ms;  /**< periodic offset commit */
        int fetch_stall_s;       /**< report partitions not fetching */
        int shutdown_timeout_ms; /**< bound on drain+flush at shutdown */
        int worker_queue_max;    /**< per worker: pause input above this */
        int fetch_wakeup;        /**< wake stalled fetchers (service.c) */
        int producer_queue_max;  /**< pause input above this many outputs
                                  *   waiting for delivery */
        int partitions;          /**< replay: partitions to simulate */
        char *replay_partitioner; /**< replay: "key" | "random" */

        char *input_format; /**< native | cloudflare | litellm | otel-genai */

        /* limits (hostile input) */
        int64_t max_event_bytes; /**< larger messages go to the DLQ */
        int max_depth;           /**< JSON nesting limit */
        int max_fields;          /**< keys + values per event */
        int max_string_bytes;    /**< longest string in an event */
        int dlq_payload_bytes;   /**< payload a dead letter carries, as
                                  *   written (escaped or base64) */

        /* filter */
        double normal_sample_rate; /**< share of normal events kept */
        double anomaly_keep_score; /**< keep events scoring at least this */
        int keep_errors;           /**< always keep status>=400/!success */
        struct json_t *filter_rules; /**< array of rule objects */

        /* trim */
        struct json_t *trim_allow;       /**< array of dotted paths */
        struct json_t *trim_deny;        /**< array of dotted paths */
        struct json_t *trim_body_fields; /**< array of top-level names */
        int trim_max_body_bytes;         /**< 0 = never truncate */
        int trim_drop_bodies_sampled;    /**< drop bodies of samples */

        /* redact */
        int redact_enabled;
        struct json_t *redact_builtins;  /**< null = all */
        struct json_t *redact_custom;    /**< [{name, pattern}] */
        int redact_custom_match_limit;   /**< PCRE2 match limit, >= 1 */
        struct json_t *redact_fields;    /**< member names whose values are
                                          *   replaced (any depth, any case) */
        int redact_ip_truncate;
        char *redact_alert_id_key;       /**< secret of alert ids (at
                                          *   least 16 bytes), or NULL:
                                          *   unkeyed ids (detect.c) */

        /* detectors */
        int det_latency;              /**< numeric deviation on latency */
        int det_tokens;               /**< ... on tokens_in/tokens_out */
        int det_cost;                 /**< ... on cost_usd */
        int det_error_rate;           /**< error share vs baseline */
        int det_rate;                 /**< events/min vs baseline */
        int det_novelty;              /**< never-seen provider/model */
        double det_z_threshold;       /**< robust z at which score = 0.5 */
        int det_warmup_events;        /**< per entity, before judging */
        int det_window_s;             /**< event-time window (alerts) */
        int det_min_anomalies;        /**< anomalous events to open */
        double det_min_share;         /**< share of window anomalous */
        int det_resolve_s;            /**< quiet time before resolved */
        int det_update_interval_s;    /**< min gap between updates */
        int det_novelty_warmup_s;     /**< gateway age before new model
                                       *   counts as novel */
        int det_max_entities;         /**< per partition state cap */
        int det_max_state_mb;         /**< entity memory, whole process */
        double det_error_z;           /**< binomial z for error storms */
        int det_error_min_errors;     /**< errors in window to alert */
        int det_heavy_hitter;         /**< concentration per gateway */
        double det_hh_share;          /**< share of a window to alert */
        double det_hh_rise;           /**< x its usual share */
        int det_hh_min_events;        /**< key's events in the window */
        int det_hh_slots;             /**< space-saving counters */
        int det_max_lateness_s;       /**< out-of-order tolerance */
        int det_max_future_s;         /**< ts ahead of the watermark that
                                       *   is treated as clock skew */
        int det_gone_after_s;         /**< silence after which a gateway's
                                       *   rate_drop is resolved (gone) */
        int det_rate_settle_s;        /**< a gateway's rate held this long
                                       *   under a quarter (over 3x) of its
                                       *   baseline becomes the baseline;
                                       *   0 = never */
        char *det_numeric_keys;       /**< "f+f,f,..." field sets */
        int series_warmup_rows;       /**< score-series: warm-up, and the
                                       *   damping after an alarm */
        double series_z_threshold;    /**< score-series: z at score 0.5 */
        double series_shift_z;        /**< level-shift z at 0.5 (0 off) */
        double series_shift_alpha;    /**< level-shift mean: EW weight */

        /* logging */
        char *log_level;  /**< err|warning|notice|info|debug */
        char *log_format; /**< text|json */
        char *http_listen; /**< ADDR:PORT of /metrics etc., or "off" */
        int stats_interval_ms; /**< progress line period (0 = off) */

        /* librdkafka pass-through */
        gws_kv_t *kafka;          /**< both clients */
        gws_kv_t *kafka_consumer; /**< consumer only */
        gws_kv_t *kafka_producer; /**< producer only */
} gws_config_t;

/** @brief Parses a detectors.numeric_keys value ("provider+model,user_id")
 *  into \p out (GWS_MAX_KEYSETS entries).
 *  @returns the number of sets (0 for an empty string), or -1 with
 *           \p errstr naming the offending field or set. */
int gws_config_parse_keysets(const char *spec, gws_keyset_t *out,
                             char *errstr, size_t errstr_size);

/** @returns 1 if detector state goes to a state topic (state.topic is
 *  set and not "off"). */
int gws_config_state_on(const gws_config_t *cfg);

/** @brief Allocates a config holding every default.
 *  @returns NULL only on allocation failure. */
gws_config_t *gws_config_new(void);

/** @brief Frees \p cfg and all it owns. NULL is a no-op. */
void gws_config_destroy(gws_config_t *cfg);

/** @brief Merges a JSON file into \p cfg.
 *  @returns 0, or -1 with \p errstr naming the file, line, key and reason
 *           (unknown keys, wrong types and out-of-range values are errors).
 *           On error \p cfg may be partly updated: destroy it. */
int gws_config_load_file(gws_config_t *cfg, const char *path, char *errstr,
                         size_t errstr_size);

/** @brief Same as gws_config_load_file() from a string (tests). */
int gws_config_load_string(gws_config_t *cfg, const char *json, char *errstr,
                           size_t errstr_size);

/** @brief Applies GWSIEVE_<KEY> environment overrides (dots become '_',
 *  upper case: GWSIEVE_FILTER_NORMAL_SAMPLE_RATE) and GWSIEVE_BOOTSTRAP.
 *  Empty variables count as unset. @returns 0 or -1 with \p errstr. */
int gws_config_apply_env(gws_config_t *cfg, char *errstr, size_t errstr_size);

/** @brief Sets one setting by dotted name from text, e.g. "workers" "4",
 *  or a librdkafka property "kafka.linger.ms" / "kafka.consumer.x".
 *  @returns 0 or -1 with \p errstr naming the key. */
int gws_config_set(gws_config_t *cfg, const char *name, const char *value,
                   char *errstr, size_t errstr_size);

/** @brief Appends (or replaces) a librdkafka property in \p *list. */
int gws_config_kv_set(gws_kv_t **list, const char *name, const char *value);

/** @returns 1 if the value of the librdkafka property \p name is a secret
 *  (a password, a private key or its path, a user name: every property
 *  librdkafka 2.0.2 marks sensitive), which dumps and errors show as
 *  "***". */
int gws_config_kv_secret(const char *name);

/** @returns the value of \p name in \p list, or NULL (borrowed). */
const char *gws_config_kv_get(const gws_kv_t *list, const char *name);

/** @brief Cross-field validation after all layers are merged.
 *  @returns 0 or -1 with \p errstr. */
int gws_config_validate(const gws_config_t *cfg, char *errstr,
                        size_t errstr_size);

/** @brief Writes the effective configuration as JSON (secrets masked). */
void gws_config_dump(const gws_config_t *cfg, FILE *fp);

/** @brief Writes the table of settings (name, type, default, description)
 *  for --help. */
void gws_config_print_help(FILE *fp);

#endif /* GWS_CONFIG_H */
