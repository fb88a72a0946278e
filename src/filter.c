/* filter.c - keep errors and anomalies, sample the rest on the event id. */
#include "gwsieve/filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gwsieve/util.h"

/* Fixed seed: the sample must not change between releases or hosts. */
#define SAMPLE_SEED 0x67777369657665ULL

const char *gws_keep2str(gws_keep_t k) {
        static const char *names[GWS_KEEP__CNT] = {"dropped", "error",
                                                   "anomaly", "sample",
                                                   "rule"};
        return (unsigned)k < GWS_KEEP__CNT ? names[k] : "unknown";
}

int gws_filter_sampled(const char *id, size_t len, double rate) {
        uint64_t h;
        if (rate >= 1.0)
                return 1;
        if (rate <= 0.0)
                return 0;
        h = gws_hash64(id, len, SAMPLE_SEED);
        /* top 53 bits -> [0,1) */
        return (double)(h >> 11) * (1.0 / 9007199254740992.0) < rate;
}

gws_keep_t gws_filter_decide(const gws_config_t *cfg, const gws_event_t *ev,
                             const gws_score_t *sc) {
        if (cfg->keep_errors && gws_event_is_error(ev))
                return GWS_KEEP_ERROR;
        if (sc->score >= cfg->anomaly_keep_score && sc->score > 0)
                return GWS_KEEP_ANOMALY;
        if (gws_filter_sampled(ev->id.s, ev->id.len, cfg->normal_sample_rate))
                return GWS_KEEP_SAMPLE;
        return GWS_KEEP_NONE;
}

/* ------------------------------------------------------------------------
 * rules
 * ------------------------------------------------------------------------ */

typedef enum { P_ALL, P_ANY, P_NOT, P_EQ, P_IN, P_PREFIX, P_GT, P_GE, P_LT,
               P_LE, P_EXISTS } pop_t;

typedef enum { V_STR, V_NUM, V_BOOL, V_NULL } vtype_t;

typedef struct {
        vtype_t type;
        char *s;
        size_t len;
        double num;
        int is_int;            /* V_NUM written as an integer: i exact */
        int64_t i;
        int b;
} val_t;

typedef struct pred_s {
        pop_t op;
        char **seg;            /* path segments */
        size_t *seglen;
        int nseg;
        val_t *vals;           /* 1 value, or the set of "in" */
        int nvals;
        struct pred_s **kids;  /* all/any/not */
        int nkids;
} pred_t;

typedef struct {
        char *name;
        pred_t *when;
        gws_keep_t action;     /* KEEP_RULE, KEEP_NONE (drop), or SAMPLE */
        double rate;
        int force;
} rule_t;

struct gws_filter_s {
        const gws_config_t *cfg;
        rule_t *rules;
        int nrules;
};

static void pred_free(pred_t *p) {
        int i;
        if (!p)
                return;
        for (i = 0; i < p->nseg; i++)
                free(p->seg[i]);
        free(p->seg);
        free(p->seglen);
        for (i = 0; i < p->nvals; i++)
                free(p->vals[i].s);
        free(p->vals);
        for (i = 0; i < p->nkids; i++)
                pred_free(p->kids[i]);
        free(p->kids);
        free(p);
}

static int val_from_json(json_t *j, val_t *v) {
        memset(v, 0, sizeof(*v));
        switch (json_typeof(j)) {
        case JSON_STRING:
                v->type = V_STR;
                v->len = json_string_length(j);
                if (!(v->s = malloc(v->len + 1)))
                        return -1;
                memcpy(v->s, json_string_value(j), v->len + 1);
                return 0;
        case JSON_INTEGER:
                v->is_int = 1;
                v->i = (int64_t)json_integer_value(j);
                /* fall through */
        case JSON_REAL:
                v->type = V_NUM;
                v->num = json_number_value(j);
                /* an integral real (1e3, 100.0) is the integer it is,
                 * compared exactly (num_cmp_int()) */
                if (!v->is_int && v->num >= -9223372036854775808.0 &&
                    v->num < 9223372036854775808.0 &&
                    v->num == (double)(int64_t)v->num) {
                        v->is_int = 1;
                        v->i = (int64_t)v->num;
                }
                return 0;
        case JSON_TRUE:
        case JSON_FALSE:
                v->type = V_BOOL;
                v->b = json_is_true(j);
                return 0;
        case JSON_NULL:
                v->type = V_NULL;
                return 0;
        default:
                return -1;
        }
}

