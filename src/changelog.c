/* changelog.c - snapshots to the state topic and their restore with
 * catch-up (changelog.h has the design and the thread rules). */
#include "gwsieve/changelog.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gwsieve/json.h"
#include "gwsieve/log.h"
#include "gwsieve/pipeline.h"
#include "gwsieve/service.h"

typedef struct job_s {
        int32_t partition;
        uint64_t gen;
        int64_t committed; /* as the caller knows it, or
                            * GWS_COMMITTED_UNKNOWN */
        int64_t t0;
        int64_t deadline; /* the restore's one deadline: its read, its
                           * committed offset's lookup and its catch-up
                           * end then (set by its first read, kept when
                           * it is read again: run_batch()); 0 before */
        gws_restore_t *res; /* its result, allocated with the job: the
                             * restore thread must not fail to post one
                             * (the partition would stay paused) */
        struct job_s *next;
} job_t;

static void job_free(job_t *job) {
        gws_restore_free(job->res);
        free(job);
}

struct gws_changelog_s {
        const gws_config_t *cfg;
        rd_kafka_t *producer;  /* borrowed */
        rd_kafka_topic_t *rkt; /* state topic, on the producer */
        rd_kafka_t *rc;        /* restore consumer (restore thread only) */
        gws_pipeline_t *pl;    /* catch-up parsing (restore thread only) */
        int nstate;            /* partitions of the state topic */
        pthread_t thr;
        int started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        job_t *jobs, *jobs_tail;        /* under lock */
        gws_restore_t *done, *done_tail; /* under lock */
        int stop;                        /* under lock */
        int stopping; /* atomic: gws_changelog_stop(); also set by
                       * destroy before stop */
        uint8_t *held;  /* under lock: [input partition] 1 = its snapshots
                         * are held (changelog.h, "Holding") */
        int32_t nheld_cap; /* under lock: entries of held (grown by
                            * gws_changelog_restore(), so that the
                            * restore thread never fails to set one) */
        int nheld;      /* set under lock, read atomically: held
                         * partitions (0: saves skip the lock) */
        int pending;                     /* atomic: unacknowledged */
        gws_changelog_stats_t st;        /* atomics */
        char marker; /* its address is the opaque of snapshot messages */
};

#define ADD(field, v) __atomic_add_fetch(&cl->st.field, (v), __ATOMIC_RELAXED)

/* @returns 1 once gws_changelog_stop() (or destroy) was called.
 * @locality any thread. */
static int stopping(const gws_changelog_t *cl) {
        return __atomic_load_n(&cl->stopping, __ATOMIC_ACQUIRE);
}

/* Sleeps \p ms, in steps of 10 ms so that a stop ends it early (a
 * shutdown must not wait for a retry's backoff). */
static void nap(const gws_changelog_t *cl, int ms) {
        while (ms > 0 && !stopping(cl)) {
                int step = ms < 10 ? ms : 10;
                usleep((useconds_t)step * 1000);
                ms -= step;
        }
}

/* Restores taken in one read of a state partition (at most). Each holds
 * its latest record (compressed) until it is loaded: together at most the
 * compressed size of the state the batch restores. */
#define RESTORE_BATCH 128

/* ------------------------------------------------------------------------
 * writing
 * ------------------------------------------------------------------------ */

int gws_changelog_held(gws_changelog_t *cl, int32_t partition) {
        int held;
        if (!__atomic_load_n(&cl->nheld, __ATOMIC_ACQUIRE))
                return 0; /* the common case: no lock */
        pthread_mutex_lock(&cl->lock);
        held = partition >= 0 && partition < cl->nheld_cap &&
               cl->held[partition];
        pthread_mutex_unlock(&cl->lock);
        return held;
}

/* Counts and logs a snapshot not taken because \p partition is held.
 * @returns 1 if it is. */
static int save_held(gws_changelog_t *cl, int32_t partition,
                     int64_t offset) {
        if (!gws_changelog_held(cl, partition))
                return 0;
        /* Logged when the hold began (hold()), not per snapshot. */
        ADD(held, 1);
        gws_log(GWS_LOG_DEBUG, "STATE",
                "partition %d: snapshot at offset %lld held", (int)partition,
                (long long)offset);
        return 1;
}

int gws_changelog_encode(gws_changelog_t *cl, int32_t partition,
                         int64_t offset, int64_t delivered,
                         const gws_detect_t *det, gws_buf_t *raw,
                         gws_buf_t *rec) {
        char err[256];
        gws_detect_stats_t ds;

        if (save_held(cl, partition, offset))
                return 1;
        gws_buf_reset(raw);
        gws_detect_stats(det, &ds);
        if (gws_detect_save(det, raw) == -1 ||
            gws_state_encode(rec, cl->cfg->group, cl->cfg->topic_input,
                             partition, offset, delivered,
                             (uint32_t)ds.entities,
                             raw->buf, raw->len, cl->cfg->state_zstd_level,
                             err, sizeof(err)) == -1) {
                ADD(failed, 1);
                gws_log(GWS_LOG_WARNING, "STATE",
                        "partition %d: snapshot not written: %s",
                        (int)partition,
                        raw->len ? err : "out of memory");
                return -1;
        }
        return 0;
}

int gws_changelog_put(gws_changelog_t *cl, int32_t partition,
                      int64_t offset, const gws_buf_t *rec, size_t raw_len,
                      int wait) {
        char key[512];
        size_t klen;
        int backoff = 0;

        if (save_held(cl, partition, offset))
                return 1;
        klen = gws_state_key(key, sizeof(key), cl->cfg->group,
                             cl->cfg->topic_input, partition);
        __atomic_add_fetch(&cl->pending, 1, __ATOMIC_ACQ_REL);
        for (;;) {
                if (rd_kafka_produce(cl->rkt, partition % cl->nstate,
                                     RD_KAFKA_MSG_F_COPY, rec->buf, rec->len,
                                     key, klen, &cl->marker) == 0)
                        break;
                if (rd_kafka_last_error() == RD_KAFKA_RESP_ERR__QUEUE_FULL &&
                    !wait) {
                        __atomic_sub_fetch(&cl->pending, 1, __ATOMIC_ACQ_REL);
                        return 2;
                }
                if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL ||
                    backoff > 5000) {
                        __atomic_sub_fetch(&cl->pending, 1, __ATOMIC_ACQ_REL);
                        ADD(failed, 1);
                        gws_log(GWS_LOG_WARNING, "STATE",
                                "partition %d: snapshot (%zu bytes) not "
                                "produced to \"%s\": %s",
                                (int)partition, rec->len,
                                cl->cfg->state_topic,
                                rd_kafka_err2str(rd_kafka_last_error()));
                        return -1;
                }
                usleep(10000);
                backoff += 10;
        }
        ADD(bytes, rec->len);
        ADD(raw_bytes, raw_len);
        gws_log(GWS_LOG_DEBUG, "STATE",
                "partition %d: snapshot at offset %lld, %u entities, %zu "
                "bytes (%zu raw)",
                (int)partition, (long long)offset,
                gws_state_entities(rec->buf, rec->len), rec->len, raw_len);
        return 0;
}

int gws_changelog_save(gws_changelog_t *cl, int32_t partition,
                       int64_t offset, int64_t delivered,
                       const gws_detect_t *det,
                       gws_buf_t *raw, gws_buf_t *rec) {
        int rc = gws_changelog_encode(cl, partition, offset, delivered, det,
                                      raw, rec);
        return rc ? rc
                  : gws_changelog_put(cl, partition, offset, rec, raw->len,
                                      1);
}

int gws_changelog_owns(const gws_changelog_t *cl,
                       const rd_kafka_message_t *rkm) {
        return rkm->_private == &cl->marker;
}

void gws_changelog_on_delivery(gws_changelog_t *cl,
                               const rd_kafka_message_t *rkm) {
        if (rkm->err) {
                ADD(failed, 1);
                gws_log(GWS_LOG_WARNING, "STATE",
                        "snapshot of %.*s not delivered to \"%s\": %s "
                        "(the previous snapshot stays the latest)",
                        (int)rkm->key_len, (const char *)rkm->key,
                        cl->cfg->state_topic, rd_kafka_err2str(rkm->err));
        } else {
                ADD(written, 1);
        }
        __atomic_sub_fetch(&cl->pending, 1, __ATOMIC_ACQ_REL);
}

int gws_changelog_wait_delivered(gws_changelog_t *cl, int timeout_ms) {
        int64_t deadline = gws_mono_ms() + timeout_ms;
        while (__atomic_load_n(&cl->pending, __ATOMIC_ACQUIRE) > 0) {
                if (gws_mono_ms() >= deadline)
                        return 0;
                usleep(2000);
        }
        return 1;
}

/* ------------------------------------------------------------------------
 * restoring (restore thread)
 * ------------------------------------------------------------------------ */

/* Asks for \p topic's metadata, waiting up to \p timeout_ms. With
 * \p leaders (NULL: not wanted), *\p leaders is set to an array of the
 * leader of each partition (-1: none), the caller's to free.
 * @returns \p topic's partition count, or 0 with \p *err (out of memory:
 * RD_KAFKA_RESP_ERR__FAIL). */
