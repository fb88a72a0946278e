/* replay.h - `gwsieve replay`: the pipeline over an NDJSON file, no Kafka.
 *
 * Each line is one message. Lines are routed to simulated partitions with
 * the producer's default partitioner on the gateway_id key, and each
 * partition has its own detector state processed in line order, exactly
 * as `gwsieve run` processes a topic with that many partitions. So the
 * same input gives the same retained records and alerts in both modes.
 */
#ifndef GWS_REPLAY_H
#define GWS_REPLAY_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "gwsieve/config.h"
#include "gwsieve/detect.h"
#include "gwsieve/pipeline.h"
#include "gwsieve/placement.h"

/** Totals of one replay. */
typedef struct gws_replay_result_s {
        gws_pipeline_stats_t st;
        uint64_t lines;
        uint64_t bytes;
        uint64_t alerts_by_state[3]; /**< open, update, resolved */
        gws_detect_stats_t det;      /**< summed over the partitions */
        gws_placement_stats_t place; /**< gateways on several partitions
                                      *   (placement.h; this replay's) */
        double seconds;
} gws_replay_result_t;

/** @brief Replays \p input ("-" = stdin) into \p out_dir/retained.ndjson,
 *  alerts.ndjson and dlq.ndjson (created or truncated once the input is
 *  open and the pipeline built: a replay refused before that leaves the
 *  files of the previous one as they were), simulating
 *  cfg->partitions partitions. Resets the process-wide placement table
 *  (placement.h) first: not to be run beside a service in one process.
 *  \p run (NULL-able) is checked before each line is read: once it is 0
 *  the replay stops there, the lines read so far processed (a read that
 *  a signal interrupted, EINTR, ends too).
 *  @returns 0 at the end of the input; 1 if \p run stopped it (the files
 *  closed, each record in them whole, \p errstr saying after which
 *  line); -2 if \p cfg's pipeline cannot be built (a filter rule or
 *  redaction pattern that does not compile: a configuration error) or
 *  \p input is one of the outputs (a usage error: nothing is written); -1
 *  otherwise; \p errstr names the key, or the file and reason. */
int gws_replay_run(const gws_config_t *cfg, const char *input,
                   const char *out_dir, const volatile sig_atomic_t *run,
                   gws_replay_result_t *res, char *errstr,
                   size_t errstr_size);

/** @brief Finds the top-level "gateway_id" string of a JSON object text
 *  without parsing it whole. @returns 0 with \p *s / \p *len pointing into
 *  \p buf (escapes are not decoded: keys with escapes are rare and only
 *  change the partition), or -1 if absent. */
int gws_replay_key(const char *buf, size_t len, const char **s, size_t *slen);

/** @brief Prints the human summary of \p res. */
void gws_replay_print_summary(const gws_replay_result_t *res, FILE *fp);

/** @brief `gwsieve score-series`: reads a `timestamp,value` CSV (NAB's
 *  format; "-" = stdin) and writes `timestamp,value,anomaly_score` through
 *  the numeric-deviation detector (gws_series_score()).
 *  @returns 0, or -1 with \p errstr naming the file, line and problem. */
int gws_replay_series(const gws_config_t *cfg, const char *input,
                      const char *output, uint64_t *rows, char *errstr,
                      size_t errstr_size);

#endif /* GWS_REPLAY_H */
