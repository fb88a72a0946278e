/* record.c - output records from the token tape: trim, truncate, redact. */
#include "gwsieve/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "gwsieve/json.h"

/* ------------------------------------------------------------------------
 * private types
 * ------------------------------------------------------------------------ */

typedef struct {
        char **v;
        size_t *len;
        int n;
} paths_t;

struct gws_record_s {
        const gws_config_t *cfg;
        paths_t allow, deny, bodies;
        gws_redact_t *red;           /* NULL when redaction is off */
        gws_redact_scratch_t *rscratch;
        gws_buf_t path;              /* current dotted path */
        gws_buf_t dec;               /* decoded string */
        gws_buf_t red_out;           /* redacted text */
        gws_buf_t body;              /* rendered body before truncation */
        gws_jdoc_t adoc;             /* alerts re-parsed for redaction */
        gws_record_stats_t st;       /* records sent (gws_record_sent()):
                                      * owner writes, relaxed atomics */
        gws_record_stats_t cur;      /* the record being written (owner
                                      * only), added to st once sent */
        int cur_any;                 /* cur is not all zero */
        int trimming;                /* allow or deny non-empty */
        uint32_t ip_meta;            /* redact.ip_truncate: token of the
                                      * record's metadata object (its
                                      * address members are truncated),
                                      * else NO_TOK */
        int dlq_ip;                  /* redact.ip_truncate on a dead
                                      * letter's payload (see
                                      * gws_record_redact_dlq()) */
        uint32_t keep_tok;           /* an alert's alert_id value, written
                                      * as it is, else NO_TOK */
        uint32_t own_obj;            /* an alert's root object: its
                                      * members are gwsieve's (alert.md),
                                      * not redact.fields'; else NO_TOK */
        int nchg;                    /* addresses truncated (not counted
                                      * as redactions) in this call */
        gws_buf_t ip_out;            /* text with its addresses cut */
        gws_buf_t knames;            /* member names redaction rewrote,
                                      * of the objects being written
                                      * (each a size_t length, then the
                                      * name as written) */
        size_t kmark;                /* where the innermost object's
                                      * begin in knames */
        gws_buf_t kdec;              /* a name decoded (key_taken()) */
        paths_t fields;              /* redact.fields, in lower case
                                      * (with redaction only) */
        uint32_t field_first[64];    /* by length % 64: bit (c | 0x20) & 31
                                      * of each name's first byte c */
        uint32_t field_last[64];     /* the same of its last byte */
};

#define NO_TOK UINT32_MAX

/* The contract's required fields survive any allow list. */
static const char *const required[] = {"id", "ts", "gateway_id", "provider",
                                       "model", "status", "latency_ms"};

#define INC(x, n) __atomic_add_fetch(&(x), (n), __ATOMIC_RELAXED)
/* Counts \p n of \p field for the record being written: into the stats
 * only once it is sent (gws_record_sent()). */
#define CUR(rw, field, n) ((rw)->cur.field += (n), (rw)->cur_any = 1)

/* Appends a string literal: its length known, no strlen() and no libc
 * memcpy() (the sieve member's five pieces, 60 instructions each with
 * gws_buf_puts()). */
#define PUT_LIT(b, lit) gws_buf_append((b), (lit), sizeof(lit) - 1)

/* ------------------------------------------------------------------------
 * setup
 * ------------------------------------------------------------------------ */

static void paths_free(paths_t *p) {
        int i;
        for (i = 0; i < p->n; i++)
                free(p->v[i]);
        free(p->v);
        free(p->len);
        memset(p, 0, sizeof(*p));
}

/* Room in \p p for the strings of array \p arr. @returns 1 (room made),
 * 0 (no array, or an empty one: nothing to load) or -1 (out of memory,
 * said in \p errstr). */
static int paths_reserve(paths_t *p, json_t *arr, char *errstr,
                         size_t errstr_size) {
        if (!arr || !json_is_array(arr) || !json_array_size(arr))
                return 0;
        p->v = calloc(json_array_size(arr), sizeof(*p->v));
        p->len = calloc(json_array_size(arr), sizeof(*p->len));
        if (p->v && p->len)
                return 1;
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
}

static int paths_load(paths_t *p, json_t *arr, const char *key, char *errstr,
                      size_t errstr_size) {
        size_t i;
        json_t *v;
        int r;
        if ((r = paths_reserve(p, arr, errstr, errstr_size)) <= 0)
                return r;
        json_array_foreach(arr, i, v) {
                const char *s = json_string_value(v);
                if (!json_is_string(v) || !*s || *s == '.' ||
                    s[strlen(s) - 1] == '.' || strstr(s, "..")) {
                        snprintf(errstr, errstr_size,
                                 "\"%s[%zu]\": expected a dotted path like "
                                 "\"metadata.internal\"", key, i);
                        return -1;
                }
                if (!(p->v[p->n] = strdup(s)))
                        goto nomem;
                p->len[p->n++] = strlen(s);
        }
        return 0;
nomem:
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
}

/* The bit of byte \p c in rw->field_first/field_last (letters in any
 * case alike). */
static inline uint32_t field_bit(char c) {
        return 1u << ((c | 0x20) & 31);
}

/* redact.fields into rw->fields: names of 1 to 128 bytes, not a field
 * the contract requires (its value is read from the record), kept in
 * lower case (ASCII) for fields_has(). @returns 0 or -1 (\p errstr). */
static int fields_load(gws_record_t *rw, json_t *arr, char *errstr,
                       size_t errstr_size) {
        paths_t *p = &rw->fields;
        size_t i, k, n;
        json_t *v;
        int r;
        if ((r = paths_reserve(p, arr, errstr, errstr_size)) <= 0)
                return r;
        json_array_foreach(arr, i, v) {
                const char *s = json_string_value(v);
                n = json_string_length(v);
                if (!json_is_string(v) || !n || n > 128 ||
                    memchr(s, '\0', n)) {
                        snprintf(errstr, errstr_size,
                                 "\"redact.fields[%zu]\": expected a member "
                                 "name of 1 to 128 bytes, like "
                                 "\"authorization\"",
                                 i);
                        return -1;
                }
                for (k = 0; k < sizeof(required) / sizeof(*required); k++)
                        if (!strcasecmp(s, required[k])) {
                                snprintf(errstr, errstr_size,
                                         "\"redact.fields[%zu]\": \"%.128s\" "
                                         "names \"%s\", a field every "
                                         "record keeps as it came "
                                         "(trim.deny cannot remove it "
                                         "either)",
                                         i, s, required[k]);
                                return -1;
                        }
                if (!(p->v[p->n] = strdup(s)))
                        goto nomem;
                for (k = 0; k < n; k++)
                        if (p->v[p->n][k] >= 'A' && p->v[p->n][k] <= 'Z')
                                p->v[p->n][k] |= 0x20;
                p->len[p->n++] = n;
                rw->field_first[n % 64] |= field_bit(s[0]);
                rw->field_last[n % 64] |= field_bit(s[n - 1]);
        }
        return 0;
nomem:
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
}

