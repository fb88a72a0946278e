/* detect.h - streaming anomaly scoring and alert lifecycle, per partition.
 *
 * A gws_detect_t holds the detector state of ONE input partition: entity
 * baselines (bounded, LRU-evicted), event-time windows and open alerts.
 * Everything is driven by event time (the events' ts), never the wall
 * clock, so replaying a partition's events in offset order gives the same
 * scores and alerts as consuming them live. Only `emitted_at` differs.
 *
 * @locality the worker thread that owns the partition; not thread-safe.
 */
#ifndef GWS_DETECT_H
#define GWS_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "gwsieve/config.h"
#include "gwsieve/event.h"
#include "gwsieve/util.h"

typedef struct gws_detect_s gws_detect_t;

/** Why an event scored high (bit set in gws_score_t.reasons). */
typedef enum {
        GWS_R_LATENCY    = 1 << 0,
        GWS_R_TOKENS_IN  = 1 << 1,
        GWS_R_TOKENS_OUT = 1 << 2,
        GWS_R_COST       = 1 << 3,
        GWS_R_ERROR_RATE = 1 << 4,
        GWS_R_RATE       = 1 << 5,
        GWS_R_NEW_VALUE  = 1 << 6,
        GWS_R_TTFB       = 1 << 7,
        GWS_R_HEAVY_HITTER = 1 << 8,
} gws_reason_t;
#define GWS_R__CNT 9

/** @returns the name of reason bit number \p bit (0..GWS_R__CNT-1). */
const char *gws_reason_name(int bit);

/** The per-event result. */
typedef struct gws_score_s {
        double score;      /**< [0,1], the highest detector score */
        uint32_t reasons;  /**< GWS_R_* bits with score >= keep threshold */
} gws_score_t;

/** Alert kinds (alert.md "kind") and lifecycle states. */
#define GWS_ALERT_KIND__CNT 8
#define GWS_ALERT_STATE__CNT 3 /* open, update, resolved */

/** @returns the name of alert kind \p kind ("latency", ...) or state
 *  \p state ("open", "update", "resolved"); "unknown" when out of range.
 *  Static storage. */
const char *gws_alert_kind_name(int kind);
const char *gws_alert_state_name(int state);

/** Alert output callback: \p json is one alert object (alert.md) of
 *  \p len bytes, keyed by \p alert_id, of \p kind and \p state (the
 *  indexes above, for counting). Both strings are borrowed for the call.
 *  @returns 0, or -1 to report a fatal output error (counted). */
typedef int (gws_alert_cb)(void *opaque, const char *alert_id,
                           const char *json, size_t len, int kind,
                           int state);

/** Entity types a detector looks up per event (gateway+provider+model,
 *  gateway+provider, gateway, two shapes, then the numeric key sets). */
#define GWS_DETECT_KEYS_MAX (5 + GWS_MAX_KEYSETS)

/** One event's entity keys and their hashes, built by
 *  gws_detect_prepare() ahead of gws_detect_event_keyed(), so that the
 *  cache lines of the detector state the event will touch can be fetched
 *  while the caller does other work (a worker: parsing the next event).
 *  Caller-owned, reusable from event to event; zero-initialise, release
 *  with gws_detect_keys_free(). Its fields are the detector's: read and
 *  written by detect.c only. */
typedef struct gws_detect_keys_s {
        struct gws_detect_ekey_s {
                uint64_t h;   /* the key's entity hash */
                uint32_t off; /* its bytes: buf.buf + off */
                uint16_t len;
                uint8_t ok;   /* 0: no entity of this type */
        } ek[GWS_DETECT_KEYS_MAX];
        gws_buf_t buf;
} gws_detect_keys_t;

/** Counters (monotonic) of one detector state. */
typedef struct gws_detect_stats_s {
        uint64_t entities;        /**< currently tracked */
        uint64_t bytes;           /**< their memory with their alerts
                                   *   and the models seen, this
                                   *   partition */
        uint64_t process_bytes;   /**< all partitions of the process
                                   *   (bounded by detectors.max_state_mb) */
        uint64_t untracked;       /**< new entities refused: budget full
                                   *   of entities with open alerts */
        uint64_t evictions;       /**< LRU evictions */
        uint64_t late;            /**< events older than the lateness
                                   *   bound: scored, not counted */
        uint64_t skewed;          /**< events far ahead of event time
                                   *   (detectors.max_future_s) */
        uint64_t alerts_open, alerts_update, alerts_resolved;
} gws_detect_stats_t;

/** @brief New state for \p partition of the input. \p cfg is borrowed and
 *  must outlive the state. @returns NULL on allocation failure. */
gws_detect_t *gws_detect_new(const gws_config_t *cfg, int32_t partition);

/** @brief Appends a snapshot of \p d (versioned binary format; see
 *  detect.c) to \p out: every entity with its baselines, windows,
 *  heavy-hitter summaries and alerts, the partition's event time and
 *  the models it has seen and gateways past their warm-up (novelty;
 *  written before the entities, format 5).
 *  \p d must not be in use by another thread meanwhile.
 *  @returns 0, or -1 when out of memory. */
