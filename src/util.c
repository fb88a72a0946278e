/* util.c - buffer, hashing, partitioner, time, UTF-8 and base64 helpers. */
#include "gwsieve/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* ------------------------------------------------------------------------
 * buffer
 * ------------------------------------------------------------------------ */

int gws_buf_reserve(gws_buf_t *b, size_t extra) {
        size_t need = b->len + extra + 1, nsize;
        char *p;
        if (need <= b->size)
                return 0;
        nsize = b->size ? b->size : 256;
        while (nsize < need)
                nsize *= 2;
        if (!(p = realloc(b->buf, nsize)))
                return -1;
        b->buf = p;
        b->size = nsize;
        return 0;
}

int gws_buf_puts(gws_buf_t *b, const char *s) {
        return gws_buf_append(b, s, strlen(s));
}

int gws_buf_printf(gws_buf_t *b, const char *fmt, ...) {
        va_list ap;
        size_t room;
        int n;
        /* Into the room there is first (nearly always enough): one
         * formatting pass instead of a measuring pass and a writing one. */
        if (gws_buf_reserve(b, 63) == -1)
                return -1;
        room = b->size - b->len;
        va_start(ap, fmt);
        n = vsnprintf(b->buf + b->len, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
                b->buf[b->len] = '\0';
                return -1;
        }
        if ((size_t)n >= room) {
                if (gws_buf_reserve(b, (size_t)n) == -1) {
                        b->buf[b->len] = '\0';
                        return -1;
                }
                va_start(ap, fmt);
                vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
                va_end(ap);
        }
        b->len += (size_t)n;
        return 0;
}

/* The bytes at the start of \p s that a JSON string holds as they are
 * (not '"', '\\' or a control byte), 16 at a time: a redacted prompt or a
 * dead letter's payload (1.5 KB of JSON, a '"' every 10 bytes, a '\\'
 * more rarely) is mostly such runs, copied whole. */
static size_t json_plain_run(const unsigned char *s, size_t len) {
        size_t i = 0;
#ifdef __SSE2__
        const __m128i quote = _mm_set1_epi8('"'), bsl = _mm_set1_epi8('\\'),
                      ctl = _mm_set1_epi8(0x1f), z = _mm_setzero_si128();
        for (; i + 16 <= len; i += 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
                __m128i m = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(v, quote),
                                 _mm_cmpeq_epi8(v, bsl)),
                    /* v <= 0x1f, unsigned */
                    _mm_cmpeq_epi8(_mm_subs_epu8(v, ctl), z));
                unsigned bits = (unsigned)_mm_movemask_epi8(m);
                if (bits)
                        return i + (size_t)__builtin_ctz(bits);
        }
#endif
        while (i < len && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')
                i++;
        return i;
}

int gws_buf_json_str(gws_buf_t *b, const char *s, size_t len) {
        static const char hex[] = "0123456789abcdef";
        const unsigned char *u = (const unsigned char *)s;
        size_t i = 0, n;
        char *o;
        /* Worst case: every byte becomes \u00XX (6 bytes), plus quotes. */
        if (gws_buf_reserve(b, len * 6 + 2) == -1)
                return -1;
        o = b->buf + b->len;
        *o++ = '"';
        for (;;) {
                unsigned char c;
                n = json_plain_run(u + i, len - i);
                memcpy(o, u + i, n);
                o += n;
                i += n;
                if (i == len)
                        break;
                c = u[i++];
                *o++ = '\\';
                if (c == '"' || c == '\\') {
                        *o++ = (char)c;
                } else if (c == '\n') {
                        *o++ = 'n';
                } else if (c == '\t') {
                        *o++ = 't';
                } else if (c == '\r') {
                        *o++ = 'r';
                } else {
                        *o++ = 'u';
                        *o++ = '0';
                        *o++ = '0';
                        *o++ = hex[c >> 4];
                        *o++ = hex[c & 15];
                }
        }
        *o++ = '"';
        b->len = (size_t)(o - b->buf);
        b->buf[b->len] = '\0';
        return 0;
}

void gws_buf_free(gws_buf_t *b) {
        free(b->buf);
        b->buf = NULL;
        b->len = b->size = 0;
}