/* 0 if no name of redact.fields has \p n bytes with the first and last
 * bytes of \p s: two bit tests, inline (by the length alone, out of
 * line, 15 names took 2,600 instructions per retained record). */
static inline int fields_may(const gws_record_t *rw, const char *s,
                             size_t n) {
        return n && (rw->field_first[n % 64] & field_bit(s[0])) &&
               (rw->field_last[n % 64] & field_bit(s[n - 1]));
}

/* fields_has() past fields_may(): \p s, \p n the name (decoded). */
static int __attribute__((noinline))
fields_match(const gws_record_t *rw, const char *s, size_t n) {
        size_t k;
        int i;
        for (i = 0; i < rw->fields.n; i++) {
                const char *f = rw->fields.v[i];
                if (rw->fields.len[i] != n)
                        continue;
                for (k = 0; k < n; k++) {
                        unsigned char c = (unsigned char)s[k];
                        if ((c >= 'A' && c <= 'Z' ? c | 0x20 : c) !=
                            (unsigned char)f[k])
                                break;
                }
                if (k == n)
                        return 1;
        }
        return 0;
}

/* fields_has() of a name with escapes: decoded first. */
static int __attribute__((noinline))
fields_has_esc(const gws_record_t *rw, const gws_jdoc_t *doc,
               const gws_jtok_t *kt) {
        char tmp[6 * 128]; /* each of 128 bytes escaped as \uXXXX */
        size_t n;
        if (kt->len - 2 > sizeof(tmp))
                return 0;
        n = gws_json_str_decode(doc, kt, tmp);
        return fields_may(rw, tmp, n) && fields_match(rw, tmp, n);
}

/* 1 if member name \p kt is one of redact.fields (ASCII letters in any
 * case, escapes decoded). */
static inline int fields_has(const gws_record_t *rw, const gws_jdoc_t *doc,
                             const gws_jtok_t *kt) {
        const char *s = doc->buf + kt->start + 1;
        size_t n = kt->len - 2;
        if (kt->flags & GWS_JF_ESC)
                return fields_has_esc(rw, doc, kt);
        return fields_may(rw, s, n) && fields_match(rw, s, n);
}

/* Writes the value of a member fields_has() named: "[REDACTED:field]"
 * whatever it is (a string, a number, an object), null as it is.
 * @returns 0 or -1. */
static int put_field_redacted(gws_record_t *rw, const gws_jtok_t *vt,
                              gws_buf_t *out) {
        if (vt->type == GWS_JT_NULL)
                return PUT_LIT(out, "null");
        CUR(rw, redactions[GWS_RK_FIELD], 1);
        return PUT_LIT(out, "\"[REDACTED:field]\"");
}

gws_record_t *gws_record_new(const gws_config_t *cfg, char *errstr,
                             size_t errstr_size) {
        gws_record_t *rw = calloc(1, sizeof(*rw));
        const char **builtins = NULL, **names = NULL, **pats = NULL;
        size_t i, n = 0;
        json_t *v;

        if (!rw) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        rw->cfg = cfg;
        rw->ip_meta = NO_TOK;
        rw->keep_tok = NO_TOK;
        rw->own_obj = NO_TOK;
        if (paths_load(&rw->allow, cfg->trim_allow, "trim.allow", errstr,
                       errstr_size) ||
            paths_load(&rw->deny, cfg->trim_deny, "trim.deny", errstr,
                       errstr_size) ||
            paths_load(&rw->bodies, cfg->trim_body_fields, "trim.body_fields",
                       errstr, errstr_size))
                goto err;
        rw->trimming = rw->allow.n || rw->deny.n;

        if (cfg->redact_enabled) {
                json_t *b = cfg->redact_builtins, *c = cfg->redact_custom;
                if (b && json_is_array(b)) {
                        builtins = calloc(json_array_size(b) + 1,
                                          sizeof(*builtins));
                        if (!builtins)
                                goto nomem;
                        json_array_foreach(b, i, v) {
                                if (!json_is_string(v)) {
                                        snprintf(errstr, errstr_size,
                                                 "\"redact.builtins[%zu]\": "
                                                 "expected a detector name",
                                                 i);
                                        goto err;
                                }
                                builtins[i] = json_string_value(v);
                        }
                }
                if (c && json_is_array(c) && (n = json_array_size(c))) {
                        names = calloc(n, sizeof(*names));
                        pats = calloc(n, sizeof(*pats));
                        if (!names || !pats)
                                goto nomem;
                        json_array_foreach(c, i, v) {
                                json_t *nm = json_object_get(v, "name");
                                json_t *pt = json_object_get(v, "pattern");
                                if (!json_is_string(nm) ||
                                    !json_is_string(pt) ||
                                    json_object_size(v) != 2) {
                                        snprintf(errstr, errstr_size,
                                                 "\"redact.custom[%zu]\": "
                                                 "expected {\"name\": ..., "
                                                 "\"pattern\": ...}", i);
                                        goto err;
                                }
                                names[i] = json_string_value(nm);
                                pats[i] = json_string_value(pt);
                        }
                }
                if (!(rw->red = gws_redact_new(builtins, names, pats, (int)n,
                                               errstr, errstr_size)))
                        goto err;
                gws_redact_set_match_limit(
                    rw->red, (uint32_t)cfg->redact_custom_match_limit);
        }
        /* checked with redaction off too (check-config says what is
         * wrong before it is turned on), used only with it on */
        if (fields_load(rw, cfg->redact_fields, errstr, errstr_size))
                goto err;
        if (!rw->red)
                paths_free(&rw->fields);
        /* dead letters' address literals need it without redaction too */
        if ((rw->red || cfg->redact_ip_truncate) &&
            !(rw->rscratch = gws_redact_scratch_new(rw->red)))
                goto nomem;
        free(builtins);
        free(names);
        free(pats);
        return rw;
nomem:
        snprintf(errstr, errstr_size, "out of memory");
err:
        free(builtins);
        free(names);
        free(pats);
        gws_record_destroy(rw);
        return NULL;
}

