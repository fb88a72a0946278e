/* service.c - the consumer-group member: Kafka in, pipeline, Kafka out.
 *
 * DESIGN
 * ------
 * Threads:
 *  - main thread (gws_service_run): owns the consumer rd_kafka_t. Polls it,
 *    dispatches each message to the worker that owns its partition, runs
 *    the rebalance callback (assign / revoke / lost), commits done offsets
 *    periodically, pauses and resumes partitions for backpressure, logs
 *    progress, and runs the shutdown sequence.
 *  - N worker threads: each owns a pipeline (scratch, counters) and, for
 *    the partitions routed to it (partition % N), their detector state.
 *    A worker pops messages from its queue in order, so per-partition order
 *    is preserved, runs the pipeline, and produces the outputs.
 *  - the delivery thread: polls the producer; dr_msg_cb runs there.
 *  - the fetch wake-up thread (librdkafka < 2.2, fetch_wakeup): sends a
 *    ListOffsets round on the consumer when the main loop asks, which
 *    wakes librdkafka's broker threads after a full prefetch queue (see
 *    fetch_wake()). It touches only wake_parts under wake_lock and the
 *    consumer handle (thread-safe API); the main thread joins it before
 *    closing the consumer.
 *  - librdkafka's internal threads; log_cb/error_cb run there and only log
 *    or set flags.
 *
 * At-least-once: every consumed message gets an inflight entry appended
 * to its partition's FIFO (offset order). The entry holds one reference
 * while the worker processes it and one per output record produced; the
 * delivery report drops the output's reference. When the head of the FIFO
 * reaches zero references it is popped and the partition's committable
 * offset becomes head.offset + 1, so only the highest *contiguous* done
 * offset is ever committed. Failed deliveries are produced again (the
 * producer is idempotent, so retries inside librdkafka do not duplicate).
 *
 * Detector state (changelog.h) follows the same rule: a snapshot holds
 * only events whose outputs were all acknowledged, so the next owner,
 * which continues from the snapshot's offset (skipping what the group did
 * not commit) or catches up to the committed offset, never scores an
 * event against a state that already holds it unless the event's outputs
 * left. A periodic snapshot is taken by the partition's worker after an
 * event it processed, then waits (snap_take()) until the partition's
 * committable offset reaches it; the main thread writes it then
 * (snap_release(), every loop turn), or drops it when a newer one is
 * taken, the partition is revoked or lost, or the service stops first.
 * Revocation and shutdown snapshots are written for idle partitions only
 * (nothing queued or undelivered), and supersede a waiting one, which is
 * dropped (one record per revoked partition). An event that fails
 * (GWS_OUT_FAILED: an output that could not be written, redacted or
 * produced) after the detector took it in (an alert opened, baselines
 * moved) keeps its inflight entry: its partition's committable offset
 * never passes it and the partition is never idle again, and its worker
 * processes nothing more (set_fatal()). So no snapshot written after the failure holds it:
 * the fatal stop still writes idle partitions' snapshots and waiting ones
 * whose outputs were acknowledged, and after the restart the event is
 * read again against a state without it, and its alert opens again.
 *
 * Shared state and locks:
 *  - the partition's gws_tracker_t (own lock) holds the FIFO and the
 *    committable offset (workers append, workers and the delivery thread
 *    complete, main reads and commits); entry references are atomic.
 *  - wq_t.lock/cond guard a worker's queue.
 *  - ptn_t lifetime: reference counted (table + queued messages + inflight
 *    entries); freed when the last reference goes.
 *
 * Rebalance (main thread, inside rd_kafka_consumer_poll): on assign, new
 * partition state is created before rd_kafka_incremental_assign(). On
 * revoke, messages already queued for those partitions are processed, the
 * outputs awaited (bounded by shutdown_timeout_ms), the done offsets
 * committed synchronously, and only then the partitions unassigned. On
 * lost, queued messages are discarded and nothing is committed.
 *
 * Operations endpoint (http.h): libmicrohttpd's thread serves /metrics
 * from a snapshot the main thread renders every second (snap, under
 * snap_lock: the counters it reads are main-thread state or atomics), and
 * /healthz and /readyz from atomics (last_poll_ms, joined, stopping,
 * fatal), so a scrape never touches librdkafka or worker state.
 *
 * Shutdown: stop polling new messages; wait for worker queues and inflight
 * outputs (bounded); commit; rd_kafka_consumer_close() (revokes, leaves the
 * group); stop workers; flush the producer; destroy.
 */
#include "gwsieve/service.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "gwsieve/detect.h"
#include "gwsieve/http.h"
#include "gwsieve/json.h"
#include "gwsieve/log.h"
#include "gwsieve/metrics.h"
#include "gwsieve/changelog.h"
#include "gwsieve/pipeline.h"
#include "gwsieve/placement.h"
#include "gwsieve/tracker.h"
#include "gwsieve/util.h"

/* ------------------------------------------------------------------------
 * private types
 * ------------------------------------------------------------------------ */

typedef struct ptn_s ptn_t;
typedef gws_tracker_entry_t inflight_t;

/* A periodic snapshot taken by a partition's worker, waiting for the
 * outputs of the events it holds to be acknowledged before the main
 * thread writes it (snap_take(), snap_release()). */
typedef struct snap_wait_s {
        gws_buf_t rec;     /* the state record (gws_changelog_encode()) */
        size_t raw_len;    /* its size before zstd, for the stats */
        int64_t offset;    /* the offset it claims */
        int64_t need;      /* written once the partition's committable
                            * offset reaches it: every event it holds
                            * (this owner's) had its outputs acknowledged */
        int64_t delivered; /* the delivered offset it claims */
        uint64_t changes;  /* gws_detect_changes() when it was taken */
} snap_wait_t;

/* The last snapshot of a partition that this member produced (main thread
 * only): a revocation or stop that would write the same state again
 * (same offsets, no change to the detector since) writes nothing once it
 * was acknowledged (snapshot_revoked()). */
typedef struct snap_put_s {
        int valid;
        int64_t offset, delivered;
        uint64_t changes;
        uint64_t failed; /* the changelog's failures when it was produced:
                          * none since, and nothing pending, is its ack */
} snap_put_t;

struct ptn_s {
        int32_t partition;
        int worker;
        int refcnt;              /* atomic: table, queue items, entries */
        gws_tracker_t *trk;      /* done offsets (own lock) */
        int64_t committed;       /* main thread only: what we committed */
        int64_t lag_base;        /* main only: the group's committed offset
                                  * as known here (assignment, our commits;
                                  * -1 none): stats_lag() */
        int64_t queued;          /* atomic: messages in a worker queue */
        int lost;                /* atomic: drop, never commit */
        int paused;              /* main thread only */
        gws_detect_t *det;       /* owned; used by the worker only (NULL
                                  * while restoring) */
        uint64_t gen;            /* assignment generation (restores) */
        int restoring;           /* main only: paused, waiting for its
                                  * detector state */
        int64_t hold_from;       /* main only: first offset consumed while
                                  * restoring (dropped; seek back), -1 */
        int64_t last_consumed;   /* main only: last offset dispatched, -1 */
        int rewind_logged;       /* main only */
        int64_t next_offset;     /* atomic: after the last processed,
                                  * or where the restore caught up to
                                  * (restores_collect()); 0 nothing */
        int64_t last_snap_ms;    /* worker (main once drained): when
                                  * the last periodic snapshot was taken */
        int64_t idle_since_ms;   /* main only: librdkafka's fetch_state
                                  * not "active" since (statistics), 0 */
        int stall_warned;        /* main only */
        int64_t skip_below;      /* atomic, set by main before the resume:
                                  * offsets below it are in the restored
                                  * state and their outputs were delivered
                                  * (the snapshot's delivered offset); the
                                  * worker releases them unprocessed. -1 */
        int64_t snap_floor;      /* set by main before the resume, then
                                  * read-only: the restored snapshot's
                                  * offset and the offset up to which its
                                  * outputs were delivered (-1 none), or
                                  * after a catch-up where it ended and
                                  * the committed offset: what every later
                                  * snapshot still claims at least
                                  * (snap_point()) */
        int64_t deliv_floor;
        snap_put_t snap_put;     /* main only */
        snap_wait_t *snap_wait;  /* atomic pointer: a periodic snapshot
                                  * waiting for its outputs, or NULL; the
                                  * worker swaps a newer one in, the main
                                  * thread takes it out to write or drop
                                  * it (snap_release()) */
        int kept;                /* atomic: listed in svc->kept */
        ptn_t *kept_next;        /* svc->kept's link */
};

typedef struct qitem_s {
        rd_kafka_message_t *rkm;
        ptn_t *p;
} qitem_t;

typedef struct wq_s {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        qitem_t *items; /* ring */
        size_t cap, head, len;
        int stop;
} wq_t;

typedef struct worker_s {
        gws_service_t *svc;
        int id;
        pthread_t thr;
        wq_t q;
        gws_pipeline_t *pl;
        int busy; /* atomic: processing an item */
        qitem_t *stage;          /* main: dispatched, not yet pushed */
        size_t nstage, stagecap; /* main */
        gws_hist_t hist; /* processing time per message (atomic) */
        gws_buf_t sraw; /* snapshot scratch */
        gws_pipeline_msg_t pm[2]; /* the message being processed (cur)
                                   * and the next, parsed ahead
                                   * (worker_run()) */
        gws_input_t pin[2];       /* their inputs */
        int cur;
} worker_t;

typedef struct retry_s {
        rd_kafka_topic_t *rkt;
        char *key, *val;
        size_t keylen, len;
        inflight_t *inf;
        struct retry_s *next;
} retry_t;

struct gws_service_s {
        const gws_config_t *cfg;
        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        rd_kafka_topic_t *out_rkt[GWS_SINK__CNT];
        worker_t *workers;
        int nworkers;
        pthread_t dr_thr;
        int dr_stop;  /* atomic */
        int fatal;    /* atomic: a fatal error was seen; set after
                       * fatal_reason is written (release) */
        int fatal_claim; /* atomic: the first set_fatal() writes it */
        char fatal_reason[512];
        ptn_t **ptns; /* by partition; main thread only */
        int32_t nptns;
        uint8_t *app_paused; /* main thread, nptns entries: paused by us
                              * and not resumed since, whether assigned
                              * or not (pause_parts()) */
        int all_paused; /* producer backpressure */
        int64_t throttle_since; /* main: overloaded since (mono ms), 0 */
        gws_changelog_t *cl;    /* detector state topic, or NULL */
        uint64_t gen;           /* main: assignment generations */
        gws_buf_t sraw, srec;   /* main: snapshot scratch */
        uint64_t throttled_ms;  /* main: time spent not polling */
        /* Fetch wake-up (see fetch_wake()): librdkafka < 2.2 only. */
        int wake_on;                  /* set at creation */
        pthread_t wake_thr;
        pthread_mutex_t wake_lock;
        pthread_cond_t wake_cond;
        rd_kafka_topic_partition_list_t *wake_parts; /* under wake_lock */
        int wake_stop;                               /* under wake_lock */
        int64_t last_throttle_ms, last_wake_ms;      /* main */
        size_t drain_bytes; /* main: polled since the queue was empty */
        int64_t assign_ms;  /* main: last assignment of new partitions */
        size_t wake_bytes;  /* half of queued.max.messages.kbytes */
        uint64_t wakes[2]; /* main: rounds asked for catch-up, assignment */
        /* Where a partition without a committed offset starts: the
         * logical offset of the consumer's auto.offset.reset
         * (start_offsets()); INVALID for "error". Set at creation. */
        int64_t reset_offset;
        uint64_t start_lookups_failed; /* main: see start_offsets() */
        /* Partitions the group assigned whose start offset could not be
         * looked up (cooperative protocol only): not yet given to
         * librdkafka, looked up again by start_retry(). Main thread;
         * deferred_cnt mirrors deferred->cnt for the HTTP thread. */
        rd_kafka_topic_partition_list_t *deferred;
        int deferred_cnt;          /* atomic */
        int64_t defer_since_ms;    /* main: first deferral of this run */
        int64_t defer_next_ms;     /* main: next lookup */
        int defer_backoff_ms;      /* main */
        int defer_tries;           /* main: failed lookups so far */
        pthread_mutex_t retry_lock;
        retry_t *retries;
        /* delivery thread (main thread at exit, after it): failed
         * deliveries are logged at most every FAIL_LOG_MS and produced
         * again at most every retry_backoff_ms (dr_main()) */
        int64_t fail_log_ms;       /* last report */
        uint64_t fail_unlogged;    /* failures since it */
        /* Outputs refused for good (atomics, any producing thread): sent
         * to the DLQ instead (reject_divert()), by the sink that refused
         * them; one log line per FAIL_LOG_MS. */
        uint64_t rejected[GWS_SINK__CNT];
        int64_t rej_log_ms;
        uint64_t rej_unlogged;
        uint64_t fail_round;       /* failures since the last retry round */
        int64_t retry_at_ms;
        int retry_backoff_ms;
        /* counters */
        uint64_t rebalances, commits, commit_errors, delivery_retries;
        uint64_t rewinds; /* main: offsets consumed again, see dispatch() */
        uint64_t restore_skipped; /* atomic: events below a restored
                                   * snapshot's delivered offset */
        uint64_t snaps_dropped;   /* atomic: periodic snapshots not
                                   * written, their outputs not all
                                   * acknowledged (snap_drop()) */
        uint64_t snaps_unchanged; /* atomic: revocation snapshots not
                                   * written, the state unchanged since
                                   * the last one (snapshot_revoked()) */
        ptn_t *kept;              /* atomic list head: partitions whose
                                   * references are kept for good
                                   * (ptn_keep()), freed at destroy */
        uint64_t delivered, consumer_errors;
        uint64_t commits_postponed;
        /* Whether the group is mid-rebalance, for commit timing (see
         * log_cb and stats_cb): set at once from librdkafka's join-state
         * debug line (librdkafka thread, atomic), or from statistics (main
         * thread) until such a line has been seen. */
        int rebalancing;     /* atomic */
        int join_from_log;   /* atomic: log lines drive it */
        char join_state[32]; /* main thread: last state from statistics */
        int64_t last_commit_ms, last_stats_ms;
        uint64_t last_stats_in;
        int assigned_cnt;
        /* operations endpoint */
        gws_http_t *http;
        pthread_mutex_t snap_lock;
        gws_buf_t snap;          /* under snap_lock */
        int64_t last_snap_ms;    /* main thread */
        int64_t last_lag_ms;     /* main thread: lag parsed from stats */
        int64_t last_poll_ms;    /* atomic: main loop heartbeat */
        int joined;              /* atomic: got an assignment (maybe empty) */
        int stopping;            /* atomic */
        int abandon;             /* atomic: the consumer is closed, nothing
                                  * commits any more; workers stop
                                  * producing (stop_workers()) */
        uint64_t *consumed;      /* main thread: per partition */
        int64_t *lag;            /* main thread: per partition, -1 unknown */
        gws_jdoc_t stats_doc;    /* main thread: the statistics, tokenized */
        int read_committed;      /* isolation.level: lag up to ls_offset */
        int not_fetching;        /* atomic: see fetch_watch() */
        int not_fetching_now;    /* main: counted by this stats parse */
        int32_t ncounters;
};

/* ------------------------------------------------------------------------
 * private prototypes
 * ------------------------------------------------------------------------ */

static void ptn_unref(ptn_t *p);
static int counters_grow(gws_service_t *svc, int32_t partition);
/* Marks (in rd_kafka_topic_partition_t.opaque) a start offset that is the
 * group's committed offset, from start_offsets() to on_assign(). */
static char committed_mark;
#define COMMITTED ((void *)&committed_mark)
static void inflight_release(inflight_t *inf);
static void dispatch_flush(gws_service_t *svc);

/* ------------------------------------------------------------------------
 * fatal errors and librdkafka callbacks
 * ------------------------------------------------------------------------ */

static void set_fatal(gws_service_t *svc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_fatal(gws_service_t *svc, const char *fmt, ...) {
        va_list ap;
        if (__atomic_exchange_n(&svc->fatal_claim, 1, __ATOMIC_ACQ_REL))
                return; /* the first reason wins */
        va_start(ap, fmt);
        vsnprintf(svc->fatal_reason, sizeof(svc->fatal_reason), fmt, ap);
        va_end(ap);
        /* whoever sees the flag (acquire) sees the whole reason: it was
         * set first, and a reader could show half of it */
        __atomic_store_n(&svc->fatal, 1, __ATOMIC_RELEASE);
        gws_log(GWS_LOG_ERR, "FATAL", "%s", svc->fatal_reason);
}

/* @locality librdkafka internal threads: log only, no API calls (but the
 * trivial accessor rd_kafka_opaque()).
 * The consumer runs with debug=cgrp so that this sees every group
 * join-state change the moment it happens ("... changed join state
 * steady -> init ..."): periodic commits are held back while the group
 * rebalances, see stats_cb() for why. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf) {
        if (!strcmp(fac, "CGRPJOINSTATE")) {
                gws_service_t *svc = rd_kafka_opaque(rk);
                const char *arrow = strstr(buf, " -> ");
                if (svc && arrow) {
                        __atomic_store_n(&svc->join_from_log, 1,
                                         __ATOMIC_RELEASE);
                        __atomic_store_n(&svc->rebalancing,
                                         strncmp(arrow + 4, "steady", 6) != 0,
                                         __ATOMIC_RELEASE);
                }
        }
        gws_log(level, "RDKAFKA", "%s: [%s] %s", rd_kafka_name(rk), fac, buf);
}

/* @locality the thread polling that client (main or delivery thread). */
static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
        gws_service_t *svc = opaque;
        char fbuf[256];
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                rd_kafka_fatal_error(rk, fbuf, sizeof(fbuf));
                set_fatal(svc, "librdkafka fatal error on %s: %s",
                          rd_kafka_name(rk), fbuf);
                return;
        }
        /* Transport errors are retried by librdkafka; say so at WARN. */
        gws_log(err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? GWS_LOG_WARNING
                                                           : GWS_LOG_NOTICE,
                "KAFKA", "%s: %s: %s", rd_kafka_name(rk),
                rd_kafka_err2name(err), reason);
}

/* ------------------------------------------------------------------------
 * partitions and the inflight FIFO
 * ------------------------------------------------------------------------ */

static ptn_t *ptn_new(gws_service_t *svc, int32_t partition) {
        ptn_t *p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        p->partition = partition;
        p->worker = partition % svc->nworkers;
        p->refcnt = 1; /* the table's */
        p->committed = -1;
        p->lag_base = -1;
        p->hold_from = -1;
        p->skip_below = -1;
        p->snap_floor = p->deliv_floor = -1;
        p->last_consumed = -1;
        p->gen = ++svc->gen;
        /* With a state topic the detector comes from the restore. */
        p->restoring = svc->cl != NULL;
        if (!(p->trk = gws_tracker_new(p)) ||
            (!svc->cl && !(p->det = gws_detect_new(svc->cfg, partition)))) {
                gws_tracker_destroy(p->trk);
                free(p);
                return NULL;
        }
        return p;
}

static void ptn_ref_n(ptn_t *p, int n) {
        __atomic_add_fetch(&p->refcnt, n, __ATOMIC_RELAXED);
}

static void ptn_ref(ptn_t *p) {
        ptn_ref_n(p, 1);
}

static void snap_wait_free(snap_wait_t *sw) {
        if (!sw)
                return;
        gws_buf_free(&sw->rec);
        free(sw);
}

static void ptn_free(ptn_t *p) {
        /* revoked or lost before its outputs were acknowledged, or at
         * exit: never written */
        snap_wait_free(p->snap_wait);
        gws_detect_destroy(p->det);
        gws_tracker_destroy(p->trk);
        free(p);
}

static void ptn_unref_n(ptn_t *p, int n) {
        if (n <= 0 || __atomic_sub_fetch(&p->refcnt, n, __ATOMIC_ACQ_REL))
                return;
        ptn_free(p);
}

/* Lists \p p (once) as holding a reference for good: an entry of an
 * event that failed, or of a run stopped midway, keeps its offset from
 * being committed and is never released, and so \p p (tracker, detector)
 * was never freed: a fatal stop left them to LeakSanitizer. They are
 * freed at gws_service_destroy(), once no thread can touch them.
 * @locality any thread (failure and stop paths only). */