static pred_t *pred_compile(json_t *j, const char *where, char *errstr,
                            size_t errstr_size) {
        static const struct {
                const char *name;
                pop_t op;
        } ops[] = {{"equals", P_EQ}, {"in", P_IN},   {"prefix", P_PREFIX},
                   {"gt", P_GT},     {"gte", P_GE},  {"lt", P_LT},
                   {"lte", P_LE},    {"exists", P_EXISTS}};
        pred_t *p = calloc(1, sizeof(*p));
        const char *k, *field = NULL;
        json_t *v, *opv = NULL;
        char sub[256];
        size_t i;
        int nops = 0;

        if (!p)
                goto nomem;
        if (!json_is_object(j)) {
                snprintf(errstr, errstr_size, "%s: expected an object", where);
                goto err;
        }
        if ((v = json_object_get(j, "all")) || (v = json_object_get(j, "any"))) {
                p->op = json_object_get(j, "all") ? P_ALL : P_ANY;
                if (!json_is_array(v) || !json_array_size(v) ||
                    json_object_size(j) != 1) {
                        snprintf(errstr, errstr_size,
                                 "%s.%s: expected a non-empty array of "
                                 "predicates and nothing else",
                                 where, p->op == P_ALL ? "all" : "any");
                        goto err;
                }
                p->nkids = (int)json_array_size(v);
                if (!(p->kids = calloc((size_t)p->nkids, sizeof(*p->kids))))
                        goto nomem;
                for (i = 0; i < json_array_size(v); i++) {
                        snprintf(sub, sizeof(sub), "%s.%s[%zu]", where,
                                 p->op == P_ALL ? "all" : "any", i);
                        if (!(p->kids[i] = pred_compile(json_array_get(v, i),
                                                        sub, errstr,
                                                        errstr_size)))
                                goto err;
                }
                return p;
        }
        if ((v = json_object_get(j, "not"))) {
                p->op = P_NOT;
                p->nkids = 1;
                snprintf(sub, sizeof(sub), "%s.not", where);
                if (json_object_size(j) != 1 ||
                    !(p->kids = calloc(1, sizeof(*p->kids))) ||
                    !(p->kids[0] = pred_compile(v, sub, errstr,
                                                errstr_size))) {
                        if (json_object_size(j) != 1)
                                snprintf(errstr, errstr_size,
                                         "%s: \"not\" takes one predicate "
                                         "and nothing else", where);
                        goto err;
                }
                return p;
        }
        json_object_foreach(j, k, v) {
                if (!strcmp(k, "field")) {
                        if (!json_is_string(v) || !json_string_length(v)) {
                                snprintf(errstr, errstr_size,
                                         "%s.field: expected a dotted path",
                                         where);
                                goto err;
                        }
                        field = json_string_value(v);
                        continue;
                }
                for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
                        if (!strcmp(k, ops[i].name))
                                break;
                if (i == sizeof(ops) / sizeof(ops[0])) {
                        snprintf(errstr, errstr_size,
                                 "%s: unknown operator \"%s\" (use equals, "
                                 "in, prefix, gt, gte, lt, lte, exists, all, "
                                 "any, not)", where, k);
                        goto err;
                }
                p->op = ops[i].op;
                opv = v;
                nops++;
        }
        if (!field || nops != 1) {
                snprintf(errstr, errstr_size,
                         "%s: a predicate needs \"field\" and exactly one "
                         "operator", where);
                goto err;
        }
        /* path */
        {
                const char *s = field, *dot;
                int n = 1;
                for (dot = s; (dot = strchr(dot, '.')); dot++)
                        n++;
                if (!(p->seg = calloc((size_t)n, sizeof(*p->seg))) ||
                    !(p->seglen = calloc((size_t)n, sizeof(*p->seglen))))
                        goto nomem;
                for (; s; s = dot ? dot + 1 : NULL) {
                        dot = strchr(s, '.');
                        p->seglen[p->nseg] = dot ? (size_t)(dot - s)
                                                 : strlen(s);
                        if (!p->seglen[p->nseg]) {
                                snprintf(errstr, errstr_size,
                                         "%s.field: empty segment in \"%s\"",
                                         where, field);
                                goto err;
                        }
                        if (!(p->seg[p->nseg] =
                                  strndup(s, p->seglen[p->nseg])))
                                goto nomem;
                        p->nseg++;
                }
        }
        /* value(s) */
        if (p->op == P_IN) {
                if (!json_is_array(opv) || !json_array_size(opv)) {
                        snprintf(errstr, errstr_size,
                                 "%s.in: expected a non-empty array", where);
                        goto err;
                }
                p->nvals = (int)json_array_size(opv);
                if (!(p->vals = calloc((size_t)p->nvals, sizeof(*p->vals))))
                        goto nomem;
                for (i = 0; i < json_array_size(opv); i++)
                        if (val_from_json(json_array_get(opv, i),
                                          &p->vals[i]) == -1) {
                                snprintf(errstr, errstr_size,
                                         "%s.in[%zu]: expected a string, "
                                         "number, boolean or null", where, i);
                                goto err;
                        }
                return p;
        }
        p->nvals = 1;
        if (!(p->vals = calloc(1, sizeof(*p->vals))))
                goto nomem;
        if (val_from_json(opv, &p->vals[0]) == -1 ||
            (p->op == P_PREFIX && p->vals[0].type != V_STR) ||
            (p->op >= P_GT && p->op <= P_LE && p->vals[0].type != V_NUM) ||
            (p->op == P_EXISTS && p->vals[0].type != V_BOOL)) {
                snprintf(errstr, errstr_size,
                         "%s: wrong value type for the operator (prefix "
                         "takes a string, gt/gte/lt/lte a number, exists a "
                         "boolean)", where);
                goto err;
        }
        return p;
nomem:
        snprintf(errstr, errstr_size, "%s: out of memory", where);
err:
        pred_free(p);
        return NULL;
}

