/* detect.c - per-partition streaming detectors and the alert lifecycle.
 *
 * Entities (open-addressing table per partition with sampled LRU
 * eviction, capped by detectors.max_entities and the process byte budget
 * detectors.max_state_mb):
 *   K    one per field set of detectors.numeric_keys (default provider+
 *        model, gateway+provider+model, user_id, gateway): robust baselines
 *        of latency, ttfb, tokens in/out and cost; anomaly windows per
 *        numeric kind, allocated at the entity's first anomaly. The sets
 *        gateway and gateway+provider+model share the G and GPM entities.
 *   GPM  gateway+provider+model: also novelty (first seen; the keys a
 *        partition has seen are remembered apart, as 64-bit fingerprints,
 *        so an evicted model that comes back is not new: known_add()).
 *   GP   gateway+provider: error share baseline and window (error_rate).
 *   G    gateway: events per window baseline (rate_spike / rate_drop),
 *        first-seen time (novelty warm-up; once past it, remembered with
 *        the models seen: gw_warm()), heavy-hitter summaries.
 *   GU, GI  gateway+user, gateway+client_ip: heavy-hitter alerts only.
 *
 * Numeric deviation works on log1p(x) (log for costs): latencies, token
 * counts and costs are heavy-tailed (lognormal), and on the log scale an
 * exponentially weighted mean and mean absolute deviation are good robust
 * baselines. Updates beyond 2.5 sigma are clipped there and learned 20x
 * slower, so an incident does not teach the baseline that it is normal,
 * while slow drift is still followed (alpha = max(1/n, 1/200)). That is
 * per event: on a busy entity (tens to hundreds of events per second)
 * even the clipped updates absorbed a step within seconds, before it
 * could page. So while an entity's anomalies of a kind are an incident in
 * progress (min_anomalies, and min_share / 3 of its events in the current
 * bucket or the window), its baselines of that kind do not learn at all,
 * for at most 10 windows (then a lasting shift is learned; nk_hold_note()).
 * Sets without the model field learn values relative to the gateway's
 * baseline of the request's model (see numeric()).
 *
 * An anomalous event alone never pages: an alert opens when, in the last
 * window (detectors.window_s of event time, in 6 buckets), at least
 * min_anomalies events of that (kind, entity) were anomalous and they are
 * at least min_share of its events; it is updated at most every
 * update_interval_s while anomalies continue and resolved after resolve_s
 * without one (a rate_drop also once its gateway has sent nothing for
 * gone_after_s: it is taken as gone; a rate_drop or rate_spike once the
 * gateway's new level has held for rate_settle_s: it is the baseline
 * then, rate_settle()). Numeric kinds test the window both
 * ways, with hysteresis: an anomaly counts for an open alert only while
 * the window's anomalies are at least min_share / 3 of its events, so the
 * z-test's usual false positives (a few per thousand events: one every
 * few seconds on a busy entity) do not keep it open after the incident;
 * and anomalies pending before an alert opens are dropped once
 * min_anomalies * 3 / min_share of the entity's events followed one
 * without another, so the alert's start, first event ids and values are
 * the incident's, not those of strays before it (GOING_DIV,
 * alert_anomaly()). Error storms use a one-sided binomial z-test against
 * the entity's baseline share, so 3 errors out of 5 requests do not page.
 */
#include "gwsieve/detect.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gwsieve/hh.h"
#include "gwsieve/log.h"
#include "gwsieve/placement.h"
#include "gwsieve/redact.h"
#include "gwsieve/util.h"

/* ------------------------------------------------------------------------
 * private types
 * ------------------------------------------------------------------------ */

#define NBUCKETS 6     /* buckets per window */
#define MAX_IDS 20     /* alert.md: event_ids has at most 20 entries */
#define ALPHA_MIN (1.0 / 200.0) /* baseline memory ~200 events */
#define SIGMA_FLOOR 0.05        /* log scale: +-5% is never anomalous */
#define HUBER_K 2.5             /* robust update: clip beyond 2.5 sigma */
#define RATE_WARMUP_WINDOWS 3   /* complete windows before rates count */
#define ERROR_PRIOR 0.02        /* error share assumed before any data */
#define ERROR_MEMORY 2000.0     /* events the error baseline remembers */

/* Hysteresis of numeric alerts: an incident goes on while its anomalies
 * are at least min_share / GOING_DIV of the entity's events (it opens at
 * min_share), and holds the kind's baselines meanwhile (nk_hold_note()).
 * Below that its anomalies are strays: the usual false positives of the
 * z-test (a few per thousand events, one every few seconds on a busy
 * entity), which neither keep an alert open nor start one. */
#define GOING_DIV 3.0
/* An incident holds the baselines of its kind for at most 10 windows
 * (nk_hold_note()): a lasting shift is then learned, as before. */
#define HOLD_BUCKETS (10 * NBUCKETS)

#define RATE_RING 4        /* open rate windows per gateway (lateness) */
#define FUTURE_CONFIRM 20  /* events in a row that confirm a ts jump */
#define RATE_GAP_MAX 100   /* windows closed one by one after a silence */

typedef enum { K_LATENCY, K_TOKENS, K_COST, K_ERROR_RATE, K_RATE_SPIKE,
               K_RATE_DROP, K_NEW_VALUE, K_HEAVY_HITTER, K__CNT } akind_t;

static const char *kind_names[K__CNT] = {"latency", "tokens", "cost",
                                         "error_rate", "rate_spike",
                                         "rate_drop", "new_value",
                                         "heavy_hitter"};
static const char *kind_metric[K__CNT] = {
    "latency_ms",   "tokens_in",      "cost_usd", "error_share",
    "events_per_window", "events_per_window", "events", "share"};

/* Entity types; E_K0 + i is numeric key set i (detectors.numeric_keys)
 * unless that set is exactly gateway_id (E_G) or gateway_id+provider+model
 * (E_GPM), which share those entities. */
typedef enum { E_GPM, E_GP, E_G, E_GU, E_GI, E_K0 } etype_t;

/* Numeric alert kinds: windows per entity (ent_t.nwin). */
enum { NK_LAT, NK_TOK, NK_COST, NK__CNT };
static const akind_t nk_kind[NK__CNT] = {K_LATENCY, K_TOKENS, K_COST};

static const char *const shape_fields[5][3] = {
    {"gateway_id", "provider", "model"},
    {"gateway_id", "provider", NULL},
    {"gateway_id", NULL, NULL},
    {"gateway_id", "user_id", NULL},
    {"gateway_id", "client_ip", NULL}};

typedef struct {
        int64_t idx[NBUCKETS];
        uint32_t n[NBUCKETS], k[NBUCKETS];
} win_t;

/* A robust baseline (num_observe0()). */
typedef struct {
        uint32_t n;            /* values learned; stops at NUM_N_MAX */
        double mean, absdev;   /* exponentially weighted, log scale */
} num_t;
/* Where a baseline's count stops: far above any warm-up (at most
 * 10,000,000 rows, series.warmup_rows) and the 199 values after which
 * alpha is ALPHA_MIN, so a saturated baseline is warm and learns at
 * ALPHA_MIN; the largest count a snapshot's u32 carries as it is. */
#define NUM_N_MAX UINT32_MAX
/* A bound of a baseline's mean (and half one of its absdev): values are
 * log1p(x) or log(x) of finite x >= 0 (cost > 0), so within
 * [log(DBL_TRUE_MIN), log(DBL_MAX)] = [-744.4, 709.8], and relative to
 * the gateway's baseline (sets without the model) differences of two,
 * within +-1454.2; the exponentially weighted mean stays among them. */
#define NUM_ABS_MAX 1500.0

/* An entity's numeric alert kinds (NK_*): the anomaly windows, and
 * whether an incident holds the kind's baselines (they do not learn from
 * buckets hold_from..hold_to, for at most HOLD_BUCKETS; nk_hold_note()). */
typedef struct {
        win_t w[NK__CNT];          /* k: anomalies; n: the events an
                                    * open alert of another entity
                                    * explained */
        int64_t hold_from[NK__CNT]; /* first bucket of the hold */
        int64_t hold_to[NK__CNT];  /* its last bucket so far; before the
                                    * current bucket: none */
} nkw_t;

enum { F_LAT, F_TIN, F_TOUT, F_COST, F_TTFB, F__CNT };

/* Concentration: a heavy-hitter summary (gws_hh_t, hh.h) per gateway
 * and dimension. */
typedef gws_hh_t hh_t;

enum { HH_IP, HH_USER, HH__CNT };

struct ent_s;

typedef struct alert_s {
        struct ent_s *ent;
        struct alert_s *enext;         /* the entity's alerts */
        struct alert_s *onext, *oprev; /* open list */
        akind_t kind;
        int open;
        char id[24];
        int64_t opened_ts, last_anom_ts, last_update_ts, first_anom_ts;
        double observed, expected, score; /* of the latest anomaly */
        double peak_score;
        uint32_t anomalies;               /* since opened; stops at
                                           * UINT32_MAX */
        int tokens;                       /* heavy_hitter: token share */
        int rewound;                      /* resolved as event time
                                           * moved back before it */
        int gone;                         /* rate_drop resolved as its
                                           * gateway sent nothing for
                                           * gone_after_s */
        int64_t silent_from;              /* rate_drop: start of the
                                           * gateway's empty windows in a
                                           * row; -1: it sends */
        double settled;                   /* rate_drop, rate_spike:
                                           * resolved as the new level
                                           * (rate_settle_s), this count
                                           * its baseline now; 0: not */
        char *ids[MAX_IDS];               /* most recent contributors */
        int nids, idpos;
        uint32_t last_n;                  /* numeric kinds: the entity's
                                           * events in the bucket of
                                           * last_anom_ts up to that
                                           * anomaly (UINT32_MAX: not
                                           * known, a format 1-2
                                           * snapshot) */
} alert_t;

/* What only gateway (G) and gateway+provider (GP) entities keep. */
typedef struct gx_s {
        double base;        /* GP: error share; G: events per window */
        uint32_t base_n;    /* GP: events seen; G: windows closed */
        uint8_t rate_part;  /* G: counting restarted partway through
                             * window rate_win (event time moved back,
                             * or the gateway was gone): it is neither
                             * judged nor learned */
        int64_t rate_win;   /* G: oldest open tumbling window; GP: last
                             * bucket index */
        uint32_t rcnt[RATE_RING]; /* G: events of windows rate_win.. */
        int64_t hh_win;     /* G: window the hh counts are for */
        struct gx_s *gnext; /* G: list of gateways (the rate scan of
                             * every watermark second reads only these
                             * parts, one cache miss per gateway) */
        struct ent_s *ent;  /* G: the entity */
        hh_t *hh[HH__CNT];  /* G: concentration (lazily, when busy) */
} gx_t;

/* An entity. The fields a lookup compares (h, type, klen) share the
 * first cache line; the key follows the state. */
typedef struct ent_s {
        uint64_t h;         /* gws_hash64_fast of the key, seeded with
                             * the type */
        uint32_t seen;      /* d->seq of the last event that used it:
                             * pinning and (sampled) LRU eviction */
        uint16_t klen;
        uint8_t type;       /* etype_t */
        uint8_t held;       /* bit NK_*: a hold of the kind's baselines
                             * was set and may still stand (nk_held();
                             * in the padding: the per-event check reads
                             * nwin only then) */
        int64_t first_ts;
        win_t win;          /* events (n) of the numeric key sets' entities,
                             * the share every numeric kind is judged on
                             * (their anomalies: nwin); GP: events and
                             * errors (k) for the error share */
        num_t num[F__CNT];  /* GPM and the numeric key sets */
        struct gx_s *gx;    /* G and GP only (in the same allocation,
                             * after the key); NULL for the others, which
                             * are most entities (users) */
        nkw_t *nwin;        /* numeric kinds (NK_*), from the entity's
                             * first anomaly on (lazily: quiet users and
                             * IPs cost no windows) */
        alert_t *alerts;    /* at most one per kind (alert_t.enext);
                             * a list, as most entities never have one */
        char key[];
} ent_t;

/* Open addressing (linear probing) over {hash, entity}: a probe compares
 * hashes in the table and touches only the entity it finds. */
typedef struct {
        uint64_t h;
        ent_t *e; /* NULL: free */
} slot_t;

/* One of the event's entity keys (event_keys()): ok 0 when the event
 * has no entity of this type (a key set's field is absent or empty, or
 * the key is too long). */
typedef struct gws_detect_ekey_s ekey_t;
_Static_assert(E_K0 + GWS_MAX_KEYSETS == GWS_DETECT_KEYS_MAX,
               "gws_detect_keys_t holds one key per entity type");

struct gws_detect_s {
        const gws_config_t *cfg;
        int32_t partition;
        slot_t *slots;
        size_t cap, max_cap;       /* slots (power of two) */
        /* The event's key per entity type (each type has at most one
         * per event), built and hashed once by event_keys(): before, the
         * prefetch and the lookups built each key again (10 builds of 5
         * keys per event, ~41M of the detector's 196M Ir on 30k events).
         * kp: the current event's (gws_detect_event_keyed(); only during
         * an event); own: gws_detect_event()'s. */
        const gws_detect_keys_t *kp;
        gws_detect_keys_t own;
        uint64_t rng;              /* eviction sampling (xorshift64) */
        gx_t *gateways;            /* G entities, for the rate scan */
        int64_t rate_lo;           /* no gateway's open window is before
                                    * this one (a lower bound; INT64_MIN
                                    * until the first scan): the per-second
                                    * tick scans only when a window may
                                    * close, once per window, not on every
                                    * second of event time */
        alert_t *open_head;        /* open alerts */
        /* The gateway+provider+model keys this partition has seen, as
         * fingerprints (known_fp()), and the gateways past their novelty
         * warm-up (warm_fp()): open addressing, 0 free, at most
         * KNOWN_MAX; in the byte budget. A GPM entity created for a key
         * in it is not novel (its entity was evicted, not new). */
        uint64_t *known;
        size_t known_cap, known_n;
        size_t nents;
        size_t bytes;              /* this partition's entity bytes */
        size_t max_bytes;          /* detectors.max_state_mb, process */
        int64_t wm;                /* watermark: highest ts seen */
        int64_t lateness_ms;       /* detectors.max_lateness_s, capped */
        int64_t window_ms;
        int future_run;            /* events in a row far ahead of wm */
        int past_run;              /* events in a row far behind a wm
                                    * far ahead of the wall clock */
        uint64_t run_gw;           /* gateway (hash | 1) that began the
                                    * run (ahead or back); 0: not known
                                    * (a restore) */
        int run_multi;             /* another gateway joined the run */
        uint32_t seq;              /* events seen (entity pinning) */
        uint64_t changes;          /* calls that may change the state:
                                    * gws_detect_changes() */
        int quiet;                 /* this event: late or skewed */
        int64_t last_tick;         /* wm second of the last tick */
        int64_t bucket_ms;
        gws_detect_stats_t st;
        gws_buf_t key, out, alert; /* alert: the rendered alert */
        gws_buf_t shown;           /* an alert's entity key as shown
                                    * (redact.ip_truncate) */
        int shown_ip;              /* its client_ip elements replaced by
                                    * "[REDACTED:ip]" */
        uint8_t idkey[16];         /* SipHash key of alert ids, from
                                    * redact.alert_id_key (alert_id_set()) */
        int idkeyed;               /* 0: no key, ids as before */
        gws_buf_t idin;            /* what a keyed id hashes */
        gws_keyset_t ks[GWS_MAX_KEYSETS]; /* detectors.numeric_keys */
        etype_t kstype[GWS_MAX_KEYSETS];
        int ksraw[GWS_MAX_KEYSETS]; /* set pins the model: raw values;
                                     * else values relative to the
                                     * gateway's baseline of the model */
        int nks;
};

/* ------------------------------------------------------------------------
 * entity table
 * ------------------------------------------------------------------------ */

/* Bytes of entity state in this process, all partitions together
 * (detectors.max_state_mb bounds it). Atomic: workers own different
 * partitions but share the budget. */
static size_t state_bytes;
/* Process-wide counters for metrics (any thread reads them). */
static uint64_t g_entities, g_evictions, g_late, g_skewed;
/* event time moved across max_future_s: ahead (a confirmed run), back
 * (wm_rewind()) */
static uint64_t g_jumps_ahead, g_jumps_back;

static int has_gx(int type) {
        return type == E_G || type == E_GP;
}

/* \p n bytes of state more (less) in this partition and the process. */
static void bytes_add(gws_detect_t *d, size_t n) {
        __atomic_add_fetch(&state_bytes, n, __ATOMIC_RELAXED);
        d->bytes += n;
}

static void bytes_sub(gws_detect_t *d, size_t n) {
        __atomic_sub_fetch(&state_bytes, n, __ATOMIC_RELAXED);
        d->bytes -= n;
}

/* Offset of the gx part: after the key, aligned. */
static size_t gx_off(size_t klen) {
        return (sizeof(ent_t) + klen + 1 + 7) & ~(size_t)7;
}

static size_t ent_size(int type, size_t klen) {
        return has_gx(type) ? gx_off(klen) + sizeof(gx_t)
                            : sizeof(ent_t) + klen + 1;
}

/* Alerts are state like the rest: an alert_t, and each event id it keeps
 * (up to MAX_IDS of up to 128 bytes) counts in the byte budget
 * (bytes_add() where they are allocated, bytes_sub() where freed). */
static size_t id_bytes(const char *id) {
        return strlen(id) + 1;
}

/* Frees the alert's event ids. */
static void alert_ids_clear(gws_detect_t *d, alert_t *a) {
        int i;
        for (i = 0; i < a->nids; i++) {
                bytes_sub(d, id_bytes(a->ids[i]));
                free(a->ids[i]);
        }
        a->nids = a->idpos = 0;
}

static void alert_free(gws_detect_t *d, alert_t *a) {
        if (!a)
                return;
        alert_ids_clear(d, a);
        bytes_sub(d, sizeof(*a));
        free(a);
}

/* The entity's alert of \p kind, or NULL. */
static alert_t *ent_alert(const ent_t *e, akind_t kind) {
        alert_t *a;
        for (a = e->alerts; a; a = a->enext)
                if (a->kind == kind)
                        return a;
        return NULL;
}

static int ent_alert_open(const ent_t *e, akind_t kind) {
        const alert_t *a = ent_alert(e, kind);
        return a && a->open;
}

/* Takes \p a off its entity's list (the caller frees it). */
static void ent_alert_unlink(alert_t *a) {
        alert_t **pp = &a->ent->alerts;
        while (*pp && *pp != a)
                pp = &(*pp)->enext;
        if (*pp)
                *pp = a->enext;
        a->enext = NULL;
}

static int ent_has_open(const ent_t *e) {
        const alert_t *a;
        for (a = e->alerts; a; a = a->enext)
                if (a->open)
                        return 1;
        return 0;
}

static void hh_free(gws_detect_t *d, ent_t *e) {
        int i;
        if (!e->gx)
                return;
        for (i = 0; i < HH__CNT; i++) {
                hh_t *hh = e->gx->hh[i];
                if (!hh)
                        continue;
                bytes_sub(d, gws_hh_size(hh->nslots));
                free(hh);
                e->gx->hh[i] = NULL;
        }
}

#define NWIN_BYTES sizeof(nkw_t)

/* Frees what an entity owns besides itself; adjusts the byte counts. */
static void ent_free_parts(gws_detect_t *d, ent_t *e) {
        alert_t *a, *next;
        for (a = e->alerts; a; a = next) {
                next = a->enext;
                alert_free(d, a);
        }
        e->alerts = NULL;
        hh_free(d, e);
        if (e->nwin) {
                bytes_sub(d, NWIN_BYTES);
                free(e->nwin);
        }
}

/* Table bytes per slot count, for the byte budget. */
#define SLOTS_BYTES(n) ((n) * sizeof(slot_t))

/* Removes \p e from the table (backward-shift deletion keeps every
 * remaining entity reachable from its home slot) and frees it. */
static void ent_remove(gws_detect_t *d, ent_t *e) {
        size_t mask = d->cap - 1, i = e->h & mask, j;
        while (d->slots[i].e != e)
                i = (i + 1) & mask;
        for (j = (i + 1) & mask; d->slots[j].e; j = (j + 1) & mask) {
                size_t home = d->slots[j].h & mask;
                /* The entry at j may fill the hole at i if its home is
                 * not cyclically within (i, j]. */
                if (((j - home) & mask) >= ((j - i) & mask)) {
                        d->slots[i] = d->slots[j];
                        i = j;
                }
        }
        d->slots[i].e = NULL;
        d->slots[i].h = 0;
        if (e->type == E_G) {
                gx_t **gp = &d->gateways;
                while (*gp && *gp != e->gx)
                        gp = &(*gp)->gnext;
                if (*gp)
                        *gp = e->gx->gnext;
        }
        ent_free_parts(d, e);
        bytes_sub(d, ent_size(e->type, e->klen));
        free(e);
        d->nents--;
        __atomic_sub_fetch(&g_entities, 1, __ATOMIC_RELAXED);
}