void gws_record_destroy(gws_record_t *rw) {
        if (!rw)
                return;
        paths_free(&rw->allow);
        paths_free(&rw->deny);
        paths_free(&rw->bodies);
        paths_free(&rw->fields);
        gws_redact_scratch_destroy(rw->rscratch);
        gws_redact_destroy(rw->red);
        gws_buf_free(&rw->path);
        gws_buf_free(&rw->dec);
        gws_buf_free(&rw->red_out);
        gws_buf_free(&rw->ip_out);
        gws_buf_free(&rw->knames);
        gws_buf_free(&rw->kdec);
        gws_buf_free(&rw->body);
        gws_json_free(&rw->adoc);
        free(rw);
}

void gws_record_stats_add(const gws_record_t *rw, gws_record_stats_t *st) {
        int i;
#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
        for (i = 0; i < GWS_RK__CNT; i++)
                st->redactions[i] += LD(rw->st.redactions[i]);
        st->bodies_truncated += LD(rw->st.bodies_truncated);
        st->bodies_dropped += LD(rw->st.bodies_dropped);
        st->fields_trimmed += LD(rw->st.fields_trimmed);
#undef LD
}

/* Starts a record: the counts of one written before and not sent are
 * dropped (it is in no output). */
static void record_begin(gws_record_t *rw) {
        if (rw->cur_any) {
                memset(&rw->cur, 0, sizeof(rw->cur));
                rw->cur_any = 0;
        }
}

void gws_record_sent(gws_record_t *rw) {
        int i;
        if (!rw->cur_any)
                return;
        for (i = 0; i < GWS_RK__CNT; i++)
                if (rw->cur.redactions[i])
                        INC(rw->st.redactions[i], rw->cur.redactions[i]);
        if (rw->cur.bodies_truncated)
                INC(rw->st.bodies_truncated, rw->cur.bodies_truncated);
        if (rw->cur.bodies_dropped)
                INC(rw->st.bodies_dropped, rw->cur.bodies_dropped);
        if (rw->cur.fields_trimmed)
                INC(rw->st.fields_trimmed, rw->cur.fields_trimmed);
        memset(&rw->cur, 0, sizeof(rw->cur));
        rw->cur_any = 0;
}

/* ------------------------------------------------------------------------
 * writing
 * ------------------------------------------------------------------------ */

/* The text of string token \p t: *\p s, *\p n point at its bytes in
 * the document, or, when it has escapes, at it decoded into rw->dec.
 * @returns 0 or -1. */
static int str_decoded(gws_record_t *rw, const gws_jdoc_t *doc,
                       const gws_jtok_t *t, const char **s, size_t *n) {
        *s = doc->buf + t->start + 1;
        *n = t->len - 2;
        if (!(t->flags & GWS_JF_ESC))
                return 0;
        gws_buf_reset(&rw->dec);
        if (gws_buf_reserve(&rw->dec, t->len) == -1)
                return -1;
        rw->dec.len = gws_json_str_decode(doc, t, rw->dec.buf);
        *s = rw->dec.buf;
        *n = rw->dec.len;
        return 0;
}

/* Adds \p counts to the redactions of the record being written. */
static void count_redactions(gws_record_t *rw, const uint64_t *counts) {
        int i;
        for (i = 0; i < GWS_RK__CNT; i++)
                if (counts[i])
                        CUR(rw, redactions[i], counts[i]);
}

/* The address literals of *\p s, *\p n (\p escaped: JSON escapes in it)
 * truncated for a dead letter (rw->dlq_ip) into rw->ip_out: on return
 * they point at the text to write. @returns 0 or -1. */
static int text_ip_cut(gws_record_t *rw, const char **s, size_t *n,
                       int escaped) {
        uint64_t counts[GWS_RK__CNT] = {0};
        int r;
        gws_buf_reset(&rw->ip_out);
        if ((r = gws_redact_ip_text(rw->rscratch, *s, *n, escaped,
                                    &rw->ip_out, counts)) <= 0)
                return r;
        count_redactions(rw, counts);
        rw->nchg += r;
        *s = rw->ip_out.buf;
        *n = rw->ip_out.len;
        return 0;
}

/* Redacts decoded text *\p s, *\p n when needed: on return they point at
 * the text to write (the same, rw->red_out or rw->ip_out). Decoded text
 * that still holds a backslash may be JSON written as a string (a
 * double-encoded body: Cloudflare's request_body, a message list as
 * text): it is matched with its escapes decoded too, as a dead letter's
 * text is, so "\nsk-..." is a key at a word start, "\u0073k-..." a key,
 * and a match replaces whole escapes (an e-mail after "\t" took its "t"
 * and left "\[REDACTED:email]", breaking the JSON inside).
 * @returns 0 or -1. */
static int text_redacted(gws_record_t *rw, const char **s, size_t *n) {
        int r, esc;
        if (rw->red && ((esc = memchr(*s, '\\', *n) != NULL) ||
                        gws_redact_maybe(rw->red, *s, *n))) {
                uint64_t counts[GWS_RK__CNT] = {0};
                gws_buf_reset(&rw->red_out);
                if ((r = esc ? gws_redact_text_escaped(
                                   rw->red, rw->rscratch, *s, *n,
                                   &rw->red_out, counts)
                             : gws_redact_text(rw->red, rw->rscratch, *s,
                                               *n, &rw->red_out, counts)) <
                    0)
                        return -1;
                if (r > 0) {
                        count_redactions(rw, counts);
                        *s = rw->red_out.buf;
                        *n = rw->red_out.len;
                }
        }
        return rw->dlq_ip ? text_ip_cut(rw, s, n, 0) : 0;
}

/* Appends \p s (decoded text) redacted as a JSON string literal. */
static int put_text(gws_record_t *rw, const char *s, size_t n,
                    gws_buf_t *out) {
        if (text_redacted(rw, &s, &n) == -1)
                return -1;
        return gws_buf_json_str(out, s, n);
}

/* put_string() for a token that may need redacting (or its addresses
 * cut): decoded, redacted, re-encoded if anything changed. */
static int __attribute__((noinline))
put_string_slow(gws_record_t *rw, const gws_jdoc_t *doc, const gws_jtok_t *t,
                gws_buf_t *out) {
        const char *raw = doc->buf + t->start, *s, *was;
        size_t n;

        if (str_decoded(rw, doc, t, &s, &n) == -1)
                return -1;
        was = s;
        if (text_redacted(rw, &s, &n) == -1)
                return -1;
        if (s == was) /* nothing redacted: the bytes as written */
                return gws_buf_append(out, raw, t->len);
        return gws_buf_json_str(out, s, n) == -1 ? -1 : 1;
}

