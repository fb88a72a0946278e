/* state.c - the state-topic record: envelope, checksum, zstd (state.h). */
#include "gwsieve/state.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

/* The fixed part of the envelope: version 1 ends at 40, version 2 adds
 * the delivered offset. The checksum covers both the same way. */
#define HDR_V1 40
#define HDR_FIXED 48
#define MAGIC "GWST"

static const char *const result_names[GWS_STATE__CNT] = {
    "ok",       "missing", "truncated", "not_snapshot", "version",
    "checksum", "foreign", "corrupt",   "incompatible", "unreadable"};

const char *gws_state_result_name(gws_state_result_t r) {
        return r >= 0 && r < GWS_STATE__CNT ? result_names[r] : "unknown";
}

/* One compression and one decompression context per thread. */
static pthread_key_t cctx_key, dctx_key;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

static void free_cctx(void *p) { ZSTD_freeCCtx(p); }
static void free_dctx(void *p) { ZSTD_freeDCtx(p); }
static void keys_init(void) {
        pthread_key_create(&cctx_key, free_cctx);
        pthread_key_create(&dctx_key, free_dctx);
}

static ZSTD_CCtx *cctx_get(void) {
        ZSTD_CCtx *c;
        pthread_once(&keys_once, keys_init);
        if (!(c = pthread_getspecific(cctx_key)) && (c = ZSTD_createCCtx()))
                pthread_setspecific(cctx_key, c);
        return c;
}

static ZSTD_DCtx *dctx_get(void) {
        ZSTD_DCtx *c;
        pthread_once(&keys_once, keys_init);
        if (!(c = pthread_getspecific(dctx_key)) && (c = ZSTD_createDCtx()))
                pthread_setspecific(dctx_key, c);
        return c;
}

static void le_put(unsigned char *p, uint64_t v, int n) {
        int i;
        for (i = 0; i < n; i++)
                p[i] = (unsigned char)(v >> (8 * i));
}


/* Checksum of the record with its checksum field taken as zero. */
static uint64_t record_sum(const unsigned char *rec, size_t len) {
        static const unsigned char zero[8];
        uint64_t h = gws_hash64(rec, 32, 0x6777737461746531ULL);
        h = gws_hash64(zero, 8, h);
        return gws_hash64(rec + HDR_V1, len - HDR_V1, h);
}