/* An entity the current event uses (the caller holds a pointer to it) or
 * one carrying an open alert must stay. */
static int ent_pinned(const gws_detect_t *d, const ent_t *e) {
        return e->seen == d->seq || ent_has_open(e);
}

#define EVICT_SAMPLES 16 /* entities compared per eviction */

/* Evicts an entity that is not pinned: of EVICT_SAMPLES entities from a
 * random place in the table, the one unused for longest (sampled LRU, as
 * Redis does: no list to relink on every use). Deterministic: the
 * sampling generator is seeded with the partition.
 * @returns 1, or 0 if nothing could be evicted. */
static int evict_one(gws_detect_t *d) {
        size_t mask = d->cap - 1, i, scanned, sampled = 0;
        ent_t *best = NULL;
        uint64_t x = d->rng;
        if (!d->nents)
                return 0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        d->rng = x;
        for (i = x & mask, scanned = 0; scanned < d->cap;
             i = (i + 1) & mask, scanned++) {
                ent_t *e = d->slots[i].e;
                if (!e)
                        continue;
                if (!ent_pinned(d, e) &&
                    (!best || d->seq - e->seen > d->seq - best->seen))
                        best = e;
                if (++sampled >= EVICT_SAMPLES && best)
                        break;
        }
        if (!best)
                return 0;
        ent_remove(d, best);
        d->st.evictions++;
        __atomic_add_fetch(&g_evictions, 1, __ATOMIC_RELAXED);
        return 1;
}

/* Makes room for \p n more bytes in the process-wide budget by evicting
 * this partition's least recently used entities (those of the event at
 * hand are pinned: evict_one()). Every allocation of detector state goes
 * through it: a new entity, anomaly windows, heavy-hitter summaries, the
 * models seen. @returns 0, or -1 if nothing more can go (all pinned or
 * carrying open alerts). */
static int make_room(gws_detect_t *d, size_t n) {
        while (__atomic_load_n(&state_bytes, __ATOMIC_RELAXED) + n >
               d->max_bytes)
                if (!evict_one(d))
                        return -1;
        return 0;
}

/* Doubles the table (load factor at most 3/4). The table starts small: a
 * partition with a hundred entities must not pay for max_entities slots
 * (at 96 partitions that was ~30 MB of RSS). On allocation failure the
 * table stays as it is (ent_get then refuses new entities at the limit).
 * @returns 0 or -1. */
static int table_grow(gws_detect_t *d) {
        size_t nc = d->cap * 2, i, mask = nc - 1;
        slot_t *ns = calloc(nc, sizeof(*ns));
        if (!ns)
                return -1;
        for (i = 0; i < d->cap; i++) {
                size_t j;
                if (!d->slots[i].e)
                        continue;
                for (j = d->slots[i].h & mask; ns[j].e; j = (j + 1) & mask)
                        ;
                ns[j] = d->slots[i];
        }
        free(d->slots);
        d->slots = ns;
        d->cap = nc;
        return 0;
}

/* Table hash of a \p type entity's key (seeded with the type). */
static uint64_t ent_hash(const char *key, size_t klen, etype_t type) {
        return gws_hash64_fast(key, klen, (uint64_t)type);
}

/* 1 if the \p n bytes at \p a and \p b are equal: memcmp() == 0, with
 * two or four overlapping fixed-size loads a side up to 32 bytes (keys
 * are 5-40 bytes and a hit compares one whole key: libc's memcmp cost
 * ~19 Ir a call there). */
static inline int key_eq(const char *a, const char *b, size_t n) {
        uint64_t a0, a1, b0, b1, d0;
        uint32_t x0, x1, y0, y1;
        if (n >= 16 && n <= 32) {
                memcpy(&a0, a, 8);
                memcpy(&b0, b, 8);
                memcpy(&a1, a + 8, 8);
                memcpy(&b1, b + 8, 8);
                d0 = (a0 ^ b0) | (a1 ^ b1);
                memcpy(&a0, a + n - 16, 8);
                memcpy(&b0, b + n - 16, 8);
                memcpy(&a1, a + n - 8, 8);
                memcpy(&b1, b + n - 8, 8);
                return !(d0 | (a0 ^ b0) | (a1 ^ b1));
        }
        if (n >= 8 && n < 16) {
                memcpy(&a0, a, 8);
                memcpy(&b0, b, 8);
                memcpy(&a1, a + n - 8, 8);
                memcpy(&b1, b + n - 8, 8);
                return !((a0 ^ b0) | (a1 ^ b1));
        }
        if (n >= 4 && n < 8) {
                memcpy(&x0, a, 4);
                memcpy(&y0, b, 4);
                memcpy(&x1, a + n - 4, 4);
                memcpy(&y1, b + n - 4, 4);
                return !((x0 ^ y0) | (x1 ^ y1));
        }
        return !memcmp(a, b, n);
}

/* Creates the \p type entity of the \p klen bytes at \p key (ent_find()
 * found none), making room for it. @returns it, or NULL (not tracked:
 * the budget is held by entities that cannot go, or no memory). */
static ent_t *ent_create(gws_detect_t *d, etype_t type, const char *key,
                         size_t klen, uint64_t h) {
        size_t mask, i;
        ent_t *e;
        if (d->nents >= (size_t)d->cfg->det_max_entities)
                evict_one(d);
        /* The process-wide byte budget: make room from this partition's
         * own least recently used entities; if none can go (all carry
         * open alerts), the new entity is not tracked. */
        if (make_room(d, ent_size(type, klen)) == -1) {
                d->st.untracked++;
                return NULL;
        }
        if ((d->nents + 1) * 4 > d->cap * 3) {
                if (d->cap >= d->max_cap || table_grow(d) == -1) {
                        /* Full: keep a free slot so probes end. */
                        if ((d->nents + 2) > d->cap && !evict_one(d)) {
                                d->st.untracked++;
                                return NULL;
                        }
                }
        }
        mask = d->cap - 1; /* the table may have grown or shifted */
        if (!(e = calloc(1, ent_size(type, klen))))
                return NULL;
        bytes_add(d, ent_size(type, klen));
        e->h = h;
        e->type = (uint8_t)type;
        e->seen = d->seq;
        e->klen = (uint16_t)klen;
        memcpy(e->key, key, klen);
        e->first_ts = d->wm;
        if (has_gx(type)) {
                e->gx = (gx_t *)((char *)e + gx_off(klen));
                e->gx->rate_win = -1;
        }
        for (i = h & mask; d->slots[i].e; i = (i + 1) & mask)
                ;
        d->slots[i].h = h;
        d->slots[i].e = e;
        d->nents++;
        __atomic_add_fetch(&g_entities, 1, __ATOMIC_RELAXED);
        if (type == E_G) {
                e->gx->ent = e;
                e->gx->gnext = d->gateways;
                d->gateways = e->gx;
        }
        return e;
}

/* Finds (and with \p create, creates) the \p type entity of the \p klen
 * bytes at \p key, whose ent_hash() is \p h; sets *created when it
 * created it. \p key must not be in memory that creating an entity
 * frees (it may evict). Inline: the lookup is a few instructions per
 * probe, a call saving and restoring registers cost as much (~20 Ir of
 * ~100 per lookup, 146k lookups on 30k events); creating is rare and
 * stays out of line. */
static inline ent_t *ent_find(gws_detect_t *d, etype_t type,
                              const char *key, size_t klen, uint64_t h,
                              int create, int *created) {
        size_t mask = d->cap - 1, i;
        ent_t *e;
        if (created)
                *created = 0;
        for (i = h & mask; d->slots[i].e; i = (i + 1) & mask) {
                e = d->slots[i].e;
                if (d->slots[i].h == h && e->type == type &&
                    e->klen == klen && key_eq(e->key, key, klen)) {
                        e->seen = d->seq;
                        return e;
                }
        }
        if (!create || !(e = ent_create(d, type, key, klen, h)))
                return NULL;
        if (created)
                *created = 1;
        return e;
}

/* ent_find() for the key in d->key (built by key_build()). */
static ent_t *ent_get_ex(gws_detect_t *d, etype_t type, int create,
                         int *created) {
        return ent_find(d, type, d->key.buf, d->key.len,
                        ent_hash(d->key.buf, d->key.len, type), create,
                        created);
}

static ent_t *ent_get(gws_detect_t *d, etype_t type, int create) {
        return ent_get_ex(d, type, create, NULL);
}

/* ent_find() for the current event's key of \p type (event_keys());
 * NULL when the event has none. */
static inline ent_t *ent_ev(gws_detect_t *d, etype_t type, int create,
                            int *created) {
        const ekey_t *k = &d->kp->ek[type];
        if (!k->ok) {
                if (created)
                        *created = 0;
                return NULL;
        }
        return ent_find(d, type, d->kp->buf.buf + k->off, k->len, k->h,
                        create, created);
}

/* ------------------------------------------------------------------------
 * known models: the gateway+provider+model keys a partition has seen
 *
 * A model is new on a gateway when its GPM entity is created after the
 * gateway's novelty warm-up; but an entity is also created again after
 * its eviction (memory pressure: many users or IPs), and that model is
 * not new. So the keys seen are kept apart from the entities, as 64-bit
 * fingerprints (8 bytes a key at a load factor of at most 3/4, against
 * ~300 for an entity), up to KNOWN_MAX per partition. A model whose
 * fingerprint equals one seen before is taken as known: with n keys seen
 * a new model is missed with probability n / 2^64 (below 4e-15 at
 * KNOWN_MAX). Past KNOWN_MAX keys (or when the budget cannot make room)
 * new keys are not remembered: an eviction of theirs can be taken for a
 * new model again, as before. Only GPM creations look it up: nothing on
 * the per-event path.
 * ------------------------------------------------------------------------ */

#define KNOWN_MAX (1u << 16) /* keys per partition: <= 1 MiB of table */

/* Fingerprint of a GPM key: gws_hash64 (stable: it is snapshotted);
 * never 0, which marks a free slot. */
static uint64_t known_fp(const char *key, size_t len) {
        uint64_t h = gws_hash64(key, len, 0x6b6e6f776e6d646cULL);
        return h ? h : 1;
}

static int known_has(const gws_detect_t *d, uint64_t fp) {
        size_t mask = d->known_cap - 1, i;
        if (!d->known_cap)
                return 0;
        for (i = fp & mask; d->known[i]; i = (i + 1) & mask)
                if (d->known[i] == fp)
                        return 1;
        return 0;
}

/* Doubles the table, making room in the byte budget from this
 * partition's least recently used entities (the caller's entities are
 * pinned: evict_one()). @returns 0, or -1 (the table stays). */
static int known_grow(gws_detect_t *d) {
        size_t nc = d->known_cap ? d->known_cap * 2 : 64, i, j,
               more = (nc - d->known_cap) * sizeof(uint64_t);
        uint64_t *nt;
        if (make_room(d, more) == -1 || !(nt = calloc(nc, sizeof(*nt))))
                return -1;
        for (i = 0; i < d->known_cap; i++) {
                if (!d->known[i])
                        continue;
                for (j = d->known[i] & (nc - 1); nt[j]; j = (j + 1) & (nc - 1))
                        ;
                nt[j] = d->known[i];
        }
        free(d->known);
        d->known = nt;
        d->known_cap = nc;
        bytes_add(d, more);
        return 0;
}

/* Remembers fingerprint \p fp (known_fp()). @returns 1 if it was known
 * already, else 0 (remembered, or not: the table is full). */
static int known_add(gws_detect_t *d, uint64_t fp) {
        size_t i;
        if (known_has(d, fp))
                return 1;
        if (d->known_n >= KNOWN_MAX)
                return 0;
        if ((d->known_n + 1) * 4 > d->known_cap * 3 && known_grow(d) == -1)
                return 0;
        for (i = fp & (d->known_cap - 1); d->known[i];
             i = (i + 1) & (d->known_cap - 1))
                ;
        d->known[i] = fp;
        d->known_n++;
        return 0;
}

/* A gateway's novelty warm-up is kept the same way: once it has been
 * known for novelty_warmup_s, the fingerprint of its key (another seed
 * than the models': warm_fp()) joins the models seen, in the same table
 * and under the same KNOWN_MAX, and its entity's first_ts becomes
 * INT64_MIN ("warmed"). Its entity created again after an eviction (or
 * not restored) is warmed at once: the warm-up began again there, and
 * the new models of a long-known gateway were not reported. */
static uint64_t warm_fp(const char *key, size_t len) {
        uint64_t h = gws_hash64(key, len, 0x7761726d67617465ULL);
        return h ? h : 1;
}

/* Whether gateway \p g is past its warm-up at event time \p ts;
 * remembers it when it just got there. */
static int gw_warm(gws_detect_t *d, ent_t *g, int64_t ts) {
        if (g->first_ts == INT64_MIN)
                return 1;
        if (ts - g->first_ts < (int64_t)d->cfg->det_novelty_warmup_s * 1000)
                return 0;
        known_add(d, warm_fp(g->key, g->klen));
        g->first_ts = INT64_MIN;
        return 1;
}

#define KEY_MAX 60000 /* bytes: keys are bounded by klen's uint16 */

/* Key = fields joined by 0x1f (unit separator: cannot appear unescaped
 * in a way that collides, and keys are compared whole). */
static int key_build(gws_detect_t *d, const gws_str_t *a, const gws_str_t *b,
                     const gws_str_t *c) {
        static const char sep = 0x1f;
        size_t total = a->len + (b ? b->len + 1 : 0) + (c ? c->len + 1 : 0);
        if (total > KEY_MAX)
                return -1;
        gws_buf_reset(&d->key);
        if (gws_buf_append(&d->key, a->s, a->len) == -1)
                return -1;
        if (b && (gws_buf_append(&d->key, &sep, 1) == -1 ||
                  gws_buf_append(&d->key, b->s, b->len) == -1))
                return -1;
        if (c && (gws_buf_append(&d->key, &sep, 1) == -1 ||
                  gws_buf_append(&d->key, c->s, c->len) == -1))
                return -1;
        return 0;
}

static const gws_str_t *ev_field(const gws_event_t *ev, int f) {
        switch (f) {
        case GWS_KF_GATEWAY: return &ev->gateway_id;
        case GWS_KF_PROVIDER: return &ev->provider;
        case GWS_KF_MODEL: return &ev->model;
        case GWS_KF_ENDPOINT: return &ev->endpoint;
        case GWS_KF_USER: return &ev->user_id;
        default: return &ev->client_ip;
        }
}

/* Copies \p n bytes of a key field. The fields are short (gateway and
 * user ids, provider and model names: 5-30 bytes): up to 32 bytes, two
 * or four overlapping fixed-size moves (a few instructions) instead of a
 * call to libc's memcpy and its size dispatch (~12 Ir a call, 6 calls
 * per event). */
static inline void key_copy(char *dst, const char *src, size_t n) {
        uint64_t a, b, c, e;
        uint32_t x, y;
        if (n >= 16 && n <= 32) {
                memcpy(&a, src, 8);
                memcpy(&b, src + 8, 8);
                memcpy(&c, src + n - 16, 8);
                memcpy(&e, src + n - 8, 8);
                memcpy(dst, &a, 8);
                memcpy(dst + 8, &b, 8);
                memcpy(dst + n - 16, &c, 8);
                memcpy(dst + n - 8, &e, 8);
        } else if (n >= 8 && n < 16) {
                memcpy(&a, src, 8);
                memcpy(&b, src + n - 8, 8);
                memcpy(dst, &a, 8);
                memcpy(dst + n - 8, &b, 8);
        } else if (n >= 4 && n < 8) {
                memcpy(&x, src, 4);
                memcpy(&y, src + n - 4, 4);
                memcpy(dst, &x, 4);
                memcpy(dst + n - 4, &y, 4);
        } else if (n) {
                memcpy(dst, src, n);
        }
}

/* Appends \p v to \p k's bytes, whose room event_keys() reserved. */
static void evkey_put(gws_detect_keys_t *k, const gws_str_t *v) {
        key_copy(k->buf.buf + k->buf.len, v->s, v->len);
        k->buf.len += v->len;
}

/* Notes the key of \p type that ends at the end of \p k's bytes and
 * began at \p off, and hashes it. */
static void evkey_note(gws_detect_keys_t *kk, etype_t type, size_t off) {
        ekey_t *k = &kk->ek[type];
        size_t len = kk->buf.len - off;
        if (len > KEY_MAX)
                return;
        k->off = (uint32_t)off;
        k->len = (uint16_t)len;
        k->h = ent_hash(kk->buf.buf + off, len, type);
        k->ok = 1;
}

/* Builds the event's keys (the bytes key_build() would) and their
 * hashes into \p kk, once, for the prefetches and every lookup of the
 * event: gateway, gateway+provider and gateway+provider+model are
 * prefixes of one string; each key set of its own type (E_K0 + i)
 * follows. A key set has no key when one of its fields is absent or
 * empty. Reads only the detector's settings. */
static void event_keys(const gws_detect_t *d, const gws_event_t *ev,
                       gws_detect_keys_t *kk) {
        static const char sep = 0x1f;
        const gws_str_t *v[GWS_MAX_KEYSETS][3];
        size_t need = ev->gateway_id.len + ev->provider.len +
                      ev->model.len + 2, off;
        int i, f, has[GWS_MAX_KEYSETS];

        for (i = 0; i < E_K0 + d->nks; i++)
                kk->ek[i].ok = 0;
        for (i = 0; i < d->nks; i++) {
                const gws_keyset_t *ks = &d->ks[i];
                /* E_G and E_GPM sets: their keys are built below */
                has[i] = d->kstype[i] >= E_K0;
                for (f = 0; has[i] && f < ks->nfields; f++) {
                        v[i][f] = ev_field(ev, ks->field[f]);
                        has[i] = v[i][f]->s && v[i][f]->len;
                        need += v[i][f]->len + 1;
                }
        }
        gws_buf_reset(&kk->buf);
        if (kk->buf.size < need + 1 &&
            gws_buf_reserve(&kk->buf, need) == -1)
                return; /* no entity for this event, as key_build() */

        evkey_put(kk, &ev->gateway_id);
        evkey_note(kk, E_G, 0);
        kk->buf.buf[kk->buf.len++] = sep;
        evkey_put(kk, &ev->provider);
        evkey_note(kk, E_GP, 0);
        kk->buf.buf[kk->buf.len++] = sep;
        evkey_put(kk, &ev->model);
        evkey_note(kk, E_GPM, 0);

        for (i = 0; i < d->nks; i++) {
                if (!has[i])
                        continue;
                off = kk->buf.len;
                for (f = 0; f < d->ks[i].nfields; f++) {
                        if (f)
                                kk->buf.buf[kk->buf.len++] = sep;
                        evkey_put(kk, v[i][f]);
                }
                evkey_note(kk, d->kstype[i], off);
        }
        kk->buf.buf[kk->buf.len] = '\0';
}

/* ------------------------------------------------------------------------
 * windows and baselines
 * ------------------------------------------------------------------------ */

static void win_add(win_t *w, int64_t bidx, uint32_t n, uint32_t k) {
        int slot = (int)(bidx % NBUCKETS);
        if (w->idx[slot] != bidx) {
                if (w->idx[slot] > bidx)
                        return; /* later than the window: too late */
                w->idx[slot] = bidx;
                w->n[slot] = 0;
                w->k[slot] = 0;
        }
        w->n[slot] += n;
        w->k[slot] += k;
}

static void win_sum(const win_t *w, int64_t bidx, uint32_t *n, uint32_t *k) {
        int i;
        *n = *k = 0;
        for (i = 0; i < NBUCKETS; i++) {
                if (w->idx[i] > bidx - NBUCKETS && w->idx[i] <= bidx &&
                    (w->n[i] || w->k[i])) {
                        *n += w->n[i];
                        *k += w->k[i];
                }
        }
}

/* Events of \p w from bucket \p from on, up to bucket \p bidx, after the
 * first \p n of bucket \p from; UINT32_MAX when \p from is no longer in
 * the window. */
static uint32_t win_after(const win_t *w, int64_t from, uint32_t n,
                          int64_t bidx) {
        uint32_t c = 0;
        int i;
        if (from <= bidx - NBUCKETS || from > bidx)
                return UINT32_MAX;
        for (i = 0; i < NBUCKETS; i++)
                if (w->idx[i] >= from && w->idx[i] <= bidx)
                        c += w->n[i];
        return c > n ? c - n : 0;
}

/* 1 if \p k anomalies of \p n events keep an incident going (GOING_DIV). */
static int share_going(const gws_config_t *cfg, uint32_t n, uint32_t k) {
        return (double)k * GOING_DIV >= cfg->det_min_share * (double)n;
}