static int topic_partitions(rd_kafka_t *rk, const char *topic,
                            int timeout_ms, int32_t **leaders,
                            rd_kafka_resp_err_t *err) {
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_topic_t *mt = rd_kafka_topic_new(rk, topic, NULL);
        int i, n = 0;
        *err = mt ? rd_kafka_metadata(rk, 0, mt, &md,
                                      timeout_ms > 0 ? timeout_ms : 1)
                  : rd_kafka_last_error();
        if (mt)
                rd_kafka_topic_destroy(mt);
        if (!*err && (md->topic_cnt != 1 || md->topics[0].err))
                *err = md->topic_cnt == 1 ? md->topics[0].err
                                          : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (!*err && (n = md->topics[0].partition_cnt) <= 0)
                *err = RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
        if (!*err && leaders) {
                if (!(*leaders = malloc(sizeof(**leaders) * (size_t)n))) {
                        *err = RD_KAFKA_RESP_ERR__FAIL;
                } else {
                        for (i = 0; i < n; i++)
                                (*leaders)[i] = -1;
                        for (i = 0; i < n; i++) {
                                const rd_kafka_metadata_partition_t *mp =
                                    &md->topics[0].partitions[i];
                                if (mp->id >= 0 && mp->id < n)
                                        (*leaders)[mp->id] = mp->leader;
                        }
                }
        }
        if (md)
                rd_kafka_metadata_destroy(md);
        return *err ? 0 : n;
}

/* Where the next owner of a partition starts processing when its
 * snapshot (\p info) is ahead of the group's \p committed offset: the
 * snapshot's delivered offset, if above the commit (the events below it
 * are in the state and their outputs were acknowledged: the lost commit).
 * Only with a commit: without one (the group's offsets expired, or the
 * topic was recreated) nothing is skipped. @returns it, or -1. */
static int64_t skip_to(int64_t committed, const gws_state_info_t *info) {
        return committed >= 0 && info->delivered > committed
                   ? info->delivered
                   : -1;
}

/* The largest raw snapshot a restore accepts: twice the process's whole
 * entity budget (a snapshot's raw form takes about what its entities take
 * in memory: 264 and 276 bytes per entity in test_state's figures), so a
 * forged or broken size is refused before room is reserved for it. */
static size_t max_raw(const gws_config_t *cfg) {
        return (size_t)cfg->det_max_state_mb << 21;
}

/* A snapshot gws_detect_load() refused: settings or format (\p why). */
static gws_state_result_t load_result(const char *why) {
        return strstr(why, "incompatible") || strstr(why, "format")
                   ? GWS_STATE_INCOMPATIBLE
                   : GWS_STATE_CORRUPT;
}