/* Appends a string token, redacted when needed (raw copy otherwise).
 * The common case inline, without decoding or text_redacted(): a
 * retained record has 42 strings (gwsieve-gen's events), and the
 * prefilter passes nearly all. @returns 0 (the token's bytes as
 * written), 1 (its text rewritten) or -1. */
static inline int put_string(gws_record_t *rw, const gws_jdoc_t *doc,
                             const gws_jtok_t *t, gws_buf_t *out) {
        const char *raw = doc->buf + t->start;

        if (rw->dlq_ip || (rw->red && ((t->flags & GWS_JF_ESC) ||
                                       gws_redact_maybe(rw->red, raw + 1,
                                                        t->len - 2))))
                return put_string_slow(rw, doc, t, out);
        return gws_buf_append(out, raw, t->len);
}

/* 1 if the name \p name (\p n bytes as written, quotes included, by
 * gws_buf_json_str() and a "#N") is taken in object \p obj: by a name
 * of its input (decoded; one redaction rewrites too only adds a
 * suffix), or by a name rewritten before it (rw->knames from
 * rw->kmark, as written). @returns 1, 0, or -1 out of memory. */
static int key_taken(gws_record_t *rw, const gws_jdoc_t *doc, uint32_t obj,
                     const char *name, size_t n) {
        const gws_jtok_t *o = &doc->toks[obj];
        gws_jdoc_t nd = {0};
        gws_jtok_t nt = {0};
        size_t at, len, dn;
        const char *s;
        uint32_t k;

        for (at = rw->kmark; at < rw->knames.len; at += sizeof(len) + len) {
                memcpy(&len, rw->knames.buf + at, sizeof(len));
                if (len == n &&
                    !memcmp(rw->knames.buf + at + sizeof(len), name, n))
                        return 1;
        }
        /* decoded: the input may spell a name with escapes */
        if (gws_buf_reserve(&rw->kdec, n * 2) == -1)
                return -1;
        nd.buf = name;
        nt.len = (uint32_t)n;
        nt.flags = memchr(name, '\\', n) ? GWS_JF_ESC : 0;
        dn = gws_json_str_decode(&nd, &nt, rw->kdec.buf);
        s = rw->kdec.buf + n; /* room for an input name's n bytes */
        for (k = obj + 1; k < o->next; k = doc->toks[k + 1].next) {
                const gws_jtok_t *kt = &doc->toks[k];
                if (kt->len - 2 < dn)
                        continue; /* decoding never lengthens */
                if (!(kt->flags & GWS_JF_ESC)) {
                        if (kt->len - 2 == dn &&
                            !memcmp(doc->buf + kt->start + 1, rw->kdec.buf,
                                    dn))
                                return 1;
                        continue;
                }
                if (kt->len > n &&
                    gws_buf_reserve(&rw->kdec, n + kt->len) == -1)
                        return -1;
                s = rw->kdec.buf + n;
                if (gws_json_str_decode(doc, kt, (char *)s) == dn &&
                    !memcmp(s, rw->kdec.buf, dn))
                        return 1;
        }
        return 0;
}

/* put_key() once put_string() rewrote the name of a member of object
 * \p obj, written at \p at. */
static int __attribute__((noinline))
key_rewritten(gws_record_t *rw, const gws_jdoc_t *doc, uint32_t obj,
              const gws_jtok_t *kt, gws_buf_t *out, size_t at, int *nred) {
        size_t base, len;
        int n, t;
        if (out->len - at == kt->len &&
            !memcmp(out->buf + at, doc->buf + kt->start, kt->len))
                return 0; /* rewritten as it was */
        base = out->len - 1; /* before the closing quote */
        for (n = *nred + 1;; n++) {
                out->len = base;
                if ((n > 1 && gws_buf_printf(out, "#%d", n) == -1) ||
                    gws_buf_append(out, "\"", 1) == -1)
                        return -1;
                if ((t = key_taken(rw, doc, obj, out->buf + at,
                                   out->len - at)) == -1)
                        return -1;
                if (!t)
                        break;
        }
        *nred = n;
        len = out->len - at;
        if (gws_buf_append(&rw->knames, (const char *)&len, sizeof(len)) ==
            -1)
                return -1;
        return gws_buf_append(&rw->knames, out->buf + at, len);
}

/* Appends member name \p kt of object \p obj like put_string(). From the
 * second name of an object that redaction changed on (\p nred counts
 * them), "#2", "#3", ... is added inside the quotes: two secrets as
 * names ("jane@a.example", "bob@b.example") became the same name twice,
 * a duplicate member that consumers reject or silently drop. A name the
 * object has already, in its input ("[REDACTED:email]" from a log
 * redacted upstream) or rewritten before, takes the next number. */
static inline int put_key(gws_record_t *rw, const gws_jdoc_t *doc,
                          uint32_t obj, const gws_jtok_t *kt, gws_buf_t *out,
                          int *nred) {
        size_t at = out->len;
        int r;
        if ((r = put_string(rw, doc, kt, out)) <= 0)
                return r; /* -1, or the bytes as written */
        return key_rewritten(rw, doc, obj, kt, out, at, nred);
}

/* Appends the text of string token \p t (decoded, redacted when needed),
 * not as a JSON literal: a body string cut as text. */
static int put_str_text(gws_record_t *rw, const gws_jdoc_t *doc,
                        const gws_jtok_t *t, gws_buf_t *out) {
        const char *s;
        size_t n;

        if (str_decoded(rw, doc, t, &s, &n) == -1 ||
            text_redacted(rw, &s, &n) == -1)
                return -1;
        return gws_buf_append(out, s, n);
}

/* 1 if the key token \p kt names \p name (escapes decoded: the event
 * parser reads "client\u005fip" as client_ip). */
static int key_is(const gws_jdoc_t *doc, const gws_jtok_t *kt,
                  const char *name, size_t n) {
        char tmp[256]; /* names of up to 42 characters, each escaped */
        if (!(kt->flags & GWS_JF_ESC))
                return kt->len == n + 2 &&
                       !memcmp(doc->buf + kt->start + 1, name, n);
        /* an escape takes at most 6 bytes per character */
        return kt->len <= sizeof(tmp) && kt->len <= n * 6 + 2 &&
               gws_json_str_decode(doc, kt, tmp) == n && !memcmp(tmp, name, n);
}

