/* json.c - single-pass JSON tokenizer (RFC 8259) into a token tape.
 *
 * The scan is iterative (an explicit stack, never recursion, so depth is
 * bounded by the limit and not by the C stack). String contents are
 * skipped by a bit mask of their special bytes (quote, backslash, control,
 * non-ASCII) over 64-byte blocks, built with SSE2 where there is SSE2
 * (SWAR otherwise) and shared by the strings of a block. Non-ASCII bytes
 * are validated as UTF-8 in place; \u escapes are validated (surrogates
 * must pair).
 */
#include "gwsieve/json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* ------------------------------------------------------------------------
 * private helpers
 * ------------------------------------------------------------------------ */

#ifndef __SSE2__
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Non-zero if any byte of \p v is '"', '\\', < 0x20 or >= 0x80
 * (bit hacks "hasless" and "haszero": exact for the any-byte test). */
static inline uint64_t swar_special(uint64_t v) {
        uint64_t q = v ^ (ONES * 0x22), b = v ^ (ONES * 0x5c);
        return (((v - ONES * 0x20) & ~v) | ((q - ONES) & ~q) |
                ((b - ONES) & ~b) | v) &
               HIGHS;
}
#endif

static inline int is_ws(unsigned char c) {
        return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static inline int hexval(unsigned char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c |= 0x20;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

static int hex4(const unsigned char *p, unsigned *out) {
        int i, h;
        unsigned v = 0;
        for (i = 0; i < 4; i++) {
                if ((h = hexval(p[i])) < 0)
                        return -1;
                v = v << 4 | (unsigned)h;
        }
        *out = v;
        return 0;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end) {
        unsigned char c = *p;
        if (c >= 0xc2 && c <= 0xdf) {
                if (end - p < 2 || (p[1] & 0xc0) != 0x80)
                        return 0;
                return 2;
        }
        if (c >= 0xe0 && c <= 0xef) {
                if (end - p < 3 || (p[1] & 0xc0) != 0x80 ||
                    (p[2] & 0xc0) != 0x80)
                        return 0;
                if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))
                        return 0;
                return 3;
        }
        if (c >= 0xf0 && c <= 0xf4) {
                if (end - p < 4 || (p[1] & 0xc0) != 0x80 ||
                    (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
                        return 0;
                if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))
                        return 0;
                return 4;
        }
        return 0;
}

/* Where the next special byte of a string is. The special bytes ('"',
 * '\\', < 0x20, >= 0x80) of 64 bytes from offset \p off are kept as a bit
 * mask (bit i = byte off + i). An event's strings are short (keys, ids,
 * models: ~25 bytes on average), so one block serves the next few
 * strings, and each costs a shift and a bit scan rather than a vector
 * loop with a mispredicted exit (the tokenizer took 1.25 us per 1.7 KB
 * event in a hot loop, two thirds of it in the string scan). Bytes past
 * the end of the buffer count as special; the scan checks the end first.
 * off starts at (size_t)-64, so the first use loads a block. */
typedef struct {
        size_t off;
        uint64_t m;
} blk_t;

static uint64_t blk_mask64(const unsigned char *p) {
#ifdef __SSE2__
        const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\'),
                      c = _mm_set1_epi8(0x20);
        uint64_t m = 0;
        int k;
        for (k = 0; k < 4; k++) {
                __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * k));
                /* signed < 0x20: control bytes and non-ASCII (negative) */
                m |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_or_si128(
                         _mm_or_si128(_mm_cmpeq_epi8(v, q),
                                      _mm_cmpeq_epi8(v, b)),
                         _mm_cmplt_epi8(v, c)))
                     << (16 * k);
        }
        return m;
#else
        uint64_t m = 0, v;
        int k;
        for (k = 0; k < 8; k++) {
                memcpy(&v, p + 8 * k, 8);
                if (swar_special(v)) {
                        int j;
                        for (j = 0; j < 8; j++) {
                                unsigned char c = p[8 * k + j];
                                if (c == '"' || c == '\\' || c < 0x20 ||
                                    c >= 0x80)
                                        m |= 1ULL << (8 * k + j);
                        }
                }
        }
        return m;