static void ptn_keep(gws_service_t *svc, ptn_t *p) {
        if (__atomic_exchange_n(&p->kept, 1, __ATOMIC_ACQ_REL))
                return;
        ptn_ref(p); /* the list's: p stays until destroy */
        p->kept_next = __atomic_load_n(&svc->kept, __ATOMIC_ACQUIRE);
        while (!__atomic_compare_exchange_n(&svc->kept, &p->kept_next, p, 1,
                                            __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
                ;
}

static void ptn_unref(ptn_t *p) {
        ptn_unref_n(p, 1);
}

/* The input offset and delivered offset of a snapshot of \p p taken
 * after processing offset \p next - 1, as of now (a revocation's: \p p is
 * idle; a periodic one claims what this gives once the outputs below
 * \p next are acknowledged, snap_take()). A restored state holds every
 * event below the offset of the snapshot it came from even while its new
 * owner, started from an older committed offset, is still below that
 * offset; and the outputs the previous owner delivered stay delivered. A
 * snapshot written then (revoked or stopped midway, or periodic) once
 * claimed only \p next and the new owner's committable offset: its next
 * owner went on from there, counted the events up to the old offset twice
 * and emitted again outputs delivered before. @locality main thread. */
static void snap_point(ptn_t *p, int64_t next, int64_t *offset,
                       int64_t *delivered) {
        int64_t c = gws_tracker_committable(p->trk);
        *offset = next > p->snap_floor ? next : p->snap_floor;
        *delivered = c > p->deliv_floor ? c : p->deliv_floor;
}

/* Drops one reference of \p inf; done entries are popped and release
 * their partition references. @locality any thread. */
static void inflight_release(inflight_t *inf) {
        ptn_t *p = gws_tracker_opaque(gws_tracker_of(inf));
        int popped;
        ptn_ref(p); /* keep p (and its tracker) alive during the release */
        popped = gws_tracker_release(inf);
        while (popped-- > 0)
                ptn_unref(p); /* the popped entries' references */
        ptn_unref(p);
}

/* @returns 1 when nothing of \p p is queued or awaiting delivery. */
static int ptn_idle(ptn_t *p) {
        if (__atomic_load_n(&p->queued, __ATOMIC_ACQUIRE))
                return 0;
        return gws_tracker_pending(p->trk) == 0;
}

/* ------------------------------------------------------------------------
 * worker queues
 * ------------------------------------------------------------------------ */

static int wq_init(wq_t *q) {
        q->cap = 1024;
        if (!(q->items = calloc(q->cap, sizeof(*q->items))))
                return -1;
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->cond, NULL);
        return 0;
}

static void wq_destroy(wq_t *q) {
        free(q->items);
        pthread_mutex_destroy(&q->lock);
        pthread_cond_destroy(&q->cond);
}

/* Appends \p n items in order, with one lock round and one wake-up (per
 * poll round, not per message: waking a worker per message was most of
 * the main thread's futex time). The queue grows instead of blocking:
 * the main thread must never block (it serves rebalances); throttle() and
 * pause/resume keep the length bounded. @returns 0 or -1 (no memory;
 * nothing was appended). */
static int wq_push_many(wq_t *q, const qitem_t *its, size_t n) {
        size_t i;
        pthread_mutex_lock(&q->lock);
        if (q->len + n > q->cap) {
                size_t ncap = q->cap * 2;
                qitem_t *nq;
                while (ncap < q->len + n)
                        ncap *= 2;
                if (!(nq = malloc(ncap * sizeof(*nq)))) {
                        pthread_mutex_unlock(&q->lock);
                        return -1;
                }
                for (i = 0; i < q->len; i++)
                        nq[i] = q->items[(q->head + i) % q->cap];
                free(q->items);
                q->items = nq;
                q->cap = ncap;
                q->head = 0;
        }
        for (i = 0; i < n; i++)
                q->items[(q->head + q->len + i) % q->cap] = its[i];
        q->len += n;
        pthread_cond_signal(&q->cond);
        pthread_mutex_unlock(&q->lock);
        return 0;
}

/* @returns 1 with an item, 0 when stopped and empty. */
static int wq_pop(wq_t *q, qitem_t *it, int *busy) {
        pthread_mutex_lock(&q->lock);
        while (!q->len && !q->stop)
                pthread_cond_wait(&q->cond, &q->lock);
        if (!q->len) {
                pthread_mutex_unlock(&q->lock);
                return 0;
        }
        *it = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
        __atomic_store_n(busy, 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&q->lock);
        return 1;
}

/* Pops up to \p max items at once (one lock round per batch, not per
 * message). @returns the count, 0 when stopped and empty. */
static size_t wq_pop_batch(wq_t *q, qitem_t *its, size_t max, int *busy) {
        size_t n = 0;
        pthread_mutex_lock(&q->lock);
        while (!q->len && !q->stop)
                pthread_cond_wait(&q->cond, &q->lock);
        while (q->len && n < max) {
                its[n++] = q->items[q->head];
                q->head = (q->head + 1) % q->cap;
                q->len--;
        }
        if (n)
                __atomic_store_n(busy, 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&q->lock);
        return n;
}

static size_t wq_len(wq_t *q) {
        size_t n;
        pthread_mutex_lock(&q->lock);
        n = q->len;
        pthread_mutex_unlock(&q->lock);
        return n;
}

/* ------------------------------------------------------------------------
 * producing
 * ------------------------------------------------------------------------ */

typedef struct emit_ctx_s {
        gws_service_t *svc;
        inflight_t *inf;
} emit_ctx_t;

/* Failed deliveries: one log line per FAIL_LOG_MS; a round of producing
 * them again at most every RETRY_BACKOFF_MAX_MS while they keep failing
 * (doubling from RETRY_BACKOFF_MIN_MS: librdkafka has retried each one
 * already, and a permanent error produced again at once spun). */
#define FAIL_LOG_MS 5000
#define RETRY_BACKOFF_MIN_MS 100
#define RETRY_BACKOFF_MAX_MS 5000

/* Errors that refuse one record for good, whatever is retried: over
 * the topic's or the producer's size limit, or failing the broker's
 * validation (e.g. no key on a compacted topic). Produced again, such a
 * record failed every 5 s for ever and held its partition's commits, or
 * (refused by the producer itself) stopped the service on every
 * restart. They go to the DLQ instead. Errors of a whole topic or
 * cluster (authorization, unknown topic, timeouts) are retried. */
static int reject_is_permanent(rd_kafka_resp_err_t err) {
        return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
               err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE ||
               err == RD_KAFKA_RESP_ERR_INVALID_RECORD;
}

/* How the dead letter of a refused dead letter ends (it carries no
 * payload, gws_pipeline_rejected() with none). Refused in turn, it is
 * produced again as it is: a few hundred bytes, nothing is left to
 * shrink (a broker that refuses it is misconfigured). */
#define REJECT_OMITTED_TAIL ",\"payload_omitted\":true}"

static gws_sink_t sink_of(const gws_service_t *svc,
                          const rd_kafka_topic_t *rkt) {
        int s;
        for (s = 0; s < GWS_SINK__CNT; s++)
                if (svc->out_rkt[s] == rkt)
                        return (gws_sink_t)s;
        return GWS_SINK_RETAINED;
}

/* The dead letter of a record \p rkt refused with \p err into \p b: the
 * record as its payload, or, for a dead letter refused itself, only its
 * coordinates. @returns 0, 1 when it is such a dead letter already
 * (nothing to shrink), or -1 out of memory. @locality any producing
 * thread. */
static int reject_build(gws_service_t *svc, gws_buf_t *b,
                        rd_kafka_topic_t *rkt, const char *key,
                        size_t keylen, const char *val, size_t len,
                        inflight_t *inf, rd_kafka_resp_err_t err) {
        int dlq = rkt == svc->out_rkt[GWS_SINK_DLQ];
        char why[256];
        gws_rejected_t rj = {0};

        if (dlq && len >= sizeof(REJECT_OMITTED_TAIL) - 1 &&
            !memcmp(val + len - (sizeof(REJECT_OMITTED_TAIL) - 1),
                    REJECT_OMITTED_TAIL, sizeof(REJECT_OMITTED_TAIL) - 1))
                return 1;
        snprintf(why, sizeof(why), "%s: %s (%zu bytes)",
                 dlq ? "the dead letter itself was refused"
                     : "the output record was refused",
                 rd_kafka_err2str(err), len);
        rj.topic = rd_kafka_topic_name(rkt);
        rj.why = why;
        rj.key = key;
        rj.keylen = keylen;
        rj.payload = val;
        rj.len = len;
        rj.src_topic = svc->cfg->topic_input;
        rj.partition =
            ((ptn_t *)gws_tracker_opaque(gws_tracker_of(inf)))->partition;
        rj.offset = gws_tracker_offset(inf);
        return gws_pipeline_rejected(
            b, &rj, dlq ? 0 : (size_t)svc->cfg->dlq_payload_bytes);
}

/* Outputs sent to the DLQ instead (any thread). */
static uint64_t rejected_total(gws_service_t *svc) {
        uint64_t n = 0;
        int i;
        for (i = 0; i < GWS_SINK__CNT; i++)
                n += __atomic_load_n(&svc->rejected[i], __ATOMIC_RELAXED);
        return n;
}

/* Counts a record sent to the DLQ instead of \p rkt (once: not again
 * when its dead letter is refused too); logs one line per FAIL_LOG_MS.
 * @locality any producing thread. */
static void reject_note(gws_service_t *svc, rd_kafka_topic_t *rkt,
                        size_t len, inflight_t *inf,
                        rd_kafka_resp_err_t err) {
        int64_t now = gws_mono_ms(),
                last = __atomic_load_n(&svc->rej_log_ms, __ATOMIC_RELAXED);
        uint64_t more;
        char extra[64] = "";

        /* a dead letter refused in turn is the same dead letter: its
         * record was counted (by the pipeline, or here as refused) */
        if (sink_of(svc, rkt) != GWS_SINK_DLQ)
                __atomic_add_fetch(&svc->rejected[sink_of(svc, rkt)], 1,
                                   __ATOMIC_RELAXED);
        if ((last && now - last < FAIL_LOG_MS) ||
            !__atomic_compare_exchange_n(&svc->rej_log_ms, &last, now, 0,
                                         __ATOMIC_RELAXED,
                                         __ATOMIC_RELAXED)) {
                __atomic_add_fetch(&svc->rej_unlogged, 1, __ATOMIC_RELAXED);
                return;
        }
        more = __atomic_exchange_n(&svc->rej_unlogged, 0, __ATOMIC_RELAXED);
        if (more)
                snprintf(extra, sizeof(extra),
                         " (and %llu more since the last report)",
                         (unsigned long long)more);
        gws_log(GWS_LOG_WARNING, "PRODUCE",
                "%s refused a record for good (%s, %zu bytes), source "
                "partition %d offset %lld: sent to the dead-letter topic "
                "%s instead (reason output_rejected)%s",
                rd_kafka_topic_name(rkt), rd_kafka_err2str(err), len,
                (int)((ptn_t *)gws_tracker_opaque(gws_tracker_of(inf)))
                    ->partition,
                (long long)gws_tracker_offset(inf), svc->cfg->topic_dlq,
                extra);
}

/* Produces one record; blocks (never drops) while the queue is full.
 * @locality worker or delivery thread. @returns 0 or -1 (fatal). */
static int produce(gws_service_t *svc, rd_kafka_topic_t *rkt,
                   const char *key, size_t keylen, const char *val,
                   size_t len, inflight_t *inf) {
        int backoff = 0;
        gws_tracker_ref(inf);
        for (;;) {
                if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA,
                                     RD_KAFKA_MSG_F_COPY, (void *)val, len,
                                     key, keylen, inf) == 0)
                        return 0;
                rd_kafka_resp_err_t err = rd_kafka_last_error();
                if (reject_is_permanent(err)) {
                        /* Refused by the producer (message.max.bytes):
                         * its dead letter goes instead, holding its own
                         * reference. */
                        gws_buf_t dl = {0};
                        int rc = reject_build(svc, &dl, rkt, key, keylen,
                                              val, len, inf, err);
                        if (rc == 0) {
                                rc = produce(svc, svc->out_rkt[GWS_SINK_DLQ],
                                             key, keylen, dl.buf, dl.len,
                                             inf);
                                gws_buf_free(&dl);
                                if (rc == 0) {
                                        reject_note(svc, rkt, len, inf, err);
                                        inflight_release(inf);
                                }
                                return rc;
                        }
                        gws_buf_free(&dl);
                }
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        /* Fatal: the reference stays, nothing commits. */
                        set_fatal(svc,
                                  "cannot produce to topic \"%s\" (%zu bytes, "
                                  "source partition %d offset %lld): %s",
                                  rd_kafka_topic_name(rkt), len,
                                  (int)((ptn_t *)gws_tracker_opaque(
                                            gws_tracker_of(inf)))
                                      ->partition,
                                  (long long)gws_tracker_offset(inf),
                                  rd_kafka_err2str(err));
                        return -1;
                }
                /* The delivery thread drains the queue; wait for it. The
                 * main thread pauses input meanwhile (backpressure). */
                if (backoff < 50)
                        backoff += 5;
                usleep((useconds_t)backoff * 1000);
                if (__atomic_load_n(&svc->fatal, __ATOMIC_ACQUIRE) ||
                    __atomic_load_n(&svc->abandon, __ATOMIC_ACQUIRE))
                        return -1; /* the reference stays: no commit */
        }
}

static int emit_cb(void *opaque, gws_sink_t sink, const char *key,
                   size_t keylen, const char *val, size_t len) {
        emit_ctx_t *ec = opaque;
        return produce(ec->svc, ec->svc->out_rkt[sink], key, keylen, val, len,
                       ec->inf);
}

/* A failed delivery item for \p rkt: copies of \p key and \p val, and
 * the reference \p inf. @returns NULL out of memory. */
static retry_t *retry_new(rd_kafka_topic_t *rkt, const void *key,
                          size_t keylen, const void *val, size_t len,
                          inflight_t *inf) {
        retry_t *r = calloc(1, sizeof(*r));
        if (!r || !(r->val = malloc(len ? len : 1)) ||
            (keylen && !(r->key = malloc(keylen)))) {
                if (r)
                        free(r->val);
                free(r);
                return NULL;
        }
        memcpy(r->val, val, len);
        r->len = len;
        if (keylen)
                memcpy(r->key, key, keylen);
        r->keylen = keylen;
        r->rkt = rkt;
        r->inf = inf;
        return r;
}

/* Queues \p r for the delivery thread's next round. */
static void retry_push(gws_service_t *svc, retry_t *r) {
        pthread_mutex_lock(&svc->retry_lock);
        r->next = svc->retries;
        svc->retries = r;
        pthread_mutex_unlock(&svc->retry_lock);
}

/* A failed delivery item carrying the dead letter of a record refused
 * for good (the record's reference goes with it). @returns NULL when
 * the record is kept as it is (a dead letter without payload already:
 * produced again), or out of memory (fatal). */
static retry_t *reject_retry(gws_service_t *svc, rd_kafka_topic_t *rkt,
                             const void *key, size_t keylen,
                             const void *val, size_t len, inflight_t *inf,
                             rd_kafka_resp_err_t err) {
        gws_buf_t dl = {0};
        retry_t *r = NULL;
        int rc = reject_build(svc, &dl, rkt, key, keylen, val, len, inf, err);
        if (rc == 0)
                r = retry_new(svc->out_rkt[GWS_SINK_DLQ], key, keylen, dl.buf,
                              dl.len, inf);
        gws_buf_free(&dl);
        if (rc == 1)
                return NULL;
        if (!r) {
                set_fatal(svc, "out of memory writing a dead letter");
                return NULL;
        }
        reject_note(svc, rkt, len, inf, err);
        return r;
}

/* @locality delivery thread (inside rd_kafka_poll of the producer). */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                      void *opaque) {
        gws_service_t *svc = opaque;
        inflight_t *inf = rkm->_private;
        retry_t *r;

        if (svc->cl && gws_changelog_owns(svc->cl, rkm)) {
                gws_changelog_on_delivery(svc->cl, rkm);
                return;
        }
        if (!rkm->err) {
                __atomic_add_fetch(&svc->delivered, 1, __ATOMIC_RELAXED);
                inflight_release(inf);
                return;
        }
        if (rkm->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
            rkm->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
                /* Only at destroy after a fatal error: the consumer is
                 * closed, so releasing cannot commit anything. */
                inflight_release(inf);
                return;
        }
        if (reject_is_permanent(rkm->err) &&
            (r = reject_retry(svc, rkm->rkt, rkm->key, rkm->key_len,
                              rkm->payload, rkm->len, inf, rkm->err))) {
                retry_push(svc, r);
                return; /* produced in the next round, no back-off */
        }
        /* Not delivered within message.timeout.ms, or a permanent error.
         * Keep the reference and produce it again after this callback
         * (never lose it; the offset stays uncommitted meanwhile). One
         * line per FAIL_LOG_MS: a broker outage fails thousands (a line
         * each flooded the log). */
        svc->fail_round++;
        if (gws_mono_ms() - svc->fail_log_ms >= FAIL_LOG_MS) {
                char more[64] = "";
                if (svc->fail_unlogged)
                        snprintf(more, sizeof(more),
                                 " (and %llu more since the last report)",
                                 (unsigned long long)svc->fail_unlogged);
                gws_log(GWS_LOG_WARNING, "PRODUCE",
                        "delivery to %s failed (%s), source partition %d "
                        "offset %lld: producing it again%s",
                        rd_kafka_topic_name(rkm->rkt),
                        rd_kafka_err2str(rkm->err),
                        (int)((ptn_t *)gws_tracker_opaque(
                                  gws_tracker_of(inf)))
                            ->partition,
                        (long long)gws_tracker_offset(inf), more);
                svc->fail_log_ms = gws_mono_ms();
                svc->fail_unlogged = 0;
        } else {
                svc->fail_unlogged++;
        }
        if (!(r = retry_new(rkm->rkt, rkm->key, rkm->key_len, rkm->payload,
                            rkm->len, inf))) {
                set_fatal(svc, "out of memory keeping a failed delivery");
                ptn_keep(svc, gws_tracker_opaque(gws_tracker_of(inf)));
                return;
        }
        retry_push(svc, r);
        (void)rk;
}

static void retry_free(retry_t *r) {
        free(r->key);
        free(r->val);
        free(r);
}

/* Produces failed deliveries again, never waiting: on a full queue the
 * rest is kept for the next round. The caller serves the producer's
 * delivery reports between rounds, and only that makes room; this once
 * waited for room itself on the delivery thread, the only thread serving
 * them, and outputs and commits stopped for good.
 * @locality delivery thread (main thread at exit, after it).
 * @returns the failed deliveries still waiting. */
static size_t retries_run(gws_service_t *svc) {
        retry_t *r, *next, *left = NULL, **tail = &left;
        size_t n = 0;
        pthread_mutex_lock(&svc->retry_lock);
        r = svc->retries;
        svc->retries = NULL;
        pthread_mutex_unlock(&svc->retry_lock);
        for (; r; r = next) {
                rd_kafka_resp_err_t err;
                next = r->next;
                r->next = NULL;
                if (!left &&
                    rd_kafka_produce(r->rkt, RD_KAFKA_PARTITION_UA,
                                     RD_KAFKA_MSG_F_COPY, r->val, r->len,
                                     r->key, r->keylen, r->inf) == 0) {
                        /* the failed one's reference goes to this one */
                        __atomic_add_fetch(&svc->delivery_retries, 1,
                                           __ATOMIC_RELAXED);
                        retry_free(r);
                        continue;
                }
                err = left ? RD_KAFKA_RESP_ERR__QUEUE_FULL
                           : rd_kafka_last_error();
                if (reject_is_permanent(err)) {
                        /* refused by the producer: its dead letter is
                         * produced in the next round instead */
                        retry_t *d = reject_retry(svc, r->rkt, r->key,
                                                  r->keylen, r->val, r->len,
                                                  r->inf, err);
                        if (d) {
                                retry_free(r);
                                r = d;
                                err = RD_KAFKA_RESP_ERR__QUEUE_FULL;
                        }
                }
                if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        *tail = r;
                        tail = &r->next;
                        n++;
                        continue;
                }
                /* Fatal: the reference stays, nothing commits. */
                set_fatal(svc,
                          "cannot produce a failed delivery to topic \"%s\" "
                          "again (%zu bytes, source offset %lld): %s",
                          rd_kafka_topic_name(r->rkt), r->len,
                          (long long)gws_tracker_offset(r->inf),
                          rd_kafka_err2str(err));
                ptn_keep(svc, gws_tracker_opaque(gws_tracker_of(r->inf)));
                retry_free(r);
        }
        if (left) {
                pthread_mutex_lock(&svc->retry_lock);
                *tail = svc->retries; /* failed meanwhile */
                svc->retries = left;
                pthread_mutex_unlock(&svc->retry_lock);
        }
        return n;
}

static void *dr_main(void *arg) {
        gws_service_t *svc = arg;
        while (!__atomic_load_n(&svc->dr_stop, __ATOMIC_ACQUIRE)) {
                int64_t now;
                /* 100 ms: delivery reports are served promptly enough for
                 * a 1 s commit interval, and the flag is seen quickly. */
                rd_kafka_poll(svc->producer, 100);
                now = gws_mono_ms();
                if (now < svc->retry_at_ms)
                        continue;
                /* Failures since the last round: back off (they failed
                 * after librdkafka's own retries); none: at once. */
                if (svc->fail_round)
                        svc->retry_backoff_ms =
                            svc->retry_backoff_ms
                                ? (svc->retry_backoff_ms * 2 >
                                           RETRY_BACKOFF_MAX_MS
                                       ? RETRY_BACKOFF_MAX_MS
                                       : svc->retry_backoff_ms * 2)
                                : RETRY_BACKOFF_MIN_MS;
                else
                        svc->retry_backoff_ms = 0;
                svc->fail_round = 0;
                retries_run(svc);
                svc->retry_at_ms = now + svc->retry_backoff_ms;
        }
        return NULL;
}

/* ------------------------------------------------------------------------
 * periodic snapshots: taken by the worker, written by the main thread
 * once the outputs of the events they hold are acknowledged
 * ------------------------------------------------------------------------ */

/* Drops \p sw, not written: counted. \p newer: a newer snapshot of the
 * partition holds all it holds (the next periodic one, or the revocation
 * snapshot). @locality any thread. */
static void snap_drop(gws_service_t *svc, const ptn_t *p, snap_wait_t *sw,
                      int newer) {
        __atomic_add_fetch(&svc->snaps_dropped, 1, __ATOMIC_RELAXED);
        if (newer)
                gws_log(GWS_LOG_DEBUG, "STATE",
                        "partition %d: snapshot at offset %lld dropped: a "
                        "newer one supersedes it",
                        (int)p->partition, (long long)sw->offset);
        else
                gws_log(GWS_LOG_DEBUG, "STATE",
                        "partition %d: snapshot at offset %lld dropped: the "
                        "outputs below %lld were not all acknowledged",
                        (int)p->partition, (long long)sw->offset,
                        (long long)sw->need);
        snap_wait_free(sw);
}

/* Takes the periodic snapshot of \p p after processing offset \p next - 1
 * and leaves it waiting (p->snap_wait) until the outputs of the events
 * below \p next are acknowledged: snap_release() writes it then. Written
 * at once, claiming as delivered the committable offset of the moment, it
 * held the events whose outputs were still in flight; when those never
 * left (the service stopped before, or failed on them), the next owner
 * processed them again against a state that had them: their alerts came
 * out as updates or not at all, lost for good, and their baselines
 * learned them twice (itest state_undelivered_alert). The offset and
 * delivered offset it claims are those of snap_point() once every output
 * below \p next is acknowledged. A snapshot still waiting when the next
 * is taken is dropped: at most one per partition waits (its compressed
 * size in memory). @locality the partition's worker. */
static void snap_take(gws_service_t *svc, worker_t *w, ptn_t *p,
                      int64_t next) {
        snap_wait_t *sw = calloc(1, sizeof(*sw)), *old;
        int64_t so = next > p->snap_floor ? next : p->snap_floor,
                sd = next > p->deliv_floor ? next : p->deliv_floor;

        if (!sw) {
                gws_log(GWS_LOG_WARNING, "STATE",
                        "partition %d: snapshot not taken: out of memory",
                        (int)p->partition);
                return;
        }
        if (sd > so)
                sd = so;
        /* held (counted), or failed (logged and counted) */
        if (gws_changelog_encode(svc->cl, p->partition, so, sd, p->det,
                                 &w->sraw, &sw->rec)) {
                snap_wait_free(sw);
                return;
        }
        sw->raw_len = w->sraw.len;
        sw->offset = so;
        sw->delivered = sd;
        sw->changes = gws_detect_changes(p->det);
        sw->need = next;
        if ((old = __atomic_exchange_n(&p->snap_wait, sw, __ATOMIC_ACQ_REL)))
                snap_drop(svc, p, old, 1);
}

/* The changelog's failures so far (produce or delivery). */
static uint64_t snap_failures(gws_service_t *svc) {
        gws_changelog_stats_t cs;
        gws_changelog_stats(svc->cl, &cs);
        return cs.failed;
}

/* Notes that a snapshot of \p p at (\p offset, \p delivered) holding
 * its state after \p changes was produced. @locality main thread. */
static void snap_put_note(gws_service_t *svc, ptn_t *p, int64_t offset,
                          int64_t delivered, uint64_t changes) {
        p->snap_put.valid = 1;
        p->snap_put.offset = offset;
        p->snap_put.delivered = delivered;
        p->snap_put.changes = changes;
        p->snap_put.failed = snap_failures(svc);
}