static int assign_one(rd_kafka_t *rk, const char *topic, int32_t partition,
                      int64_t offset) {
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_resp_err_t err;
        rd_kafka_topic_partition_list_add(l, topic, partition)->offset =
            offset;
        err = rd_kafka_assign(rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        return err ? -1 : 0;
}

/* 1 if a consumer error on a partition will not pass by waiting: the
 * broker refuses this client (no Read on the topic, no access to the
 * cluster, authentication failed). A read, a catch-up or an end-offset
 * lookup that gets one gives up on that partition at once, with that
 * error as the reason, instead of at its deadline (librdkafka 2.0.2
 * reports it once and keeps fetching: the whole state.restore_timeout_ms
 * went by, then "timed out: nothing fetched"; itest state_read_refused). */
static int read_refused(rd_kafka_resp_err_t err) {
        switch (err) {
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
        case RD_KAFKA_RESP_ERR__AUTHENTICATION:
                return 1;
        default:
                return 0;
        }
}

/* One partition's read (read_partitions()): when it fails, set by the
 * caller, and how it ended. */
typedef struct {
        int64_t deadline; /* in: it fails after this (gws_mono_ms()) */
        int64_t since;    /* in: read since (its "timed out after") */
        int ok;           /* read to its end */
        int pending;      /* set aside: nothing fetched, not failed (the
                           * quiet period); read it again */
        int timed_out;    /* failed at its deadline */
        char why[200];    /* if failed */
} part_read_t;

/* Reads partitions \p sps[0..n) of \p topic, each from its low to its
 * high watermark, all at once with \p rk (assign only: their fetches and
 * round trips overlap), handing each record to \p cb (-1 from it: out of
 * memory, that partition's read fails); records of one partition come in
 * offset order. Partition sps[i] fails at res[i].deadline. Each partition's end is the high watermark of the fetch
 * that brought its first record (librdkafka keeps it per partition), or
 * the end of partition event (empty, or read up to it): no watermark
 * query, so nothing in the read blocks past \p deadline (the poll waits
 * 100 ms at most), and a partition that cannot be fetched (no leader, a
 * broker down) fails alone at the deadline while the others are read.
 * It once asked ListOffsets for the watermarks of all of them in one
 * call, which blocked for a fixed 10 s whatever the deadline and failed
 * the whole read for one partition.
 *
 * With \p quiet_ms > 0 the read also ends early, once some partitions
 * are over (read or failed), every other one has had nothing fetched at
 * all, and no record or end came for \p quiet_ms: those are set aside
 * (res[i].pending), so that the caller can use what was read without
 * waiting for their deadlines (a state partition without a leader once
 * held every restore of the batch for state.restore_timeout_ms). A
 * partition that fetched something is never set aside, however slow.
 * \p check (NULL: none) is asked between polls: READ_STOP fails
 * everything not over, READ_YIELD (other work waiting) sets aside the
 * partitions that fetched nothing once \p quiet_ms passed without
 * progress, whether or not others are over.
 * \p down (NULL: none) is asked between polls about each partition that
 * has fetched nothing yet: 1 (its reason in \p why) fails it at once,
 * before its deadline (`gwsieve state`: its leader is down or missing).
 * Both get \p check_arg.
 * \p res[i] says how partition sps[i]'s read ended. @returns the number
 * of partitions that failed. */
enum { READ_GO, READ_YIELD, READ_STOP };
static int read_partitions(rd_kafka_t *rk, const char *topic,
                           const int32_t *sps, int n, int quiet_ms,
                           int (*check)(void *arg),
                           int (*down)(void *arg, int32_t partition,
                                       char *why, size_t size),
                           void *check_arg,
                           int (*cb)(void *opaque,
                                     const rd_kafka_message_t *m),
                           void *opaque, part_read_t *res) {
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
        int64_t *hi = calloc((size_t)(n > 0 ? n : 1), sizeof(*hi));
        int64_t *next = calloc((size_t)(n > 0 ? n : 1), sizeof(*next));
        int64_t moved = gws_mono_ms(); /* the last record or end */
        int i, left = n, failed = 0, assigned = 0;

        for (i = 0; i < n; i++) {
                res[i].ok = res[i].pending = res[i].timed_out = 0;
                res[i].why[0] = '\0';
        }
        if (!hi || !next) {
                for (i = 0; i < n; i++)
                        snprintf(res[i].why, sizeof(res[i].why),
                                 "out of memory");
                failed = n;
                goto out;
        }
        for (i = 0; i < n; i++) {
                rd_kafka_topic_partition_list_add(l, topic, sps[i])->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
                hi[i] = -1; /* not known before its first fetch */
                next[i] = -1; /* nothing read yet (the log start may be
                               * past 0) */
        }
        if (rd_kafka_assign(rk, l)) {
                for (i = 0; i < n; i++)
                        snprintf(res[i].why, sizeof(res[i].why),
                                 "cannot read \"%s\"", topic);
                failed = n;
                goto out;
        }
        assigned = 1;
        while (left) {
                rd_kafka_message_t *m;
                int64_t now = gws_mono_ms();
                int go = check ? check(check_arg) : READ_GO,
                    halt = go == READ_STOP, quiet;
                for (i = 0; i < n; i++) {
                        char at[64] = ": nothing fetched";
                        if (res[i].ok || res[i].why[0] ||
                            (!halt && now <= res[i].deadline))
                                continue;
                        if (halt) {
                                snprintf(res[i].why, sizeof(res[i].why),
                                         "reading \"%s\" [%d]: stopped",
                                         topic, (int)sps[i]);
                        } else {
                                if (hi[i] >= 0)
                                        snprintf(at, sizeof(at),
                                                 " at offset %lld of %lld",
                                                 (long long)next[i],
                                                 (long long)(hi[i] < INT64_MAX
                                                                 ? hi[i]
                                                                 : -1));
                                snprintf(res[i].why, sizeof(res[i].why),
                                         "reading \"%s\" [%d] timed out "
                                         "after %lld ms%s",
                                         topic, (int)sps[i],
                                         (long long)(now - res[i].since), at);
                                res[i].timed_out = 1;
                        }
                        failed++;
                        left--;
                }
                for (i = 0; down && !halt && i < n; i++) {
                        char why[128];
                        if (res[i].ok || res[i].why[0] || next[i] >= 0 ||
                            !down(check_arg, sps[i], why, sizeof(why)))
                                continue;
                        snprintf(res[i].why, sizeof(res[i].why),
                                 "reading \"%s\" [%d]: %s; nothing fetched "
                                 "after %lld ms",
                                 topic, (int)sps[i], why,
                                 (long long)(now - res[i].since));
                        failed++;
                        left--;
                }
                quiet = left && quiet_ms > 0 &&
                        (left < n || go == READ_YIELD) &&
                        now - moved >= quiet_ms;
                for (i = 0; quiet && i < n; i++)
                        if (!res[i].ok && !res[i].why[0] && next[i] >= 0)
                                quiet = 0; /* slow, not stuck */
                if (quiet) {
                        for (i = 0; i < n; i++)
                                if (!res[i].ok && !res[i].why[0])
                                        res[i].pending = 1;
                        break;
                }
                if (!left)
                        break;
                if (!(m = rd_kafka_consumer_poll(rk, 100)))
                        continue;
                for (i = 0; i < n && sps[i] != m->partition; i++)
                        ;
                if (i == n || res[i].ok || res[i].why[0]) {
                        /* not asked for, or that partition is over */
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (m->err) {
                        if (read_refused(m->err)) {
                                snprintf(res[i].why, sizeof(res[i].why),
                                         "reading \"%s\" [%d]: %s", topic,
                                         (int)m->partition,
                                         rd_kafka_message_errstr(m));
                                failed++;
                                left--;
                        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                                gws_log(GWS_LOG_WARNING, "STATE",
                                        "reading \"%s\" [%d]: %s", topic,
                                        (int)m->partition,
                                        rd_kafka_message_errstr(m));
                        } else {
                                /* the end: empty, read up to it, or the
                                 * rest deleted meanwhile */
                                res[i].ok = 1;
                                left--;
                                moved = gws_mono_ms();
                        }
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (hi[i] < 0) {
                        /* set by the fetch response before its records
                         * were queued; unknown (not expected): up to the
                         * end of partition event */
                        int64_t lo;
                        if (rd_kafka_get_watermark_offsets(rk, topic, sps[i],
                                                           &lo, &hi[i]) ||
                            hi[i] < 0)
                                hi[i] = INT64_MAX;
                }
                next[i] = m->offset + 1;
                moved = gws_mono_ms();
                if (cb(opaque, m) == -1) {
                        snprintf(res[i].why, sizeof(res[i].why),
                                 "out of memory");
                        failed++;
                        left--;
                } else if (next[i] >= hi[i]) {
                        res[i].ok = 1;
                        left--;
                }
                rd_kafka_message_destroy(m);
        }
out:
        if (assigned)
                rd_kafka_assign(rk, NULL);
        rd_kafka_topic_partition_list_destroy(l);
        free(hi);
        free(next);
        return failed;
}

/* The latest record under each of a batch's keys (read_latest()). */
typedef struct {
        int n;
        const char **key;
        size_t *klen;
        const int32_t *sp; /* [n]: where a restore looks for key i */
        gws_buf_t *out;    /* [n] */
        int *found;        /* [n] */
} latest_t;

static int latest_cb(void *opaque, const rd_kafka_message_t *m) {
        latest_t *l = opaque;
        int i;
        for (i = 0; i < l->n; i++) {
                /* only on its own state partition: after a change of
                 * the state topic's partition count an older record
                 * elsewhere is not the latest */
                if (m->partition != l->sp[i] || m->key_len != l->klen[i] ||
                    memcmp(m->key, l->key[i], l->klen[i]))
                        continue;
                if (!m->len) {
                        l->found[i] = 0; /* a tombstone: state deleted */
                        return 0;
                }
                gws_buf_reset(&l->out[i]);
                l->found[i] = 1; /* a later one replaces it */
                return gws_buf_append(&l->out[i], m->payload, m->len);
        }
        return 0;
}

/* How long a restore's read waits, with nothing coming, before it sets
 * aside the state partitions that fetched nothing (read_partitions()):
 * a tenth of state.restore_timeout_ms, between 100 ms and 1 s. */
static int quiet_ms(const gws_config_t *cfg) {
        int q = cfg->state_restore_timeout_ms / 10;
        return q < 100 ? 100 : q > 1000 ? 1000 : q;
}

/* A batch's read (read_latest()): stopped by gws_changelog_stop(),
 * yielding to restores queued meanwhile if they fit in the batch. */
typedef struct {
        gws_changelog_t *cl;
        int n; /* jobs in the batch */
} read_check_t;

static int read_check(void *arg) {
        const read_check_t *rc = arg;
        int go;
        if (stopping(rc->cl))
                return READ_STOP;
        pthread_mutex_lock(&rc->cl->lock);
        go = rc->cl->stop                                  ? READ_STOP
             : rc->cl->jobs && rc->n < RESTORE_BATCH ? READ_YIELD
                                                     : READ_GO;
        pthread_mutex_unlock(&rc->cl->lock);
        return go;
}

/* Reads the \p nsp state partitions \p sps of a batch of \p n jobs at
 * once up to their high watermarks (each until its res[].deadline) and
 * keeps the latest value under each key of \p l; \p res says how each
 * read ended, some perhaps set aside (pending: read_partitions()), also
 * for restores queued meanwhile. @returns the number that failed. */
static int read_latest(gws_changelog_t *cl, int n, const int32_t *sps,
                       int nsp, latest_t *l, part_read_t *res) {
        read_check_t rc = {cl, n};
        ADD(reads, (uint64_t)nsp);
        return read_partitions(cl->rc, cl->cfg->state_topic, sps, nsp,
                               quiet_ms(cl->cfg), read_check, NULL, &rc,
                               latest_cb, l, res);
}

/* Re-reads input \p partition from \p from up to (not including) \p to
 * into \p det without outputs; \p det then holds every event below
 * *\p reached (\p to, or less when the deadline or a stop ended it).
 * Looks for gws_changelog_stop() and \p deadline before each poll (100 ms
 * at most) and each event: *\p stopped says a stop ended the catch-up (a
 * shutdown once waited for the catch-up's deadline,
 * state.restore_timeout_ms). The deadline was once looked at only when a
 * poll came back empty, which never happens while librdkafka has the next
 * events queued: a catch-up slower than its fetches ran to \p to,
 * whatever the deadline. @returns events learned (and fed), stopping
 * early at the deadline or a stop. */
static int64_t catch_up(gws_changelog_t *cl, int32_t partition,
                        gws_detect_t *det, int64_t from, int64_t to,
                        int64_t deadline, int64_t *first, int64_t *reached,
                        int *stopped) {
        const char *topic = cl->cfg->topic_input;
        int64_t n = 0, next = from;

        *first = -1;
        *reached = from;
        if ((*stopped = stopping(cl)) || gws_mono_ms() > deadline ||
            assign_one(cl->rc, topic, partition, from) == -1)
                return 0;
        while (next < to && !(*stopped = stopping(cl)) &&
               gws_mono_ms() <= deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(cl->rc, 100);
                gws_input_t in;
                if (!m)
                        continue;
                if (m->err) {
                        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                                next = to;
                        } else if (read_refused(m->err)) {
                                /* ends short, as at the deadline */
                                gws_log(GWS_LOG_WARNING, "STATE",
                                        "partition %d: catch-up stops at "
                                        "offset %lld: %s",
                                        (int)partition, (long long)next,
                                        rd_kafka_message_errstr(m));
                                rd_kafka_message_destroy(m);
                                break;
                        }
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (*first < 0)
                        *first = m->offset;
                next = m->offset + 1;
                if (m->offset < to) {
                        in.value = m->payload ? m->payload : "";
                        in.len = m->len;
                        in.key = m->key;
                        in.keylen = m->key_len;
                        in.topic = topic;
                        in.partition = partition;
                        in.offset = m->offset;
                        in.whole_len = 0;
                        in.line = 0;
                        gws_pipeline_learn(cl->pl, det, &in);
                        n++;
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_assign(cl->rc, NULL);
        *reached = next < to ? next : to;
        return n;
}

/* The group's committed offset of input \p partition (-1: none), looked
 * up until \p deadline. A lookup that keeps failing (the coordinator
 * moving, during a rebalance) is not "no commit": that once restored
 * without a catch-up to an offset the consumer then started from, with
 * nothing said. Each call waits what is left until \p deadline, 2 s at
 * most (rd_kafka_committed() cannot be interrupted), and the retries'
 * backoff naps, so that a stop ends the lookup within 2 s: with calls of
 * up to 10 s a shutdown waited for the whole state.restore_timeout_ms
 * against a coordinator that did not answer. Calls once waited 1 s at
 * least, which overran the deadline by up to 1 s; with nothing left it
 * gives up at once, as the read and the catch-up do at their deadline.
 * @returns 0; -1 with \p err set (RD_KAFKA_RESP_ERR__TIMED_OUT if the
 * deadline passed before a first call); or 1: stopped
 * (gws_changelog_stop()). */
static int committed_offset(gws_changelog_t *cl, int32_t partition,
                            int64_t deadline, int64_t *off,
                            rd_kafka_resp_err_t *err) {
        int wait_ms = 100;
        *err = RD_KAFKA_RESP_ERR__TIMED_OUT;
        *off = -1;
        for (;;) {
                rd_kafka_topic_partition_list_t *l;
                int64_t left = deadline - gws_mono_ms();
                int tmo = left > 2000 ? 2000 : (int)left;
                if (stopping(cl))
                        return 1;
                if (tmo <= 0)
                        return -1; /* *err: the last call's, or timed out */
                l = rd_kafka_topic_partition_list_new(1);
                rd_kafka_topic_partition_list_add(l, cl->cfg->topic_input,
                                                  partition);
                *err = rd_kafka_committed(cl->rc, l, tmo);
                if (!*err)
                        *err = l->elems[0].err;
                *off = l->elems[0].offset >= 0 ? l->elems[0].offset : -1;
                rd_kafka_topic_partition_list_destroy(l);
                if (!*err)
                        return 0;
                if (gws_mono_ms() + wait_ms > deadline)
                        return -1;
                nap(cl, wait_ms);
                if (wait_ms < 1000)
                        wait_ms *= 2;
        }
}

/* A restore cut by gws_changelog_stop() (\p during: what it was doing)
 * is not installed: its detector, perhaps caught up part of the way, is
 * dropped (r->stopped, det NULL), so the partition's latest snapshot on
 * the state topic stays the one it was restored from (the service,
 * stopping, writes none for a partition still restoring). */
static void cut(gws_restore_t *r, int32_t partition, int64_t snap_offset,
                const char *during) {
        r->stopped = 1;
        gws_detect_destroy(r->det);
        r->det = NULL;
        gws_log(GWS_LOG_NOTICE, "STATE",
                "partition %d: restore stopped (shutdown) %s after %lld "
                "events caught up: not installed; its snapshot at offset "
                "%lld stays the latest",
                (int)partition, during, (long long)r->caught_up,
                (long long)snap_offset);
}

/* Restores \p job's partition into \p r from \p found (1: its latest
 * record \p rec, 0: none, -1: the read failed, \p read_why says). The
 * committed offset's lookup and the catch-up end at the job's deadline,
 * the one its read had: what the read took is not theirs to take again
 * (they once had state.restore_timeout_ms of their own from here, and a
 * restore took up to twice that). A stop during the lookup or the
 * catch-up cuts it (cut()). */
static void run_job(gws_changelog_t *cl, const job_t *job, gws_restore_t *r,
                    int found, const char *read_why, const gws_buf_t *rec,
                    gws_buf_t *raw) {
        const gws_config_t *cfg = cl->cfg;
        int64_t deadline = job->deadline;
        gws_state_info_t info;
        char why[256] = "";

        r->snap_offset = r->committed = r->delivered = r->caught_to = -1;
        if (found <= 0) {
                /* A failed read says nothing about the snapshot:
                 * UNREADABLE, not CORRUPT (as it once was reported). */
                r->result = found == 0 ? GWS_STATE_MISSING
                                       : GWS_STATE_UNREADABLE;
                snprintf(r->reason, sizeof(r->reason), "%s",
                         found == 0 ? "no snapshot on the state topic"
                                    : read_why);
                return;
        }
        r->bytes = rec->len;
        r->result = gws_state_decode(rec->buf, rec->len, cfg->group,
                                     cfg->topic_input, job->partition,
                                     max_raw(cfg), raw,
                                     &info, why, sizeof(why));
        if (r->result != GWS_STATE_OK) {
                snprintf(r->reason, sizeof(r->reason), "%s", why);
                return;
        }
        r->snap_offset = info.offset;
        r->snap_written_ms = info.written_ms;
        if (gws_detect_load(r->det, raw->buf, raw->len, why, sizeof(why)) <
            0) {
                /* The half-loaded detector is unusable: start cold. */
                gws_detect_destroy(r->det);
                r->det = gws_detect_new(cfg, job->partition);
                r->result = load_result(why);
                snprintf(r->reason, sizeof(r->reason), "%s", why);
                return;
        }
        {
                gws_detect_stats_t ds;
                gws_detect_stats(r->det, &ds);
                r->entities = (uint32_t)ds.entities;
        }
        r->caught_to = info.offset;
        if (job->committed != GWS_COMMITTED_UNKNOWN) {
                r->committed = job->committed;
        } else {
                rd_kafka_resp_err_t err;
                int rc = committed_offset(cl, job->partition, deadline,
                                          &r->committed, &err);
                if (rc == 1) {
                        cut(r, job->partition, info.offset,
                            "looking up the group's committed offset");
                        return;
                }
                if (rc == -1) {
                        r->committed = -1;
                        gws_log(GWS_LOG_WARNING, "STATE",
                                "partition %d: the group's committed offset "
                                "could not be looked up within "
                                "state.restore_timeout_ms (%s): restored "
                                "from the snapshot at offset %lld without "
                                "catch-up or skip",
                                (int)job->partition, rd_kafka_err2str(err),
                                (long long)info.offset);
                }
        }
        if (r->committed > info.offset) {
                int64_t first;
                int stopped;
                gws_log(GWS_LOG_INFO, "STATE",
                        "partition %d: catching up %lld events (%lld..%lld) "
                        "without outputs",
                        (int)job->partition,
                        (long long)(r->committed - info.offset),
                        (long long)info.offset, (long long)r->committed - 1);
                r->caught_up = catch_up(cl, job->partition, r->det,
                                        info.offset, r->committed, deadline,
                                        &first, &r->caught_to, &stopped);
                if (stopped) {
                        char during[96];
                        snprintf(during, sizeof(during),
                                 "during its catch-up at offset %lld of "
                                 "%lld",
                                 (long long)r->caught_to,
                                 (long long)r->committed);
                        cut(r, job->partition, info.offset, during);
                        return;
                }
                if (first > info.offset)
                        gws_log(GWS_LOG_WARNING, "STATE",
                                "partition %d: catch-up from offset %lld: "
                                "%lld..%lld are no longer on \"%s\"",
                                (int)job->partition, (long long)first,
                                (long long)info.offset, (long long)first - 1,
                                cfg->topic_input);
                if (gws_mono_ms() > deadline)
                        gws_log(GWS_LOG_WARNING, "STATE",
                                "partition %d: catch-up stopped after %lld "
                                "events (state.restore_timeout_ms %d); "
                                "baselines miss the rest",
                                (int)job->partition,
                                (long long)r->caught_up,
                                cfg->state_restore_timeout_ms);
        } else if (r->committed >= 0 && r->committed < info.offset) {
                /* Ahead of the commit (the previous owner died before it
                 * committed, or the group refused the commit): the
                 * service skips to r->delivered (skip_to()). */
                if ((r->delivered = skip_to(r->committed, &info)) >= 0) {
                        gws_log(GWS_LOG_INFO, "STATE",
                                "partition %d: snapshot (offset %lld) is "
                                "ahead of the committed offset %lld; its "
                                "outputs were delivered up to %lld: the "
                                "%lld events before that are skipped, the "
                                "%lld after it are processed again and "
                                "counted twice in the baselines",
                                (int)job->partition, (long long)info.offset,
                                (long long)r->committed,
                                (long long)info.delivered,
                                (long long)(info.delivered - r->committed),
                                (long long)(info.offset - info.delivered));
                } else {
                        gws_log(GWS_LOG_INFO, "STATE",
                                "partition %d: snapshot (offset %lld) is "
                                "ahead of the committed offset %lld: the "
                                "%lld events between are processed again "
                                "and counted twice in the baselines",
                                (int)job->partition, (long long)info.offset,
                                (long long)r->committed,
                                (long long)(info.offset - r->committed));
                }
        }
}

/* Holds the snapshots of input \p partition if its restore \p r could not
 * read the state topic, else ends a hold (changelog.h, "Holding"). Before
 * the result is posted: the caller cannot save before it has it.
 * @locality restore thread. */
static void hold(gws_changelog_t *cl, int32_t partition,
                 const gws_restore_t *r) {
        int on = r->result == GWS_STATE_UNREADABLE, was;
        pthread_mutex_lock(&cl->lock);
        /* room reserved when the job was queued (gws_changelog_restore) */
        assert(partition < cl->nheld_cap);
        was = cl->held[partition];
        cl->held[partition] = (uint8_t)on;
        if (was != on)
                __atomic_add_fetch(&cl->nheld, on ? 1 : -1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&cl->lock);
        if (on)
                gws_log(GWS_LOG_WARNING, "STATE",
                        "partition %d: snapshots held until a restore of "
                        "it reads the state topic (its next assignment): "
                        "the topic could not be read (%s), and this cold "
                        "state must not replace a snapshot there",
                        (int)partition, r->reason);
        else if (was)
                gws_log(GWS_LOG_NOTICE, "STATE",
                        "partition %d: snapshots no longer held (restore: "
                        "%s)",
                        (int)partition, gws_state_result_name(r->result));
}

/* Takes up to \p max queued jobs, in queue order, into \p batch.
 * @returns how many (at least 1: the queue must not be empty).
 * @locality restore thread, under cl->lock. */
static int take_batch(gws_changelog_t *cl, job_t **batch, int max) {
        job_t *job;
        int n = 0;

        while ((job = cl->jobs) && n < max) {
                cl->jobs = job->next;
                job->next = NULL;
                batch[n++] = job;
        }
        if (!cl->jobs)
                cl->jobs_tail = NULL;
        return n;
}

/* One batch: the restores queued together (an assignment). The state
 * partitions their keys live in are read once each, all at once (a
 * restore used to read its state partition alone: 96 input partitions
 * over 12 state partitions read each 8 times, one after another), then
 * each job is decoded, loaded, caught up and posted in turn, so the first
 * resumes without waiting for the last. A job whose state partition could
 * not be read starts cold as GWS_STATE_UNREADABLE, with that partition's
 * error; the others restore as usual (a failed read once made every job
 * of the batch unreadable).
 *
 * A state partition the read set aside (nothing fetched while the others
 * were read: no leader, a broker down) does not hold the batch: its jobs
 * go back to the front of the queue, with their generations, request
 * times and deadlines, and are read again with the next batch, so they
 * still fail state.restore_timeout_ms after their first read, not later
 * (the batch's healthy jobs once waited for that deadline too). The same
 * when restores are queued meanwhile (another assignment): they are read
 * with those set aside instead of waiting for their deadline. A job read
 * with others of a sooner deadline goes back as well when their read
 * timed out before its own deadline. */
static void run_batch(gws_changelog_t *cl, job_t **batch, int n,
                      gws_buf_t *recs, gws_buf_t *raw) {
        char keys[RESTORE_BATCH][512];
        const char *kp[RESTORE_BATCH];
        size_t kl[RESTORE_BATCH];
        int32_t ksp[RESTORE_BATCH], sps[RESTORE_BATCH];
        int found[RESTORE_BATCH] = {0}, at[RESTORE_BATCH], i, j, nsp = 0;
        part_read_t res[RESTORE_BATCH];
        latest_t l = {n, kp, kl, ksp, recs, found};
        job_t *again = NULL, *again_last = NULL;
        int64_t now = gws_mono_ms();

        for (i = 0; i < n; i++) {
                job_t *job = batch[i];
                if (!job->deadline)
                        job->deadline =
                            now + cl->cfg->state_restore_timeout_ms;
                gws_state_key(keys[i], sizeof(keys[i]), cl->cfg->group,
                              cl->cfg->topic_input, job->partition);
                kp[i] = keys[i];
                kl[i] = strlen(keys[i]);
                ksp[i] = job->partition % cl->nstate;
                for (j = 0; j < nsp && sps[j] != ksp[i]; j++)
                        ;
                if (j == nsp) {
                        sps[nsp++] = ksp[i];
                        res[j].deadline = job->deadline;
                } else if (job->deadline < res[j].deadline) {
                        res[j].deadline = job->deadline;
                }
                res[j].since = res[j].deadline -
                               cl->cfg->state_restore_timeout_ms;
                at[i] = j; /* its state partition's read: res[j] */
        }
        read_latest(cl, n, sps, nsp, &l, res);
        now = gws_mono_ms();
        for (i = 0; i < n; i++) {
                job_t *job = batch[i];
                const part_read_t *pr = &res[at[i]];
                int stop;
                pthread_mutex_lock(&cl->lock);
                /* the rest is abandoned, as queued jobs */
                stop = cl->stop || stopping(cl);
                pthread_mutex_unlock(&cl->lock);
                if (!stop && (pr->pending ||
                              (pr->timed_out && job->deadline > now))) {
                        /* read again (a record kept only until then) */
                        gws_buf_free(&recs[i]);
                        if (again_last)
                                again_last->next = job;
                        else
                                again = job;
                        again_last = job;
                        continue;
                }
                if (!stop) {
                        gws_restore_t *r = job->res;
                        job->res = NULL; /* posted: no longer the job's */
                        r->partition = job->partition;
                        r->gen = job->gen;
                        if ((r->det = gws_detect_new(cl->cfg,
                                                     job->partition))) {
                                run_job(cl, job, r,
                                        res[at[i]].ok ? found[i] : -1,
                                        res[at[i]].why, &recs[i], raw);
                                /* cut by a stop: holds as they were */
                                if (!r->stopped)
                                        hold(cl, job->partition, r);
                        }
                        r->ms = (double)(gws_mono_ms() - job->t0);
                        if (!r->stopped) /* not a restore: not counted */
                                ADD(restores[r->result], 1);
                        ADD(restore_ms, (uint64_t)r->ms);
                        ADD(caught_up, (uint64_t)r->caught_up);
                        pthread_mutex_lock(&cl->lock);
                        if (cl->done_tail)
                                cl->done_tail->next = r;
                        else
                                cl->done = r;
                        cl->done_tail = r;
                        pthread_mutex_unlock(&cl->lock);
                }
                /* a record is kept only until its job is done */
                gws_buf_free(&recs[i]);
                job_free(job);
        }
        if (again) {
                pthread_mutex_lock(&cl->lock);
                again_last->next = cl->jobs;
                if (!cl->jobs)
                        cl->jobs_tail = again_last;
                cl->jobs = again;
                pthread_mutex_unlock(&cl->lock);
        }
}

static void *restore_main(void *arg) {
        gws_changelog_t *cl = arg;
        gws_buf_t recs[RESTORE_BATCH], raw = {0};
        job_t *batch[RESTORE_BATCH];
        int n;

        memset(recs, 0, sizeof(recs));
        for (;;) {
                pthread_mutex_lock(&cl->lock);
                /* after gws_changelog_stop() no more batches: they
                 * would be cut at once */
                while ((!cl->jobs || stopping(cl)) && !cl->stop)
                        pthread_cond_wait(&cl->cond, &cl->lock);
                if (cl->stop) {
                        pthread_mutex_unlock(&cl->lock);
                        break;
                }
                n = take_batch(cl, batch, RESTORE_BATCH);
                pthread_mutex_unlock(&cl->lock);
                run_batch(cl, batch, n, recs, &raw);
        }
        gws_buf_free(&raw);
        return NULL;
}

int gws_changelog_restore(gws_changelog_t *cl, const int32_t *partitions,
                          const uint64_t *gens, const int64_t *committed,
                          int n) {
        job_t *first = NULL, **tail = &first, *job, *last = NULL;
        int64_t t0 = gws_mono_ms();
        int32_t top = -1;
        int i;

        /* Room for the hold of every queued partition: set by the
         * restore thread, which must not fail to (hold()). */
        for (i = 0; i < n; i++)
                if (partitions[i] > top)
                        top = partitions[i];
        pthread_mutex_lock(&cl->lock);
        if (top >= cl->nheld_cap) {
                uint8_t *h = realloc(cl->held, (size_t)top + 1);
                if (!h) {
                        pthread_mutex_unlock(&cl->lock);
                        return -1;
                }
                memset(h + cl->nheld_cap, 0,
                       (size_t)(top + 1 - cl->nheld_cap));
                cl->held = h;
                cl->nheld_cap = top + 1;
        }
        pthread_mutex_unlock(&cl->lock);
        for (i = 0; i < n; i++) {
                if (!(job = calloc(1, sizeof(*job))) ||
                    !(job->res = calloc(1, sizeof(*job->res)))) {
                        free(job);
                        while ((job = first)) {
                                first = job->next;
                                job_free(job);
                        }
                        return -1;
                }
                job->partition = partitions[i];
                job->gen = gens[i];
                job->committed =
                    committed ? committed[i] : GWS_COMMITTED_UNKNOWN;
                job->t0 = t0;
                *tail = last = job;
                tail = &job->next;
        }
        if (!first)
                return 0;
        /* All at once: the restore thread sees the whole assignment and
         * batches it by state partition. */
        pthread_mutex_lock(&cl->lock);
        if (cl->jobs_tail)
                cl->jobs_tail->next = first;
        else
                cl->jobs = first;
        cl->jobs_tail = last;
        pthread_cond_signal(&cl->cond);
        pthread_mutex_unlock(&cl->lock);
        return 0;
}

gws_restore_t *gws_changelog_done(gws_changelog_t *cl) {
        gws_restore_t *r;
        pthread_mutex_lock(&cl->lock);
        if ((r = cl->done) && !(cl->done = r->next))
                cl->done_tail = NULL;
        pthread_mutex_unlock(&cl->lock);
        if (r)
                r->next = NULL;
        return r;
}

void gws_restore_free(gws_restore_t *r) {
        if (!r)
                return;
        gws_detect_destroy(r->det);
        free(r);
}

void gws_changelog_stats(const gws_changelog_t *cl,
                         gws_changelog_stats_t *st) {
        int i;
        st->written = __atomic_load_n(&cl->st.written, __ATOMIC_RELAXED);
        st->failed = __atomic_load_n(&cl->st.failed, __ATOMIC_RELAXED);
        st->bytes = __atomic_load_n(&cl->st.bytes, __ATOMIC_RELAXED);
        st->raw_bytes = __atomic_load_n(&cl->st.raw_bytes, __ATOMIC_RELAXED);
        for (i = 0; i < GWS_STATE__CNT; i++)
                st->restores[i] = __atomic_load_n(&cl->st.restores[i],
                                                  __ATOMIC_RELAXED);
        st->restore_ms = __atomic_load_n(&cl->st.restore_ms,
                                         __ATOMIC_RELAXED);
        st->caught_up = __atomic_load_n(&cl->st.caught_up, __ATOMIC_RELAXED);
        st->reads = __atomic_load_n(&cl->st.reads, __ATOMIC_RELAXED);
        st->held = __atomic_load_n(&cl->st.held, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------------
 * lifecycle
 * ------------------------------------------------------------------------ */

gws_changelog_t *gws_changelog_new(const gws_config_t *cfg,
                                   rd_kafka_t *producer,
                                   rd_kafka_conf_t *rconf, char *errstr,
                                   size_t errstr_size) {
        gws_changelog_t *cl = calloc(1, sizeof(*cl));
        rd_kafka_resp_err_t err;

        if (!cl) {
                rd_kafka_conf_destroy(rconf);
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        cl->cfg = cfg;
        cl->producer = producer;
        pthread_mutex_init(&cl->lock, NULL);
        pthread_cond_init(&cl->cond, NULL);
        if (!(cl->rc = gws_service_kafka_new(cfg, RD_KAFKA_CONSUMER, rconf,
                                             "state restore consumer", errstr,
                                             errstr_size))) {
                rd_kafka_conf_destroy(rconf);
                goto err;
        }
        if (!(cl->pl = gws_pipeline_new(cfg, errstr, errstr_size)))
                goto err;
        if (!(cl->rkt = gws_service_topic_new(cfg, producer,
                                              cfg->state_topic, errstr,
                                              errstr_size)))
                goto err;
        if ((cl->nstate = topic_partitions(cl->rc, cfg->state_topic, 10000,
                                           NULL, &err)) <= 0) {
                snprintf(errstr, errstr_size,
                         "state topic \"%s\": %s; create it (cleanup.policy="
                         "compact) or set state.topic to \"off\"",
                         cfg->state_topic, rd_kafka_err2str(err));
                goto err;
        }
        if (pthread_create(&cl->thr, NULL, restore_main, cl)) {
                snprintf(errstr, errstr_size, "cannot start a thread: %s",
                         strerror(errno));
                goto err;
        }
        pthread_setname_np(cl->thr, "gws-restore");
        cl->started = 1;
        gws_log(GWS_LOG_INFO, "STATE",
                "detector state on \"%s\" (%d partitions), snapshots every "
                "%d ms and on revocation",
                cfg->state_topic, cl->nstate, cfg->state_interval_ms);
        return cl;
err:
        gws_changelog_destroy(cl);
        return NULL;
}

void gws_changelog_stop(gws_changelog_t *cl) {
        __atomic_store_n(&cl->stopping, 1, __ATOMIC_RELEASE);
}

void gws_changelog_destroy(gws_changelog_t *cl) {
        gws_restore_t *r;
        job_t *j;
        if (!cl)
                return;
        /* a catch-up or a committed offset's lookup in progress ends
         * within a poll (100 ms) or a lookup's call (2 s at most) */
        gws_changelog_stop(cl);
        if (cl->started) {
                pthread_mutex_lock(&cl->lock);
                cl->stop = 1; /* a read in progress too (read_check()) */
                pthread_cond_signal(&cl->cond);
                pthread_mutex_unlock(&cl->lock);
                pthread_join(cl->thr, NULL);
        }
        while ((j = cl->jobs)) {
                cl->jobs = j->next;
                job_free(j);
        }
        while ((r = gws_changelog_done(cl)))
                gws_restore_free(r);
        if (cl->rkt)
                rd_kafka_topic_destroy(cl->rkt);
        if (cl->rc)
                /* Assign-only, nothing to commit or leave: a consumer
                 * close would wait seconds for the group coordinator. */
                rd_kafka_destroy_flags(cl->rc,
                                       RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        gws_pipeline_destroy(cl->pl);
        free(cl->held);
        pthread_mutex_destroy(&cl->lock);
        pthread_cond_destroy(&cl->cond);
        free(cl);
}

/* ------------------------------------------------------------------------
 * inspection (`gwsieve state`)
 * ------------------------------------------------------------------------ */

/* The latest record of every input partition of one group and topic. */
typedef struct {
        char prefix[512]; /* "<group>/<topic>/" (249 bytes each at most:
                           * gws_config_validate()) */
        size_t plen;
        int nin, nstate;
        gws_buf_t *rec; /* per input partition; len 0 = none */
} scan_t;

static int scan_cb(void *opaque, const rd_kafka_message_t *m) {
        scan_t *sc = opaque;
        char num[16];
        size_t n;
        long p;
        char *end;
        if (m->key_len <= sc->plen || m->key_len - sc->plen >= sizeof(num) ||
            memcmp(m->key, sc->prefix, sc->plen))
                return 0;
        n = m->key_len - sc->plen;
        memcpy(num, (const char *)m->key + sc->plen, n);
        num[n] = '\0';
        /* digits only, no leading zero: the key gws_state_key() writes
         * and a restore reads ("07", "+7", " 7" are other keys) */
        if (num[0] < '0' || num[0] > '9' || (num[0] == '0' && n > 1))
                return 0;
        p = strtol(num, &end, 10);
        if (*end || p < 0 || p >= sc->nin || p % sc->nstate != m->partition)
                return 0; /* not ours, or where a restore does not look */
        gws_buf_reset(&sc->rec[p]); /* a tombstone leaves it empty */
        return m->len ? gws_buf_append(&sc->rec[p], m->payload, m->len) : 0;
}

/* What an inspection knows of the partitions it reads, to tell one that
 * cannot be read now from a slow one: their leaders (metadata, asked at
 * its start) and the brokers its consumer cannot reach (librdkafka's
 * statistics, every 100 ms). The statistics come as events on the
 * consumer's main queue, polled here on the inspecting thread (a
 * stats_cb would need the client's opaque, which the reader's log_cb
 * takes for the service's). */
typedef struct {
        rd_kafka_queue_t *mainq; /* the statistics events */
        gws_jdoc_t doc;          /* the last statistics, while parsed */
        int32_t *down;           /* node ids of the brokers found down by
                                  * the last statistics */
        int64_t *tries;          /* [i]: down[i]'s connection attempts */
        int ndown, cap;
        int32_t *leader[2];      /* [0]: state topic, [1]: input topic;
                                  * [partition]: its leader, -1 none */
        int nparts[2];
        rd_kafka_t *rk;          /* the inspecting consumer */
        const char *topic[2];    /* [0]: state topic, [1]: input topic */
        int64_t asked[2];        /* when leader[t] was last asked */
        int64_t start, deadline; /* the inspection's */
} watch_t;

/* An election: a partition without a leader, or whose leader is down, is
 * called unreadable only after WATCH_ELECTION_MS of the inspection, its
 * topic's metadata asked again (WATCH_ASK_MS at most, every WATCH_ASK_MS
 * at most) meanwhile. */
#define WATCH_ELECTION_MS 1000
#define WATCH_ASK_MS 250

/* Takes the brokers down from the statistics \p json: a broker not
 * connected (DOWN, TRY_CONNECT) after at least two attempts, with no
 * entry of its node id up (librdkafka lists the group coordinator twice,
 * the second time as the logical broker "GroupCoordinator").
 * A first attempt that failed is not enough: a broker restarting takes
 * the second. Out of memory: fewer brokers known down (they are waited
 * for, as before). */
static void watch_brokers(watch_t *w, const char *json, size_t len) {
        static const gws_json_limits_t lim = {64, 1u << 24, 0};
        const gws_jtok_t *tk;
        uint32_t b, k, t;
        int pass, i;

        w->ndown = 0;
        if (gws_json_parse(&w->doc, json, len, &lim) != GWS_JE_OK ||
            w->doc.toks[0].type != GWS_JT_OBJ ||
            !(b = gws_json_obj_get(&w->doc, 0, "brokers", 7)) ||
            w->doc.toks[b].type != GWS_JT_OBJ)
                return;
        tk = w->doc.toks;
        /* pass 0: the brokers down; pass 1: off the list if also up */
        for (pass = 0; pass < 2; pass++) {
                /* members: a key token, then the value's subtree */
                for (k = b + 1; k < tk[b].next; k = tk[k + 1].next) {
                        uint32_t v = k + 1;
                        int64_t id = -1, tries = 0;
                        char state[16];
                        if (tk[v].type != GWS_JT_OBJ ||
                            !(t = gws_json_obj_get(&w->doc, v, "nodeid",
                                                   6)) ||
                            tk[t].type != GWS_JT_NUM ||
                            gws_json_int(&w->doc, &tk[t], &id) || id < 0 ||
                            id > INT32_MAX ||
                            !(t = gws_json_obj_get(&w->doc, v, "state", 5)) ||
                            tk[t].type != GWS_JT_STR ||
                            tk[t].len > sizeof(state))
                                continue;
                        state[gws_json_str_decode(&w->doc, &tk[t], state)] =
                            '\0';
                        if (pass == 1) {
                                if (strcmp(state, "UP"))
                                        continue;
                                for (i = 0; i < w->ndown; i++)
                                        if (w->down[i] == id)
                                                w->down[i] = -1;
                                continue;
                        }
                        if ((t = gws_json_obj_get(&w->doc, v, "connects",
                                                  8)) &&
                            tk[t].type == GWS_JT_NUM)
                                gws_json_int(&w->doc, &tk[t], &tries);
                        if (tries < 2 || (strcmp(state, "DOWN") &&
                                          strcmp(state, "TRY_CONNECT")))
                                continue;
                        if (w->ndown == w->cap) {
                                int cap = w->cap ? w->cap * 2 : 8;
                                int32_t *d = realloc(
                                    w->down, sizeof(*d) * (size_t)cap);
                                int64_t *n;
                                if (d)
                                        w->down = d;
                                n = d ? realloc(w->tries,
                                                sizeof(*n) * (size_t)cap)
                                      : NULL;
                                if (!n)
                                        continue;
                                w->tries = n;
                                w->cap = cap;
                        }
                        w->down[w->ndown] = (int32_t)id;
                        w->tries[w->ndown++] = tries;
                }
        }
}

/* Takes the statistics that came since the last call (the latest
 * counts). */
static void watch_update(watch_t *w) {
        rd_kafka_event_t *ev;
        while ((ev = rd_kafka_queue_poll(w->mainq, 0))) {
                const char *json;
                if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_STATS &&
                    (json = rd_kafka_event_stats(ev)))
                        watch_brokers(w, json, strlen(json));
                rd_kafka_event_destroy(ev);
        }
}

/* @returns 1 if \p partition of topic \p t (0: state, 1: input) has no
 * leader (metadata) or its leader is down (statistics), with the reason
 * in \p why; else 0. */
static int leader_out(watch_t *w, int t, int32_t partition, char *why,
                      size_t size) {
        int32_t leader;
        int i;
        if ((leader = w->leader[t][partition]) < 0) {
                snprintf(why, size, "no leader");
                return 1;
        }
        watch_update(w);
        for (i = 0; i < w->ndown && w->down[i] != leader; i++)
                ;
        if (i == w->ndown)
                return 0;
        snprintf(why, size,
                 "its leader, broker %d, cannot be reached (%lld "
                 "connection attempts failed)",
                 (int)leader, (long long)w->tries[i]);
        return 1;
}

/* Asks topic \p t's leaders again (WATCH_ASK_MS at most, not past the
 * deadline); keeps the last ones if the answer does not come or its
 * partition count differs. */
static void watch_leaders(watch_t *w, int t) {
        int64_t left = w->deadline - gws_mono_ms();
        rd_kafka_resp_err_t err;
        int32_t *l = NULL;
        if (left > 0 &&
            topic_partitions(w->rk, w->topic[t],
                             left < WATCH_ASK_MS ? (int)left : WATCH_ASK_MS,
                             &l, &err) == w->nparts[t]) {
                free(w->leader[t]);
                w->leader[t] = l;
                l = NULL;
        }
        free(l);
        w->asked[t] = gws_mono_ms();
}

/* @returns 1 if \p partition of topic \p t (0: state, 1: input) cannot
 * be read now, its leader missing (metadata) or down (statistics) after
 * the first WATCH_ELECTION_MS of the inspection and the metadata asked
 * again, with the reason in \p why; else 0. Its leaders were once those
 * of the inspection's start: a partition being elected a leader was
 * unreadable ("no leader; nothing fetched after 3 ms"). */
static int watch_down(watch_t *w, int t, int32_t partition, char *why,
                      size_t size) {
        if (partition < 0 || partition >= w->nparts[t] ||
            !leader_out(w, t, partition, why, size))
                return 0;
        if (gws_mono_ms() - w->asked[t] >= WATCH_ASK_MS) {
                watch_leaders(w, t);
                if (!leader_out(w, t, partition, why, size))
                        return 0;
        }
        return gws_mono_ms() - w->start >= WATCH_ELECTION_MS;
}

static int state_down(void *arg, int32_t partition, char *why,
                      size_t size) {
        return watch_down(arg, 0, partition, why, size);
}

/* The group's committed offsets and the input's end offsets into \p rows
 * (-1: not known by \p deadline, the inspection's). The input partitions
 * are assigned at their end while the committed offsets are looked up,
 * and each one's end is the offset of its end of partition event; one
 * whose leader is missing or down (watch_down()) is not waited for. The
 * ends were asked with rd_kafka_query_watermark_offsets(), one partition
 * after another, each with the whole timeout after a read that had had it
 * too, and librdkafka 2.0.2 waits in it for as long as the partition's
 * leader is down (librdkafka issue #2588, fixed in 2.3.0): `gwsieve
 * state` hung until the broker was back. */
static void inspect_offsets(rd_kafka_t *rk, watch_t *w,
                            const gws_config_t *cfg, gws_state_view_t *rows,
                            int nin, int64_t deadline) {
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(nin);
        rd_kafka_topic_partition_list_t *ends =
            rd_kafka_topic_partition_list_new(nin);
        uint8_t *over = calloc((size_t)nin, 1);
        const char *topic = cfg->topic_input;
        rd_kafka_resp_err_t err;
        int64_t left;
        int p, pending = nin, assigned = 0;
        char why[128];

        for (p = 0; p < nin; p++) {
                rows[p].committed = rows[p].end = -1;
                rd_kafka_topic_partition_list_add(l, topic, p);
                rd_kafka_topic_partition_list_add(ends, topic, p)->offset =
                    RD_KAFKA_OFFSET_END;
        }
        /* no room to note which are over: ends unknown */
        assigned = over && !rd_kafka_assign(rk, ends);
        left = deadline - gws_mono_ms();
        err = left > 0 ? rd_kafka_committed(rk, l, (int)left)
                       : RD_KAFKA_RESP_ERR__TIMED_OUT;
        if (err)
                gws_log(GWS_LOG_WARNING, "STATE",
                        "committed offsets of group \"%s\": %s", cfg->group,
                        rd_kafka_err2str(err));
        /* Not known is not none: a failed lookup says so in each row (its
         * plan was "no committed offset" before, and so was its exit
         * status). */
        for (p = 0; p < nin; p++) {
                rd_kafka_resp_err_t pe = err ? err : l->elems[p].err;
                if (pe)
                        snprintf(rows[p].committed_error,
                                 sizeof(rows[p].committed_error), "%s",
                                 rd_kafka_err2str(pe));
                else if (l->elems[p].offset >= 0)
                        rows[p].committed = l->elems[p].offset;
        }
        /* what came during the lookup is taken even past the deadline
         * (the coordinator may have taken all of it): what is queued,
         * for 50 ms at most (records of a busy partition keep coming) */
        while (assigned && pending > 0) {
                int64_t now = gws_mono_ms();
                rd_kafka_message_t *m;
                if (now >= deadline + 50)
                        break;
                m = rd_kafka_consumer_poll(
                    rk, now >= deadline ? 0
                        : deadline - now < 100 ? (int)(deadline - now)
                                               : 100);
                if (m) {
                        p = m->partition;
                        if ((m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ||
                             read_refused(m->err)) &&
                            m->rkt && p >= 0 && p < nin && !over[p] &&
                            !strcmp(rd_kafka_topic_name(m->rkt), topic)) {
                                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                        rows[p].end = m->offset;
                                else
                                        gws_log(GWS_LOG_WARNING, "STATE",
                                                "end of \"%s\" [%d] unknown: "
                                                "%s",
                                                topic, p,
                                                rd_kafka_message_errstr(m));
                                over[p] = 1;
                                pending--;
                        }
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (now >= deadline)
                        break;
                for (p = 0; p < nin; p++) {
                        if (over[p] || !watch_down(w, 1, p, why, sizeof(why)))
                                continue;
                        over[p] = 1;
                        pending--;
                        gws_log(GWS_LOG_WARNING, "STATE",
                                "end of \"%s\" [%d] unknown: %s", topic, p,
                                why);
                }
        }
        if (pending > 0)
                gws_log(GWS_LOG_WARNING, "STATE",
                        "end of %d partition(s) of \"%s\" unknown: not "
                        "found within the timeout",
                        pending, topic);
        if (assigned)
                rd_kafka_assign(rk, NULL);
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_topic_partition_list_destroy(ends);
        free(over);
}

/* What a restore would make of \p rec (empty: none) for partition \p p. */
static void inspect_one(const gws_config_t *cfg, const gws_buf_t *rec,
                        gws_state_view_t *v, gws_buf_t *raw) {
        gws_detect_t *det;
        char why[256] = "";
        if (!rec->len) {
                v->result = GWS_STATE_MISSING;
                snprintf(v->reason, sizeof(v->reason),
                         "no snapshot on the state topic");
                return;
        }
        v->result = gws_state_decode(rec->buf, rec->len, cfg->group,
                                     cfg->topic_input, v->partition,
                                     max_raw(cfg), raw,
                                     &v->info, why, sizeof(why));
        if (v->result == GWS_STATE_OK) {
                if (!(det = gws_detect_new(cfg, v->partition))) {
                        v->result = GWS_STATE_CORRUPT;
                        snprintf(why, sizeof(why), "out of memory");
                } else {
                        int n = gws_detect_load(det, raw->buf, raw->len, why,
                                                sizeof(why));
                        if (n < 0)
                                v->result = load_result(why);
                        else
                                v->entities = (uint32_t)n;
                        gws_detect_destroy(det);
                }
        }
        if (v->result != GWS_STATE_OK)
                snprintf(v->reason, sizeof(v->reason), "%s", why);
}

int gws_changelog_inspect(const gws_config_t *cfg, rd_kafka_conf_t *conf,
                          int timeout_ms, gws_state_view_t **out,
                          char *errstr, size_t errstr_size) {
        int64_t deadline = gws_mono_ms() + timeout_ms;
        rd_kafka_resp_err_t err;
        scan_t sc = {{0}, 0, 0, 0, NULL};
        gws_state_view_t *rows = NULL;
        gws_buf_t raw = {0};
        watch_t w;
        char inner[512];
        rd_kafka_t *rk;
        int32_t *sps = NULL;
        part_read_t *res = NULL;
        int p, nsp, rc = -1;

        *out = NULL;
        memset(&w, 0, sizeof(w));
        /* which brokers are down: watch_update() */
        if (rd_kafka_conf_set(conf, "statistics.interval.ms", "100", inner,
                              sizeof(inner)) != RD_KAFKA_CONF_OK) {
                rd_kafka_conf_destroy(conf);
                snprintf(errstr, errstr_size, "consumer: %s", inner);
                return -1;
        }
        rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_STATS);
        if (!(rk = gws_service_kafka_new(cfg, RD_KAFKA_CONSUMER, conf,
                                         "consumer", errstr, errstr_size))) {
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        w.mainq = rd_kafka_queue_get_main(rk);
        w.rk = rk;
        w.topic[0] = cfg->state_topic;
        w.topic[1] = cfg->topic_input;
        w.start = gws_mono_ms();
        w.deadline = deadline;
        w.asked[0] = w.asked[1] = w.start;
        if ((sc.nin = topic_partitions(rk, cfg->topic_input,
                                       (int)(deadline - gws_mono_ms()),
                                       &w.leader[1], &err)) <= 0) {
                snprintf(errstr, errstr_size, "input topic \"%s\": %s",
                         cfg->topic_input, rd_kafka_err2str(err));
                goto out;
        }
        w.nparts[1] = sc.nin;
        if ((sc.nstate = topic_partitions(rk, cfg->state_topic,
                                          (int)(deadline - gws_mono_ms()),
                                          &w.leader[0], &err)) <= 0) {
                snprintf(errstr, errstr_size, "state topic \"%s\": %s",
                         cfg->state_topic, rd_kafka_err2str(err));
                goto out;
        }
        w.nparts[0] = sc.nstate;
        snprintf(sc.prefix, sizeof(sc.prefix), "%s/%s/", cfg->group,
                 cfg->topic_input);
        sc.plen = strlen(sc.prefix);
        if (!(sc.rec = calloc((size_t)sc.nin, sizeof(*sc.rec))) ||
            !(rows = calloc((size_t)sc.nin, sizeof(*rows)))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto out;
        }
        /* Input partition p's key on state partition p % nstate, where a
         * restore looks (only there: after a change of the state topic's
         * partition count an older record elsewhere is not restored). */
        nsp = sc.nstate < sc.nin ? sc.nstate : sc.nin;
        if (!(sps = calloc((size_t)nsp, sizeof(*sps)))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto out;
        }
        for (p = 0; p < nsp; p++)
                sps[p] = p;
        if (!(res = calloc((size_t)nsp, sizeof(*res)))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto out;
        }
        /* A state partition that cannot be read fails its own rows
         * (unreadable, with the read's error), not the whole view: what
         * it held (perhaps part of it) is not looked at. It fails as soon
         * as its leader is known missing or down (state_down()), else at
         * the deadline; the read once waited for the deadline in any case,
         * and the offsets after it had the whole timeout again. */
        for (p = 0; p < nsp; p++) {
                res[p].deadline = deadline;
                res[p].since = deadline - timeout_ms;
        }
        read_partitions(rk, cfg->state_topic, sps, nsp, 0, NULL, state_down,
                        &w, scan_cb, &sc, res);
        inspect_offsets(rk, &w, cfg, rows, sc.nin, deadline);
        for (p = 0; p < sc.nin; p++) {
                const part_read_t *pr = &res[p % sc.nstate];
                rows[p].partition = p;
                rows[p].info.offset = rows[p].info.delivered = -1;
                if (pr->ok) {
                        inspect_one(cfg, &sc.rec[p], &rows[p], &raw);
                } else {
                        rows[p].result = GWS_STATE_UNREADABLE;
                        snprintf(rows[p].reason, sizeof(rows[p].reason),
                                 "%s", pr->why);
                }
        }
        *out = rows;
        rows = NULL;
        rc = sc.nin;
out:
        for (p = 0; sc.rec && p < sc.nin; p++)
                gws_buf_free(&sc.rec[p]);
        free(sc.rec);
        free(rows);
        free(sps);
        free(res);
        gws_buf_free(&raw);
        free(w.leader[0]);
        free(w.leader[1]);
        free(w.down);
        free(w.tries);
        gws_json_free(&w.doc);
        rd_kafka_queue_destroy(w.mainq);
        /* Assign-only, nothing to commit or leave: a consumer close would
         * wait for the group coordinator, perhaps down. */
        rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        return rc;
}

/* What the next owner of \p v's partition does, in a few words. */
static void inspect_plan(const gws_state_view_t *v, char *b, size_t size) {
        int64_t s = v->info.offset, c = v->committed;
        int64_t d = skip_to(c, &v->info);
        if (v->result == GWS_STATE_UNREADABLE)
                snprintf(b, size, "starts cold if still unreadable "
                                  "(snapshots held)");
        else if (v->result != GWS_STATE_OK)
                snprintf(b, size, "starts cold (%s)",
                         gws_state_result_name(v->result));
        else if (v->committed_error[0])
                snprintf(b, size, "restores; committed offset unknown: "
                                  "what it catches up or skips depends "
                                  "on it");
        else if (c < 0)
                snprintf(b, size, "restores; no committed offset: starts at "
                                  "auto.offset.reset, skips nothing");
        else if (c > s)
                snprintf(b, size, "restores, catches up %lld events "
                                  "(%lld..%lld)",
                         (long long)(c - s), (long long)s, (long long)c - 1);
        else if (c == s)
                snprintf(b, size, "restores, continues at %lld",
                         (long long)c);
        else if (d >= 0)
                snprintf(b, size, "restores, skips %lld events (%lld..%lld: "
                                  "outputs delivered), processes %lld again",
                         (long long)(d - c), (long long)c, (long long)d - 1,
                         (long long)(s - d));
        else
                snprintf(b, size, "restores, processes %lld events again "
                                  "(%lld..%lld)",
                         (long long)(s - c), (long long)c, (long long)s - 1);
}

/* \p v right-aligned in \p w columns, "-" when negative (unknown). */
static void put_num(FILE *fp, int w, int64_t v) {
        if (v < 0)
                fprintf(fp, "%*s ", w, "-");
        else
                fprintf(fp, "%*lld ", w, (long long)v);
}

void gws_changelog_print_inspect(const gws_config_t *cfg,
                                 const gws_state_view_t *rows, int n,
                                 int json, FILE *fp) {
        int64_t now = gws_now_ms();
        gws_buf_t b = {0};
        char plan[200], when[80], tb[40];
        const char *cerr = "";
        int i, ok = 0, unread = 0, ncerr = 0;

        if (!json)
                fprintf(fp,
                        "group \"%s\", input \"%s\" (%d partitions), state "
                        "topic \"%s\"\n%9s %-12s %10s %10s %10s %10s %9s "
                        "%10s %-34s %s\n",
                        cfg->group, cfg->topic_input, n, cfg->state_topic,
                        "partition", "snapshot", "offset", "delivered",
                        "committed", "end", "entities", "bytes", "written",
                        "next owner");
        for (i = 0; i < n; i++) {
                const gws_state_view_t *v = &rows[i];
                int good = v->result == GWS_STATE_OK;
                /* a record read (unreadable: not known if there is one) */
                int has = v->result != GWS_STATE_MISSING &&
                          v->result != GWS_STATE_UNREADABLE;
                ok += good;
                unread += v->result == GWS_STATE_UNREADABLE;
                inspect_plan(v, plan, sizeof(plan));
                if (good)
                        snprintf(when, sizeof(when), "%s (%llds ago)",
                                 gws_time_format(v->info.written_ms, tb,
                                                 sizeof(tb)),
                                 (long long)((now - v->info.written_ms) /
                                             1000));
                else
                        snprintf(when, sizeof(when), "-");
                if (json) {
                        gws_buf_reset(&b);
                        gws_buf_printf(&b,
                                       "{\"partition\":%d,\"snapshot\":\"%s\","
                                       "\"offset\":%lld,\"delivered\":%lld,"
                                       "\"committed\":",
                                       (int)v->partition,
                                       gws_state_result_name(v->result),
                                       (long long)(good ? v->info.offset : -1),
                                       (long long)(good ? v->info.delivered
                                                        : -1));
                        if (v->committed_error[0]) {
                                gws_buf_puts(&b, "null,\"committed_error\":");
                                gws_buf_json_str(&b, v->committed_error,
                                                 strlen(v->committed_error));
                        } else {
                                gws_buf_printf(&b, "%lld",
                                               (long long)v->committed);
                        }
                        gws_buf_printf(&b,
                                       ",\"end\":%lld,"
                                       "\"entities\":%u,\"bytes\":%zu,"
                                       "\"written_ms\":%lld,\"next_owner\":",
                                       (long long)v->end, v->entities,
                                       has ? v->info.record_len : 0,
                                       (long long)(good ? v->info.written_ms
                                                        : 0));
                        gws_buf_json_str(&b, plan, strlen(plan));
                        gws_buf_puts(&b, ",\"reason\":");
                        gws_buf_json_str(&b, good ? "" : v->reason,
                                         good ? 0 : strlen(v->reason));
                        gws_buf_puts(&b, "}\n");
                        if (b.buf)
                                fwrite(b.buf, 1, b.len, fp);
                        continue;
                }
                fprintf(fp, "%9d %-12s ", (int)v->partition,
                        gws_state_result_name(v->result));
                put_num(fp, 10, good ? v->info.offset : -1);
                put_num(fp, 10, good ? v->info.delivered : -1);
                if (v->committed_error[0])
                        fprintf(fp, "%10s ", "?");
                else
                        put_num(fp, 10, v->committed);
                put_num(fp, 10, v->end);
                put_num(fp, 9, good ? (int64_t)v->entities : -1);
                put_num(fp, 10, has ? (int64_t)v->info.record_len : -1);
                /* why not (missing: the plan says it) */
                fprintf(fp, "%-34s %s%s%s\n", when, plan,
                        good || v->result == GWS_STATE_MISSING ? "" : ": ",
                        good || v->result == GWS_STATE_MISSING ? ""
                                                               : v->reason);
        }
        for (i = 0; i < n; i++)
                if (rows[i].committed_error[0]) {
                        ncerr++;
                        cerr = rows[i].committed_error;
                }
        if (!json && unread)
                fprintf(fp, "%d of %d partitions have a usable snapshot; "
                            "%d unknown: their state partition could not "
                            "be read\n",
                        ok, n, unread);
        else if (!json)
                fprintf(fp, "%d of %d partitions have a usable snapshot\n", ok,
                        n);
        if (!json && ncerr)
                fprintf(fp, "the committed offsets of %d partition(s) are "
                            "unknown (\"?\"): %s\n",
                        ncerr, cerr);
        gws_buf_free(&b);
}