int gws_detect_save(const gws_detect_t *d, gws_buf_t *out);

/** @brief Restores a snapshot into \p d, which must be new (from
 *  gws_detect_new() with the same settings). Entities beyond the byte
 *  budget (detectors.max_state_mb) are left out, oldest first; once
 *  those with open alerts fill it, the rest (the newest) are too. The
 *  models seen are restored all the same (formats 5 on).
 *  @returns the number of entities restored, or -1 with \p errstr saying
 *           why (not a snapshot, other format version, incompatible
 *           settings, corrupt or truncated); then \p d is unusable and
 *           must be destroyed. */
int gws_detect_load(gws_detect_t *d, const void *buf, size_t len,
                    char *errstr, size_t errstr_size);

/** @brief Frees the state. NULL is a no-op. */
void gws_detect_destroy(gws_detect_t *d);

/** @brief Scores \p ev, updates baselines, and emits alerts whose state
 *  changed (open/update/resolved) through \p cb.
 *  @returns the number of alerts emitted, or -1 if \p cb failed. */
int gws_detect_event(gws_detect_t *d, const gws_event_t *ev,
                     gws_score_t *out, gws_alert_cb *cb, void *opaque);

/** @brief Builds \p ev's entity keys into \p k for detector \p d and
 *  starts fetching the hash-table slots they land in (a prefetch: no
 *  state changes, \p d may score other events before \p k is used, and
 *  \p ev must stay valid only for this call). */
void gws_detect_prepare(const gws_detect_t *d, const gws_event_t *ev,
                        gws_detect_keys_t *k);

/** @brief Starts fetching the entities \p k's keys find in \p d (their
 *  slots are read: best after gws_detect_prepare()'s slot prefetch had
 *  time to land). Changes nothing. */
void gws_detect_prefetch(const gws_detect_t *d, const gws_detect_keys_t *k);

/** @brief gws_detect_event() with \p ev's keys from gws_detect_prepare()
 *  of the same \p d and \p ev (borrowed for the call). */
int gws_detect_event_keyed(gws_detect_t *d, const gws_event_t *ev,
                           const gws_detect_keys_t *k, gws_score_t *out,
                           gws_alert_cb *cb, void *opaque);

/** @brief Releases \p k's buffer; \p k may be used again. */
void gws_detect_keys_free(gws_detect_keys_t *k);

/** @brief Inside a gws_alert_cb call of \p d: how many elements of the
 *  alert's entity client_ip redact.ip_truncate replaced by
 *  "[REDACTED:ip]" (not an address); 0 without it. The caller counts
 *  them as redactions of kind "ip", as for retained records. */
int gws_detect_alert_ip_redacted(const gws_detect_t *d);

/** @returns a count of the calls that may have changed \p d's state
 *  (events scored, snapshots loaded): two equal readings mean that a
 *  snapshot taken at the first holds the state of the second. Only from
 *  the thread that owns \p d, or while nothing else uses it. */
uint64_t gws_detect_changes(const gws_detect_t *d);

/** @brief Reads the counters. Only from the thread that owns \p d. */
void gws_detect_stats(const gws_detect_t *d, gws_detect_stats_t *st);

/** @brief Process-wide totals over all detector states, readable from any
 *  thread (relaxed atomics): tracked entities, their bytes (the budget is
 *  detectors.max_state_mb), LRU evictions, late and clock-skewed events. */
void gws_detect_process_stats(uint64_t *entities, uint64_t *bytes,
                              uint64_t *evictions, uint64_t *late,
                              uint64_t *skewed);

/** @brief Process-wide: how often a partition's event time moved across
 *  detectors.max_future_s, \p ahead (a run of far-ahead events agreed)
 *  or \p back (a clock that ran ahead was set right). Any thread. */
void gws_detect_time_jumps(uint64_t *ahead, uint64_t *back);

/** A single numeric series scored by the same numeric-deviation code as
 *  the event detectors (robust exponentially weighted mean and absolute
 *  deviation, Huber-clipped updates, warm-up), two-sided, on the raw
 *  values (a series may be <= 0). Used by `gwsieve score-series`. */
typedef struct gws_series_s gws_series_t;

/** @brief New series scorer with cfg's series.warmup_rows and
 *  series.z_threshold (\p cfg is borrowed). Alarms are reported at their
 *  onset: for series.warmup_rows rows after a score >= 0.5, scores are
 *  damped (x0.3). @returns NULL on allocation failure. */
gws_series_t *gws_series_new(const gws_config_t *cfg);

/** @brief Scores \p value against the series so far, then learns it.
 *  @returns a score in [0,1) (0.5 at the z threshold, never exactly 1). */
double gws_series_score(gws_series_t *s, double value);

/** @brief Frees \p s. NULL is a no-op. */
void gws_series_destroy(gws_series_t *s);

#endif /* GWS_DETECT_H */