int gws_buf_base64(gws_buf_t *b, const void *p, size_t len) {
        static const char tbl[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const unsigned char *s = p;
        size_t i;
        char *o;
        if (gws_buf_reserve(b, (len + 2) / 3 * 4) == -1)
                return -1;
        o = b->buf + b->len;
        for (i = 0; i + 2 < len; i += 3) {
                *o++ = tbl[s[i] >> 2];
                *o++ = tbl[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
                *o++ = tbl[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
                *o++ = tbl[s[i + 2] & 63];
        }
        if (i < len) {
                *o++ = tbl[s[i] >> 2];
                if (i + 1 < len) {
                        *o++ = tbl[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
                        *o++ = tbl[(s[i + 1] & 15) << 2];
                } else {
                        *o++ = tbl[(s[i] & 3) << 4];
                        *o++ = '=';
                }
                *o++ = '=';
        }
        b->len = (size_t)(o - b->buf);
        b->buf[b->len] = '\0';
        return 0;
}

/* ------------------------------------------------------------------------
 * hashing and partitioning
 * ------------------------------------------------------------------------ */

/* murmur3's 64-bit finalizer. */
static inline uint64_t fmix64(uint64_t h) {
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 33;
        return h;
}

uint64_t gws_hash64(const void *p, size_t len, uint64_t seed) {
        const unsigned char *s = p;
        uint64_t h = 0xcbf29ce484222325ULL ^ seed;
        size_t i;
        /* unrolled: the loop's own increment, compare and branch were
         * half of its ~6 instructions a byte (same result) */
#pragma GCC unroll 4
        for (i = 0; i < len; i++) {
                h ^= s[i];
                h *= 0x100000001b3ULL;
        }
        /* FNV-1a alone mixes the high bits poorly; finish like murmur3. */
        return fmix64(h);
}

uint64_t gws_hash64_fast(const void *p, size_t len, uint64_t seed) {
        const unsigned char *s = p;
        uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL), v;
        while (len >= 8) {
                memcpy(&v, s, 8);
                v *= 0x87c37b91114253d5ULL;
                v = v << 31 | v >> 33;
                h = (h ^ v) * 0x4cf5ad432745937fULL;
                h = h << 27 | h >> 37;
                s += 8;
                len -= 8;
        }
        if (len) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                /* The same v as memcpy(&v, s, len) into v = 0, from two
                 * overlapping loads (the bytes both read are equal): a
                 * copy of a variable 1-7 bytes cost ~30 Ir, a third of
                 * the hash of a ~20-byte key (the detector hashes 5 keys
                 * per event). */
                if (len >= 4) {
                        uint32_t lo, hi;
                        memcpy(&lo, s, 4);
                        memcpy(&hi, s + len - 4, 4);
                        v = lo | (uint64_t)hi << (8 * (len - 4));
                } else {
                        v = s[0] | (uint64_t)s[len / 2] << (8 * (len / 2)) |
                            (uint64_t)s[len - 1] << (8 * (len - 1));
                }
#else
                v = 0;
                memcpy(&v, s, len);
#endif
                v *= 0x87c37b91114253d5ULL;
                v = v << 31 | v >> 33;
                h ^= v;
        }
        return fmix64(h);
}

/* SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input
 * PRF", 2012): 2 rounds per 8-byte block, 4 at the end, 64-bit output.
 * Key and message words are read little-endian byte by byte, so the
 * result is the same on every platform. */
#define SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND(v0, v1, v2, v3)                                           \
        do {                                                                \
                v0 += v1;                                                   \
                v1 = SIP_ROTL(v1, 13);                                      \
                v1 ^= v0;                                                   \
                v0 = SIP_ROTL(v0, 32);                                      \
                v2 += v3;                                                   \
                v3 = SIP_ROTL(v3, 16);                                      \
                v3 ^= v2;                                                   \
                v0 += v3;                                                   \
                v3 = SIP_ROTL(v3, 21);                                      \
                v3 ^= v0;                                                   \
                v2 += v1;                                                   \
                v1 = SIP_ROTL(v1, 17);                                      \
                v1 ^= v2;                                                   \
                v2 = SIP_ROTL(v2, 32);                                      \
        } while (0)

uint64_t gws_siphash24(const uint8_t key[16], const void *p, size_t len) {
        const unsigned char *s = p;
        uint64_t k0 = gws_le_get(key, 8), k1 = gws_le_get(key + 8, 8);
        uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
        uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
        uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
        uint64_t v3 = k1 ^ 0x7465646279746573ULL;
        uint64_t m;
        size_t left = len;

        for (; left >= 8; s += 8, left -= 8) {
                m = gws_le_get(s, 8);
                v3 ^= m;
                SIP_ROUND(v0, v1, v2, v3);
                SIP_ROUND(v0, v1, v2, v3);
                v0 ^= m;
        }
        /* the last 0-7 bytes, and the length mod 256 in the top byte */
        m = gws_le_get(s, left) | (uint64_t)(len & 0xff) << 56;
        v3 ^= m;
        SIP_ROUND(v0, v1, v2, v3);
        SIP_ROUND(v0, v1, v2, v3);
        v0 ^= m;
        v2 ^= 0xff;
        SIP_ROUND(v0, v1, v2, v3);
        SIP_ROUND(v0, v1, v2, v3);
        SIP_ROUND(v0, v1, v2, v3);
        SIP_ROUND(v0, v1, v2, v3);
        return v0 ^ v1 ^ v2 ^ v3;
}

static uint32_t crc_table[256];
static void crc_init(void) {
        uint32_t c, n, k;
        for (n = 0; n < 256; n++) {
                c = n;
                for (k = 0; k < 8; k++)
                        c = c & 1 ? 0xedb88320U ^ (c >> 1) : c >> 1;
                crc_table[n] = c;
        }
}

uint32_t gws_crc32(const void *p, size_t len) {
        static int inited; /* benign race: every thread writes equal values */
        const unsigned char *s = p;
        uint32_t c = 0xffffffffU;
        size_t i;
        if (!__atomic_load_n(&inited, __ATOMIC_ACQUIRE)) {
                crc_init();
                __atomic_store_n(&inited, 1, __ATOMIC_RELEASE);
        }
        for (i = 0; i < len; i++)
                c = crc_table[(c ^ s[i]) & 0xff] ^ (c >> 8);
        return c ^ 0xffffffffU;
}

int32_t gws_partition_for_key(const void *key, size_t keylen,
                              int32_t partition_cnt) {
        return (int32_t)(gws_crc32(key, keylen) % (uint32_t)partition_cnt);
}

/* ------------------------------------------------------------------------
 * time
 * ------------------------------------------------------------------------ */

static int digits(const char *s, size_t n, int *out) {
        int v = 0;
        size_t i;
        for (i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        *out = v;
        return 0;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int y, int m, int d) {
        int64_t era, yoe, doy, doe;
        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

int gws_time_parse(const char *s, size_t len, int64_t *ms) {
        int Y, M, D, h, m, sec, frac = 0, oh = 0, om = 0, sign = 0;
        size_t i = 19, nd = 0;
        int64_t t;
        static const int mdays[] = {31, 29, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31};

        if (len < 20 || s[4] != '-' || s[7] != '-' ||
            (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' ||
            s[16] != ':')
                return -1;
        if (digits(s, 4, &Y) || digits(s + 5, 2, &M) || digits(s + 8, 2, &D) ||
            digits(s + 11, 2, &h) || digits(s + 14, 2, &m) ||
            digits(s + 17, 2, &sec))
                return -1;
        if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 ||
            m > 59 || sec > 60)
                return -1;
        /* February 29 in a common year (Gregorian): days_from_civil()
         * would take it for March 1 */
        if (M == 2 && D == 29 &&
            (Y % 4 != 0 || (Y % 100 == 0 && Y % 400 != 0)))
                return -1;
        if (s[i] == '.') {
                i++;
                while (i < len && s[i] >= '0' && s[i] <= '9') {
                        if (nd < 3)
                                frac = frac * 10 + (s[i] - '0');
                        nd++;
                        i++;
                }
                if (!nd)
                        return -1;
                for (; nd < 3; nd++)
                        frac *= 10;
        }
        if (i >= len)
                return -1;
        if (s[i] == 'Z' || s[i] == 'z') {
                i++;
        } else if (s[i] == '+' || s[i] == '-') {
                sign = s[i] == '-' ? -1 : 1;
                if (i + 6 > len || s[i + 3] != ':' ||
                    digits(s + i + 1, 2, &oh) || digits(s + i + 4, 2, &om) ||
                    oh > 23 || om > 59)
                        return -1;
                i += 6;
        } else {
                return -1;
        }
        if (i != len)
                return -1;
        /* second 60: a leap second, at 23:59 UTC only (RFC 3339 5.7), taken
         * for the next second; any other minute's was the next minute */
        if (sec == 60 &&
            ((h * 60 + m - sign * (oh * 60 + om)) % 1440 + 1440) % 1440 !=
                23 * 60 + 59)
                return -1;
        t = days_from_civil(Y, M, D) * 86400 + h * 3600 + m * 60 + sec;
        t -= sign * (oh * 3600 + om * 60);
        *ms = t * 1000 + frac;
        return 0;
}

char *gws_time_format(int64_t ms, char *buf, size_t size) {
        time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        int frac = (int)(ms - (int64_t)t * 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, frac);
        return buf;
}

int64_t gws_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t gws_mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t gws_mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------
 * UTF-8
 * ------------------------------------------------------------------------ */

size_t gws_utf8_cut(const void *p, size_t len, size_t n) {
        const unsigned char *s = p;
        if (n >= len)
                return len;
        while (n > 0 && (s[n] & 0xc0) == 0x80)
                n--;
        return n;
}

int gws_utf8_valid(const void *p, size_t len) {
        const unsigned char *s = p, *end = s + len;
        while (s < end) {
                unsigned char c = *s;
                if (c < 0x80) {
                        s++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf) {
                        if (end - s < 2 || (s[1] & 0xc0) != 0x80)
                                return 0;
                        s += 2;
                } else if (c >= 0xe0 && c <= 0xef) {
                        if (end - s < 3 || (s[1] & 0xc0) != 0x80 ||
                            (s[2] & 0xc0) != 0x80)
                                return 0;
                        if (c == 0xe0 && s[1] < 0xa0)
                                return 0; /* overlong */
                        if (c == 0xed && s[1] >= 0xa0)
                                return 0; /* surrogate */
                        s += 3;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        if (end - s < 4 || (s[1] & 0xc0) != 0x80 ||
                            (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
                                return 0;
                        if (c == 0xf0 && s[1] < 0x90)
                                return 0; /* overlong */
                        if (c == 0xf4 && s[1] >= 0x90)
                                return 0; /* > U+10FFFF */
                        s += 4;
                } else {
                        return 0;
                }
        }
        return 1;
}
