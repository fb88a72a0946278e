/* changelog.h - detector state that moves with its partitions: snapshots
 * to a compacted state topic (state.topic) and their restore, with
 * catch-up, when a partition is assigned.
 *
 * Writing: gws_changelog_save() serializes a partition's detector
 * (gws_detect_save), wraps it in a state record (state.h: owner, input
 * offset, checksum, zstd) and produces it with key
 * "<group>/<input topic>/<partition>" to partition (input partition %
 * partitions of the state topic) of the state topic, so that one state
 * partition holds whole keys and a restore reads one partition. The
 * service takes one every state.interval_ms of a partition's processing
 * (worker thread: gws_changelog_encode()) and writes it once the outputs
 * of the events it holds are acknowledged (main thread:
 * gws_changelog_put()), and saves one on revocation and at shutdown
 * (main thread, drained partitions), so that its snapshots' delivered
 * offset is their offset (service.c, DESIGN).
 *
 * Restoring: gws_changelog_restore() queues a job per assigned partition
 * for the restore thread, which has its own consumer (assign only, never
 * joins or commits). It takes the queued jobs as one batch (up to 128):
 *   1. read the state partitions of their keys, each once and all at
 *      once, from their low to their high watermarks (as the first fetch
 *      of each found them), keeping the latest record under each job's
 *      key (on its own state partition only);
 * then for each job of the batch in turn:
 *   2. decode and load it (any problem: log the reason, count it, and the
 *      partition starts cold);
 *   3. catch up: if the snapshot's offset S is below the group's committed
 *      offset C, re-read the input partition from S to C and feed the
 *      detector only (gws_pipeline_learn: no records, no alerts; alert
 *      state advances under the same stable ids the previous owner
 *      emitted). If S is above C (the previous owner died before its
 *      commit, or the group refused it), the snapshot's delivered offset
 *      D says which of the events between had all their outputs
 *      acknowledged: the service skips C..D (they are in the state and
 *      downstream already), and only D..S are processed a second time
 *      (without a committed offset nothing is skipped). The service's
 *      snapshots have D = S, but an older version's may not, nor those
 *      of an owner still below such a snapshot's S;
 *   4. post the result; gws_changelog_done() hands it to the main thread,
 *      which installs the detector and resumes the (paused) partition.
 *      Every queued job posts one: its result is allocated when it is
 *      queued, so the restore thread has nothing to allocate that could
 *      leave a partition paused for good (only the detector itself, whose
 *      failure the result reports as det == NULL). Until a stop
 *      (gws_changelog_stop(), at shutdown): then the job being caught up
 *      posts a result marked stopped, and the others none.
 * The jobs of a batch are loaded one at a time on the restore thread: the
 * worker's other partitions keep flowing meanwhile. A state partition
 * that step 1 cannot read to its high watermark within
 * state.restore_timeout_ms (no leader, a broker down, errors) fails alone:
 * the jobs whose keys it holds start cold as GWS_STATE_UNREADABLE, the
 * others restore as usual, without waiting for it: once the others are
 * read, a state partition that has fetched nothing is set aside after a
 * quiet period and its jobs are read again with the next batch, keeping
 * their deadline.
 *
 * Deadline: a restore has one, state.restore_timeout_ms from its first
 * read (the restore thread taking it up), for all of its steps: the read
 * fails then (GWS_STATE_UNREADABLE), the committed offset's lookup gives
 * up (restored without catch-up or skip, logged), the catch-up stops
 * where it is (caught_to below the commit, logged). The steps once had a
 * deadline each: the lookup and the catch-up had state.restore_timeout_ms
 * of their own after a read that could take as long. Jobs first read in
 * the same batch have the same deadline: caught up one after another, a
 * later one gets what is left. The time a job waits in the queue for the
 * batch before it (itself bounded by its deadline) is not counted:
 * counting it would fail the job's read before it was tried (unreadable,
 * its snapshots held) when the topic is fine.
 *
 * Holding: a partition that started cold because the state topic could not
 * be read may still have a good snapshot there, which its cold state must
 * not replace (compaction keeps only the latest record of a key: the
 * partition's learned state would be lost for good). So its snapshots are
 * held: gws_changelog_save() writes nothing for it until a later restore
 * of the partition (its next assignment, here) reads the topic, whatever
 * it finds there (OK, MISSING, or a bad record). The hold is set before
 * the restore's result is posted, and kept by partition, not by
 * assignment: a snapshot taken after a revocation, by a worker that had
 * not drained, is held as well. Retrying the read in the background
 * instead would not let the partition use the snapshot it finds (it has
 * been processing cold since, and swapping detectors under its worker
 * needs a second catch-up); it could only end the hold early. Holding
 * costs the snapshots of one assignment: the next owner restores the
 * older snapshot and catches up from its offset to the committed one
 * (bounded by state.restore_timeout_ms, as every catch-up).
 *
 * Threads (DESIGN):
 *   - save: any thread; contexts and buffers are the caller's (\p raw,
 *     \p rec) or per thread (zstd); the detector must not change during
 *     the call (the caller owns it: its worker, or the main thread once
 *     the partition is drained);
 *   - restore jobs and results: a mutex-protected queue each way; the
 *     held partitions are under the same mutex, taken by a save only
 *     while some partition is held;
 *   - delivery reports of snapshots come through the service's delivery
 *     thread (gws_changelog_on_delivery); counters are atomics.
 *
 * Ownership: the changelog borrows the config and the producer (both
 * outlive it); a gws_restore_t from gws_changelog_done() is the caller's,
 * including its detector, and is freed with gws_restore_free().
 */
