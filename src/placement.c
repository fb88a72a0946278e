/* placement.c - gateway_id -> the input partition it was first met on.
 *
 * An open-addressing table (linear probing, power-of-two capacity, grown
 * at 3/4 full) under one mutex. It is touched only when a detector creates
 * a gateway entity, so the lock is not on the per-event path: with input
 * keyed by gateway_id, once per gateway and partition in a process's life
 * (and again after an LRU eviction). */
#include "gwsieve/placement.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gwsieve/log.h"
#include "gwsieve/util.h"

/* Gateways named in a WARNING; later ones are only counted. */
#define PLACE_LOG_MAX 3
#define PLACE_LOG_ID_MAX 64 /* bytes of a gateway_id shown in a log line */

typedef struct place_s {
        char *gw; /* NULL: free slot */
        size_t len;
        uint64_t h;
        int32_t home;
        int split;
} place_t;

static pthread_mutex_t place_lock = PTHREAD_MUTEX_INITIALIZER;
static place_t *slots;   /* guarded by place_lock */
static size_t cap, used; /* guarded by place_lock */
static int logged;       /* guarded by place_lock */
static uint64_t n_gateways, n_split, n_untracked; /* atomic */

/* @returns the slot of \p h / \p gw in \p tab (\p tcap slots): its entry or
 * the free slot where it goes. */
static place_t *slot_find(place_t *tab, size_t tcap, uint64_t h,
                          const char *gw, size_t len) {
        size_t i;
        for (i = h & (tcap - 1); tab[i].gw; i = (i + 1) & (tcap - 1))
                if (tab[i].h == h && tab[i].len == len &&
                    !memcmp(tab[i].gw, gw, len))
                        break;
        return &tab[i];
}

/* Doubles the table (64 slots at first). @returns 0 or -1 (ENOMEM). */
static int grow(void) {
        size_t ncap = cap ? cap * 2 : 64, i;
        place_t *tab = calloc(ncap, sizeof(*tab));
        if (!tab)
                return -1;
        for (i = 0; i < cap; i++)
                if (slots[i].gw)
                        *slot_find(tab, ncap, slots[i].h, slots[i].gw,
                                   slots[i].len) = slots[i];
        free(slots);
        slots = tab;
        cap = ncap;
        return 0;
}

gws_place_t gws_placement_note(const char *gw, size_t len,
                               int32_t partition) {
        place_t *s;
        uint64_t h = gws_hash64_fast(gw, len, 0x9e3779b97f4a7c15ull);
        gws_place_t r = GWS_PLACE_HOME;
        int warn = 0, last = 0, full = 0, first_untracked = 0;
        int32_t home = -1;
        size_t nused, shown = len;

        pthread_mutex_lock(&place_lock);
        if (cap && (s = slot_find(slots, cap, h, gw, len))->gw) {
                if (s->home != partition) {
                        r = GWS_PLACE_SPLIT;
                        if (!s->split) {
                                s->split = 1;
                                __atomic_add_fetch(&n_split, 1,
                                                   __ATOMIC_RELAXED);
                                home = s->home;
                                warn = logged < PLACE_LOG_MAX;
                                last = ++logged == PLACE_LOG_MAX;
                        }
                }
        } else if ((full = used >= GWS_PLACEMENT_MAX) ||
                   ((used + 1) * 4 > cap * 3 && grow() == -1) ||
                   !((s = slot_find(slots, cap, h, gw, len))->gw =
                         malloc(len ? len : 1))) {
                r = GWS_PLACE_UNTRACKED;
                /* logged once, whichever comes first */
                first_untracked =
                    !__atomic_fetch_add(&n_untracked, 1, __ATOMIC_RELAXED);
        } else {
                memcpy(s->gw, gw, len);
                s->len = len;
                s->h = h;
                s->home = partition;
                s->split = 0;
                used++;
                __atomic_add_fetch(&n_gateways, 1, __ATOMIC_RELAXED);
        }
        nused = used;
        pthread_mutex_unlock(&place_lock);

        /* at most PLACE_LOG_ID_MAX bytes, not ending inside a UTF-8
         * sequence */
        shown = gws_utf8_cut(gw, shown, PLACE_LOG_ID_MAX);
        if (warn)
                gws_log(GWS_LOG_WARNING, "PLACEMENT",
                        "gateway \"%.*s\" arrives on input partitions %d and "
                        "%d: the input is not keyed by gateway_id (or its "
                        "partition count changed), so each partition's "
                        "detectors see a fragment of the gateway's traffic: "
                        "expect false new_value alerts and thin rate "
                        "baselines. Key the gateways' messages by gateway_id "
                        "(where that cannot be done, detectors.novelty=false "
                        "stops the new_value alerts)%s",
                        (int)shown, gw, (int)home, (int)partition,
                        last ? "; further gateways are only counted "
                               "(gwsieve_gateways_on_several_partitions; "
                               "replay: its summary)"
                             : "");
        if (first_untracked && full)
                gws_log(GWS_LOG_NOTICE, "PLACEMENT",
                        "gateway table full (%d gateways): gateways met from "
                        "now on are not checked for arriving on several "
                        "input partitions",
                        (int)nused);
        else if (first_untracked)
                gws_log(GWS_LOG_NOTICE, "PLACEMENT",
                        "out of memory: gateway \"%.*s\" is not checked for "
                        "arriving on several input partitions (further "
                        "misses are not logged)",
                        (int)shown, gw);
        return r;
}

void gws_placement_stats(gws_placement_stats_t *st) {
        st->gateways = __atomic_load_n(&n_gateways, __ATOMIC_RELAXED);
        st->split = __atomic_load_n(&n_split, __ATOMIC_RELAXED);
        st->untracked = __atomic_load_n(&n_untracked, __ATOMIC_RELAXED);
}

void gws_placement_reset(void) {
        size_t i;
        pthread_mutex_lock(&place_lock);
        for (i = 0; i < cap; i++)
                free(slots[i].gw);
        free(slots);
        slots = NULL;
        cap = used = 0;
        logged = 0;
        __atomic_store_n(&n_gateways, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&n_split, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&n_untracked, 0, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&place_lock);
}
