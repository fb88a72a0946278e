/* redact.c - hand-written secret/PII scanners, PCRE2 for custom patterns.
 *
 * One pass: a 256-entry table marks the bytes where some detector can
 * start ('s' sk-, 'A' AKIA/AIza, 'g' gh?_, 'x' xox?-, 'B'/'b' Bearer and
 * Basic, '?'/'&' a query's parameter, 'e' eyJ, '-' -----BEGIN, '@'
 * e-mail, digits for cards); only there is a
 * detector tried.
 */
#include "gwsieve/redact.h"
#include "gwsieve/log.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Custom patterns must match text that is not UTF-8 too (a DLQ payload
 * that did not parse is redacted as bytes): without
 * PCRE2_MATCH_INVALID_UTF, pcre2_match() rejects such a subject outright
 * (PCRE2_ERROR_UTF8_*) and its secrets stay. */
#ifndef PCRE2_MATCH_INVALID_UTF
#error "PCRE2 10.34 or later is needed (PCRE2_MATCH_INVALID_UTF)"
#endif

/* ------------------------------------------------------------------------
 * private types
 * ------------------------------------------------------------------------ */

#define K_SKIP GWS_RK__CNT /* a digit run that is no card: skip past it */

/* Where a detector may start (r->trig): most only at the start of a word
 * (the byte before is not a letter or a digit: match_at() rejects the
 * rest), a card's first digit only where the byte before is not '-', '_'
 * or '.' either (the rest of a UUID, a version, a timestamp's fraction:
 * match_at() rejects them too), an email at its '@', a PEM header at
 * "--". */
enum { T_NONE, T_WORD, T_DIGIT, T_ANY, T_DASH };

/* The shortest text in which each detector (but the e-mail one) can
 * match: its fixed prefix and the least its run takes, and the word
 * "Bearer" and a space before a bearer token. */
static const unsigned char min_len[GWS_RK_CUSTOM] = {
    [GWS_RK_OPENAI_KEY] = 3 + 20,      /* sk- */
    [GWS_RK_ANTHROPIC_KEY] = 7 + 20,   /* sk-ant- */
    [GWS_RK_AWS_ACCESS_KEY] = 4 + 16,  /* AKIA... */
    [GWS_RK_GOOGLE_API_KEY] = 4 + 35,  /* AIza */
    [GWS_RK_GITHUB_TOKEN] = 11 + 22,   /* github_pat_ (ghp_ + 36: 40) */
    [GWS_RK_SLACK_TOKEN] = 5 + 10,     /* xoxb- */
    [GWS_RK_STRIPE_KEY] = 8 + 20,      /* sk_live_ */
    [GWS_RK_HUGGINGFACE_TOKEN] = 3 + 30, /* hf_ */
    [GWS_RK_BEARER] = 7 + 16,          /* "Bearer " */
    [GWS_RK_BASIC_AUTH] = 6 + 8,       /* "Basic " */
    [GWS_RK_URL_CREDENTIAL] = 5 + 6,   /* "?key=" */
    [GWS_RK_JWT] = 3 * 10 + 2,         /* three parts, two dots */
    [GWS_RK_PRIVATE_KEY] = 11 + 16,    /* "-----BEGIN " .. "PRIVATE KEY-----" */
    [GWS_RK_EMAIL] = 0,                /* not used: see gws_redact_maybe() */
    [GWS_RK_CARD] = 13,                /* digits */
    [GWS_RK_SSN] = 11,                 /* 123-45-6789 */
    [GWS_RK_PHONE] = 0,                /* not used either: '+' is looked
                                        * for in short texts as '@' is */
};

struct gws_redact_s {
        unsigned enabled;           /* 1 << kind */
        unsigned short_mask;        /* at_plus16() bits of the enabled
                                     * detectors of short texts: 1
                                     * email, 2 phone */
        size_t min_len;             /* the least min_len[] enabled but
                                     * the e-mail's (SIZE_MAX: none) */
        unsigned char trig[256];    /* T_*: a detector may start here */
        int ncustom;
        char **cname;               /* "[REDACTED:<name>]" replacements */
        pcre2_code **ccode;
        uint32_t match_limit;       /* redact.custom_match_limit */
        uint64_t *cfail;            /* per pattern: matches that failed
                                     * (atomic: every thread's scratch
                                     * counts here, for the warnings) */
};

struct gws_redact_scratch_s {
        pcre2_match_data *md;
        /* custom patterns only: the match limit, and a JIT stack of up to
         * GWS_REDACT_JIT_STACK bytes instead of PCRE2's default 32 KB of
         * the machine stack */
        pcre2_match_context *mc;
        pcre2_jit_stack *js;
        gws_buf_t a, b;
        /* gws_redact_text_escaped(): the text decoded, and for each of
         * its bytes the offset in the text of the byte or escape it
         * comes from (map[dec.len] = the text's length) */
        gws_buf_t dec;
        size_t *map, mapcap;
};

static const char *kind_names[GWS_RK__CNT] = {
    "openai_key", "anthropic_key", "aws_access_key", "google_api_key",
    "github_token", "slack_token", "stripe_key", "huggingface_token",
    "bearer_token", "basic_auth",
    "url_credential", "jwt", "private_key",
    "email", "card_number", "ssn", "phone", "custom", "ip", "field"};

const char *gws_redact_kind_name(gws_redact_kind_t k) {
        return (unsigned)k < GWS_RK__CNT ? kind_names[k] : "unknown";
}

/* ------------------------------------------------------------------------
 * character classes
 * ------------------------------------------------------------------------ */

