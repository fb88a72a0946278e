/* json_ref.c - the tokenizer as it was before its fast path (commit
 * 10044c5, src/json.c), frozen as the oracle of the differential test in
 * tests/test_json.c: for every input the project's gws_json_parse() must
 * give this one's result, token for token, and on error the same code,
 * offset and description. Test code only; never linked into gwsieve.
 */
/* (original header of src/json.c) single-pass JSON tokenizer into a tape.
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
#include "json_ref.h"

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

/* Scans a string starting at the opening quote at \p *pos of \p s (\p len
 * bytes; the same as doc's, passed so they stay in registers). \p bk is
 * the caller's block cache; the slow path gets a copy (its blocks are not
 * written back: a stale block is reloaded on its next use).
 * @returns GWS_JE_OK with *pos after the closing quote. */
static inline gws_jerr_t scan_string(gws_jdoc_t *doc, const unsigned char *s,
                                     size_t len, blk_t *bk, size_t *pos,
                                     uint8_t *flags, uint32_t max_string) {
        size_t off = *pos + 1;
        uint64_t m;

        for (;;) {
                if (off >= len)
                        break;
                if (off - bk->off >= 64) {
                        bk->off = off;
                        bk->m = blk_load(s, off, len);
                }
                if ((m = bk->m >> (off - bk->off))) {
                        off += (size_t)__builtin_ctzll(m);
                        break;
                }
                off = bk->off + 64;
        }
        if (off < len && s[off] == '"' &&
            (!max_string || off - *pos - 1 <= max_string)) {
                *pos = off + 1;
                return GWS_JE_OK;
        }
        return scan_string_rest(doc, *bk, pos, s + off, flags, max_string);
}

static gws_jerr_t scan_number(gws_jdoc_t *doc, size_t *pos) {
        const char *s = doc->buf;
        size_t i = *pos, len = doc->len, d;
        if (i < len && s[i] == '-')
                i++;
        if (i >= len)
                goto bad;
        if (s[i] == '0') {
                i++;
        } else if (s[i] >= '1' && s[i] <= '9') {
                while (i < len && s[i] >= '0' && s[i] <= '9')
                        i++;
        } else {
                goto bad;
        }
        if (i < len && s[i] == '.') {
                d = ++i;
                while (i < len && s[i] >= '0' && s[i] <= '9')
                        i++;
                if (i == d)
                        goto bad;
        }
        if (i < len && (s[i] == 'e' || s[i] == 'E')) {
                i++;
                if (i < len && (s[i] == '+' || s[i] == '-'))
                        i++;
                d = i;
                while (i < len && s[i] >= '0' && s[i] <= '9')
                        i++;
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
 * its own, so they predict on the shape of the events, and the tape and
 * its length stay in registers. Every error keeps the offset and the
 * description of the loop it replaced (tests/test_json.c). */
#define SKIP_WS()                                                              \
        while (i < len && is_ws((unsigned char)buf[i]))                        \
                i++

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

gws_jerr_t gws_json_ref_parse(gws_jdoc_t *doc, const char *buf, size_t len,
                          const gws_json_limits_t *lim) {
        uint32_t max_depth = lim && lim->max_depth ? lim->max_depth : 64;
        uint32_t max_tokens =
            lim && lim->max_tokens ? lim->max_tokens : 1u << 20;
        uint32_t max_string = lim ? lim->max_string : 0;
        uint32_t depth = 0, idx, ntoks = 0, room, *stack;
        size_t i = 0;
        gws_jerr_t err = GWS_JE_OK;
        gws_jtok_t *toks = doc->toks, *t;
        const unsigned char *us = (const unsigned char *)buf;
        unsigned char c;
        blk_t bk = {(size_t)-64, 0};

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
        SKIP_WS();
        if (i >= len)
                goto eof;
        c = (unsigned char)buf[i];
value_c:
        TOK_PUSH(t);
        switch (c) {
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
                SKIP_WS();
                if (i >= len)
                        goto eof;
                if (c == '{') {
                        c = (unsigned char)buf[i];
                        if (c == '}')
                                goto close;
                        goto key_c;
                }
                c = (unsigned char)buf[i];
                if (c == ']')
                        goto close;
                goto value_c;
        case '"':
                t->type = GWS_JT_STR;
                if ((err = scan_string(doc, us, len, &bk, &i, &t->flags,
                                       max_string)))
                        goto out;
                break;
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
        SKIP_WS();
        if (i >= len) {
                if (!depth)
                        goto out; /* the whole document */
                goto eof;
        }
        c = (unsigned char)buf[i];
        if (!depth) {
                doc->err_what = "trailing characters";
                goto syntax;
        }
        idx = stack[depth - 1];
        if (c == ',') {
                i++;
                if (toks[idx].type != GWS_JT_OBJ)
                        goto value;
                SKIP_WS();
                if (i >= len)
                        goto eof;
                c = (unsigned char)buf[i];
                goto key_c;
        }
        if ((c == '}' && toks[idx].type == GWS_JT_OBJ) ||
            (c == ']' && toks[idx].type == GWS_JT_ARR))
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
        if ((err = scan_string(doc, us, len, &bk, &i, &t->flags,
                               max_string)))
                goto out;
        t->len = (uint32_t)(i - t->start);
        SKIP_WS();
        if (i >= len || buf[i] != ':') {
                doc->err_what = "expected ':'";
                goto syntax;
        }
        i++;
        goto value;

close: /* the bracket at i closes the innermost container */
        idx = stack[--depth];
        toks[idx].len = (uint32_t)(i + 1 - toks[idx].start);
        toks[idx].next = ntoks;
        i++;
        goto after;

eof:
        doc->err_what = "unexpected end of input";
        goto syntax;
bad_char:
        if (c >= 0x80 && !utf8_seq((const unsigned char *)buf + i,
                                   (const unsigned char *)buf + len)) {
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
#undef TOK_PUSH
