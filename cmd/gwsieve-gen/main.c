/* main.c - gwsieve-gen: realistic synthetic AI-gateway traffic.
 *
 * Emits gateway events in the native schema (../shared/schema), keyed by
 * gateway_id, to Kafka and/or an NDJSON file. Deterministic for a seed:
 * the same arguments give byte-identical output. Event time advances by
 * exponential inter-arrival gaps at --sim-rate events per second of event
 * time, independently of the produce pacing (--rate).
 *
 * With --incidents, six incidents are injected after a warm-up (the first
 * quarter of event time), one after another: latency_spike, error_storm,
 * token_abuse, traffic_flood, cost_spike, new_model; --labels writes their
 * ground truth (window, entity, ids of the affected events).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "gwsieve/util.h"

/* ------------------------------------------------------------------------
 * PRNG and distributions (xoshiro256**, seeded by splitmix64)
 * ------------------------------------------------------------------------ */

static uint64_t rs[4];

static uint64_t splitmix64(uint64_t *x) {
        uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static uint64_t rnd(void) {
        uint64_t r = rs[1] * 5, t = rs[1] << 17;
        r = ((r << 7) | (r >> 57)) * 9;
        rs[2] ^= rs[0];
        rs[3] ^= rs[1];
        rs[1] ^= rs[2];
        rs[0] ^= rs[3];
        rs[2] ^= t;
        rs[3] = (rs[3] << 45) | (rs[3] >> 19);
        return r;
}

static double unif(void) {
        return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0);
}

static int below(int n) {
        return (int)(unif() * n);
}