/* Members of metadata that hold an address: where the presets leave a
 * copy of the one they map to client_ip (cloudflare metadata.client_ip,
 * LiteLLM metadata.requester_ip_address), and the address attributes
 * the otel preset copies there as they are named (OpenTelemetry's
 * network.peer.address and its deprecated forerunners; client.address
 * is mapped to client_ip). */
static const char *const meta_ip_names[] = {
    "client_ip",        "requester_ip_address", "network.peer.address",
    "client.socket.address", "net.peer.ip",     "net.sock.peer.addr",
    "http.client_ip",   "source.address",       NULL};

static int is_meta_ip(const gws_jdoc_t *doc, const gws_jtok_t *kt) {
        const char *const *n;
        for (n = meta_ip_names; *n; n++)
                if (key_is(doc, kt, *n, strlen(*n)))
                        return 1;
        return 0;
}

/* A member of a dead letter's payload truncated as client_ip is, at any
 * depth (the payload is in the input's format): client_ip and the
 * metadata names above (LiteLLM's requester_ip_address is top-level
 * too), and OpenTelemetry's client.address (the otel-genai preset's
 * client_ip). */
static int is_dlq_ip(const gws_jdoc_t *doc, const gws_jtok_t *kt) {
        return is_meta_ip(doc, kt) || key_is(doc, kt, "client.address", 14);
}

/* Writes a client address value for redact.ip_truncate, failing closed:
 * a string (decoded first) through gws_redact_ip_truncate(), null as it
 * is, any other value (a number, an object, ...) as "[REDACTED:ip]".
 * Replacements count as redactions of kind "ip". @returns 0 or -1. */
static int put_client_ip(gws_record_t *rw, const gws_jdoc_t *doc,
                         const gws_jtok_t *vt, gws_buf_t *out) {
        const char *s;
        size_t n;
        int nrep;

        if (vt->type == GWS_JT_NULL)
                return gws_buf_append(out, "null", 4);
        if (vt->type != GWS_JT_STR) {
                CUR(rw, redactions[GWS_RK_IP], 1);
                return gws_buf_puts(out, "\"[REDACTED:ip]\"");
        }
        if (str_decoded(rw, doc, vt, &s, &n) == -1)
                return -1;
        gws_buf_reset(&rw->red_out);
        if ((nrep = gws_redact_ip_truncate(s, n, &rw->red_out)) == -1)
                return -1;
        if (nrep)
                CUR(rw, redactions[GWS_RK_IP], (uint64_t)nrep);
        else if (rw->red_out.len != n || memcmp(rw->red_out.buf, s, n))
                rw->nchg++;
        return gws_buf_json_str(out, rw->red_out.buf, rw->red_out.len);
}

/* Path decisions for the member at rw->path: P_FILTER descends and
 * decides each member's path; P_LEAD is a path only on the way to an
 * allowed one (trim.allow "request.model" at "request"): a container
 * there is descended into as with P_FILTER, any other value dropped (a
 * string body has no "model", nor has "a prompt" in an array). */
enum { P_DROP, P_KEEP_ALL, P_FILTER, P_LEAD };

/* The filter mode of put_value() for decision \p d: 0 (the subtree as
 * it is), P_FILTER or P_LEAD. */
#define FILTER_OF(d) ((d) == P_KEEP_ALL ? 0 : (d))

/* 1 if the value at \p t is dropped at a P_LEAD path: not a container. */
static inline int lead_drops(const gws_jtok_t *t) {
        return t->type != GWS_JT_OBJ && t->type != GWS_JT_ARR;
}

static int path_decide(gws_record_t *rw, int depth) {
        const char *p = rw->path.buf;
        size_t n = rw->path.len;
        int i, inside_allowed = 0, leads_to_allowed = 0;

        /* Required fields stay, whatever the deny list says (it was
         * checked first and removed them). */
        if (depth == 1 && (rw->allow.n || rw->deny.n))
                for (i = 0; i < (int)(sizeof(required) / sizeof(*required));
                     i++)
                        if (strlen(required[i]) == n &&
                            !memcmp(required[i], p, n))
                                return P_KEEP_ALL;
        for (i = 0; i < rw->deny.n; i++)
                if (rw->deny.len[i] == n && !memcmp(rw->deny.v[i], p, n))
                        return P_DROP;
        if (!rw->allow.n)
                return rw->deny.n ? P_FILTER : P_KEEP_ALL;
        for (i = 0; i < rw->allow.n; i++) {
                size_t an = rw->allow.len[i];
                if (an <= n && !memcmp(rw->allow.v[i], p, an) &&
                    (an == n || p[an] == '.'))
                        inside_allowed = 1;
                else if (an > n && !memcmp(rw->allow.v[i], p, n) &&
                         rw->allow.v[i][n] == '.')
                        leads_to_allowed = 1;
        }
        if (inside_allowed)
                return rw->deny.n ? P_FILTER : P_KEEP_ALL;
        return leads_to_allowed ? P_LEAD : P_DROP;
}

static inline int put_value(gws_record_t *rw, const gws_jdoc_t *doc,
                            uint32_t idx, int filter, int depth,
                            gws_buf_t *out);
static inline int put_member(gws_record_t *rw, const gws_jdoc_t *doc,
                             uint32_t idx, int filter, int depth,
                             gws_buf_t *out);

/* 0 if number token \p t cannot be a payment card number: not 13 to 19
 * characters, or not starting with an issuer's first digit (2-6: a
 * latency or a cost starts with 0 or 1 mostly, a fraction or a sign
 * is refused by put_number()). Inline, two tests. */
static inline int num_may_card(const gws_jdoc_t *doc, const gws_jtok_t *t) {
        return t->len - 13u <= 6u &&
               (unsigned char)doc->buf[t->start] - (unsigned)'2' <= 4u;
}

/* Writes number token \p t past num_may_card(): a payment card
 * number written as a JSON number (no sign, fraction or exponent) as
 * "[REDACTED:card_number]", counted as the scanners count one, any other
 * as it is. @returns 0 or -1. */
static int __attribute__((noinline))
put_number(gws_record_t *rw, const gws_jdoc_t *doc, const gws_jtok_t *t,
           gws_buf_t *out) {
        if (!gws_redact_card_digits(rw->red, doc->buf + t->start, t->len))
                return gws_buf_append(out, doc->buf + t->start, t->len);
        CUR(rw, redactions[GWS_RK_CARD], 1);
        return PUT_LIT(out, "\"[REDACTED:card_number]\"");
}

