/* json.c - single-pass JSON tokenizer (RFC 8259) into a token tape.
 *
 * The scan is iterative (an explicit stack, never recursion, so depth is
 * bounded by the limit and not by the C stack). String contents are
 * skipped eight bytes at a time while they hold no quote, backslash,
 * control or non-ASCII byte (SWAR), which is where most of an event's
 * bytes are (bodies). Non-ASCII bytes are validated as UTF-8 in place;
 * \u escapes are validated (surrogates must pair).
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

static gws_jtok_t *tok_push(gws_jdoc_t *doc, uint32_t max_tokens,
                            gws_jerr_t *err) {
        /* Checked on every token: a recycled document may have spare
         * capacity beyond this parse's limit. */
        if (doc->ntoks >= max_tokens) {
                *err = GWS_JE_TOKENS;
                return NULL;
        }
        if (doc->ntoks == doc->cap) {
                uint32_t ncap = doc->cap ? doc->cap * 2 : 256;
                gws_jtok_t *n;
                if (ncap > max_tokens)
                        ncap = max_tokens;
                if (!(n = realloc(doc->toks, ncap * sizeof(*n)))) {
                        *err = GWS_JE_NOMEM;
                        return NULL;
                }
                doc->toks = n;
                doc->cap = ncap;
        }
        return &doc->toks[doc->ntoks++];
}

/* Scans a string starting at the opening quote at \p *pos.
 * @returns GWS_JE_OK with *pos after the closing quote. */