static double z_to_score(double z, double zthr) {
        double r;
        /* Not z <= 0: that is false for NaN, which then went through to
         * nextafter(1.0, 0.0), an alarm. A z that is not a number says
         * nothing about the value. */
        if (!(z > 0))
                return 0;
        r = z / zthr;
        /* 0.5 at the threshold, quadratic below, 1 - 0.5/r^2 above: smooth
         * (slope 1 on both sides of r = 1) and, unlike a Gaussian-style
         * 1 - 2^-(r^2), never rounded to exactly 1.0 for a z below ~1e8
         * thresholds, so strong outliers stay ordered. */
        if (r <= 1)
                return 0.5 * r * r;
        r = 1.0 - 0.5 / (r * r);
        return r < 1.0 ? r : nextafter(1.0, 0.0);
}

/* The numeric-deviation core on an already transformed value (log(x)
 * for costs, log1p(x) for counts and milliseconds): scores it against the
 * baseline, then, with \p learn, updates the baseline. The thresholds
 * come from the caller (events and series differ). @returns the robust z
 * (0 while warming up).
 * s->n saturates at NUM_N_MAX: one entity's field at 10k events/s
 * passes INT_MAX in ~2.5 days and UINT32_MAX in ~5. So n is compared
 * and incremented as what it is, unsigned: cast to int past INT_MAX it
 * was negative, and the baseline cold again (no z-score, no anomaly);
 * and alpha's n + 1 is taken in double: in 32 bits it was 0 at
 * UINT32_MAX, alpha 1/0, and the next update made mean and absdev NaN.
 * A saturated baseline stays warm, with alpha at ALPHA_MIN. */
static inline double num_observe0(int warmup, num_t *s, double lx,
                                  int learn) {
        double sigma, z = 0, alpha, dev, upd;
        int warm = (int64_t)s->n >= warmup;

        sigma = 1.2533 * s->absdev; /* E|X-mu| = sigma*sqrt(2/pi) */
        if (sigma < SIGMA_FLOOR)
                sigma = SIGMA_FLOOR;
        if (s->n == 0) {
                s->mean = lx;
                s->absdev = 0;
                s->n = 1;
                return 0;
        }
        if (warm)
                z = (lx - s->mean) / sigma;
        if (!learn)
                return z; /* held by an incident (nk_held()) */
        alpha = 1.0 / ((double)s->n + 1.0);
        if (alpha < ALPHA_MIN)
                alpha = ALPHA_MIN;
        upd = lx;
        if (warm && fabs(z) > HUBER_K) {
                /* Huber-style: clip far values and learn from them 20x
                 * slower, so a sustained incident does not become the
                 * baseline within a minute but a lasting shift is still
                 * followed over thousands of events. */
                alpha *= 0.05;
                upd = s->mean + (z > 0 ? HUBER_K : -HUBER_K) * sigma;
        }
        dev = fabs(upd - s->mean);
        s->mean += alpha * (upd - s->mean);
        s->absdev += alpha * (dev - s->absdev);
        if (s->n < NUM_N_MAX)
                s->n++;
        return z;
}

/* log1p of a token count: below LOG1P_TAB from a table that log1p itself
 * filled, so the same values, without a libm call of ~72 Ir (two per
 * successful event). Of the 56,114 counts numeric() transformed on
 * gwsieve-gen --events 30000 --seed 1, 161 were larger (of all the
 * counts in that input, 98.1% are below 4096). 32 KB per process, filled
 * once (gws_detect_new()). */
#define LOG1P_TAB 4096
static double log1p_tab[LOG1P_TAB];
static pthread_once_t log1p_once = PTHREAD_ONCE_INIT;

static void log1p_tab_fill(void) {
        int i;
        for (i = 0; i < LOG1P_TAB; i++)
                log1p_tab[i] = log1p((double)i);
}

static double log1p_count(int64_t n) {
        return n >= 0 && n < LOG1P_TAB ? log1p_tab[n] : log1p((double)n);
}

/* ------------------------------------------------------------------------
 * alerts
 * ------------------------------------------------------------------------ */

/* The entity's alert of \p kind, allocated at its first anomaly. Never
 * refused for the budget (an incident is not dropped for memory): its
 * bytes count, and the next entity created makes room for them by
 * evicting (not from here: callers such as the rate scan of tick() hold
 * other entities); entities with open alerts are pinned, so when they
 * hold the whole budget, new entities are not tracked (untracked). */
static alert_t *alert_get(gws_detect_t *d, ent_t *e, akind_t kind) {
        alert_t *a = ent_alert(e, kind);
        if (a)
                return a;
        if (!(a = calloc(1, sizeof(*a))))
                return NULL;
        bytes_add(d, sizeof(*a));
        a->ent = e;
        a->kind = kind;
        a->silent_from = -1;
        a->enext = e->alerts;
        e->alerts = a;
        return a;
}

static void alert_note_id(gws_detect_t *d, alert_t *a, const gws_str_t *id) {
        char *s;
        size_t n;
        if (!id->s)
                return;
        /* id is a slice of the input, not NUL-terminated: no strndup.
         * Cut at a character (the alert must stay UTF-8). */
        n = gws_utf8_cut(id->s, id->len, 128);
        if (!(s = malloc(n + 1)))
                return;
        memcpy(s, id->s, n);
        s[n] = '\0';
        bytes_add(d, id_bytes(s));
        if (a->nids < MAX_IDS) {
                a->ids[a->nids++] = s;
        } else {
                /* Keep the first half (how it began), rotate the rest. */
                int slot = MAX_IDS / 2 + a->idpos;
                bytes_sub(d, id_bytes(a->ids[slot]));
                free(a->ids[slot]);
                a->ids[slot] = s;
                a->idpos = (a->idpos + 1) % (MAX_IDS / 2);
        }
}

static const char *severity(const alert_t *a) {
        if (a->kind == K_NEW_VALUE)
                return "info";
        return a->peak_score >= 0.95 ? "critical" : "warning";
}

/* Name of field \p f (0..2) of entities of type \p t, or NULL. */
static const char *ent_field(const gws_detect_t *d, etype_t t, int f) {
        if (t < E_K0)
                return shape_fields[t][f];
        t -= E_K0;
        return f < d->ks[t].nfields
                   ? gws_key_field_names[d->ks[t].field[f]]
                   : NULL;
}

/* The entity key \p e as alerts show it (fields split by 0x1f): with
 * redact.ip_truncate its client_ip field truncated by
 * gws_redact_ip_truncate() (an unreadable one replaced, as in retained
 * records; d->shown_ip says how many). The entity keeps the full address:
 * the detector still tells addresses apart, only what leaves is
 * truncated.
 * @returns 0 with *kp, *kn set (into d->shown, or e's own key), or -1 on
 * allocation failure. */
static int shown_key(gws_detect_t *d, const ent_t *e, const char **kp,
                     size_t *kn) {
        const char *p = e->key, *end = p + e->klen, *sep, *name;
        int f, ipf = -1;

        *kp = e->key;
        *kn = e->klen;
        d->shown_ip = 0;
        if (!d->cfg->redact_ip_truncate)
                return 0;
        for (f = 0; f < 3 && (name = ent_field(d, e->type, f)); f++)
                if (!strcmp(name, "client_ip"))
                        ipf = f;
        if (ipf < 0)
                return 0;
        gws_buf_reset(&d->shown);
        for (f = 0; f < 3 && (name = ent_field(d, e->type, f)) && p <= end;
             f++) {
                /* the last field runs to the end (an address with a 0x1f
                 * in it is replaced whole) */
                if (f == 2 || !ent_field(d, e->type, f + 1) ||
                    !(sep = memchr(p, 0x1f, (size_t)(end - p))))
                        sep = end;
                if (f && gws_buf_append(&d->shown, "\x1f", 1) == -1)
                        return -1;
                if (f == ipf) {
                        if ((d->shown_ip = gws_redact_ip_truncate(
                                 p, (size_t)(sep - p), &d->shown)) == -1)
                                return -1;
                } else if (gws_buf_append(&d->shown, p,
                                          (size_t)(sep - p)) == -1) {
                        return -1;
                }
                p = sep + 1;
        }
        *kp = d->shown.buf ? d->shown.buf : "";
        *kn = d->shown.len;
        return 0;
}

/* ", 3.2x" (or ", 1.5e+07x"): how many times its baseline \p a's latest
 * value is, for the reason; " against" where that is no number: a
 * baseline below \p shown_min (written as 0 ms, say: a cache's), a ratio
 * beyond a double. */
static const char *times_text(const alert_t *a, double shown_min, char *buf,
                              size_t size) {
        double t = a->expected > 0 && a->expected >= shown_min
                       ? a->observed / a->expected
                       : NAN;
        if (!isfinite(t))
                return " against";
        snprintf(buf, size, t < 1e6 ? ", %.1fx" : ", %.3gx", t);
        return buf;
}

/* A count or milliseconds for the reason: whole, or "1e+300" past 15
 * digits (not 301 of them). */
static const char *num_text(double v, char *buf, size_t size) {
        snprintf(buf, size, fabs(v) < 1e15 ? "%.0f" : "%.3g", v);
        return buf;
}

/* The alert's reason; \p k, \p klen: its entity key as shown.
 * @returns 0, or -1 out of memory: \p b then lacks a sentence or part of
 * one, and the alert must not go out with it (alert_emit()). */
static int reason_text(const gws_detect_t *d, gws_buf_t *b, const alert_t *a,
                       const char *k, size_t klen, int64_t window_s) {
        char ent[256], tx[32], ob[32], ex[32];
        size_t i, n, o = 0;
        int r = 0;
        /* Entity as "v1/v2/v3"; a single field other than the gateway
         * is named ("user_id u-7"). */
        if (!ent_field(d, a->ent->type, 1) &&
            strcmp(ent_field(d, a->ent->type, 0), "gateway_id") &&
            a->kind != K_HEAVY_HITTER)
                o = (size_t)snprintf(ent, sizeof(ent), "%s ",
                                     ent_field(d, a->ent->type, 0));
        /* cut at a character (the alert must stay UTF-8) */
        n = gws_utf8_cut(k, klen, sizeof(ent) - 2 - o);
        for (i = 0; i < n; i++)
                ent[o++] = k[i] == 0x1f ? '/' : k[i];
        ent[o] = '\0';
        switch (a->kind) {
        case K_LATENCY:
                r |= gws_buf_printf(
                    b,
                    "Latency of %s is %s ms%s its "
                    "baseline of %s ms (%u anomalous request%s "
                    "in %lld s).",
                    ent, num_text(a->observed, ob, sizeof(ob)),
                    times_text(a, 0.5, tx, sizeof(tx)),
                    num_text(a->expected, ex, sizeof(ex)), a->anomalies,
                    a->anomalies == 1 ? "" : "s", (long long)window_s);
                break;
        case K_TOKENS:
                r |= gws_buf_printf(b,
                                    "Prompt tokens per request on %s are "
                                    "%s%s the baseline of %s.",
                                    ent, num_text(a->observed, ob, sizeof(ob)),
                                    times_text(a, 0.5, tx, sizeof(tx)),
                                    num_text(a->expected, ex, sizeof(ex)));
                break;
        case K_COST:
                r |= gws_buf_printf(b,
                                    "Cost per request on %s is $%.3g%s "
                                    "the baseline of $%.3g.",
                                    ent, a->observed,
                                    times_text(a, 0, tx, sizeof(tx)),
                                    a->expected);
                break;
        case K_ERROR_RATE:
                r |= gws_buf_printf(b,
                                    "Error share on %s is %.0f%% against a "
                                    "baseline of %.1f%%.",
                                    ent, a->observed * 100, a->expected * 100);
                break;
        case K_RATE_SPIKE:
                r |= gws_buf_printf(b,
                                    "Traffic on %s is %.0f events per %llds"
                                    "%s its baseline of %.0f.",
                                    ent, a->observed, (long long)window_s,
                                    times_text(a, 0.5, tx, sizeof(tx)),
                                    a->expected);
                break;
        case K_RATE_DROP:
                if (a->gone) {
                        char since[40];
                        r |= gws_buf_printf(b,
                                            "No traffic on %s since %s "
                                            "(baseline %.0f events per %llds): "
                                            "taken as gone, its rate is not "
                                            "judged until it sends again.",
                                            ent,
                                            gws_time_format(a->silent_from,
                                                            since,
                                                            sizeof(since)),
                                            a->expected, (long long)window_s);
                } else
                        r |= gws_buf_printf(b,
                                            "Traffic on %s fell to %.0f "
                                            "events per %llds from a baseline "
                                            "of %.0f.",
                                            ent, a->observed,
                                            (long long)window_s, a->expected);
                break;
        case K_HEAVY_HITTER: {
                /* entity is gateway/key */
                const char *slash = strchr(ent, '/');
                int glen = slash ? (int)(slash - ent) : (int)strlen(ent);
                r |= gws_buf_printf(
                    b,
                    "%s %s %s %.0f%% of the %s on gateway "
                    "%.*s in the last %llds (usually %.1f%%).",
                    a->ent->type == E_GI ? "Client IP" : "User",
                    slash ? slash + 1 : ent, a->tokens ? "used" : "made",
                    a->observed * 100, a->tokens ? "tokens" : "requests", glen,
                    ent, (long long)window_s, a->expected * 100);
                break;
        }
        case K_NEW_VALUE:
                r |= gws_buf_printf(b,
                                    "Gateway %s calls a provider/model never "
                                    "seen on it before (%u request%s so "
                                    "far).",
                                    ent, a->anomalies,
                                    a->anomalies == 1 ? "" : "s");
                break;
        default:
                break;
        }
        if (a->rewound)
                r |= gws_buf_puts(b, " Resolved: event time moved back before "
                                     "it (a clock that ran ahead was set "
                                     "right).");
        else if (a->settled > 0) {
                char since[40];
                long long held = d->cfg->det_rate_settle_s;
                int unit = held % 3600 == 0 ? 3600 : held % 60 == 0 ? 60 : 1;
                r |= gws_buf_printf(
                    b,
                    " Resolved: the rate settled at the new "
                    "level, %.0f events per %llds since %s "
                    "(held for %lld %s), now its baseline.",
                    a->settled, (long long)window_s,
                    gws_time_format(a->first_anom_ts, since, sizeof(since)),
                    held / unit,
                    unit == 3600 ? "h"
                    : unit == 60 ? "min"
                                 : "s");
        }
        return r ? -1 : 0;
}

/* Appends ,"name": and a JSON number for \p v as jansson writes a real
 * ("%.17g", ".0" when it would read back as an integer, no '+' or leading
 * zeros in the exponent), so alerts read the same as when jansson rendered
 * them; null when \p v is not finite (jansson dropped the member). */
static int put_real(gws_buf_t *b, const char *name, double v) {
        char num[40], *e, *z;
        int n;
        if (gws_buf_printf(b, ",\"%s\":", name) == -1)
                return -1;
        if (!isfinite(v))
                return gws_buf_puts(b, "null");
        n = snprintf(num, sizeof(num), "%.17g", v);
        if (n < 0 || (size_t)n >= sizeof(num) - 2)
                return -1;
        if (!strchr(num, '.') && !strchr(num, 'e')) {
                memcpy(num + n, ".0", 3);
                n += 2;
        }
        if ((e = strchr(num, 'e'))) {
                e++;
                if (*e == '-')
                        e++;
                for (z = e; *z == '+' || *z == '0'; z++)
                        ;
                if (!*z) /* "e+00": keep one digit */
                        z--;
                memmove(e, z, strlen(z) + 1);
                n = (int)strlen(num);
        }
        return gws_buf_append(b, num, (size_t)n);
}

/* Renders the alert into d->alert and hands it to \p cb. Written directly
 * (it was a jansson object tree and json_dumps(): 65% of the emit's CPU,
 * 2.8% of a replay's, for ~850 alerts per 100k events). */
static int alert_emit(gws_detect_t *d, alert_t *a, const char *state,
                      int64_t ts, gws_alert_cb *cb, void *opaque) {
        const char *p, *end, *sep, *name;
        gws_buf_t *b = &d->alert;
        char tbuf[40];
        size_t klen;
        int i, f, r = 0;
        _Static_assert(K__CNT == GWS_ALERT_KIND__CNT, "alert kinds");

        /* A catch-up (gws_pipeline_learn()): the alert changed state as it
         * did for the previous owner, which emitted it. Nothing to build:
         * the JSON was once built for nobody, and a buffer that could not
         * grow cut the event's scoring short (catch_up_builds_no_alert). */
        if (!cb)
                return 0;
        if (shown_key(d, a->ent, &p, &klen) == -1)
                return -1;
        end = p + klen;
        gws_buf_reset(&d->out);
        if (reason_text(d, &d->out, a, p, klen, d->cfg->det_window_s) == -1)
                return -1;
        gws_buf_reset(b);
        r |= gws_buf_puts(b, "{\"alert_id\":");
        r |= gws_buf_json_str(b, a->id, strlen(a->id));
        r |= gws_buf_printf(b, ",\"state\":\"%s\",\"kind\":\"%s\","
                               "\"severity\":\"%s\",\"entity\":{",
                            state, kind_names[a->kind], severity(a));
        for (f = 0; f < 3 && (name = ent_field(d, a->ent->type, f)) &&
                    p <= end;
             f++) {
                sep = memchr(p, 0x1f, (size_t)(end - p));
                if (!sep)
                        sep = end;
                r |= gws_buf_printf(b, "%s\"%s\":", f ? "," : "", name);
                r |= gws_buf_json_str(b, p, (size_t)(sep - p));
                p = sep + 1;
        }
        r |= gws_buf_printf(b, "},\"metric\":\"%s\"",
                            a->kind == K_HEAVY_HITTER
                                ? (a->tokens ? "share_of_tokens"
                                             : "share_of_requests")
                                : kind_metric[a->kind]);
        r |= put_real(b, "observed", a->observed);
        r |= put_real(b, "expected", a->expected);
        r |= put_real(b, "score", a->peak_score);
        r |= gws_buf_printf(
            b, ",\"window\":{\"start\":\"%s\"",
            gws_time_format(a->first_anom_ts, tbuf, sizeof(tbuf)));
        r |= gws_buf_printf(b, ",\"end\":\"%s\"},\"event_ids\":[",
                            gws_time_format(ts, tbuf, sizeof(tbuf)));
        for (i = 0; i < a->nids; i++) {
                if (i)
                        r |= gws_buf_append(b, ",", 1);
                r |= gws_buf_json_str(b, a->ids[i], strlen(a->ids[i]));
        }
        r |= gws_buf_puts(b, "],\"reason\":");
        r |= gws_buf_json_str(b, d->out.buf, d->out.len);
        r |= gws_buf_printf(b, ",\"detector\":\"gwsieve.%s/1\","
                               "\"partition\":%d,\"emitted_at\":\"%s\"}",
                            kind_names[a->kind], (int)d->partition,
                            gws_time_format(gws_now_ms(), tbuf,
                                            sizeof(tbuf)));
        if (r)
                return -1;
        return cb(opaque, a->id, b->buf, b->len, (int)a->kind,
                  !strcmp(state, "open")     ? 0
                  : !strcmp(state, "update") ? 1
                                             : 2);
}

/* Writes \p v as \p n bytes, little-endian, at \p p. @returns \p n. */
static size_t le_put(unsigned char *p, uint64_t v, int n) {
        int i;
        for (i = 0; i < n; i++)
                p[i] = (unsigned char)(v >> (8 * i));
        return (size_t)n;
}

/* Appends \p len bytes of \p p to \p b after their length as \p n
 * bytes. @returns 0 or -1. */
static int put_counted(gws_buf_t *b, const void *p, size_t len, int n) {
        unsigned char le[4];
        if (gws_buf_append(b, le, le_put(le, len, n)) == -1)
                return -1;
        return gws_buf_append(b, p, len);
}

/* The SipHash key of alert ids from the secret redact.alert_id_key (at
 * least 16 bytes, any length: config.c): SipHash-2-4 of the whole secret
 * under two fixed keys gives its two 64-bit halves, so every byte of the
 * secret counts (two secrets that share their first 16 bytes give other
 * ids). */
static void alert_id_key(const char *secret, uint8_t key[16]) {
        static const uint8_t fixed[2][16] = {
            {'g', 'w', 's', 'i', 'e', 'v', 'e', '.', 'a', 'l', 'e', 'r', 't',
             'i', 'd', '0'},
            {'g', 'w', 's', 'i', 'e', 'v', 'e', '.', 'a', 'l', 'e', 'r', 't',
             'i', 'd', '1'}};
        int h, i;
        for (h = 0; h < 2; h++) {
                uint64_t v = gws_siphash24(fixed[h], secret, strlen(secret));
                for (i = 0; i < 8; i++)
                        key[8 * h + i] = (uint8_t)(v >> (8 * i));
        }
}