/* 1 if member name \p kt is a numeric field of the contract (as a
 * number it must stay one, whatever its digits). */
static int is_contract_number(const gws_jdoc_t *doc, const gws_jtok_t *kt) {
        static const char *const names[] = {
            "ts",        "status",     "latency_ms", "ttfb_ms",
            "tokens_in", "tokens_out", "cost_usd",   "step"};
        size_t i;
        for (i = 0; i < sizeof(names) / sizeof(*names); i++)
                if (key_is(doc, kt, names[i], strlen(names[i])))
                        return 1;
        return 0;
}

/* Writes the members of object \p idx; with \p filter (P_FILTER or
 * P_LEAD, FILTER_OF()), each member's path is decided (trim). */
static int put_object(gws_record_t *rw, const gws_jdoc_t *doc, uint32_t idx,
                      int filter, int depth, gws_buf_t *out) {
        const gws_jtok_t *o = &doc->toks[idx];
        uint32_t k;
        size_t plen = rw->path.len, kmark = rw->kmark;
        int first = 1, r = 0, d, nred = 0;

        rw->kmark = rw->knames.len; /* this object's rewritten names */
        r |= gws_buf_append(out, "{", 1);
        for (k = idx + 1; k < o->next; k = doc->toks[k + 1].next) {
                const gws_jtok_t *kt = &doc->toks[k];
                d = P_KEEP_ALL;
                if (filter) {
                        /* path = parent "." key (decoded) */
                        rw->path.len = plen;
                        if (plen)
                                r |= gws_buf_append(&rw->path, ".", 1);
                        if (gws_buf_reserve(&rw->path, kt->len) == -1)
                                return -1;
                        rw->path.len += gws_json_str_decode(
                            doc, kt, rw->path.buf + rw->path.len);
                        d = path_decide(rw, depth);
                        if (d == P_DROP ||
                            (d == P_LEAD && lead_drops(&doc->toks[k + 1]))) {
                                CUR(rw, fields_trimmed, 1);
                                continue;
                        }
                }
                if (!first)
                        r |= gws_buf_append(out, ",", 1);
                first = 0;
                r |= put_key(rw, doc, idx, kt, out, &nred);
                r |= gws_buf_append(out, ":", 1);
                if (rw->fields.n && idx != rw->own_obj &&
                    fields_has(rw, doc, kt))
                        r |= put_field_redacted(rw, &doc->toks[k + 1], out);
                else if ((idx == rw->ip_meta && is_meta_ip(doc, kt)) ||
                    (rw->dlq_ip && is_dlq_ip(doc, kt)))
                        r |= put_client_ip(rw, doc, &doc->toks[k + 1], out);
                else if (idx == rw->own_obj &&
                         doc->toks[k + 1].type == GWS_JT_NUM)
                        /* an alert's own numbers (alert.md) */
                        r |= gws_buf_append(
                            out, doc->buf + doc->toks[k + 1].start,
                            doc->toks[k + 1].len);
                else
                        r |= put_member(rw, doc, k + 1, FILTER_OF(d),
                                        depth + 1, out);
        }
        rw->path.len = plen;
        rw->knames.len = rw->kmark;
        rw->kmark = kmark;
        r |= gws_buf_append(out, "}", 1);
        return r ? -1 : 0;
}

/* put_value() of an object or an array. */
static int __attribute__((noinline))
put_container(gws_record_t *rw, const gws_jdoc_t *doc, uint32_t idx,
              int filter, int depth, gws_buf_t *out) {
        const gws_jtok_t *t = &doc->toks[idx];
        uint32_t k;
        int r = 0, first = 1;

        if (t->type == GWS_JT_OBJ)
                return put_object(rw, doc, idx, filter, depth, out);
        if (!filter && !rw->red && !rw->dlq_ip)
                return gws_buf_append(out, doc->buf + t->start, t->len);
        r |= gws_buf_append(out, "[", 1);
        for (k = idx + 1; k < t->next; k = doc->toks[k].next) {
                /* arrays add no path segment: at a P_LEAD path only
                 * its containers lead to the allowed one */
                if (filter == P_LEAD && lead_drops(&doc->toks[k])) {
                        CUR(rw, fields_trimmed, 1);
                        continue;
                }
                if (!first)
                        r |= gws_buf_append(out, ",", 1);
                first = 0;
                r |= put_member(rw, doc, k, filter, depth, out);
        }
        r |= gws_buf_append(out, "]", 1);
        return r ? -1 : 0;
}

/* Writes the value at token \p idx. Strings and the other scalars (all
 * but metadata and the bodies among a record's 20 top-level values)
 * inline in the caller; objects and arrays out of line. */
static inline int put_value(gws_record_t *rw, const gws_jdoc_t *doc,
                            uint32_t idx, int filter, int depth,
                            gws_buf_t *out) {
        const gws_jtok_t *t = &doc->toks[idx];

        switch (t->type) {
        case GWS_JT_OBJ:
        case GWS_JT_ARR:
                return put_container(rw, doc, idx, filter, depth, out);
        case GWS_JT_STR:
                if (idx == rw->keep_tok)
                        return gws_buf_append(out, doc->buf + t->start,
                                              t->len);
                return put_string(rw, doc, t, out) == -1 ? -1 : 0;
        default:
                return gws_buf_append(out, doc->buf + t->start, t->len);
        }
}

/* put_value() of a member or an element of an object or an array: a
 * number there may be a card written as one (the record's top-level
 * numbers are the contract's, gws_record_retained() sees to the
 * others; an alert's own numbers are written by put_object()). */
static inline int put_member(gws_record_t *rw, const gws_jdoc_t *doc,
                             uint32_t idx, int filter, int depth,
                             gws_buf_t *out) {
        const gws_jtok_t *t = &doc->toks[idx];
        if (t->type == GWS_JT_NUM && rw->red && num_may_card(doc, t))
                return put_number(rw, doc, t, out);
        return put_value(rw, doc, idx, filter, depth, out);
}

/* Cuts \p n down so that text[0..n) does not end inside a UTF-8
 * sequence. */
static size_t utf8_cut(const char *text, size_t n) {
        size_t i = n;
        /* back over continuation bytes to the lead byte of the last char */
        while (i > 0 && ((unsigned char)text[i - 1] & 0xc0) == 0x80)
                i--;
        if (i > 0) {
                unsigned char lead = (unsigned char)text[i - 1];
                size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3
                              : lead >= 0xc0 ? 2 : 1;
                if (n - (i - 1) < need)
                        return i - 1; /* incomplete: drop it */
        }
        return n;
}

