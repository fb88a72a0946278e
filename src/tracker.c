/* tracker.c - per-partition FIFO of in-flight offsets.
 *
 * Every consumed message takes an entry and gives it back when its outputs
 * are delivered: popped entries are kept on a short free list (under the
 * lock already taken) rather than going back to malloc, which was a calloc
 * and a free per event, the free often from another thread. */
#include "gwsieve/tracker.h"

#include <pthread.h>
#include <stdlib.h>

struct gws_tracker_entry_s {
        gws_tracker_t *t;
        int64_t offset;
        int refs; /* atomic */
        struct gws_tracker_entry_s *next;
};

struct gws_tracker_s {
        pthread_mutex_t lock;
        gws_tracker_entry_t *head, *tail; /* guarded by lock */
        int64_t committable;              /* guarded by lock */
        size_t pending;                   /* guarded by lock */
        gws_tracker_entry_t *spare;       /* guarded by lock */
        size_t nspare;                    /* guarded by lock */
        void *opaque;
};

/* Entries kept for reuse per partition (32 B each). */
#define SPARE_MAX 256

gws_tracker_t *gws_tracker_new(void *opaque) {
        gws_tracker_t *t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->opaque = opaque;
        pthread_mutex_init(&t->lock, NULL);
        t->committable = -1;
        return t;
}

void gws_tracker_destroy(gws_tracker_t *t) {
        gws_tracker_entry_t *e, *next;
        if (!t)
                return;
        for (e = t->head; e; e = next) {
                next = e->next;
                free(e);
        }
        for (e = t->spare; e; e = next) {
                next = e->next;
                free(e);
        }
        pthread_mutex_destroy(&t->lock);
        free(t);
}

/* Appends an entry for \p offset; t->lock held. @returns it or NULL. */
static gws_tracker_entry_t *add_locked(gws_tracker_t *t, int64_t offset) {
        gws_tracker_entry_t *e;
        if ((e = t->spare)) {
                t->spare = e->next;
                t->nspare--;
        } else if (!(e = malloc(sizeof(*e)))) {
                return NULL;
        }
        e->t = t;
        e->offset = offset;
        e->refs = 1;
        e->next = NULL;
        if (t->tail)
                t->tail->next = e;
        else
                t->head = e;
        t->tail = e;
        t->pending++;
        return e;
}

gws_tracker_entry_t *gws_tracker_add(gws_tracker_t *t, int64_t offset) {
        gws_tracker_entry_t *e;
        pthread_mutex_lock(&t->lock);
        e = add_locked(t, offset);
        pthread_mutex_unlock(&t->lock);
        return e;
}

size_t gws_tracker_add_many(gws_tracker_t *t, const int64_t *offsets,
                            size_t n, gws_tracker_entry_t **out) {
        size_t i;
        pthread_mutex_lock(&t->lock);
        for (i = 0; i < n; i++)
                if (!(out[i] = add_locked(t, offsets[i])))
                        break;
        pthread_mutex_unlock(&t->lock);
        return i;
}

void gws_tracker_ref(gws_tracker_entry_t *e) {
        __atomic_add_fetch(&e->refs, 1, __ATOMIC_ACQ_REL);
}

/* Pops every done entry at the head. @returns how many. */
static int pop_done(gws_tracker_t *t) {
        gws_tracker_entry_t *h;
        int popped = 0;
        pthread_mutex_lock(&t->lock);
        while ((h = t->head) &&
               __atomic_load_n(&h->refs, __ATOMIC_ACQUIRE) == 0) {
                t->head = h->next;
                if (!t->head)
                        t->tail = NULL;
                t->committable = h->offset + 1;
                t->pending--;
                if (t->nspare < SPARE_MAX) {
                        h->next = t->spare;
                        t->spare = h;
                        t->nspare++;
                } else {
                        free(h);
                }
                popped++;
        }
        pthread_mutex_unlock(&t->lock);
        return popped;
}

int gws_tracker_release(gws_tracker_entry_t *e) {
        gws_tracker_t *t = e->t;
        if (__atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL))
                return 0;
        /* e may be freed by another thread from here on: only t is used. */
        return pop_done(t);
}

int gws_tracker_release_many(gws_tracker_t *t, gws_tracker_entry_t **es,
                             size_t n) {
        size_t i;
        int zero = 0;
        for (i = 0; i < n; i++) /* es[i] may be freed once it is zero */
                if (!__atomic_sub_fetch(&es[i]->refs, 1, __ATOMIC_ACQ_REL))
                        zero = 1;
        return zero ? pop_done(t) : 0;
}

void *gws_tracker_opaque(const gws_tracker_t *t) {
        return t->opaque;
}

gws_tracker_t *gws_tracker_of(const gws_tracker_entry_t *e) {
        return e->t;
}

int64_t gws_tracker_offset(const gws_tracker_entry_t *e) {
        return e->offset;
}

int64_t gws_tracker_committable(gws_tracker_t *t) {
        int64_t c;
        pthread_mutex_lock(&t->lock);
        c = t->committable;
        pthread_mutex_unlock(&t->lock);
        return c;
}

size_t gws_tracker_pending(gws_tracker_t *t) {
        size_t n;
        pthread_mutex_lock(&t->lock);
        n = t->pending;
        pthread_mutex_unlock(&t->lock);
        return n;
}