/* Sets the id of alert \p a of entity \p e, opening at event time \p ts
 * on event \p ev: 16 hex digits, computed once as it opens and kept for
 * its life (open, updates, resolved; snapshots carry it, a restored
 * alert is not given a new one). Same input, same id: replay and run
 * agree, given the same partitions (and key).
 *
 * Without redact.alert_id_key: gws_hash64 of the entity key as shown
 * (redact.ip_truncate), seeded with ts * 31 + kind * 7 + partition, and
 * with the opening event's id when the key shown is not the entity's
 * (hashing the full address let 256 guesses against the id undo the
 * truncation; the event tells apart alerts on two clients of one /24).
 * As before this key existed: but every part of the seed is in the
 * alert (window.end of the open record, kind, partition, event_ids), and
 * gws_hash64 is no keyed function, so a reader of the alerts topic can
 * check guessed user ids or e-mail addresses against an id whose entity
 * the pipeline redacted (README, Alerts).
 *
 * With it: SipHash-2-4 under the secret (alert_id_key()) of a canonical
 * encoding, each part fixed-width little-endian or length-prefixed (no
 * two inputs encode alike): a version tag, the partition (u32), ts
 * (i64), the kind's name, the entity's field names and its raw key (the
 * full address: without the secret no guess can be checked), and the
 * opening event's id (empty for a rate_drop, found as a window closes).
 * Out of memory for the encoding, the key and the event id are left out
 * (an id still, of the partition, time and kind only). */
static void alert_id_set(gws_detect_t *d, alert_t *a, const ent_t *e,
                         akind_t kind, const gws_event_t *ev, int64_t ts) {
        static const char tag[] = "gwsieve.alert_id/1";
        const char *kname = kind_names[kind], *name;
        unsigned char fixed[64]; /* tag to field count: at most 46 */
        gws_buf_t *b = &d->idin;
        size_t n = 0;
        uint64_t h;
        int f, nf, r;

        if (!d->idkeyed) {
                const char *kp;
                size_t kn;
                uint64_t seed = (uint64_t)ts * 31 + (uint64_t)kind * 7 +
                                (uint64_t)d->partition;
                if (shown_key(d, e, &kp, &kn) == -1) {
                        kp = "";
                        kn = 0;
                }
                if (kp != e->key && ev->id.s)
                        seed ^= gws_hash64(ev->id.s, ev->id.len, 0);
                snprintf(a->id, sizeof(a->id), "%016llx",
                         (unsigned long long)gws_hash64(kp, kn, seed));
                return;
        }
        memcpy(fixed, tag, sizeof(tag)); /* with its NUL */
        n += sizeof(tag);
        n += le_put(fixed + n, (uint32_t)d->partition, 4);
        n += le_put(fixed + n, (uint64_t)ts, 8);
        n += le_put(fixed + n, strlen(kname), 1);
        memcpy(fixed + n, kname, strlen(kname));
        n += strlen(kname);
        for (nf = 0; nf < 3 && ent_field(d, (etype_t)e->type, nf); nf++)
                ;
        n += le_put(fixed + n, (uint64_t)nf, 1);
        gws_buf_reset(b);
        r = gws_buf_append(b, fixed, n);
        for (f = 0; f < nf; f++) {
                name = ent_field(d, (etype_t)e->type, f);
                r |= put_counted(b, name, strlen(name), 1);
        }
        r |= put_counted(b, e->key, e->klen, 4);
        r |= put_counted(b, ev->id.s ? ev->id.s : "",
                         ev->id.s ? ev->id.len : 0, 4);
        h = r ? gws_siphash24(d->idkey, fixed, n)
              : gws_siphash24(d->idkey, b->buf, b->len);
        snprintf(a->id, sizeof(a->id), "%016llx", (unsigned long long)h);
}

/* Records an anomaly of \p kind on entity \p e with window counts (n, k)
 * and opens/updates the alert. Numeric kinds (\p force 0 and -1) have a
 * window test both ways: a stray anomaly (GOING_DIV) is not part of an
 * open alert (it neither updates it nor keeps it open), and pending
 * anomalies that min_anomalies * GOING_DIV / min_share of the entity's
 * events followed without another one were strays, not the beginning of
 * the alert that opens. \p start is where an anomaly that begins the
 * alert began (its window.start, and what rate_settle_s counts from):
 * the event's ts, except for an anomaly seen only once its window
 * closed (a rate_drop: the low window's start, not its end, where the
 * event \p ev of the anomaly is dated). @returns alerts emitted or -1. */
static int alert_anomaly_from(gws_detect_t *d, ent_t *e, akind_t kind,
                              const gws_event_t *ev, int64_t start,
                              double observed, double expected,
                              double score, uint32_t n, uint32_t k,
                              int force, gws_alert_cb *cb, void *opaque) {
        const gws_config_t *cfg = d->cfg;
        alert_t *a;
        int64_t ts = ev->ts_ms, bidx = ts / d->bucket_ms;
        int numeric = force <= 0;
        if (d->quiet || !(a = alert_get(d, e, kind)))
                return 0;
        if (a->open && !force && !share_going(cfg, n, k))
                return 0;
        if (!a->open && a->anomalies &&
            (ts - a->last_anom_ts > (int64_t)cfg->det_window_s * 1000 ||
             (numeric && cfg->det_min_share > 0 &&
              (double)win_after(&e->win, a->last_anom_ts / d->bucket_ms,
                                a->last_n, bidx) >
                  cfg->det_min_anomalies * GOING_DIV / cfg->det_min_share))) {
                /* Stray anomalies earlier are not part of this one. */
                alert_ids_clear(d, a);
                a->anomalies = 0;
                a->peak_score = 0;
        }
        if (!a->anomalies) {
                a->first_anom_ts = start;
                a->observed = observed;
                a->expected = expected;
        } else if (start < a->first_anom_ts) {
                /* a late anomaly (within max_lateness_s) began it
                 * earlier; the record it opens or updates is dated by
                 * it, and window.start must not come after window.end */
                a->first_anom_ts = start;
        }
        alert_note_id(d, a, &ev->id);
        a->last_anom_ts = ts;
        if (numeric)
                a->last_n = e->win.idx[bidx % NBUCKETS] == bidx
                                ? e->win.n[bidx % NBUCKETS]
                                : 0;
        /* Smoothed alike (one odd request does not set the reported
         * values, and for per-gateway alerts over several models the
         * ratio observed/expected stays like for like). */
        a->observed += 0.2 * (observed - a->observed);
        a->expected += 0.2 * (expected - a->expected);
        a->score = score;
        if (score > a->peak_score)
                a->peak_score = score;
        /* saturates: an open alert takes every anomalous event of its
         * entity (4.3 billion in ~5 days at 10k/s); wrapped to 0, the
         * next one restarted the alert's window.start and count */
        if (a->anomalies < UINT32_MAX)
                a->anomalies++;
        if (!a->open) {
                /* force 0: window test; 1: open now; 2: open once
                 * min_anomalies events confirmed it (so the alert names
                 * several contributors, not one arbitrary event); -1:
                 * record only (another entity explains the incident). */
                if (force == -1)
                        return 0;
                if (!force && ((int)k < cfg->det_min_anomalies ||
                               (double)k < cfg->det_min_share * (double)n))
                        return 0;
                if (force == 2 &&
                    (int64_t)a->anomalies < cfg->det_min_anomalies)
                        return 0;
                a->open = 1;
                a->opened_ts = ts;
                a->last_update_ts = ts;
                alert_id_set(d, a, e, kind, ev, ts);
                a->onext = d->open_head;
                a->oprev = NULL;
                if (d->open_head)
                        d->open_head->oprev = a;
                d->open_head = a;
                d->st.alerts_open++;
                return alert_emit(d, a, "open", ts, cb, opaque) == -1 ? -1 : 1;
        }
        if (ts - a->last_update_ts >= (int64_t)cfg->det_update_interval_s *
                                          1000) {
                a->last_update_ts = ts;
                d->st.alerts_update++;
                return alert_emit(d, a, "update", ts, cb, opaque) == -1 ? -1
                                                                        : 1;
        }
        return 0;
}

/* An anomaly dated by its event (every kind but rate_drop). */
static int alert_anomaly(gws_detect_t *d, ent_t *e, akind_t kind,
                         const gws_event_t *ev, double observed,
                         double expected, double score, uint32_t n,
                         uint32_t k, int force, gws_alert_cb *cb,
                         void *opaque) {
        return alert_anomaly_from(d, e, kind, ev, ev->ts_ms, observed,
                                  expected, score, n, k, force, cb, opaque);
}

/* Emits open alert \p a as resolved at event time \p ts, takes it off
 * the open list and its entity, and frees it. @returns 1, or -1 when the
 * callback failed (the alert is gone all the same). */
static int alert_close(gws_detect_t *d, alert_t *a, int64_t ts,
                       gws_alert_cb *cb, void *opaque) {
        int r = alert_emit(d, a, "resolved", ts, cb, opaque) == -1 ? -1 : 1;
        d->st.alerts_resolved++;
        if (a->oprev)
                a->oprev->onext = a->onext;
        else
                d->open_head = a->onext;
        if (a->onext)
                a->onext->oprev = a->oprev;
        a->open = 0;
        ent_alert_unlink(a);
        alert_free(d, a);
        return r;
}

/* Order of alerts resolved together: the oldest (opened first) first,
 * then by id. Opened, not window.start: a rate_drop's window starts a
 * window before it opens. */
static int alert_cmp(const void *x, const void *y) {
        const alert_t *a = *(alert_t *const *)x, *b = *(alert_t *const *)y;
        if (a->opened_ts != b->opened_ts)
                return a->opened_ts < b->opened_ts ? -1 : 1;
        return strcmp(a->id, b->id);
}

/* Whether open alert \p a is due in alerts_close_due(). */
static int alert_due(const alert_t *a, int64_t quiet_upto, int64_t back_to) {
        return a->last_anom_ts <= quiet_upto || a->last_anom_ts > back_to;
}

/* Resolves, at event time \p at, the open alerts whose last anomaly is
 * at or before \p quiet_upto (quiet for resolve_s: the tick) or after
 * \p back_to (event time moved back before it: wm_rewind(); those are
 * marked rewound); INT64_MIN and INT64_MAX turn either test off. The
 * tick and the way back share it so that alerts resolved together go out
 * in one order, alert_cmp()'s, not the open list's: a restored detector
 * rebuilds that list in its snapshot's order (and resolved the same
 * alerts in another order than the detector it continues), and the way
 * back went down the list, newest first. Out of memory for the sort,
 * list order. @returns alerts emitted or -1 (all due are resolved). */
static int alerts_close_due(gws_detect_t *d, int64_t quiet_upto,
                            int64_t back_to, int64_t at, gws_alert_cb *cb,
                            void *opaque) {
        alert_t *a, *next, **due = NULL;
        size_t n = 0, k = 0;
        int cnt = 0;
        for (a = d->open_head; a; a = a->onext)
                n += alert_due(a, quiet_upto, back_to);
        if (!n)
                return 0;
        if (n > 1 && (due = malloc(n * sizeof(*due)))) {
                for (a = d->open_head; a; a = a->onext)
                        if (alert_due(a, quiet_upto, back_to))
                                due[k++] = a;
                qsort(due, n, sizeof(*due), alert_cmp);
        }
        /* the sorted ones, else (one, or out of memory) the list's */
        for (k = 0, a = due ? due[0] : d->open_head; a; a = next) {
                next = due ? (++k < n ? due[k] : NULL) : a->onext;
                if (!alert_due(a, quiet_upto, back_to))
                        continue;
                a->rewound = a->last_anom_ts > back_to;
                if (alert_close(d, a, at, cb, opaque) == -1)
                        cnt = -1;
                else if (cnt >= 0)
                        cnt++;
        }
        free(due);
        return cnt;
}

/* Resolves open alerts quiet for resolve_s of event time. */
static int alerts_resolve(gws_detect_t *d, gws_alert_cb *cb, void *opaque) {
        int64_t quiet = (int64_t)d->cfg->det_resolve_s * 1000;
        return alerts_close_due(d, d->wm - quiet, INT64_MAX, d->wm, cb,
                                opaque);
}

/* Folds the error entity's last completed bucket into its baseline share:
 * an exponentially weighted share with a memory of ~ERROR_MEMORY events
 * (a cumulative mean until then), skipping buckets that were significant
 * on their own or while an alert is open. */
static void error_fold(gws_detect_t *d, ent_t *gp) {
        const win_t *w = &gp->win;
        int slot = (int)(gp->gx->rate_win % NBUCKETS);
        double nb, kb, p0, zb, a;
        alert_t *al = ent_alert(gp, K_ERROR_RATE);
        if (w->idx[slot] != gp->gx->rate_win || !w->n[slot])
                return;
        nb = w->n[slot];
        kb = w->k[slot];
        p0 = gp->gx->base_n ? gp->gx->base : ERROR_PRIOR;
        if (p0 < 0.005)
                p0 = 0.005;
        zb = (kb - nb * p0) / sqrt(nb * p0 * (1 - p0));
        if ((al && al->open) ||
            ((int)gp->gx->base_n >= d->cfg->det_warmup_events &&
             zb >= d->cfg->det_error_z / 2 && kb >= 3))
                return;
        if (gp->gx->base_n + nb <= ERROR_MEMORY)
                a = nb / (gp->gx->base_n + nb);
        else
                a = 1 - pow(1 - 1.0 / ERROR_MEMORY, nb);
        if (!gp->gx->base_n)
                gp->gx->base = ERROR_PRIOR;
        gp->gx->base += a * (kb / nb - gp->gx->base);
        gp->gx->base_n += (uint32_t)nb;
        if (gp->gx->base_n > 1u << 30)
                gp->gx->base_n = 1u << 30;
}

/* ------------------------------------------------------------------------
 * rate (per gateway, tumbling windows closed by the partition watermark)
 * ------------------------------------------------------------------------ */

/* A window of \p c events that g's baseline does not learn (under a
 * quarter, over 3x: an outage must not become the baseline, nor a flood)
 * while its rate_drop or rate_spike has been open for rate_settle_s of
 * event time: the gateway has a new level (half of its traffic moved
 * elsewhere, a region grew). Its baseline becomes this window's count
 * and the alert is resolved, saying so; before, the baseline never
 * followed and the alert stayed open for ever. Counted from the alert's
 * window.start (first_anom_ts, saved in snapshots; a rate_drop's is its
 * first low window's start, not that window's end), up to the end of
 * the window rate_win being closed. Empty windows never settle: a gateway that
 * sends nothing is gone (gone_after_s). @returns alerts emitted (0 or
 * 1) or -1. */
static int rate_settle(gws_detect_t *d, ent_t *g, double c,
                       gws_alert_cb *cb, void *opaque) {
        akind_t kind = c < g->gx->base / 4 ? K_RATE_DROP : K_RATE_SPIKE;
        int64_t end = (g->gx->rate_win + 1) * d->window_ms;
        alert_t *a;
        if (!d->cfg->det_rate_settle_s || !g->alerts ||
            !(a = ent_alert(g, kind)) || !a->open ||
            end - a->first_anom_ts < (int64_t)d->cfg->det_rate_settle_s * 1000)
                return 0;
        g->gx->base = c;
        a->settled = c;
        return alert_close(d, a, end, cb, opaque);
}

/* Closes g's windows before \p upto_win: the rate-drop test, then the
 * baseline learns the count. After a silence longer than RATE_GAP_MAX
 * windows only the last RATE_GAP_MAX are closed one by one (the first
 * ones matter; the rest would cost a loop step each, and a gap can be
 * years of event time). */
static int rate_close(gws_detect_t *d, ent_t *g, int64_t upto_win,
                      gws_alert_cb *cb, void *opaque) {
        int r = 0, rr, quiet = d->quiet;
        if (g->gx->rate_win >= 0 && upto_win - g->gx->rate_win > RATE_GAP_MAX) {
                g->gx->rate_win = upto_win - RATE_GAP_MAX;
                g->gx->rate_part = 0;
                memset(g->gx->rcnt, 0, sizeof(g->gx->rcnt));
        }
        /* Closing is driven by the watermark, not by the (possibly late)
         * event at hand: its alerts are not quiet. */
        d->quiet = 0;
        while (g->gx->rate_win >= 0 && g->gx->rate_win < upto_win) {
                uint32_t *cnt = &g->gx->rcnt[g->gx->rate_win % RATE_RING];
                double c = *cnt, lam = g->gx->base;
                alert_t *a;
                if (g->gx->rate_part) {
                        /* counted from partway through: a drop of no
                         * one's making, and not the usual count */
                        g->gx->rate_part = 0;
                        *cnt = 0;
                        g->gx->rate_win++;
                        continue;
                }
                /* (detectors.rate=false: each of the gateway's own
                 * events still closes its windows, learning only) */
                if (d->cfg->det_rate &&
                    g->gx->base_n >= RATE_WARMUP_WINDOWS && lam >= 20 &&
                    c < lam / 4) {
                        gws_event_t fake;
                        memset(&fake, 0, sizeof(fake));
                        /* seen as the window closes (its end), begun
                         * at its start: the alert's window.start */
                        fake.ts_ms = (g->gx->rate_win + 1) * d->window_ms;
                        rr = alert_anomaly_from(
                            d, g, K_RATE_DROP, &fake,
                            g->gx->rate_win * d->window_ms, c, lam,
                            z_to_score((lam - c) / sqrt(lam + 1),
                                       d->cfg->det_z_threshold),
                            1, 1, 1, cb, opaque);
                        if (rr < 0) {
                                d->quiet = quiet;
                                return -1;
                        }
                        r += rr;
                }
                /* Learn only from windows that were not anomalous. */
                if (g->gx->base_n < RATE_WARMUP_WINDOWS)
                        g->gx->base = (g->gx->base * g->gx->base_n + c) /
                                      (g->gx->base_n + 1);
                else if (c <= 3 * lam + 10 && c >= lam / 4)
                        g->gx->base += 0.1 * (c - g->gx->base);
                else if (c > 0 && (rr = rate_settle(d, g, c, cb,
                                                    opaque)) != 0) {
                        if (rr < 0) {
                                d->quiet = quiet;
                                return -1;
                        }
                        r += rr;
                }
                g->gx->base_n++;
                *cnt = 0;
                g->gx->rate_win++;
                if (g->gx->base_n > 1000000)
                        g->gx->base_n = 1000000;
                /* A gateway that sends nothing at all for gone_after_s
                 * (at least two windows) is gone (decommissioned, or its
                 * key moved to another partition): its rate_drop is
                 * resolved, saying so, instead of being updated for
                 * ever (its entity pinned), and its windows stop until
                 * it sends again (then they restart, partial, and the
                 * baseline it had judges it). */
                if (!g->alerts || !(a = ent_alert(g, K_RATE_DROP)) ||
                    !a->open)
                        continue;
                if (c > 0) {
                        a->silent_from = -1;
                } else if (a->silent_from < 0) {
                        a->silent_from = (g->gx->rate_win - 1) * d->window_ms;
                } else if (g->gx->rate_win * d->window_ms - a->silent_from >=
                           (int64_t)d->cfg->det_gone_after_s * 1000) {
                        a->gone = 1;
                        rr = alert_close(d, a, g->gx->rate_win * d->window_ms,
                                         cb, opaque);
                        g->gx->rate_win = -1;
                        g->gx->rate_part = 0;
                        memset(g->gx->rcnt, 0, sizeof(g->gx->rcnt));
                        if (rr < 0) {
                                d->quiet = quiet;
                                return -1;
                        }
                        r += rr;
                }
        }
        d->quiet = quiet;
        return r;
}

/* The first window still open for late events: windows end lateness_ms
 * of event time after their last millisecond. */
static int64_t closed_upto(const gws_detect_t *d) {
        return (d->wm - d->lateness_ms) / d->window_ms;
}

/* ------------------------------------------------------------------------
 * concentration (heavy hitters per gateway)
 * ------------------------------------------------------------------------ */

/* Ends the window of g's summaries: learn the usual counts, reset. The
 * learning rate is slow (0.1) so that a hitter's incident takes many
 * windows to look usual. */
static void hh_close(ent_t *g, int64_t nwin) {
        int i, j;
        for (i = 0; i < HH__CNT; i++) {
                hh_t *hh = g->gx->hh[i];
                if (!hh)
                        continue;
                /* Windows skipped in silence count as empty ones. */
                for (j = 0; j < 8 && g->gx->hh_win + j < nwin; j++)
                        gws_hh_close(hh);
                gws_hh_weigh(hh);
        }
        g->gx->hh_win = nwin;
}

/* The part of a usual window's tokens a window must have before a key's
 * share of its tokens counts (the start of a window, where one prompt is
 * most of the tokens so far, is not judged). */
#define HH_TOK_PART 0.5