static int is_body(const gws_record_t *rw, const gws_jdoc_t *doc,
                   const gws_jtok_t *kt) {
        int i;
        for (i = 0; i < rw->bodies.n; i++)
                if (key_is(doc, kt, rw->bodies.v[i], rw->bodies.len[i]))
                        return 1;
        return 0;
}

/* Appends the score rounded to 4 decimals as "%.4g" prints it, without
 * vfprintf (2,100 instructions a record, a tenth of the writer's): k /
 * 10000 for k in 0..10000 prints as "0", "1" or "0." and k's four
 * digits without trailing zeros ("0.0005", "0.25"), %.4g keeping at
 * least those four decimals below 1 and the double's error (1e-17) far
 * from their rounding. Anything else (a score outside [0, 1]) goes
 * through printf. @returns 0 or -1. */
static int put_score(gws_buf_t *out, double score) {
        int k = (int)(score * 10000 + 0.5), n = 6;
        char d[6] = {'0', '.'};
        if (k < 0 || k > 10000)
                return gws_buf_printf(out, "%.4g", (double)k / 10000.0);
        if (k == 0 || k == 10000)
                return gws_buf_append(out, k ? "1" : "0", 1);
        d[2] = (char)('0' + k / 1000);
        d[3] = (char)('0' + k / 100 % 10);
        d[4] = (char)('0' + k / 10 % 10);
        d[5] = (char)('0' + k % 10);
        while (d[n - 1] == '0')
                n--;
        return gws_buf_append(out, d, (size_t)n);
}

int gws_record_retained(gws_record_t *rw, const gws_event_t *ev,
                        const gws_score_t *sc, gws_keep_t keep,
                        const char *rule, gws_buf_t *out) {
        const gws_config_t *cfg = rw->cfg;
        const gws_jdoc_t *doc = ev->doc;
        const gws_jtok_t *root = &doc->toks[0];
        uint32_t k;
        int i, r = 0, first = 1, nr = 0, d, ntrunc = 0, nred = 0, is_field;
        char trunc[256];
        size_t to = 0;

        record_begin(rw);
        gws_buf_reset(out);
        rw->knames.len = rw->kmark = 0; /* the root's rewritten names */
        if (gws_buf_reserve(out, root->len + 256) == -1)
                return -1;
        r |= gws_buf_append(out, "{", 1);
        for (k = 1; k < root->next; k = doc->toks[k + 1].next) {
                const gws_jtok_t *kt = &doc->toks[k];
                const gws_jtok_t *vt = &doc->toks[k + 1];
                if (key_is(doc, kt, "sieve", 5))
                        continue; /* ours replaces it (escaped or not) */
                d = P_KEEP_ALL;
                if (rw->trimming) {
                        gws_buf_reset(&rw->path);
                        if (gws_buf_reserve(&rw->path, kt->len) == -1)
                                return -1;
                        rw->path.len = gws_json_str_decode(doc, kt,
                                                           rw->path.buf);
                        if ((d = path_decide(rw, 1)) == P_DROP ||
                            (d == P_LEAD && lead_drops(vt))) {
                                CUR(rw, fields_trimmed, 1);
                                continue;
                        }
                }
                /* redact.ip_truncate: metadata's addresses too */
                rw->ip_meta = cfg->redact_ip_truncate &&
                                      vt->type == GWS_JT_OBJ &&
                                      key_is(doc, kt, "metadata", 8)
                                  ? k + 1
                                  : NO_TOK;
                is_field = rw->fields.n && fields_has(rw, doc, kt);
                if (is_body(rw, doc, kt)) {
                        if (keep == GWS_KEEP_SAMPLE &&
                            cfg->trim_drop_bodies_sampled) {
                                CUR(rw, bodies_dropped, 1);
                                continue;
                        }
                        /* a body in redact.fields: not its text cut,
                         * its value replaced (below) */
                        if (!is_field && cfg->trim_max_body_bytes &&
                            vt->len > (uint32_t)cfg->trim_max_body_bytes) {
                                /* what rendering counts, until the cut:
                                 * a body that fits once rendered is
                                 * written (and counted) below again */
                                gws_record_stats_t was = rw->cur;
                                int was_any = rw->cur_any;
                                size_t cut;
                                gws_buf_reset(&rw->body);
                                /* a string as its text, anything else
                                 * as its JSON */
                                if ((vt->type == GWS_JT_STR
                                         ? put_str_text(rw, doc, vt,
                                                        &rw->body)
                                         : put_value(rw, doc, k + 1,
                                                     FILTER_OF(d), 2,
                                                     &rw->body)) == -1)
                                        return -1;
                                if (rw->body.len >
                                    (size_t)cfg->trim_max_body_bytes) {
                                        cut = utf8_cut(
                                            rw->body.buf,
                                            (size_t)cfg->trim_max_body_bytes);
                                        rw->body.len = cut;
                                        if (gws_buf_printf(
                                                &rw->body,
                                                "...[truncated %u bytes]",
                                                vt->len) == -1)
                                                return -1;
                                        if (!first)
                                                r |= gws_buf_append(out, ",",
                                                                    1);
                                        first = 0;
                                        r |= gws_buf_append(
                                            out, doc->buf + kt->start,
                                            kt->len);
                                        r |= gws_buf_append(out, ":", 1);
                                        /* the rendered text is valid
                                         * UTF-8, already redacted */
                                        r |= gws_buf_json_str(out,
                                                              rw->body.buf,
                                                              rw->body.len);
                                        CUR(rw, bodies_truncated, 1);
                                        if (to + kt->len + 24 <
                                            sizeof(trunc))
                                                to += (size_t)snprintf(
                                                    trunc + to,
                                                    sizeof(trunc) - to,
                                                    "%s%.*s:%u",
                                                    ntrunc++ ? "," : "",
                                                    (int)kt->len,
                                                    doc->buf + kt->start,
                                                    vt->len);
                                        continue;
                                }
                                rw->cur = was;
                                rw->cur_any = was_any;
                        }
                }
                if (!first)
                        r |= gws_buf_append(out, ",", 1);
                r |= put_key(rw, doc, 0, kt, out, &nred);
                r |= gws_buf_append(out, ":", 1);
                first = 0;
                if (is_field) {
                        if (put_field_redacted(rw, vt, out) == -1)
                                return -1;
                        continue;
                }
                if (cfg->redact_ip_truncate &&
                    key_is(doc, kt, "client_ip", 9)) {
                        if (put_client_ip(rw, doc, vt, out) == -1)
                                return -1;
                        continue;
                }
                if (vt->len >= 13 && vt->type == GWS_JT_NUM && rw->red &&
                    num_may_card(doc, vt) && !is_contract_number(doc, kt)) {
                        if (put_number(rw, doc, vt, out) == -1)
                                return -1;
                        continue;
                }
                if (put_value(rw, doc, k + 1, FILTER_OF(d), 2, out) == -1)
                        return -1;
        }
        rw->ip_meta = NO_TOK;
        if (!first)
                r |= PUT_LIT(out, ",");
        r |= PUT_LIT(out, "\"sieve\":{\"score\":");
        r |= put_score(out, sc->score);
        r |= PUT_LIT(out, ",\"reasons\":[");
        for (i = 0; i < GWS_R__CNT; i++)
                if (sc->reasons & (1u << i)) {
                        if (nr++)
                                r |= gws_buf_append(out, ",", 1);
                        r |= gws_buf_append(out, "\"", 1);
                        r |= gws_buf_puts(out, gws_reason_name(i));
                        r |= gws_buf_append(out, "\"", 1);
                }
        r |= PUT_LIT(out, "],\"kept\":");
        if (keep == GWS_KEEP_RULE) {
                char kept[160];
                snprintf(kept, sizeof(kept), "rule:%s", rule);
                /* a long name is cut at a character, not inside one */
                r |= gws_buf_json_str(out, kept,
                                      utf8_cut(kept, strlen(kept)));
        } else {
                r |= gws_buf_append(out, "\"", 1);
                r |= gws_buf_puts(out, gws_keep2str(keep));
                r |= gws_buf_append(out, "\"", 1);
        }
        if (ntrunc)
                r |= gws_buf_printf(out, ",\"truncated\":{%s}", trunc);
        r |= PUT_LIT(out, "}}");
        return r ? -1 : 0;
}