#endif
}

/* The mask of the 64 bytes from \p off (fewer at the end of the buffer:
 * the missing bytes count as special). Returns the mask rather than
 * filling a struct, so the block's offset and mask stay in the caller's
 * registers: a struct whose address escapes is reloaded after every byte
 * store of a token (char stores alias everything). */
static uint64_t __attribute__((noinline))
blk_load(const unsigned char *s, size_t off, size_t len) {
        unsigned char tail[64];
        if (len - off >= 64)
                return blk_mask64(s + off);
        memset(tail, 0, sizeof(tail)); /* 0 is a control byte: special */
        memcpy(tail, s + off, len - off);
        return blk_mask64(tail);
}

/* scan_string() from the first special byte at \p p on: escapes,
 * non-ASCII, errors (out of line: most strings end at their first special
 * byte, their closing quote). */
static gws_jerr_t __attribute__((noinline))
scan_string_rest(gws_jdoc_t *doc, blk_t bk, size_t *pos,
                 const unsigned char *p, uint8_t *flags, uint32_t max_string) {
        const unsigned char *s = (const unsigned char *)doc->buf;
        const unsigned char *end = s + doc->len;
        uint64_t m;
        size_t n, off;

        for (;;) {
                if (p >= end)
                        goto unterminated;
                off = (size_t)(p - s);
                if (off - bk.off >= 64) { /* also when off < bk.off */
                        bk.off = off;
                        bk.m = blk_load(s, off, doc->len);
                }
                if (!(m = bk.m >> (off - bk.off))) {
                        p = s + bk.off + 64; /* none left in the block */
                        continue;
                }
                p += __builtin_ctzll(m);
                if (p >= end)
                        goto unterminated;
                if (*p == '"')
                        break;
                if (*p == '\\') {
                        *flags |= GWS_JF_ESC;
                        if (end - p < 2)
                                goto unterminated;
                        switch (p[1]) {
                        case '"': case '\\': case '/': case 'b':
                        case 'f': case 'n': case 'r': case 't':
                                p += 2;
                                continue;
                        case 'u': {
                                unsigned cp, lo;
                                if (end - p < 6 || hex4(p + 2, &cp)) {
                                        doc->err_what = "bad \\u escape";
                                        doc->err_off = (size_t)(p - s);
                                        return GWS_JE_SYNTAX;
                                }
                                p += 6;
                                if (cp >= 0xdc00 && cp <= 0xdfff) {
                                        doc->err_what = "lone low surrogate";
                                        doc->err_off = (size_t)(p - s - 6);
                                        return GWS_JE_UTF8;
                                }
                                if (cp >= 0xd800 && cp <= 0xdbff) {
                                        if (end - p < 6 || p[0] != '\\' ||
                                            p[1] != 'u' || hex4(p + 2, &lo) ||
                                            lo < 0xdc00 || lo > 0xdfff) {
                                                doc->err_what =
                                                    "unpaired high surrogate";
                                                doc->err_off =
                                                    (size_t)(p - s - 6);
                                                return GWS_JE_UTF8;
                                        }
                                        p += 6;
                                }
                                continue;
                        }
                        default:
                                doc->err_what = "bad escape";
                                doc->err_off = (size_t)(p - s);
                                return GWS_JE_SYNTAX;
                        }
                }
                if (*p < 0x20) {
                        doc->err_what = "control character in string";
                        doc->err_off = (size_t)(p - s);
                        return GWS_JE_SYNTAX;
                }
                if (*p >= 0x80) {
                        if (!(n = utf8_seq(p, end))) {
                                doc->err_what = "invalid UTF-8";
                                doc->err_off = (size_t)(p - s);
                                return GWS_JE_UTF8;
                        }
                        p += n;
                        continue;
                }
                p++;
        }
        n = (size_t)(p + 1 - (s + *pos));
        if (max_string && n - 2 > max_string) {
                doc->err_what = "string longer than the limit";
                doc->err_off = *pos;
                return GWS_JE_STRING;
        }
        *pos = (size_t)(p + 1 - s);
        return GWS_JE_OK;
unterminated:
        doc->err_what = "unterminated string";
        doc->err_off = *pos;
        return GWS_JE_SYNTAX;
}