/* Concentration on gateway \p g for \p ev: its client_ip and user_id go
 * into the gateway's summaries; a key holding at least hh_share of the
 * window's requests (with at least hh_min_events of them) or of its
 * tokens (once the window has HH_TOK_PART of its usual tokens, with at
 * least the tokens of hh_min_events usual requests), and hh_rise times
 * its usual share, is a heavy hitter. @returns alerts emitted or -1. */
static int concentration(gws_detect_t *d, ent_t *g, const gws_event_t *ev,
                         double *scores, gws_alert_cb *cb, void *opaque) {
        const gws_config_t *cfg = d->cfg;
        const gws_str_t *keys[HH__CNT] = {&ev->client_ip, &ev->user_id};
        static const etype_t etype[HH__CNT] = {E_GI, E_GU};
        int64_t hw = d->wm / d->window_ms;
        double tokens = 0;
        int i, r, emitted = 0;

        if (hw > g->gx->hh_win)
                hh_close(g, hw);
        if (!g->gx->hh[0]) {
                /* Only gateways busy enough to have a heavy hitter pay for
                 * the summaries (a flood of gateway ids costs nothing). */
                size_t sz = gws_hh_size(cfg->det_hh_slots);
                if (g->gx->base_n < 1 || g->gx->base < cfg->det_hh_min_events)
                        return 0;
                /* room as for a new entity (g is pinned): see
                 * nwin_alloc() */
                if (make_room(d, 2 * sz) == -1)
                        return 0;
                for (i = 0; i < HH__CNT; i++) {
                        if (!(g->gx->hh[i] = gws_hh_new(cfg->det_hh_slots))) {
                                hh_free(d, g);
                                return 0;
                        }
                        bytes_add(d, sz);
                }
                g->gx->hh_win = hw;
        }
        if (ev->has_tokens_in && ev->tokens_in > 0)
                tokens += (double)ev->tokens_in;
        if (ev->has_tokens_out && ev->tokens_out > 0)
                tokens += (double)ev->tokens_out;
        for (i = 0; i < HH__CNT; i++) {
                hh_t *hh = g->gx->hh[i];
                int sl;
                double cnt, ktok, share, usual, tshare = 0, tusual = 0;
                double ratio, sc;
                alert_t *al;
                ent_t *e;
                if (!keys[i]->s || !keys[i]->len)
                        continue;
                sl = gws_hh_add(hh, keys[i]->s, keys[i]->len, tokens);
                if (hh->windows < RATE_WARMUP_WINDOWS)
                        continue;
                cnt = (double)hh->cur[sl] - hh->err[sl];
                ktok = hh->tok[sl] - hh->terr[sl];
                share = 0;
                usual = hh->htotal > 0 ? hh->hist[sl] / hh->htotal : 0;
                if (cnt >= cfg->det_hh_min_events) {
                        share = cnt / hh->total;
                        if (!(share >= cfg->det_hh_share &&
                              share >= cfg->det_hh_rise * usual))
                                share = 0;
                }
                /* Shares are of the window so far: requests count once
                 * the key has hh_min_events of them, tokens once the
                 * window has HH_TOK_PART of a usual window's tokens and
                 * the key as many as hh_min_events usual requests carry
                 * (one enormous prompt can be enough; one ordinary
                 * prompt among a window's first few is not). */
                if (ktok > 0 && hh->httotal > 0 &&
                    hh->ttotal >= HH_TOK_PART * hh->httotal &&
                    ktok * hh->htotal >=
                        cfg->det_hh_min_events * hh->httotal) {
                        tshare = ktok / hh->ttotal;
                        tusual = hh->htok[sl] / hh->httotal;
                        if (!(tshare >= cfg->det_hh_share &&
                              tshare >= cfg->det_hh_rise * tusual))
                                tshare = 0;
                }
                if (share == 0 && tshare == 0)
                        continue;
                ratio = (share > tshare ? share : tshare) / cfg->det_hh_share;
                sc = z_to_score(ratio * cfg->det_z_threshold,
                                cfg->det_z_threshold);
                if (sc > scores[8])
                        scores[8] = sc;
                if (key_build(d, &ev->gateway_id, keys[i], NULL) == -1 ||
                    !(e = ent_get(d, etype[i], 1)))
                        continue;
                if (!(al = alert_get(d, e, K_HEAVY_HITTER)))
                        continue;
                /* An alert reports one measure for its whole life. */
                if (!al->open)
                        al->tokens = share < tshare;
                if (al->tokens)
                        r = alert_anomaly(d, e, K_HEAVY_HITTER, ev, tshare,
                                          tusual, sc, 1, 1, 1, cb, opaque);
                else
                        r = alert_anomaly(d, e, K_HEAVY_HITTER, ev, share,
                                          usual, sc, 1, 1, 1, cb, opaque);
                if (r < 0)
                        return -1;
                emitted += r;
        }
        return emitted;
}

static int tick(gws_detect_t *d, gws_alert_cb *cb, void *opaque) {
        int64_t win = closed_upto(d);
        gx_t *x;
        int r = 0, rr;
        if (d->cfg->det_rate && win > d->rate_lo) {
                int64_t lo = INT64_MAX;
                for (x = d->gateways; x; x = x->gnext) {
                        if (x->rate_win >= 0 && x->rate_win < win) {
                                if ((rr = rate_close(d, x->ent, win, cb,
                                                     opaque)) < 0)
                                        return -1;
                                r += rr;
                        }
                        if (x->rate_win >= 0 && x->rate_win < lo)
                                lo = x->rate_win;
                }
                d->rate_lo = lo;
        }
        if ((rr = alerts_resolve(d, cb, opaque)) < 0)
                return -1;
        return r + rr;
}

/* ------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------ */

struct gws_series_s {
        const gws_config_t *cfg;
        num_t num;
        double scale;  /* mean |x| of the warm-up values, then fixed */
        double *warm;  /* the warm-up values, replayed once scaled */
        int nwarm;
        int quiet;     /* rows left in which repeats are damped */
        double smean;  /* short EW mean (level shifts) */
};

gws_series_t *gws_series_new(const gws_config_t *cfg) {
        gws_series_t *s = calloc(1, sizeof(*s));
        if (!s || !(s->warm = calloc((size_t)cfg->series_warmup_rows,
                                     sizeof(double)))) {
                free(s);
                return NULL;
        }
        s->cfg = cfg;
        return s;
}

void gws_series_destroy(gws_series_t *s) {
        if (!s)
                return;
        free(s->warm);
        free(s);
}

double gws_series_score(gws_series_t *s, double value) {
        double x, z, sc;
        int i;
        if (!isfinite(value))
                return 0;
        if (s->warm) {
                /* Raw values of any unit: scale them once by their
                 * warm-up magnitude so the detector's fixed sigma floor
                 * means "5% of typical", then learn the warm-up. */
                s->warm[s->nwarm++] = value;
                if (s->nwarm < s->cfg->series_warmup_rows)
                        return 0;
                for (i = 0; i < s->nwarm; i++)
                        s->scale += fabs(s->warm[i]) / s->nwarm;
                if (s->scale < 1e-12)
                        s->scale = 1e-12;
                for (i = 0; i < s->nwarm; i++)
                        num_observe0(s->cfg->series_warmup_rows, &s->num,
                                     s->warm[i] / s->scale, 1);
                free(s->warm);
                s->warm = NULL;
                s->smean = s->num.mean;
                return 0;
        }
        x = value / s->scale;
        if (!isfinite(x)) {
                /* |value| near DBL_MAX over a warm-up magnitude below 1.
                 * Learnt, it made the short mean inf, and the next row
                 * inf - inf = NaN for the rest of the series: no level
                 * shift was scored again (a NaN z scores 0). It is learnt
                 * by nothing, and scored as what it is, as far from the
                 * baseline as a value can be. */
                sc = z_to_score(INFINITY, s->cfg->series_z_threshold);
                goto onset;
        }
        z = num_observe0(s->cfg->series_warmup_rows, &s->num, x, 1);
        sc = z_to_score(fabs(z), s->cfg->series_z_threshold);
        if (s->cfg->series_shift_z > 0) {
                /* A level shift too small for one value to stand out: the
                 * short mean against the baseline, in units of the short
                 * mean's own noise (sigma * sqrt(a / (2 - a))). */
                double a = s->cfg->series_shift_alpha, sig, zs, ss;
                double sm = s->smean + a * (x - s->smean);
                /* x - smean overflows for two values near DBL_MAX of
                 * opposite signs (a magnitude just above 1): the short
                 * mean keeps its finite value, as above. */
                if (isfinite(sm))
                        s->smean = sm;
                sig = 1.2533 * s->num.absdev;
                if (sig < SIGMA_FLOOR)
                        sig = SIGMA_FLOOR;
                zs = (s->smean - s->num.mean) / (sig * sqrt(a / (2 - a)));
                ss = z_to_score(fabs(zs), s->cfg->series_shift_z);
                if (ss > sc)
                        sc = ss;
        }
onset:
        /* A series alarm is news at its onset: repeats within the next
         * series.warmup_rows rows are damped, as the alert layer does for
         * events (one open, not one per row). */
        if (s->quiet > 0) {
                s->quiet--;
                return sc * 0.3;
        }
        if (sc >= 0.5)
                s->quiet = s->cfg->series_warmup_rows;
        return sc;
}

const char *gws_reason_name(int bit) {
        static const char *names[GWS_R__CNT] = {
            "latency", "tokens_in", "tokens_out", "cost",
            "error_rate", "rate_spike", "new_value", "ttfb",
            "heavy_hitter"};
        return bit >= 0 && bit < GWS_R__CNT ? names[bit] : "unknown";
}

gws_detect_t *gws_detect_new(const gws_config_t *cfg, int32_t partition) {
        gws_detect_t *d;
        pthread_once(&log1p_once, log1p_tab_fill);
        if (!(d = calloc(1, sizeof(*d))))
                return NULL;
        /* Room for max_entities at a load factor of at most 3/4. */
        d->max_cap = 64;
        while (d->max_cap * 3 / 4 < (size_t)cfg->det_max_entities + 1 &&
               d->max_cap < ((size_t)1 << 26))
                d->max_cap <<= 1;
        d->cap = 64;
        if (!(d->slots = calloc(d->cap, sizeof(*d->slots)))) {
                free(d);
                return NULL;
        }
        d->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uint32_t)partition;
        d->cfg = cfg;
        if (cfg->redact_alert_id_key) {
                alert_id_key(cfg->redact_alert_id_key, d->idkey);
                d->idkeyed = 1;
        }
        d->partition = partition;
        d->wm = INT64_MIN;
        d->last_tick = INT64_MIN;
        d->rate_lo = INT64_MIN;
        d->max_bytes = (size_t)cfg->det_max_state_mb << 20;
        d->window_ms = (int64_t)cfg->det_window_s * 1000;
        /* Rate windows stay open RATE_RING deep: lateness of at most two
         * windows keeps one for the current events. */
        d->lateness_ms = (int64_t)cfg->det_max_lateness_s * 1000;
        if (d->lateness_ms > 2 * d->window_ms)
                d->lateness_ms = 2 * d->window_ms;
        d->bucket_ms = (int64_t)cfg->det_window_s * 1000 / NBUCKETS;
        if (d->bucket_ms < 1)
                d->bucket_ms = 1;
        {
                /* Validated at startup (gws_config_validate); a config
                 * that skipped validation gets the defaults. */
                char err[160];
                int i;
                d->nks = gws_config_parse_keysets(
                    cfg->det_numeric_keys ? cfg->det_numeric_keys
                                          : GWS_NUMERIC_KEYS_DEFAULT,
                    d->ks, err, sizeof(err));
                if (d->nks < 0)
                        d->nks = gws_config_parse_keysets(
                            GWS_NUMERIC_KEYS_DEFAULT, d->ks, err,
                            sizeof(err));
                for (i = 0; i < d->nks; i++) {
                        const gws_keyset_t *k = &d->ks[i];
                        d->ksraw[i] = memchr(k->field, GWS_KF_MODEL,
                                             (size_t)k->nfields) != NULL;

                        if (k->nfields == 1 && k->field[0] == GWS_KF_GATEWAY)
                                d->kstype[i] = E_G;
                        else if (k->nfields == 3 &&
                                 k->field[0] == GWS_KF_GATEWAY &&
                                 k->field[1] == GWS_KF_PROVIDER &&
                                 k->field[2] == GWS_KF_MODEL)
                                d->kstype[i] = E_GPM;
                        else
                                d->kstype[i] = (etype_t)(E_K0 + i);
                }
        }
        return d;
}

void gws_detect_destroy(gws_detect_t *d) {
        size_t i;
        if (!d)
                return;
        for (i = 0; i < d->cap; i++) {
                ent_t *e = d->slots[i].e;
                if (!e)
                        continue;
                ent_free_parts(d, e);
                bytes_sub(d, ent_size(e->type, e->klen));
                __atomic_sub_fetch(&g_entities, 1, __ATOMIC_RELAXED);
                free(e);
        }
        free(d->slots);
        if (d->known)
                bytes_sub(d, d->known_cap * sizeof(uint64_t));
        free(d->known);
        gws_buf_free(&d->key);
        gws_buf_free(&d->own.buf);
        gws_buf_free(&d->out);
        gws_buf_free(&d->alert);
        gws_buf_free(&d->shown);
        gws_buf_free(&d->idin);
        free(d);
}

void gws_detect_process_stats(uint64_t *entities, uint64_t *bytes,
                              uint64_t *evictions, uint64_t *late,
                              uint64_t *skewed) {
        *entities = __atomic_load_n(&g_entities, __ATOMIC_RELAXED);
        *bytes = __atomic_load_n(&state_bytes, __ATOMIC_RELAXED);
        *evictions = __atomic_load_n(&g_evictions, __ATOMIC_RELAXED);
        *late = __atomic_load_n(&g_late, __ATOMIC_RELAXED);
        *skewed = __atomic_load_n(&g_skewed, __ATOMIC_RELAXED);
}

void gws_detect_time_jumps(uint64_t *ahead, uint64_t *back) {
        *ahead = __atomic_load_n(&g_jumps_ahead, __ATOMIC_RELAXED);
        *back = __atomic_load_n(&g_jumps_back, __ATOMIC_RELAXED);
}

const char *gws_alert_kind_name(int kind) {
        return kind >= 0 && kind < K__CNT ? kind_names[kind] : "unknown";
}

const char *gws_alert_state_name(int state) {
        static const char *names[GWS_ALERT_STATE__CNT] = {"open", "update",
                                                          "resolved"};
        return state >= 0 && state < GWS_ALERT_STATE__CNT ? names[state]
                                                          : "unknown";
}

int gws_detect_alert_ip_redacted(const gws_detect_t *d) {
        return d->shown_ip;
}

uint64_t gws_detect_changes(const gws_detect_t *d) {
        return d->changes;
}

void gws_detect_stats(const gws_detect_t *d, gws_detect_stats_t *st) {
        *st = d->st;
        st->entities = d->nents;
        st->bytes = d->bytes;
        st->process_bytes = __atomic_load_n(&state_bytes, __ATOMIC_RELAXED);
}

/* Allocates the numeric windows of \p e (its first anomaly). */
static int nwin_alloc(gws_detect_t *d, ent_t *e) {
        /* Room from this partition's least recently used entities, as for
         * a new entity (the event's own are pinned): refused whenever the
         * budget was full, which under a stream of new users or IPs is
         * always, the windows of a busy model's incident were never
         * allocated and its alert never opened. */
        if (make_room(d, NWIN_BYTES) == -1 ||
            !(e->nwin = calloc(1, sizeof(nkw_t))))
                return -1;
        bytes_add(d, NWIN_BYTES);
        return 0;
}

/* Events (n) and anomalies of numeric kind \p kk (k) of \p e in the
 * window ending at bucket \p bidx. e->win.n counts the entity's events;
 * nwin->w[kk].k its anomalies and nwin->w[kk].n the events an open alert of
 * another entity explained, which are left out. */
static void nk_counts(const ent_t *e, int kk, int64_t bidx, uint32_t *n,
                      uint32_t *k) {
        uint32_t all, dummy, explained;
        win_sum(&e->win, bidx, &all, &dummy);
        win_sum(&e->nwin->w[kk], bidx, &explained, k);
        *n = all > explained ? all - explained : 0;
        if (*k > *n)
                *n = *k;
}

/* 1 if an incident holds the baselines of numeric kind \p kk of \p e
 * in bucket \p bidx (nk_hold_note()). On the per-event path: a bit of
 * the entity's first cache line; nwin only while the bit is set, and the
 * first event after the hold clears it. A late event from before the
 * hold learns; a late or skewed one (d->quiet) does not end it. */
static int nk_held(const gws_detect_t *d, ent_t *e, int kk, int64_t bidx) {
        const nkw_t *nw = e->nwin;
        if (!(e->held & (1u << kk)) || bidx < nw->hold_from[kk])
                return 0;
        if (bidx <= nw->hold_to[kk] &&
            bidx - nw->hold_from[kk] < HOLD_BUCKETS)
                return 1;
        if (!d->quiet)
                e->held &= (uint8_t)~(1u << kk);
        return 0;
}

/* After an anomalous event of numeric kind \p kk: whether \p e's
 * anomalies (its own, or those an open alert of another entity explains)
 * are an incident in progress, min_anomalies and min_share / GOING_DIV
 * of its events in the current bucket or in the window. Then its
 * baselines of the kind do not learn until the next bucket ends (each
 * anomaly of the incident extends that). They learned 20x slower beyond
 * 2.5 sigma, per event: a busy entity (tens of events per second and
 * more) absorbed a step in seconds, before min_share of its window was
 * anomalous, and never paged. The bucket sees an incident within a
 * second or so of its start at any rate; the window carries it across
 * bucket starts. A hold lasts at most HOLD_BUCKETS: a lasting shift is
 * then learned (a hold starts again once an anomaly finds no incident, or
 * a bucket passes without one). Rare: anomalous events only. */
static void nk_hold_note(const gws_detect_t *d, ent_t *e, int kk,
                         int64_t bidx) {
        const gws_config_t *cfg = d->cfg;
        const win_t *ev = &e->win, *an = &e->nwin->w[kk];
        uint32_t nb = 0, ab = 0, nw = 0, aw = 0;
        int i, mk = cfg->det_min_anomalies;
        for (i = 0; i < NBUCKETS; i++) {
                if (ev->idx[i] > bidx - NBUCKETS && ev->idx[i] <= bidx) {
                        nw += ev->n[i];
                        if (ev->idx[i] == bidx)
                                nb = ev->n[i];
                }
                if (an->idx[i] > bidx - NBUCKETS && an->idx[i] <= bidx) {
                        aw += an->n[i] + an->k[i];
                        if (an->idx[i] == bidx)
                                ab = an->n[i] + an->k[i];
                }
        }
        if (((int)ab >= mk && share_going(cfg, nb, ab)) ||
            ((int)aw >= mk && share_going(cfg, nw, aw))) {
                if (e->nwin->hold_to[kk] < bidx)
                        e->nwin->hold_from[kk] = bidx;
                e->nwin->hold_to[kk] = bidx + 1;
                e->held |= (uint8_t)(1u << kk);
        } else if (e->nwin->hold_to[kk] >= bidx) {
                e->nwin->hold_to[kk] = bidx - 1;
        }
}

/* An event of the entity with anomaly window \p w is explained by an
 * alert that opened in bucket \p opened: the entity's anomalies up to
 * then were that incident's. They are dropped, as its opening drops them
 * from the windows of the event that opened it (numeric()): an entity
 * that shares its events with the incident (a busy user of a slow model)
 * kept those of the seconds before the alert opened while its later
 * events were explained and left its n, and opened a second alert on
 * them. Incident events only; idempotent. */
static void nk_explained(win_t *w, int64_t opened) {
        int b;
        for (b = 0; b < NBUCKETS; b++)
                if (w->idx[b] <= opened)
                        w->k[b] = 0;
}

/* Numeric deviation (latency, ttfb, tokens, cost) of a successful event.
 *
 * Every key set (detectors.numeric_keys) keeps its own robust baselines;
 * the event's score per field is the highest over the sets (it is
 * anomalous if any view of it is: "slow for this model", "slow for this
 * gateway's route", "many tokens for this user"), and \p scores gets it.
 *
 * Alerts, one per incident: an anomalous event is counted in the window
 * of each of its entities. If one of them holds an open alert of the kind,
 * that alert takes the event. Otherwise, of the entities whose window
 * qualifies (min_anomalies, min_share), the one that explains the
 * anomalies best opens it: highest k*k/n (anomalies times their share),
 * ties to the earlier set in the configuration. So a provider-wide
 * slowdown opens one alert on provider+model (not one per gateway or
 * user), one gateway's route opens on gateway+provider+model, and a
 * single user's token abuse on user_id (its share is 1, the model's
 * small). Expected values come from the baseline that judged the event
 * most anomalous. @returns alerts emitted or -1. */