/* Writes \p p's waiting snapshot once the outputs of the events it holds
 * are acknowledged (the partition's committable offset has reached it);
 * one not ready yet goes back to wait, unless \p final (the partition is
 * revoked, or \p lost: then it is dropped; a lost partition's is never
 * written, its new owner may be writing its own). The main thread is the
 * only one that writes them, so they reach the state topic in the order
 * they were taken. With \p final, *at gets the offset of the one written.
 * @returns 1 if a record was produced. @locality main thread. */
static int snap_release(gws_service_t *svc, ptn_t *p, int final, int lost,
                        int64_t *at) {
        snap_wait_t *sw, *none = NULL;
        int rc = 2;

        if (!__atomic_load_n(&p->snap_wait, __ATOMIC_ACQUIRE) ||
            !(sw = __atomic_exchange_n(&p->snap_wait, NULL,
                                       __ATOMIC_ACQ_REL)))
                return 0;
        if (!lost && gws_tracker_committable(p->trk) >= sw->need &&
            (rc = gws_changelog_put(svc->cl, p->partition, sw->offset,
                                    &sw->rec, sw->raw_len, final)) != 2) {
                /* written, held or failed (counted either way) */
                if (at)
                        *at = sw->offset;
                if (rc == 0)
                        snap_put_note(svc, p, sw->offset, sw->delivered,
                                      sw->changes);
                snap_wait_free(sw);
                return rc == 0;
        }
        if (final || lost)
                snap_drop(svc, p, sw, 0);
        else if (!__atomic_compare_exchange_n(&p->snap_wait, &none, sw, 0,
                                              __ATOMIC_ACQ_REL,
                                              __ATOMIC_ACQUIRE))
                snap_drop(svc, p, sw, 1); /* the worker took a newer one */
        return 0;
}

/* snap_release() of every assigned partition. @locality main thread. */
static void snaps_release(gws_service_t *svc) {
        int32_t i;
        for (i = 0; svc->cl && i < svc->nptns; i++)
                if (svc->ptns[i])
                        snap_release(svc, svc->ptns[i], 0,
                                     __atomic_load_n(&svc->ptns[i]->lost,
                                                     __ATOMIC_ACQUIRE),
                                     NULL);
}

/* ------------------------------------------------------------------------
 * workers
 * ------------------------------------------------------------------------ */

#define WQ_BATCH 32 /* items a worker takes per lock round */

/* What stops a worker from processing a partition's messages: the
 * partition was lost or revoked (its next owner re-reads them), or the
 * service stops on a fatal error or gives up at exit. */
static int run_stopped(const gws_service_t *svc, ptn_t *p) {
        return __atomic_load_n(&p->lost, __ATOMIC_ACQUIRE) ||
               __atomic_load_n(&svc->fatal, __ATOMIC_ACQUIRE) ||
               __atomic_load_n(&svc->abandon, __ATOMIC_ACQUIRE);
}

/* Releases the worker's references of the entries in \p rel (one lock
 * round) and the partition references of the entries popped. */
static void run_release(ptn_t *p, inflight_t **rel, size_t *nrel) {
        if (*nrel)
                ptn_unref_n(p, gws_tracker_release_many(p->trk, rel, *nrel));
        *nrel = 0;
}

/* The pipeline's view of consumed message \p rkm. */
static void worker_input(const gws_service_t *svc,
                         const rd_kafka_message_t *rkm, gws_input_t *in) {
        in->value = rkm->payload ? rkm->payload : "";
        in->len = rkm->len;
        in->key = rkm->key;
        in->keylen = rkm->key_len;
        in->topic = svc->cfg->topic_input;
        in->partition = rkm->partition;
        in->offset = rkm->offset;
        in->whole_len = 0;
        in->line = 0;
}

/* Processes \p n queued messages of one partition \p p (consecutive in a
 * worker's batch: librdkafka hands out a partition's messages in runs).
 * The run's entries are added in one tracker round and released in one at
 * its end, and the partition's counters move once per run: per message,
 * these were four mutex rounds and six atomic operations on cache lines
 * that the main and delivery threads write too (2026-12-01: the tracker
 * alone was ~3% of the process). Holding back a dropped event's release
 * to the end of its run (at most WQ_BATCH messages) delays nothing a
 * commit would notice; a snapshot releases first. The items' queue
 * references keep \p p alive throughout.
 * Each message is parsed while the one before it is processed
 * (gws_pipeline_parse() of the next before gws_pipeline_finish() of the
 * current; the last of a run parses \p next, the first of the next run
 * of the batch, NULL: none), and its detector entities are fetched
 * before the parse of the one after it: their cache misses overlap with
 * parsing instead of stalling the lookups (the detector state is several
 * MB, and an event's entities are rarely in the cache). The parse ahead
 * is speculative: a message that is not processed after all (lost,
 * stopped, skipped) is discarded. The processing time observed for a
 * message is that of its finish plus the parse done meanwhile (the next
 * message's, or its own when it was not parsed ahead): every parse is
 * counted once. */
static void worker_run(worker_t *w, ptn_t *p, const qitem_t *its, size_t n,
                       const qitem_t *next, emit_ctx_t *ec) {
        gws_service_t *svc = w->svc;
        inflight_t *infs[WQ_BATCH], *rel[WQ_BATCH];
        int64_t offs[WQ_BATCH];
        size_t i, nadd = 0, nrel = 0;
        gws_outcome_t out;
        uint64_t t0;

        if (!run_stopped(svc, p)) {
                for (i = 0; i < n; i++)
                        offs[i] = its[i].rkm->offset;
                if ((nadd = gws_tracker_add_many(p->trk, offs, n, infs)) < n)
                        set_fatal(svc, "out of memory tracking offsets");
                ptn_ref_n(p, (int)nadd); /* the entries'; dropped when
                                          * they are popped */
        }
        for (i = 0; i < n; i++) {
                rd_kafka_message_t *rkm = its[i].rkm;
                gws_pipeline_msg_t *m = &w->pm[w->cur];
                gws_input_t *in = &w->pin[w->cur];
                const qitem_t *ahead = i + 1 < nadd ? &its[i + 1]
                                       : i + 1 == n ? next
                                                    : NULL;
                inflight_t *inf;

                if (i >= nadd)
                        goto done; /* stopped before the run: no entry */
                inf = infs[i];
                if (__atomic_load_n(&p->lost, __ATOMIC_ACQUIRE)) {
                        /* the next owner re-reads it; lost or revoked
                         * partitions are never committed here, and their
                         * entries must not wait for ever */
                        rel[nrel++] = inf;
                        goto done;
                }
                if (run_stopped(svc, p)) {
                        ptn_keep(svc, p);
                        goto done; /* the entry holds the offset back */
                }
                if (rkm->offset <
                    __atomic_load_n(&p->skip_below, __ATOMIC_ACQUIRE)) {
                        /* In the restored state, outputs delivered by the
                         * previous owner (its commit was lost). */
                        __atomic_add_fetch(&svc->restore_skipped, 1,
                                           __ATOMIC_RELAXED);
                        rel[nrel++] = inf;
                        __atomic_store_n(&p->next_offset, rkm->offset + 1,
                                         __ATOMIC_RELEASE);
                        goto done;
                }
                t0 = gws_mono_ns();
                if (!m->parsed) { /* the first of the run */
                        worker_input(svc, rkm, in);
                        gws_pipeline_parse(w->pl, p->det, in, m);
                }
                gws_pipeline_prefetch(m);
                if (ahead &&
                    ahead->rkm->offset >=
                        __atomic_load_n(&ahead->p->skip_below,
                                        __ATOMIC_ACQUIRE)) {
                        worker_input(svc, ahead->rkm, &w->pin[w->cur ^ 1]);
                        gws_pipeline_parse(w->pl, ahead->p->det,
                                           &w->pin[w->cur ^ 1],
                                           &w->pm[w->cur ^ 1]);
                }
                ec->inf = inf;
                out = gws_pipeline_finish(w->pl, p->det, in, m, emit_cb, ec);
                gws_hist_observe(&w->hist, gws_mono_ns() - t0);
                if (out == GWS_OUT_FAILED &&
                    __atomic_load_n(&svc->abandon, __ATOMIC_ACQUIRE)) {
                        /* Given up at exit (produce()): the reference
                         * stays, nothing commits after the close. */
                        ptn_keep(svc, p);
                } else if (out == GWS_OUT_FAILED) {
                        /* Keep the reference: this offset must never be
                         * committed. set_fatal() stops the service. */
                        ptn_keep(svc, p);
                        set_fatal(svc,
                                  "partition %d offset %lld could not be "
                                  "processed; stopping without committing it",
                                  (int)rkm->partition, (long long)rkm->offset);
                } else {
                        rel[nrel++] = inf;
                        __atomic_store_n(&p->next_offset, rkm->offset + 1,
                                         __ATOMIC_RELEASE);
                        if (svc->cl &&
                            (int64_t)(t0 / 1000000) - p->last_snap_ms >=
                                svc->cfg->state_interval_ms) {
                                /* the run's done entries first: the
                                 * snapshot can go out once the outputs
                                 * below its offset are acknowledged */
                                run_release(p, rel, &nrel);
                                p->last_snap_ms = (int64_t)(t0 / 1000000);
                                snap_take(svc, w, p, rkm->offset + 1);
                        }
                }
        done:
                gws_pipeline_discard(m); /* parsed ahead, not processed */
                w->cur ^= 1;
                rd_kafka_message_destroy(rkm);
        }
        run_release(p, rel, &nrel);
        __atomic_sub_fetch(&p->queued, (int64_t)n, __ATOMIC_ACQ_REL);
        ptn_unref_n(p, (int)n); /* the queue items' references */
}

static void *worker_main(void *arg) {
        worker_t *w = arg;
        qitem_t its[WQ_BATCH];
        size_t nit, k, r;
        emit_ctx_t ec = {w->svc, NULL};

        while ((nit = wq_pop_batch(&w->q, its, WQ_BATCH, &w->busy)) > 0) {
                for (k = 0; k < nit; k = r) {
                        for (r = k + 1; r < nit && its[r].p == its[k].p; r++)
                                ;
                        worker_run(w, its[k].p, its + k, r - k,
                                   r < nit ? &its[r] : NULL, &ec);
                }
                __atomic_store_n(&w->busy, 0, __ATOMIC_RELEASE);
        }
        return NULL;
}

/* ------------------------------------------------------------------------
 * commits, pause/resume, rebalance (main thread)
 * ------------------------------------------------------------------------ */

static ptn_t *ptn_lookup(gws_service_t *svc, int32_t partition) {
        if (partition < 0 || partition >= svc->nptns)
                return NULL;
        return svc->ptns[partition];
}

/* Commits done offsets of \p only (or all when NULL).
 * @locality main thread. @returns 0 or -1. */
static int commit_done(gws_service_t *svc,
                       const rd_kafka_topic_partition_list_t *only,
                       int sync) {
        rd_kafka_topic_partition_list_t *offs =
            rd_kafka_topic_partition_list_new(16);
        rd_kafka_resp_err_t err;
        int32_t i;
        int r = 0;

        for (i = 0; i < svc->nptns; i++) {
                ptn_t *p = svc->ptns[i];
                int64_t c;
                if (!p || __atomic_load_n(&p->lost, __ATOMIC_ACQUIRE))
                        continue;
                if (only && !rd_kafka_topic_partition_list_find(
                                only, svc->cfg->topic_input, i))
                        continue;
                c = gws_tracker_committable(p->trk);
                if (c > p->committed)
                        rd_kafka_topic_partition_list_add(
                            offs, svc->cfg->topic_input, i)
                            ->offset = c;
        }
        if (offs->cnt) {
                err = rd_kafka_commit(svc->consumer, offs, sync ? 0 : 1);
                if (err) {
                        svc->commit_errors++;
                        gws_log(GWS_LOG_WARNING, "COMMIT",
                                "commit of %d partition(s) failed: %s (will "
                                "retry)", offs->cnt, rd_kafka_err2str(err));
                        r = -1;
                } else {
                        svc->commits++;
                        for (i = 0; i < offs->cnt; i++) {
                                ptn_t *p = ptn_lookup(
                                    svc, offs->elems[i].partition);
                                if (p)
                                        p->committed = p->lag_base =
                                            offs->elems[i].offset;
                        }
                        gws_log(GWS_LOG_DEBUG, "COMMIT",
                                "committed %d partition(s)%s", offs->cnt,
                                sync ? " (sync)" : "");
                }
        }
        rd_kafka_topic_partition_list_destroy(offs);
        return r;
}

/* An assigned partition (not restoring) whose fetcher librdkafka does not
 * report "active" (fetch_state: none, offset-query, offset-wait, ...) for
 * fetch_stall_s is consumed by nobody: no lag is reported for it, no error
 * may be raised again. E.g. auto.offset.reset=error with no committed
 * offset, an offset query that keeps failing, or a librdkafka stall (a
 * partition once sat never fetched after librdkafka's own start-offset
 * lookup, see start_offsets()). Logged once per episode and counted in
 * gwsieve_partitions_not_fetching; nothing is changed: the cause may need
 * an operator (the offsets to start from).
 * @locality main thread, from stats_lag(). */
static void fetch_watch(gws_service_t *svc, ptn_t *p, const char *state,
                        int64_t now) {
        int64_t limit = (int64_t)svc->cfg->fetch_stall_s * 1000;
        if (!state || !strcmp(state, "active") || p->restoring) {
                if (p->stall_warned)
                        gws_log(GWS_LOG_NOTICE, "CONSUMER",
                                "partition %d: fetching again after %lld s",
                                (int)p->partition,
                                (long long)(now - p->idle_since_ms) / 1000);
                p->idle_since_ms = 0;
                p->stall_warned = 0;
                return;
        }
        if (!p->idle_since_ms)
                p->idle_since_ms = now;
        if (now - p->idle_since_ms < limit)
                return;
        svc->not_fetching_now++;
        if (p->stall_warned)
                return;
        p->stall_warned = 1;
        gws_log(GWS_LOG_WARNING, "CONSUMER",
                "partition %d: assigned but not fetched for %lld s "
                "(librdkafka fetch state \"%s\"); nothing is consumed from "
                "it. Earlier consumer errors name the cause (e.g. "
                "auto.offset.reset=error without a committed offset); "
                "gwsieve_partitions_not_fetching",
                (int)p->partition,
                (long long)(now - p->idle_since_ms) / 1000, state);
}

/* A string token's contents in \p out (NULL if \p t is not a string or
 * does not fit). */
static const char *stats_str(const gws_jdoc_t *doc, uint32_t t, char *out,
                             size_t size) {
        size_t n;
        if (!t || doc->toks[t].type != GWS_JT_STR || doc->toks[t].len > size)
                return NULL;
        n = gws_json_str_decode(doc, &doc->toks[t], out);
        out[n < size ? n : size - 1] = '\0';
        return out;
}

/* Consumer lag per partition of the input topic: the partition's end
 * from the statistics (ls_offset under isolation.level=read_committed,
 * librdkafka's default, else hi_offset) minus the group's committed
 * offset as this member knows it: found when the partition was assigned
 * (start_offsets()) or committed since. librdkafka's own consumer_lag
 * counts only offsets the client committed itself (gwsieve looks the
 * committed ones up itself), so it was missing from each assignment until
 * the first commit. A partition without a committed offset has no lag
 * yet (-1), as in Kafka's own tools. Also the fetch watch. Parsed with the
 * event tokenizer (jansson's tree took ~3 ms a report over 96 partitions,
 * a third of an idle worker's CPU), at most once a second. */
static void stats_lag(gws_service_t *svc, const char *json, size_t len) {
        static const gws_json_limits_t lim = {64, 1u << 24, 0};
        gws_jdoc_t *doc = &svc->stats_doc;
        const char *tn = svc->cfg->topic_input, *end_key;
        uint32_t parts, k, t;
        int32_t i;
        int64_t now = gws_mono_ms(), end;
        char num[16], state[32], *e;
        if (gws_json_parse(doc, json, len, &lim) != GWS_JE_OK ||
            doc->toks[0].type != GWS_JT_OBJ)
                return;
        for (i = 0; i < svc->ncounters; i++)
                svc->lag[i] = -1;
        end_key = svc->read_committed ? "ls_offset" : "hi_offset";
        if ((parts = gws_json_obj_get(doc, 0, "topics", 6)) &&
            doc->toks[parts].type == GWS_JT_OBJ &&
            (parts = gws_json_obj_get(doc, parts, tn, strlen(tn))) &&
            doc->toks[parts].type == GWS_JT_OBJ)
                parts = gws_json_obj_get(doc, parts, "partitions", 10);
        else
                parts = 0;
        svc->not_fetching_now = 0;
        if (!parts || doc->toks[parts].type != GWS_JT_OBJ)
                goto done;
        /* members: a key token, then the value's subtree */
        for (k = parts + 1; k < doc->toks[parts].next;
             k = doc->toks[k + 1].next) {
                const gws_jtok_t *key = &doc->toks[k];
                uint32_t v = k + 1;
                long part;
                ptn_t *p;
                if (key->len < 3 || key->len - 2 >= sizeof(num) ||
                    doc->toks[v].type != GWS_JT_OBJ)
                        continue;
                memcpy(num, doc->buf + key->start + 1, key->len - 2);
                num[key->len - 2] = '\0';
                part = strtol(num, &e, 10);
                if (*e || part < 0 || part > INT32_MAX ||
                    !(p = ptn_lookup(svc, (int32_t)part)))
                        continue; /* -1: librdkafka's unassigned queue */
                if (svc->cfg->fetch_stall_s > 0)
                        fetch_watch(svc, p,
                                    stats_str(doc,
                                              gws_json_obj_get(doc, v,
                                                               "fetch_state",
                                                               11),
                                              state, sizeof(state)),
                                    now);
                if (p->lag_base < 0 ||
                    !(t = gws_json_obj_get(doc, v, end_key,
                                           strlen(end_key))) ||
                    doc->toks[t].type != GWS_JT_NUM ||
                    gws_json_int(doc, &doc->toks[t], &end) ||
                    end < p->lag_base ||
                    counters_grow(svc, (int32_t)part) == -1)
                        continue;
                svc->lag[part] = end - p->lag_base;
        }
done:
        __atomic_store_n(&svc->not_fetching, svc->not_fetching_now,
                         __ATOMIC_RELAXED);
}

/* Statistics (main thread, inside rd_kafka_consumer_poll): the lag and
 * the fetch watch (stats_lag(), at most once a second), and
 * cgrp.join_state: librdkafka <= 2.8 treats the whole assignment as lost
 * when a manual commit sent during a cooperative rebalance comes back
 * ILLEGAL_GENERATION (librdkafka issue #4059, fixed by PR #4908), which
 * turns a member joining or leaving into re-processing on the survivors.
 * So periodic commits are postponed unless the group is "steady".
 * @returns 0: librdkafka frees \p json. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
        gws_service_t *svc = opaque;
        static const char key[] = "\"join_state\"";
        const char *p = memmem(json, len, key, sizeof(key) - 1), *q;
        const char *end = json + len;
        (void)rk;
        if (gws_mono_ms() - svc->last_lag_ms >= 1000) {
                svc->last_lag_ms = gws_mono_ms();
                stats_lag(svc, json, len);
        }
        if (!p)
                return 0;
        /* "join_state": "steady" (librdkafka puts a space after ':') */
        for (p += sizeof(key) - 1; p < end && (*p == ' ' || *p == ':'); p++)
                ;
        if (p >= end || *p++ != '"')
                return 0;
        if ((q = memchr(p, '"', len - (size_t)(p - json))) &&
            (size_t)(q - p) < sizeof(svc->join_state) &&
            ((size_t)(q - p) != strlen(svc->join_state) ||
             memcmp(svc->join_state, p, (size_t)(q - p)))) {
                memcpy(svc->join_state, p, (size_t)(q - p));
                svc->join_state[q - p] = '\0';
                gws_log(GWS_LOG_DEBUG, "REBALANCE", "group join state: %s",
                        svc->join_state);
                if (!__atomic_load_n(&svc->join_from_log, __ATOMIC_ACQUIRE))
                        __atomic_store_n(&svc->rebalancing,
                                         strcmp(svc->join_state, "steady") != 0,
                                         __ATOMIC_RELEASE);
        }
        return 0;
}