gws_filter_t *gws_filter_new(const gws_config_t *cfg, char *errstr,
                             size_t errstr_size) {
        gws_filter_t *f = calloc(1, sizeof(*f));
        json_t *rules = cfg->filter_rules, *r, *v;
        char where[64];
        size_t i;
        int j;

        if (!f) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        f->cfg = cfg;
        if (!rules || !json_array_size(rules))
                return f;
        if (!(f->rules = calloc(json_array_size(rules), sizeof(*f->rules)))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto err;
        }
        json_array_foreach(rules, i, r) {
                rule_t *ru = &f->rules[i];
                const char *action;
                snprintf(where, sizeof(where), "filter.rules[%zu]", i);
                f->nrules = (int)i + 1;
                if (!json_is_object(r)) {
                        snprintf(errstr, errstr_size, "%s: expected an object",
                                 where);
                        goto err;
                }
                v = json_object_get(r, "name");
                if (!json_is_string(v) || !json_string_length(v)) {
                        snprintf(errstr, errstr_size,
                                 "%s.name: every rule needs a name (it is "
                                 "reported as sieve.kept \"rule:<name>\")",
                                 where);
                        goto err;
                }
                for (j = 0; j < (int)i; j++)
                        if (!strcmp(f->rules[j].name, json_string_value(v))) {
                                snprintf(errstr, errstr_size,
                                         "%s.name: \"%s\" is used twice",
                                         where, json_string_value(v));
                                goto err;
                        }
                if (!(ru->name = strdup(json_string_value(v)))) {
                        snprintf(errstr, errstr_size, "out of memory");
                        goto err;
                }
                {
                        const char *k;
                        json_object_foreach(r, k, v) {
                                if (strcmp(k, "name") && strcmp(k, "when") &&
                                    strcmp(k, "action") && strcmp(k, "rate") &&
                                    strcmp(k, "force")) {
                                        snprintf(errstr, errstr_size,
                                                 "%s: unknown key \"%s\"",
                                                 where, k);
                                        goto err;
                                }
                        }
                }
                snprintf(where, sizeof(where), "filter.rules[%zu].when", i);
                if (!(v = json_object_get(r, "when"))) {
                        snprintf(errstr, errstr_size, "%s: missing", where);
                        goto err;
                }
                if (!(ru->when = pred_compile(v, where, errstr, errstr_size)))
                        goto err;
                snprintf(where, sizeof(where), "filter.rules[%zu]", i);
                v = json_object_get(r, "action");
                action = json_is_string(v) ? json_string_value(v) : "";
                if (!strcmp(action, "keep"))
                        ru->action = GWS_KEEP_RULE;
                else if (!strcmp(action, "drop"))
                        ru->action = GWS_KEEP_NONE;
                else if (!strcmp(action, "sample"))
                        ru->action = GWS_KEEP_SAMPLE;
                else {
                        snprintf(errstr, errstr_size,
                                 "%s.action: expected \"keep\", \"drop\" or "
                                 "\"sample\"", where);
                        goto err;
                }
                v = json_object_get(r, "rate");
                if (ru->action == GWS_KEEP_SAMPLE) {
                        if (!json_is_number(v) || json_number_value(v) < 0 ||
                            json_number_value(v) > 1) {
                                snprintf(errstr, errstr_size,
                                         "%s.rate: a sample rule needs a "
                                         "rate in [0, 1]", where);
                                goto err;
                        }
                        ru->rate = json_number_value(v);
                } else if (v) {
                        snprintf(errstr, errstr_size,
                                 "%s.rate: only \"sample\" rules take a "
                                 "rate", where);
                        goto err;
                }
                v = json_object_get(r, "force");
                if (v && !json_is_boolean(v)) {
                        snprintf(errstr, errstr_size,
                                 "%s.force: expected true or false", where);
                        goto err;
                }
                ru->force = json_is_true(v);
        }
        return f;
err:
        gws_filter_destroy(f);
        return NULL;
}