static int numeric(gws_detect_t *d, const gws_event_t *ev, ent_t *g,
                   ent_t *gpm, int64_t bidx, double *scores,
                   gws_alert_cb *cb, void *opaque) {
        const gws_config_t *cfg = d->cfg;
        double zthr = cfg->det_z_threshold, keep = cfg->anomaly_keep_score;
        double best[NK__CNT] = {0}, expect[NK__CNT] = {0}, obs[NK__CNT];
        double kbest[GWS_MAX_KEYSETS][NK__CNT] = {{0}};
        double ref[F__CNT], val[F__CNT] = {ev->latency_ms};
        double lval[F__CNT] = {0};
        double best_elx[NK__CNT] = {0};
        int best_rf[NK__CNT] = {0};
        int on[F__CNT] = {1}, has[NK__CNT], held[NK__CNT], i, f, kk, r,
            emitted = 0;
        /* the fields the sets observe, in field order: those that pin
         * the model (raw) and the others (rel) */
        int fraw[F__CNT], frel[F__CNT], nraw = 0, nrel = 0;
        /* field -> alert kind, reason bit, the field its alert reports */
        const struct {
                int nk, reason, report;
                int enabled;
        } fld[F__CNT] = {
            [F_LAT] = {NK_LAT, 0, F_LAT, cfg->det_latency},
            [F_TIN] = {NK_TOK, 1, F_TIN, cfg->det_tokens},
            [F_TOUT] = {NK_TOK, 2, ev->has_tokens_in ? F_TIN : F_TOUT,
                        cfg->det_tokens},
            [F_COST] = {NK_COST, 3, F_COST, cfg->det_cost},
            [F_TTFB] = {NK_LAT, 7, F_LAT, cfg->det_latency}};
        ent_t *ke[GWS_MAX_KEYSETS];
        uint32_t n, k;
        int64_t opened = 0; /* bucket the explaining alert opened in */

        has[NK_LAT] = cfg->det_latency;
        has[NK_TOK] = cfg->det_tokens &&
                      (ev->has_tokens_in || ev->has_tokens_out);
        has[NK_COST] = cfg->det_cost && ev->has_cost && ev->cost_usd > 0;
        obs[NK_LAT] = ev->latency_ms;
        obs[NK_TOK] = ev->has_tokens_in ? (double)ev->tokens_in
                                        : (double)ev->tokens_out;
        obs[NK_COST] = ev->cost_usd;

        /* The reference of sets that do not pin the model (user_id,
         * gateway_id, ...): this gateway's baseline for the model, taken
         * before this event updates it. */
        for (f = 0; f < F__CNT; f++)
                ref[f] = gpm && gpm->num[f].n ? gpm->num[f].mean : NAN;
        if (ev->has_ttfb && ev->ttfb_ms >= 0)
                val[F_TTFB] = ev->ttfb_ms, on[F_TTFB] = 1;
        if (ev->has_tokens_in)
                val[F_TIN] = (double)ev->tokens_in, on[F_TIN] = 1;
        if (ev->has_tokens_out)
                val[F_TOUT] = (double)ev->tokens_out, on[F_TOUT] = 1;
        if (ev->has_cost && ev->cost_usd > 0)
                val[F_COST] = ev->cost_usd, on[F_COST] = 1;

        /* The transform once per field, not once per key set; and which
         * fields each kind of set observes. Output length is the model's
         * and max_tokens' business, not the user's or the gateway's: sets
         * that do not pin the model skip it (measured: capped output
         * lengths made per-user residuals page on normal traffic), and
         * the fields the gateway has no baseline of for the model. */
        for (f = 0; f < F__CNT; f++) {
                if (!on[f])
                        continue;
                if (f == F_TIN)
                        lval[f] = log1p_count(ev->tokens_in);
                else if (f == F_TOUT)
                        lval[f] = log1p_count(ev->tokens_out);
                else
                        lval[f] = f == F_COST ? log(val[f]) : log1p(val[f]);
                fraw[nraw++] = f;
                if (f != F_TOUT && !isnan(ref[f]))
                        frel[nrel++] = f;
        }

        for (i = 0; i < d->nks; i++) {
                ent_t *e;
                int raw = d->ksraw[i], j, nf = raw ? nraw : nrel;
                const int *fl = raw ? fraw : frel;
                if (d->kstype[i] == E_G)
                        e = g;
                else if (d->kstype[i] == E_GPM)
                        e = gpm;
                else
                        e = ent_ev(d, d->kstype[i], 1, NULL);
                if (!(ke[i] = e))
                        continue;
                /* e->win counts the entity's events (n) for the share of
                 * every numeric kind; e->nwin its anomalies (k). */
                if (!d->quiet)
                        win_add(&e->win, bidx, 1, 0);
                for (kk = 0; kk < NK__CNT; kk++)
                        held[kk] = e->held && nk_held(d, e, kk, bidx);
                for (j = 0; j < nf; j++) {
                        double lx, sc, elx;
                        int rf;
                        f = fl[j];
                        rf = fld[f].report;
                        lx = lval[f];
                        /* expected: the reported field's baseline */
                        elx = e->num[rf].mean + (raw ? 0 : ref[rf]);
                        if (!raw) {
                                lx -= ref[f];
                                if (isnan(elx))
                                        elx = ref[rf];
                        }
                        sc = z_to_score(
                            num_observe0(cfg->det_warmup_events, &e->num[f],
                                         lx, !held[fld[f].nk]),
                            zthr);
                        if (fld[f].enabled && sc > scores[fld[f].reason])
                                scores[fld[f].reason] = sc;
                        if (sc > kbest[i][fld[f].nk])
                                kbest[i][fld[f].nk] = sc;
                        if (sc > best[fld[f].nk]) {
                                best[fld[f].nk] = sc;
                                best_elx[fld[f].nk] = elx;
                                best_rf[fld[f].nk] = rf;
                        }
                }
        }
        for (kk = 0; kk < NK__CNT; kk++) {
                akind_t kind = nk_kind[kk];
                int anom = best[kk] >= keep, tgt = -1, was_open;

                /* Not anomalous: no set's score reached keep (best is
                 * the highest of kbest), so no window counts anything
                 * (most events: this skips the loops below). */
                if (!has[kk] || !anom)
                        continue;
                /* An open alert of this kind on one of the event's
                 * entities takes an anomalous event. */
                for (i = 0; i < d->nks && tgt < 0; i++)
                        if (ke[i] && ent_alert_open(ke[i], kind))
                                tgt = i;
                if (tgt >= 0)
                        opened = ent_alert(ke[tgt], kind)->opened_ts /
                                 d->bucket_ms;
                /* Each entity's window counts the anomalies its own
                 * baseline sees (a user's unusual prompt does not make
                 * the model's window anomalous); an anomaly an open alert
                 * explains counts there only, so it does not open a
                 * second alert on a wider entity. Anomaly windows are
                 * allocated at an entity's first anomaly (a million quiet
                 * users cost none). */
                for (i = 0; i < d->nks; i++) {
                        ent_t *e = ke[i];
                        int a = tgt >= 0 ? i == tgt : kbest[i][kk] >= keep;
                        /* explained elsewhere: out of this window's n */
                        int x = tgt >= 0 && i != tgt;
                        if (!e || (!a && !x) || d->quiet ||
                            (!e->nwin && nwin_alloc(d, e)))
                                continue;
                        if (x)
                                nk_explained(&e->nwin->w[kk], opened);
                        win_add(&e->nwin->w[kk], bidx, (uint32_t)x,
                                (uint32_t)a);
                }
                if (d->quiet)
                        continue;
                /* the expected value back on the measure's scale, for
                 * the alerts only (exp, expm1: anomalous events only) */
                if (best[kk] > 0) {
                        expect[kk] = best_rf[kk] == F_COST
                                         ? exp(best_elx[kk])
                                         : expm1(best_elx[kk]);
                        /* not finite: JSON has no such number; below 0
                         * (a set without the model learns relative to
                         * the model's baseline, which may have fallen
                         * far since): no measure is */
                        if (!isfinite(expect[kk]) || expect[kk] < 0)
                                expect[kk] = 0;
                }
                for (i = 0; i < d->nks; i++)
                        if (ke[i] && ke[i]->nwin)
                                nk_hold_note(d, ke[i], kk, bidx);
                if (tgt < 0) {
                        uint32_t kn[GWS_MAX_KEYSETS][2] = {{0}};
                        int qual[GWS_MAX_KEYSETS] = {0};
                        double v, bestv = -1;
                        for (i = 0; i < d->nks; i++) {
                                if (!ke[i] || !ke[i]->nwin)
                                        continue;
                                nk_counts(ke[i], kk, bidx, &kn[i][0],
                                          &kn[i][1]);
                                qual[i] = (int)kn[i][1] >=
                                              cfg->det_min_anomalies &&
                                          (double)kn[i][1] >=
                                              cfg->det_min_share *
                                                  (double)kn[i][0];
                                v = (double)kn[i][1] * kn[i][1] / kn[i][0];
                                if (qual[i] && v > bestv)
                                        bestv = v, tgt = i;
                        }
                        /* Defer to a wider entity that sees clearly more
                         * of the anomalies but whose share is still
                         * diluted by the events before the incident: the
                         * incident is its, and it qualifies within the
                         * window (a slow model must not first page as one
                         * of its users). */
                        for (i = 0; tgt >= 0 && i < d->nks; i++)
                                if (!qual[i] && ke[i] && ke[i]->nwin &&
                                    kn[i][1] >= 2 * kn[tgt][1])
                                        tgt = -1;
                }
                if (tgt < 0) {
                        /* Not (yet) an incident: every entity notes the
                         * anomaly, so the alert that opens names the
                         * events that led to it. */
                        for (i = 0; i < d->nks; i++) {
                                if (!ke[i] || !ke[i]->nwin)
                                        continue;
                                if (alert_anomaly(d, ke[i], kind, ev,
                                                  obs[kk], expect[kk],
                                                  best[kk], 0, 0, -1, cb,
                                                  opaque) < 0)
                                        return -1;
                        }
                        continue;
                }
                nk_counts(ke[tgt], kk, bidx, &n, &k);
                was_open = ent_alert_open(ke[tgt], kind);
                if ((r = alert_anomaly(d, ke[tgt], kind, ev, obs[kk],
                                       expect[kk], best[kk], n, k, 0, cb,
                                       opaque)) < 0)
                        return -1;
                emitted += r;
                /* A new alert explains the anomalies it counted; the
                 * event's other entities counted them too and must not
                 * open a second alert with them (stray anomalies of
                 * another gateway on the same model would otherwise tip
                 * it over): take them out, bucket by bucket. What is
                 * left (other routes of the gateway, say) still counts. */
                if (!was_open && ent_alert_open(ke[tgt], kind)) {
                        const win_t *tw = &ke[tgt]->nwin->w[kk];
                        for (i = 0; i < d->nks; i++) {
                                win_t *w;
                                int b;
                                if (i == tgt || !ke[i] || !ke[i]->nwin)
                                        continue;
                                w = &ke[i]->nwin->w[kk];
                                for (b = 0; b < NBUCKETS; b++)
                                        if (w->idx[b] == tw->idx[b])
                                                w->k[b] -= w->k[b] < tw->k[b]
                                                               ? w->k[b]
                                                               : tw->k[b];
                        }
                }
        }
        return emitted;
}

/* The prefetches of the table slots, then the entities, that the
 * event's lookups will touch (gateway, gateway+provider+model,
 * gateway+provider and the key sets): issued together, their cache
 * misses overlap instead of stalling one lookup after another. Entity
 * lookups were the largest single cost of the detector at ~64k entities
 * (bench/e2e_bench.sh). Two stages: a worker prepares the next event
 * (slots) before it scores the current one, and fetches the next one's
 * entities, whose slots have landed by then, before it parses the one
 * after (service.c, worker_run()); gws_detect_event() runs both at once. */
void gws_detect_prepare(const gws_detect_t *d, const gws_event_t *ev,
                        gws_detect_keys_t *k) {
        size_t mask = d->cap - 1;
        int i;

        event_keys(d, ev, k);
        for (i = 0; i < E_K0 + d->nks; i++)
                if (k->ek[i].ok)
                        __builtin_prefetch(&d->slots[k->ek[i].h & mask]);
}

void gws_detect_prefetch(const gws_detect_t *d, const gws_detect_keys_t *k) {
        size_t mask = d->cap - 1, j;
        int i;

        for (i = 0; i < E_K0 + d->nks; i++) {
                uint64_t h = k->ek[i].h;
                const slot_t *sl;
                if (!k->ek[i].ok)
                        continue;
                sl = &d->slots[h & mask];
                if (!sl->e)
                        continue;
                if (sl->h != h) {
                        sl = &d->slots[(h + 1) & mask];
                        if (!sl->e || sl->h != h)
                                continue;
                }
                for (j = 0; j < sizeof(ent_t) + 32; j += 64)
                        __builtin_prefetch((const char *)sl->e + j);
        }
}

void gws_detect_keys_free(gws_detect_keys_t *k) {
        gws_buf_free(&k->buf);
}

/* Notes event \p ev of the current run of far-ahead or far-behind
 * events (\p run counts it already; one run at a time, as an event of
 * either kind ends a run of the other): which gateways the run is made
 * of. */
static void run_note(gws_detect_t *d, const gws_event_t *ev, int run) {
        uint64_t h = gws_hash64_fast(ev->gateway_id.s, ev->gateway_id.len,
                                     0) | 1;
        if (run == 1 || !d->run_gw) {
                d->run_gw = h;
                d->run_multi = 0;
        } else if (h != d->run_gw) {
                d->run_multi = 1;
        }
}

/* 1 if the gateways of the current run may move event time across this
 * host's clock: more than one agrees, or the partition knows no other. */
static int run_agrees(const gws_detect_t *d) {
        return d->run_multi || !d->gateways || !d->gateways->gnext;
}

/* Event time of this partition moves to \p ts across this host's wall
 * clock: \p ahead of it (more than max_future_s; also where event time
 * starts there), or back from there. Counted and logged (rare: runs of
 * FUTURE_CONFIRM events in between); a partition whose events all look
 * late or skewed is explained by this line. A move ahead that stays
 * behind the wall clock (a quiet partition, a backlog) is the usual
 * course of event time and is not noted. */
static void time_jump_note(gws_detect_t *d, int64_t ts, int ahead) {
        char from[40] = "(none)", to[40];
        __atomic_add_fetch(ahead ? &g_jumps_ahead : &g_jumps_back, 1,
                           __ATOMIC_RELAXED);
        if (d->wm != INT64_MIN)
                gws_time_format(d->wm, from, sizeof(from));
        gws_time_format(ts, to, sizeof(to));
        if (ahead)
                gws_log(GWS_LOG_WARNING, "DETECT",
                        "partition %d: event time moves ahead of this "
                        "host's clock, from %s to %s (%d events in a row "
                        "agree): this host's clock is behind, or the "
                        "gateways' clocks ran ahead; then events at the "
                        "right time are late until %d in a row move it "
                        "back",
                        (int)d->partition, from, to, FUTURE_CONFIRM,
                        FUTURE_CONFIRM);
        else
                gws_log(GWS_LOG_WARNING, "DETECT",
                        "partition %d: event time moves back from %s to %s "
                        "(%d events in a row, not ahead of this host's "
                        "clock: the clocks that ran ahead were set right); "
                        "alerts opened after it are resolved",
                        (int)d->partition, from, to, FUTURE_CONFIRM);
}

/* 1 if a full run of far-ahead events ending at \p ts moves event time:
 * when ts is not ahead of the wall clock either (this partition's time
 * lagged: a backlog, a replay), when more than one gateway is in the run
 * (this host's clock is the one behind), or when the partition knows no
 * other gateway. One gateway with a clock ahead of everyone's, among
 * others, does not: its events stay skewed until its clock is fixed. */
static int future_confirms(const gws_detect_t *d, int64_t ts) {
        if (ts <= gws_now_ms() + (int64_t)d->cfg->det_max_future_s * 1000)
                return 1;
        return run_agrees(d);
}

/* The way back, for late event \p ev at \p ts: a watermark more than
 * max_future_s ahead of this host's wall clock (a run ahead of it was
 * followed) and an event more than max_future_s behind it but not ahead
 * of the wall clock count toward a run back; any other event ends it.
 * FUTURE_CONFIRM in a row move event time back to the last of them when
 * they come from gateways that would have moved it ahead of the wall
 * clock (run_agrees()): the clock that ran ahead was set right. One
 * gateway among others whose clock lags the rest (this host's clock
 * with it) does not. A partition whose watermark is not ahead of the
 * wall clock (a replay, a backlog) is never moved back: there, late is
 * late. @returns 1 when event time moves back. */
static int past_confirms(gws_detect_t *d, const gws_event_t *ev,
                         int64_t ts) {
        int64_t far = (int64_t)d->cfg->det_max_future_s * 1000, now;
        if (ts >= d->wm - far || d->wm <= (now = gws_now_ms()) + far ||
            ts > now + far) {
                d->past_run = 0;
                return 0;
        }
        run_note(d, ev, ++d->past_run);
        if (d->past_run < FUTURE_CONFIRM)
                return 0;
        if (!run_agrees(d)) {
                /* waits at its end for a second gateway (and stays
                 * within the snapshot bound) */
                d->past_run = FUTURE_CONFIRM - 1;
                return 0;
        }
        d->past_run = 0;
        return 1;
}

/* Drops the buckets of \p w after bucket \p bidx. */
static void win_trim(win_t *w, int64_t bidx) {
        int i;
        for (i = 0; i < NBUCKETS; i++) {
                if (w->idx[i] > bidx) {
                        w->idx[i] = 0;
                        w->n[i] = w->k[i] = 0;
                }
        }
}

/* Starts g's heavy-hitter window \p nwin afresh, learning nothing from
 * the counts so far. */
static void hh_restart(ent_t *g, int64_t nwin) {
        int i;
        for (i = 0; i < HH__CNT; i++) {
                hh_t *hh = g->gx->hh[i];
                if (!hh)
                        continue;
                gws_hh_restart(hh);
        }
        g->gx->hh_win = nwin;
}

/* Moves event time back to \p ts (past_confirms()). What is kept in
 * event time after ts belongs to the era that ended: its open alerts are
 * resolved (at the old watermark, where their windows end; oldest first,
 * as the tick resolves them: alerts_close_due()), its pending
 * anomalies, window buckets, error buckets, heavy-hitter window and
 * the baselines' holds (nk_hold_note()) are dropped, and the gateways'
 * rate windows stop; each restarts at the gateway's next counted event,
 * the first one partial (rate_part).
 * Baselines (numeric, error share, events per window, usual shares) are
 * kept: they were learned from the gateways' traffic, whatever its
 * dates. A model first seen in that era is known. Rare (a run of
 * FUTURE_CONFIRM each way between two): one pass over the entities.
 * @returns alerts emitted or -1. */
static int wm_rewind(gws_detect_t *d, int64_t ts, gws_alert_cb *cb,
                     void *opaque) {
        int64_t old = d->wm, bidx = ts / d->bucket_ms,
                win = ts / d->window_ms;
        alert_t *a, **pp;
        size_t i;
        int r, k;
        r = alerts_close_due(d, INT64_MIN, ts, old, cb, opaque);
        for (i = 0; i < d->cap; i++) {
                ent_t *e = d->slots[i].e;
                gx_t *x;
                if (!e)
                        continue;
                win_trim(&e->win, bidx);
                for (k = 0; e->nwin && k < NK__CNT; k++) {
                        win_trim(&e->nwin->w[k], bidx);
                        /* a hold into the era that ended would last until
                         * event time is back there */
                        if (e->nwin->hold_to[k] > bidx)
                                e->nwin->hold_to[k] = -1;
                }
                for (pp = &e->alerts; (a = *pp);) {
                        if (!a->open && a->last_anom_ts > ts) {
                                *pp = a->enext;
                                alert_free(d, a);
                        } else {
                                pp = &a->enext;
                        }
                }
                if (e->first_ts != INT64_MIN && e->first_ts > ts)
                        e->first_ts = e->type == E_GPM ? INT64_MIN : ts;
                if (!(x = e->gx))
                        continue;
                if (e->type == E_GP) {
                        if (x->rate_win > bidx)
                                x->rate_win = -1;
                        continue;
                }
                if (x->rate_win > win) {
                        x->rate_win = -1;
                        x->rate_part = 0;
                        memset(x->rcnt, 0, sizeof(x->rcnt));
                }
                if (x->hh_win > win)
                        hh_restart(e, win);
        }
        d->wm = ts;
        d->rate_lo = INT64_MIN; /* the next tick finds the open windows */
        d->future_run = d->past_run = 0;
        return r;
}

