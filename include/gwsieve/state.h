/* state.h - detector snapshots on the wire: the record gwsieve writes to
 * its compacted state topic (state.topic, default gw.state) for every
 * input partition it owns, and reads back when a partition is assigned.
 *
 * A record is an envelope around gws_detect_save()'s bytes:
 *
 *   offset size  field
 *        0    4  magic "GWST"
 *        4    2  envelope version (2; version 1 records are still read)
 *        6    2  flags (0)
 *        8    8  input offset the state corresponds to: the next offset
 *                to process (every offset below it is in the state)
 *       16    8  written at, epoch ms
 *       24    4  raw (uncompressed) length
 *       28    4  entities
 *       32    8  checksum: gws_hash64 of the whole record with these 8
 *                bytes zeroed
 *       40    8  delivered offset (version 2): when the snapshot was
 *                taken, the outputs of every input offset below it had
 *                been acknowledged; -1 if unknown (version 1 has no such
 *                field: the fixed part ends at 40)
 *       48    -  u16 length + consumer group, u16 length + input topic,
 *                u32 input partition, then one zstd frame (with zstd's own
 *                content checksum) holding the raw snapshot
 *
 * The Kafka key is "<group>/<topic>/<partition>" (gws_state_key()), so
 * compaction keeps the latest snapshot of each partition of each group.
 * Decoding checks, in order: length, magic, version, checksum, owner
 * (group/topic/partition: a record copied from another group or
 * partition is "foreign"), zstd frame; each failure has its own result so
 * that metrics and logs name it.
 *
 * zstd contexts are per thread (created on first use, freed at thread
 * exit): workers and the restore thread encode and decode concurrently.
 * Nothing else here keeps state; all functions are thread-safe.
 */
#ifndef GWS_STATE_H
#define GWS_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "gwsieve/util.h"

#define GWS_STATE_VERSION 2

typedef enum {
        GWS_STATE_OK = 0,
        GWS_STATE_MISSING,      /**< no snapshot for the partition */
        GWS_STATE_TRUNCATED,    /**< shorter than its own header says */
        GWS_STATE_NOT_SNAPSHOT, /**< bad magic: not written by gwsieve */
        GWS_STATE_VERSION_MISMATCH, /**< other envelope version */
        GWS_STATE_CHECKSUM,     /**< bytes changed after writing */
        GWS_STATE_FOREIGN,      /**< another group, topic or partition */
        GWS_STATE_CORRUPT,      /**< payload does not decompress */
        GWS_STATE_INCOMPATIBLE, /**< detector format or settings differ */
        GWS_STATE_UNREADABLE,   /**< the state topic could not be read (a
                                 *   restore's read failed or timed out):
                                 *   whether a snapshot exists is unknown */
        GWS_STATE__CNT
} gws_state_result_t;

/** @returns a short name ("ok", "missing", "checksum", ...) for metrics.
 *  @remark the values are not serialized (metrics and logs use the
 *  names): new results go before GWS_STATE__CNT. */
const char *gws_state_result_name(gws_state_result_t r);

/** What a record says about itself. */
typedef struct gws_state_info_s {
        int64_t offset;     /**< next input offset the state covers */
        int64_t delivered;  /**< outputs acknowledged below it; -1 unknown
                             *   (version 1 records) */
        int64_t written_ms; /**< epoch ms */
        uint32_t raw_len;   /**< snapshot bytes before zstd */
        uint32_t entities;
        size_t record_len;  /**< the whole record */
} gws_state_info_t;

/** @brief Writes the record key for (\p group, \p topic, \p partition)
 *  into \p out (NUL-terminated). @returns its length. */
size_t gws_state_key(char *out, size_t size, const char *group,
                     const char *topic, int32_t partition);

/** @brief Builds a record around \p raw (\p entities entities) into
 *  \p out (reset first), compressing with zstd at \p level. \p offset is
 *  the next input offset the state covers, \p delivered the offset below
 *  which every output was acknowledged (at most \p offset; -1 unknown).
 *  @returns 0, or -1 with \p errstr on failure (out of memory, zstd). */
int gws_state_encode(gws_buf_t *out, const char *group, const char *topic,
                     int32_t partition, int64_t offset, int64_t delivered,
                     uint32_t entities, const void *raw, size_t raw_len,
                     int level, char *errstr, size_t errstr_size);

/** @returns the entity count in the header of \p rec, a record this
 *  build's gws_state_encode() wrote (not checked: for a writer's own
 *  records, e.g. its logs), or 0 if \p len is too short for a header. */
uint32_t gws_state_entities(const void *rec, size_t len);

/** @brief Checks and decompresses the record \p rec for the expected
 *  owner; on success the raw snapshot is in \p raw (reset first). A
 *  record whose offsets are out of range (offset < 0, delivered outside
 *  -1..offset), whose zstd frame does not hold the size its header says,
 *  or whose size is above \p max_raw (0: no bound) is CORRUPT, refused
 *  before any room is reserved for it.
 *  @returns GWS_STATE_OK or the reason, with \p errstr saying it in a
 *           sentence (naming the owner found for FOREIGN). */
gws_state_result_t gws_state_decode(const void *rec, size_t len,
                                    const char *group, const char *topic,
                                    int32_t partition, size_t max_raw,
                                    gws_buf_t *raw, gws_state_info_t *info,
                                    char *errstr, size_t errstr_size);

#endif /* GWS_STATE_H */