void gws_filter_destroy(gws_filter_t *f) {
        int i;
        if (!f)
                return;
        for (i = 0; i < f->nrules; i++) {
                free(f->rules[i].name);
                pred_free(f->rules[i].when);
        }
        free(f->rules);
        free(f);
}

int gws_filter_rule_count(const gws_filter_t *f) {
        return f->nrules;
}

/* Compares the JSON number \p p (\p n bytes, as the tokenizer accepted
 * it: -?int(.frac)?([eE][+-]?exp)?) with \p v exactly, by its decimal
 * digits: 9007199254740993.0 and 9.007199254740993e15 equal
 * 9007199254740993, 9223372036854775808 is above INT64_MAX, 1e400 above
 * any integer and 1e-400 above 0, where a double rounds each to a
 * neighbour. @returns -1, 0 or 1. */
static int num_cmp_int(const char *p, size_t n, int64_t v) {
        const char *end = p + n, *ip, *fp = NULL;
        size_t il, fl = 0, nd, k, lead = 0;
        uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
        char vd[20];
        int neg = 0, vl = 0, sign, mag = 0;
        int64_t e = 0, intlen;

        if (p < end && *p == '-') {
                neg = 1;
                p++;
        }
        for (ip = p; p < end && *p >= '0' && *p <= '9'; p++)
                ;
        il = (size_t)(p - ip);
        if (p < end && *p == '.') {
                for (fp = ++p; p < end && *p >= '0' && *p <= '9'; p++)
                        ;
                fl = (size_t)(p - fp);
        }
        if (p < end && (*p | 0x20) == 'e') {
                int eneg = 0;
                if (++p < end && (*p == '+' || *p == '-'))
                        eneg = *p++ == '-';
                /* beyond 10^(10^12) the digits (under 2^32) no longer
                 * matter: clamped */
                for (; p < end; p++)
                        if (e < 1000000000000)
                                e = e * 10 + (*p - '0');
                if (eneg)
                        e = -e;
        }
        /* the digits int then frac, D, are the value D x 10^(e - fl) */
#define DIGIT(i) ((i) < il ? ip[(i)] : fp[(i) - il])
        nd = il + fl;
        while (lead < nd && DIGIT(lead) == '0')
                lead++;
        sign = lead == nd ? 0 : neg ? -1 : 1;
        if (sign != (v > 0) - (v < 0))
                return sign < (v > 0) - (v < 0) ? -1 : 1;
        if (!sign)
                return 0;
        for (; u; u /= 10)
                vd[19 - vl++] = (char)('0' + u % 10);
        /* digits before the decimal point, of D without leading zeros */
        intlen = (int64_t)il - (int64_t)lead + e;
        if (intlen != vl)
                mag = intlen < vl ? -1 : 1;
        else {
                for (k = 0; k < (size_t)vl && !mag; k++) {
                        char c = lead + k < nd ? DIGIT(lead + k) : '0';
                        if (c != vd[20 - vl + k])
                                mag = c < vd[20 - vl + k] ? -1 : 1;
                }
                for (k = lead + (size_t)vl; !mag && k < nd; k++)
                        if (DIGIT(k) != '0')
                                mag = 1; /* a fraction left */
        }
#undef DIGIT
        return neg ? -mag : mag;
}