/* Where the string whose contents start at \p off ends, when the cached
 * block (*bo, *bm) does not show it: loads the blocks from \p off on
 * until one has a special byte, and leaves the last one in *bo / *bm.
 * @returns the special byte's offset, or \p len if the buffer ends
 * first (bytes past the end count as special: the caller checks). Out
 * of line: most strings end in the block their opening quote is in. */
static size_t __attribute__((noinline))
str_end_far(const unsigned char *s, size_t off, size_t len, size_t *bo,
            uint64_t *bm) {
        uint64_t m;
        for (;; off += 64) {
                if (off >= len)
                        return len;
                *bo = off;
                if ((m = *bm = blk_load(s, off, len)))
                        return off + (size_t)__builtin_ctzll(m);
        }
}

/* The end of the run of digits at \p i: eight bytes at a time while
 * eight are left (a byte is a digit iff its distance from '0' is below
 * 10, tested in each byte without carries into the next), then one by
 * one. */
static inline size_t digits_end(const unsigned char *s, size_t i,
                                size_t len) {
        while (len - i >= 8) {
                uint64_t v, x, nd;
                memcpy(&v, s + i, 8);
                x = v ^ 0x3030303030303030ULL; /* a digit's value, 0..9 */
                /* bit 7 of each byte: x >= 10 (x >= 0x80, or its low
                 * seven bits + 0x76 reach 0x80) */
                nd = (((x & 0x7f7f7f7f7f7f7f7fULL) + 0x7676767676767676ULL) |
                      x) &
                     0x8080808080808080ULL;
                if (nd) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                        return i + (size_t)__builtin_ctzll(nd) / 8;
#else
                        return i + (size_t)__builtin_clzll(nd) / 8;
#endif
                }
                i += 8;
        }
        while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
        return i;
}

static gws_jerr_t scan_number(gws_jdoc_t *doc, size_t *pos) {
        const unsigned char *s = (const unsigned char *)doc->buf;
        size_t i = *pos, len = doc->len, d;
        if (i < len && s[i] == '-')
                i++;
        if (i >= len)
                goto bad;
        if (s[i] == '0') {
                i++;
        } else if (s[i] >= '1' && s[i] <= '9') {
                i = digits_end(s, i + 1, len);
        } else {
                goto bad;
        }
        if (i < len && s[i] == '.') {
                d = ++i;
                i = digits_end(s, i, len);
                if (i == d)
                        goto bad;
        }
        if (i < len && (s[i] | 0x20) == 'e') {
                i++;
                if (i < len && (s[i] == '+' || s[i] == '-'))
                        i++;
                d = i;
                i = digits_end(s, i, len);
                if (i == d)
                        goto bad;
        }
        *pos = i;
        return GWS_JE_OK;
bad:
        doc->err_what = "bad number";
        doc->err_off = *pos;
        return GWS_JE_SYNTAX;
}

/* ------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------ */

/* The parse is a set of labels, one per place in the grammar (a value, a
 * member name, after a value, the first item of an object or array),
 * rather than one loop over a state variable: each place's branches are
 * its own, so they predict on the shape of the events, and the tape, its
 * length, the block cache and the kind of the innermost container stay
 * in registers. Whitespace is looked for only where a byte <= ' ' is
 * (compact JSON has none), and a string's end is one shift and one bit
 * scan of the cached block. Every error keeps the offset and the
 * description of the first version of this loop: tests/test_json.c
 * compares the two on every input it makes (matches_reference, against
 * tests/ref/json_ref.c). */
#define SKIP_WS()                                                              \
        while (i < len && is_ws(us[i]))                                        \
                i++