/* Async commit results arrive here (main thread, consumer poll). */
static void offset_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets,
                             void *opaque) {
        gws_service_t *svc = opaque;
        int i;
        if (!err || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
                return;
        svc->commit_errors++;
        gws_log(GWS_LOG_WARNING, "COMMIT", "async commit failed: %s",
                rd_kafka_err2str(err));
        /* Forget what we believed committed so the next round resends. */
        for (i = 0; offsets && i < offsets->cnt; i++) {
                ptn_t *p = ptn_lookup(svc, offsets->elems[i].partition);
                if (p)
                        p->committed = -1;
        }
        (void)rk;
}

/* Waits until the partitions in \p parts (all when NULL) are idle.
 * @returns 1 if they are, 0 on timeout. */
static int wait_idle(gws_service_t *svc,
                     const rd_kafka_topic_partition_list_t *parts,
                     int timeout_ms) {
        int64_t deadline = gws_mono_ms() + timeout_ms;
        for (;;) {
                int idle = 1, i;
                if (parts) {
                        for (i = 0; i < parts->cnt && idle; i++) {
                                ptn_t *p = ptn_lookup(
                                    svc, parts->elems[i].partition);
                                if (p && !ptn_idle(p))
                                        idle = 0;
                        }
                } else {
                        for (i = 0; i < svc->nptns && idle; i++)
                                if (svc->ptns[i] && !ptn_idle(svc->ptns[i]))
                                        idle = 0;
                }
                if (idle)
                        return 1;
                if (gws_mono_ms() >= deadline ||
                    __atomic_load_n(&svc->fatal, __ATOMIC_ACQUIRE))
                        return 0;
                usleep(2000);
        }
}

static int ptn_table_grow(gws_service_t *svc, int32_t partition) {
        int32_t n = svc->nptns ? svc->nptns : 16, i;
        ptn_t **np;
        uint8_t *ap;
        if (partition < svc->nptns)
                return 0;
        while (n <= partition)
                n *= 2;
        if (!(ap = realloc(svc->app_paused, (size_t)n)))
                return -1;
        svc->app_paused = ap;
        if (!(np = realloc(svc->ptns, (size_t)n * sizeof(*np))))
                return -1;
        for (i = svc->nptns; i < n; i++) {
                np[i] = NULL;
                ap[i] = 0;
        }
        svc->ptns = np;
        svc->nptns = n;
        return 0;
}

/* rd_kafka_pause_partitions() / rd_kafka_resume_partitions() of input
 * partitions, remembering which ones this process paused. librdkafka
 * keeps an application's pause on a partition across unassign and assign
 * (2.0.2 clears only its own pauses on assignment): a partition paused by
 * backpressure when it was revoked, assigned back later, was taken for
 * not paused, never resumed and never fetched again. assign_known()
 * resumes such partitions. @locality main thread. */
static void pause_parts(gws_service_t *svc,
                        rd_kafka_topic_partition_list_t *l, int pause) {
        int i;
        if (!l->cnt)
                return;
        if (pause)
                rd_kafka_pause_partitions(svc->consumer, l);
        else
                rd_kafka_resume_partitions(svc->consumer, l);
        for (i = 0; i < l->cnt; i++) {
                int32_t part = l->elems[i].partition;
                if (!strcmp(l->elems[i].topic, svc->cfg->topic_input) &&
                    part >= 0 && part < svc->nptns)
                        svc->app_paused[part] = (uint8_t)pause;
        }
}

/* Resumes the partitions of \p parts this process paused before they
 * were revoked (pause_parts()), before they are assigned again.
 * @locality main thread. */
static void resume_paused_before(gws_service_t *svc,
                                 const rd_kafka_topic_partition_list_t *parts) {
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(parts->cnt);
        int i;
        for (i = 0; i < parts->cnt; i++) {
                int32_t part = parts->elems[i].partition;
                if (!strcmp(parts->elems[i].topic, svc->cfg->topic_input) &&
                    part >= 0 && part < svc->nptns && svc->app_paused[part])
                        rd_kafka_topic_partition_list_add(
                            l, svc->cfg->topic_input, part);
        }
        if (l->cnt) {
                pause_parts(svc, l, 0);
                gws_log(GWS_LOG_INFO, "REBALANCE",
                        "%d partition(s) paused when they were revoked "
                        "resumed before their assignment",
                        l->cnt);
        }
        rd_kafka_topic_partition_list_destroy(l);
}

static void on_assign(gws_service_t *svc,
                      rd_kafka_topic_partition_list_t *parts) {
        int i;
        for (i = 0; i < parts->cnt; i++) {
                int32_t part = parts->elems[i].partition;
                ptn_t *p;
                if (strcmp(parts->elems[i].topic, svc->cfg->topic_input))
                        continue;
                if (ptn_table_grow(svc, part) == -1 ||
                    !(p = ptn_new(svc, part))) {
                        set_fatal(svc, "out of memory on assignment");
                        return;
                }
                if (svc->ptns[part]) /* stale (e.g. after lost) */
                        ptn_unref(svc->ptns[part]);
                /* The group's committed offset, when start_offsets()
                 * found one (consumer lag). Not p->committed: an offset
                 * past the end of the partition is reset, and what is
                 * consumed then must still be committed. */
                if (parts->elems[i].opaque == COMMITTED)
                        p->lag_base = parts->elems[i].offset;
                svc->ptns[part] = p;
                __atomic_add_fetch(&svc->assigned_cnt, 1, __ATOMIC_RELAXED);
        }
}

/* Appends " partition@offset" to the list \p buf (\p size bytes, *len
 * used) of a log line; " ..." once it is full. */
static void which_add(char *buf, size_t size, size_t *len, int32_t partition,
                      int64_t offset) {
        int r;
        if (*len + 5 >= size)
                return;
        r = snprintf(buf + *len, size - *len, " %d@%lld", (int)partition,
                     (long long)offset);
        if (r < 0 || (size_t)r >= size - *len - 4) {
                snprintf(buf + *len, size - *len, " ...");
                *len = size;
                return;
        }
        *len += (size_t)r;
}

/* 1 if a snapshot of idle partition \p p at (\p so, \p sd) would hold
 * the state of the last one this member produced of it: same offsets, no
 * change to the detector since. @locality main thread. */
static int snap_same(const ptn_t *p, int64_t so, int64_t sd) {
        return p->snap_put.valid && p->snap_put.offset == so &&
               p->snap_put.delivered == sd &&
               p->snap_put.changes == gws_detect_changes(p->det);
}

/* Writes the revocation snapshot of idle partition \p p (listed in
 * \p which). @returns 1 if one was produced. @locality main thread. */
static int snap_revoked_one(gws_service_t *svc, ptn_t *p, int64_t next,
                            char *which, size_t size, size_t *wl) {
        int64_t so, sd;
        snap_point(p, next, &so, &sd);
        /* 1: held (its restore could not read the state topic): nothing
         * to wait for */
        if (gws_changelog_save(svc->cl, p->partition, so, sd, p->det,
                               &svc->sraw, &svc->srec) != 0)
                return 0;
        snap_put_note(svc, p, so, sd, gws_detect_changes(p->det));
        which_add(which, size, wl, p->partition, so);
        return 1;
}

/* Snapshots of drained, revoked partitions: the next owner restores
 * exactly this state. Waits for their delivery (bounded) so that the
 * partitions are released only once the state is on the topic. A quiet
 * partition whose last snapshot from here holds its state (snap_same())
 * is not written again once that one is known acknowledged (no snapshot
 * failed since, none pending); each revocation once wrote it again, the
 * same state at the same offset (itest state_revoked_once: "partition 11
 * at 241"), its bytes again on the state topic and its delivery waited
 * for. Counted in gwsieve_state_snapshots_total{result="unchanged"}.
 * @locality main thread, inside the revoke callback. */
static void snapshot_revoked(gws_service_t *svc,
                             const rd_kafka_topic_partition_list_t *parts) {
        int i, n = 0, nsame = 0, nunch = 0;
        int64_t t0 = gws_mono_ms(), at;
        char which[256] = "", unch[256] = "";
        size_t wl = 0, ul = 0;
        struct {
                ptn_t *p;
                int64_t next;
        } *same;
        if (!svc->cl)
                return;
        /* out of memory: every one written, as before */
        same = calloc((size_t)parts->cnt + 1, sizeof(*same));
        for (i = 0; i < parts->cnt; i++) {
                ptn_t *p = ptn_lookup(svc, parts->elems[i].partition);
                snap_wait_t *sw;
                int64_t next, so, sd;
                int w;
                if (!p || strcmp(parts->elems[i].topic, svc->cfg->topic_input))
                        continue;
                /* Only an idle partition gets a revocation snapshot:
                 * every event its state holds had its outputs
                 * acknowledged. One whose event failed never is (the
                 * failed entry stays), so no snapshot holds what the
                 * failed event did to the detector. A periodic snapshot
                 * waiting for its outputs is written instead if they
                 * were acknowledged, else dropped. */
                if (p->restoring || !p->det || !ptn_idle(p) ||
                    (next = __atomic_load_n(&p->next_offset,
                                            __ATOMIC_ACQUIRE)) <= 0) {
                        if ((w = snap_release(svc, p, 1, 0, &at)))
                                which_add(which, sizeof(which), &wl,
                                          p->partition, at);
                        n += w;
                        continue;
                }
                /* The revocation snapshot holds all that a waiting one
                 * holds and what the partition did since: the waiting one
                 * is dropped, not written first. Both went out before,
                 * the waiting one having become ready while the
                 * revocation drained the partition (itest
                 * state_revoked_once). */
                if (__atomic_load_n(&p->snap_wait, __ATOMIC_ACQUIRE) &&
                    (sw = __atomic_exchange_n(&p->snap_wait, NULL,
                                              __ATOMIC_ACQ_REL)))
                        snap_drop(svc, p, sw, 1);
                snap_point(p, next, &so, &sd);
                if (same && snap_same(p, so, sd)) {
                        same[nsame].p = p;
                        same[nsame++].next = next;
                        continue;
                }
                n += snap_revoked_one(svc, p, next, which, sizeof(which),
                                      &wl);
        }
        if (nsame) {
                /* their last snapshots acknowledged? */
                int acked = gws_changelog_wait_delivered(
                    svc->cl, svc->cfg->shutdown_timeout_ms);
                uint64_t failed = snap_failures(svc);
                for (i = 0; i < nsame; i++) {
                        ptn_t *p = same[i].p;
                        if (acked && failed == p->snap_put.failed) {
                                nunch++;
                                which_add(unch, sizeof(unch), &ul,
                                          p->partition, p->snap_put.offset);
                                continue;
                        }
                        n += snap_revoked_one(svc, p, same[i].next, which,
                                              sizeof(which), &wl);
                }
                __atomic_add_fetch(&svc->snaps_unchanged, (uint64_t)nunch,
                                   __ATOMIC_RELAXED);
                if (nunch)
                        gws_log(GWS_LOG_INFO, "STATE",
                                "%d revoked partition(s) unchanged since "
                                "their last snapshot, acknowledged: not "
                                "written again (partition@offset:%s)",
                                nunch, unch);
        }
        free(same);
        if (!n)
                return;
        if (!gws_changelog_wait_delivered(svc->cl,
                                          svc->cfg->shutdown_timeout_ms))
                gws_log(GWS_LOG_WARNING, "STATE",
                        "%d snapshot(s) of revoked partitions not "
                        "acknowledged within %d ms (partition@offset:%s)",
                        n, svc->cfg->shutdown_timeout_ms, which);
        else
                gws_log(GWS_LOG_INFO, "STATE",
                        "wrote %d snapshot(s) of revoked partitions in %lld "
                        "ms (partition@offset:%s)",
                        n, (long long)(gws_mono_ms() - t0), which);
}

static void on_revoke(gws_service_t *svc,
                      rd_kafka_topic_partition_list_t *parts, int lost) {
        int i;
        if (lost) {
                for (i = 0; i < parts->cnt; i++) {
                        ptn_t *p = ptn_lookup(svc, parts->elems[i].partition);
                        if (!p)
                                continue;
                        __atomic_store_n(&p->lost, 1, __ATOMIC_RELEASE);
                        if (svc->cl)
                                snap_release(svc, p, 1, 1, NULL);
                }
                gws_log(GWS_LOG_WARNING, "REBALANCE",
                        "%d partition(s) lost: discarding their queued work, "
                        "not committing", parts->cnt);
        } else {
                /* Finish what was consumed, then commit it. */
                if (!wait_idle(svc, parts, svc->cfg->shutdown_timeout_ms))
                        gws_log(GWS_LOG_WARNING, "REBALANCE",
                                "revoked partitions not drained within %d "
                                "ms; committing what is done",
                                svc->cfg->shutdown_timeout_ms);
                commit_done(svc, parts, 1);
                snapshot_revoked(svc, parts);
        }
        for (i = 0; i < parts->cnt; i++) {
                int32_t part = parts->elems[i].partition;
                ptn_t *p = ptn_lookup(svc, part);
                if (!p || strcmp(parts->elems[i].topic, svc->cfg->topic_input))
                        continue;
                /* Workers may still hold it (lost, or drain timeout). */
                __atomic_store_n(&p->lost, 1, __ATOMIC_RELEASE);
                svc->ptns[part] = NULL;
                ptn_unref(p);
                __atomic_sub_fetch(&svc->assigned_cnt, 1, __ATOMIC_RELAXED);
        }
}

/* Newly assigned partitions wait (paused) for their detector state; the
 * restore thread reads it. @locality main thread, assign callback. */
static void restores_start(gws_service_t *svc,
                           rd_kafka_topic_partition_list_t *parts) {
        rd_kafka_topic_partition_list_t *pause;
        int32_t *ids;
        uint64_t *gens;
        int64_t *committed;
        int i, n = 0;
        if (!svc->cl)
                return;
        pause = rd_kafka_topic_partition_list_new(parts->cnt);
        ids = malloc(sizeof(*ids) * (size_t)(parts->cnt + 1));
        gens = malloc(sizeof(*gens) * (size_t)(parts->cnt + 1));
        committed = malloc(sizeof(*committed) * (size_t)(parts->cnt + 1));
        for (i = 0; ids && gens && committed && i < parts->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &parts->elems[i];
                ptn_t *p = ptn_lookup(svc, tp->partition);
                if (!p || !p->restoring ||
                    strcmp(tp->topic, svc->cfg->topic_input))
                        continue;
                rd_kafka_topic_partition_list_add(pause, svc->cfg->topic_input,
                                                  p->partition);
                ids[n] = p->partition;
                gens[n] = p->gen;
                /* The offset the consumer starts from, as start_offsets()
                 * found it: the restore must agree with it (its own
                 * lookup could fail, or see another commit). Unknown when
                 * librdkafka looks it up (eager protocol, after failed
                 * lookups). */
                committed[n++] = tp->opaque == COMMITTED ? tp->offset
                                 : tp->offset == RD_KAFKA_OFFSET_INVALID
                                     ? GWS_COMMITTED_UNKNOWN
                                     : -1;
        }
        if (!ids || !gens || !committed ||
            gws_changelog_restore(svc->cl, ids, gens, committed, n))
                set_fatal(svc, "out of memory queueing restores");
        pause_parts(svc, pause, 1);
        rd_kafka_topic_partition_list_destroy(pause);
        free(ids);
        free(gens);
        free(committed);
}

/* Installs finished restores and resumes their partitions.
 * @locality main thread. */
static void restores_collect(gws_service_t *svc) {
        gws_restore_t *r;
        while (svc->cl && (r = gws_changelog_done(svc->cl))) {
                ptn_t *p = ptn_lookup(svc, r->partition);
                rd_kafka_topic_partition_list_t *l;
                if (!p || p->gen != r->gen || !p->restoring || r->stopped) {
                        /* Revoked (and maybe assigned again) meanwhile, or
                         * cut by the shutdown (logged by the changelog):
                         * stays paused, nothing installed. */
                        gws_restore_free(r);
                        continue;
                }
                if (!r->det) {
                        set_fatal(svc, "out of memory restoring partition "
                                       "%d", (int)r->partition);
                        gws_restore_free(r);
                        return;
                }
                p->det = r->det;
                r->det = NULL;
                if (r->result == GWS_STATE_OK) {
                        p->snap_floor = r->snap_offset;
                        p->deliv_floor = r->delivered;
                        __atomic_store_n(&p->skip_below, r->delivered,
                                         __ATOMIC_RELEASE);
                }
                if (r->result == GWS_STATE_OK &&
                    r->caught_to > r->snap_offset) {
                        /* Caught up: the state holds every event below
                         * caught_to, and the group's commit says the
                         * outputs below r->committed were delivered. A
                         * revocation or stop before any new input writes
                         * it there (snapshot_revoked()); without that, each
                         * next owner of a quiet partition restored the old
                         * snapshot and caught up the same events again. */
                        p->snap_floor = r->caught_to;
                        if (r->committed > p->deliv_floor)
                                p->deliv_floor = r->committed;
                        __atomic_store_n(&p->next_offset, r->caught_to,
                                         __ATOMIC_RELEASE);
                }
                p->last_snap_ms = gws_mono_ms();
                p->restoring = 0;
                if (r->result == GWS_STATE_OK)
                        gws_log(GWS_LOG_NOTICE, "STATE",
                                "partition %d: restored %u entities from the "
                                "snapshot at offset %lld (%zu bytes, written "
                                "%.1f s ago); caught up %lld events to the "
                                "committed offset %lld without outputs; "
                                "%.0f ms",
                                (int)r->partition, (unsigned)r->entities,
                                (long long)r->snap_offset, r->bytes,
                                (double)(gws_now_ms() - r->snap_written_ms) /
                                    1000.0,
                                (long long)r->caught_up,
                                (long long)r->committed, r->ms);
                else
                        gws_log(r->result == GWS_STATE_MISSING
                                    ? GWS_LOG_INFO
                                    : GWS_LOG_WARNING,
                                "STATE",
                                "partition %d: starting cold (%s): %s",
                                (int)r->partition,
                                gws_state_result_name(r->result), r->reason);
                l = rd_kafka_topic_partition_list_new(1);
                rd_kafka_topic_partition_list_add(l, svc->cfg->topic_input,
                                                  p->partition)
                    ->offset = p->hold_from;
                if (p->hold_from >= 0) {
                        rd_kafka_error_t *e;
                        gws_log(GWS_LOG_INFO, "STATE",
                                "partition %d: messages fetched while "
                                "restoring were set aside; re-reading from "
                                "offset %lld",
                                (int)p->partition, (long long)p->hold_from);
                        e = rd_kafka_seek_partitions(svc->consumer, l, 5000);
                        if (e) {
                                gws_log(GWS_LOG_WARNING, "STATE",
                                        "partition %d: seek back to %lld: "
                                        "%s",
                                        (int)p->partition,
                                        (long long)p->hold_from,
                                        rd_kafka_error_string(e));
                                rd_kafka_error_destroy(e);
                        }
                        p->hold_from = -1;
                }
                pause_parts(svc, l, 0);
                rd_kafka_topic_partition_list_destroy(l);
                gws_restore_free(r);
        }
}

/* Gives every newly assigned partition a concrete start offset before it
 * is assigned: its committed offset, or where the group has none, the
 * log start or end (auto.offset.reset) looked up now.
 *
 * Why: librdkafka (seen on 2.0.2; the code is unchanged upstream) starts a
 * partition that has no committed offset with an offset query. A pause or
 * resume while that query is in flight (our restore pause ends,
 * backpressure, or the library's own pause around an incremental
 * rebalance) turns its reply "outdated", which re-arms a 500 ms retry
 * timer; with the next offset still INVALID the resume also sends a second
 * query. The second reply starts the partition; the timer then queries
 * again while it is active and moves the fetch position to the log start
 * of that moment (debug=topic: "timed offset query for BEGINNING in state
 * active"). If retention moved the log start meanwhile, the partition is
 * read again from there: seen in the latency benchmark as "partition 7:
 * offset 1256 consumed again (after 4123)", 2,800 duplicates; with
 * auto.offset.reset=latest it would skip what arrived meanwhile. A
 * logical start (BEGINNING/END) avoids the second query but still waits
 * out the retry timer: 0.5 s late, measured as input lost on the mock and
 * alert p99 427 ms instead of ~150 ms. With a concrete offset librdkafka
 * starts fetching at once and never queries.
 *
 * A partition whose lookup fails is therefore not left to that path
 * either (cooperative protocol): it waits outside librdkafka's assignment
 * and start_retry() looks it up again (1 s, doubling to 30 s). Once, with
 * the fallback to librdkafka's own lookup that this replaced, a partition
 * was never fetched at all (the former integration test
 * start_lookup_fallback, about 1 run in 80: no log line, no error,
 * committed offset absent). The eager
 * protocol replaces the whole assignment on each assign() call: there the
 * lookup is retried within the assign callback (start_offsets_eager())
 * and only what still fails is left to librdkafka.
 *
 * Costs one OffsetFetch (replacing librdkafka's own) and, for partitions
 * without a commit, one ListOffsets per leader, within \p timeout_ms.
 * auto.offset.reset=error: partitions without a commit stay INVALID (not
 * a failure; librdkafka raises the error).
 * @returns the number of partitions whose start offset could not be
 *          looked up: each stays INVALID with its error in ->err (the
 *          first error also in *why); the others' ->err is 0.
 * @locality main thread. */
#define START_LOOKUP_MS 10000 /* in the assign callback */
#define START_RETRY_MS 3000   /* a retry from the main loop */
#define START_BACKOFF_MS 1000 /* first retry; doubles up to the max */
#define START_BACKOFF_MAX_MS 30000
static int start_offsets(gws_service_t *svc, rd_kafka_t *rk,
                         rd_kafka_topic_partition_list_t *parts,
                         int timeout_ms, rd_kafka_resp_err_t *why) {
        rd_kafka_topic_partition_list_t *ends;
        rd_kafka_resp_err_t err;
        const char *reset = svc->reset_offset == RD_KAFKA_OFFSET_END
                                ? "end"
                                : "start";
        int i, committed = 0, at_reset = 0, failed = 0;
        *why = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (!parts->cnt)
                return 0;
        for (i = 0; i < parts->cnt; i++) {
                parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
                parts->elems[i].opaque = NULL;
        }
        err = rd_kafka_committed(rk, parts, timeout_ms);
        ends = rd_kafka_topic_partition_list_new(parts->cnt);
        for (i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &parts->elems[i];
                if (err || tp->err) {
                        tp->err = err ? err : tp->err;
                        tp->offset = RD_KAFKA_OFFSET_INVALID;
                } else if (tp->offset >= 0) {
                        committed++;
                        tp->opaque = COMMITTED; /* on_assign() */
                } else if (svc->reset_offset != RD_KAFKA_OFFSET_INVALID) {
                        /* ListOffsets "timestamps": -2 log start, -1 end */
                        rd_kafka_topic_partition_list_add(ends, tp->topic,
                                                          tp->partition)
                            ->offset = svc->reset_offset;
                }
        }
        if (ends->cnt)
                err = rd_kafka_offsets_for_times(rk, ends, timeout_ms);
        for (i = 0; i < ends->cnt; i++) {
                rd_kafka_topic_partition_t *e = &ends->elems[i];
                rd_kafka_topic_partition_t *tp =
                    rd_kafka_topic_partition_list_find(parts, e->topic,
                                                       e->partition);
                if (!tp)
                        continue;
                if (err || e->err || e->offset < 0) {
                        tp->err = err ? err
                                      : e->err ? e->err
                                               : RD_KAFKA_RESP_ERR__NO_OFFSET;
                        continue;
                }
                tp->offset = e->offset;
                at_reset++;
        }
        rd_kafka_topic_partition_list_destroy(ends);
        for (i = 0; i < parts->cnt; i++) {
                if (!parts->elems[i].err)
                        continue;
                if (!failed++)
                        *why = parts->elems[i].err;
        }
        gws_log(GWS_LOG_INFO, "REBALANCE",
                "start offsets of %d partition(s): %d committed, %d at the "
                "log %s (auto.offset.reset), %d not found (%s)%s",
                parts->cnt, committed, at_reset, reset, failed,
                failed ? rd_kafka_err2str(*why) : "-",
                svc->reset_offset == RD_KAFKA_OFFSET_INVALID &&
                        parts->cnt - committed - failed
                    ? "; the others without a commit raise "
                      "auto.offset.reset=error"
                    : "");
        if (failed)
                svc->start_lookups_failed++;
        return failed;
}

/* Gives \p parts (start offsets known) to librdkafka and the workers:
 * partition state, the assign call, state restores.
 * @locality main thread: assign callback or start_retry(). */
static void assign_known(gws_service_t *svc, rd_kafka_t *rk,
                         rd_kafka_topic_partition_list_t *parts, int coop) {
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        int i;
        for (i = 0; i < parts->cnt; i++)
                parts->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        on_assign(svc, parts);
        resume_paused_before(svc, parts);
        if (coop)
                error = rd_kafka_incremental_assign(rk, parts);
        else
                err = rd_kafka_assign(rk, parts);
        if (error || err) {
                gws_log(GWS_LOG_ERR, "REBALANCE", "%s failed: %s",
                        coop ? "incremental assign" : "assign",
                        error ? rd_kafka_error_string(error)
                              : rd_kafka_err2str(err));
                if (error)
                        rd_kafka_error_destroy(error);
        }
        if (parts->cnt)
                svc->assign_ms = gws_mono_ms(); /* fetch_wake() */
        restores_start(svc, parts);
}

/* The partitions of \p parts whose start offset was found (no ->err),
 * with their offsets, in a new list (the caller's). */
static rd_kafka_topic_partition_list_t *
known_of(const rd_kafka_topic_partition_list_t *parts) {
        rd_kafka_topic_partition_list_t *known =
            rd_kafka_topic_partition_list_new(parts->cnt);
        int i;
        for (i = 0; i < parts->cnt; i++)
                if (!parts->elems[i].err) {
                        rd_kafka_topic_partition_t *tp =
                            rd_kafka_topic_partition_list_add(
                                known, parts->elems[i].topic,
                                parts->elems[i].partition);
                        tp->offset = parts->elems[i].offset;
                        tp->opaque = parts->elems[i].opaque;
                }
        return known;
}

/* Splits an assignment: partitions whose start offset could not be looked
 * up move to svc->deferred (they are not assigned; start_retry() looks
 * them up again), the others are returned in a new list.
 * @locality main thread, assign callback. */
static rd_kafka_topic_partition_list_t *
defer_unknown(gws_service_t *svc, const rd_kafka_topic_partition_list_t *parts,
              int64_t now) {
        int i;
        for (i = 0; i < parts->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &parts->elems[i];
                if (tp->err && !rd_kafka_topic_partition_list_find(
                                   svc->deferred, tp->topic, tp->partition))
                        rd_kafka_topic_partition_list_add(
                            svc->deferred, tp->topic, tp->partition);
        }
        if (!svc->defer_since_ms) {
                svc->defer_since_ms = now;
                svc->defer_tries = 0;
        }
        svc->defer_tries++;
        svc->defer_backoff_ms = START_BACKOFF_MS;
        svc->defer_next_ms = now + svc->defer_backoff_ms;
        __atomic_store_n(&svc->deferred_cnt, svc->deferred->cnt,
                         __ATOMIC_RELAXED);
        return known_of(parts);
}

/* Looks the deferred partitions up again (with backoff, not while the
 * group rebalances: an assign call then could stand in for the one the
 * pending rebalance waits for) and assigns those found.
 * @locality main thread. */
static void start_retry(gws_service_t *svc, int64_t now) {
        rd_kafka_topic_partition_list_t *try, *known;
        rd_kafka_resp_err_t why;
        int i, failed;
        if (!svc->deferred->cnt || now < svc->defer_next_ms ||
            __atomic_load_n(&svc->rebalancing, __ATOMIC_ACQUIRE))
                return;
        try = rd_kafka_topic_partition_list_copy(svc->deferred);
        failed = start_offsets(svc, svc->consumer, try, START_RETRY_MS, &why);
        known = known_of(try);
        for (i = 0; i < known->cnt; i++)
                rd_kafka_topic_partition_list_del(svc->deferred,
                                                  known->elems[i].topic,
                                                  known->elems[i].partition);
        now = gws_mono_ms();
        if (failed) {
                svc->defer_tries++;
                svc->defer_backoff_ms =
                    svc->defer_backoff_ms * 2 > START_BACKOFF_MAX_MS
                        ? START_BACKOFF_MAX_MS
                        : svc->defer_backoff_ms * 2;
                svc->defer_next_ms = now + svc->defer_backoff_ms;
                gws_log(GWS_LOG_WARNING, "REBALANCE",
                        "start offsets of %d partition(s) still could not be "
                        "looked up (%s; %d failed lookups in %lld ms); they "
                        "stay unconsumed, next lookup in %d ms",
                        failed, rd_kafka_err2str(why), svc->defer_tries,
                        (long long)(now - svc->defer_since_ms),
                        svc->defer_backoff_ms);
        } else {
                gws_log(GWS_LOG_NOTICE, "REBALANCE",
                        "start offsets of %d waiting partition(s) found "
                        "after %d failed lookup(s) and %lld ms; assigning "
                        "them",
                        known->cnt, svc->defer_tries,
                        (long long)(now - svc->defer_since_ms));
                svc->defer_since_ms = 0;
        }
        __atomic_store_n(&svc->deferred_cnt, svc->deferred->cnt,
                         __ATOMIC_RELAXED);
        if (known->cnt) {
                assign_known(svc, svc->consumer, known, 1);
                gws_log(GWS_LOG_INFO, "REBALANCE",
                        "assigned %d partition(s) (incremental, after their "
                        "start-offset lookup), now %d",
                        known->cnt, svc->assigned_cnt);
        }
        rd_kafka_topic_partition_list_destroy(known);
        rd_kafka_topic_partition_list_destroy(try);
}

/* Revoked partitions that are still deferred were never given to
 * librdkafka: they leave the deferred list and must not be passed to
 * incremental_unassign() (it refuses the whole call for a partition it
 * does not have, and the rebalance would then wait forever).
 * @returns the revoked partitions that were assigned (a new list).
 * @locality main thread, revoke callback. */
static rd_kafka_topic_partition_list_t *
undefer_revoked(gws_service_t *svc,
                const rd_kafka_topic_partition_list_t *parts) {
        rd_kafka_topic_partition_list_t *held =
            rd_kafka_topic_partition_list_new(parts->cnt);
        int i, dropped = 0;
        for (i = 0; i < parts->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &parts->elems[i];
                if (rd_kafka_topic_partition_list_del(
                        svc->deferred, tp->topic, tp->partition))
                        dropped++;
                else
                        rd_kafka_topic_partition_list_add(held, tp->topic,
                                                          tp->partition);
        }
        if (dropped) {
                gws_log(GWS_LOG_NOTICE, "REBALANCE",
                        "%d revoked partition(s) were still waiting for "
                        "their start offset; %d still wait",
                        dropped, svc->deferred->cnt);
                if (!svc->deferred->cnt)
                        svc->defer_since_ms = 0;
                __atomic_store_n(&svc->deferred_cnt, svc->deferred->cnt,
                                 __ATOMIC_RELAXED);
        }
        return held;
}

/* Eager protocol: each assign() call replaces the whole assignment, so
 * partitions cannot wait outside it. Their lookup is retried here, in the
 * assign callback (after 0.5, 1 and 2 s: only this member's start waits,
 * the group's sync is done); what still fails is left to librdkafka.
 * @returns the partitions still without a start offset.
 * @locality main thread, assign callback. */
static int start_offsets_eager(gws_service_t *svc, rd_kafka_t *rk,
                               rd_kafka_topic_partition_list_t *parts,
                               int failed, rd_kafka_resp_err_t *why) {
        int64_t t0 = gws_mono_ms();
        int i, tries = 1, wait_ms = 500;
        while (failed && tries <= 3) {
                rd_kafka_topic_partition_list_t *again =
                    rd_kafka_topic_partition_list_new(failed);
                for (i = 0; i < parts->cnt; i++)
                        if (parts->elems[i].err)
                                rd_kafka_topic_partition_list_add(
                                    again, parts->elems[i].topic,
                                    parts->elems[i].partition);
                gws_log(GWS_LOG_WARNING, "REBALANCE",
                        "start offsets of %d partition(s) could not be "
                        "looked up (%s); trying again in %d ms (eager "
                        "protocol: they cannot wait outside the assignment)",
                        failed, rd_kafka_err2str(*why), wait_ms);
                usleep((useconds_t)wait_ms * 1000);
                failed = start_offsets(svc, rk, again, START_RETRY_MS, why);
                for (i = 0; i < again->cnt; i++) {
                        rd_kafka_topic_partition_t *a = &again->elems[i];
                        rd_kafka_topic_partition_t *tp =
                            rd_kafka_topic_partition_list_find(
                                parts, a->topic, a->partition);
                        if (tp) {
                                tp->offset = a->offset;
                                tp->err = a->err;
                        }
                }
                rd_kafka_topic_partition_list_destroy(again);
                tries++;
                wait_ms *= 2;
        }
        if (!failed && tries > 1)
                gws_log(GWS_LOG_NOTICE, "REBALANCE",
                        "start offsets found after %d failed lookup(s) and "
                        "%lld ms",
                        tries - 1, (long long)(gws_mono_ms() - t0));
        return failed;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
        gws_service_t *svc = opaque;
        int coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t ret_err = RD_KAFKA_RESP_ERR_NO_ERROR, why;
        rd_kafka_topic_partition_list_t *l;
        int lost, failed;

        /* Messages of this poll round go to their queues first: the
         * revoke path waits for the queues to drain. */
        dispatch_flush(svc);
        svc->rebalances++;
        switch (err) {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
                failed = start_offsets(svc, rk, parts, START_LOOKUP_MS, &why);
                if (failed && !coop)
                        failed = start_offsets_eager(svc, rk, parts, failed,
                                                     &why);
                __atomic_store_n(&svc->joined, 1, __ATOMIC_RELEASE);
                if (failed && coop) {
                        /* Not left to librdkafka's own lookup: that is
                         * the path start_offsets() avoids. */
                        l = defer_unknown(svc, parts, gws_mono_ms());
                        gws_log(GWS_LOG_WARNING, "REBALANCE",
                                "start offsets of %d partition(s) could not "
                                "be looked up (%s); they are not consumed "
                                "until a lookup succeeds (next in %d ms)",
                                failed, rd_kafka_err2str(why),
                                svc->defer_backoff_ms);
                } else {
                        if (failed)
                                gws_log(GWS_LOG_WARNING, "REBALANCE",
                                        "start offsets of %d partition(s) "
                                        "could not be looked up (%s); "
                                        "librdkafka looks them up itself "
                                        "(eager protocol, after 4 tries)",
                                        failed, rd_kafka_err2str(why));
                        l = rd_kafka_topic_partition_list_copy(parts);
                }
                assign_known(svc, rk, l, coop);
                gws_log(GWS_LOG_INFO, "REBALANCE",
                        "assigned %d partition(s) (%s), now %d%s", l->cnt,
                        coop ? "incremental" : "eager", svc->assigned_cnt,
                        svc->deferred->cnt ? ", more waiting for their start "
                                             "offset"
                                           : "");
                rd_kafka_topic_partition_list_destroy(l);
                break;
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
                lost = rd_kafka_assignment_lost(rk);
                l = undefer_revoked(svc, parts);
                on_revoke(svc, l, lost);
                if (coop)
                        error = rd_kafka_incremental_unassign(rk, l);
                else
                        ret_err = rd_kafka_assign(rk, NULL);
                gws_log(GWS_LOG_INFO, "REBALANCE",
                        "%s %d partition(s), now %d",
                        lost ? "lost" : "revoked", l->cnt,
                        svc->assigned_cnt);
                rd_kafka_topic_partition_list_destroy(l);
                break;
        default:
                gws_log(GWS_LOG_ERR, "REBALANCE", "rebalance failed: %s",
                        rd_kafka_err2str(err));
                rd_kafka_assign(rk, NULL);
                break;
        }
        if (error) {
                gws_log(GWS_LOG_ERR, "REBALANCE",
                        "incremental unassign failed: %s",
                        rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        } else if (ret_err) {
                gws_log(GWS_LOG_ERR, "REBALANCE", "unassign failed: %s",
                        rd_kafka_err2str(ret_err));
        }
}

/* Backpressure, in two steps. A worker queue above worker_queue_max or a
 * producer queue above producer_queue_max first only makes the main loop
 * stop polling (throttle(): librdkafka keeps what it prefetched, bounded by
 * queued.max.messages.kbytes, and stops fetching). Pausing partitions is
 * for sustained overload only (THROTTLE_MAX_MS): a paused partition's
 * prefetched messages are purged and fetched again on resume, which made
 * every short burst cost a refetch (measured on the devbroker, 100k 1.7 KB
 * events over 96 partitions: output stalls of 0.5-0.75 s, 36k ev/s against
 * 101-124k ev/s without pausing), but polling must go on during a long
 * stall (broker down) to serve rebalances within max.poll.interval.ms. */
#define THROTTLE_MAX_MS 1000

/* @returns 1 when a worker queue or the producer queue is over its bound.
 * @locality main thread. */
static int overloaded(gws_service_t *svc) {
        int i;
        if (rd_kafka_outq_len(svc->producer) > svc->cfg->producer_queue_max)
                return 1;
        for (i = 0; i < svc->nworkers; i++)
                if (wq_len(&svc->workers[i].q) >
                    (size_t)svc->cfg->worker_queue_max)
                        return 1;
        return 0;
}

/* @returns 1 if the main loop should skip this poll (overloaded for less
 * than THROTTLE_MAX_MS); then waits a little for the workers. */
static int throttle(gws_service_t *svc, int64_t now) {
        if (!overloaded(svc)) {
                svc->throttle_since = 0;
                return 0;
        }
        if (!svc->throttle_since)
                svc->throttle_since = now;
        if (now - svc->throttle_since >= THROTTLE_MAX_MS)
                return 0; /* sustained: poll, backpressure() pauses */
        usleep(2000);
        svc->throttled_ms += 2;
        svc->last_throttle_ms = now;
        return 1;
}

/* Fetch wake-up. While the main loop throttles, librdkafka's queue fills
 * up to queued.max.messages.kbytes and its broker threads stop fetching.
 * librdkafka before 2.2 then sleeps up to 1 s (a fixed block time) before
 * it looks at the queue again, unless something wakes the broker thread:
 * an op or I/O (librdkafka #2879; 2.2 added fetch.queue.backoff.ms, which
 * make_consumer() sets where it exists). The workers drain a full queue in
 * ~0.1 s, so a catching-up consumer processed for 0.2-0.3 s, then stood
 * still for 0.3-0.7 s (bench/e2e_bench.sh, 100 ms buckets of the output
 * timestamps: 1213 1947 0 0 0 1832 1720 1977 0 0 0 0 0 0 0 1316 ...).
 * A request to each broker wakes its thread, which then finds the queue
 * below the bound and fetches: a ListOffsets for the latest offset of the
 * assigned partitions (rd_kafka_offsets_for_times(), grouped per leader
 * by librdkafka; answered from the broker's memory, and only read: it
 * moves no fetch position). fetch_wake() says when: while catching up,
 * at most every WAKE_EVERY_MS, and for a while after an assignment. It
 * runs on its own thread because the call waits for the answers (up to
 * WAKE_TIMEOUT_MS, which is also what it can add to a shutdown). */
#define WAKE_EVERY_MS 10
#define WAKE_WINDOW_MS 1500
#define WAKE_TIMEOUT_MS 500
/* After an assignment: librdkafka 2.0.2 starts a new partition's fetching
 * on the broker thread's next turn, and a broker thread with nothing else
 * to fetch sleeps its 1 s first (seen in the latency benchmark with
 * debug=fetch: partitions on two brokers fetchable 0.1-0.3 s after the
 * assignment, those on the third 1.1 s after; the mock had dropped the
 * hot partition's first 1290 events by then: lost input, alerts ~1 s
 * late). Wake rounds every WAKE_ASSIGN_EVERY_MS for WAKE_WINDOW_MS. */
#define WAKE_ASSIGN_EVERY_MS 50

static void *wake_main(void *arg) {
        gws_service_t *svc = arg;
        rd_kafka_topic_partition_list_t *parts;
        pthread_mutex_lock(&svc->wake_lock);
        for (;;) {
                while (!svc->wake_parts && !svc->wake_stop)
                        pthread_cond_wait(&svc->wake_cond, &svc->wake_lock);
                if (svc->wake_stop)
                        break;
                parts = svc->wake_parts;
                svc->wake_parts = NULL;
                pthread_mutex_unlock(&svc->wake_lock);
                /* The answer does not matter (errors included): the
                 * request is what wakes the broker threads. */
                rd_kafka_offsets_for_times(svc->consumer, parts,
                                           WAKE_TIMEOUT_MS);
                rd_kafka_topic_partition_list_destroy(parts);
                pthread_mutex_lock(&svc->wake_lock);
        }
        pthread_mutex_unlock(&svc->wake_lock);
        return NULL;
}

/* Stops and joins the wake thread (idempotent). @locality main thread. */
static void wake_stop(gws_service_t *svc) {
        if (!svc->wake_thr)
                return;
        pthread_mutex_lock(&svc->wake_lock);
        svc->wake_stop = 1;
        pthread_cond_signal(&svc->wake_cond);
        pthread_mutex_unlock(&svc->wake_lock);
        pthread_join(svc->wake_thr, NULL);
        svc->wake_thr = 0;
        if (svc->wake_parts)
                rd_kafka_topic_partition_list_destroy(svc->wake_parts);
        svc->wake_parts = NULL;
}

/* Asks the wake thread for a round when the fetchers may have stopped:
 * within WAKE_WINDOW_MS of a throttle (catch-up); when the main loop has
 * just emptied librdkafka's queue (\p drained) after taking at least half
 * of queued.max.messages.kbytes from it since it was last empty (the
 * queue can fill without a throttle when the main thread is not
 * scheduled for a while: a precaution, not measured on its own); and
 * every WAKE_ASSIGN_EVERY_MS for WAKE_WINDOW_MS after an assignment.
 * @locality main thread. */
static void fetch_wake(gws_service_t *svc, int64_t now, int drained) {
        rd_kafka_topic_partition_list_t *parts;
        int32_t i;
        int filled = drained && svc->drain_bytes >= svc->wake_bytes;
        int catch_up;
        if (!svc->wake_on) {
                svc->drain_bytes = 0;
                return;
        }
        if (now - svc->last_wake_ms < WAKE_EVERY_MS)
                return; /* a filled queue is still seen next time */
        if (drained)
                svc->drain_bytes = 0;
        catch_up = filled || now - svc->last_throttle_ms <= WAKE_WINDOW_MS;
        if (!catch_up && (now - svc->assign_ms > WAKE_WINDOW_MS ||
                          now - svc->last_wake_ms < WAKE_ASSIGN_EVERY_MS))
                return;
        svc->last_wake_ms = now;
        parts = rd_kafka_topic_partition_list_new(svc->assigned_cnt + 1);
        for (i = 0; i < svc->nptns; i++) {
                ptn_t *p = svc->ptns[i];
                if (p && !p->paused && !p->restoring &&
                    !__atomic_load_n(&p->lost, __ATOMIC_ACQUIRE))
                        rd_kafka_topic_partition_list_add(
                            parts, svc->cfg->topic_input, i)
                            ->offset = RD_KAFKA_OFFSET_END;
        }
        if (!parts->cnt) {
                rd_kafka_topic_partition_list_destroy(parts);
                return;
        }
        svc->wakes[catch_up ? 0 : 1]++;
        pthread_mutex_lock(&svc->wake_lock);
        if (svc->wake_parts) /* the last one is not taken yet: replace */
                rd_kafka_topic_partition_list_destroy(svc->wake_parts);
        svc->wake_parts = parts;
        pthread_cond_signal(&svc->wake_cond);
        pthread_mutex_unlock(&svc->wake_lock);
}

/* Pauses/resumes the partitions of overloaded workers, or all of them
 * when the producer queue is over its bound, once the overload has lasted
 * THROTTLE_MAX_MS. @locality main thread. */
static void backpressure(gws_service_t *svc) {
        const gws_config_t *cfg = svc->cfg;
        rd_kafka_topic_partition_list_t *pause =
            rd_kafka_topic_partition_list_new(8);
        rd_kafka_topic_partition_list_t *resume =
            rd_kafka_topic_partition_list_new(8);
        int outq = rd_kafka_outq_len(svc->producer);
        int i, sustained = svc->throttle_since &&
                           gws_mono_ms() - svc->throttle_since >=
                               THROTTLE_MAX_MS;
        size_t qlen[256];

        if (!svc->all_paused && sustained && outq > cfg->producer_queue_max)
                svc->all_paused = 1;
        else if (svc->all_paused && outq < cfg->producer_queue_max / 2)
                svc->all_paused = 0;
        for (i = 0; i < svc->nworkers && i < 256; i++)
                qlen[i] = wq_len(&svc->workers[i].q);
        for (i = 0; i < svc->nptns; i++) {
                ptn_t *p = svc->ptns[i];
                size_t ql;
                int want;
                if (!p || p->restoring)
                        continue;
                ql = qlen[p->worker % 256];
                if (p->paused)
                        want = svc->all_paused ||
                               ql > (size_t)cfg->worker_queue_max / 2;
                else
                        want = sustained &&
                               (svc->all_paused ||
                                ql > (size_t)cfg->worker_queue_max);
                if (want && !p->paused)
                        rd_kafka_topic_partition_list_add(
                            pause, cfg->topic_input, i);
                else if (!want && p->paused)
                        rd_kafka_topic_partition_list_add(
                            resume, cfg->topic_input, i);
                p->paused = want;
        }
        if (pause->cnt) {
                pause_parts(svc, pause, 1);
                gws_log(GWS_LOG_DEBUG, "BACKPRESSURE",
                        "paused %d partition(s) (producer queue %d)",
                        pause->cnt, outq);
        }
        if (resume->cnt) {
                pause_parts(svc, resume, 0);
                gws_log(GWS_LOG_DEBUG, "BACKPRESSURE",
                        "resumed %d partition(s)", resume->cnt);
        }
        rd_kafka_topic_partition_list_destroy(pause);
        rd_kafka_topic_partition_list_destroy(resume);
}

static void log_progress(gws_service_t *svc, int final) {
        gws_pipeline_stats_t st;
        int64_t now = gws_mono_ms();
        double secs = (now - svc->last_stats_ms) / 1000.0;
        uint64_t dlq = 0;
        char usage[96] = "";
        struct rusage ru;
        int i;
        memset(&st, 0, sizeof(st));
        for (i = 0; i < svc->nworkers; i++)
                gws_pipeline_stats_add(svc->workers[i].pl, &st);
        /* The last line says what the whole run cost, shutdown included
         * (its snapshots are written after the last scrape of /metrics). */
        if (final && getrusage(RUSAGE_SELF, &ru) == 0)
                snprintf(usage, sizeof(usage), " cpu=%.2fs peak_rss=%.1fMB",
                         (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                             (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) /
                                 1e6,
                         ru.ru_maxrss / 1024.0);
        for (i = 0; i < GWS_EV_ERR__CNT; i++)
                dlq += st.dlq[i];
        dlq += rejected_total(svc);
        gws_log(GWS_LOG_INFO, "PROGRESS",
                "%sin=%llu retained=%llu (error=%llu anomaly=%llu "
                "sample=%llu rule=%llu) dropped=%llu dlq=%llu alerts=%llu "
                "rate=%.0f/s partitions=%d outq=%d delivered=%llu "
                "commits=%llu postponed=%llu rebalances=%llu%s",
                final ? "final: " : "", (unsigned long long)st.in,
                (unsigned long long)(st.kept[GWS_KEEP_ERROR] +
                                     st.kept[GWS_KEEP_ANOMALY] +
                                     st.kept[GWS_KEEP_SAMPLE] +
                                     st.kept[GWS_KEEP_RULE]),
                (unsigned long long)st.kept[GWS_KEEP_ERROR],
                (unsigned long long)st.kept[GWS_KEEP_ANOMALY],
                (unsigned long long)st.kept[GWS_KEEP_SAMPLE],
                (unsigned long long)st.kept[GWS_KEEP_RULE],
                (unsigned long long)st.kept[GWS_KEEP_NONE],
                (unsigned long long)dlq, (unsigned long long)st.alerts,
                secs > 0 ? (double)(st.in - svc->last_stats_in) / secs : 0.0,
                svc->assigned_cnt, rd_kafka_outq_len(svc->producer),
                (unsigned long long)__atomic_load_n(&svc->delivered,
                                                    __ATOMIC_RELAXED),
                (unsigned long long)svc->commits,
                (unsigned long long)svc->commits_postponed,
                (unsigned long long)svc->rebalances, usage);
        svc->last_stats_ms = now;
        svc->last_stats_in = st.in;
}

/* ------------------------------------------------------------------------
 * operations endpoint: /metrics snapshot (main thread), health (atomics)
 * ------------------------------------------------------------------------ */

#define FAM(n, t, h) r |= gws_prom_family(b, n, t, h)

static int render_metrics(gws_service_t *svc, gws_buf_t *b) {
        const char *topic = svc->cfg->topic_input;
        gws_pipeline_stats_t st;
        gws_hist_t hist;
        uint64_t ents, bytes, evict, late, skew, jahead, jback, retained = 0;
        gws_placement_stats_t pl;
        char pbuf[16];
        int i, j, r = 0;

        memset(&st, 0, sizeof(st));
        memset(&hist, 0, sizeof(hist));
        for (i = 0; i < svc->nworkers; i++) {
                gws_pipeline_stats_add(svc->workers[i].pl, &st);
                gws_hist_add(&hist, &svc->workers[i].hist);
        }
        gws_detect_process_stats(&ents, &bytes, &evict, &late, &skew);

        FAM("gwsieve_build_info", "gauge", "Build of this gwsieve.");
        r |= gws_prom_u64(b, "gwsieve_build_info",
                          (const char *[]){"version", GWS_VERSION, NULL}, 1);
        FAM("gwsieve_events_consumed_total", "counter",
            "Input messages consumed, per input partition.");
        for (i = 0; i < svc->ncounters; i++) {
                if (!svc->consumed[i])
                        continue;
                snprintf(pbuf, sizeof(pbuf), "%d", i);
                r |= gws_prom_u64(b, "gwsieve_events_consumed_total",
                                  (const char *[]){"topic", topic,
                                                   "partition", pbuf, NULL},
                                  svc->consumed[i]);
        }
        FAM("gwsieve_events_processed_total", "counter",
            "Input messages through the pipeline (all outcomes).");
        r |= gws_prom_u64(b, "gwsieve_events_processed_total", NULL, st.in);
        FAM("gwsieve_events_retained_total", "counter",
            "Records handed to the producer for the retained topic, by "
            "why they were kept.");
        for (i = GWS_KEEP_ERROR; i < GWS_KEEP__CNT; i++) {
                static const char *kn[GWS_KEEP__CNT] = {
                    "none", "error", "anomaly", "sample", "rule"};
                retained += st.kept[i];
                r |= gws_prom_u64(b, "gwsieve_events_retained_total",
                                  (const char *[]){"kept", kn[i], NULL},
                                  st.kept[i]);
        }
        FAM("gwsieve_events_dropped_total", "counter",
            "Events dropped by a drop rule.");
        r |= gws_prom_u64(b, "gwsieve_events_dropped_total", NULL,
                          st.dropped_by_rule);
        FAM("gwsieve_events_sampled_out_total", "counter",
            "Normal events not selected by sampling (not retained).");
        r |= gws_prom_u64(b, "gwsieve_events_sampled_out_total", NULL,
                          st.kept[GWS_KEEP_NONE] - st.dropped_by_rule);
        FAM("gwsieve_dlq_total", "counter",
            "Dead letters handed to the producer, by reason.");
        for (i = 1; i < GWS_EV_ERR__CNT; i++)
                r |= gws_prom_u64(b, "gwsieve_dlq_total",
                                  (const char *[]){"reason",
                                                   gws_ev_err2str(
                                                       (gws_ev_err_t)i),
                                                   NULL},
                                  st.dlq[i]);
        r |= gws_prom_u64(b, "gwsieve_dlq_total",
                          (const char *[]){"reason", "output_rejected", NULL},
                          rejected_total(svc));
        FAM("gwsieve_alerts_total", "counter",
            "Alert records emitted, by kind and lifecycle state.");
        for (i = 0; i < GWS_ALERT_KIND__CNT; i++)
                for (j = 0; j < GWS_ALERT_STATE__CNT; j++)
                        r |= gws_prom_u64(
                            b, "gwsieve_alerts_total",
                            (const char *[]){"kind", gws_alert_kind_name(i),
                                             "state",
                                             gws_alert_state_name(j), NULL},
                            st.alerts_by[i][j]);
        FAM("gwsieve_redactions_total", "counter",
            "Secrets and PII redacted in outputs handed to the producer, "
            "by detector.");
        for (i = 0; i < GWS_RK__CNT; i++)
                r |= gws_prom_u64(b, "gwsieve_redactions_total",
                                  (const char *[]){"kind",
                                                   gws_redact_kind_name(
                                                       (gws_redact_kind_t)i),
                                                   NULL},
                                  st.rec.redactions[i]);
        FAM("gwsieve_processing_seconds", "histogram",
            "Pipeline time per message (parse, score, filter, write).");
        r |= gws_prom_hist(b, "gwsieve_processing_seconds", &hist);
        FAM("gwsieve_consumer_lag", "gauge",
            "Messages between the group's committed offset and the end "
            "of the partition, per assigned partition (end from librdkafka "
            "statistics).");
        for (i = 0; i < svc->ncounters; i++) {
                if (svc->lag[i] < 0 || !ptn_lookup(svc, i))
                        continue;
                snprintf(pbuf, sizeof(pbuf), "%d", i);
                r |= gws_prom_u64(b, "gwsieve_consumer_lag",
                                  (const char *[]){"topic", topic,
                                                   "partition", pbuf, NULL},
                                  (uint64_t)svc->lag[i]);
        }
        FAM("gwsieve_producer_queue_messages", "gauge",
            "Output records waiting in the producer (not yet acknowledged).");
        r |= gws_prom_u64(b, "gwsieve_producer_queue_messages", NULL,
                          (uint64_t)rd_kafka_outq_len(svc->producer));
        FAM("gwsieve_outputs_delivered_total", "counter",
            "Output records acknowledged by the brokers.");
        r |= gws_prom_u64(b, "gwsieve_outputs_delivered_total", NULL,
                          __atomic_load_n(&svc->delivered, __ATOMIC_RELAXED));
        FAM("gwsieve_delivery_failures_total", "counter",
            "Output deliveries that failed and were produced again.");
        r |= gws_prom_u64(b, "gwsieve_delivery_failures_total", NULL,
                          __atomic_load_n(&svc->delivery_retries,
                                          __ATOMIC_RELAXED));
        FAM("gwsieve_rebalances_total", "counter",
            "Rebalance callbacks (assign and revoke) of this member.");
        r |= gws_prom_u64(b, "gwsieve_rebalances_total", NULL,
                          svc->rebalances);
        FAM("gwsieve_assigned_partitions", "gauge",
            "Input partitions assigned to this member.");
        r |= gws_prom_u64(b, "gwsieve_assigned_partitions", NULL,
                          (uint64_t)svc->assigned_cnt);
        FAM("gwsieve_commits_total", "counter", "Offset commits sent.");
        r |= gws_prom_u64(b, "gwsieve_commits_total", NULL, svc->commits);
        FAM("gwsieve_commits_postponed_total", "counter",
            "Periodic commits held back while the group rebalanced.");
        r |= gws_prom_u64(b, "gwsieve_commits_postponed_total", NULL,
                          svc->commits_postponed);
        FAM("gwsieve_backpressure_seconds_total", "counter",
            "Time the main loop did not poll because a worker or the "
            "producer queue was over its bound.");
        r |= gws_prom_dbl(b, "gwsieve_backpressure_seconds_total", NULL,
                          (double)svc->throttled_ms / 1000.0);
        FAM("gwsieve_fetch_wakeups_total", "counter",
            "ListOffsets rounds that wake librdkafka's fetchers "
            "(fetch_wakeup, librdkafka < 2.2): after a full prefetch queue "
            "(catch_up) or a new assignment (assignment).");
        r |= gws_prom_u64(b, "gwsieve_fetch_wakeups_total",
                          (const char *[]){"reason", "catch_up", NULL},
                          svc->wakes[0]);
        r |= gws_prom_u64(b, "gwsieve_fetch_wakeups_total",
                          (const char *[]){"reason", "assignment", NULL},
                          svc->wakes[1]);
        FAM("gwsieve_offsets_rewound_total", "counter",
            "Times a partition's consumed offset went back within one "
            "assignment (what follows is processed again; should stay 0).");
        r |= gws_prom_u64(b, "gwsieve_offsets_rewound_total", NULL,
                          svc->rewinds);
        FAM("gwsieve_start_offset_lookup_failures_total", "counter",
            "Start-offset lookups (committed, or log start/end) of newly "
            "assigned partitions that failed for at least one of them "
            "(cooperative protocol: those wait and are looked up again; "
            "eager: retried in the assign callback, then left to "
            "librdkafka).");
        r |= gws_prom_u64(b, "gwsieve_start_offset_lookup_failures_total",
                          NULL, svc->start_lookups_failed);
        FAM("gwsieve_partitions_not_fetching", "gauge",
            "Assigned partitions whose fetcher librdkafka has not reported "
            "active for fetch_stall_s (statistics fetch_state): nothing is "
            "consumed from them.");
        r |= gws_prom_u64(b, "gwsieve_partitions_not_fetching", NULL,
                          (uint64_t)__atomic_load_n(&svc->not_fetching,
                                                    __ATOMIC_RELAXED));
        FAM("gwsieve_partitions_awaiting_start_offset", "gauge",
            "Partitions the group assigned that are not consumed yet "
            "because their start offset could not be looked up.");
        r |= gws_prom_u64(b, "gwsieve_partitions_awaiting_start_offset", NULL,
                          (uint64_t)__atomic_load_n(&svc->deferred_cnt,
                                                    __ATOMIC_RELAXED));
        FAM("gwsieve_state_skipped_events_total", "counter",
            "Events not processed because a restored snapshot covers them "
            "and says their outputs were delivered (the previous owner's "
            "commit was lost).");
        r |= gws_prom_u64(b, "gwsieve_state_skipped_events_total", NULL,
                          __atomic_load_n(&svc->restore_skipped,
                                          __ATOMIC_RELAXED));
        FAM("gwsieve_consumer_errors_total", "counter",
            "Consumer errors reported by librdkafka.");
        r |= gws_prom_u64(b, "gwsieve_consumer_errors_total", NULL,
                          svc->consumer_errors);
        if (svc->cl) {
                gws_changelog_stats_t cs;
                uint64_t held = 0;
                gws_changelog_stats(svc->cl, &cs);
                FAM("gwsieve_state_snapshots_total", "counter",
                    "Detector snapshots to the state topic, by result "
                    "(written: acknowledged; failed: not produced or not "
                    "delivered; held: not taken, the partition's restore "
                    "could not read the state topic; dropped: taken, not "
                    "written, the outputs of the events it held were not "
                    "all acknowledged before a newer one, a revocation or "
                    "the stop; unchanged: a revoked partition's, not "
                    "written, its last snapshot holding the same state "
                    "and acknowledged).");
                r |= gws_prom_u64(b, "gwsieve_state_snapshots_total",
                                  (const char *[]){"result", "written", NULL},
                                  cs.written);
                r |= gws_prom_u64(b, "gwsieve_state_snapshots_total",
                                  (const char *[]){"result", "failed", NULL},
                                  cs.failed);
                r |= gws_prom_u64(b, "gwsieve_state_snapshots_total",
                                  (const char *[]){"result", "held", NULL},
                                  cs.held);
                r |= gws_prom_u64(b, "gwsieve_state_snapshots_total",
                                  (const char *[]){"result", "dropped", NULL},
                                  __atomic_load_n(&svc->snaps_dropped,
                                                  __ATOMIC_RELAXED));
                r |= gws_prom_u64(
                    b, "gwsieve_state_snapshots_total",
                    (const char *[]){"result", "unchanged", NULL},
                    __atomic_load_n(&svc->snaps_unchanged, __ATOMIC_RELAXED));
                for (i = 0; i < svc->nptns; i++)
                        held += svc->ptns[i] && !svc->ptns[i]->restoring &&
                                gws_changelog_held(svc->cl,
                                                   svc->ptns[i]->partition);
                FAM("gwsieve_state_snapshots_held", "gauge",
                    "Assigned partitions whose snapshots are held: their "
                    "restore could not read the state topic, and their cold "
                    "state must not replace the snapshot there (until the "
                    "partition's next assignment).");
                r |= gws_prom_u64(b, "gwsieve_state_snapshots_held", NULL,
                                  held);
                FAM("gwsieve_state_snapshot_bytes_total", "counter",
                    "Bytes of snapshots produced (zstd), and before zstd.");
                r |= gws_prom_u64(b, "gwsieve_state_snapshot_bytes_total",
                                  (const char *[]){"form", "zstd", NULL},
                                  cs.bytes);
                r |= gws_prom_u64(b, "gwsieve_state_snapshot_bytes_total",
                                  (const char *[]){"form", "raw", NULL},
                                  cs.raw_bytes);
                FAM("gwsieve_state_restores_total", "counter",
                    "Partitions assigned and their detector state, by "
                    "result (ok: restored; missing: none; unreadable: the "
                    "state topic could not be read; the rest: a snapshot "
                    "rejected; all but ok: the partition started cold).");
                for (i = 0; i < GWS_STATE__CNT; i++)
                        r |= gws_prom_u64(
                            b, "gwsieve_state_restores_total",
                            (const char *[]){"result",
                                             gws_state_result_name(
                                                 (gws_state_result_t)i),
                                             NULL},
                            cs.restores[i]);
                FAM("gwsieve_state_restore_seconds_total", "counter",
                    "Time from assignment to restored state, summed.");
                r |= gws_prom_dbl(b, "gwsieve_state_restore_seconds_total",
                                  NULL, (double)cs.restore_ms / 1000.0);
                FAM("gwsieve_state_partition_reads_total", "counter",
                    "Reads of a state topic partition by restores: one "
                    "serves every restore queued for that partition.");
                r |= gws_prom_u64(b, "gwsieve_state_partition_reads_total",
                                  NULL, cs.reads);
                FAM("gwsieve_state_catchup_events_total", "counter",
                    "Input events re-read to bring restored state up to "
                    "the committed offset (no outputs).");
                r |= gws_prom_u64(b, "gwsieve_state_catchup_events_total",
                                  NULL, cs.caught_up);
        }
        FAM("gwsieve_detector_entities", "gauge",
            "Entities (gateways, models, users, ...) with detector state.");
        r |= gws_prom_u64(b, "gwsieve_detector_entities", NULL, ents);
        FAM("gwsieve_detector_state_bytes", "gauge",
            "Memory of detector entity state.");
        r |= gws_prom_u64(b, "gwsieve_detector_state_bytes", NULL, bytes);
        FAM("gwsieve_detector_state_limit_bytes", "gauge",
            "detectors.max_state_mb in bytes.");
        r |= gws_prom_u64(b, "gwsieve_detector_state_limit_bytes", NULL,
                          (uint64_t)svc->cfg->det_max_state_mb << 20);
        FAM("gwsieve_detector_evictions_total", "counter",
            "Entities evicted (least recently used) to stay within bounds.");
        r |= gws_prom_u64(b, "gwsieve_detector_evictions_total", NULL, evict);
        FAM("gwsieve_detector_late_events_total", "counter",
            "Events older than detectors.max_lateness_s (scored, not "
            "counted in windows).");
        r |= gws_prom_u64(b, "gwsieve_detector_late_events_total", NULL,
                          late);
        FAM("gwsieve_detector_skewed_events_total", "counter",
            "Events far ahead of event time (clock skew).");
        r |= gws_prom_u64(b, "gwsieve_detector_skewed_events_total", NULL,
                          skew);
        gws_detect_time_jumps(&jahead, &jback);
        FAM("gwsieve_detector_event_time_jumps_total", "counter",
            "A partition's event time moved by more than "
            "detectors.max_future_s: ahead (a run of far-ahead events "
            "agreed) or back (a clock that ran ahead was set right).");
        r |= gws_prom_u64(b, "gwsieve_detector_event_time_jumps_total",
                          (const char *[]){"direction", "ahead", NULL},
                          jahead);
        r |= gws_prom_u64(b, "gwsieve_detector_event_time_jumps_total",
                          (const char *[]){"direction", "back", NULL}, jback);
        gws_placement_stats(&pl);
        FAM("gwsieve_gateways_on_several_partitions", "gauge",
            "Gateways met on more than one input partition: the input is "
            "not keyed by gateway_id (or its partition count changed).");
        r |= gws_prom_u64(b, "gwsieve_gateways_on_several_partitions", NULL,
                          pl.split);
        (void)retained;
        return r;
}
#undef FAM

/* Main thread: a fresh snapshot for the HTTP thread. */
static void snapshot(gws_service_t *svc) {
        gws_buf_t b = {0};
        if (!svc->http || render_metrics(svc, &b) == -1) {
                gws_buf_free(&b);
                return;
        }
        pthread_mutex_lock(&svc->snap_lock);
        gws_buf_free(&svc->snap);
        svc->snap = b;
        pthread_mutex_unlock(&svc->snap_lock);
        svc->last_snap_ms = gws_mono_ms();
}

/* HTTP thread. */
static int http_handler(void *opaque, const char *path, gws_buf_t *body,
                        const char **ctype) {
        gws_service_t *svc = opaque;
        int64_t idle = gws_mono_ms() -
                       __atomic_load_n(&svc->last_poll_ms, __ATOMIC_ACQUIRE);
        int fatal = __atomic_load_n(&svc->fatal, __ATOMIC_ACQUIRE);

        if (!strcmp(path, "/metrics")) {
                *ctype = "text/plain; version=0.0.4; charset=utf-8";
                pthread_mutex_lock(&svc->snap_lock);
                gws_buf_append(body, svc->snap.buf ? svc->snap.buf : "",
                               svc->snap.len);
                pthread_mutex_unlock(&svc->snap_lock);
                gws_prom_process(body);
                return 200;
        }
        if (!strcmp(path, "/healthz")) {
                /* Alive: the main loop turns (it polls at least every
                 * 100 ms; a rebalance drain is bounded by
                 * shutdown_timeout_ms). */
                if (fatal) {
                        gws_buf_puts(body, "fatal error, stopping\n");
                        return 503;
                }
                if (idle > 30000 + svc->cfg->shutdown_timeout_ms) {
                        gws_buf_printf(body, "main loop stuck for %lld ms\n",
                                       (long long)idle);
                        return 503;
                }
                gws_buf_puts(body, "ok\n");
                return 200;
        }
        if (!strcmp(path, "/readyz")) {
                int assigned = __atomic_load_n(&svc->assigned_cnt,
                                               __ATOMIC_RELAXED);
                int waiting = __atomic_load_n(&svc->deferred_cnt,
                                              __ATOMIC_RELAXED);
                if (fatal || __atomic_load_n(&svc->stopping,
                                             __ATOMIC_ACQUIRE)) {
                        gws_buf_puts(body, fatal ? "not ready: fatal error\n"
                                                 : "not ready: stopping\n");
                        return 503;
                }
                if (!__atomic_load_n(&svc->joined, __ATOMIC_ACQUIRE)) {
                        gws_buf_printf(body,
                                       "not ready: joining group \"%s\"\n",
                                       svc->cfg->group);
                        return 503;
                }
                if (idle > 10000) {
                        gws_buf_printf(body,
                                       "not ready: not polling for %lld ms\n",
                                       (long long)idle);
                        return 503;
                }
                if (waiting > 0) {
                        gws_buf_printf(body,
                                       "not ready: %d assigned partition(s) "
                                       "wait for their start offset (lookup "
                                       "failing; see the log)\n",
                                       waiting);
                        return 503;
                }
                if (assigned > 0)
                        gws_buf_printf(body, "ready: consuming %d "
                                             "partition(s)\n",
                                       assigned);
                else
                        gws_buf_puts(body, "ready: idle group member (no "
                                           "partitions assigned)\n");
                return 200;
        }
        if (!strcmp(path, "/")) {
                gws_buf_puts(body, "gwsieve " GWS_VERSION
                                   "\n/metrics  Prometheus metrics\n"
                                   "/healthz  liveness\n"
                                   "/readyz   readiness\n");
                return 200;
        }
        gws_buf_printf(body, "not found: %s (try /metrics, /healthz, "
                             "/readyz)\n",
                       path);
        return 404;
}

/* ------------------------------------------------------------------------
 * setup
 * ------------------------------------------------------------------------ */

static int conf_set(rd_kafka_conf_t *conf, const char *name,
                    const char *value, const char *what, char *errstr,
                    size_t errstr_size) {
        char inner[256];
        rd_kafka_conf_res_t res =
            rd_kafka_conf_set(conf, name, value, inner, sizeof(inner));
        if (res == RD_KAFKA_CONF_UNKNOWN) {
                /* Not a property at all: a secret's name mistyped
                 * ("sasl.pasword") is no known secret, so its value is
                 * not shown; it is not what is wrong. */
                snprintf(errstr, errstr_size, "%s property \"%s\": %s",
                         what, name, inner);
                return -1;
        }
        if (res != RD_KAFKA_CONF_OK) {
                /* librdkafka's text names the property, not its value */
                snprintf(errstr, errstr_size, "%s property \"%s\"=\"%s\": %s",
                         what, name,
                         gws_config_kv_secret(name) ? "***" : value, inner);
                return -1;
        }
        return 0;
}

/* Properties of the shared "kafka" section that only one client knows:
 * given to the other, librdkafka would warn at startup. */
static const char *consumer_only[] = {
    "session.timeout.ms", "heartbeat.interval.ms", "group.", "auto.offset.",
    "enable.auto.", "auto.commit.", "fetch.", "max.poll.interval.ms",
    "partition.assignment.strategy", "isolation.level", "queued.",
    "check.crcs", "consume.", "enable.partition.eof", "offset.store.",
    "coordinator.", NULL};
static const char *producer_only[] = {
    "linger.ms", "queue.buffering.", "acks", "request.required.acks",
    "enable.idempotence", "enable.gapless.guarantee", "batch.",
    "compression.", "message.timeout.ms", "delivery.timeout.ms",
    "transactional.", "transaction.", "retries", "message.send.max.retries",
    "retry.backoff.ms", "partitioner", "sticky.partitioning.",
    "max.in.flight", "queuing.strategy", "request.timeout.ms", NULL};

static int prop_in(const char *name, const char **list) {
        size_t n;
        for (; *list; list++) {
                n = strlen(*list);
                if ((*list)[n - 1] == '.' ? !strncmp(name, *list, n)
                                          : !strcmp(name, *list))
                        return 1;
        }
        return 0;
}

/* Applies \p kv; with \p skip, properties of the other client are left
 * out (shared section only). */
static int conf_apply(rd_kafka_conf_t *conf, const gws_kv_t *kv,
                      const char **skip, const char *what, char *errstr,
                      size_t errstr_size) {
        for (; kv; kv = kv->next) {
                if (skip && prop_in(kv->name, skip))
                        continue;
                if (conf_set(conf, kv->name, kv->value, what, errstr,
                             errstr_size) == -1)
                        return -1;
        }
        return 0;
}

/* Sets fetch.max.bytes unless the user did, after the user's properties
 * are in \p conf: every consumer (make_consumer(),
 * gws_service_reader_conf()) takes the user's kafka.consumer.*, so each
 * must size its fetches the same way, or a receive.message.max.bytes
 * the main consumer accepts is refused by the restore consumer
 * (librdkafka wants it >= fetch.max.bytes + 512, its default 50 MB).
 * Fetch responses of 1 MB (librdkafka sizes them to the prefetch bound,
 * 4 MB in the main consumer). A message keeps its whole response buffer
 * alive until it is destroyed, and the workers hold up to 2 x
 * worker_queue_max messages: peak RSS over a whole run (PROGRESS final,
 * 100k events over 96 partitions, 5 alternating runs) 62.7 MB median
 * (59.0-64.8) with 4 MB responses, 54.1 (53.7-55.8) with 1 MB, same
 * rate and CPU; a 2 MB prefetch instead gave 55.7 MB but 22% fewer
 * events/s. librdkafka wants it at least message.max.bytes.
 * @returns 0, or -1 with \p errstr. */
static int fetch_max_conf(const gws_config_t *cfg, rd_kafka_conf_t *conf,
                          const char *what, char *errstr,
                          size_t errstr_size) {
        char mb[32], fb[32];
        size_t ml = sizeof(mb);
        long m = 0;

        if (gws_config_kv_get(cfg->kafka, "fetch.max.bytes") ||
            gws_config_kv_get(cfg->kafka_consumer, "fetch.max.bytes"))
                return 0;
        if (rd_kafka_conf_get(conf, "message.max.bytes", mb, &ml) ==
            RD_KAFKA_CONF_OK)
                m = strtol(mb, NULL, 10);
        snprintf(fb, sizeof(fb), "%ld", m > 1048576 ? m : 1048576);
        return conf_set(conf, "fetch.max.bytes", fb, what, errstr,
                        errstr_size);
}

/* librdkafka's aliases (its CONFIGURATION.md, 2.0.2): a refusal names
 * one name of a pair, the user may have set the other. */
static const char *const prop_aliases[][2] = {
    {"bootstrap.servers", "metadata.broker.list"},
    {"max.in.flight", "max.in.flight.requests.per.connection"},
    {"sasl.mechanism", "sasl.mechanisms"},
    {"max.partition.fetch.bytes", "fetch.message.max.bytes"},
    {"linger.ms", "queue.buffering.max.ms"},
    {"retries", "message.send.max.retries"},
    {"compression.type", "compression.codec"},
    {"acks", "request.required.acks"},
    {"delivery.timeout.ms", "message.timeout.ms"}};

static int same_prop(const char *a, const char *b) {
        size_t i;
        if (!strcmp(a, b))
                return 1;
        for (i = 0; i < sizeof(prop_aliases) / sizeof(prop_aliases[0]); i++)
                if ((!strcmp(a, prop_aliases[i][0]) &&
                     !strcmp(b, prop_aliases[i][1])) ||
                    (!strcmp(a, prop_aliases[i][1]) &&
                     !strcmp(b, prop_aliases[i][0])))
                        return 1;
        return 0;
}

/* The entry of \p kv that conf_apply() gave librdkafka last for \p name
 * (or an alias of it), leaving out those of \p skip; NULL if none. */
static const gws_kv_t *kv_last(const gws_kv_t *kv, const char *name,
                               const char **skip) {
        const gws_kv_t *last = NULL;
        for (; kv; kv = kv->next)
                if (same_prop(kv->name, name) &&
                    !(skip && prop_in(kv->name, skip)))
                        last = kv;
        return last;
}

/* Appends to \p b "NAME=VALUE from "SECTION"" for the property \p name
 * as \p conf has it, or "is gwsieve's default" / "is librdkafka's
 * default". The layers are those of make_consumer(), make_producer() and
 * gws_service_reader_conf(): gwsieve's settings, then "kafka" without the
 * other client's properties, then the client's own section; the last one
 * set wins, as in librdkafka. A value no section sets is gwsieve's if it
 * is not librdkafka's default (\p dflt, a new conf with a topic conf).
 * (gws_service_reader_conf() sets five consumer properties after the
 * user's; no refusal of librdkafka 2.0.2 names them. Its fetch.max.bytes,
 * also set after them, is set only when no section does: gwsieve's.)
 * @returns 1, or 0 if \p name is not a property with a value (a word of
 *          the refusal's text, or a string property nobody set). */
static int refusal_prop(gws_buf_t *b, int *oom, const gws_config_t *cfg,
                        rd_kafka_type_t type, const rd_kafka_conf_t *conf,
                        const rd_kafka_conf_t *dflt, const char *name) {
        const int consumer = type == RD_KAFKA_CONSUMER;
        const gws_kv_t *kv;
        const char *from = NULL;
        char val[512], def[512];
        size_t vl = sizeof(val), dl = sizeof(def);
        rd_kafka_conf_res_t vr = rd_kafka_conf_get(conf, name, val, &vl),
                            dr = rd_kafka_conf_get(dflt, name, def, &dl);

        if (vr == RD_KAFKA_CONF_UNKNOWN) {
                /* A topic property of a conf that has no topic conf yet:
                 * nobody set one, so it has librdkafka's default. */
                if (dr == RD_KAFKA_CONF_UNKNOWN)
                        return 0;
                vr = dr;
                memcpy(val, def, sizeof(val));
        }
        if (vr != RD_KAFKA_CONF_OK) /* longer than val */
                snprintf(val, sizeof(val), "(%zu bytes)", vl - 1);
        if ((kv = kv_last(consumer ? cfg->kafka_consumer : cfg->kafka_producer,
                          name, NULL)))
                from = consumer ? "kafka.consumer" : "kafka.producer";
        else if ((kv = kv_last(cfg->kafka, name,
                               consumer ? producer_only : consumer_only)))
                from = "kafka";
        *oom |= gws_buf_printf(b, "%s%s=%.100s", b->len ? "; " : "", name,
                               gws_config_kv_secret(name) ? "***" : val) ==
                -1;
        if (from)
                *oom |= gws_buf_printf(b, " from \"%s\"", from) == -1;
        if (from && strcmp(kv->name, name))
                *oom |= gws_buf_printf(b, " (as %s)", kv->name) == -1;
        if (!from)
                *oom |= gws_buf_printf(b, " is %s's default",
                                       dr == RD_KAFKA_CONF_OK &&
                                               !strcmp(val, def)
                                           ? "librdkafka"
                                           : "gwsieve") == -1;
        return 1;
}

/* Writes to \p errstr "WHAT: REFUSAL (librdkafka refused the WHAT
 * configuration: NAME=VALUE from "kafka.consumer"; ...; set them under
 * ...)": librdkafka's text \p inner names properties, not the gwsieve key
 * that set them. Every word of the text that is a property of \p conf
 * (as given to rd_kafka_new()) is listed once; without one (or out of
 * memory) the text alone. */
static void refusal(const gws_config_t *cfg, rd_kafka_type_t type,
                    const rd_kafka_conf_t *conf, const char *what,
                    const char *inner, char *errstr, size_t errstr_size) {
        const char *sect = type == RD_KAFKA_CONSUMER ? "consumer" : "producer";
        rd_kafka_conf_t *dflt = rd_kafka_conf_new();
        gws_buf_t props = {0};
        char text[512], seen[8][128], *p, *q;
        int nseen = 0, oom = 0, i;
        size_t len;

        rd_kafka_conf_set_default_topic_conf(dflt, rd_kafka_topic_conf_new());
        /* one line */
        snprintf(text, sizeof(text), "%s", inner);
        for (p = text; *p; p++)
                if (*p == '\n' || *p == '\r' || *p == '\t')
                        *p = ' ';
        while (p > text && p[-1] == ' ')
                *--p = '\0';
        for (p = text; *p; p = q) {
                for (q = p; isalnum((unsigned char)*q) || *q == '.' ||
                            *q == '_' || *q == '-';
                     q++)
                        ;
                if (q == p) {
                        q++;
                        continue;
                }
                len = (size_t)(q - p);
                while (len > 0 && (p[len - 1] == '.' || p[len - 1] == '-'))
                        len--; /* a full stop */
                if (!len || len >= sizeof(seen[0]) || nseen == 8)
                        continue;
                memcpy(seen[nseen], p, len);
                seen[nseen][len] = '\0';
                for (i = 0; i < nseen && !same_prop(seen[i], seen[nseen]);
                     i++)
                        ;
                if (i == nseen && refusal_prop(&props, &oom, cfg, type, conf,
                                               dflt, seen[nseen]))
                        nseen++;
        }
        rd_kafka_conf_destroy(dflt);
        if (!nseen || oom)
                snprintf(errstr, errstr_size, "%s: %s", what, text);
        else
                snprintf(errstr, errstr_size,
                         "%s: %s (librdkafka refused the %s configuration: "
                         "%s; set %s under \"kafka.%s\" or \"kafka\", --set "
                         "kafka.%s.NAME=VALUE or -X %s.NAME=VALUE)",
                         what, text, what, props.buf,
                         nseen > 1 ? "them" : "it", sect, sect, sect);
        gws_buf_free(&props);
}

rd_kafka_t *gws_service_kafka_new(const gws_config_t *cfg,
                                  rd_kafka_type_t type, rd_kafka_conf_t *conf,
                                  const char *what, char *errstr,
                                  size_t errstr_size) {
        /* rd_kafka_new() adjusts properties nobody set before it checks
         * them: the refusal is explained from the conf as given. */
        rd_kafka_conf_t *given = rd_kafka_conf_dup(conf);
        rd_kafka_t *rk;
        char inner[512];

        if (!(rk = rd_kafka_new(type, conf, inner, sizeof(inner))))
                refusal(cfg, type, given, what, inner, errstr, errstr_size);
        rd_kafka_conf_destroy(given);
        return rk;
}

/* The value of \p name in \p conf, or in \p tdflt (a new topic conf) for
 * a topic property when \p conf has no topic conf. @returns 0 if it has
 * none (an unset string property). */
static int conf_val(const rd_kafka_conf_t *conf,
                    const rd_kafka_topic_conf_t *tdflt, const char *name,
                    char *buf, size_t size) {
        size_t len = size;
        if (rd_kafka_conf_get(conf, name, buf, &len) == RD_KAFKA_CONF_OK)
                return 1;
        len = size;
        return rd_kafka_topic_conf_get(tdflt, name, buf, &len) ==
               RD_KAFKA_CONF_OK;
}

/* Why rd_kafka_topic_new() refused a topic of the producer \p conf:
 * librdkafka 2.0.2 puts its reason only in a log line ("Incompatible
 * configuration settings for topic"), and rd_kafka_last_error() is just
 * __INVALID_ARG. The checks of its rd_kafka_topic_conf_finalize() are
 * made again here, in its words, so that refusal() can name their
 * properties. \p conf is the producer's, as rd_kafka_new() finalized it.
 * A default topic conf, if the producer has one, passed the same checks
 * in rd_kafka_new(); without one the topic gets a new conf, and only the
 * last check can fail (librdkafka counts linger.ms as set, since gwsieve
 * always sets it). @returns NULL if no check fails. */
static const char *topic_refusal_why(const rd_kafka_conf_t *conf) {
        rd_kafka_topic_conf_t *tdflt = rd_kafka_topic_conf_new();
        const char *why = NULL;
        char idem[16], acks[16], qs[16], tid[8], mto[32], tto[32], lg[32];
        int ok_idem = conf_val(conf, tdflt, "enable.idempotence", idem,
                               sizeof(idem)) &&
                      !strcmp(idem, "true"),
            ok_mto = conf_val(conf, tdflt, "message.timeout.ms", mto,
                              sizeof(mto));

        if (ok_idem && conf_val(conf, tdflt, "acks", acks, sizeof(acks)) &&
            strcmp(acks, "-1"))
                why = "`acks` must be set to `all` when `enable.idempotence` "
                      "is true";
        else if (ok_idem &&
                 conf_val(conf, tdflt, "queuing.strategy", qs, sizeof(qs)) &&
                 strcmp(qs, "fifo"))
                why = "`queuing.strategy` must be set to `fifo` when "
                      "`enable.idempotence` is true";
        else if (ok_idem && ok_mto &&
                 conf_val(conf, tdflt, "transactional.id", tid,
                          sizeof(tid)) &&
                 *tid &&
                 conf_val(conf, tdflt, "transaction.timeout.ms", tto,
                          sizeof(tto)) &&
                 strtod(mto, NULL) > strtod(tto, NULL))
                why = "`message.timeout.ms` must be set <= "
                      "`transaction.timeout.ms`";
        else if (ok_mto && strtod(mto, NULL) != 0 &&
                 conf_val(conf, tdflt, "linger.ms", lg, sizeof(lg)) &&
                 strtod(mto, NULL) <= strtod(lg, NULL))
                why = "`message.timeout.ms` must be greater than `linger.ms`";
        rd_kafka_topic_conf_destroy(tdflt);
        return why;
}

rd_kafka_topic_t *gws_service_topic_new(const gws_config_t *cfg,
                                        rd_kafka_t *rk, const char *topic,
                                        char *errstr, size_t errstr_size) {
        rd_kafka_topic_t *rkt;
        const char *why;
        char what[320];

        if ((rkt = rd_kafka_topic_new(rk, topic, NULL)))
                return rkt;
        snprintf(what, sizeof(what), "producer topic \"%s\"", topic);
        if (rd_kafka_last_error() == RD_KAFKA_RESP_ERR__INVALID_ARG &&
            (why = topic_refusal_why(rd_kafka_conf(rk))))
                refusal(cfg, RD_KAFKA_PRODUCER, rd_kafka_conf(rk), what, why,
                        errstr, errstr_size);
        else
                snprintf(errstr, errstr_size, "%s: %s", what,
                         rd_kafka_err2str(rd_kafka_last_error()));
        return NULL;
}

/* An assign-only consumer (never joins or commits): the group's id so
 * that it can read the committed offsets, the user's connection and
 * security properties. Used by the changelog's restores and by `gwsieve
 * state`. No opaque: its group lines must not count as the member's join
 * state (log_cb). */
rd_kafka_conf_t *gws_service_reader_conf(const gws_config_t *cfg,
                                         const char *client_id, char *errstr,
                                         size_t errstr_size) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();

        if (conf_set(conf, "group.id", cfg->group, "state", errstr,
                     errstr_size) ||
            conf_set(conf, "client.id", client_id, "state", errstr,
                     errstr_size) ||
            conf_apply(conf, cfg->kafka, producer_only, "kafka", errstr,
                       errstr_size) ||
            conf_apply(conf, cfg->kafka_consumer, NULL, "kafka.consumer",
                       errstr, errstr_size) ||
            fetch_max_conf(cfg, conf, "state", errstr, errstr_size) ||
            conf_set(conf, "enable.auto.commit", "false", "state", errstr,
                     errstr_size) ||
            conf_set(conf, "enable.auto.offset.store", "false", "state",
                     errstr, errstr_size) ||
            conf_set(conf, "enable.partition.eof", "true", "state", errstr,
                     errstr_size) ||
            /* A catch-up from an offset retention has deleted reads what
             * is left (and says what is missing); librdkafka's default,
             * latest, jumped to the end and learned nothing. After the
             * user's kafka.consumer.* settings: theirs are the main
             * consumer's. */
            conf_set(conf, "auto.offset.reset", "earliest", "state", errstr,
                     errstr_size) ||
            /* A restore reads to the end of a partition: the last
             * (empty) Fetch must come back fast (the mock waits the full
             * fetch.wait.max.ms for it; measured 2.1 s for 6 partitions
             * at 100 ms). */
            conf_set(conf, "fetch.wait.max.ms", "10", "state", errstr,
                     errstr_size)) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rd_kafka_conf_set_log_cb(conf, log_cb);
        return conf;
}

/* librdkafka >= 2.2 looks at a full queue again after
 * fetch.queue.backoff.ms (1 s by default); 10 ms makes the fetch wake-up
 * thread unnecessary. Before 2.2 the property does not exist: the thread
 * does it (fetch_wake()). Nothing with fetch_wakeup=false. A user's
 * kafka.consumer.fetch.queue.backoff.ms is applied after this one.
 * @returns 0. */
static int wake_conf(gws_service_t *svc, rd_kafka_conf_t *conf) {
        char inner[256];
        svc->wake_on = 0;
        if (!svc->cfg->fetch_wakeup)
                return 0; /* librdkafka's own behaviour */
        svc->wake_on = rd_kafka_conf_set(conf, "fetch.queue.backoff.ms", "10",
                                         inner, sizeof(inner)) !=
                       RD_KAFKA_CONF_OK;
        return 0;
}

/* The logical start offset of an auto.offset.reset value (librdkafka's
 * names and aliases); INVALID for "error" (no start without a commit). */
static int64_t reset_offset_of(const char *v) {
        if (!strcmp(v, "smallest") || !strcmp(v, "earliest") ||
            !strcmp(v, "beginning"))
                return RD_KAFKA_OFFSET_BEGINNING;
        if (!strcmp(v, "largest") || !strcmp(v, "latest") ||
            !strcmp(v, "end"))
                return RD_KAFKA_OFFSET_END;
        return RD_KAFKA_OFFSET_INVALID;
}

static rd_kafka_t *make_consumer(gws_service_t *svc, char *errstr,
                                 size_t errstr_size) {
        const gws_config_t *cfg = svc->cfg;
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk;

        /* Defaults first; the user's properties override them. */
        if (conf_set(conf, "group.id", cfg->group, "consumer", errstr,
                     errstr_size) ||
            conf_set(conf, "client.id", "gwsieve", "consumer", errstr,
                     errstr_size) ||
            /* Incremental rebalances keep the other partitions flowing
             * while one moves. librdkafka cannot mix it with eager
             * assignors in one list; a user may still choose "range". */
            conf_set(conf, "partition.assignment.strategy",
                     "cooperative-sticky", "consumer", errstr, errstr_size) ||
            /* We commit ourselves, only what has been delivered. */
            conf_set(conf, "enable.auto.commit", "false", "consumer", errstr,
                     errstr_size) ||
            conf_set(conf, "enable.auto.offset.store", "false", "consumer",
                     errstr, errstr_size) ||
            conf_set(conf, "auto.offset.reset", "earliest", "consumer",
                     errstr, errstr_size) ||
            /* Alert latency: a Fetch that finds no data is answered after
             * at most this (librdkafka's 500 ms default made the mock
             * cluster's alert latency p99 ~510 ms; a real broker answers
             * when data arrives, so this only bounds idle fetches). */
            conf_set(conf, "fetch.wait.max.ms", "100", "consumer", errstr,
                     errstr_size) ||
            /* Prefetch bound (librdkafka's default is 64 MB): while the
             * workers are behind, the main loop stops polling and this is
             * what librdkafka holds meanwhile (fetch.max.bytes: 1 MB,
             * fetch_max_conf()). With fetch_wake() a small queue no longer
             * stalls a catching-up consumer (1 s per fill before), so it
             * is sized for memory: bench/e2e_bench.sh, 3 runs each,
             * median peak RSS 77 MB at 16 MB, 64 MB at 8 MB, 52 MB at 4 MB
             * (rates 160-200k ev/s, 2-3x the kcat pass-through). */
            conf_set(conf, "queued.max.messages.kbytes", "4096", "consumer",
                     errstr, errstr_size) ||
            wake_conf(svc, conf) ||
            /* Consumer lag per partition (stats_cb). The group's join
             * state comes from the cgrp debug lines the moment it
             * changes (log_cb); the statistics are only its fallback.
             * Each report is ~1 KB of JSON per partition, which librdkafka
             * renders and we parse: at 100 ms over 96 partitions that
             * was 4% of the process's CPU under load and most of it idle
             * (bench/e2e_bench.sh). */
            conf_set(conf, "statistics.interval.ms", "1000", "consumer",
                     errstr, errstr_size) ||
            conf_set(conf, "debug", "cgrp", "consumer", errstr,
                     errstr_size) ||
            conf_apply(conf, cfg->kafka, producer_only, "kafka", errstr,
                       errstr_size) ||
            conf_apply(conf, cfg->kafka_consumer, NULL, "kafka.consumer",
                       errstr, errstr_size))
                goto err;
        if (fetch_max_conf(cfg, conf, "consumer", errstr, errstr_size))
                goto err;
        {
                /* Keep cgrp in whatever debug contexts the user asked for
                 * (log_cb needs its join-state lines). */
                char dbg[512];
                size_t dl = sizeof(dbg);
                if (rd_kafka_conf_get(conf, "debug", dbg, &dl) ==
                        RD_KAFKA_CONF_OK &&
                    !strstr(dbg, "cgrp") && !strstr(dbg, "all") &&
                    strlen(dbg) + 6 < sizeof(dbg)) {
                        strcat(dbg, *dbg ? ",cgrp" : "cgrp");
                        if (conf_set(conf, "debug", dbg, "consumer", errstr,
                                     errstr_size))
                                goto err;
                }
        }
        {
                /* auto.offset.reset as configured (start_offsets()). */
                char ar[32];
                size_t al = sizeof(ar);
                svc->reset_offset = RD_KAFKA_OFFSET_BEGINNING;
                if (rd_kafka_conf_get(conf, "auto.offset.reset", ar, &al) ==
                    RD_KAFKA_CONF_OK)
                        svc->reset_offset = reset_offset_of(ar);
                /* isolation.level as configured (stats_lag()). */
                al = sizeof(ar);
                svc->read_committed =
                    rd_kafka_conf_get(conf, "isolation.level", ar, &al) ==
                        RD_KAFKA_CONF_OK &&
                    !strcmp(ar, "read_committed");
        }
        {
                /* The prefetch bound as configured (fetch_wake()). */
                char qk[32];
                size_t ql = sizeof(qk);
                long kb = 4096;
                if (rd_kafka_conf_get(conf, "queued.max.messages.kbytes", qk,
                                      &ql) == RD_KAFKA_CONF_OK)
                        kb = strtol(qk, NULL, 10);
                svc->wake_bytes = (size_t)(kb > 0 ? kb : 1) * 512;
        }
        {
                /* stats_cb() feeds the lag gauge and the fetch watch: a
                 * user who turns the statistics off loses both, and the
                 * lag-based alert rules with them. Allowed, but said. */
                char si[32];
                size_t sl = sizeof(si);
                if (rd_kafka_conf_get(conf, "statistics.interval.ms", si,
                                      &sl) == RD_KAFKA_CONF_OK &&
                    strtol(si, NULL, 10) <= 0)
                        gws_log(GWS_LOG_WARNING, "CONFIG",
                                "consumer statistics.interval.ms is %s "
                                "(kafka / kafka.consumer): "
                                "gwsieve_consumer_lag stays empty, the "
                                "lag-based alert rules cannot fire, and "
                                "the fetch watch (fetch_stall_s) is off; "
                                "gwsieve's default is 1000",
                                si);
        }
        rd_kafka_conf_set_opaque(conf, svc);
        rd_kafka_conf_set_log_cb(conf, log_cb);
        rd_kafka_conf_set_error_cb(conf, error_cb);
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
        rd_kafka_conf_set_offset_commit_cb(conf, offset_commit_cb);
        rd_kafka_conf_set_stats_cb(conf, stats_cb);
        if (!(rk = gws_service_kafka_new(cfg, RD_KAFKA_CONSUMER, conf,
                                         "consumer", errstr, errstr_size)))
                goto err;
        conf = NULL; /* now owned by rk */
        rd_kafka_poll_set_consumer(rk);
        return rk;
err:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

static rd_kafka_t *make_producer(gws_service_t *svc, char *errstr,
                                 size_t errstr_size) {
        const gws_config_t *cfg = svc->cfg;
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk;
        char maxb[32];

        /* Outputs can be a little larger than the largest input (the
         * sieve member, DLQ envelope escaping): leave room for 2x. */
        snprintf(maxb, sizeof(maxb), "%lld",
                 (long long)(cfg->max_event_bytes * 2 + 65536 > 1000000
                                 ? cfg->max_event_bytes * 2 + 65536
                                 : 1000000));
        if (conf_set(conf, "client.id", "gwsieve", "producer", errstr,
                     errstr_size) ||
            /* No duplicates from internal retries, per-partition order. */
            conf_set(conf, "enable.idempotence", "true", "producer", errstr,
                     errstr_size) ||
            /* Batch for up to 50 ms. The producer's broker threads pay
             * per partition batch, and retained records spread over every
             * partition of the output topic: over 96 of them they took
             * ~0.2 CPU-s per 100k events at librdkafka's 5 ms, and per
             * thread (schedstat, 6 alternating runs each, medians) 0.064
             * at 20 ms, 0.029 at 50 and 0.025 at 100. 50 ms adds at most
             * 50 ms to alert latency (p99 target 250 ms). */
            conf_set(conf, "linger.ms", "50", "producer", errstr,
                     errstr_size) ||
            conf_set(conf, "message.max.bytes", maxb, "producer", errstr,
                     errstr_size))
                goto err;
        if (conf_apply(conf, cfg->kafka, consumer_only, "kafka", errstr,
                       errstr_size) ||
            conf_apply(conf, cfg->kafka_producer, NULL, "kafka.producer",
                       errstr, errstr_size))
                goto err;
        rd_kafka_conf_set_opaque(conf, svc);
        rd_kafka_conf_set_log_cb(conf, log_cb);
        rd_kafka_conf_set_error_cb(conf, error_cb);
        rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
        if (!(rk = gws_service_kafka_new(cfg, RD_KAFKA_PRODUCER, conf,
                                         "producer", errstr, errstr_size)))
                goto err;
        return rk;
err:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

/* ------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------ */

gws_service_t *gws_service_new(const gws_config_t *cfg, char *errstr,
                               size_t errstr_size) {
        gws_service_t *svc = calloc(1, sizeof(*svc));
        const char *topics[GWS_SINK__CNT];
        int i;

        if (!svc) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        svc->cfg = cfg;
        pthread_mutex_init(&svc->retry_lock, NULL);
        pthread_mutex_init(&svc->snap_lock, NULL);
        pthread_mutex_init(&svc->wake_lock, NULL);
        pthread_cond_init(&svc->wake_cond, NULL);
        svc->deferred = rd_kafka_topic_partition_list_new(0);
        if (!gws_config_kv_get(cfg->kafka, "bootstrap.servers") &&
            !gws_config_kv_get(cfg->kafka_consumer, "bootstrap.servers")) {
                snprintf(errstr, errstr_size,
                         "no Kafka bootstrap servers: pass --bootstrap "
                         "HOST:PORT, set GWSIEVE_BOOTSTRAP, or set "
                         "\"kafka\": {\"bootstrap.servers\": ...}");
                goto err;
        }
        if (!(svc->producer = make_producer(svc, errstr, errstr_size)) ||
            !(svc->consumer = make_consumer(svc, errstr, errstr_size)))
                goto err;
        topics[GWS_SINK_RETAINED] = cfg->topic_retained;
        topics[GWS_SINK_ALERTS] = cfg->topic_alerts;
        topics[GWS_SINK_DLQ] = cfg->topic_dlq;
        for (i = 0; i < GWS_SINK__CNT; i++) {
                if (!(svc->out_rkt[i] = gws_service_topic_new(
                          cfg, svc->producer, topics[i], errstr,
                          errstr_size)))
                        goto err;
        }
        if (gws_config_state_on(cfg)) {
                rd_kafka_conf_t *rconf = gws_service_reader_conf(
                    cfg, "gwsieve-restore", errstr, errstr_size);
                if (!rconf || !(svc->cl = gws_changelog_new(
                                    cfg, svc->producer, rconf, errstr,
                                    errstr_size)))
                        goto err;
        }
        svc->nworkers = cfg->workers;
        if (!(svc->workers = calloc((size_t)svc->nworkers,
                                    sizeof(*svc->workers)))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto err;
        }
        for (i = 0; i < svc->nworkers; i++) {
                worker_t *w = &svc->workers[i];
                w->svc = svc;
                w->id = i;
                if (wq_init(&w->q) == -1 ||
                    !(w->pl = gws_pipeline_new(cfg, errstr, errstr_size))) {
                        snprintf(errstr, errstr_size, "out of memory");
                        goto err;
                }
        }
        __atomic_store_n(&svc->last_poll_ms, gws_mono_ms(), __ATOMIC_RELEASE);
        if (cfg->http_listen && strcmp(cfg->http_listen, "off")) {
                if (!(svc->http = gws_http_start(cfg->http_listen,
                                                 http_handler, svc, errstr,
                                                 errstr_size)))
                        goto err;
                snapshot(svc);
                gws_log(GWS_LOG_NOTICE, "HTTP",
                        "serving /metrics /healthz /readyz on %s (port %d)",
                        cfg->http_listen, gws_http_port(svc->http));
        }
        return svc;
err:
        gws_service_destroy(svc);
        return NULL;
}

static int start_threads(gws_service_t *svc) {
        int i;
        char name[16];
        /* Named threads: `top -H` and perf tell them apart (librdkafka
         * names its own rdk:main, rdk:brokerN). */
        if (pthread_create(&svc->dr_thr, NULL, dr_main, svc))
                return -1;
        pthread_setname_np(svc->dr_thr, "gws-delivery");
        if (svc->wake_on) {
                if (pthread_create(&svc->wake_thr, NULL, wake_main, svc)) {
                        svc->wake_on = 0;
                        return -1;
                }
                pthread_setname_np(svc->wake_thr, "gws-fetchwake");
        }
        for (i = 0; i < svc->nworkers; i++) {
                if (pthread_create(&svc->workers[i].thr, NULL, worker_main,
                                   &svc->workers[i]))
                        return -1;
                snprintf(name, sizeof(name), "gws-worker%d", i % 1000);
                pthread_setname_np(svc->workers[i].thr, name);
        }
        return 0;
}

static void stop_workers(gws_service_t *svc) {
        int i;
        for (i = 0; i < svc->nworkers; i++) {
                wq_t *q = &svc->workers[i].q;
                pthread_mutex_lock(&q->lock);
                q->stop = 1;
                pthread_cond_broadcast(&q->cond);
                pthread_mutex_unlock(&q->lock);
        }
        /* A joined thread's handle is gone (glibc may unmap its stack):
         * clear it, since gws_service_destroy() stops the workers again. */
        for (i = 0; i < svc->nworkers; i++)
                if (svc->workers[i].thr) {
                        pthread_join(svc->workers[i].thr, NULL);
                        svc->workers[i].thr = 0;
                }
}

/* Per-partition counter arrays (main thread), grown on demand. */
static int counters_grow(gws_service_t *svc, int32_t partition) {
        int32_t n = svc->ncounters, i;
        uint64_t *c;
        int64_t *l;
        if (partition < n)
                return 0;
        if (partition < 0 || partition > 1000000)
                return -1;
        while (n <= partition)
                n = n ? n * 2 : 64;
        if (!(c = realloc(svc->consumed, (size_t)n * sizeof(*c))))
                return -1;
        svc->consumed = c;
        if (!(l = realloc(svc->lag, (size_t)n * sizeof(*l))))
                return -1;
        svc->lag = l;
        for (i = svc->ncounters; i < n; i++) {
                svc->consumed[i] = 0;
                svc->lag[i] = -1;
        }
        svc->ncounters = n;
        return 0;
}

static void count_consumed(gws_service_t *svc, int32_t partition) {
        if (counters_grow(svc, partition) == 0)
                svc->consumed[partition]++;
}

static void dispatch(gws_service_t *svc, rd_kafka_message_t *rkm) {
        worker_t *w;
        ptn_t *p;
        if (rkm->err) {
                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        rd_kafka_message_destroy(rkm);
                        return;
                }
                char pbuf[32] = "";
                svc->consumer_errors++;
                if (rkm->rkt && rkm->partition >= 0)
                        snprintf(pbuf, sizeof(pbuf), " [%d]",
                                 (int)rkm->partition);
                gws_log(rkm->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                                rkm->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
                            ? GWS_LOG_ERR
                            : GWS_LOG_WARNING,
                        "CONSUMER", "%s%s%s%s: %s",
                        rkm->rkt ? "topic " : "",
                        rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "",
                        rkm->rkt ? "" : "consumer",
                        pbuf, rd_kafka_message_errstr(rkm));
                if (rd_kafka_fatal_error(svc->consumer, NULL, 0))
                        set_fatal(svc, "consumer: %s",
                                  rd_kafka_message_errstr(rkm));
                rd_kafka_message_destroy(rkm);
                return;
        }
        p = ptn_lookup(svc, rkm->partition);
        if (p && p->restoring) {
                /* Fetched before the pause took hold: drop it and seek
                 * back to it once the state is restored. */
                if (p->hold_from < 0 || rkm->offset < p->hold_from)
                        p->hold_from = rkm->offset;
                rd_kafka_message_destroy(rkm);
                return;
        }
        count_consumed(svc, rkm->partition);
        if (!p) {
                /* Not (or no longer) ours: another member re-reads it. */
                rd_kafka_message_destroy(rkm);
                return;
        }
        if (rkm->offset <= p->last_consumed) {
                /* Within one assignment librdkafka should hand out each
                 * offset once (a restore's seek-back re-reads only what
                 * was dropped, never dispatched). The one cause seen,
                 * librdkafka restarting a running partition at the log
                 * start, is avoided by start_offsets(). Processed again,
                 * as at-least-once allows, but counted and named. */
                svc->rewinds++;
                if (!p->rewind_logged) {
                        p->rewind_logged = 1;
                        gws_log(GWS_LOG_WARNING, "CONSUMER",
                                "partition %d: offset %lld consumed again "
                                "(after %lld in this assignment); its "
                                "outputs repeat (logged once per "
                                "assignment, gwsieve_offsets_rewound_total)",
                                (int)rkm->partition, (long long)rkm->offset,
                                (long long)p->last_consumed);
                }
        }
        p->last_consumed = rkm->offset;
        w = &svc->workers[p->worker];
        if (w->nstage == w->stagecap) {
                size_t ncap = w->stagecap ? w->stagecap * 2 : 256;
                qitem_t *ns = realloc(w->stage, ncap * sizeof(*ns));
                if (!ns) {
                        rd_kafka_message_destroy(rkm);
                        set_fatal(svc, "out of memory queueing a message");
                        return;
                }
                w->stage = ns;
                w->stagecap = ncap;
        }
        /* the queue reference and the queued count: dispatch_flush() */
        w->stage[w->nstage++] = (qitem_t){rkm, p};
}

/* Hands the messages dispatch() staged to their workers. Runs after each
 * poll round and before anything that waits for the queues (rebalance,
 * shutdown). @locality main thread. */
static void dispatch_flush(gws_service_t *svc) {
        int i;
        size_t k, r;
        for (i = 0; i < svc->nworkers; i++) {
                worker_t *w = &svc->workers[i];
                if (!w->nstage)
                        continue;
                /* Each item's partition reference and queued count, once
                 * per run of one partition's messages (before the worker
                 * can see them). Staged items need no reference of their
                 * own: nothing drops a partition's table reference
                 * before this flush (rebalance_cb() flushes first). */
                for (k = 0; k < w->nstage; k = r) {
                        ptn_t *p = w->stage[k].p;
                        for (r = k + 1; r < w->nstage && w->stage[r].p == p;
                             r++)
                                ;
                        ptn_ref_n(p, (int)(r - k));
                        __atomic_add_fetch(&p->queued, (int64_t)(r - k),
                                           __ATOMIC_ACQ_REL);
                }
                if (wq_push_many(&w->q, w->stage, w->nstage) == -1) {
                        for (k = 0; k < w->nstage; k++) {
                                ptn_t *p = w->stage[k].p;
                                __atomic_sub_fetch(&p->queued, 1,
                                                   __ATOMIC_ACQ_REL);
                                rd_kafka_message_destroy(w->stage[k].rkm);
                                ptn_unref(p);
                        }
                        set_fatal(svc, "out of memory queueing messages");
                }
                w->nstage = 0;
        }
}

int gws_service_run(gws_service_t *svc, volatile sig_atomic_t *run) {
        const gws_config_t *cfg = svc->cfg;
        rd_kafka_topic_partition_list_t *sub;
        rd_kafka_resp_err_t err;
        int64_t now;
        int rc = 0;

        if (start_threads(svc) == -1) {
                gws_log(GWS_LOG_ERR, "SERVICE", "cannot start threads: %s",
                        strerror(errno));
                return -1;
        }
        sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, cfg->topic_input,
                                          RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(svc->consumer, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (err) {
                gws_log(GWS_LOG_ERR, "SERVICE", "subscribe to \"%s\": %s",
                        cfg->topic_input, rd_kafka_err2str(err));
                rc = -1;
                goto shutdown;
        }
        gws_log(GWS_LOG_NOTICE, "SERVICE",
                "consuming \"%s\" as group \"%s\" with %d worker(s); outputs "
                "\"%s\", \"%s\", \"%s\"",
                cfg->topic_input, cfg->group, cfg->workers,
                cfg->topic_retained, cfg->topic_alerts, cfg->topic_dlq);
        svc->last_commit_ms = svc->last_stats_ms = gws_mono_ms();

        while (*run && !__atomic_load_n(&svc->fatal, __ATOMIC_ACQUIRE)) {
                rd_kafka_message_t *rkm;
                int n = 0;
                /* Up to 100 ms per poll: short enough to react to a
                 * signal and to commit on time, long enough to idle
                 * cheaply. Then drain what is already buffered. */
                rkm = throttle(svc, gws_mono_ms())
                          ? NULL
                          : rd_kafka_consumer_poll(svc->consumer, 100);
                while (rkm) {
                        svc->drain_bytes += rkm->len;
                        dispatch(svc, rkm);
                        if (++n >= 1000)
                                break;
                        rkm = rd_kafka_consumer_poll(svc->consumer, 0);
                }
                dispatch_flush(svc);
                backpressure(svc);
                restores_collect(svc);
                snaps_release(svc);
                now = gws_mono_ms();
                start_retry(svc, now);
                fetch_wake(svc, now, n < 1000);
                __atomic_store_n(&svc->last_poll_ms, now, __ATOMIC_RELEASE);
                if (svc->http && now - svc->last_snap_ms >= 1000)
                        snapshot(svc);
                if (now - svc->last_commit_ms >= cfg->commit_interval_ms) {
                        /* Not while the group rebalances (see stats_cb). */
                        if (!__atomic_load_n(&svc->rebalancing,
                                             __ATOMIC_ACQUIRE)) {
                                commit_done(svc, NULL, 0);
                        } else {
                                svc->commits_postponed++;
                                gws_log(GWS_LOG_DEBUG, "COMMIT",
                                        "postponed: the group is "
                                        "rebalancing");
                        }
                        svc->last_commit_ms = now;
                }
                if (cfg->stats_interval_ms &&
                    now - svc->last_stats_ms >= cfg->stats_interval_ms)
                        log_progress(svc, 0);
        }

shutdown:
        /* First: a restore catching up (or looking up a committed offset)
         * ends now instead of at state.restore_timeout_ms, which the
         * shutdown once waited for (gws_changelog_destroy() joined it:
         * 19.8 s with a 20 s limit, itest state_stop_during_catch_up). Its
         * partition stays paused, neither installed nor snapshotted
         * (snapshot_revoked() skips it). */
        if (svc->cl)
                gws_changelog_stop(svc->cl);
        __atomic_store_n(&svc->stopping, 1, __ATOMIC_RELEASE);
        wake_stop(svc); /* no more fetching to wake */
        if (__atomic_load_n(&svc->fatal, __ATOMIC_ACQUIRE)) {
                rc = -1;
                gws_log(GWS_LOG_ERR, "SERVICE",
                        "stopping on a fatal error: %s; offsets not yet done "
                        "stay uncommitted and will be re-read",
                        svc->fatal_reason);
        } else {
                gws_log(GWS_LOG_NOTICE, "SERVICE",
                        "stopping: draining queued work (up to %d ms)",
                        cfg->shutdown_timeout_ms);
                if (!wait_idle(svc, NULL, cfg->shutdown_timeout_ms))
                        gws_log(GWS_LOG_WARNING, "SERVICE",
                                "not everything was delivered within %d ms; "
                                "undelivered offsets stay uncommitted",
                                cfg->shutdown_timeout_ms);
                commit_done(svc, NULL, 1);
        }
        /* Leaves the group; the revoke callback commits what is done. */
        err = rd_kafka_consumer_close(svc->consumer);
        if (err)
                gws_log(GWS_LOG_WARNING, "SERVICE", "consumer close: %s",
                        rd_kafka_err2str(err));
        /* Closed: nothing commits any more. Workers stop waiting for
         * room in the producer queue (brokers down: up to
         * message.timeout.ms per wait); what they leave is not
         * committed and is re-read by the next owner. */
        __atomic_store_n(&svc->abandon, 1, __ATOMIC_RELEASE);
        stop_workers(svc);
        __atomic_store_n(&svc->dr_stop, 1, __ATOMIC_RELEASE);
        pthread_join(svc->dr_thr, NULL);
        svc->dr_thr = 0;
        {
                int64_t until = gws_mono_ms() + cfg->shutdown_timeout_ms;
                size_t left;
                while ((left = retries_run(svc)) > 0 &&
                       gws_mono_ms() < until)
                        rd_kafka_poll(svc->producer, 100);
                if (left)
                        gws_log(GWS_LOG_WARNING, "SERVICE",
                                "%zu failed deliveries not produced again "
                                "at exit (producer queue full); their input "
                                "offsets were not committed",
                                left);
        }
        rd_kafka_flush(svc->producer, cfg->shutdown_timeout_ms);
        if (rd_kafka_outq_len(svc->producer) > 0)
                gws_log(GWS_LOG_WARNING, "SERVICE",
                        "%d output record(s) not delivered at exit; their "
                        "input offsets were not committed",
                        rd_kafka_outq_len(svc->producer));
        log_progress(svc, 1);
        snapshot(svc); /* final figures for a last scrape */
        return rc;
}

void gws_service_destroy(gws_service_t *svc) {
        int i;
        if (!svc)
                return;
        gws_http_stop(svc->http); /* first: its handler reads svc */
        svc->http = NULL;
        if (svc->dr_thr) {
                __atomic_store_n(&svc->dr_stop, 1, __ATOMIC_RELEASE);
                pthread_join(svc->dr_thr, NULL);
        }
        wake_stop(svc);
        if (svc->workers) {
                stop_workers(svc);
                for (i = 0; i < svc->nworkers; i++) {
                        qitem_t it;
                        int busy;
                        /* Anything left (fatal stop): release it. */
                        while (svc->workers[i].q.items &&
                               wq_pop(&svc->workers[i].q, &it, &busy)) {
                                rd_kafka_message_destroy(it.rkm);
                                ptn_unref(it.p);
                        }
                        if (svc->workers[i].q.items)
                                wq_destroy(&svc->workers[i].q);
                        free(svc->workers[i].stage);
                        gws_pipeline_destroy(svc->workers[i].pl);
                        gws_pipeline_msg_free(&svc->workers[i].pm[0]);
                        gws_pipeline_msg_free(&svc->workers[i].pm[1]);
                        gws_buf_free(&svc->workers[i].sraw);
                }
                free(svc->workers);
        }
        for (i = 0; i < svc->nptns; i++)
                if (svc->ptns[i])
                        ptn_unref(svc->ptns[i]);
        free(svc->ptns);
        free(svc->app_paused);
        if (svc->consumer)
                rd_kafka_destroy(svc->consumer);
        for (i = 0; i < GWS_SINK__CNT; i++)
                if (svc->out_rkt[i])
                        rd_kafka_topic_destroy(svc->out_rkt[i]);
        if (svc->producer) {
                /* Purge what could not be delivered (fatal path) so that
                 * destroy does not wait for it. */
                rd_kafka_purge(svc->producer, RD_KAFKA_PURGE_F_QUEUE |
                                                  RD_KAFKA_PURGE_F_INFLIGHT);
                rd_kafka_poll(svc->producer, 0);
                /* Its delivery reports are served: the changelog (and
                 * its topic handle on the producer) can go. */
                gws_changelog_destroy(svc->cl);
                svc->cl = NULL;
                rd_kafka_destroy(svc->producer);
        }
        while (svc->retries) {
                retry_t *r = svc->retries;
                svc->retries = r->next;
                inflight_release(r->inf);
                free(r->key);
                free(r->val);
                free(r);
        }
        /* Last: every other reference is gone (queues, table, delivery
         * reports, retries) and no thread is left; the kept ones never
         * go. */
        while (svc->kept) {
                ptn_t *p = svc->kept;
                svc->kept = p->kept_next;
                ptn_free(p);
        }
        pthread_mutex_destroy(&svc->retry_lock);
        pthread_mutex_destroy(&svc->snap_lock);
        pthread_mutex_destroy(&svc->wake_lock);
        pthread_cond_destroy(&svc->wake_cond);
        gws_buf_free(&svc->snap);
        gws_buf_free(&svc->sraw);
        gws_buf_free(&svc->srec);
        gws_changelog_destroy(svc->cl); /* if the producer never existed */
        if (svc->deferred)
                rd_kafka_topic_partition_list_destroy(svc->deferred);
        free(svc->consumed);
        free(svc->lag);
        gws_json_free(&svc->stats_doc);
        free(svc);
}