#ifndef GWS_CHANGELOG_H
#define GWS_CHANGELOG_H

#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "gwsieve/config.h"
#include "gwsieve/detect.h"
#include "gwsieve/state.h"
#include "gwsieve/util.h"

typedef struct gws_changelog_s gws_changelog_t;

/** A finished restore (gws_changelog_done()). */
typedef struct gws_restore_s {
        int32_t partition;
        uint64_t gen;              /**< the caller's assignment generation */
        gws_detect_t *det;         /**< restored, or new and empty (cold);
                                    *   NULL only when out of memory */
        gws_state_result_t result; /**< GWS_STATE_OK: restored */
        char reason[320];          /**< why cold, in a sentence */
        int64_t snap_offset;       /**< snapshot's input offset, or -1 */
        int64_t delivered;         /**< skip input offsets below it: the
                                    *   snapshot's delivered offset when
                                    *   that is above the committed one,
                                    *   else -1 */
        int64_t snap_written_ms;   /**< when it was written, or 0 */
        int64_t committed;         /**< group's offset, or -1 */
        int64_t caught_up;         /**< events re-read without outputs */
        int64_t caught_to;         /**< GWS_STATE_OK: the state holds every
                                    *   input event below it (where the
                                    *   catch-up ended: the committed
                                    *   offset, or less when it ran out of
                                    *   state.restore_timeout_ms; the
                                    *   snapshot's offset without one);
                                    *   else -1 */
        uint32_t entities;         /**< restored */
        size_t bytes;              /**< record size */
        double ms;                 /**< time from request to result */
        int stopped;               /**< 1: cut by gws_changelog_stop()
                                    *   (its catch-up or committed offset
                                    *   lookup): not to be installed, det
                                    *   is NULL */
        struct gws_restore_s *next;
} gws_restore_t;

typedef struct gws_changelog_stats_s {
        uint64_t written, failed;  /**< snapshot records acknowledged /
                                    *   failed (produce or delivery) */
        uint64_t bytes;            /**< record bytes produced */
        uint64_t raw_bytes;        /**< before zstd */
        uint64_t restores[GWS_STATE__CNT]; /**< by result */
        uint64_t restore_ms;       /**< total time spent restoring */
        uint64_t caught_up;        /**< events re-read for catch-up */
        uint64_t reads;            /**< state partition reads (each
                                    *   partition once per batch of
                                    *   restores; again when set
                                    *   aside unread) */
        uint64_t held;             /**< snapshots not written: their
                                    *   partition is held */
} gws_changelog_stats_t;