static inline int is_digit(int c) {
        return c >= '0' && c <= '9';
}
static inline int is_alpha(int c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static inline int is_alnum(int c) {
        return is_digit(c) || is_alpha(c);
}
static inline int is_upper_digit(int c) {
        return is_digit(c) || (c >= 'A' && c <= 'Z');
}
static inline int is_tok(int c) { /* [A-Za-z0-9_-] (base64url too) */
        return is_alnum(c) || c == '_' || c == '-';
}
static inline int is_word(int c) { /* [A-Za-z0-9_] */
        return is_alnum(c) || c == '_';
}
static inline int is_slack(int c) {
        return is_alnum(c) || c == '-';
}
static inline int is_bearer(int c) {
        return is_alnum(c) || c == '.' || c == '_' || c == '~' || c == '+' ||
               c == '/' || c == '=' || c == '-';
}
static inline int is_local(int c) {
        return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' ||
               c == '-';
}

/* The code point of the UTF-8 sequence at s[i], of *\p n bytes, or -1
 * when there is none (an ASCII byte, a stray or cut sequence, an
 * overlong form, a surrogate). */
static long u8_at(const unsigned char *s, size_t len, size_t i, int *n) {
        unsigned c = s[i];
        long cp;
        int k, need = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 :
                                                  c >= 0xc2 ? 2 : 0;
        if (c >= 0xf5 || !need || i + (size_t)need > len)
                return -1;
        cp = c & (0x7f >> need);
        for (k = 1; k < need; k++) {
                if ((s[i + k] & 0xc0) != 0x80)
                        return -1;
                cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return -1;
        *n = need;
        return cp;
}

/* 1 if code point \p cp (beyond ASCII) may be part of an e-mail
 * address's local part or domain (RFC 6531/6532: letters, marks, digits
 * of any script), 0 for the punctuation and symbols that surround
 * addresses in text: Latin-1's (NBSP, guillemets, ...), general
 * punctuation (typographic quotes, dashes, ...) and symbols up to
 * U+2BFF, CJK symbols and punctuation (brackets, the ideographic full
 * stop), vertical/small/fullwidth forms of punctuation, private use,
 * specials, emoji. */
static int u8_mail_char(long cp) {
        if (cp < 0xc0 || cp == 0xd7 || cp == 0xf7 || cp == 0xfeff)
                return 0;
        if (cp >= 0x10000) /* emoji and symbols 1F000-1FFFF, tags */
                return cp < 0x1f000 || (cp >= 0x20000 && cp < 0xe0000);
        return !((cp >= 0x2000 && cp <= 0x2bff) ||
                 (cp >= 0x2e00 && cp <= 0x2e7f) ||
                 (cp >= 0x3000 && cp <= 0x303f) ||
                 (cp >= 0xe000 && cp <= 0xf8ff) ||
                 (cp >= 0xfe10 && cp <= 0xfe6f) ||
                 (cp >= 0xff00 && cp <= 0xff0f) ||
                 (cp >= 0xff1a && cp <= 0xff20) ||
                 (cp >= 0xff3b && cp <= 0xff40) ||
                 (cp >= 0xff5b && cp <= 0xff65) || cp >= 0xffe0);
}

typedef const unsigned char uc;

static size_t run(uc *s, size_t len, size_t i, int (*cls)(int)) {
        while (i < len && cls(s[i]))
                i++;
        return i;
}

static int has(uc *s, size_t len, size_t i, const char *lit) {
        size_t n = strlen(lit);
        return i + n <= len && !memcmp(s + i, lit, n);
}

/* has() for a lower-case \p lit, the text's ASCII letters in any case. */
static int has_ci(uc *s, size_t len, size_t i, const char *lit) {
        size_t n = strlen(lit), k;
        if (i + n > len)
                return 0;
        for (k = 0; k < n; k++)
                if ((s[i + k] | 0x20) != (unsigned char)lit[k])
                        return 0;
        return 1;
}

static int luhn(uc *s, size_t from, size_t to) {
        int sum = 0, dbl = 0;
        size_t i = to;
        while (i-- > from) {
                int d;
                if (!is_digit(s[i]))
                        continue;
                d = s[i] - '0';
                if (dbl && (d *= 2) > 9)
                        d -= 9;
                sum += d;
                dbl = !dbl;
        }
        return sum % 10 == 0;
}

/* Issuer prefix of a card number of \p nd digits starting at \p d (the
 * first digits are contiguous in every accepted grouping). */
static int iin_ok(uc *d, int nd) {
        int d1 = d[0] - '0', d2 = is_digit(d[1]) ? d[1] - '0' : -1;
        switch (d1) {
        case 4: return nd == 13 || nd == 16 || nd == 19;     /* Visa */
        case 5: return d2 >= 1 && d2 <= 5 && nd == 16;       /* MC */
        case 2: return d2 >= 2 && d2 <= 7 && nd == 16;       /* MC 2-series */
        case 3:
                if (d2 == 4 || d2 == 7)
                        return nd == 15;                     /* Amex */
                return (d2 == 0 || d2 == 5 || d2 == 6 || d2 == 8) &&
                       nd >= 14;                             /* Diners, JCB */
        case 6: return nd >= 16;                 /* Discover, UnionPay */
        default: return 0;
        }
}

/* ------------------------------------------------------------------------
 * detectors
 * ------------------------------------------------------------------------ */

/* Credential parameters of a query string (url_credential), lower
 * case, by length. */
static const char *const url_params[] = {
    "key", "pwd", "sig", "auth", "token", "apikey", "passwd", "secret",
    "api_key", "api-key", "password", "signature", "auth_token",
    "access_token", "client_secret", "subscription-key", "x-amz-signature",
    "x-amz-credential", "x-amz-security-token", NULL};

static inline int is_param(int c) { /* a parameter name: [A-Za-z0-9_.-] */
        return is_alnum(c) || c == '_' || c == '.' || c == '-';
}

static inline int is_qvalue(int c) { /* a value: up to & # space " ' < > \ */
        return c > ' ' && c != '&' && c != '#' && c != '"' && c != '\'' &&
               c != '<' && c != '>' && c != '\\' && c != 0x7f;
}

/* url_credential at the '?' or '&' at \p i: a listed name (any case),
 * '=', a value of at least 6 characters; the name is kept.
 * @returns 1 with the match, or 0. */
static int url_cred_at(uc *s, size_t len, size_t i, size_t *ms, size_t *me,
                       unsigned *kind) {
        const char *const *p;
        size_t n = run(s, len, i + 1, is_param) - (i + 1), e, k;
        if (n < 3 || n > 20 || i + 1 + n >= len || s[i + 1 + n] != '=')
                return 0;
        for (p = url_params; *p; p++) {
                if (strlen(*p) != n)
                        continue;
                for (k = 0; k < n; k++) {
                        unsigned c = s[i + 1 + k];
                        if ((c >= 'A' && c <= 'Z' ? c | 0x20 : c) !=
                            (unsigned char)(*p)[k])
                                break;
                }
                if (k == n)
                        break;
        }
        if (!*p)
                return 0;
        e = run(s, len, i + 2 + n, is_qvalue);
        if (e - (i + 2 + n) < 6)
                return 0;
        *ms = i + 2 + n, *me = e;
        *kind = GWS_RK_URL_CREDENTIAL;
        return 1;
}

static inline int is_b64(int c) { /* [A-Za-z0-9+/] */
        return is_alnum(c) || c == '+' || c == '/';
}

static int b64val(int c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (is_digit(c))
                return c - '0' + 52;
        return c == '+' ? 62 : 63;
}

/* basic_auth after "Basic" (at \p j: the spaces, then the credentials):
 * at least 8 base64 characters (and up to two '='), whose first 256
 * decode to printable ASCII with a ':' (RFC 7617: user-id ":" password).
 * A word of prose after "basic" decodes to printable ASCII in about one
 * case in 400 (6 bytes, each 95/256), and then needs the ':' too: prose
 * ("basic information") is not taken. "Basic " is kept.
 * @returns 1 with the match, or 0. */
static int basic_at(uc *s, size_t len, size_t j, size_t *ms, size_t *me,
                    unsigned *kind) {
        size_t e, k, n;
        unsigned acc = 0, c;
        int bits = 0, colon = 0;
        if (j >= len || (s[j] != ' ' && s[j] != '\t'))
                return 0;
        while (j < len && (s[j] == ' ' || s[j] == '\t'))
                j++;
        e = run(s, len, j, is_b64);
        if (e - j < 8 || (e - j) % 4 == 1)
                return 0;
        n = e - j < 256 ? e - j : 256;
        for (k = 0; k < n; k++) {
                acc = acc << 6 | (unsigned)b64val(s[j + k]);
                if ((bits += 6) >= 8) {
                        bits -= 8;
                        c = acc >> bits & 0xff;
                        if (c < 0x20 || c > 0x7e)
                                return 0;
                        colon |= c == ':';
                }
        }
        if (!colon)
                return 0;
        for (k = 0; k < 2 && e < len && s[e] == '='; k++)
                e++;
        if (e < len && (is_b64(s[e]) || s[e] == '='))
                return 0; /* more after the padding: not base64 */
        *ms = j, *me = e;
        *kind = GWS_RK_BASIC_AUTH;
        return 1;
}

/* The length of the character at s[p] if it may be in a domain name
 * (ASCII letters, digits, '-'; beyond ASCII what u8_mail_char() takes:
 * IDNA labels), else 0. */
static size_t dom_char(uc *s, size_t len, size_t p) {
        long cp;
        int n;
        if (s[p] < 0x80)
                return is_alnum(s[p]) || s[p] == '-';
        cp = u8_at(s, len, p, &n);
        return cp >= 0 && u8_mail_char(cp) ? (size_t)n : 0;
}

/* The end of an e-mail's domain starting at \p p (after the '@'), or 0
 * when there is none: labels by single dots, at least two, up to the
 * last that is a top-level domain: two ASCII letters or more (those
 * before text glued on beyond ASCII: "example.comです"), punycode
 * ("xn--p1ai"), or two characters or more all beyond ASCII ("рф",
 * "广告"). Hyphens ending a label are left out ("example.com-"). */
static size_t email_domain_end(uc *s, size_t len, size_t p) {
        size_t ls, le, te, a, end = 0, k;
        int nl, nasc, nu;
        for (nl = 0; p < len; nl++) {
                for (ls = p, nasc = 0, nu = 0;
                     p < len && (k = dom_char(s, len, p)); p += k)
                        *(s[p] < 0x80 ? &nasc : &nu) += 1;
                if ((le = p) == ls)
                        break;
                for (te = le; te > ls && s[te - 1] == '-'; te--)
                        ;
                a = run(s, te, ls, is_alpha);
                if (!nl || te == ls) {
                        /* the first label: no TLD */
                } else if (a == te && a - ls >= 2) {
                        end = te;
                } else if (a - ls >= 2 && s[a] >= 0x80) {
                        end = a; /* text glued on after the TLD */
                        break;
                } else if (!nu && te - ls > 4 && has_ci(s, te, ls, "xn--")) {
                        end = te;
                } else if (!nasc && nu >= 2) {
                        end = te;
                }
                if (le + 1 >= len || s[le] != '.' ||
                    !dom_char(s, len, le + 1))
                        break;
                p = le + 1;
        }
        return end;
}

/* A phone number in international form at s[i] = '+' (E.164: a country
 * code 1-9..., 8 to 15 digits in all), its digits in groups by single
 * spaces, '-' or '.', one group maybe in parentheses ("+1 (415)
 * 555-0100"), nothing glued after it (a letter, a digit, '+', '%'). The
 * whole number is the match. @returns 1, or 0 when there is none. */
static int phone_at(uc *s, size_t len, size_t i, size_t *ms, size_t *me,
                    unsigned *kind) {
        size_t j = i + 1, end = 0;
        int nd = 0, paren = 0;
        if (j >= len || s[j] < '1' || s[j] > '9')
                return 0;
        while (j < len) {
                if (is_digit(s[j])) {
                        if (++nd > 15)
                                return 0;
                        j++;
                        if (!paren)
                                end = j;
                        continue;
                }
                if (s[j] == ')' && paren == 1) {
                        paren = 2;
                        end = ++j;
                        continue;
                }
                /* a separator, then a digit or '(' */
                if ((s[j] == ' ' || s[j] == '-' || s[j] == '.') &&
                    j + 1 < len &&
                    (is_digit(s[j + 1]) || (s[j + 1] == '(' && !paren))) {
                        j++;
                        if (s[j] == '(') {
                                paren = 1;
                                j++;
                        }
                        continue;
                }
                break;
        }
        if (paren == 1 || nd < 8 || end == 0)
                return 0;
        /* the number ends where its digits do: not glued to more */
        if (end < len && (is_alnum(s[end]) || s[end] == '+' || s[end] == '%'))
                return 0;
        *ms = i, *me = end;
        *kind = GWS_RK_PHONE;
        return 1;
}

/* A userinfo character of a URL (RFC 3986 3.2.1: unreserved, pct-encoded,
 * sub-delims, ':'). */
static inline int is_userinfo(int c) {
        return is_alnum(c) || (c && strchr("-._~%!$&'()*+,;=:", c));
}

/* The password of a URL's userinfo ("scheme://user:password@host"),
 * the '@' at s[i]: [*ms, *me) the password, the user and the host kept
 * (an e-mail match would take the host only when it is a name, never
 * when it is an address). @returns 1, or 0 when there is none. */
static int userinfo_at(uc *s, size_t i, size_t floor, size_t *ms, size_t *me,
                       unsigned *kind) {
        size_t a = i, colon = 0;
        while (a > floor && i - a < 256 && is_userinfo(s[a - 1]))
                if (s[--a] == ':')
                        colon = a; /* the first ':' is the user's end */
        if (a < floor + 3 || s[a - 1] != '/' || s[a - 2] != '/' ||
            s[a - 3] != ':' || !colon || colon + 1 >= i)
                return 0;
        *ms = colon + 1, *me = i;
        *kind = GWS_RK_URL_CREDENTIAL;
        return 1;
}

/* Tries the detectors that can start at s[i]. \p floor: no match may start
 * before it (the end of the previous one).
 * @returns 1 with [*ms, *me) and *kind, or 0. */
static int match_at(const gws_redact_t *r, uc *s, size_t len, size_t i,
                    size_t floor, size_t *ms, size_t *me, unsigned *kind) {
        unsigned en = r->enabled;
        int bnd = i == 0 || !is_alnum(s[i - 1]);
        size_t j, e;

        switch (s[i]) {
        case 'r':
        case 's':
                if (!bnd)
                        return 0;
                /* Stripe: sk_live_, sk_test_, rk_live_, rk_test_ */
                if (has(s, len, i + 1, "k_live_") ||
                    has(s, len, i + 1, "k_test_")) {
                        if (!(en & 1u << GWS_RK_STRIPE_KEY))
                                return 0;
                        e = run(s, len, i + 8, is_alnum);
                        if (e - (i + 8) < 20)
                                return 0;
                        *ms = i, *me = e;
                        *kind = GWS_RK_STRIPE_KEY;
                        return 1;
                }
                if (s[i] != 's' || !has(s, len, i, "sk-"))
                        return 0;
                if ((en & 1u << GWS_RK_ANTHROPIC_KEY) &&
                    has(s, len, i + 3, "ant-")) {
                        e = run(s, len, i + 7, is_tok);
                        if (e - (i + 7) >= 20) {
                                *ms = i, *me = e;
                                *kind = GWS_RK_ANTHROPIC_KEY;
                                return 1;
                        }
                }
                if (en & 1u << GWS_RK_OPENAI_KEY) {
                        e = run(s, len, i + 3, is_tok);
                        if (e - (i + 3) >= 20) {
                                *ms = i, *me = e;
                                *kind = GWS_RK_OPENAI_KEY;
                                return 1;
                        }
                }
                return 0;
        case 'A':
                if (!bnd)
                        return 0;
                if ((en & 1u << GWS_RK_GOOGLE_API_KEY) &&
                    has(s, len, i, "AIza")) {
                        e = run(s, len, i + 4, is_tok);
                        if (e - (i + 4) == 35) {
                                *ms = i, *me = e;
                                *kind = GWS_RK_GOOGLE_API_KEY;
                                return 1;
                        }
                }
                if ((en & 1u << GWS_RK_AWS_ACCESS_KEY) && i + 20 <= len &&
                    (has(s, len, i, "AKIA") || has(s, len, i, "ASIA") ||
                     has(s, len, i, "AGPA") || has(s, len, i, "AIDA") ||
                     has(s, len, i, "AROA") || has(s, len, i, "ANPA") ||
                     has(s, len, i, "ANVA") || has(s, len, i, "AIPA"))) {
                        e = run(s, len, i + 4, is_upper_digit);
                        if (e - (i + 4) == 16 &&
                            (e == len || !is_alnum(s[e]))) {
                                *ms = i, *me = e;
                                *kind = GWS_RK_AWS_ACCESS_KEY;
                                return 1;
                        }
                }
                return 0;
        case 'g':
                if (!bnd || !(en & 1u << GWS_RK_GITHUB_TOKEN))
                        return 0;
                if (i + 4 <= len && s[i + 1] == 'h' && s[i + 3] == '_' &&
                    strchr("pousr", s[i + 2]) && s[i + 2]) {
                        e = run(s, len, i + 4, is_alnum);
                        if (e - (i + 4) >= 36) {
                                *ms = i, *me = e;
                                *kind = GWS_RK_GITHUB_TOKEN;
                                return 1;
                        }
                }
                if (has(s, len, i, "github_pat_")) {
                        e = run(s, len, i + 11, is_word);
                        if (e - (i + 11) >= 22) {
                                *ms = i, *me = e;
                                *kind = GWS_RK_GITHUB_TOKEN;
                                return 1;
                        }
                }
                return 0;
        case 'h':
                if (!bnd || !(en & 1u << GWS_RK_HUGGINGFACE_TOKEN) ||
                    !has(s, len, i, "hf_"))
                        return 0;
                e = run(s, len, i + 3, is_alnum);
                if (e - (i + 3) < 30)
                        return 0;
                *ms = i, *me = e;
                *kind = GWS_RK_HUGGINGFACE_TOKEN;
                return 1;
        case 'x':
                /* xox[abprs]- (bot, user, ...), xoxe- (a rotating
                 * token's refresh token), xapp- (app-level) */
                if (!bnd || !(en & 1u << GWS_RK_SLACK_TOKEN) || i + 5 > len ||
                    !((has(s, len, i, "xox") && s[i + 3] &&
                       strchr("abprse", s[i + 3]) && s[i + 4] == '-') ||
                      has(s, len, i, "xapp-")))
                        return 0;
                e = run(s, len, i + 5, is_slack);
                if (e - (i + 5) < 10)
                        return 0;
                *ms = i, *me = e;
                *kind = GWS_RK_SLACK_TOKEN;
                return 1;
        case 'B':
        case 'b':
                /* the scheme in any case (RFC 9110, 11.1): "BEARER" */
                if (bnd && (en & 1u << GWS_RK_BASIC_AUTH) &&
                    has_ci(s, len, i + 1, "asic"))
                        return basic_at(s, len, i + 5, ms, me, kind);
                if (!bnd || !(en & 1u << GWS_RK_BEARER) ||
                    !has_ci(s, len, i + 1, "earer"))
                        return 0;
                j = i + 6;
                if (j >= len || (s[j] != ' ' && s[j] != '\t'))
                        return 0;
                while (j < len && (s[j] == ' ' || s[j] == '\t'))
                        j++;
                e = run(s, len, j, is_bearer);
                if (e - j < 16)
                        return 0;
                *ms = j, *me = e; /* keep the word "Bearer " */
                *kind = GWS_RK_BEARER;
                return 1;
        case '?':
        case '&':
                if (!(en & 1u << GWS_RK_URL_CREDENTIAL))
                        return 0;
                return url_cred_at(s, len, i, ms, me, kind);
        case 'e': {
                size_t p1, p2;
                if (!bnd || !(en & 1u << GWS_RK_JWT) ||
                    !has(s, len, i, "eyJ"))
                        return 0;
                p1 = run(s, len, i, is_tok);
                if (p1 - i < 10 || p1 >= len || s[p1] != '.')
                        return 0;
                p2 = run(s, len, p1 + 1, is_tok);
                if (p2 - (p1 + 1) < 10 || p2 >= len || s[p2] != '.')
                        return 0;
                e = run(s, len, p2 + 1, is_tok);
                if (e - (p2 + 1) < 10)
                        return 0;
                *ms = i, *me = e;
                *kind = GWS_RK_JWT;
                return 1;
        }
        case '-': {
                const unsigned char *hdr_end, *end_mark;
                size_t lim, k;
                if (!(en & 1u << GWS_RK_PRIVATE_KEY) ||
                    !has(s, len, i, "-----BEGIN "))
                        return 0;
                /* "PRIVATE KEY-----" on the same header line, or
                 * OpenPGP's "PRIVATE KEY BLOCK-----" (RFC 9580 6.2) */
                lim = i + 100 < len ? i + 100 : len;
                hdr_end = memmem(s + i, lim - i, "PRIVATE KEY", 11);
                if (!hdr_end)
                        return 0;
                j = (size_t)(hdr_end - s) + 11;
                k = has(s, len, j, "-----") ? 5
                    : has(s, len, j, " BLOCK-----") ? 11
                                                     : 0;
                if (!k)
                        return 0;
                j += k;
                end_mark = memmem(s + j, len - j, "-----END ", 9);
                e = len;
                if (end_mark) {
                        const unsigned char *tail = memmem(
                            end_mark, (size_t)(s + len - end_mark),
                            "PRIVATE KEY", 11);
                        size_t t = tail ? (size_t)(tail - s) + 11 : 0;
                        if (tail && has(s, len, t, "-----"))
                                e = t + 5;
                        else if (tail && has(s, len, t, " BLOCK-----"))
                                e = t + 11;
                }
                *ms = i, *me = e;
                *kind = GWS_RK_PRIVATE_KEY;
                return 1;
        }
        case '+':
                if (!bnd || !(en & 1u << GWS_RK_PHONE))
                        return 0;
                return phone_at(s, len, i, ms, me, kind);
        case '@': {
                size_t a = i, t;
                long cp;
                int n, cjk = -1;
                if ((en & 1u << GWS_RK_URL_CREDENTIAL) &&
                    userinfo_at(s, i, floor, ms, me, kind))
                        return 1;
                if (!(en & 1u << GWS_RK_EMAIL))
                        return 0;
                /* The local part, back from the '@': ASCII atext, and
                 * beyond ASCII what u8_mail_char() takes (RFC 6532). A
                 * CJK character (U+2E80 on) ends it unless the one next
                 * to the '@' is one too: "メールはjane@..." is text
                 * glued before an address, "用户@..." an address. */
                while (a > floor) {
                        if (s[a - 1] < 0x80) {
                                if (!is_local(s[a - 1]))
                                        break;
                                if (cjk < 0)
                                        cjk = 0;
                                a--;
                                continue;
                        }
                        for (t = a - 1;
                             t > floor && t + 3 >= a && (s[t] & 0xc0) == 0x80;
                             t--)
                                ;
                        cp = u8_at(s, len, t, &n);
                        if (cp < 0 || t + (size_t)n != a ||
                            !u8_mail_char(cp))
                                break;
                        if (cjk < 0)
                                cjk = cp >= 0x2e80;
                        else if (!cjk && cp >= 0x2e80)
                                break;
                        a = t;
                }
                while (a < i && (s[a] == '.' || s[a] == '-'))
                        a++; /* a local part does not start with these */
                if (a == i)
                        return 0;
                e = email_domain_end(s, len, i + 1);
                if (!e)
                        return 0;
                *ms = a, *me = e;
                *kind = GWS_RK_EMAIL;
                return 1;
        }
        default: { /* digits: payment cards */
                /* A card is 13-19 digits that (1) are written as cards are:
                 * contiguous, or in groups 4-4-4-x / 4-6-x with one kind
                 * of separator; (2) are not part of a hyphenated or dotted
                 * token (UUIDs, versions); (3) start with an issuer prefix
                 * (Visa 4, Mastercard 51-55/22-27, Amex 34/37, Diners/JCB
                 * 30/35/36/38, Discover/UnionPay 6); (4) pass Luhn. The
                 * run is split into groups, so "qty 2 4111 1111 1111 1111"
                 * still finds the card. */
                size_t gs[24], ge[24];
                int gd[24], ng = 0, ga, gb, nd, k2, sum = 0;
                if (!bnd || !(en & (1u << GWS_RK_CARD | 1u << GWS_RK_SSN)) ||
                    (i > 0 && (s[i - 1] == '-' || s[i - 1] == '_' ||
                               s[i - 1] == '.')))
                        return 0;
                j = i;
                while (j < len && ng < 24) {
                        gs[ng] = j;
                        while (j < len && is_digit(s[j]))
                                j++;
                        ge[ng] = j;
                        gd[ng] = (int)(j - gs[ng]);
                        sum += gd[ng];
                        ng++;
                        if (j + 1 < len && (s[j] == ' ' || s[j] == '-') &&
                            is_digit(s[j + 1])) {
                                j++;
                        } else {
                                break;
                        }
                }
                /* glued to letters or continuing a token: no card end */
                if (ng && j < len &&
                    (is_alnum(s[j]) || s[j] == '-' || s[j] == '_'))
                        ng--;
                /* A US social security number: 3-2-4 digits by '-', a
                 * group of the run by spaces ("id 7 078-05-1120"), an
                 * area other than 000, 666 and 9xx, a group other than
                 * 00, a serial other than 0000 (never issued: SSA). */
                for (ga = 0; (en & 1u << GWS_RK_SSN) && ga + 3 <= ng; ga++) {
                        uc *a3 = s + gs[ga];
                        if (gd[ga] == 3 && gd[ga + 1] == 2 &&
                            gd[ga + 2] == 4 && (!ga || a3[-1] != '-') &&
                            s[gs[ga + 1] - 1] == '-' &&
                            s[gs[ga + 2] - 1] == '-' &&
                            (ga + 3 == ng || s[ge[ga + 2]] != '-') &&
                            a3[0] != '9' && memcmp(a3, "000", 3) &&
                            memcmp(a3, "666", 3) &&
                            memcmp(s + gs[ga + 1], "00", 2) &&
                            memcmp(s + gs[ga + 2], "0000", 4)) {
                                *ms = gs[ga], *me = ge[ga + 2];
                                *kind = GWS_RK_SSN;
                                return 1;
                        }
                }
                /* fewer than 13 digits in all (a date, a time, a version):
                 * no group sequence can hold a card */
                if (sum < 13 || !(en & 1u << GWS_RK_CARD))
                        ng = 0;
                for (ga = 0; ga < ng; ga++) {
                        int best = -1;
                        for (nd = 0, gb = ga; gb < ng; gb++) {
                                int shaped = 1;
                                nd += gd[gb];
                                if (nd > 19)
                                        break;
                                if (nd < 13)
                                        continue;
                                /* grouping: one group, or 4-4-4-x, 4-6-x
                                 * with one kind of separator */
                                if (gb > ga) {
                                        if (gd[ga] != 4)
                                                shaped = 0;
                                        for (k2 = ga + 1; k2 < gb; k2++)
                                                if (gd[k2] != 4 &&
                                                    !(k2 == ga + 1 &&
                                                      gd[k2] == 6))
                                                        shaped = 0;
                                        for (k2 = ga + 1; k2 <= gb; k2++)
                                                if (s[gs[k2] - 1] !=
                                                    s[gs[ga + 1] - 1])
                                                        shaped = 0;
                                }
                                if (shaped && iin_ok(s + gs[ga], nd) &&
                                    luhn(s, gs[ga], ge[gb]))
                                        best = gb;
                        }
                        if (best >= 0) {
                                *ms = gs[ga], *me = ge[best];
                                *kind = GWS_RK_CARD;
                                return 1;
                        }
                }
                /* not a card: none of this run's digits can start one */
                *ms = i, *me = j > i ? j : i + 1;
                *kind = K_SKIP;
                return 1;
        }
        }
}

/* ------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------ */

gws_redact_t *gws_redact_new(const char *const *builtins,
                             const char *const *custom_names,
                             const char *const *custom_patterns,
                             int custom_cnt, char *errstr,
                             size_t errstr_size) {
        gws_redact_t *r = calloc(1, sizeof(*r));
        int i, k;
        const char *trig_bytes = "sAgxBbehr+-@0123456789";

        if (!r) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        r->match_limit = GWS_REDACT_MATCH_LIMIT;
        if (!builtins) {
                r->enabled = (1u << GWS_RK_CUSTOM) - 1;
        } else {
                for (i = 0; builtins[i]; i++) {
                        for (k = 0; k < GWS_RK_CUSTOM; k++)
                                if (!strcmp(builtins[i], kind_names[k]))
                                        break;
                        if (k == GWS_RK_CUSTOM) {
                                snprintf(errstr, errstr_size,
                                         "redact.builtins: unknown detector "
                                         "\"%s\" (known: openai_key, "
                                         "anthropic_key, aws_access_key, "
                                         "google_api_key, github_token, "
                                         "slack_token, stripe_key, "
                                         "huggingface_token, bearer_token, "
                                         "basic_auth, url_credential, jwt, "
                                         "private_key, email, card_number, "
                                         "ssn, phone)",
                                         builtins[i]);
                                gws_redact_destroy(r);
                                return NULL;
                        }
                        r->enabled |= 1u << k;
                }
        }
        for (i = 0; trig_bytes[i]; i++)
                r->trig[(unsigned char)trig_bytes[i]] =
                    is_digit(trig_bytes[i]) ? T_DIGIT : T_WORD;
        r->trig['@'] = T_ANY;
        r->trig['?'] = T_ANY; /* url_credential: a query's parameters */
        r->trig['&'] = T_ANY;
        r->trig['-'] = T_DASH;
        r->min_len = SIZE_MAX;
        r->short_mask = (r->enabled & 1u << GWS_RK_EMAIL ? 1u : 0u) |
                        (r->enabled & 1u << GWS_RK_PHONE ? 2u : 0u);
        for (k = 0; k < GWS_RK_CUSTOM; k++)
                if (k != GWS_RK_EMAIL && k != GWS_RK_PHONE &&
                    (r->enabled & 1u << k) &&
                    min_len[k] < r->min_len)
                        r->min_len = min_len[k];

        if (custom_cnt > 0) {
                r->cname = calloc((size_t)custom_cnt, sizeof(*r->cname));
                r->ccode = calloc((size_t)custom_cnt, sizeof(*r->ccode));
                r->cfail = calloc((size_t)custom_cnt, sizeof(*r->cfail));
                if (!r->cname || !r->ccode || !r->cfail) {
                        snprintf(errstr, errstr_size, "out of memory");
                        gws_redact_destroy(r);
                        return NULL;
                }
        }
        for (i = 0; i < custom_cnt; i++) {
                int perr;
                PCRE2_SIZE eoff;
                size_t n = strlen(custom_names[i]) + 16;
                r->ncustom = i + 1;
                if (!*custom_names[i]) {
                        snprintf(errstr, errstr_size,
                                 "redact.custom[%d]: empty name", i);
                        gws_redact_destroy(r);
                        return NULL;
                }
                if (!(r->cname[i] = malloc(n))) {
                        snprintf(errstr, errstr_size, "out of memory");
                        gws_redact_destroy(r);
                        return NULL;
                }
                snprintf(r->cname[i], n, "[REDACTED:%s]", custom_names[i]);
                /* MATCH_INVALID_UTF: invalid sequences match nothing,
                 * the valid text around them is matched as usual */
                r->ccode[i] = pcre2_compile(
                    (PCRE2_SPTR)custom_patterns[i], PCRE2_ZERO_TERMINATED,
                    PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &perr, &eoff, NULL);
                if (!r->ccode[i]) {
                        PCRE2_UCHAR msg[160];
                        pcre2_get_error_message(perr, msg, sizeof(msg));
                        snprintf(errstr, errstr_size,
                                 "redact.custom[%d] \"%s\": pattern error at "
                                 "offset %zu: %s",
                                 i, custom_names[i], (size_t)eoff,
                                 (const char *)msg);
                        gws_redact_destroy(r);
                        return NULL;
                }
                /* JIT: an order of magnitude faster; fall back silently
                 * where the platform has no JIT. */
                pcre2_jit_compile(r->ccode[i], PCRE2_JIT_COMPLETE);
        }
        return r;
}

void gws_redact_destroy(gws_redact_t *r) {
        int i;
        if (!r)
                return;
        for (i = 0; i < r->ncustom; i++) {
                free(r->cname[i]);
                pcre2_code_free(r->ccode[i]);
        }
        free(r->cname);
        free(r->ccode);
        free(r->cfail);
        free(r);
}

void gws_redact_set_match_limit(gws_redact_t *r, uint32_t limit) {
        r->match_limit = limit ? limit : GWS_REDACT_MATCH_LIMIT;
}

gws_redact_scratch_t *gws_redact_scratch_new(const gws_redact_t *r) {
        gws_redact_scratch_t *s = calloc(1, sizeof(*s));
        if (!s || !(s->md = pcre2_match_data_create(4, NULL))) {
                free(s);
                return NULL;
        }
        if (r && r->ncustom) {
                /* the JIT stack grows from 32 KB as a match needs it */
                if (!(s->mc = pcre2_match_context_create(NULL)) ||
                    !(s->js = pcre2_jit_stack_create(
                          32 * 1024, GWS_REDACT_JIT_STACK, NULL))) {
                        gws_redact_scratch_destroy(s);
                        return NULL;
                }
                pcre2_set_match_limit(s->mc, r->match_limit);
                pcre2_jit_stack_assign(s->mc, NULL, s->js);
        }
        return s;
}

void gws_redact_scratch_destroy(gws_redact_scratch_t *s) {
        if (!s)
                return;
        pcre2_match_data_free(s->md);
        pcre2_match_context_free(s->mc);
        pcre2_jit_stack_free(s->js);
        gws_buf_free(&s->a);
        gws_buf_free(&s->b);
        gws_buf_free(&s->dec);
        free(s->map);
        free(s);
}

/* The first position from \p i on where match_at() may match, or len.
 * Every retained string is scanned: in English text the trigger letters
 * ('s', 'e', ...) are everywhere, but rarely start a word, so 16 bytes are
 * tested at once (SSE2) against the trigger set, the byte before (word
 * start) and the byte after ("--"), and match_at() runs only there. */
#ifdef __SSE2__
/* Bit k: byte k of \p v is a candidate, \p pv and \p nx holding the bytes
 * before and after each. */
static inline unsigned cand16(__m128i pv, __m128i v, __m128i nx) {
        const __m128i z = _mm_setzero_si128();
#define EQ(v, c) _mm_cmpeq_epi8((v), _mm_set1_epi8(c))
/* bytes of v in [lo, lo + n] (unsigned) */
#define IN(v, lo, n)                                                           \
        _mm_cmpeq_epi8(_mm_subs_epu8(_mm_sub_epi8((v), _mm_set1_epi8(lo)),     \
                                     _mm_set1_epi8(n)),                        \
                       z)
        __m128i word = _mm_or_si128(
            IN(_mm_or_si128(pv, _mm_set1_epi8(0x20)), 'a', 25),
            IN(pv, '0', 9));
        /* T_DIGIT: not after '-', '_', '.' either (2 of 3 digit runs in
         * ids and timestamps start there) */
        __m128i dig = _mm_andnot_si128(
            _mm_or_si128(EQ(pv, '-'), _mm_or_si128(EQ(pv, '_'), EQ(pv, '.'))),
            IN(v, '0', 9));
        __m128i tw = _mm_or_si128(
            _mm_or_si128(_mm_or_si128(dig, EQ(v, 's')),
                         _mm_or_si128(EQ(v, 'A'), EQ(v, 'g'))),
            _mm_or_si128(
                _mm_or_si128(_mm_or_si128(EQ(v, 'x'), EQ(v, 'B')),
                             _mm_or_si128(EQ(v, 'b'), EQ(v, 'e'))),
                _mm_or_si128(_mm_or_si128(EQ(v, 'h'), EQ(v, 'r')),
                             EQ(v, '+'))));
        __m128i m = _mm_or_si128(
            _mm_or_si128(_mm_andnot_si128(word, tw),
                         _mm_or_si128(EQ(v, '?'), EQ(v, '&'))),
            _mm_or_si128(EQ(v, '@'), _mm_and_si128(EQ(v, '-'), EQ(nx, '-'))));
#undef EQ
#undef IN
        return (unsigned)_mm_movemask_epi8(m);
}
#endif

/* 0 if the letter at s[i] cannot start what match_at() looks for there,
 * by the byte after it: "sk", "ey", "[Bb][EeAa]", "gh"/"gi", "xo", '?' or
 * '&' then a letter, "A" then
 * I, K, S, G, R or N. Words of prose start with s, e, b or g every tenth
 * time or so, never like this: a bit of next_cand()'s block, not a
 * match_at() call and a new block each. Other candidates: 1. */
static inline int may_start(uc *s, size_t len, size_t i) {
        int n = i + 1 < len ? s[i + 1] : 0;
        switch (s[i]) {
        case 's': return n == 'k';
        case 'e': return n == 'y';
        case 'B':
        case 'b': return (n | 0x20) == 'e' || (n | 0x20) == 'a';
        case 'g': return n == 'h' || n == 'i';
        case 'x': return n == 'o' || n == 'a';
        case 'r': return n == 'k';
        case '+': return n >= '1' && n <= '9';
        case 'h': return n == 'f';
        case '?':
        case '&': return is_alpha(n);
        case 'A':
                return n == 'I' || n == 'K' || n == 'S' || n == 'G' ||
                       n == 'R' || n == 'N';
        default: return 1;
        }
}

static size_t next_cand(const gws_redact_t *r, uc *s, size_t len, size_t i) {
        unsigned t;
        if (i == 0 && len && r->trig[s[0]])
                return 0; /* no byte before the first */
        if (i == 0)
                i = 1;
#ifdef __SSE2__
        while (i + 17 <= len) {
                unsigned bits = cand16(
                    _mm_loadu_si128((const __m128i *)(s + i - 1)),
                    _mm_loadu_si128((const __m128i *)(s + i)),
                    _mm_loadu_si128((const __m128i *)(s + i + 1)));
                for (; bits; bits &= bits - 1)
                        if (may_start(s, len, i + (size_t)__builtin_ctz(bits)))
                                return i + (size_t)__builtin_ctz(bits);
                i += 16;
        }
        if (i < len && len >= 17) {
                /* The last 16 bytes, overlapping those done (the bits
                 * below i cleared), instead of up to 16 rounds of the
                 * loop below: no byte after the last, so its "next" is
                 * the 0 shifted in. */
                size_t p = len - 16;
                __m128i v = _mm_loadu_si128((const __m128i *)(s + p));
                unsigned bits =
                    cand16(_mm_loadu_si128((const __m128i *)(s + p - 1)), v,
                           _mm_srli_si128(v, 1)) &
                    (0xffffu << (i - p));
                for (; bits; bits &= bits - 1)
                        if (may_start(s, len, p + (size_t)__builtin_ctz(bits)))
                                return p + (size_t)__builtin_ctz(bits);
                return len;
        }
#endif
        for (; i < len; i++) {
                if (!(t = r->trig[s[i]]))
                        continue;
                if (t == T_ANY ||
                    (t == T_WORD && !is_alnum(s[i - 1])) ||
                    (t == T_DIGIT && !is_alnum(s[i - 1]) && s[i - 1] != '-' &&
                     s[i - 1] != '_' && s[i - 1] != '.') ||
                    (t == T_DASH && i + 1 < len && s[i + 1] == '-'))
                        return i;
        }
        return len;
}

/* Which of '@' (bit 0) and '+' (bit 1) the \p len <= 16 bytes at \p s
 * hold: two overlapping words tested for both, a third of a memchr()
 * call (the short texts gws_redact_maybe() sees: 6 bytes on average). */
static inline unsigned at_plus16(uc *s, size_t len) {
        const uint64_t ones = 0x0101010101010101ull, hi = ones << 7;
        const uint64_t at = ones * '@', plus = ones * '+';
        uint64_t a = 0, b = 0, x, y, z, w;
        uint32_t a4, b4;
        if (len >= 8) {
                memcpy(&a, s, 8);
                memcpy(&b, s + len - 8, 8);
        } else if (len >= 4) {
                memcpy(&a4, s, 4);
                memcpy(&b4, s + len - 4, 4);
                a = a4 | (uint64_t)b4 << 32;
        } else if (len) { /* 1-3 bytes, the rest 0xff: neither */
                a = ~(uint64_t)0 << 24 | s[0] | (uint64_t)s[len / 2] << 8 |
                    (uint64_t)s[len - 1] << 16;
        } else {
                return 0;
        }
        /* a zero byte where there was the one looked for (b: 0 when
         * len < 8, which holds neither) */
        x = a ^ at, y = b ^ at, z = a ^ plus, w = b ^ plus;
        return ((((x - ones) & ~x) | ((y - ones) & ~y)) & hi ? 1u : 0u) |
               ((((z - ones) & ~z) | ((w - ones) & ~w)) & hi ? 2u : 0u);
}

/* gws_redact_maybe() past the length gate: each candidate is tried. */
static int __attribute__((noinline))
maybe_scan(const gws_redact_t *r, uc *s, size_t len) {
        size_t i, ms, me;
        unsigned kind;
        for (i = next_cand(r, s, len, 0); i < len;
             i = next_cand(r, s, len, i + 1)) {
                if (match_at(r, s, len, i, 0, &ms, &me, &kind)) {
                        if (kind != K_SKIP)
                                return 1;
                        i = me - 1 > i ? me - 1 : i;
                }
        }
        return 0;
}

/* Only the '@'s of \p s tried (an e-mail's candidates). */
static int __attribute__((noinline))
maybe_email(const gws_redact_t *r, uc *s, size_t len) {
        size_t ms, me;
        unsigned kind;
        uc *at;
        for (at = memchr(s, '@', len); at;
             at = memchr(at + 1, '@', len - (size_t)(at + 1 - s)))
                if (match_at(r, s, len, (size_t)(at - s), 0, &ms, &me, &kind))
                        return 1;
        return 0;
}

int gws_redact_card_digits(const gws_redact_t *r, const char *digits,
                           size_t len) {
        uc *d = (uc *)digits;
        size_t k;
        if (!(r->enabled & 1u << GWS_RK_CARD) || len < 13 || len > 19)
                return 0;
        for (k = 0; k < len; k++)
                if (!is_digit(d[k]))
                        return 0;
        return iin_ok(d, (int)len) && luhn(d, 0, len);
}

int gws_redact_maybe(const gws_redact_t *r, const char *text, size_t len) {
        uc *s = (uc *)text;
        unsigned m;
        if (r->ncustom)
                return 1; /* patterns cannot be prefiltered cheaply */
        if (len >= r->min_len)
                return maybe_scan(r, s, len);
        /* Too short for all but an e-mail or a phone number: 87% of the
         * strings of a retained record (keys, "prod", "gw-03",
         * "10.3.0.1"; gwsieve-gen's events: 42 strings a record, 36
         * under 13 bytes). Only those with an '@' or a '+' are tried:
         * the other candidates cannot match. */
        if (!(r->enabled & (1u << GWS_RK_EMAIL | 1u << GWS_RK_PHONE)))
                return 0;
        if (len > 16) /* only when the shortest other detector is off */
                return maybe_scan(r, s, len);
        m = at_plus16(s, len) & r->short_mask;
        if (m & 2)
                return maybe_scan(r, s, len);
        return m ? maybe_email(r, s, len) : 0;
}

/* Where a pass writes: the bytes between matches are copied from \p src;
 * a match [ms, me) in the matched text stands for src[map[ms], end) where
 * end is the start of the first source unit (byte or escape) after the
 * one of byte me - 1: whole escapes, never part of one. map NULL: the
 * matched text is src itself. */
typedef struct {
        const uc *src;
        size_t slen;
        const size_t *map;
        size_t last; /* src copied up to here */
        gws_buf_t *b;
} emit_t;

static void emit_init(emit_t *e, const void *src, size_t slen,
                      const size_t *map, gws_buf_t *b) {
        e->src = src;
        e->slen = slen;
        e->map = map;
        e->last = 0;
        e->b = b;
}

/* Replaces matched [ms, me) by \p rep. @returns 0 or -1. */
static int emit_rep(emit_t *e, size_t ms, size_t me, const char *rep) {
        size_t so = ms, eo = me;
        if (e->map) {
                so = e->map[ms];
                eo = e->map[me];
                if (me > ms)
                        while (e->map[me] == e->map[me - 1])
                                eo = e->map[++me];
        }
        if (so < e->last)
                so = e->last;
        if (gws_buf_append(e->b, e->src + e->last, so - e->last) == -1 ||
            gws_buf_puts(e->b, rep) == -1)
                return -1;
        e->last = eo > so ? eo : so;
        return 0;
}

static int emit_end(emit_t *e) {
        return gws_buf_append(e->b, e->src + e->last, e->slen - e->last);
}

/* Built-in pass over \p s into \p e. @returns redactions, or -1. */
static int builtin_pass(const gws_redact_t *r, uc *s, size_t len, emit_t *e,
                        uint64_t *counts) {
        size_t i = 0, last = 0, ms, me;
        unsigned kind;
        int n = 0;
        char rep[40];

        while ((i = next_cand(r, s, len, i)) < len) {
                if (!match_at(r, s, len, i, last, &ms, &me, &kind)) {
                        i++;
                        continue;
                }
                if (kind == K_SKIP) {
                        i = me > i ? me : i + 1;
                        continue;
                }
                snprintf(rep, sizeof(rep), "[REDACTED:%s]", kind_names[kind]);
                if (emit_rep(e, ms, me, rep) == -1)
                        return -1;
                if (counts)
                        counts[kind]++;
                n++;
                last = i = me;
        }
        if (n && emit_end(e) == -1)
                return -1;
        return n;
}

/* The offset of the character after the one at \p i: UTF-8 continuation
 * bytes are skipped (a stray one counts with the byte before it). */
static size_t next_char(uc *s, size_t len, size_t i) {
        for (i++; i < len && (s[i] & 0xc0) == 0x80; i++)
                ;
        return i;
}

/* Says that custom pattern \p p failed with \p rc at byte \p start of a
 * \p len-byte string (and so redacted the rest): the first time, then at
 * each power of two of the pattern's failures, so that a pattern that
 * keeps failing is seen without a line per string. */
static void custom_failed(const gws_redact_t *r, int p, int rc,
                          size_t start, size_t len) {
        uint64_t n = __atomic_add_fetch(&r->cfail[p], 1, __ATOMIC_RELAXED);
        PCRE2_UCHAR msg[120];
        const char *name = r->cname[p] + 10; /* "[REDACTED:" */
        if (n & (n - 1))
                return;
        if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0)
                snprintf((char *)msg, sizeof(msg), "error %d", rc);
        gws_log(GWS_LOG_WARNING, "redact",
                "redact.custom[%d] \"%.*s\": %s at byte %zu of a %zu-byte "
                "string; the rest of the string was redacted (fail closed), "
                "%" PRIu64 " time(s) so far (redact.custom_match_limit %" PRIu32
                ")",
                p, (int)strlen(name) - 1, name, (const char *)msg, start, len,
                n, r->match_limit);
}

/* One custom pattern over \p in into \p e. @returns matches, or -1.
 * Global matching as Perl (and pcre2demo.c) does it: after an empty
 * match, a non-empty one is tried at the same place (else "x*|secret"
 * matches empty everywhere and never "secret"), then the search goes on
 * one character further (one byte could be inside a character). Empty
 * matches replace nothing. A match error other than no-match (the match
 * limit, the JIT stack) fails closed: from where the search stood, the
 * rest of the text is replaced (one match counted), the pass ends, and
 * custom_failed() says so. */
static int custom_pass(const gws_redact_t *r, gws_redact_scratch_t *sc,
                       int p, const char *in, size_t len, emit_t *e) {
        PCRE2_SIZE start = 0, *ov;
        uint32_t opt = 0;
        int n = 0, rc;
        while (start <= len) {
                rc = pcre2_match(r->ccode[p], (PCRE2_SPTR)in, len, start, opt,
                                 sc->md, sc->mc);
                if (rc == PCRE2_ERROR_NOMATCH && opt) {
                        /* no non-empty match here: on one character */
                        opt = 0;
                        start = next_char((uc *)in, len, start);
                        continue;
                }
                if (rc == PCRE2_ERROR_NOMATCH)
                        break;
                if (rc < 0) {
                        /* The match failed (match limit, JIT stack,
                         * ...): what it did not get through may hold a
                         * secret. Fail closed: the rest goes. */
                        custom_failed(r, p, rc, start, len);
                        if (emit_rep(e, start, len, r->cname[p]) == -1)
                                return -1;
                        n++;
                        break;
                }
                ov = pcre2_get_ovector_pointer(sc->md);
                if (ov[1] <= ov[0]) { /* empty: non-empty here? */
                        if (ov[0] >= len)
                                break;
                        start = ov[0];
                        opt = PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED;
                        continue;
                }
                if (emit_rep(e, ov[0], ov[1], r->cname[p]) == -1)
                        return -1;
                n++;
                start = ov[1];
                opt = 0;
        }
        if (n && emit_end(e) == -1)
                return -1;
        return n;
}

int gws_redact_text(const gws_redact_t *r, gws_redact_scratch_t *sc,
                    const char *text, size_t len, gws_buf_t *out,
                    uint64_t counts[GWS_RK__CNT]) {
        const char *cur = text;
        size_t curlen = len;
        gws_buf_t *dst;
        emit_t e;
        int n, total, i;

        gws_buf_reset(&sc->a);
        emit_init(&e, text, len, NULL, &sc->a);
        if ((total = builtin_pass(r, (uc *)text, len, &e, counts)) < 0)
                return -1;
        if (total) {
                cur = sc->a.buf;
                curlen = sc->a.len;
        }
        for (i = 0; i < r->ncustom; i++) {
                dst = cur == sc->a.buf ? &sc->b : &sc->a;
                gws_buf_reset(dst);
                emit_init(&e, cur, curlen, NULL, dst);
                if ((n = custom_pass(r, sc, i, cur, curlen, &e)) < 0)
                        return -1;
                if (n) {
                        total += n;
                        if (counts)
                                counts[GWS_RK_CUSTOM] += (uint64_t)n;
                        cur = dst->buf;
                        curlen = dst->len;
                }
        }
        if (!total)
                return 0;
        return gws_buf_append(out, cur, curlen) == -1 ? -1 : total;
}

static int hexval(int c) {
        return is_digit(c) ? c - '0'
               : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
                                                        : -1;
}

/* The code unit of "\uXXXX" at t[i], or -1. */
static long u_escape(uc *t, size_t len, size_t i) {
        long v = 0;
        int k, h;
        if (i + 6 > len || t[i] != '\\' || t[i + 1] != 'u')
                return -1;
        for (k = 2; k < 6; k++) {
                if ((h = hexval(t[i + k])) < 0)
                        return -1;
                v = v * 16 + h;
        }
        return v;
}

/* Decodes the JSON escapes of \p t into sc->dec, sc->map (see the
 * scratch). One-character escapes and \uXXXX (a surrogate pair as one
 * character) become what they stand for in UTF-8; anything else
 * (a lone surrogate, "\x", "\u12") stays as the bytes it is.
 * @returns 0 or -1. */
static int decode_escapes(gws_redact_scratch_t *sc, uc *t, size_t len) {
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        size_t i = 0, k, n;
        unsigned char *d;
        const char *c;
        long cp, lo;

        gws_buf_reset(&sc->dec);
        if (gws_buf_reserve(&sc->dec, len) == -1)
                return -1;
        if (len + 1 > sc->mapcap) {
                size_t *m = realloc(sc->map, (len + 1) * sizeof(*m));
                if (!m)
                        return -1;
                sc->map = m;
                sc->mapcap = len + 1;
        }
        d = (unsigned char *)sc->dec.buf;
        for (k = 0; i < len; k += n) {
                n = 1; /* decoded bytes of this unit: never more than its
                        * source bytes, so dec (len + 1) holds them */
                if (t[i] != '\\' || i + 1 >= len) {
                        d[k] = t[i];
                        sc->map[k] = i++;
                        continue;
                }
                if (t[i + 1] && (c = strchr(from, t[i + 1]))) {
                        d[k] = (unsigned char)to[c - from];
                        sc->map[k] = i;
                        i += 2;
                        continue;
                }
                cp = u_escape(t, len, i);
                if (cp >= 0xd800 && cp <= 0xdbff &&
                    (lo = u_escape(t, len, i + 6)) >= 0xdc00 && lo <= 0xdfff)
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                else if (cp >= 0xd800 && cp <= 0xdfff)
                        cp = -1; /* lone surrogate */
                if (cp < 0) {
                        /* the backslash as it is; what follows is read
                         * on its own (an escaped backslash was taken
                         * above, so it is no escape's) */
                        d[k] = t[i];
                        sc->map[k] = i++;
                        continue;
                }
                if (cp < 0x80) {
                        d[k] = (unsigned char)cp;
                } else if (cp < 0x800) {
                        d[k] = (unsigned char)(0xc0 | cp >> 6);
                        d[k + 1] = (unsigned char)(0x80 | (cp & 0x3f));
                        n = 2;
                } else if (cp < 0x10000) {
                        d[k] = (unsigned char)(0xe0 | cp >> 12);
                        d[k + 1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
                        d[k + 2] = (unsigned char)(0x80 | (cp & 0x3f));
                        n = 3;
                } else {
                        d[k] = (unsigned char)(0xf0 | cp >> 18);
                        d[k + 1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
                        d[k + 2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
                        d[k + 3] = (unsigned char)(0x80 | (cp & 0x3f));
                        n = 4;
                }
                for (size_t j = 0; j < n; j++)
                        sc->map[k + j] = i;
                i += cp >= 0x10000 ? 12 : 6;
        }
        sc->dec.len = k;
        sc->map[k] = len;
        return 0;
}

/* One pass of gws_redact_text_escaped() over *\p cur: \p pass is -1 for
 * the built-ins, else a custom pattern. On a match the result replaces
 * *\p cur (in sc->a or sc->b). sc->dec and sc->map hold *\p cur decoded
 * unless *\p stale (then they are made first; a pass that replaces
 * something leaves them stale). @returns redactions, or -1. */
static int escaped_pass(const gws_redact_t *r, gws_redact_scratch_t *sc,
                        int pass, const char **cur, size_t *curlen,
                        int *stale, uint64_t *counts) {
        gws_buf_t *dst = *cur == sc->a.buf ? &sc->b : &sc->a;
        emit_t e;
        int n;

        if (*stale && decode_escapes(sc, (uc *)*cur, *curlen) == -1)
                return -1;
        *stale = 0;
        gws_buf_reset(dst);
        emit_init(&e, *cur, *curlen, sc->map, dst);
        if (pass < 0)
                n = gws_redact_maybe(r, sc->dec.buf, sc->dec.len)
                        ? builtin_pass(r, (uc *)sc->dec.buf, sc->dec.len, &e,
                                       counts)
                        : 0;
        else
                n = custom_pass(r, sc, pass, sc->dec.buf, sc->dec.len, &e);
        if (n > 0) {
                *cur = dst->buf;
                *curlen = dst->len;
                *stale = 1;
        }
        return n;
}

int gws_redact_text_escaped(const gws_redact_t *r, gws_redact_scratch_t *sc,
                            const char *text, size_t len, gws_buf_t *out,
                            uint64_t counts[GWS_RK__CNT]) {
        const char *cur = text;
        size_t curlen = len;
        int n, total = 0, i, stale = 1;

        if (!memchr(text, '\\', len))
                return gws_redact_maybe(r, text, len)
                           ? gws_redact_text(r, sc, text, len, out, counts)
                           : 0;
        /* Each pass matches the text decoded and replaces the bytes that
         * spell a match (whole escapes); the next pass decodes the
         * result again if it changed (a replacement holds no backslash). */
        for (i = -1; i < r->ncustom; i++) {
                if ((n = escaped_pass(r, sc, i, &cur, &curlen, &stale,
                                      counts)) < 0)
                        return -1;
                total += n;
                if (i >= 0 && counts)
                        counts[GWS_RK_CUSTOM] += (uint64_t)n;
        }
        if (!total)
                return 0;
        return gws_buf_append(out, cur, curlen) == -1 ? -1 : total;
}

/* ------------------------------------------------------------------------
 * client_ip truncation
 * ------------------------------------------------------------------------ */

/* "1".."65535" (the whole rest of a NUL-terminated string). */
static int is_port(const char *p) {
        long v = 0;
        int n;
        for (n = 0; is_digit(p[n]); n++)
                if ((v = v * 10 + (p[n] - '0')) > 65535)
                        return 0;
        return n > 0 && !p[n] && v > 0;
}

/* Truncates the one address \p p .. \p p + \p n (no spaces around it)
 * into \p out. @returns 0, 1 if it is no address (\p out untouched), or
 * -1 on allocation failure. */
static int ip_one(const char *p, size_t n, gws_buf_t *out) {
        static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0,    0,
                                                   0, 0, 0, 0, 0xff, 0xff};
        char tmp[64], res[INET6_ADDRSTRLEN], *addr = tmp, *c;
        unsigned char a[16];
        int bracket = 0;

        if (n >= sizeof(tmp) || memchr(p, '\0', n))
                return 1;
        memcpy(tmp, p, n);
        tmp[n] = '\0';
        /* the common case first: a bare IPv4 address */
        if (inet_pton(AF_INET, tmp, a) == 1)
                goto v4;
        if (tmp[0] == '[') { /* [v6] or [v6]:port */
                if (!(c = strchr(tmp, ']')) ||
                    (c[1] && (c[1] != ':' || !is_port(c + 2))))
                        return 1;
                *c = '\0';
                addr = tmp + 1;
                bracket = 1;
        } else if ((c = strchr(tmp, ':')) && !strchr(c + 1, ':')) {
                /* one colon: IPv4:port (IPv6 has at least two) */
                if (!is_port(c + 1))
                        return 1;
                *c = '\0';
                if (inet_pton(AF_INET, tmp, a) == 1)
                        goto v4;
                return 1;
        }
        if ((c = strchr(addr, '%'))) { /* zone: fe80::1%eth0 */
                if (!c[1])
                        return 1;
                *c = '\0';
        }
        if (inet_pton(AF_INET6, addr, a) == 1) {
                if (!memcmp(a, v4mapped, sizeof(v4mapped)))
                        a[15] = 0; /* ::ffff:a.b.c.d: the IPv4 /24 */
                else if (a[0] == 0x20 && a[1] == 0x02)
                        memset(a + 5, 0, 11); /* 6to4: its /48 is the
                                               * client's IPv4 address
                                               * (bits 16-47): to that
                                               * address's /24 */
                else
                        memset(a + 6, 0, 10);
                if (!inet_ntop(AF_INET6, a, res, sizeof(res)))
                        return 1;
                return gws_buf_puts(out, res);
        }
        if (!bracket || inet_pton(AF_INET, addr, a) != 1)
                return 1;
v4:
        a[3] = 0;
        if (!inet_ntop(AF_INET, a, res, sizeof(res)))
                return 1;
        return gws_buf_puts(out, res);
}

static inline int is_sp(int c) {
        return c == ' ' || c == '\t';
}

int gws_redact_ip_truncate(const char *ip, size_t len, gws_buf_t *out) {
        const char *p = ip, *end = ip + len, *e, *b, *f;
        int nrep = 0, rc;

        if (!len)
                return 0;
        for (;;) {
                if (!(e = memchr(p, ',', (size_t)(end - p))))
                        e = end;
                /* element [b, f) of [p, e): the spaces around it kept */
                for (b = p; b < e && is_sp(*b); b++)
                        ;
                for (f = e; f > b && is_sp(f[-1]); f--)
                        ;
                if (b > p && gws_buf_append(out, p, (size_t)(b - p)) == -1)
                        return -1;
                if (f > b) {
                        if ((rc = ip_one(b, (size_t)(f - b), out)) == -1)
                                return -1;
                        if (rc == 1) {
                                if (gws_buf_puts(out, "[REDACTED:ip]") == -1)
                                        return -1;
                                nrep++;
                        }
                }
                if (e > f && gws_buf_append(out, f, (size_t)(e - f)) == -1)
                        return -1;
                if (e == end)
                        return nrep;
                if (gws_buf_append(out, ",", 1) == -1)
                        return -1;
                p = e + 1;
        }
}

/* ------------------------------------------------------------------------
 * address literals in text (dead letters under redact.ip_truncate)
 * ------------------------------------------------------------------------ */

static inline int in_addr_run(int c) { /* [0-9A-Fa-f:.] */
        return hexval(c) >= 0 || c == ':' || c == '.';
}

/* IPv4 look-alike at s[a..e): 1 with *end after its 4th group when its
 * first four groups are 1-3 digits and a fifth, if any, does not start
 * with a digit (a host name "1.2.3.4.nip.io" holds one; "1.2.3.4.5", an
 * OID or a version, does not). */
static int v4_like(uc *s, size_t a, size_t e, size_t *end) {
        size_t i = a, g0;
        int g;
        for (g = 0; g < 4; g++) {
                if (g && (i >= e || s[i++] != '.'))
                        return 0;
                g0 = i;
                while (i < e && is_digit(s[i]) && i - g0 < 4)
                        i++;
                if (i == g0 || i - g0 > 3)
                        return 0;
        }
        if (i < e && s[i] != '.')
                return 0; /* a hex letter or more digits glued on */
        if (i + 1 < e && is_digit(s[i + 1]))
                return 0;
        *end = i;
        return 1;
}

/* Replaces the address at s[a..e) by its truncation (when that differs)
 * or, \p replace, by "[REDACTED:ip]". @returns 1 if replaced, 0 if not,
 * -1. */
static int ip_literal(uc *s, size_t a, size_t e, int replace, emit_t *em,
                      gws_buf_t *tmp, uint64_t *counts, int *nrep) {
        int rc;
        gws_buf_reset(tmp);
        if ((rc = ip_one((const char *)s + a, e - a, tmp)) == -1)
                return -1;
        if (rc == 0) {
                if (tmp->len == e - a && !memcmp(tmp->buf, s + a, e - a))
                        return 0; /* already truncated */
                return emit_rep(em, a, e, tmp->buf) == -1 ? -1 : 1;
        }
        if (!replace)
                return 0;
        if (counts)
                counts[GWS_RK_IP]++;
        (*nrep)++;
        return emit_rep(em, a, e, "[REDACTED:ip]") == -1 ? -1 : 1;
}

/* The address literals of \p s (see gws_redact_ip_text()) into \p em.
 * @returns the changes, or -1. */
static int ip_pass(uc *s, size_t len, emit_t *em, uint64_t *counts) {
        gws_buf_t tmp = {0};
        size_t i = 0, a, b, e, p, q, v4e;
        int n = 0, rc = 0, colons, dbl, nrep = 0;

        while (i < len && rc >= 0) {
                if (!in_addr_run(s[i])) {
                        i++;
                        continue;
                }
                for (a = i, b = i; b < len && in_addr_run(s[b]); b++)
                        ;
                i = b;
                /* glued to a word before: only after a label's colon
                 * ("host:1.2.3.4"; "std::x", "v1.2.3.4" are no address) */
                if (a > 0 && (is_alnum(s[a - 1]) || s[a - 1] == '_')) {
                        if (s[a] != ':' || a + 1 >= b || s[a + 1] == ':')
                                continue;
                        a++;
                }
                while (a < b && s[a] == '.')
                        a++;
                e = b;
                while (e > a && s[e - 1] == '.')
                        e--; /* the end of a sentence */
                if (e - a >= 2 && s[e - 1] == ':' && s[e - 2] != ':')
                        e--; /* "2001:db8::1: refused" */
                if (e == b && b < len && (is_alnum(s[b]) || s[b] == '_'))
                        continue; /* glued to a word after */
                for (colons = 0, dbl = 0, p = a; p < e; p++)
                        if (s[p] == ':') {
                                colons++;
                                dbl |= p + 1 < e && s[p + 1] == ':';
                        }
                /* IPv6: read, or (fail closed) replaced when it looks
                 * like one: "::", or 6 groups and more (a MAC address
                 * too); "12:00:00" is a time */
                if (colons >= 2 &&
                    (rc = ip_literal(s, a, e, dbl || colons >= 5, em, &tmp,
                                     counts, &nrep)) != 0) {
                        n += rc > 0;
                        continue;
                }
                /* IPv4 in each colon-separated piece ("1.2.3.4:80") */
                for (p = a; p < e && rc >= 0; p = q + 1) {
                        for (q = p; q < e && s[q] != ':'; q++)
                                ;
                        if (v4_like(s, p, q, &v4e) &&
                            (rc = ip_literal(s, p, v4e, 1, em, &tmp, counts,
                                             &nrep)) > 0)
                                n++;
                }
        }
        gws_buf_free(&tmp);
        if (rc < 0 || (n && emit_end(em) == -1))
                return -1;
        return n;
}

int gws_redact_ip_text(gws_redact_scratch_t *sc, const char *text,
                       size_t len, int escaped, gws_buf_t *out,
                       uint64_t counts[GWS_RK__CNT]) {
        emit_t em;
        if (escaped && memchr(text, '\\', len)) {
                if (decode_escapes(sc, (uc *)text, len) == -1)
                        return -1;
                emit_init(&em, text, len, sc->map, out);
                return ip_pass((uc *)sc->dec.buf, sc->dec.len, &em, counts);
        }
        emit_init(&em, text, len, NULL, out);
        return ip_pass((uc *)text, len, &em, counts);
}