int gws_detect_event(gws_detect_t *d, const gws_event_t *ev,
                     gws_score_t *out, gws_alert_cb *cb, void *opaque) {
        gws_detect_prepare(d, ev, &d->own);
        gws_detect_prefetch(d, &d->own);
        return gws_detect_event_keyed(d, ev, &d->own, out, cb, opaque);
}

int gws_detect_event_keyed(gws_detect_t *d, const gws_event_t *ev,
                           const gws_detect_keys_t *kp, gws_score_t *out,
                           gws_alert_cb *cb, void *opaque) {
        const gws_config_t *cfg = d->cfg;
        double zthr = cfg->det_z_threshold, keep = cfg->anomaly_keep_score;
        double s, scores[GWS_R__CNT] = {0};
        int64_t bidx, ts = ev->ts_ms;
        ent_t *gpm = NULL, *gp = NULL, *g = NULL;
        int is_new = 0;
        uint32_t n, k;
        int emitted = 0, r, i, is_err = gws_event_is_error(ev);

        d->changes++;
        out->score = 0;
        out->reasons = 0;
        /* Before 1970 (the event view refuses it: a caller's event): its
         * window and bucket indexes would be negative, and negative
         * remainders index before the windows' arrays. */
        if (ts < 0) {
                d->st.skewed++;
                __atomic_add_fetch(&g_skewed, 1, __ATOMIC_RELAXED);
                return 0;
        }
        d->seq++; /* entities touched from here on are pinned */
        d->kp = kp;

        /* Event time: the watermark is the newest ts. An event older than
         * the lateness bound is scored (and learned) but not counted in
         * windows and raises no alert; one far ahead moves the watermark
         * only once FUTURE_CONFIRM events in a row agree (a gateway with
         * a wrong clock must not make everyone else late), and a
         * watermark that went far ahead of the wall clock comes back the
         * same way once its clock is set right (past_confirms()). The
         * first event of a partition has no watermark to be compared
         * with: the wall clock stands in for it, and one far ahead of it
         * is only counted (it would start event time there and make
         * every later event late); FUTURE_CONFIRM in a row start it
         * anyway (this host's clock may be the wrong one). */
        d->quiet = 0;
        if (d->wm == INT64_MIN &&
            ts > gws_now_ms() + (int64_t)cfg->det_max_future_s * 1000 &&
            ++d->future_run < FUTURE_CONFIRM) {
                d->st.skewed++;
                __atomic_add_fetch(&g_skewed, 1, __ATOMIC_RELAXED);
                return 0;
        }
        if (d->wm == INT64_MIN && d->future_run >= FUTURE_CONFIRM)
                time_jump_note(d, ts, 1); /* starts ahead of the clock */
        if (d->wm != INT64_MIN &&
            ts > d->wm + (int64_t)cfg->det_max_future_s * 1000) {
                d->past_run = 0;
                run_note(d, ev, ++d->future_run);
                if (d->future_run >= FUTURE_CONFIRM &&
                    future_confirms(d, ts)) {
                        d->future_run = 0;
                        if (ts > gws_now_ms() +
                                     (int64_t)cfg->det_max_future_s * 1000)
                                time_jump_note(d, ts, 1);
                } else {
                        /* a refused run waits at its end for a second
                         * gateway (and stays within the snapshot bound) */
                        if (d->future_run >= FUTURE_CONFIRM)
                                d->future_run = FUTURE_CONFIRM - 1;
                        d->quiet = 1;
                        d->st.skewed++;
                        __atomic_add_fetch(&g_skewed, 1, __ATOMIC_RELAXED);
                }
        } else {
                d->future_run = 0;
        }
        if (!d->quiet && (d->wm == INT64_MIN || ts > d->wm))
                d->wm = ts;
        if (ts < d->wm - d->lateness_ms) {
                /* late, unless FUTURE_CONFIRM in a row far behind a
                 * watermark far ahead of the wall clock take event time
                 * back (past_confirms()) */
                if (past_confirms(d, ev, ts)) {
                        time_jump_note(d, ts, 0);
                        if ((r = wm_rewind(d, ts, cb, opaque)) < 0)
                                return -1;
                        emitted += r;
                } else {
                        d->quiet = 1;
                        d->st.late++;
                        __atomic_add_fetch(&g_late, 1, __ATOMIC_RELAXED);
                }
        } else {
                d->past_run = 0;
        }
        if (d->wm / 1000 != d->last_tick) {
                d->last_tick = d->wm / 1000;
                if ((r = tick(d, cb, opaque)) < 0)
                        return -1;
                emitted += r;
        }
        bidx = ts / d->bucket_ms;

        /* G: gateway. A gateway new to this partition is checked against
         * the others (placement.h: is the input keyed by gateway_id?). */
        if ((g = ent_ev(d, E_G, 1, &is_new))) {
                if (is_new)
                        gws_placement_note(ev->gateway_id.s,
                                           ev->gateway_id.len, d->partition);
                if (is_new && cfg->det_novelty &&
                    known_has(d, warm_fp(g->key, g->klen)))
                        g->first_ts = INT64_MIN; /* warmed before */
        }
        if (g) {
                int64_t win = ts / d->window_ms;
                if (!d->quiet && g->first_ts > ts)
                        g->first_ts = ts;
                /* every event: a gateway whose models are all known
                 * is remembered as warmed too */
                if (!d->quiet && cfg->det_novelty)
                        gw_warm(d, g, ts);
                /* Windows end lateness_ms after their last millisecond;
                 * at most RATE_RING stay open. */
                if ((r = rate_close(d, g, closed_upto(d), cb, opaque)) < 0)
                        return -1;
                emitted += r;
                /* Started by an event that counts: a late or skewed one
                 * would put the gateway's windows in the past or the
                 * future (then all its events were late). After the
                 * close, which may have found the gateway gone. */
                if (g->gx->rate_win < 0 && !d->quiet) {
                        /* a gateway with windows closed before restarts
                         * (event time moved back, or it was gone)
                         * partway through this one; its heavy-hitter
                         * summaries close their own windows */
                        g->gx->rate_part = g->gx->base_n > 0;
                        g->gx->rate_win = win;
                        if (win < d->rate_lo)
                                d->rate_lo = win;
                        if (!g->gx->hh[0])
                                g->gx->hh_win = d->wm / d->window_ms;
                }
                if (!d->quiet && win >= g->gx->rate_win + RATE_RING &&
                    (r = rate_close(d, g, win - RATE_RING + 1, cb,
                                    opaque)) < 0)
                        return -1;
                if (!d->quiet && win >= g->gx->rate_win)
                        g->gx->rcnt[win % RATE_RING]++;
                else if (!d->quiet) {
                        d->st.late++; /* its window closed already */
                        __atomic_add_fetch(&g_late, 1, __ATOMIC_RELAXED);
                }
                /* Early spike check on the window so far. */
                if (!d->quiet && cfg->det_rate &&
                    g->gx->base_n >= RATE_WARMUP_WINDOWS && g->gx->base >= 5) {
                        double lam = g->gx->base;
                        double c = g->gx->rcnt[win % RATE_RING];
                        double frac = (double)(ts - win * d->window_ms) /
                                      (double)d->window_ms;
                        double expect, zr;
                        if (frac < 0.25)
                                frac = 0.25;
                        expect = lam * frac;
                        zr = (c - expect) / sqrt(expect + 1);
                        if (c >= 2.5 * expect + 10 && zr >= 2 * zthr) {
                                s = z_to_score(zr / 2, zthr);
                                /* observed: the window's pace so far */
                                if ((r = alert_anomaly(d, g, K_RATE_SPIKE, ev,
                                                       c / frac, lam, s, 1, 1,
                                                       2, cb, opaque)) < 0)
                                        return -1;
                                emitted += r;
                        }
                }
                if (!d->quiet && cfg->det_heavy_hitter) {
                        if ((r = concentration(d, g, ev, scores, cb,
                                               opaque)) < 0)
                                return -1;
                        emitted += r;
                }
        }

        /* GPM: baselines, latency window, novelty */
        if (d->kp->ek[E_GPM].ok) {
                /* first seen now in event time, whatever a late or
                 * skewed event says */
                int64_t seen = d->quiet ? d->wm : ts;
                gpm = ent_ev(d, E_GPM, 1, &is_new);
                /* a model seen before was evicted, it is not new */
                if (gpm && is_new &&
                    !known_add(d, known_fp(gpm->key, gpm->klen)) &&
                    cfg->det_novelty && g && gw_warm(d, g, seen))
                        gpm->first_ts = seen; /* novel from now on */
                else if (gpm && is_new)
                        gpm->first_ts = INT64_MIN; /* known from the start */
        }
        if (gpm && cfg->det_novelty && gpm->first_ts != INT64_MIN &&
            ts - gpm->first_ts < (int64_t)cfg->det_window_s * 1000) {
                scores[6] = 0.9;
                if ((r = alert_anomaly(d, gpm, K_NEW_VALUE, ev, 1, 0, 0.9, 1,
                                       1, 1, cb, opaque)) < 0)
                        return -1;
                emitted += r;
        }

        /* Numeric deviation per key set, then one alert per incident. */
        if (!is_err && !ev->cached) {
                if ((r = numeric(d, ev, g, gpm, bidx, scores, cb,
                                 opaque)) < 0)
                        return -1;
                emitted += r;
        }

        /* GP: error share against baseline, binomial z-test */
        if ((gp = ent_ev(d, E_GP, 1, NULL))) {
                double p0, zs;
                if (!d->quiet && bidx > gp->gx->rate_win) {
                        /* A bucket completed: learn from it, unless it
                         * was itself abnormal (an incident must not
                         * become the baseline). rate_win holds the last
                         * bucket index for GP entities; a late or skewed
                         * event's bucket is not the newest. */
                        if (gp->gx->rate_win >= 0)
                                error_fold(d, gp);
                        gp->gx->rate_win = bidx;
                }
                if (!d->quiet)
                        win_add(&gp->win, bidx, 1, (uint32_t)is_err);
                win_sum(&gp->win, bidx, &n, &k);
                p0 = gp->gx->base_n ? gp->gx->base : ERROR_PRIOR;
                if (p0 < 0.005)
                        p0 = 0.005;
                zs = ((double)k - n * p0) / sqrt(n * p0 * (1 - p0) + 1e-9);
                if (cfg->det_error_rate && is_err &&
                    (int)gp->gx->base_n >= cfg->det_warmup_events &&
                    (int)k >= cfg->det_error_min_errors &&
                    zs >= cfg->det_error_z &&
                    (double)k / n >= 2 * p0 + 0.05) {
                        scores[4] = z_to_score(zs, cfg->det_error_z);
                        if ((r = alert_anomaly(d, gp, K_ERROR_RATE, ev,
                                               (double)k / n, p0, scores[4],
                                               n, k, 1, cb, opaque)) < 0)
                                return -1;
                        emitted += r;
                }
        }

        for (i = 0; i < GWS_R__CNT; i++) {
                if (scores[i] > out->score)
                        out->score = scores[i];
                if (scores[i] >= keep && scores[i] > 0)
                        out->reasons |= 1u << i;
        }
        return emitted;
}

/* ------------------------------------------------------------------------
 * snapshots (detectors state that moves with its partition)
 *
 * Format 5, little-endian, field by field (no struct dumps: padding and
 * pointers never reach the wire):
 *   fingerprint: "GWSD", u32 version, the key sets, window_s, hh_slots
 *     (a snapshot taken under other settings is incompatible)
 *   i64 wm, i32 future_run, i64 last_tick, i32 past_run
 *   u32 n, then n u64 fingerprints (ascending), n <= KNOWN_MAX: the
 *   models seen (known_fp()) and the gateways past their novelty warm-up
 *   (warm_fp()); before the entities, so that a restore which runs out
 *   of budget partway through them (entities with open alerts fill it:
 *   the rest start cold) still has them
 *   u32 entities
 *   entities from least to most recently used (the loader pushes each to
 *   the LRU head, so the order survives and a smaller budget drops the
 *   oldest), each: u8 type, u16 klen, key, i64 first_ts, window, 5 numeric
 *   baselines, rate/error fields, u8 parts (bit 0 numeric windows, bits
 *   1-2 heavy-hitter summaries, bit 3 a gateway's rate window counted
 *   from partway through), u8 alert mask, the parts (the numeric windows
 *   followed by i64 hold_from and hold_to per kind) and the alerts (with
 *   their ids, so an open alert goes on being updated and resolved under
 *   its id; each ends with i64 silent_from, u32 last_n). A gateway's
 *   first_ts is INT64_MIN once it is past its warm-up (format 5).
 * A heavy-hitter summary's counts are written as f32 (exact below 2^24;
 * in memory they are exact past it, hh.h) and read back rounded to
 * them, a negative or NaN request count as 0 (f32_count()); tokens,
 * totals and usual counts that are negative or not finite make the
 * snapshot corrupt (hh_count_ok()).
 * A heavy-hitter slot's prio is written but not read: the loader
 * recomputes it from the slot's counts and the summary's usual totals
 * (gws_hh_weigh()), so that it evicts exactly as the saved summary would,
 * and snapshots of builds that ordered slots by requests only (prio =
 * hist + cur, the same layout) take this build's order.
 * Formats 1 to 4 are still read. Format 4 had the fingerprints after
 * the last entity, models only: a restore cut short by the budget lost
 * them all, and a known model was new again. Format 3 had none: the
 * models seen are then those of its GPM entities (evicted ones are new
 * once more when they come back). Format 2 had no holds (none is under
 * way after its restore) and no last_n (not known: pending anomalies are
 * then dropped after window_s without one only). Format 1 had, besides,
 * no past_run, no parts bit 3 and no silent_from.
 * A baseline's u32 count is written as it is (NUM_N_MAX round-trips);
 * one with a mean or absdev not finite (builds before NUM_N_MAX wrote
 * NaN for a count at UINT32_MAX, any format) is loaded cold.
 * ------------------------------------------------------------------------ */

#define SNAP_MAGIC "GWSD"
#define SNAP_VERSION 5u
#define SNAP_VERSION_MIN 1u /* the oldest format this build reads */

typedef struct {
        gws_buf_t *b;
        int bad; /* an allocation failed */
} wr_t;

static void put_bytes(wr_t *w, const void *p, size_t n) {
        if (!w->bad && gws_buf_append(w->b, p, n) == -1)
                w->bad = 1;
}

