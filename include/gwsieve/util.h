/* util.h - small shared helpers: growable buffer, hashing, the Kafka
 * partitioner, event-time parsing and formatting, UTF-8 checks, base64.
 *
 * All functions are reentrant; none keeps state between calls. */
#ifndef GWS_UTIL_H
#define GWS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/** @returns the unsigned little-endian integer of the \p n bytes (at
 *  most 8) at \p p: the byte order of snapshots, state records and
 *  SipHash's words. */
static inline uint64_t gws_le_get(const void *p, size_t n) {
        const unsigned char *b = p;
        uint64_t v = 0;
        size_t i;
        for (i = 0; i < n; i++)
                v |= (uint64_t)b[i] << (8 * i);
        return v;
}

/** A growable byte buffer. Owns \p buf; gws_buf_free() releases it. */
typedef struct gws_buf_s {
        char *buf;   /**< bytes, always NUL-terminated when size > 0 */
        size_t len;  /**< bytes used, excluding the NUL */
        size_t size; /**< bytes allocated */
} gws_buf_t;

/** @brief Ensures room for \p extra more bytes (+NUL).
 *  @returns 0 or -1 on allocation failure (buffer unchanged). */
int gws_buf_reserve(gws_buf_t *b, size_t extra);
/** @brief Appends \p len bytes. @returns 0 or -1 (buffer unchanged). */
static inline int gws_buf_append(gws_buf_t *b, const void *p, size_t len) {
        /* inline: the record writer appends many short pieces (",", ":",
         * keys), where a call and a generic memcpy cost more than the
         * copy */
        if (b->len + len + 1 > b->size && gws_buf_reserve(b, len) == -1)
                return -1;
        memcpy(b->buf + b->len, p, len);
        b->len += len;
        b->buf[b->len] = '\0';
        return 0;
}
/** @brief Appends a string. @returns 0 or -1. */
int gws_buf_puts(gws_buf_t *b, const char *s);
/** @brief Appends printf output. @returns 0 or -1. */
int gws_buf_printf(gws_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** @brief Appends \p len bytes as a JSON string literal (quotes included);
 *  the bytes must be valid UTF-8. @returns 0 or -1. */
int gws_buf_json_str(gws_buf_t *b, const char *s, size_t len);
/** @brief Empties the buffer, keeping its memory. */
static inline void gws_buf_reset(gws_buf_t *b) {
        b->len = 0;
        if (b->buf)
                b->buf[0] = '\0';
}
/** @brief Frees the memory. */
void gws_buf_free(gws_buf_t *b);

/** @brief 64-bit hash of \p len bytes (FNV-1a then a murmur3 finalizer:
 *  stable across platforms and releases; used for sampling and ids). */
uint64_t gws_hash64(const void *p, size_t len, uint64_t seed);

/** @brief Fast 64-bit hash for in-memory tables: eight bytes per step
 *  (gws_hash64 takes one multiply per byte). Not stable across
 *  platforms (native byte order) or releases: never persist it. */
uint64_t gws_hash64_fast(const void *p, size_t len, uint64_t seed);

/** @brief SipHash-2-4 of \p len bytes under the 128-bit \p key (the
 *  reference algorithm: key and message words little-endian; the paper's
 *  test vectors). A keyed PRF: without the key, no one can compute its
 *  output for a guessed input (as anyone can gws_hash64's). Stable
 *  across platforms and releases. */
uint64_t gws_siphash24(const uint8_t key[16], const void *p, size_t len);

/** @brief CRC-32 (IEEE, as zlib and librdkafka's rd_crc32). */
uint32_t gws_crc32(const void *p, size_t len);

/** @brief The partition librdkafka's default ("consistent_random")
 *  partitioner picks for a keyed message: crc32(key) % \p partition_cnt. */
int32_t gws_partition_for_key(const void *key, size_t keylen,
                              int32_t partition_cnt);

/** @brief Parses RFC 3339 ("2026-01-02T03:04:05.678Z", "+02:00" offsets,
 *  'T' or ' ', any fraction digits).
 *  @returns 0 and sets \p *ms (epoch milliseconds), or -1. */
int gws_time_parse(const char *s, size_t len, int64_t *ms);

/** @brief Formats epoch ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into \p buf
 *  (at least 25 bytes). @returns \p buf. */
char *gws_time_format(int64_t ms, char *buf, size_t size);

/** @returns wall-clock epoch milliseconds. */
int64_t gws_now_ms(void);
/** @returns monotonic milliseconds. */
int64_t gws_mono_ms(void);
/** @returns CLOCK_MONOTONIC in nanoseconds. */
uint64_t gws_mono_ns(void);

/** @returns 1 if \p len bytes are valid UTF-8 (no overlongs, no
 *  surrogates, <= U+10FFFF), else 0. */
int gws_utf8_valid(const void *p, size_t len);

/** @returns where to cut the \p len bytes at \p p to keep at most \p n
 *  of them without ending inside a UTF-8 sequence: \p n, or less when
 *  p[n] continues a sequence (\p len when \p n >= \p len). */
size_t gws_utf8_cut(const void *p, size_t len, size_t n);

/** @brief Appends base64 of \p len bytes. @returns 0 or -1. */
int gws_buf_base64(gws_buf_t *b, const void *p, size_t len);

#endif /* GWS_UTIL_H */
