/* pipeline.h - one input message through parse -> score -> filter ->
 * serialise, with outputs handed to a sink callback.
 *
 * The same code serves `gwsieve run` (the sink produces to Kafka) and
 * `gwsieve replay` (the sink writes files), which is why both give the
 * same records for the same input.
 *
 * A gws_pipeline_t is per worker thread (scratch buffers, counters); the
 * detector state passed with each message is per input partition.
 * @locality the owning worker thread. Counters may be read from any
 * thread with gws_pipeline_stats() (relaxed atomics).
 */
#ifndef GWS_PIPELINE_H
#define GWS_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "gwsieve/config.h"
#include "gwsieve/detect.h"
#include "gwsieve/event.h"
#include "gwsieve/filter.h"
#include "gwsieve/record.h"

typedef struct gws_pipeline_s gws_pipeline_t;

/** Output destinations. */
typedef enum {
        GWS_SINK_RETAINED = 0,
        GWS_SINK_ALERTS,
        GWS_SINK_DLQ,
        GWS_SINK__CNT
} gws_sink_t;

/** @returns "retained", "alerts" or "dlq". */
const char *gws_sink2str(gws_sink_t s);

/** Sink callback: one output record. All pointers are borrowed for the
 *  call (copy what must outlive it).
 *  @returns 0, or -1 if the record could not be accepted (fatal). */
typedef int (gws_emit_cb)(void *opaque, gws_sink_t sink, const char *key,
                          size_t keylen, const char *val, size_t len);

/** One input message (borrowed). */
typedef struct gws_input_s {
        const char *value;
        size_t len;
        const char *key; /**< NULL if none */
        size_t keylen;
        const char *topic;
        int32_t partition;
        int64_t offset;
        size_t whole_len; /**< the message's size when \p value holds
                           *   only its first \p len bytes (replay: a
                           *   line far over limits.max_event_bytes, a
                           *   too_large dead letter); 0: \p len */
        uint64_t line;    /**< replay: the input file's line (1-based),
                           *   given in a dead letter's source; 0: none
                           *   (a Kafka message) */
} gws_input_t;

/** What happened to one input message. */
typedef enum {
        GWS_OUT_KEPT = 0, /**< a retained record was emitted */
        GWS_OUT_DROPPED,  /**< filtered out (sampled away) */
        GWS_OUT_DLQ,      /**< sent to the dead-letter sink */
        GWS_OUT_FAILED,   /**< a sink callback failed: do not commit */
} gws_outcome_t;

/** Monotonic counters of one pipeline. */
typedef struct gws_pipeline_stats_s {
        uint64_t in;                      /**< messages processed */
        uint64_t kept[GWS_KEEP__CNT];     /**< retained records the sink
                                           *   took, by reason; [0] =
                                           *   dropped (no record) */
        uint64_t dlq[GWS_EV_ERR__CNT];    /**< dead letters the sink
                                           *   took, by reason */
        uint64_t dropped_by_rule;         /**< of kept[0]: a drop rule;
                                           *   the rest are normal events
                                           *   not sampled; in every
                                           *   snapshot, also one taken
                                           *   while the worker runs,
                                           *   kept[0] - dropped_by_rule
                                           *   is >= 0 and >= that of any
                                           *   earlier snapshot */
        uint64_t alerts;                  /**< alert records the sink
                                           *   took (by kind, state:
                                           *   alerts_by) */
        uint64_t alerts_by[GWS_ALERT_KIND__CNT][GWS_ALERT_STATE__CNT];
        uint64_t failed;                  /**< sink failures */
        gws_record_stats_t rec;           /**< redactions, trimming of
                                           *   the records the sink took
                                           *   (alerts' too) */
} gws_pipeline_stats_t;

/** @brief New pipeline; \p cfg is borrowed and must outlive it.
 *  @returns NULL with \p errstr on failure. */
gws_pipeline_t *gws_pipeline_new(const gws_config_t *cfg, char *errstr,
                                 size_t errstr_size);

/** @brief Frees \p pl. NULL is a no-op. */
void gws_pipeline_destroy(gws_pipeline_t *pl);

/** @brief Processes one message: emits 0..1 retained or 1 DLQ record and
 *  0..n alerts through \p cb. \p det is the state of the message's
 *  partition. Never fails on bad input (that is a DLQ outcome). */