/** @brief Starts the restore thread and its consumer, made from
 *  \p rconf (connection and security properties; always taken over, also
 *  on failure). Checks that the state topic exists.
 *  @returns NULL with \p errstr on failure. */
gws_changelog_t *gws_changelog_new(const gws_config_t *cfg,
                                   rd_kafka_t *producer,
                                   rd_kafka_conf_t *rconf, char *errstr,
                                   size_t errstr_size);

/** @brief Stops the restore thread (abandoning queued jobs, a read in
 *  progress and undelivered results) and frees everything; a catch-up or
 *  committed offset lookup in progress is cut (gws_changelog_stop()), not
 *  waited for. NULL is a no-op. */
void gws_changelog_destroy(gws_changelog_t *cl);

/** @brief Stops restoring, for a shutdown: a read of the state topic in
 *  progress ends within a poll (100 ms) and its batch is abandoned; a
 *  catch-up within a poll, a lookup of a committed offset within one
 *  call (2 s at most): that job posts its result marked stopped, without
 *  a detector (a partial catch-up is not to be installed; the partition's
 *  latest snapshot stays the one it restored from), and logs it. Queued
 *  jobs are not started. Saves are not affected. Returns at once.
 *  @locality any thread (an atomic flag). */
void gws_changelog_stop(gws_changelog_t *cl);

/** @brief Produces a snapshot of \p det for input \p partition, covering
 *  every offset below \p offset; the outputs of every offset below
 *  \p delivered are acknowledged (-1: unknown). \p raw and \p rec are
 *  scratch buffers of the calling thread.
 *  @returns 0; 1 if the partition's snapshots are held (see "Holding"
 *           above: nothing produced, counted in stats.held); or -1
 *           (logged and counted; the previous snapshot stays the latest).
 *  @remark while nothing is held, costs one atomic load more. */
int gws_changelog_save(gws_changelog_t *cl, int32_t partition,
                       int64_t offset, int64_t delivered,
                       const gws_detect_t *det,
                       gws_buf_t *raw, gws_buf_t *rec);

/** @brief gws_changelog_save() in two steps, for a snapshot that may be
 *  written only later: the record of \p det (at \p offset, with
 *  \p delivered) into \p rec (reset first; \p raw is scratch), nothing
 *  produced. @returns 0; 1 if the partition's snapshots are held (counted,
 *  nothing written); or -1 (logged and counted as failed). */
int gws_changelog_encode(gws_changelog_t *cl, int32_t partition,
                         int64_t offset, int64_t delivered,
                         const gws_detect_t *det, gws_buf_t *raw,
                         gws_buf_t *rec);

/** @brief Produces \p rec, a record of input \p partition at \p offset
 *  from gws_changelog_encode() (\p raw_len: its size before zstd, for
 *  the stats). On a full producer queue it waits up to 5 s with \p wait,
 *  else returns 2 at once (nothing produced or counted: try again).
 *  @returns 0; 1 if the partition's snapshots are held; 2 (above); or -1
 *  (logged and counted). @locality any thread. */
int gws_changelog_put(gws_changelog_t *cl, int32_t partition,
                      int64_t offset, const gws_buf_t *rec, size_t raw_len,
                      int wait);

/** @returns 1 if the snapshots of input \p partition are held (its last
 *  restore here could not read the state topic), else 0.
 *  @locality any thread. */
int gws_changelog_held(gws_changelog_t *cl, int32_t partition);

/** @brief Waits until every snapshot produced so far is acknowledged.
 *  @returns 1, or 0 after \p timeout_ms. */
int gws_changelog_wait_delivered(gws_changelog_t *cl, int timeout_ms);

/** @returns 1 if \p rkm is one of the changelog's snapshot messages. */
int gws_changelog_owns(const gws_changelog_t *cl,
                       const rd_kafka_message_t *rkm);

/** @brief Delivery report of a snapshot message (delivery thread). */
void gws_changelog_on_delivery(gws_changelog_t *cl,
                               const rd_kafka_message_t *rkm);