int gws_record_text(gws_record_t *rw, const char *text, size_t len,
                    gws_buf_t *out) {
        return put_text(rw, text, len, out);
}

int gws_record_redact_bytes(gws_record_t *rw, const char *bytes, size_t len,
                            gws_buf_t *out) {
        uint64_t counts[GWS_RK__CNT] = {0};
        const char *cur = bytes;
        size_t n = len;
        int r = 0, chg = 0;
        if (rw->red) {
                /* bytes that did not parse as JSON may still hold its
                 * escapes */
                gws_buf_reset(&rw->red_out);
                if ((r = gws_redact_text_escaped(rw->red, rw->rscratch, bytes,
                                                 len, &rw->red_out,
                                                 counts)) < 0)
                        return -1;
                count_redactions(rw, counts);
                if (r > 0) {
                        cur = rw->red_out.buf;
                        n = rw->red_out.len;
                        chg = r;
                }
        }
        if (rw->dlq_ip && text_ip_cut(rw, &cur, &n, 1) == -1)
                return -1;
        if (cur == bytes)
                return 0;
        if (gws_buf_append(out, cur, n) == -1)
                return -1;
        return chg + (cur == rw->ip_out.buf ? 1 : 0);
}

/* gws_record_redact_json(); \p dlq: a dead letter's payload (addresses
 * too under redact.ip_truncate; with nothing to redact, 0 and no copy:
 * the caller writes the payload). @returns as gws_record_redact_json(),
 * but -2 when \p json is not JSON: -1 is out of memory only. */
static int redact_json(gws_record_t *rw, const char *json, size_t len,
                       gws_buf_t *out, int dlq) {
        uint64_t n = 0;
        gws_jerr_t je;
        int i, r;
        record_begin(rw);
        gws_buf_reset(out);
        rw->ip_meta = NO_TOK; /* retained records only */
        rw->dlq_ip = dlq && rw->cfg->redact_ip_truncate;
        rw->nchg = 0;
        /* Nothing to redact: the document as it is. A copy that could
         * not be made was reported as made (an empty record, or a NULL
         * value, went out as the alert). */
        if (!rw->red && !rw->dlq_ip)
                return dlq ? 0 : gws_buf_append(out, json, len);
        if ((je = gws_json_parse(&rw->adoc, json, len, NULL)) != GWS_JE_OK) {
                rw->dlq_ip = 0;
                return je == GWS_JE_NOMEM ? -1 : -2;
        }
        /* An alert's alert_id is gwsieve's hash (16 hex digits) and the
         * record's Kafka key, the same on open, update and resolved: not
         * text to redact. Redacted, one of decimal digits that passes
         * Luhn (or any, under a custom pattern of hex tokens) became
         * "[REDACTED:card_number]": the record no longer matched its key
         * and alerts shared that id. */
        if (!dlq && (rw->keep_tok = gws_json_obj_get(&rw->adoc, 0,
                                                     "alert_id", 8)) == 0)
                rw->keep_tok = NO_TOK;
        /* Nor are its members (a score is a number, a window an object)
         * replaced for redact.fields: only what came from the input, as
         * an entity's values. */
        rw->own_obj = dlq ? NO_TOK : 0;
        rw->knames.len = rw->kmark = 0;
        r = put_value(rw, &rw->adoc, 0, 0, 0, out);
        rw->keep_tok = NO_TOK;
        rw->own_obj = NO_TOK;
        rw->dlq_ip = 0;
        if (r == -1)
                return -1;
        /* this record's own, begun above */
        for (i = 0; i < GWS_RK__CNT; i++)
                n += rw->cur.redactions[i];
        n += (uint64_t)rw->nchg;
        return n > INT32_MAX ? INT32_MAX : (int)n;
}

int gws_record_redact_json(gws_record_t *rw, const char *json, size_t len,
                           gws_buf_t *out) {
        int r = redact_json(rw, json, len, out, 0);
        return r < 0 ? -1 : r;
}

int gws_record_redact_dlq(gws_record_t *rw, const char *payload, size_t len,
                          gws_buf_t *out) {
        int r;
        /* As text only a payload that is not JSON: a JSON one whose
         * redaction ran out of memory went out redacted as text, its
         * client_ip members (a host name, "unknown") not failing closed
         * under redact.ip_truncate. The caller fails the event instead. */
        if ((r = redact_json(rw, payload, len, out, 1)) != -2)
                return r;
        gws_buf_reset(out);
        rw->dlq_ip = rw->cfg->redact_ip_truncate;
        r = gws_record_redact_bytes(rw, payload, len, out);
        rw->dlq_ip = 0;
        return r;
}