gws_outcome_t gws_pipeline_process(gws_pipeline_t *pl, gws_detect_t *det,
                                   const gws_input_t *in, gws_emit_cb *cb,
                                   void *opaque);

/** One input message between its parse and its processing. A worker
 *  parses the next message (gws_pipeline_parse(): the event view and its
 *  detector keys, with a prefetch of the hash-table slots they land in)
 *  before it processes the current one, and starts fetching the next
 *  one's entities (gws_pipeline_prefetch()) before it parses the one
 *  after: the detector state of each event arrives in the cache while
 *  the worker does other work, instead of stalling its lookups
 *  (gws_pipeline_process() does the three steps at once). Caller-owned,
 *  reusable from message to message; zero-initialise, release with
 *  gws_pipeline_msg_free(). The fields are the pipeline's. */
typedef struct gws_pipeline_msg_s {
        gws_event_t ev;
        gws_ev_err_t err;         /* GWS_EV_OK: ev holds the event */
        gws_ev_errinfo_t info;
        const char *conv_why;     /* input.format's note for the DLQ */
        gws_buf_t conv;           /* foreign input as native JSON */
        gws_detect_keys_t keys;
        const gws_detect_t *det;  /* keys prepared for it; NULL: none */
        int parsed;               /* parsed, not yet finished/discarded */
} gws_pipeline_msg_t;

/** @brief Parses \p in into \p m and, with \p det (may be NULL),
 *  prepares its detector keys. \p in's bytes must stay valid until
 *  gws_pipeline_finish() or gws_pipeline_discard(). Emits nothing,
 *  counts nothing, changes no state. */
void gws_pipeline_parse(gws_pipeline_t *pl, gws_detect_t *det,
                        const gws_input_t *in, gws_pipeline_msg_t *m);

/** @brief Starts fetching the entities \p m's event will touch (no-op
 *  for a message that did not parse or has no detector). */
void gws_pipeline_prefetch(const gws_pipeline_msg_t *m);

/** @brief gws_pipeline_process() for \p m, parsed from the same \p in;
 *  \p det must be the one \p m was parsed with, or \p m is prepared
 *  again for it. Leaves \p m reusable. */
gws_outcome_t gws_pipeline_finish(gws_pipeline_t *pl, gws_detect_t *det,
                                  const gws_input_t *in,
                                  gws_pipeline_msg_t *m, gws_emit_cb *cb,
                                  void *opaque);

/** @brief Drops a parsed message that will not be processed. */
void gws_pipeline_discard(gws_pipeline_msg_t *m);

/** @brief Releases \p m's buffers (after gws_pipeline_finish() or
 *  gws_pipeline_discard()). */
void gws_pipeline_msg_free(gws_pipeline_msg_t *m);

/** @brief State catch-up: parses \p in like gws_pipeline_process() and
 *  updates \p det, emitting nothing (no records, no alerts) and counting
 *  nothing in the stats. Used to bring a restored snapshot up to the
 *  committed offset. @returns 1 if the event was learned, 0 if it does
 *  not parse (it went to the DLQ the first time). */
int gws_pipeline_learn(gws_pipeline_t *pl, gws_detect_t *det,
                       const gws_input_t *in);

/** An output record that the producer or the broker refused for good
 *  (all borrowed): a record over the topic's size limit, or one the
 *  broker's validation rejects. */
typedef struct gws_rejected_s {
        const char *topic;     /**< the output topic that refused it */
        const char *why;       /**< the error, one line */
        const char *key;       /**< the record's key, NULL if none */
        size_t keylen;
        const char *payload;   /**< the record (already redacted) */
        size_t len;
        const char *src_topic; /**< the input message it came from */
        int32_t partition;
        int64_t offset;
} gws_rejected_t;

/** @brief Writes into \p out (reset first) the dead letter of \p rj:
 *  reason "output_rejected", the output topic and key, the source
 *  coordinates, the record's size, and the record itself as the payload,
 *  cut to \p max_payload bytes as written (0: no payload, only
 *  "payload_omitted":true, for a dead letter that was refused too).
 *  Any thread (no pipeline needed). @returns 0, or -1 out of memory. */
int gws_pipeline_rejected(gws_buf_t *out, const gws_rejected_t *rj,
                          size_t max_payload);

/** @brief Adds this pipeline's counters into \p st (any thread). */
void gws_pipeline_stats_add(const gws_pipeline_t *pl,
                            gws_pipeline_stats_t *st);

#endif /* GWS_PIPELINE_H */