/* Compares a token with a value: -2 not comparable, else <0, 0, >0. */
static int tok_cmp(const gws_jdoc_t *doc, const gws_jtok_t *t,
                   const val_t *v, int prefix) {
        char stackbuf[512], *s = stackbuf;
        size_t n;
        int r;
        double d;

        switch (v->type) {
        case V_STR:
                if (t->type != GWS_JT_STR)
                        return -2;
                if (!(t->flags & GWS_JF_ESC)) {
                        s = (char *)doc->buf + t->start + 1;
                        n = t->len - 2;
                } else {
                        if (t->len > sizeof(stackbuf) && !(s = malloc(t->len)))
                                return -2;
                        n = gws_json_str_decode(doc, t, s);
                }
                if (prefix)
                        r = n >= v->len && !memcmp(s, v->s, v->len) ? 0 : 1;
                else
                        r = n == v->len && !memcmp(s, v->s, n) ? 0 : 1;
                if (s != stackbuf && (t->flags & GWS_JF_ESC))
                        free(s);
                return r;
        case V_NUM:
                /* Integers exactly, by the token's digits: as doubles,
                 * ids above 2^53 (an account id written as a number)
                 * equalled their neighbours, written 9007199254740993.0
                 * too. */
                if (t->type != GWS_JT_NUM)
                        return -2;
                if (v->is_int)
                        return num_cmp_int(doc->buf + t->start, t->len,
                                           v->i);
                /* a fraction: as doubles; a number beyond a double's
                 * range (1e400) is beyond any value */
                if (gws_json_num(doc, t, &d) == -1)
                        return doc->buf[t->start] == '-' ? -1 : 1;
                return d < v->num ? -1 : d > v->num ? 1 : 0;
        case V_BOOL:
                if (t->type != GWS_JT_TRUE && t->type != GWS_JT_FALSE)
                        return -2;
                return (t->type == GWS_JT_TRUE) == v->b ? 0 : 1;
        case V_NULL:
                return t->type == GWS_JT_NULL ? 0 : 1;
        }
        return -2;
}

static int pred_eval(const pred_t *p, const gws_jdoc_t *doc) {
        uint32_t idx = 0;
        const gws_jtok_t *t;
        int i, c;

        switch (p->op) {
        case P_ALL:
                for (i = 0; i < p->nkids; i++)
                        if (!pred_eval(p->kids[i], doc))
                                return 0;
                return 1;
        case P_ANY:
                for (i = 0; i < p->nkids; i++)
                        if (pred_eval(p->kids[i], doc))
                                return 1;
                return 0;
        case P_NOT:
                return !pred_eval(p->kids[0], doc);
        default:
                break;
        }
        for (i = 0; i < p->nseg; i++)
                if (!(idx = gws_json_obj_get(doc, idx, p->seg[i],
                                             p->seglen[i])))
                        break;
        t = idx ? &doc->toks[idx] : NULL;
        if (p->op == P_EXISTS)
                return (t && t->type != GWS_JT_NULL) == p->vals[0].b;
        if (!t) {
                /* null is absent: equals null / in [..., null] match */
                if (p->op == P_EQ || p->op == P_IN)
                        for (i = 0; i < p->nvals; i++)
                                if (p->vals[i].type == V_NULL)
                                        return 1;
                return 0;
        }
        switch (p->op) {
        case P_EQ:
                return tok_cmp(doc, t, &p->vals[0], 0) == 0;
        case P_PREFIX:
                return tok_cmp(doc, t, &p->vals[0], 1) == 0;
        case P_IN:
                for (i = 0; i < p->nvals; i++)
                        if (tok_cmp(doc, t, &p->vals[i], 0) == 0)
                                return 1;
                return 0;
        case P_GT:
                return (c = tok_cmp(doc, t, &p->vals[0], 0)) != -2 && c > 0;
        case P_GE:
                return (c = tok_cmp(doc, t, &p->vals[0], 0)) != -2 && c >= 0;
        case P_LT:
                return (c = tok_cmp(doc, t, &p->vals[0], 0)) == -1;
        case P_LE:
                return (c = tok_cmp(doc, t, &p->vals[0], 0)) == -1 || c == 0;
        default:
                return 0;
        }
}

gws_keep_t gws_filter_eval(const gws_filter_t *f, const gws_event_t *ev,
                           const gws_score_t *sc, const char **rule) {
        const gws_config_t *cfg = f->cfg;
        int i, protected_ = (cfg->keep_errors && gws_event_is_error(ev)) ||
                            (sc->score >= cfg->anomaly_keep_score &&
                             sc->score > 0);
        *rule = NULL;
        for (i = 0; i < f->nrules; i++) {
                const rule_t *ru = &f->rules[i];
                if (!pred_eval(ru->when, ev->doc))
                        continue;
                if (ru->action == GWS_KEEP_RULE ||
                    (ru->action == GWS_KEEP_SAMPLE &&
                     gws_filter_sampled(ev->id.s, ev->id.len, ru->rate))) {
                        *rule = ru->name;
                        return GWS_KEEP_RULE;
                }
                /* drop, or not in the rule's sample */
                if (protected_ && !ru->force)
                        break; /* errors/anomalies stay kept */
                *rule = ru->name;
                return GWS_KEEP_NONE;
        }
        return gws_filter_decide(cfg, ev, sc);
}