/* c = the byte at i after any whitespace; \p at_end runs at the end of
 * the buffer. */
#define NEXT_C(at_end)                                                         \
        do {                                                                   \
                if (i >= len)                                                  \
                        at_end;                                                \
                c = us[i];                                                     \
                if (__builtin_expect(c <= ' ', 0)) {                           \
                        SKIP_WS();                                             \
                        if (i >= len)                                          \
                                at_end;                                        \
                        c = us[i];                                             \
                }                                                              \
        } while (0)

/* Appends a token at \p i (type and length set by the caller). */
#define TOK_PUSH(t)                                                            \
        do {                                                                   \
                if (ntoks == room) {                                           \
                        if (!(room = tok_grow(doc, ntoks, max_tokens, &err)))  \
                                goto fail;                                     \
                        toks = doc->toks;                                      \
                }                                                              \
                (t) = &toks[ntoks];                                            \
                (t)->start = (uint32_t)i;                                      \
                (t)->flags = 0;                                                \
                (t)->depth = (uint16_t)depth;                                  \
                (t)->next = ++ntoks;                                           \
        } while (0)

/* Scans the string whose opening quote is at i into token t: i ends
 * after its closing quote. The common case (the closing quote is the
 * string's first special byte, the length within the limit) inline;
 * escapes, non-ASCII bytes and every error in scan_string_rest(), which
 * gets a copy of the block cache (its blocks are not written back: a
 * stale block is reloaded on its next use). */
#define SCAN_STR(t)                                                            \
        do {                                                                   \
                size_t o_ = i + 1, r_ = o_ - bo, e_;                           \
                uint64_t m_;                                                   \
                if (r_ < 64 && (m_ = bm >> r_))                                \
                        e_ = o_ + (size_t)__builtin_ctzll(m_);                 \
                else                                                           \
                        e_ = str_end_far(us, o_, len, &bo, &bm);               \
                if (__builtin_expect(e_ < len && us[e_] == '"' &&              \
                                         e_ - o_ <= smax,                      \
                                     1)) {                                     \
                        i = e_ + 1;                                            \
                } else {                                                       \
                        blk_t bk_ = {bo, bm};                                  \
                        if ((err = scan_string_rest(doc, bk_, &i, us + e_,     \
                                                    &(t)->flags,               \
                                                    max_string)))              \
                                goto out;                                      \
                }                                                              \
        } while (0)

/* Room for more tokens: \p ntoks are in use. @returns the new number of
 * usable slots (capped by \p max_tokens), or 0 with *err set. */
static uint32_t tok_grow(gws_jdoc_t *doc, uint32_t ntoks, uint32_t max_tokens,
                         gws_jerr_t *err) {
        uint32_t ncap;
        gws_jtok_t *n;
        if (ntoks >= max_tokens) {
                *err = GWS_JE_TOKENS;
                return 0;
        }
        if (ntoks < doc->cap) /* a recycled document: capped by the limit */
                return doc->cap < max_tokens ? doc->cap : max_tokens;
        ncap = doc->cap ? doc->cap * 2 : 256;
        if (ncap > max_tokens)
                ncap = max_tokens;
        if (!(n = realloc(doc->toks, ncap * sizeof(*n)))) {
                *err = GWS_JE_NOMEM;
                return 0;
        }
        doc->toks = n;
        doc->cap = ncap;
        return ncap;
}

