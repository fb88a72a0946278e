/* tracker.h - which offsets of one partition are done (at-least-once).
 *
 * Every consumed message gets an entry, appended in offset order. An entry
 * holds references: one while it is processed and one per output record
 * awaiting its delivery report. When the oldest entries reach zero they
 * are popped and the committable offset becomes the last popped offset + 1:
 * only the highest contiguous done offset is ever committed, whatever order
 * deliveries complete in.
 *
 * @locality any thread: entries are added by the partition's worker and
 * released by the worker and the delivery thread; the tracker's mutex
 * guards the FIFO and the committable offset, references are atomic.
 */
#ifndef GWS_TRACKER_H
#define GWS_TRACKER_H

#include <stddef.h>
#include <stdint.h>

typedef struct gws_tracker_s gws_tracker_t;
typedef struct gws_tracker_entry_s gws_tracker_entry_t;

/** @brief New empty tracker (committable -1); \p opaque is the caller's
 *  (e.g. its partition), see gws_tracker_opaque(). @returns NULL on ENOMEM. */
gws_tracker_t *gws_tracker_new(void *opaque);

/** @returns the opaque given to gws_tracker_new(). */
void *gws_tracker_opaque(const gws_tracker_t *t);

/** @brief Frees the tracker and any entries still in it (their offsets
 *  are simply forgotten). NULL is a no-op. */
void gws_tracker_destroy(gws_tracker_t *t);

/** @brief Appends an entry for \p offset (must be greater than the
 *  previous one) holding one reference.
 *  @returns the entry (owned by the tracker), or NULL on ENOMEM. */
gws_tracker_entry_t *gws_tracker_add(gws_tracker_t *t, int64_t offset);

/** @brief gws_tracker_add() for \p n offsets in one lock round (the
 *  offsets increasing, above the previous ones); the entries go to
 *  \p out[0..n).
 *  @returns the number added: fewer than \p n only on ENOMEM. */
size_t gws_tracker_add_many(gws_tracker_t *t, const int64_t *offsets,
                            size_t n, gws_tracker_entry_t **out);

/** @brief Adds a reference (one more output awaiting delivery). */
void gws_tracker_ref(gws_tracker_entry_t *e);

/** @brief Drops a reference; at zero, pops every done entry at the head.
 *  \p e must not be used afterwards.
 *  @returns the number of entries popped (0 if none). */
int gws_tracker_release(gws_tracker_entry_t *e);

/** @brief gws_tracker_release() of \p n entries of \p t, popping in one
 *  lock round. The entries must not be used afterwards.
 *  @returns the number of entries popped. */
int gws_tracker_release_many(gws_tracker_t *t, gws_tracker_entry_t **es,
                             size_t n);

/** @returns the tracker of \p e. */
gws_tracker_t *gws_tracker_of(const gws_tracker_entry_t *e);

/** @returns the offset of \p e. */
int64_t gws_tracker_offset(const gws_tracker_entry_t *e);

/** @returns the offset to commit (last contiguous done + 1), or -1. */
int64_t gws_tracker_committable(gws_tracker_t *t);

/** @returns the number of entries not yet popped. */
size_t gws_tracker_pending(gws_tracker_t *t);

#endif /* GWS_TRACKER_H */