size_t gws_state_key(char *out, size_t size, const char *group,
                     const char *topic, int32_t partition) {
        int n = snprintf(out, size, "%s/%s/%d", group, topic, (int)partition);
        return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

int gws_state_encode(gws_buf_t *out, const char *group, const char *topic,
                     int32_t partition, int64_t offset, int64_t delivered,
                     uint32_t entities, const void *raw, size_t raw_len,
                     int level, char *errstr, size_t errstr_size) {
        size_t glen = strlen(group), tlen = strlen(topic), hdr, bound, z;
        ZSTD_CCtx *c = cctx_get();
        unsigned char *p;

        if (!c) {
                snprintf(errstr, errstr_size, "zstd: out of memory");
                return -1;
        }
        if (glen > 65535 || tlen > 65535 || raw_len > UINT32_MAX) {
                snprintf(errstr, errstr_size, "snapshot too large");
                return -1;
        }
        hdr = HDR_FIXED + 2 + glen + 2 + tlen + 4;
        bound = ZSTD_compressBound(raw_len);
        gws_buf_reset(out);
        if (gws_buf_reserve(out, hdr + bound) == -1) {
                snprintf(errstr, errstr_size, "out of memory (%zu bytes)",
                         hdr + bound);
                return -1;
        }
        p = (unsigned char *)out->buf;
        memcpy(p, MAGIC, 4);
        le_put(p + 4, GWS_STATE_VERSION, 2);
        le_put(p + 6, 0, 2);
        le_put(p + 8, (uint64_t)offset, 8);
        le_put(p + 16, (uint64_t)gws_now_ms(), 8);
        le_put(p + 24, raw_len, 4);
        le_put(p + 28, entities, 4);
        le_put(p + 32, 0, 8);
        le_put(p + 40, (uint64_t)(delivered > offset ? offset : delivered), 8);
        le_put(p + HDR_FIXED, glen, 2);
        memcpy(p + HDR_FIXED + 2, group, glen);
        le_put(p + HDR_FIXED + 2 + glen, tlen, 2);
        memcpy(p + HDR_FIXED + 4 + glen, topic, tlen);
        le_put(p + HDR_FIXED + 4 + glen + tlen, (uint32_t)partition, 4);
        ZSTD_CCtx_reset(c, ZSTD_reset_session_only);
        ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
        ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
        z = ZSTD_compress2(c, p + hdr, bound, raw, raw_len);
        if (ZSTD_isError(z)) {
                snprintf(errstr, errstr_size, "zstd: %s",
                         ZSTD_getErrorName(z));
                return -1;
        }
        out->len = hdr + z;
        le_put(p + 32, record_sum(p, out->len), 8);
        return 0;
}

uint32_t gws_state_entities(const void *rec, size_t len) {
        const unsigned char *p = rec;
        return len >= HDR_FIXED ? (uint32_t)gws_le_get(p + 28, 4) : 0;
}

gws_state_result_t gws_state_decode(const void *rec, size_t len,
                                    const char *group, const char *topic,
                                    int32_t partition, size_t max_raw,
                                    gws_buf_t *raw, gws_state_info_t *info,
                                    char *errstr, size_t errstr_size) {
        const unsigned char *p = rec;
        unsigned long long fcs;
        size_t glen, tlen, hdr, z, fixed;
        unsigned version;
        int32_t part;
        ZSTD_DCtx *dc;

        memset(info, 0, sizeof(*info));
        info->record_len = len;
        if (len < 4 || memcmp(p, MAGIC, 4)) {
                snprintf(errstr, errstr_size,
                         "not a gwsieve snapshot (%zu bytes, no \"GWST\" "
                         "magic)", len);
                return len < 4 ? GWS_STATE_TRUNCATED : GWS_STATE_NOT_SNAPSHOT;
        }
        if (len < 6) {
                snprintf(errstr, errstr_size,
                         "truncated: %zu bytes, the header alone is %d",
                         len, HDR_FIXED + 8);
                return GWS_STATE_TRUNCATED;
        }
        version = (unsigned)gws_le_get(p + 4, 2);
        if (version != 1 && version != GWS_STATE_VERSION) {
                snprintf(errstr, errstr_size,
                         "envelope version %u, this build reads 1 to %d",
                         version, GWS_STATE_VERSION);
                return GWS_STATE_VERSION_MISMATCH;
        }
        fixed = version == 1 ? HDR_V1 : HDR_FIXED;
        if (len < fixed + 2) {
                snprintf(errstr, errstr_size,
                         "truncated: %zu bytes, the header alone is %zu",
                         len, fixed + 8);
                return GWS_STATE_TRUNCATED;
        }
        glen = (size_t)gws_le_get(p + fixed, 2);
        if (len < fixed + 2 + glen + 2) {
                snprintf(errstr, errstr_size, "truncated: %zu bytes", len);
                return GWS_STATE_TRUNCATED;
        }
        tlen = (size_t)gws_le_get(p + fixed + 2 + glen, 2);
        hdr = fixed + 2 + glen + 2 + tlen + 4;
        if (len < hdr) {
                snprintf(errstr, errstr_size, "truncated: %zu bytes", len);
                return GWS_STATE_TRUNCATED;
        }
        info->offset = (int64_t)gws_le_get(p + 8, 8);
        info->written_ms = (int64_t)gws_le_get(p + 16, 8);
        info->raw_len = (uint32_t)gws_le_get(p + 24, 4);
        info->entities = (uint32_t)gws_le_get(p + 28, 4);
        info->delivered =
            version == 1 ? -1 : (int64_t)gws_le_get(p + HDR_V1, 8);
        if (gws_le_get(p + 32, 8) != record_sum(p, len)) {
                /* A cut-off record has an incomplete zstd frame; any
                 * other change is a checksum failure. */
                if (ZSTD_isError(ZSTD_findFrameCompressedSize(p + hdr,
                                                              len - hdr))) {
                        snprintf(errstr, errstr_size,
                                 "truncated: the zstd frame is incomplete "
                                 "(%zu bytes)", len);
                        return GWS_STATE_TRUNCATED;
                }
                snprintf(errstr, errstr_size,
                         "checksum mismatch: the record changed after it "
                         "was written (%zu bytes)", len);
                return GWS_STATE_CHECKSUM;
        }
        part = (int32_t)gws_le_get(p + hdr - 4, 4);
        if (glen != strlen(group) || memcmp(p + fixed + 2, group, glen) ||
            tlen != strlen(topic) ||
            memcmp(p + fixed + 4 + glen, topic, tlen) ||
            part != partition) {
                snprintf(errstr, errstr_size,
                         "foreign: written for group \"%.*s\" topic \"%.*s\" "
                         "partition %d, not group \"%s\" topic \"%s\" "
                         "partition %d",
                         (int)(glen > 200 ? 200 : glen),
                         (const char *)p + fixed + 2,
                         (int)(tlen > 200 ? 200 : tlen),
                         (const char *)p + fixed + 4 + glen, (int)part,
                         group, topic, (int)partition);
                return GWS_STATE_FOREIGN;
        }
        /* The sum is no signature: whoever can write to the state topic
         * can forge a record that passes it. Offsets and sizes are
         * checked before anything uses them. */
        if (info->offset < 0) {
                snprintf(errstr, errstr_size,
                         "corrupt: offset %lld is not an input offset",
                         (long long)info->offset);
                return GWS_STATE_CORRUPT;
        }
        if (info->delivered < -1 || info->delivered > info->offset) {
                snprintf(errstr, errstr_size,
                         "corrupt: delivered offset %lld is not between -1 "
                         "and the state's offset %lld",
                         (long long)info->delivered, (long long)info->offset);
                return GWS_STATE_CORRUPT;
        }
        if (max_raw && info->raw_len > max_raw) {
                snprintf(errstr, errstr_size,
                         "corrupt: %u bytes uncompressed, more than the %zu "
                         "a snapshot of this process can hold",
                         (unsigned)info->raw_len, max_raw);
                return GWS_STATE_CORRUPT;
        }
        fcs = ZSTD_getFrameContentSize(p + hdr, len - hdr);
        if (fcs != (unsigned long long)info->raw_len) {
                if (fcs == ZSTD_CONTENTSIZE_ERROR ||
                    fcs == ZSTD_CONTENTSIZE_UNKNOWN)
                        snprintf(errstr, errstr_size,
                                 "corrupt payload: the zstd frame does not "
                                 "say its size (the header says %u bytes)",
                                 (unsigned)info->raw_len);
                else
                        snprintf(errstr, errstr_size,
                                 "corrupt payload: the zstd frame holds %llu "
                                 "bytes, the header says %u",
                                 fcs, (unsigned)info->raw_len);
                return GWS_STATE_CORRUPT;
        }
        if (!(dc = dctx_get())) {
                snprintf(errstr, errstr_size, "zstd: out of memory");
                return GWS_STATE_CORRUPT;
        }
        gws_buf_reset(raw);
        if (gws_buf_reserve(raw, (size_t)info->raw_len + 1) == -1) {
                snprintf(errstr, errstr_size, "out of memory (%u bytes)",
                         (unsigned)info->raw_len);
                return GWS_STATE_CORRUPT;
        }
        z = ZSTD_decompressDCtx(dc, raw->buf, (size_t)info->raw_len + 1,
                                p + hdr, len - hdr);
        if (ZSTD_isError(z) || z != info->raw_len) {
                snprintf(errstr, errstr_size,
                         "corrupt payload: %s (%zu of %u bytes)",
                         ZSTD_isError(z) ? ZSTD_getErrorName(z)
                                         : "wrong length",
                         ZSTD_isError(z) ? (size_t)0 : z,
                         (unsigned)info->raw_len);
                return GWS_STATE_CORRUPT;
        }
        raw->len = z;
        return GWS_STATE_OK;
}