gws_jerr_t gws_json_parse(gws_jdoc_t *doc, const char *buf, size_t len,
                          const gws_json_limits_t *lim) {
        uint32_t max_depth = lim && lim->max_depth ? lim->max_depth : 64;
        uint32_t max_tokens =
            lim && lim->max_tokens ? lim->max_tokens : 1u << 20;
        uint32_t max_string = lim ? lim->max_string : 0;
        size_t smax = max_string ? max_string : (size_t)-1;
        uint32_t depth = 0, idx, ntoks = 0, room, *stack;
        size_t i = 0, bo = (size_t)-64; /* the block cache: blk_t */
        uint64_t bm = 0;
        int in_obj = 0; /* the innermost container is an object */
        gws_jerr_t err = GWS_JE_OK;
        gws_jtok_t *toks = doc->toks, *t;
        const unsigned char *us = (const unsigned char *)buf;
        unsigned char c;

        doc->buf = buf;
        doc->len = len;
        doc->ntoks = 0;
        doc->err_off = 0;
        doc->err_what = NULL;
        if (len > UINT32_MAX) {
                doc->err_what = "document too large";
                return GWS_JE_STRING;
        }
        if (doc->stack_cap < max_depth + 1) {
                uint32_t *st = realloc(doc->stack,
                                       (max_depth + 1) * sizeof(*st));
                if (!st)
                        return GWS_JE_NOMEM;
                doc->stack = st;
                doc->stack_cap = max_depth + 1;
        }
        stack = doc->stack;
        /* Checked on every token: a recycled document may have spare
         * capacity beyond this parse's limit. */
        room = doc->cap < max_tokens ? doc->cap : max_tokens;

value: /* a value must follow */
        NEXT_C(goto eof);
value_c:
        TOK_PUSH(t);
        switch (c) {
        case '"':
                t->type = GWS_JT_STR;
                SCAN_STR(t);
                break;
        case '{':
        case '[':
                if (depth >= max_depth) {
                        doc->err_what = "nesting too deep";
                        doc->err_off = i;
                        err = GWS_JE_DEPTH;
                        goto out;
                }
                t->type = c == '{' ? GWS_JT_OBJ : GWS_JT_ARR;
                stack[depth++] = ntoks - 1;
                i++;
                if (c == '{') {
                        in_obj = 1;
                        NEXT_C(goto eof);
                        if (c == '}')
                                goto close;
                        goto key_c;
                }
                in_obj = 0;
                NEXT_C(goto eof);
                if (c == ']')
                        goto close;
                goto value_c;
        case '-': case '0': case '1': case '2': case '3': case '4':
        case '5': case '6': case '7': case '8': case '9':
                t->type = GWS_JT_NUM;
                if ((err = scan_number(doc, &i)))
                        goto out;
                break;
        case 't':
                if (len - i < 4 || memcmp(buf + i, "true", 4))
                        goto bad_char;
                t->type = GWS_JT_TRUE;
                i += 4;
                break;
        case 'f':
                if (len - i < 5 || memcmp(buf + i, "false", 5))
                        goto bad_char;
                t->type = GWS_JT_FALSE;
                i += 5;
                break;
        case 'n':
                if (len - i < 4 || memcmp(buf + i, "null", 4))
                        goto bad_char;
                t->type = GWS_JT_NULL;
                i += 4;
                break;
        default:
                goto bad_char;
        }
        t->len = (uint32_t)(i - t->start);

after: /* a value ended: ',' or the end of its container */
        NEXT_C(goto at_end);
        if (__builtin_expect(!depth, 0)) {
                doc->err_what = "trailing characters";
                goto syntax;
        }
        if (c == ',') {
                i++;
                if (!in_obj)
                        goto value;
                NEXT_C(goto eof);
                goto key_c;
        }
        if (c == (in_obj ? '}' : ']'))
                goto close;
        doc->err_what = "expected ',' or a closing bracket";
        goto syntax;

key_c: /* a member name at i (c) */
        if (c != '"') {
                doc->err_what = "expected a member name";
                goto syntax;
        }
        TOK_PUSH(t);
        t->type = GWS_JT_STR;
        t->flags = GWS_JF_KEY;
        SCAN_STR(t);
        t->len = (uint32_t)(i - t->start);
        if (__builtin_expect(i >= len || us[i] != ':', 0)) {
                SKIP_WS();
                if (i >= len || us[i] != ':') {
                        doc->err_what = "expected ':'";
                        goto syntax;
                }
        }
        i++;
        goto value;

close: /* the bracket at i closes the innermost container */
        idx = stack[--depth];
        toks[idx].len = (uint32_t)(i + 1 - toks[idx].start);
        toks[idx].next = ntoks;
        i++;
        in_obj = depth && toks[stack[depth - 1]].type == GWS_JT_OBJ;
        goto after;

at_end:
        if (!depth)
                goto out; /* the whole document */
eof:
        doc->err_what = "unexpected end of input";
        goto syntax;
bad_char:
        if (c >= 0x80 && !utf8_seq(us + i, us + len)) {
                doc->err_what = "invalid UTF-8";
                doc->err_off = i;
                err = GWS_JE_UTF8;
                goto out;
        }
        doc->err_what = "unexpected character";
syntax:
        doc->err_off = i;
        err = GWS_JE_SYNTAX;
        goto out;
fail:
        doc->err_what = err == GWS_JE_TOKENS ? "too many values"
                                              : "out of memory";
        doc->err_off = i;
out:
        doc->ntoks = ntoks;
        return err;
}