static gws_jerr_t scan_string(gws_jdoc_t *doc, size_t *pos, uint8_t *flags,
                              uint32_t max_string) {
        const unsigned char *s = (const unsigned char *)doc->buf;
        const unsigned char *end = s + doc->len;
        const unsigned char *p = s + *pos + 1;
        size_t n;

        for (;;) {
#ifdef __SSE2__
                /* 16 bytes at a time, straight to the next special byte:
                 * a signed compare < 0x20 catches both control bytes and
                 * non-ASCII (negative as signed). */
                while (end - p >= 16) {
                        __m128i v = _mm_loadu_si128((const __m128i *)p);
                        int m = _mm_movemask_epi8(_mm_or_si128(
                            _mm_or_si128(
                                _mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                            _mm_cmplt_epi8(v, _mm_set1_epi8(0x20))));
                        if (m) {
                                p += __builtin_ctz((unsigned)m);
                                break;
                        }
                        p += 16;
                }
#endif
                while (end - p >= 8) {
                        uint64_t v;
                        memcpy(&v, p, 8);
                        if (swar_special(v))
                                break;
                        p += 8;
                }
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

enum { S_VALUE, S_VALUE_OR_END, S_KEY, S_KEY_OR_END, S_AFTER };

gws_jerr_t gws_json_parse(gws_jdoc_t *doc, const char *buf, size_t len,
                          const gws_json_limits_t *lim) {
        uint32_t max_depth = lim && lim->max_depth ? lim->max_depth : 64;
        uint32_t max_tokens =
            lim && lim->max_tokens ? lim->max_tokens : 1u << 20;
        uint32_t max_string = lim ? lim->max_string : 0;
        uint32_t depth = 0, idx;
        size_t i = 0;
        int state = S_VALUE;
        gws_jerr_t err = GWS_JE_OK;
        gws_jtok_t *t;
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

        for (;;) {
                while (i < len && is_ws((unsigned char)buf[i]))
                        i++;
                if (i >= len) {
                        doc->err_what = depth || state != S_AFTER
                                            ? "unexpected end of input"
                                            : NULL;
                        if (!doc->err_what)
                                return GWS_JE_OK;
                        doc->err_off = i;
                        return GWS_JE_SYNTAX;
                }
                c = (unsigned char)buf[i];
                switch (state) {
                case S_VALUE_OR_END:
                        if (c == ']')
                                goto close;
                        /* fall through */
                case S_VALUE:
                        if (!(t = tok_push(doc, max_tokens, &err)))
                                goto fail;
                        idx = doc->ntoks - 1;
                        t->start = (uint32_t)i;
                        t->flags = 0;
                        t->depth = (uint16_t)depth;
                        t->next = idx + 1;
                        if (c == '{' || c == '[') {
                                if (depth >= max_depth) {
                                        doc->err_what = "nesting too deep";
                                        doc->err_off = i;
                                        return GWS_JE_DEPTH;
                                }
                                t->type = c == '{' ? GWS_JT_OBJ : GWS_JT_ARR;
                                doc->stack[depth++] = idx;
                                i++;
                                state = c == '{' ? S_KEY_OR_END
                                                 : S_VALUE_OR_END;
                                continue;
                        }
                        if (c == '"') {
                                t->type = GWS_JT_STR;
                                if ((err = scan_string(doc, &i, &t->flags,
                                                       max_string)))
                                        return err;
                        } else if (c == '-' || (c >= '0' && c <= '9')) {
                                t->type = GWS_JT_NUM;
                                if ((err = scan_number(doc, &i)))
                                        return err;
                        } else if (c == 't' && len - i >= 4 &&
                                   !memcmp(buf + i, "true", 4)) {
                                t->type = GWS_JT_TRUE;
                                i += 4;
                        } else if (c == 'f' && len - i >= 5 &&
                                   !memcmp(buf + i, "false", 5)) {
                                t->type = GWS_JT_FALSE;
                                i += 5;
                        } else if (c == 'n' && len - i >= 4 &&
                                   !memcmp(buf + i, "null", 4)) {
                                t->type = GWS_JT_NULL;
                                i += 4;
                        } else {
                                doc->err_off = i;
                                if (c >= 0x80 &&
                                    !utf8_seq((const unsigned char *)buf + i,
                                              (const unsigned char *)buf +
                                                  len)) {
                                        doc->err_what = "invalid UTF-8";
                                        return GWS_JE_UTF8;
                                }
                                doc->err_what = "unexpected character";
                                return GWS_JE_SYNTAX;
                        }
                        /* t may have moved? no: tokens only grow in
                         * tok_push, and none was pushed since. */
                        t->len = (uint32_t)(i - t->start);
                        state = S_AFTER;
                        continue;
                case S_KEY_OR_END:
                        if (c == '}')
                                goto close;
                        /* fall through */
                case S_KEY:
                        if (c != '"') {
                                doc->err_what = "expected a member name";
                                doc->err_off = i;
                                return GWS_JE_SYNTAX;
                        }
                        if (!(t = tok_push(doc, max_tokens, &err)))
                                goto fail;
                        idx = doc->ntoks - 1;
                        t->start = (uint32_t)i;
                        t->type = GWS_JT_STR;
                        t->flags = GWS_JF_KEY;
                        t->depth = (uint16_t)depth;
                        t->next = idx + 1;
                        if ((err = scan_string(doc, &i, &t->flags,
                                               max_string)))
                                return err;
                        t->len = (uint32_t)(i - t->start);
                        while (i < len && is_ws((unsigned char)buf[i]))
                                i++;
                        if (i >= len || buf[i] != ':') {
                                doc->err_what = "expected ':'";
                                doc->err_off = i;
                                return GWS_JE_SYNTAX;
                        }
                        i++;
                        state = S_VALUE;
                        continue;
                case S_AFTER:
                        if (!depth) {
                                doc->err_what = "trailing characters";
                                doc->err_off = i;
                                return GWS_JE_SYNTAX;
                        }
                        idx = doc->stack[depth - 1];
                        if (c == ',') {
                                i++;
                                state = doc->toks[idx].type == GWS_JT_OBJ
                                            ? S_KEY
                                            : S_VALUE;
                                continue;
                        }
                        if ((c == '}' && doc->toks[idx].type == GWS_JT_OBJ) ||
                            (c == ']' && doc->toks[idx].type == GWS_JT_ARR))
                                goto close;
                        doc->err_what = "expected ',' or a closing bracket";
                        doc->err_off = i;
                        return GWS_JE_SYNTAX;
                }
                continue;
        close:
                idx = doc->stack[--depth];
                doc->toks[idx].len = (uint32_t)(i + 1 - doc->toks[idx].start);
                doc->toks[idx].next = doc->ntoks;
                i++;
                state = S_AFTER;
        }
fail:
        doc->err_what = err == GWS_JE_TOKENS ? "too many values"
                                              : "out of memory";
        doc->err_off = i;
        return err;
}

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
        uint32_t k = obj + 1;
        char tmp[256];

        if (o->type != GWS_JT_OBJ)
                return 0;
        while (k < o->next) {
                const gws_jtok_t *kt = &doc->toks[k];
                if (!(kt->flags & GWS_JF_ESC)) {
                        if (kt->len - 2 == namelen &&
                            !memcmp(doc->buf + kt->start + 1, name, namelen))
                                return k + 1;
                } else if (kt->len <= sizeof(tmp)) {
                        size_t n = gws_json_str_decode(doc, kt, tmp);
                        if (n == namelen && !memcmp(tmp, name, n))
                                return k + 1;
                }
                k = doc->toks[k + 1].next;
        }
        return 0;
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
        int neg = 0, frac = -1, nd = 0;

        if (tok->type != GWS_JT_NUM)
                return -1;
        /* Fast path, exact (Clinger): decimals whose digits fit 2^53 and
         * whose scale is at most 10^22 are one correctly rounded division
         * of two exactly representable doubles. Otherwise strtod. */
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
        if (p == end && nd <= 15) {
                d = (double)mant;
                if (frac > 0)
                        d /= p10[frac];
                *out = neg ? -d : d;
                return 0;
        }
        if (tok->len >= sizeof(tmp))
                return -1;
        memcpy(tmp, doc->buf + tok->start, tok->len);
        tmp[tok->len] = '\0';
        errno = 0;
        d = strtod(tmp, NULL);
        if (errno == ERANGE && isinf(d))
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