/** A committed offset the caller does not know: the restore thread looks
 *  it up. */
#define GWS_COMMITTED_UNKNOWN INT64_MIN

/** @brief Queues the restores of the \p n input \p partitions (an
 *  assignment: all at once, so that the restore thread reads each state
 *  partition once for all of them); \p gens[i] comes back in the result of
 *  partitions[i] so the caller can tell a stale one (partition revoked and
 *  assigned again meanwhile). \p committed[i] is the group's committed
 *  offset of partitions[i] as the caller found it, the one its consumer
 *  starts from (-1: none), or GWS_COMMITTED_UNKNOWN (also for every
 *  partition when \p committed is NULL): the restore thread looks it up,
 *  trying again until the restore's deadline ("Deadline" above), and logs
 *  a warning when it cannot (restored then without catch-up or skip).
 *  @returns 0, or -1 (out of memory: none queued). */
int gws_changelog_restore(gws_changelog_t *cl, const int32_t *partitions,
                          const uint64_t *gens, const int64_t *committed,
                          int n);

/** @brief Takes one finished restore. @returns NULL if none. */
gws_restore_t *gws_changelog_done(gws_changelog_t *cl);

/** @brief Frees \p r and its detector (if still set). */
void gws_restore_free(gws_restore_t *r);

/** What a restore of one input partition would find
 *  (gws_changelog_inspect()). */
typedef struct gws_state_view_s {
        int32_t partition;
        gws_state_result_t result; /**< OK, MISSING, or why it would
                                    *   start cold */
        char reason[256];          /**< that reason in a sentence */
        gws_state_info_t info;     /**< the record's header (result OK) */
        uint32_t entities;         /**< loaded (result OK) */
        int64_t committed;         /**< the group's offset, -1 none or
                                    *   not known (committed_error) */
        char committed_error[128]; /**< why the committed offset is not
                                    *   known (the lookup failed or did
                                    *   not answer in time); "" when it
                                    *   is, -1 then meaning none */
        int64_t end;               /**< the input's high watermark, -1 */
} gws_state_view_t;

/** @brief Reads what the state topic holds for every partition of
 *  cfg->topic_input in cfg->group the way a restore does (the latest
 *  record of each key, decoded and loaded into a detector), with the
 *  group's committed offsets and the input's end offsets. \p conf is an
 *  assign-only consumer's (gws_service_reader_conf()), always taken over
 *  (statistics.interval.ms is set to 100 on it). Read-only: joins no
 *  group, commits nothing. Everything ends by one deadline, \p timeout_ms
 *  from the call: a state partition not read by then makes the rows of
 *  its input partitions GWS_STATE_UNREADABLE, the read's error as their
 *  reason, and so does one whose leader is known missing (metadata) or
 *  down (two connection attempts failed) before, as soon as it is known;
 *  the other rows are as usual. A committed or end offset not known by
 *  the deadline (the coordinator, or the partition's leader, down) is -1;
 *  a committed offset not known (the lookup failed: refused, the
 *  coordinator down, the deadline) says why in committed_error.
 *  @returns the number of rows in \p *rows (the caller frees it), or -1
 *           with \p errstr (a topic's metadata cannot be read, out of
 *           memory). */
int gws_changelog_inspect(const gws_config_t *cfg, rd_kafka_conf_t *conf,
                          int timeout_ms, gws_state_view_t **rows,
                          char *errstr, size_t errstr_size);

/** @brief Prints \p rows as a table that says what the next owner of
 *  each partition does (restore, catch up, skip, start cold), or with
 *  \p json one JSON object per line. An unreadable row says why; its
 *  snapshot's size is unknown ("-", 0 in JSON). A committed offset not
 *  known is "?" (null in JSON, with "committed_error"). */
void gws_changelog_print_inspect(const gws_config_t *cfg,
                                 const gws_state_view_t *rows, int n,
                                 int json, FILE *fp);

void gws_changelog_stats(const gws_changelog_t *cl,
                         gws_changelog_stats_t *st);

#endif /* GWS_CHANGELOG_H */