#undef SKIP_WS
#undef NEXT_C
#undef TOK_PUSH
#undef SCAN_STR

void gws_json_free(gws_jdoc_t *doc) {
        free(doc->toks);
        free(doc->stack);
        doc->toks = NULL;
        doc->stack = NULL;
        doc->cap = doc->ntoks = doc->stack_cap = 0;
}

static size_t utf8_put(char *o, unsigned cp) {
        if (cp < 0x80) {
                o[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                o[0] = (char)(0xc0 | cp >> 6);
                o[1] = (char)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                o[0] = (char)(0xe0 | cp >> 12);
                o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
                o[2] = (char)(0x80 | (cp & 0x3f));
                return 3;
        }
        o[0] = (char)(0xf0 | cp >> 18);
        o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[3] = (char)(0x80 | (cp & 0x3f));
        return 4;
}

size_t gws_json_str_decode(const gws_jdoc_t *doc, const gws_jtok_t *tok,
                           char *out) {
        const unsigned char *p =
            (const unsigned char *)doc->buf + tok->start + 1;
        const unsigned char *end = p + tok->len - 2;
        char *o = out;
        unsigned cp = 0, lo = 0xdc00; /* set by hex4(): validated input */

        if (!(tok->flags & GWS_JF_ESC)) {
                memcpy(out, p, tok->len - 2);
                return tok->len - 2;
        }
        while (p < end) {
                const unsigned char *bs = memchr(p, '\\', (size_t)(end - p));
                if (!bs) {
                        memcpy(o, p, (size_t)(end - p));
                        o += end - p;
                        break;
                }
                memcpy(o, p, (size_t)(bs - p));
                o += bs - p;
                p = bs + 1;
                switch (*p++) {
                case 'b': *o++ = '\b'; break;
                case 'f': *o++ = '\f'; break;
                case 'n': *o++ = '\n'; break;
                case 'r': *o++ = '\r'; break;
                case 't': *o++ = '\t'; break;
                case 'u':
                        hex4(p, &cp);
                        p += 4;
                        if (cp >= 0xd800 && cp <= 0xdbff) {
                                hex4(p + 2, &lo);
                                p += 6;
                                cp = 0x10000 + ((cp - 0xd800) << 10) +
                                     (lo - 0xdc00);
                        }
                        o += utf8_put(o, cp);
                        break;
                default: /* " \ / */
                        *o++ = (char)p[-1];
                        break;
                }
        }
        return (size_t)(o - out);
}

uint32_t gws_json_obj_get(const gws_jdoc_t *doc, uint32_t obj,
                          const char *name, size_t namelen) {
        const gws_jtok_t *o = &doc->toks[obj];
        uint32_t k = obj + 1, found = 0;
        char tmp[256];

        if (o->type != GWS_JT_OBJ)
                return 0;
        /* A name given twice: the last, as the event view reads it (and
         * most JSON parsers); so every member is looked at. */
        while (k < o->next) {
                const gws_jtok_t *kt = &doc->toks[k];
                if (!(kt->flags & GWS_JF_ESC)) {
                        if (kt->len - 2 == namelen &&
                            !memcmp(doc->buf + kt->start + 1, name, namelen))
                                found = k + 1;
                } else if (kt->len <= sizeof(tmp)) {
                        size_t n = gws_json_str_decode(doc, kt, tmp);
                        if (n == namelen && !memcmp(tmp, name, n))
                                found = k + 1;
                }
                k = doc->toks[k + 1].next;
        }
        return found;
}

int gws_json_num(const gws_jdoc_t *doc, const gws_jtok_t *tok, double *out) {
        static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,
                                     1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
                                     1e18, 1e19, 1e20, 1e21, 1e22};
        const char *p = doc->buf + tok->start, *end = p + tok->len;
        char tmp[64];
        double d;
        uint64_t mant = 0;
        int neg = 0, frac = -1, nd = 0, range;

        if (tok->type != GWS_JT_NUM)
                return -1;
        /* Fast path, exact (Clinger): decimals whose digits fit 2^53 and
         * whose scale (fraction digits and exponent) is at most 10^22 either
         * way are one correctly rounded division or multiplication of two
         * exactly representable doubles. Otherwise strtod (before, every
         * number with an exponent: ~760 instructions each). */
        if (*p == '-') {
                neg = 1;
                p++;
        }
        for (; p < end; p++) {
                if (*p >= '0' && *p <= '9') {
                        mant = mant * 10 + (uint64_t)(*p - '0');
                        if (++nd > 15)
                                break;
                        if (frac >= 0)
                                frac++;
                } else if (*p == '.' && frac < 0) {
                        frac = 0;
                } else {
                        break;
                }
        }
        if (nd <= 15) {
                int e10 = frac > 0 ? -frac : 0;
                if (p < end && (*p | 0x20) == 'e') {
                        /* an exponent (1.15e-05, as Python writes small
                         * floats): 10^e10 must be within 10^±22 */
                        int eneg = 0, ev = 0, ne = 0;
                        if (++p < end && (*p == '+' || *p == '-'))
                                eneg = *p++ == '-';
                        for (; p < end && *p >= '0' && *p <= '9' && ne < 4;
                             p++, ne++)
                                ev = ev * 10 + (*p - '0');
                        e10 += eneg ? -ev : ev;
                        if (!ne || e10 < -22 || e10 > 22)
                                p = NULL; /* strtod's */
                }
                if (p == end) {
                        d = (double)mant;
                        if (e10 < 0)
                                d /= p10[-e10];
                        else if (e10 > 0)
                                d *= p10[e10];
                        *out = neg ? -d : d;
                        return 0;
                }
        }
        {
                /* strtod() needs its text NUL-terminated: a copy, on the
                 * heap for a number of 64 characters or more (an exact
                 * decimal expansion: rare, and refused before) */
                char *t = tok->len < sizeof(tmp) ? tmp : malloc(tok->len + 1);
                if (!t)
                        return -1;
                memcpy(t, doc->buf + tok->start, tok->len);
                t[tok->len] = '\0';
                errno = 0;
                d = strtod(t, NULL);
                range = errno == ERANGE;
                if (t != tmp)
                        free(t);
        }
        if (range && isinf(d))
                return -1;
        *out = d;
        return 0;
}

int gws_json_int(const gws_jdoc_t *doc, const gws_jtok_t *tok,
                 int64_t *out) {
        const char *p = doc->buf + tok->start, *end = p + tok->len;
        uint64_t v = 0;
        int neg = 0;
        if (tok->type != GWS_JT_NUM)
                return -1;
        if (*p == '-') {
                neg = 1;
                p++;
        }
        for (; p < end; p++) {
                if (*p < '0' || *p > '9')
                        return -1; /* fraction or exponent */
                if (v > (UINT64_MAX - 9) / 10)
                        return -1;
                v = v * 10 + (uint64_t)(*p - '0');
        }
        if (v > (uint64_t)INT64_MAX + (uint64_t)neg)
                return -1;
        *out = neg ? (int64_t)(0 - v) : (int64_t)v;
        return 0;
}