static void put_u8(wr_t *b, unsigned v) {
        unsigned char c = (unsigned char)v;
        put_bytes(b, (const char *)&c, 1);
}
static void put_u16(wr_t *b, unsigned v) {
        unsigned char c[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
        put_bytes(b, (const char *)c, 2);
}
static void put_u32(wr_t *b, uint32_t v) {
        unsigned char c[4];
        int i;
        for (i = 0; i < 4; i++)
                c[i] = (unsigned char)(v >> (8 * i));
        put_bytes(b, (const char *)c, 4);
}
static void put_u64(wr_t *b, uint64_t v) {
        unsigned char c[8];
        int i;
        for (i = 0; i < 8; i++)
                c[i] = (unsigned char)(v >> (8 * i));
        put_bytes(b, (const char *)c, 8);
}
static void put_f64(wr_t *b, double v) {
        uint64_t u;
        memcpy(&u, &v, 8);
        put_u64(b, u);
}
static void put_f32(wr_t *b, float v) {
        uint32_t u;
        memcpy(&u, &v, 4);
        put_u32(b, u);
}

static void put_win(wr_t *b, const win_t *w) {
        int i;
        for (i = 0; i < NBUCKETS; i++)
                put_u64(b, (uint64_t)w->idx[i]);
        for (i = 0; i < NBUCKETS; i++)
                put_u32(b, w->n[i]);
        for (i = 0; i < NBUCKETS; i++)
                put_u32(b, w->k[i]);
}

static void put_fingerprint(wr_t *b, const gws_detect_t *d,
                            uint32_t version) {
        int i, f;
        put_bytes(b, SNAP_MAGIC, 4);
        put_u32(b, version);
        put_u8(b, (unsigned)d->nks);
        for (i = 0; i < d->nks; i++) {
                put_u8(b, (unsigned)d->ks[i].nfields);
                for (f = 0; f < 3; f++)
                        put_u8(b, d->ks[i].field[f]);
        }
        put_u32(b, (uint32_t)d->cfg->det_window_s);
        put_u32(b, (uint32_t)d->cfg->det_hh_slots);
}

/* Snapshot order: least recently used first (gws_detect_load gives
 * them increasing use marks in this order, so eviction order survives),
 * ties (entities of one event) by type and key: the same state always
 * gives the same bytes. */
static __thread uint32_t save_seq_tls; /* d->seq while sorting */

static int u64_cmp(const void *pa, const void *pb) {
        uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
        return a < b ? -1 : a > b;
}

static int ent_cmp_age(const void *pa, const void *pb) {
        const ent_t *a = *(const ent_t *const *)pa,
                    *b = *(const ent_t *const *)pb;
        uint32_t aa = save_seq_tls - a->seen, ab = save_seq_tls - b->seen;
        size_t l;
        int c;
        if (aa != ab)
                return aa > ab ? -1 : 1; /* older first */
        if (a->type != b->type)
                return a->type < b->type ? -1 : 1;
        l = a->klen < b->klen ? a->klen : b->klen;
        if ((c = memcmp(a->key, b->key, l)))
                return c;
        return a->klen < b->klen ? -1 : a->klen > b->klen;
}

/* The fingerprints of the models seen and warmed gateways, in an order
 * that does not depend on the table's history. @returns 0, or -1 when
 * out of memory. */
static int put_known(wr_t *out, const gws_detect_t *d) {
        uint64_t *fps;
        size_t j, n = 0;
        if (!(fps = malloc((d->known_n ? d->known_n : 1) * sizeof(*fps))))
                return -1;
        for (j = 0; j < d->known_cap; j++)
                if (d->known[j])
                        fps[n++] = d->known[j];
        qsort(fps, n, sizeof(*fps), u64_cmp);
        put_u32(out, (uint32_t)n);
        for (j = 0; j < n; j++)
                put_u64(out, fps[j]);
        free(fps);
        return 0;
}

int gws_detect_save(const gws_detect_t *d, gws_buf_t *buf) {
        const gx_t gx0 = {.rate_win = -1}, *gx;
        const ent_t *e, **order;
        wr_t w = {buf, 0}, *out = &w;
        size_t n = 0, j;
        int i, s;

        if (!(order = malloc((d->nents ? d->nents : 1) * sizeof(*order))))
                return -1;
        for (j = 0; j < d->cap; j++)
                if (d->slots[j].e)
                        order[n++] = d->slots[j].e;
        save_seq_tls = d->seq;
        qsort(order, n, sizeof(*order), ent_cmp_age);

        put_fingerprint(out, d, SNAP_VERSION);
        put_u64(out, (uint64_t)d->wm);
        put_u32(out, (uint32_t)d->future_run);
        put_u64(out, (uint64_t)d->last_tick);
        put_u32(out, (uint32_t)d->past_run);
        if (put_known(out, d) == -1) {
                free(order);
                return -1;
        }
        put_u32(out, (uint32_t)d->nents);
        for (j = 0; j < n; j++) {
                unsigned parts = 0, amask = 0;
                e = order[j];
                put_u8(out, (unsigned)e->type);
                put_u16(out, e->klen);
                put_bytes(out, e->key, e->klen);
                put_u64(out, (uint64_t)e->first_ts);
                put_win(out, &e->win);
                for (i = 0; i < F__CNT; i++) {
                        put_u32(out, e->num[i].n);
                        put_f64(out, e->num[i].mean);
                        put_f64(out, e->num[i].absdev);
                }
                /* Entities without a gx part write its initial values
                 * (the format predates the split). */
                gx = e->gx ? e->gx : &gx0;
                put_f64(out, gx->base);
                put_u32(out, gx->base_n);
                put_u64(out, (uint64_t)gx->rate_win);
                for (i = 0; i < RATE_RING; i++)
                        put_u32(out, gx->rcnt[i]);
                put_u64(out, (uint64_t)gx->hh_win);
                if (e->nwin)
                        parts |= 1;
                for (i = 0; i < HH__CNT; i++)
                        if (gx->hh[i])
                                parts |= 2u << i;
                if (gx->rate_part)
                        parts |= 8;
                for (i = 0; i < K__CNT; i++)
                        if (ent_alert(e, (akind_t)i))
                                amask |= 1u << i;
                put_u8(out, parts);
                put_u8(out, amask);
                for (i = 0; e->nwin && i < NK__CNT; i++)
                        put_win(out, &e->nwin->w[i]);
                for (i = 0; e->nwin && i < NK__CNT; i++) {
                        put_u64(out, (uint64_t)e->nwin->hold_from[i]);
                        put_u64(out, (uint64_t)e->nwin->hold_to[i]);
                }
                for (i = 0; i < HH__CNT; i++) {
                        const hh_t *h = gx->hh[i];
                        if (!h)
                                continue;
                        put_f32(out, (float)h->total);
                        put_f32(out, (float)h->ttotal);
                        put_f32(out, h->htotal);
                        put_f32(out, h->httotal);
                        put_u32(out, (uint32_t)h->windows);
                        put_u32(out, (uint32_t)h->used);
                        for (s = 0; s < h->used; s++) {
                                put_u64(out, h->h[s]);
                                put_f32(out, h->prio[s]);
                                put_f32(out, (float)h->cur[s]);
                                put_f32(out, (float)h->err[s]);
                                put_f32(out, (float)h->tok[s]);
                                put_f32(out, (float)h->terr[s]);
                                put_f32(out, h->hist[s]);
                                put_f32(out, h->htok[s]);
                                put_u8(out, h->klen[s]);
                                put_bytes(out, h->key[s], h->klen[s]);
                        }
                }
                for (i = 0; i < K__CNT; i++) {
                        const alert_t *a = ent_alert(e, (akind_t)i);
                        int k;
                        if (!a)
                                continue;
                        put_u8(out, (unsigned)a->open);
                        put_bytes(out, a->id, sizeof(a->id));
                        put_u64(out, (uint64_t)a->opened_ts);
                        put_u64(out, (uint64_t)a->last_anom_ts);
                        put_u64(out, (uint64_t)a->last_update_ts);
                        put_u64(out, (uint64_t)a->first_anom_ts);
                        put_f64(out, a->observed);
                        put_f64(out, a->expected);
                        put_f64(out, a->score);
                        put_f64(out, a->peak_score);
                        put_u32(out, a->anomalies);
                        put_u32(out, (uint32_t)a->tokens);
                        put_u8(out, (unsigned)a->nids);
                        put_u8(out, (unsigned)a->idpos);
                        for (k = 0; k < a->nids; k++) {
                                size_t l = strlen(a->ids[k]);
                                put_u8(out, (unsigned)l);
                                put_bytes(out, a->ids[k], l);
                        }
                        put_u64(out, (uint64_t)a->silent_from);
                        put_u32(out, a->last_n);
                }
        }
        free(order);
        return w.bad ? -1 : 0;
}

/* Bounds-checked reader over a snapshot. */
typedef struct {
        const unsigned char *p, *end;
        int bad;
        const char *why; /* what was wrong, when more than "truncated" */
} rd_t;

static const unsigned char *rd_take(rd_t *r, size_t n) {
        const unsigned char *p = r->p;
        if (r->bad || (size_t)(r->end - r->p) < n) {
                r->bad = 1;
                return NULL;
        }
        r->p += n;
        return p;
}
static uint64_t rd_uint(rd_t *r, int bytes) {
        const unsigned char *p = rd_take(r, (size_t)bytes);
        return p ? gws_le_get(p, (size_t)bytes) : 0;
}
#define rd_u8(r) ((unsigned)rd_uint(r, 1))
#define rd_u16(r) ((unsigned)rd_uint(r, 2))
#define rd_u32(r) ((uint32_t)rd_uint(r, 4))
#define rd_i64(r) ((int64_t)rd_uint(r, 8))
static double rd_f64(rd_t *r) {
        uint64_t u = rd_uint(r, 8);
        double v;
        memcpy(&v, &u, 8);
        return v;
}
static float rd_f32(rd_t *r) {
        uint32_t u = (uint32_t)rd_uint(r, 4);
        float v;
        memcpy(&v, &u, 4);
        return v;
}
/* A heavy-hitter request count written as a float (format 5): a
 * negative or NaN one is 0, one past UINT32_MAX UINT32_MAX (a float
 * outside the range of uint32_t has no conversion). */
/* A heavy-hitter summary's tokens, totals and usual counts (read as
 * f32): finite and not negative. */
static int hh_count_ok(double v) {
        return v >= 0 && v <= FLT_MAX;
}
static uint32_t f32_count(float v) {
        if (!(v > 0))
                return 0;
        return v >= 4294967295.0f ? UINT32_MAX : (uint32_t)v;
}
/* Event times (epoch ms) and window or bucket indices: what events can
 * give (their ts is year 0-9999 or epoch ms up to 1e14) is far inside
 * +-TS_LIMIT, so sums and differences of them cannot overflow; anything
 * else marks the snapshot bad. \p sentinel allows INT64_MIN ("unset"
 * where the code checks for it). */
#define TS_LIMIT 1000000000000000LL
static int64_t rd_ts(rd_t *r, int sentinel) {
        int64_t v = rd_i64(r);
        if ((v == INT64_MIN && sentinel) || (v >= -TS_LIMIT && v <= TS_LIMIT))
                return v;
        r->bad = 1;
        return 0;
}
static void rd_win(rd_t *r, win_t *w) {
        int i;
        for (i = 0; i < NBUCKETS; i++)
                w->idx[i] = rd_ts(r, 0);
        for (i = 0; i < NBUCKETS; i++)
                w->n[i] = rd_u32(r);
        for (i = 0; i < NBUCKETS; i++)
                w->k[i] = rd_u32(r);
}

/* Event time as alerts show it (window, the reason's "since"): RFC 3339,
 * years 1970 (events before it are not scored) to 9999. */
#define TIME_MAX 253402300799999LL /* 9999-12-31T23:59:59.999Z */

/* 1 if \p t can be one of an alert's times in a snapshot of event time
 * d->wm: not before 1970, and not after event time by more than the
 * lateness bound (at most two windows): an alert that opened on an event
 * just before event time moved back keeps that event's time, its later
 * (late) anomalies before where it moved back to (wm_rewind()). Forged,
 * window.start went out as "-29719-04-05T...", and a last anomaly years
 * ahead kept its alert open for ever. */
static int alert_time_ok(const gws_detect_t *d, int64_t t) {
        return d->wm != INT64_MIN && t >= 0 && t <= d->wm + 2 * d->window_ms;
}

/* Reads one alert of kind \p kind into \p e from a snapshot of format
 * \p version. @returns 0 or -1. */
static int load_alert(gws_detect_t *d, rd_t *r, ent_t *e, akind_t kind,
                      uint32_t version) {
        alert_t *a = calloc(1, sizeof(*a));
        const unsigned char *id;
        int k;
        if (!a)
                return -1;
        bytes_add(d, sizeof(*a));
        a->ent = e;
        a->kind = kind;
        a->open = rd_u8(r) != 0;
        if ((id = rd_take(r, sizeof(a->id))))
                memcpy(a->id, id, sizeof(a->id));
        a->id[sizeof(a->id) - 1] = '\0';
        if (!gws_utf8_valid(a->id, strlen(a->id))) {
                r->bad = 1;
                r->why = "an alert id not UTF-8";
        }
        a->opened_ts = rd_ts(r, 0);
        a->last_anom_ts = rd_ts(r, 0);
        a->last_update_ts = rd_ts(r, 0);
        a->first_anom_ts = rd_ts(r, 0);
        if (!alert_time_ok(d, a->opened_ts) ||
            !alert_time_ok(d, a->last_anom_ts) ||
            !alert_time_ok(d, a->last_update_ts) ||
            !alert_time_ok(d, a->first_anom_ts)) {
                r->bad = 1;
                r->why = "an alert's time out of range";
        }
        a->observed = rd_f64(r);
        a->expected = rd_f64(r);
        a->score = rd_f64(r);
        a->peak_score = rd_f64(r);
        /* What the detector writes (its values are numbers, its scores
         * z_to_score()'s, in [0,1]): anything else is a corrupt or
         * forged snapshot, and the alert's next record would carry it
         * (a NaN went out as "observed":null, a score of 2 as it was). */
        if (!isfinite(a->observed) || !isfinite(a->expected) ||
            !(a->score >= 0 && a->score <= 1) ||
            !(a->peak_score >= 0 && a->peak_score <= 1)) {
                r->bad = 1;
                r->why = "an alert's values out of range";
        }
        a->anomalies = rd_u32(r);
        a->tokens = (int)rd_u32(r);
        a->nids = (int)rd_u8(r);
        a->idpos = (int)rd_u8(r);
        if (a->nids > MAX_IDS || a->idpos >= MAX_IDS / 2) {
                a->nids = a->idpos = 0; /* alert_free() frees nids ids */
                r->bad = 1;
        }
        for (k = 0; !r->bad && k < a->nids; k++) {
                unsigned l = rd_u8(r);
                const unsigned char *s = rd_take(r, l);
                if (!s || !gws_utf8_valid(s, l) ||
                    !(a->ids[k] = malloc(l + 1))) {
                        if (s && !gws_utf8_valid(s, l))
                                r->why = "an event id not UTF-8";
                        a->nids = k;
                        r->bad = 1;
                        break;
                }
                memcpy(a->ids[k], s, l);
                a->ids[k][l] = '\0';
                bytes_add(d, id_bytes(a->ids[k]));
        }
        a->silent_from = version >= 2 ? rd_ts(r, 0) : -1;
        if (a->silent_from != -1 && !alert_time_ok(d, a->silent_from))
                r->bad = 1;
        a->last_n = version >= 3 ? rd_u32(r) : UINT32_MAX;
        a->enext = e->alerts;
        e->alerts = a;
        if (a->open && !r->bad) {
                a->onext = d->open_head;
                if (d->open_head)
                        d->open_head->oprev = a;
                d->open_head = a;
        }
        return r->bad ? -1 : 0;
}

/* Reads the fingerprints put_known() wrote (format 4 on); those that
 * the budget has no room for are not remembered (known_add()). */
static void load_known(gws_detect_t *d, rd_t *r) {
        uint32_t nk = rd_u32(r), k;
        if (nk > KNOWN_MAX) {
                r->bad = 1;
                r->why = "too many models seen";
        }
        for (k = 0; k < nk && !r->bad; k++) {
                uint64_t f = rd_uint(r, 8);
                if (!r->bad && !f) {
                        r->bad = 1;
                        r->why = "a model fingerprint 0";
                } else if (!r->bad) {
                        known_add(d, f);
                }
        }
}

int gws_detect_load(gws_detect_t *d, const void *buf, size_t len,
                    char *errstr, size_t errstr_size) {
        rd_t r = {buf, (const unsigned char *)buf + len, 0, NULL};
        gx_t scratch, *gx;
        gws_buf_t fp = {0};
        wr_t fw = {&fp, 0};
        uint32_t nents, i, version;
        int ok, is_new;

        d->changes++;
        if (d->nents || d->wm != INT64_MIN) {
                snprintf(errstr, errstr_size, "state already in use");
                return -1;
        }
        if (len < 8 || memcmp(buf, SNAP_MAGIC, 4)) {
                snprintf(errstr, errstr_size, "not a detector snapshot");
                return -1;
        }
        rd_take(&r, 4);
        if ((version = rd_u32(&r)) < SNAP_VERSION_MIN ||
            version > SNAP_VERSION) {
                snprintf(errstr, errstr_size,
                         "detector format %u, this build reads %u to %u",
                         (unsigned)version, SNAP_VERSION_MIN, SNAP_VERSION);
                return -1;
        }
        put_fingerprint(&fw, d, version);
        if (fw.bad) {
                snprintf(errstr, errstr_size, "out of memory");
                gws_buf_free(&fp);
                return -1;
        }
        ok = len >= fp.len && !memcmp(buf, fp.buf, fp.len);
        if (!ok) {
                snprintf(errstr, errstr_size,
                         "incompatible: taken with other detector settings "
                         "(detectors.numeric_keys, window_s or hh_slots "
                         "differ)");
                gws_buf_free(&fp);
                return -1;
        }
        r.p = (const unsigned char *)buf + fp.len;
        gws_buf_free(&fp);

        d->wm = rd_ts(&r, 1);
        /* what events give, and alerts can show (alert_time_ok()):
         * forged years ahead, every open alert resolved there */
        if (d->wm != INT64_MIN && (d->wm < 0 || d->wm > TIME_MAX)) {
                r.bad = 1;
                r.why = "event time out of range";
        }
        d->future_run = (int)rd_u32(&r);
        d->last_tick = rd_ts(&r, 1);
        if (version >= 2)
                d->past_run = (int)rd_u32(&r);
        if (d->future_run < 0 || d->future_run >= FUTURE_CONFIRM ||
            d->past_run < 0 || d->past_run >= FUTURE_CONFIRM)
                r.bad = 1;
        if (version >= 5)
                load_known(d, &r);
        nents = rd_u32(&r);
        for (i = 0; i < nents && !r.bad; i++) {
                unsigned type = rd_u8(&r), klen = rd_u16(&r), parts, amask;
                const unsigned char *key = rd_take(&r, klen);
                ent_t *e;
                int k, s;

                if (r.bad || type >= (unsigned)(E_K0 + d->nks)) {
                        r.bad = 1;
                        break;
                }
                /* keys, alert and event ids are written into alerts */
                if (!gws_utf8_valid(key, klen)) {
                        r.bad = 1;
                        r.why = "an entity key not UTF-8";
                        break;
                }
                gws_buf_reset(&d->key);
                gws_buf_append(&d->key, (const char *)key, klen);
                d->seq++; /* only the entity being loaded is pinned */
                if (!(e = ent_get_ex(d, (etype_t)type, 1, &is_new))) {
                        /* Over the byte budget with entities that carry
                         * open alerts: the rest starts cold. */
                        d->st.untracked++;
                        break;
                }
                /* A fresh entity: each of its parts (windows, summaries,
                 * alerts) is read once, into nothing. */
                if (!is_new) {
                        r.bad = 1;
                        r.why = "an entity twice";
                        break;
                }
                /* unset only for a model known from the start, or a
                 * gateway past its warm-up (written from format 5 on;
                 * what it means holds for any format) */
                e->first_ts = rd_ts(&r, type == E_GPM || type == E_G);
                if (type == E_GPM)
                        known_add(d, known_fp(e->key, e->klen));
                /* formats 1-4 kept no warmed gateways: those are then
                 * its gateways past their warm-up at its event time */
                if (type == E_G && version < 5 && d->cfg->det_novelty &&
                    d->wm != INT64_MIN && !r.bad &&
                    (e->first_ts == INT64_MIN || gw_warm(d, e, d->wm)))
                        known_add(d, warm_fp(e->key, e->klen));
                rd_win(&r, &e->win);
                for (k = 0; k < F__CNT; k++) {
                        e->num[k].n = rd_u32(&r);
                        e->num[k].mean = rd_f64(&r);
                        e->num[k].absdev = rd_f64(&r);
                        /* Builds before NUM_N_MAX spoiled a baseline
                         * that reached UINT32_MAX values (alpha 1/0:
                         * mean and absdev NaN); now warm, its z would
                         * be NaN, scored as the highest anomaly on
                         * every event. It starts again, as a new
                         * entity's would. */
                        if (!isfinite(e->num[k].mean) ||
                            !isfinite(e->num[k].absdev))
                                memset(&e->num[k], 0, sizeof(e->num[k]));
                        /* No build writes a finite one beyond what
                         * events give (NUM_ABS_MAX): such a baseline is
                         * corrupt or forged, and clipped updates never
                         * learn it back (a mean of -1e300 made every
                         * usual value of the entity an anomaly). */
                        if (fabs(e->num[k].mean) > NUM_ABS_MAX ||
                            e->num[k].absdev < 0 ||
                            e->num[k].absdev > 2 * NUM_ABS_MAX) {
                                r.bad = 1;
                                r.why = "a baseline out of range";
                        }
                }
                /* Entities without a gx part read it into scratch. */
                gx = e->gx ? e->gx : &scratch;
                gx->base = rd_f64(&r);
                gx->base_n = rd_u32(&r);
                gx->rate_win = rd_ts(&r, 0);
                for (k = 0; k < RATE_RING; k++)
                        gx->rcnt[k] = rd_u32(&r);
                gx->hh_win = rd_ts(&r, 0);
                /* A rate baseline counts events, an error baseline is a
                 * share: anything else is corrupt or forged, and would
                 * never be learned away (an infinite rate opened a
                 * rate_drop with "expected":null, a NaN one stopped the
                 * gateway's rate alerts for good). */
                if (e->gx && (!(gx->base >= 0) || !isfinite(gx->base) ||
                              (type == E_GP && gx->base > 1))) {
                        r.bad = 1;
                        r.why = "a rate or error baseline out of range";
                        break;
                }
                parts = rd_u8(&r);
                amask = rd_u8(&r);
                /* A gateway's two summaries go together (concentration()
                 * allocates both when hh[0] is missing: a lone hh[1]
                 * leaked); nothing else has them, nor a partial rate
                 * window (format 2 on). */
                if ((parts & ~(version >= 2 ? 15u : 7u)) ||
                    ((parts & 6u) && ((parts & 6u) != 6u || type != E_G))) {
                        r.bad = 1;
                        r.why = "heavy-hitter summaries out of place";
                        break;
                }
                if ((parts & 8u) && type != E_G) {
                        r.bad = 1;
                        r.why = "a partial rate window out of place";
                        break;
                }
                if (e->gx)
                        e->gx->rate_part = (parts & 8u) != 0;
                if (parts & 1) {
                        if (nwin_alloc(d, e) == -1) {
                                r.bad = 1;
                                break;
                        }
                        for (k = 0; k < NK__CNT; k++)
                                rd_win(&r, &e->nwin->w[k]);
                        for (k = 0; version >= 3 && k < NK__CNT; k++) {
                                e->nwin->hold_from[k] = rd_ts(&r, 0);
                                e->nwin->hold_to[k] = rd_ts(&r, 0);
                                e->held |= (uint8_t)(1u << k); /* maybe */
                        }
                }
                for (k = 0; k < HH__CNT && !r.bad; k++) {
                        hh_t *h;
                        if (!(parts & (2u << k)))
                                continue;
                        if (!(h = gws_hh_new(d->cfg->det_hh_slots))) {
                                r.bad = 1;
                                break;
                        }
                        e->gx->hh[k] = h;
                        bytes_add(d, gws_hh_size(h->nslots));
                        h->total = rd_f32(&r);
                        h->ttotal = rd_f32(&r);
                        h->htotal = rd_f32(&r);
                        h->httotal = rd_f32(&r);
                        h->windows = (int)rd_u32(&r);
                        h->used = (int)rd_u32(&r);
                        if (h->used < 0 || h->used > h->nslots ||
                            h->windows < 0 || h->windows > 1 << 30) {
                                h->used = 0;
                                r.bad = 1;
                                break;
                        }
                        /* Counts of requests and tokens, and their
                         * averages: anything else is corrupt or forged
                         * (a NaN in one key's usual counts stopped the
                         * gateway's heavy_hitter alerts for good). */
                        if (!hh_count_ok(h->total) ||
                            !hh_count_ok(h->ttotal) ||
                            !hh_count_ok(h->htotal) ||
                            !hh_count_ok(h->httotal)) {
                                h->used = 0;
                                r.bad = 1;
                                r.why = "heavy-hitter counts out of range";
                                break;
                        }
                        for (s = 0; s < h->used && !r.bad; s++) {
                                const unsigned char *hk;
                                h->h[s] = rd_uint(&r, 8);
                                (void)rd_f32(&r); /* prio: gws_hh_weigh() */
                                h->cur[s] = f32_count(rd_f32(&r));
                                h->err[s] = f32_count(rd_f32(&r));
                                h->tok[s] = rd_f32(&r);
                                h->terr[s] = rd_f32(&r);
                                h->hist[s] = rd_f32(&r);
                                h->htok[s] = rd_f32(&r);
                                h->klen[s] = (uint8_t)rd_u8(&r);
                                if (h->klen[s] > GWS_HH_KEY) {
                                        r.bad = 1;
                                        break;
                                }
                                if (!hh_count_ok(h->tok[s]) ||
                                    !hh_count_ok(h->terr[s]) ||
                                    !hh_count_ok(h->hist[s]) ||
                                    !hh_count_ok(h->htok[s])) {
                                        r.bad = 1;
                                        r.why = "heavy-hitter counts out "
                                                "of range";
                                        break;
                                }
                                if ((hk = rd_take(&r, h->klen[s])))
                                        memcpy(h->key[s], hk, h->klen[s]);
                        }
                        gws_hh_weigh(h);
                }
                for (k = 0; k < K__CNT && !r.bad; k++)
                        if (amask & (1u << k))
                                load_alert(d, &r, e, (akind_t)k, version);
        }
        if (version == 4 && i == nents && !r.bad)
                load_known(d, &r); /* after the entities in format 4 */
        if (r.bad || (i == nents && r.p != r.end)) {
                snprintf(errstr, errstr_size,
                         "corrupt or truncated at entity %u of %u (byte %zu "
                         "of %zu)%s%s",
                         (unsigned)i, (unsigned)nents,
                         (size_t)(r.p - (const unsigned char *)buf), len,
                         r.why ? ": " : "", r.why ? r.why : "");
                return -1;
        }
        return (int)d->nents;
}