static double normal(void) {
        double u1 = unif(), u2 = unif();
        if (u1 < 1e-300)
                u1 = 1e-300;
        return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static double lognormal(double median, double sigma) {
        return median * exp(sigma * normal());
}

/* Zipf-like pick over n items with exponent s (table built once). */
typedef struct {
        double *cdf;
        int n;
} zipf_t;

static void zipf_init(zipf_t *z, int n, double s) {
        double sum = 0;
        int i;
        z->n = n;
        z->cdf = malloc((size_t)n * sizeof(double));
        for (i = 0; i < n; i++)
                sum += 1.0 / pow(i + 1, s);
        for (i = 0; i < n; i++)
                z->cdf[i] = (i ? z->cdf[i - 1] : 0) + 1.0 / pow(i + 1, s) / sum;
}

static int zipf_pick(const zipf_t *z) {
        double u = unif();
        int lo = 0, hi = z->n - 1;
        while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (z->cdf[mid] < u)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

/* ------------------------------------------------------------------------
 * the population
 * ------------------------------------------------------------------------ */

typedef struct {
        const char *provider, *model, *endpoint;
        double lat_ms, lat_sigma;  /* median latency, lognormal sigma */
        double tin, tout;          /* median tokens */
        double price_in, price_out; /* USD per 1k tokens */
} model_t;

static const model_t models[] = {
    {"openai", "gpt-4o", "chat/completions", 1400, 0.45, 900, 350, 0.0025, 0.01},
    {"openai", "gpt-4o-mini", "chat/completions", 700, 0.45, 800, 300, 0.00015, 0.0006},
    {"openai", "o3-mini", "chat/completions", 4500, 0.5, 1200, 900, 0.0011, 0.0044},
    {"openai", "text-embedding-3-small", "embeddings", 120, 0.35, 400, 0, 0.00002, 0},
    {"anthropic", "claude-3-5-sonnet", "messages", 1800, 0.45, 1100, 400, 0.003, 0.015},
    {"anthropic", "claude-3-haiku", "messages", 600, 0.4, 700, 250, 0.00025, 0.00125},
    {"workers-ai", "@cf/meta/llama-3.1-8b-instruct", "run", 450, 0.5, 500, 200, 0.00001, 0.00001},
    {"google-ai-studio", "gemini-1.5-pro", "generateContent", 1600, 0.5, 1000, 380, 0.00125, 0.005},
    {"google-ai-studio", "gemini-1.5-flash", "generateContent", 550, 0.45, 800, 300, 0.000075, 0.0003},
    {"mistral", "mistral-large", "chat/completions", 1300, 0.45, 900, 350, 0.002, 0.006},
};
#define NMODELS (int)(sizeof(models) / sizeof(models[0]))
static const model_t novel_model = {"openai", "gpt-5-preview", "chat/completions",
                                    2500, 0.45, 1000, 500, 0.01, 0.03};

#define NGW 12
#define USERS_PER_GW 2000
#define IPS_PER_GW 600

typedef struct {
        char id[8], account[16];
        int models[5], nmodels;
        zipf_t model_pick;
} gateway_t;

static gateway_t gws[NGW];
static zipf_t gw_pick, user_pick, ip_pick;

static const char *agents[] = {
    "openai-python/1.51.0", "anthropic-sdk-python/0.36.0", "OpenAI/NodeJS 4.67.1",
    "langchain/0.3.1", "curl/8.5.0", "Go-http-client/2.0", "litellm/1.48.2"};
static const char *words[] = {
    "the", "model", "please", "summarize", "following", "customer", "ticket",
    "about", "billing", "error", "refund", "account", "invoice", "latency",
    "deploy", "cluster", "kubernetes", "explain", "difference", "between",
    "async", "await", "python", "function", "returns", "list", "of", "users",
    "sorted", "by", "date", "translate", "into", "french", "write", "a",
    "short", "poem", "on", "autumn", "and", "coffee", "review", "this",
    "pull", "request", "for", "security", "issues", "in", "the", "login",
    "handler", "generate", "sql", "query", "that", "joins", "orders", "with",
    "products", "what", "is", "capital", "australia", "thanks", "great",
    "answer", "here", "are", "three", "options", "you", "could", "consider"};
#define NWORDS (int)(sizeof(words) / sizeof(words[0]))

static void put_words(gws_buf_t *b, int n) {
        int i;
        for (i = 0; i < n; i++) {
                if (i)
                        gws_buf_append(b, " ", 1);
                gws_buf_puts(b, words[below(NWORDS)]);
        }
}

static void population_init(void) {
        int g, i;
        zipf_init(&gw_pick, NGW, 1.0);
        zipf_init(&user_pick, USERS_PER_GW, 1.1);
        zipf_init(&ip_pick, IPS_PER_GW, 1.0);
        for (g = 0; g < NGW; g++) {
                gateway_t *gw = &gws[g];
                snprintf(gw->id, sizeof(gw->id), "gw-%02d", g + 1);
                snprintf(gw->account, sizeof(gw->account), "acct-%04d",
                         1000 + g * 37);
                gw->nmodels = 3 + below(3);
                for (i = 0; i < gw->nmodels; i++) {
                        int m, j, dup;
                        do {
                                m = below(NMODELS);
                                for (dup = 0, j = 0; j < i; j++)
                                        dup |= gw->models[j] == m;
                        } while (dup);
                        gw->models[i] = m;
                }
                zipf_init(&gw->model_pick, gw->nmodels, 1.2);
        }
}

/* ------------------------------------------------------------------------
 * incidents
 * ------------------------------------------------------------------------ */

enum { I_LATENCY, I_ERRORS, I_TOKENS, I_FLOOD, I_COST, I_NEWMODEL, I__CNT };
static const char *inc_kind[I__CNT] = {"latency_spike", "error_storm",
                                       "token_abuse", "traffic_flood",
                                       "cost_spike", "new_model"};
static const char *inc_alerts[I__CNT][2] = {
    {"latency", NULL},     {"error_rate", NULL},
    {"tokens", "heavy_hitter"}, {"rate_spike", "heavy_hitter"},
    {"cost", NULL},        {"new_value", NULL}};

typedef struct {
        int kind, gw, model, user, ip;
        int64_t start, end;
        json_t *ids;
} incident_t;

static incident_t incs[I__CNT];
static int nincs;

static int inc_active(const incident_t *in, int64_t ts) {
        return ts >= in->start && ts < in->end;
}

/* ------------------------------------------------------------------------
 * one event
 * ------------------------------------------------------------------------ */

typedef struct {
        int gw, model_idx; /* model_idx -1 = novel model */
        int user, ip;
        double lat_mul, tin_mul, cost_mul;
        double err_p;
        int inc; /* incident index the event belongs to, or -1 */
} shape_t;

static void put_uuid(gws_buf_t *b) {
        uint64_t a = rnd(), c = rnd();
        gws_buf_printf(b, "%08x-%04x-4%03x-%04x-%012llx",
                       (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
                       (unsigned)a & 0xfff,
                       (unsigned)((c >> 48) & 0x3fff) | 0x8000,
                       (unsigned long long)(c & 0xffffffffffffULL));
}

static const char *planted_secret(char *buf, size_t size) {
        switch (below(7)) {
        case 0: snprintf(buf, size, "my key is sk-proj-%016llx%016llxAbCd", (unsigned long long)rnd(), (unsigned long long)rnd()); break;
        case 1: snprintf(buf, size, "use sk-ant-api03-%016llx%016llx-xyz", (unsigned long long)rnd(), (unsigned long long)rnd()); break;
        case 2: snprintf(buf, size, "aws AKIA%016llX please", (unsigned long long)(rnd() & 0xffffffffffffffffULL)); break;
        case 3: snprintf(buf, size, "token ghp_%016llx%016llxabcd", (unsigned long long)rnd(), (unsigned long long)rnd()); break;
        case 4: snprintf(buf, size, "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.%016llx", (unsigned long long)rnd()); break;
        case 5: snprintf(buf, size, "contact jane.doe%d@example.com for access", below(1000)); break;
        default: snprintf(buf, size, "card 4111 1111 1111 1111 exp 12/29"); break;
        }
        return buf;
}

static void write_event(gws_buf_t *b, const shape_t *sh, int64_t ts,
                        char *idbuf, size_t idsize) {
        const gateway_t *gw = &gws[sh->gw];
        const model_t *m = sh->model_idx < 0 ? &novel_model
                                             : &models[sh->model_idx];
        char tbuf[40], secret[160];
        int err = unif() < sh->err_p, cached = !err && unif() < 0.05;
        int status = 200, big = unif() < 0.002, plant = unif() < 0.005;
        double tin = m->tin > 0 ? lognormal(m->tin, 0.6) * sh->tin_mul : 0;
        double tout = m->tout > 0 ? lognormal(m->tout, 0.6) : 0;
        double lat, ttfb, cost;
        size_t idstart;
        int i, nmsg;

        if (err) {
                static const int codes[] = {429, 429, 500, 502, 503, 400, 401};
                status = sh->err_p > 0.2 ? (unif() < 0.5 ? 503 : 429)
                                         : codes[below(7)];
                tout = 0;
        }
        lat = lognormal(m->lat_ms, m->lat_sigma) *
              (0.6 + 0.4 * (tout + 1) / (m->tout + 1)) * sh->lat_mul;
        if (err)
                lat *= 0.3;
        if (cached)
                lat = lognormal(25, 0.4);
        ttfb = lat * (0.15 + 0.25 * unif());
        cost = cached ? 0 : (tin * m->price_in + tout * m->price_out) / 1000 *
                                sh->cost_mul;

        gws_buf_reset(b);
        gws_buf_puts(b, "{\"id\":\"");
        idstart = b->len;
        put_uuid(b);
        snprintf(idbuf, idsize, "%.*s", (int)(b->len - idstart),
                 b->buf + idstart);
        gws_buf_printf(b, "\",\"ts\":\"%s\",\"gateway_id\":\"%s\","
                          "\"account_id\":\"%s\",\"provider\":\"%s\","
                          "\"model\":\"%s\",\"endpoint\":\"%s\","
                          "\"method\":\"POST\",\"status\":%d,"
                          "\"success\":%s,\"cached\":%s,"
                          "\"latency_ms\":%.1f,\"ttfb_ms\":%.1f,",
                       gws_time_format(ts, tbuf, sizeof(tbuf)), gw->id,
                       gw->account, m->provider, m->model, m->endpoint,
                       status, err ? "false" : "true",
                       cached ? "true" : "false", lat, ttfb);
        if (err)
                gws_buf_puts(b, "\"tokens_in\":null,\"tokens_out\":null,"
                                "\"cost_usd\":null,");
        else
                gws_buf_printf(b, "\"tokens_in\":%d,\"tokens_out\":%d,"
                                  "\"cost_usd\":%.6f,",
                               (int)tin, (int)tout, cost);
        if (sh->ip < IPS_PER_GW * 0.9)
                gws_buf_printf(b, "\"client_ip\":\"10.%d.%d.%d\",", sh->gw + 1,
                               sh->ip / 250, sh->ip % 250 + 1);
        else
                gws_buf_printf(b, "\"client_ip\":\"2001:db8:%x::%x\",",
                               sh->gw + 1, sh->ip);
        gws_buf_printf(b, "\"user_id\":\"u-%02d-%05d\",\"user_agent\":\"%s\",",
                       sh->gw + 1, sh->user, agents[(sh->user + sh->gw) % 7]);
        if (unif() < 0.03)
                gws_buf_printf(b, "\"trace_id\":\"%016llx\",\"step\":%d,",
                               (unsigned long long)rnd(), 1 + below(3));
        gws_buf_printf(b, "\"metadata\":{\"app\":\"app-%d\",\"env\":\"prod\","
                          "\"team\":\"team-%d\"%s},",
                       sh->user % 5, sh->gw % 4,
                       plant && unif() < 0.3 ? ",\"note\":\"see ticket\""
                                             : "");
        /* request body */
        nmsg = big ? 40 + below(60) : 1;
        gws_buf_printf(b, "\"request\":{\"model\":\"%s\",\"messages\":["
                          "{\"role\":\"system\",\"content\":\"",
                       m->model);
        put_words(b, 8 + below(10));
        gws_buf_puts(b, "\"}");
        for (i = 0; i < nmsg; i++) {
                gws_buf_puts(b, ",{\"role\":\"user\",\"content\":\"");
                put_words(b, big ? 150 + below(100) : 15 + below(35));
                if (plant && i == 0) {
                        gws_buf_append(b, " ", 1);
                        gws_buf_puts(b, planted_secret(secret,
                                                       sizeof(secret)));
                }
                gws_buf_puts(b, "\"}");
        }
        gws_buf_printf(b, "],\"temperature\":%.1f,\"max_tokens\":%d},",
                       below(11) / 10.0, 256 << below(4));
        /* response body */
        if (err) {
                gws_buf_printf(b, "\"response\":{\"error\":{\"type\":\"%s\","
                                  "\"message\":\"",
                               status == 429 ? "rate_limit_error"
                                             : status >= 500 ? "server_error"
                                                             : "invalid_request_error");
                put_words(b, 6 + below(6));
                gws_buf_puts(b, "\"}}}");
        } else {
                gws_buf_puts(b, "\"response\":{\"id\":\"chatcmpl-");
                put_uuid(b);
                gws_buf_puts(b, "\",\"object\":\"chat.completion\","
                                "\"choices\":[{\"index\":0,\"message\":{"
                                "\"role\":\"assistant\",\"content\":\"");
                put_words(b, big ? 3000 + below(3000) : 25 + below(45));
                gws_buf_printf(b, "\"},\"finish_reason\":\"stop\"}],"
                                  "\"usage\":{\"prompt_tokens\":%d,"
                                  "\"completion_tokens\":%d}}}",
                               (int)tin, (int)tout);
        }
}

/* ------------------------------------------------------------------------
 * Kafka
 * ------------------------------------------------------------------------ */

static volatile sig_atomic_t run = 1;
static uint64_t delivered, failed;

static void term(int sig) {
        (void)sig;
        run = 0;
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                      void *opaque) {
        (void)rk;
        (void)opaque;
        if (rkm->err) {
                if (failed++ < 5)
                        fprintf(stderr, "gwsieve-gen: delivery failed: %s\n",
                                rd_kafka_err2str(rkm->err));
        } else {
                delivered++;
        }
}

static void usage(FILE *fp) {
        fprintf(fp,
"Usage: gwsieve-gen [--bootstrap B] [--topic T] --events N [options]\n"
"Realistic synthetic AI-gateway traffic (native gateway-event JSON), keyed\n"
"by gateway_id, to Kafka and/or an NDJSON file. Deterministic per seed.\n"
"\n"
"  -b, --bootstrap LIST   Kafka bootstrap servers (optional with --out)\n"
"  -t, --topic T          topic (default gw.raw)\n"
"  -n, --events N         events to generate (required)\n"
"  -r, --rate R           produce pacing, events/s of wall time (0 = max)\n"
"  -s, --seed S           seed (default 1)\n"
"  -o, --out FILE         also write NDJSON to FILE (- = stdout)\n"
"  -i, --incidents        inject six incidents after a warm-up\n"
"  -l, --labels FILE      with --incidents: ground-truth JSON\n"
"      --start TIME       event time of the first event: RFC 3339 or epoch\n"
"                         ms (default: now, floored to the second)\n"
"      --sim-rate R       events per second of event time (default 50)\n"
"  -X prop=value          librdkafka producer property\n"
"  -q, --quiet            no progress lines\n"
"  -h, --help\n");
}

/* A whole decimal number, nothing after it: "12x", "" and out of range
 * are refused. @returns 0, or -1. */
static int parse_ll(const char *s, long long *v) {
        char *end;
        errno = 0;
        *v = strtoll(s, &end, 10);
        return errno || end == s || *end ? -1 : 0;
}

/* A seed: decimal digits only (strtoull takes "-1" as 2^64-1). */
static int parse_seed(const char *s, uint64_t *v) {
        char *end;
        if (*s < '0' || *s > '9')
                return -1;
        errno = 0;
        *v = strtoull(s, &end, 10);
        return errno || *end ? -1 : 0;
}

/* A finite decimal number, nothing after it ("nan", "1e999" refused). */
static int parse_double(const char *s, double *v) {
        char *end;
        errno = 0;
        *v = strtod(s, &end);
        return errno || end == s || *end || !isfinite(*v) ? -1 : 0;
}

/* An option refused (its message printed): the usage error's exit. */
static int refuse(rd_kafka_conf_t *conf) {
        rd_kafka_conf_destroy(conf);
        return 2;
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
            {"bootstrap", required_argument, NULL, 'b'},
            {"topic", required_argument, NULL, 't'},
            {"events", required_argument, NULL, 'n'},
            {"rate", required_argument, NULL, 'r'},
            {"seed", required_argument, NULL, 's'},
            {"out", required_argument, NULL, 'o'},
            {"incidents", no_argument, NULL, 'i'},
            {"labels", required_argument, NULL, 'l'},
            {"start", required_argument, NULL, 'S'},
            {"sim-rate", required_argument, NULL, 'R'},
            {"quiet", no_argument, NULL, 'q'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0}};
        const char *bootstrap = NULL, *topic = "gw.raw", *out = NULL,
                   *labels = NULL;
        long long nevents = -1;
        double rate = 0, sim_rate = 50;
        uint64_t seed = 1, sm;
        int incidents = 0, quiet = 0, c, i, rc = 0, nx = 0;
        int64_t start = -1, ts, span;
        rd_kafka_t *rk = NULL;
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_t *rkt = NULL;
        FILE *fp = NULL;
        gws_buf_t b = {0};
        char errstr[512], idbuf[64];
        uint64_t bytes = 0;
        long long n;
        double t0, last_prog;
        struct timespec tsp;

        while ((c = getopt_long(argc, argv, "b:t:n:r:s:o:il:X:qh", longopts,
                                NULL)) != -1) {
                switch (c) {
                case 'b': bootstrap = optarg; break;
                case 't': topic = optarg; break;
                case 'n':
                        if (parse_ll(optarg, &nevents) || nevents < 0) {
                                fprintf(stderr, "gwsieve-gen: --events: "
                                                "expected a count, got "
                                                "\"%s\"\n", optarg);
                                return refuse(conf);
                        }
                        break;
                case 'r':
                        if (parse_double(optarg, &rate) || rate < 0) {
                                fprintf(stderr, "gwsieve-gen: --rate: "
                                                "expected events/s, got "
                                                "\"%s\"\n", optarg);
                                return refuse(conf);
                        }
                        break;
                case 'R':
                        if (parse_double(optarg, &sim_rate) ||
                            sim_rate <= 0) {
                                fprintf(stderr, "gwsieve-gen: --sim-rate: "
                                                "expected events/s > 0, got "
                                                "\"%s\"\n", optarg);
                                return refuse(conf);
                        }
                        break;
                case 's':
                        if (parse_seed(optarg, &seed)) {
                                fprintf(stderr, "gwsieve-gen: --seed: "
                                                "expected an integer 0.."
                                                "18446744073709551615, got "
                                                "\"%s\"\n", optarg);
                                return refuse(conf);
                        }
                        break;
                case 'o': out = optarg; break;
                case 'i': incidents = 1; break;
                case 'l': labels = optarg; break;
                case 'S':
                        if (gws_time_parse(optarg, strlen(optarg), &start) ==
                            -1) {
                                long long st;
                                if (parse_ll(optarg, &st) || st < 0) {
                                        fprintf(stderr,
                                                "gwsieve-gen: --start: "
                                                "expected RFC 3339 or epoch "
                                                "ms, got \"%s\"\n", optarg);
                                        return refuse(conf);
                                }
                                start = st;
                        }
                        break;
                case 'X': {
                        char *eq = strchr(optarg, '=');
                        if (!eq) {
                                fprintf(stderr, "gwsieve-gen: -X expects "
                                                "prop=value\n");
                                return refuse(conf);
                        }
                        *eq = '\0';
                        nx++;
                        if (rd_kafka_conf_set(conf, optarg, eq + 1, errstr,
                                              sizeof(errstr))) {
                                fprintf(stderr, "gwsieve-gen: -X %s: %s\n",
                                        optarg, errstr);
                                return refuse(conf);
                        }
                        break;
                }
                case 'q': quiet = 1; break;
                case 'h':
                        usage(stdout);
                        rd_kafka_conf_destroy(conf);
                        return 0;
                default: usage(stderr); return refuse(conf);
                }
        }
        if (nevents < 0 || (!bootstrap && !out)) {
                fprintf(stderr, "gwsieve-gen: --events and one of "
                                "--bootstrap/--out are required\n");
                usage(stderr);
                rd_kafka_conf_destroy(conf);
                return 2;
        }
        if (nx && !bootstrap) {
                fprintf(stderr, "gwsieve-gen: -X sets a property of the "
                                "Kafka producer, and without --bootstrap "
                                "there is none\n");
                return refuse(conf);
        }
        if (labels && !incidents) {
                fprintf(stderr, "gwsieve-gen: --labels needs --incidents\n");
                rd_kafka_conf_destroy(conf);
                return 2;
        }
        if (start < 0)
                start = gws_now_ms() / 1000 * 1000;
        sm = seed;
        for (i = 0; i < 4; i++)
                rs[i] = splitmix64(&sm);
        population_init();

        if (bootstrap) {
                if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap,
                                      errstr, sizeof(errstr)) ||
                    rd_kafka_conf_set(conf, "linger.ms", "5", errstr,
                                      sizeof(errstr)) ||
                    rd_kafka_conf_set(conf, "enable.idempotence", "true",
                                      errstr, sizeof(errstr)) ||
                    rd_kafka_conf_set(conf, "queue.buffering.max.messages",
                                      "200000", errstr, sizeof(errstr))) {
                        fprintf(stderr, "gwsieve-gen: %s\n", errstr);
                        rd_kafka_conf_destroy(conf);
                        return 2;
                }
                rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
                if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                        sizeof(errstr)))) {
                        fprintf(stderr, "gwsieve-gen: %s\n", errstr);
                        rd_kafka_conf_destroy(conf);
                        return 2;
                }
                conf = NULL; /* owned by rk */
                rkt = rd_kafka_topic_new(rk, topic, NULL);
        } else {
                rd_kafka_conf_destroy(conf);
        }
        if (out && !(fp = strcmp(out, "-") ? fopen(out, "w") : stdout)) {
                fprintf(stderr, "gwsieve-gen: %s: %s\n", out,
                        strerror(errno));
                rc = 1;
                goto done;
        }

        /* Incident schedule: after a 25% warm-up, six slots. */
        span = (int64_t)(nevents / sim_rate * 1000);
        if (incidents) {
                /* 25% warm-up, 6 slots over the next 65%, and 10% at
                 * the end for the extra traffic incidents add. */
                int64_t slot = span * 65 / 100 / I__CNT;
                int64_t dur = slot * 6 / 10;
                if (dur > 300000)
                        dur = 300000;
                if (dur < 60000)
                        dur = 60000;
                for (i = 0; i < I__CNT; i++) {
                        incident_t *in = &incs[nincs++];
                        in->kind = i;
                        in->gw = (1 + i * 5) % NGW % 6; /* busy gateways */
                        in->model = gws[in->gw].models[0];
                        in->user = 3 + i;
                        in->ip = 7 + i;
                        in->start = start + span / 4 + slot * i + slot / 5;
                        in->end = in->start + dur;
                        in->ids = json_array();
                }
        }

        signal(SIGINT, term);
        signal(SIGTERM, term);
        clock_gettime(CLOCK_MONOTONIC, &tsp);
        t0 = last_prog = tsp.tv_sec + tsp.tv_nsec / 1e9;
        ts = start;
        for (n = 0; n < nevents && run; n++) {
                shape_t sh;
                double lam = sim_rate, extra = 0, now;
                int which = -1;

                /* Incidents that add traffic raise the arrival rate. */
                for (i = 0; i < nincs; i++)
                        if (inc_active(&incs[i], ts) &&
                            (incs[i].kind == I_FLOOD ||
                             incs[i].kind == I_TOKENS)) {
                                /* flood: +4x the gateway's own rate;
                                 * abuse: +0.5x, all from one user */
                                int g = incs[i].gw;
                                double share = gw_pick.cdf[g] -
                                               (g ? gw_pick.cdf[g - 1] : 0);
                                double x = sim_rate * share *
                                           (incs[i].kind == I_FLOOD ? 4.0
                                                                    : 0.5);
                                if (unif() * (lam + extra + x) >= lam + extra)
                                        which = i;
                                extra += x;
                        }
                ts += (int64_t)(-log(1 - unif()) / (lam + extra) * 1000);

                memset(&sh, 0, sizeof(sh));
                sh.lat_mul = sh.tin_mul = sh.cost_mul = 1;
                sh.err_p = 0.015;
                sh.inc = -1;
                if (which >= 0) {
                        incident_t *in = &incs[which];
                        sh.gw = in->gw;
                        sh.model_idx = in->model;
                        sh.user = zipf_pick(&user_pick);
                        sh.ip = zipf_pick(&ip_pick);
                        if (in->kind == I_FLOOD)
                                sh.ip = in->ip;
                        else {
                                sh.user = in->user;
                                sh.tin_mul = 30;
                        }
                        sh.inc = which;
                } else {
                        sh.gw = zipf_pick(&gw_pick);
                        sh.model_idx = gws[sh.gw].models[zipf_pick(
                            &gws[sh.gw].model_pick)];
                        sh.user = zipf_pick(&user_pick);
                        sh.ip = zipf_pick(&ip_pick);
                        for (i = 0; i < nincs; i++) {
                                incident_t *in = &incs[i];
                                if (!inc_active(in, ts) || in->gw != sh.gw)
                                        continue;
                                switch (in->kind) {
                                case I_LATENCY:
                                        if (sh.model_idx == in->model) {
                                                sh.lat_mul =
                                                    8 + 7 * unif();
                                                sh.inc = i;
                                        }
                                        break;
                                case I_ERRORS:
                                        if (!strcmp(models[sh.model_idx]
                                                        .provider,
                                                    models[in->model]
                                                        .provider)) {
                                                sh.err_p = 0.6;
                                                sh.inc = i;
                                        }
                                        break;
                                case I_COST:
                                        sh.cost_mul = 10 + 10 * unif();
                                        sh.inc = i;
                                        break;
                                case I_NEWMODEL:
                                        if (unif() < 0.3) {
                                                sh.model_idx = -1;
                                                sh.inc = i;
                                        }
                                        break;
                                default:
                                        break;
                                }
                        }
                }
                write_event(&b, &sh, ts, idbuf, sizeof(idbuf));
                if (sh.inc >= 0)
                        json_array_append_new(incs[sh.inc].ids,
                                              json_string(idbuf));
                bytes += b.len;
                if (fp && (fwrite(b.buf, 1, b.len, fp) != b.len ||
                           fputc('\n', fp) == EOF)) {
                        fprintf(stderr, "gwsieve-gen: %s: cannot write "
                                        "event %lld: %s\n",
                                out, n + 1, strerror(errno));
                        rc = 1;
                        goto done;
                }
                if (rk) {
                        const char *key = gws[sh.gw].id;
                        while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA,
                                                RD_KAFKA_MSG_F_COPY, b.buf,
                                                b.len, key, strlen(key),
                                                NULL) == -1) {
                                if (rd_kafka_last_error() !=
                                    RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                        fprintf(stderr,
                                                "gwsieve-gen: produce: %s\n",
                                                rd_kafka_err2str(
                                                    rd_kafka_last_error()));
                                        rc = 1;
                                        goto done;
                                }
                                rd_kafka_poll(rk, 100);
                        }
                        rd_kafka_poll(rk, 0);
                }
                clock_gettime(CLOCK_MONOTONIC, &tsp);
                now = tsp.tv_sec + tsp.tv_nsec / 1e9;
                if (rate > 0 && (n + 1) / rate > now - t0)
                        usleep((useconds_t)(((n + 1) / rate - (now - t0)) *
                                            1e6));
                if (!quiet && now - last_prog >= 2) {
                        last_prog = now;
                        fprintf(stderr, "gwsieve-gen: %lld/%lld events "
                                        "(%.0f/s), %llu delivered\n",
                                n + 1, nevents, (n + 1) / (now - t0),
                                (unsigned long long)delivered);
                }
        }
        /* the last events leave the stdio buffer here: a full disk
         * is seen before "produced" is said */
        if (fp && fflush(fp) == EOF) {
                fprintf(stderr, "gwsieve-gen: %s: cannot write: %s\n", out,
                        strerror(errno));
                rc = 1;
                goto done;
        }
        if (rk) {
                rd_kafka_flush(rk, 30000);
                if (rd_kafka_outq_len(rk) > 0 || failed) {
                        fprintf(stderr, "gwsieve-gen: %d not delivered, %llu "
                                        "failed\n", rd_kafka_outq_len(rk),
                                (unsigned long long)failed);
                        rc = 1;
                }
        }
        clock_gettime(CLOCK_MONOTONIC, &tsp);
        fprintf(stderr, "gwsieve-gen: produced %lld events (%llu bytes, avg "
                        "%llu B/event) in %.1f s\n",
                n, (unsigned long long)bytes,
                (unsigned long long)(n ? bytes / (uint64_t)n : 0),
                tsp.tv_sec + tsp.tv_nsec / 1e9 - t0);
        /* stopped by a signal short of --events: a script must not take
         * the short data set for the whole one */
        if (n < nevents) {
                fprintf(stderr, "gwsieve-gen: interrupted after %lld of %lld "
                                "events\n",
                        n, nevents);
                if (rc == 0)
                        rc = 1;
        }
        if (labels) {
                json_t *root = json_object(), *arr = json_array();
                char tb[40];
                for (i = 0; i < nincs; i++) {
                        incident_t *in = &incs[i];
                        json_t *o, *ent, *ak;
                        const model_t *m = &models[in->model];
                        int k;
                        /* The labels are the ground truth alerts are
                         * scored against: an incident whose window no
                         * event reached (too few --events for the
                         * schedule) did not happen, and would be scored
                         * as missed. */
                        if (!json_array_size(in->ids)) {
                                fprintf(stderr,
                                        "gwsieve-gen: incident inc-%d (%s) "
                                        "got none of the %lld events (too "
                                        "few for its window): left out of "
                                        "the labels\n",
                                        i + 1, inc_kind[in->kind], n);
                                continue;
                        }
                        o = json_object();
                        ent = json_object();
                        ak = json_array();
                        json_object_set_new(o, "id", json_sprintf("inc-%d",
                                                                  i + 1));
                        json_object_set_new(o, "kind",
                                            json_string(inc_kind[in->kind]));
                        for (k = 0; k < 2 && inc_alerts[in->kind][k]; k++)
                                json_array_append_new(
                                    ak, json_string(inc_alerts[in->kind][k]));
                        json_object_set_new(o, "alert_kinds", ak);
                        json_object_set_new(o, "start", json_string(gws_time_format(in->start, tb, sizeof(tb))));
                        json_object_set_new(o, "end", json_string(gws_time_format(in->end, tb, sizeof(tb))));
                        json_object_set_new(o, "start_ms", json_integer(in->start));
                        json_object_set_new(o, "end_ms", json_integer(in->end));
                        json_object_set_new(ent, "gateway_id", json_string(gws[in->gw].id));
                        switch (in->kind) {
                        case I_LATENCY:
                                json_object_set_new(ent, "provider", json_string(m->provider));
                                json_object_set_new(ent, "model", json_string(m->model));
                                break;
                        case I_ERRORS:
                                json_object_set_new(ent, "provider", json_string(m->provider));
                                break;
                        case I_TOKENS:
                                json_object_set_new(ent, "user_id", json_sprintf("u-%02d-%05d", in->gw + 1, in->user));
                                break;
                        case I_FLOOD:
                                json_object_set_new(ent, "client_ip", json_sprintf("10.%d.%d.%d", in->gw + 1, in->ip / 250, in->ip % 250 + 1));
                                break;
                        case I_NEWMODEL:
                                json_object_set_new(ent, "provider", json_string(novel_model.provider));
                                json_object_set_new(ent, "model", json_string(novel_model.model));
                                break;
                        default:
                                break;
                        }
                        json_object_set_new(o, "entity", ent);
                        json_object_set_new(o, "event_count", json_integer((json_int_t)json_array_size(in->ids)));
                        json_object_set_new(o, "event_ids", json_incref(in->ids));
                        json_array_append_new(arr, o);
                }
                json_object_set_new(root, "generator", json_string("gwsieve-gen"));
                json_object_set_new(root, "seed", json_integer((json_int_t)seed));
                json_object_set_new(root, "events", json_integer(n));
                json_object_set_new(root, "start", json_string(gws_time_format(start, tb, sizeof(tb))));
                json_object_set_new(root, "end", json_string(gws_time_format(ts, tb, sizeof(tb))));
                json_object_set_new(root, "start_ms", json_integer(start));
                json_object_set_new(root, "end_ms", json_integer(ts));
                json_object_set_new(root, "incidents", arr);
                errno = 0;
                if (json_dump_file(root, labels, JSON_INDENT(1) | JSON_PRESERVE_ORDER)) {
                        fprintf(stderr, "gwsieve-gen: %s: cannot write: %s\n",
                                labels,
                                errno ? strerror(errno) : "write error");
                        rc = 1;
                }
                json_decref(root);
        }
done:
        for (i = 0; i < nincs; i++)
                json_decref(incs[i].ids);
        if (fp && (fp != stdout ? fclose(fp) : fflush(fp)) == EOF &&
            rc == 0) {
                fprintf(stderr, "gwsieve-gen: %s: cannot write: %s\n", out,
                        strerror(errno));
                rc = 1;
        }
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        if (rk)
                rd_kafka_destroy(rk);
        gws_buf_free(&b);
        free(gw_pick.cdf);
        free(user_pick.cdf);
        free(ip_pick.cdf);
        for (i = 0; i < NGW; i++)
                free(gws[i].model_pick.cdf);
        return rc;
}
