/* main.c - the gwsieve program: argument parsing and dispatch only.
 *
 *   gwsieve run          the consumer-group service
 *   gwsieve replay       the same pipeline over an NDJSON file
 *   gwsieve state        what the state topic holds for the group
 *   gwsieve check-config validate and print the effective configuration
 */
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#include <sched.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "gwsieve/changelog.h"
#include "gwsieve/config.h"
#include "gwsieve/log.h"
#include "gwsieve/pipeline.h"
#include "gwsieve/replay.h"
#include "gwsieve/service.h"

static volatile sig_atomic_t run = 1;

static void term(int sig) {
        run = 0;
        /* A second signal gets the default action: a stuck shutdown can
         * always be interrupted. */
        signal(sig, SIG_DFL);
}

/* glibc's allocator for `run`, set before any thread starts (arenas are
 * made as threads first allocate). librdkafka reads each Fetch response
 * (fetch.max.bytes, 1 MB) into a buffer of its own, freed once its last
 * message is. By default glibc gave those pages back to the kernel (a
 * trim threshold that follows the largest freed mapping, one arena per
 * thread up to eight per core) and the next response faulted them in
 * again: page faults under the socket copy were the largest part of the
 * consumer threads' time on this virtual machine (perf). Here blocks
 * under 2 MB come from the heap, an arena keeps up to 8 MB free at its
 * top, and one arena per usable CPU (2 to 8) serves all threads, which
 * bounds what is kept. bench/thread_split.sh 5, 100k events over 96
 * partitions, medians (2026-12-01, 2 cores): the first two settings
 * alone took the consumer threads from 0.374 to 0.188 CPU-s per 100k
 * events and the total from 0.976 to 0.745, but the peak RSS from 51 to
 * 64 MB (69 in one run); with two arenas as well, this build against
 * the one before: total 0.895 -> 0.692 (lower in all 5 pairs), peak
 * 53.9 -> 52.4 MB. A user's own GLIBC_TUNABLES (glibc.malloc.*) or
 * MALLOC_* variables win: nothing is changed then. */
static void malloc_tune(void) {
#ifdef __GLIBC__
        const char *t = getenv("GLIBC_TUNABLES");
        cpu_set_t cs;
        int ncpu = 2;
        if ((t && strstr(t, "glibc.malloc.")) || getenv("MALLOC_ARENA_MAX") ||
            getenv("MALLOC_TRIM_THRESHOLD_") ||
            getenv("MALLOC_MMAP_THRESHOLD_") || getenv("MALLOC_TOP_PAD_"))
                return;
        if (!sched_getaffinity(0, sizeof(cs), &cs))
                ncpu = CPU_COUNT(&cs);
        mallopt(M_MMAP_THRESHOLD, 2 * 1024 * 1024);
        mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
        mallopt(M_ARENA_MAX, ncpu < 2 ? 2 : ncpu > 8 ? 8 : ncpu);
#endif
}

static void usage(FILE *fp) {
        fprintf(fp,
"gwsieve %s - stream processor for AI-gateway logs on Kafka\n"
"\n"
"Usage:\n"
"  gwsieve run [--config FILE] [--bootstrap HOST:PORT,...] [-X prop=value]...\n"
"              [--set KEY=VALUE]... [--group G] [--workers N]\n"
"      Join the consumer group, score/filter/trim each event of topics.input,\n"
"      produce retained records, alerts and dead letters. At-least-once:\n"
"      offsets are committed only after every output is delivered.\n"
"      SIGTERM/SIGINT drain, flush, commit and leave the group (exit 0).\n"
"  gwsieve replay [--config FILE] --input EVENTS.ndjson --out-dir DIR\n"
"              [--partitions N] [--set KEY=VALUE]...\n"
"      The same pipeline without Kafka: writes DIR/retained.ndjson,\n"
"      DIR/alerts.ndjson, DIR/dlq.ndjson and prints a summary. --partitions\n"
"      (default replay.partitions = 12) simulates the input topic's\n"
"      partitioning so alerts match `run` on a topic of that many partitions.\n"
"      SIGTERM/SIGINT stop it after the current line, files whole (exit 1).\n"
"  gwsieve score-series --input FILE.csv --output FILE.csv [--set KEY=VALUE]\n"
"      Score a timestamp,value series (NAB's format) with the numeric-\n"
"      deviation detector: writes timestamp,value,anomaly_score.\n"
"  gwsieve state [--config FILE] [--bootstrap ...] [--group G] [--json]\n"
"      Read-only: for every partition of topics.input, the group's latest\n"
"      detector snapshot on state.topic (its offset, delivered offset,\n"
"      entities, size, age, or why it cannot be used), the group's committed\n"
"      offset and the end of the partition, and what the partition's next\n"
"      owner does: restore, catch up, skip delivered events, or start cold.\n"
"      Exit 1 if a topic cannot be read (nothing printed), 3 if some\n"
"      state partitions cannot be read: their partitions' rows say\n"
"      \"unreadable\" and why (at once when the partition's leader is\n"
"      missing or down), the others are printed as usual; 3 also if the\n"
"      group's committed offsets cannot be looked up (\"?\", not \"-\": not\n"
"      known is not none). Ends within state.restore_timeout_ms; end\n"
"      offsets not known by then show \"-\".\n"
"  gwsieve check-config FILE [--set KEY=VALUE]...\n"
"      Validate FILE (with env and --set overrides) and print the effective\n"
"      configuration as JSON (secrets masked).\n"
"  gwsieve help-config      List every configuration key with its default.\n"
"  gwsieve --version | --help\n"
"\n"
"Options of every subcommand:\n"
"  -c, --config FILE        JSON configuration (defaults apply without it)\n"
"  -X prop=value            librdkafka property for both clients\n"
"                           (consumer.prop=... / producer.prop=... for one)\n"
"  -s, --set KEY=VALUE      any configuration key, e.g. --set workers=4\n"
"  -l, --log-level LEVEL    err|warning|notice|info|debug (log.level)\n"
"      --log-json           JSON log lines (log.format=json)\n"
"Of run, state and check-config:\n"
"  -b, --bootstrap LIST     Kafka bootstrap servers (kafka.bootstrap.servers)\n"
"  -g, --group G            consumer group (group)\n"
"Of run and check-config:\n"
"  -w, --workers N          worker threads (workers)\n"
"      --http ADDR:PORT     /metrics, /healthz, /readyz (http.listen,\n"
"                           default 127.0.0.1:9464; \"off\" disables)\n"
"The others belong to the subcommands that show them above; an option\n"
"of another subcommand is refused.\n"
"\n"
"Precedence: defaults < config file < GWSIEVE_* environment < command line.\n"
"Exit status: 0 ok, 1 runtime/fatal error, 2 usage or configuration error\n"
"(`state`: 3 some state partitions unreadable).\n",
                GWS_VERSION);
}

typedef struct opts_s {
        const char *config, *input, *out_dir, *output;
        const char *partitions;
        int json;
} opts_t;

/* Parses options shared by all subcommands into \p cfg (CLI layer) after
 * loading the file and environment. \p file_arg: a first argument that
 * is no option is the configuration file (check-config FILE); any other
 * subcommand refuses it. \p own: the option characters (getopt_long's
 * vals) of this subcommand besides those of all (--config, --set, -X,
 * --log-level, --log-json, --help); any other is refused.
 * @returns 0, or 2 on a usage error. */
static int parse_opts(int argc, char **argv, int file_arg, const char *own,
                      opts_t *o, gws_config_t *cfg) {
        static const struct option longopts[] = {
            {"config", required_argument, NULL, 'c'},
            {"bootstrap", required_argument, NULL, 'b'},
            {"set", required_argument, NULL, 's'},
            {"group", required_argument, NULL, 'g'},
            {"workers", required_argument, NULL, 'w'},
            {"log-level", required_argument, NULL, 'l'},
            {"log-json", no_argument, NULL, 'J'},
            {"http", required_argument, NULL, 'H'},
            {"input", required_argument, NULL, 'i'},
            {"out-dir", required_argument, NULL, 'o'},
            {"output", required_argument, NULL, 'O'},
            {"partitions", required_argument, NULL, 'p'},
            {"json", no_argument, NULL, 'j'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0}};
        /* CLI settings are applied after file+env: collect them first.
         * sets[i] = {key, value}; owned[i]: key was allocated here. */
        const char *(*sets)[2] = calloc((size_t)argc + 1, sizeof(*sets));
        char **owned = calloc((size_t)argc + 1, sizeof(*owned));
        int nsets = 0, c, i, rc = 0;
        char errstr[512];

        optind = 1;
        while ((c = getopt_long(argc, argv, "c:b:s:g:w:l:X:i:o:p:h", longopts,
                                NULL)) != -1) {
                /* every subcommand's (configuration, logging, help), or
                 * this one's: "replay --output x" was taken and unused */
                if (c != '?' && !strchr("csXlJh", c) && !strchr(own, c)) {
                        for (i = 0; longopts[i].name; i++)
                                if (longopts[i].val == c)
                                        break;
                        fprintf(stderr,
                                "gwsieve %s: --%s is not an option of %s "
                                "(see gwsieve --help)\n",
                                argv[0], longopts[i].name ? longopts[i].name
                                                          : "?",
                                argv[0]);
                        rc = 2;
                        goto out;
                }
                switch (c) {
                case 'c': o->config = optarg; break;
                case 'i': o->input = optarg; break;
                case 'o': o->out_dir = optarg; break;
                case 'O': o->output = optarg; break;
                case 'p': o->partitions = optarg; break;
                case 'j': o->json = 1; break;
                case 'b':
                        sets[nsets][0] = "kafka.bootstrap.servers";
                        sets[nsets++][1] = optarg;
                        break;
                case 'g':
                        sets[nsets][0] = "group";
                        sets[nsets++][1] = optarg;
                        break;
                case 'w':
                        sets[nsets][0] = "workers";
                        sets[nsets++][1] = optarg;
                        break;
                case 'l':
                        sets[nsets][0] = "log.level";
                        sets[nsets++][1] = optarg;
                        break;
                case 'J':
                        sets[nsets][0] = "log.format";
                        sets[nsets++][1] = "json";
                        break;
                case 'H':
                        sets[nsets][0] = "http.listen";
                        sets[nsets++][1] = optarg;
                        break;
                case 's':
                case 'X': {
                        char *eq = strchr(optarg, '=');
                        if (!eq || eq == optarg) {
                                /* what follows '=' is not shown: with
                                 * the key left out it may well be a
                                 * password */
                                if (eq)
                                        fprintf(stderr,
                                                "gwsieve: %s expects "
                                                "KEY=VALUE; the KEY before "
                                                "'=' is missing\n",
                                                c == 'X' ? "-X" : "--set");
                                else
                                        fprintf(stderr,
                                                "gwsieve: %s expects "
                                                "KEY=VALUE, got \"%s\"\n",
                                                c == 'X' ? "-X" : "--set",
                                                optarg);
                                rc = 2;
                                goto out;
                        }
                        *eq = '\0';
                        if (c == 'X') {
                                /* -X consumer.x=.. / producer.x=.. / x=.. */
                                size_t l = strlen(optarg) + 8;
                                if (!(owned[nsets] = malloc(l))) {
                                        rc = 2;
                                        goto out;
                                }
                                snprintf(owned[nsets], l, "kafka.%s", optarg);
                                sets[nsets][0] = owned[nsets];
                        } else {
                                sets[nsets][0] = optarg;
                        }
                        sets[nsets++][1] = eq + 1;
                        break;
                }
                case 'h':
                        usage(stdout);
                        rc = -1;
                        goto out;
                default:
                        fprintf(stderr, "Try `gwsieve --help`.\n");
                        rc = 2;
                        goto out;
                }
        }
        if (file_arg && !o->config && optind < argc)
                o->config = argv[optind++]; /* check-config FILE */
        if (optind < argc) {
                /* not taken as --config: "replay EVENTS --out-dir D"
                 * read the events as a configuration */
                fprintf(stderr,
                        "gwsieve %s: unexpected argument \"%s\" (options "
                        "take their values as --flag VALUE; see gwsieve "
                        "--help)\n",
                        argv[0], argv[optind]);
                rc = 2;
                goto out;
        }
        if (o->config &&
            gws_config_load_file(cfg, o->config, errstr, sizeof(errstr))) {
                fprintf(stderr, "gwsieve: %s\n", errstr);
                rc = 2;
                goto out;
        }
        if (gws_config_apply_env(cfg, errstr, sizeof(errstr))) {
                fprintf(stderr, "gwsieve: %s\n", errstr);
                rc = 2;
                goto out;
        }
        for (i = 0; i < nsets; i++) {
                if (gws_config_set(cfg, sets[i][0], sets[i][1], errstr,
                                   sizeof(errstr))) {
                        fprintf(stderr, "gwsieve: command line: %s\n",
                                errstr);
                        rc = 2;
                        goto out;
                }
        }
        if (o->partitions &&
            gws_config_set(cfg, "replay.partitions", o->partitions, errstr,
                           sizeof(errstr))) {
                fprintf(stderr, "gwsieve: --partitions: %s\n", errstr);
                rc = 2;
                goto out;
        }
        if (gws_config_validate(cfg, errstr, sizeof(errstr))) {
                fprintf(stderr, "gwsieve: %s\n", errstr);
                rc = 2;
                goto out;
        }
        if (gws_log_set_level_name(cfg->log_level) == -1) {
                fprintf(stderr, "gwsieve: log.level: bad level \"%s\"\n",
                        cfg->log_level);
                rc = 2;
                goto out;
        }
        gws_log_set_json(!strcmp(cfg->log_format, "json"));
out:
        for (i = 0; i < nsets; i++)
                free(owned[i]);
        free(owned);
        free(sets);
        return rc;
}

static int cmd_run(int argc, char **argv, gws_config_t *cfg) {
        opts_t o = {0};
        gws_service_t *svc;
        char errstr[512];
        int r;

        if ((r = parse_opts(argc, argv, 0, "bgwH", &o, cfg)))
                return r < 0 ? 0 : r;
        if (!(svc = gws_service_new(cfg, errstr, sizeof(errstr)))) {
                fprintf(stderr, "gwsieve: %s\n", errstr);
                return 2;
        }
        signal(SIGINT, term);
        signal(SIGTERM, term);
        signal(SIGPIPE, SIG_IGN);
        r = gws_service_run(svc, &run);
        gws_service_destroy(svc);
        return r == 0 ? 0 : 1;
}

static int cmd_replay(int argc, char **argv, gws_config_t *cfg) {
        opts_t o = {0};
        gws_replay_result_t res;
        struct sigaction sa;
        char errstr[512];
        int r;

        if ((r = parse_opts(argc, argv, 0, "iop", &o, cfg)))
                return r < 0 ? 0 : r;
        if (!o.input || !o.out_dir) {
                fprintf(stderr, "gwsieve replay: --input and --out-dir are "
                                "required (see gwsieve --help)\n");
                return 2;
        }
        /* Without SA_RESTART: a replay that waits for its next line on a
         * pipe (--input -) must see the signal too. It stops after the
         * line it is processing and closes its files: killed, the stdio
         * buffers' last flush cut them mid-record. */
        sa.sa_handler = term;
        sa.sa_flags = 0;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        r = gws_replay_run(cfg, o.input, o.out_dir, &run, &res, errstr,
                           sizeof(errstr));
        if (r < 0) {
                fprintf(stderr, "gwsieve replay: %s\n", errstr);
                return r == -2 ? 2 : 1; /* -2: the configuration's */
        }
        if (r == 1) {
                /* the summary of what was done, then why it is partial */
                gws_replay_print_summary(&res, stdout);
                fflush(stdout);
                fprintf(stderr, "gwsieve replay: %s\n", errstr);
                return 1;
        }
        printf("gwsieve replay: %s -> %s/{retained,alerts,dlq}.ndjson "
               "(%d partitions)\n",
               o.input, o.out_dir, cfg->partitions);
        gws_replay_print_summary(&res, stdout);
        return 0;
}

static int cmd_series(int argc, char **argv, gws_config_t *cfg) {
        opts_t o = {0};
        char errstr[512];
        uint64_t rows;
        int r;
        if ((r = parse_opts(argc, argv, 0, "iO", &o, cfg)))
                return r < 0 ? 0 : r;
        if (!o.input || !o.output) {
                fprintf(stderr, "gwsieve score-series: --input and --output "
                                "are required (see gwsieve --help)\n");
                return 2;
        }
        if (gws_replay_series(cfg, o.input, o.output, &rows, errstr,
                              sizeof(errstr))) {
                fprintf(stderr, "gwsieve score-series: %s\n", errstr);
                return 1;
        }
        fprintf(stderr, "gwsieve score-series: %llu rows scored\n",
                (unsigned long long)rows);
        return 0;
}

static int cmd_state(int argc, char **argv, gws_config_t *cfg) {
        opts_t o = {0};
        gws_state_view_t *rows;
        rd_kafka_conf_t *conf;
        char errstr[512];
        int r, n, unread, cunknown;

        if ((r = parse_opts(argc, argv, 0, "bgj", &o, cfg)))
                return r < 0 ? 0 : r;
        if (!gws_config_state_on(cfg)) {
                fprintf(stderr, "gwsieve state: state.topic is \"off\"\n");
                return 2;
        }
        if (!(conf = gws_service_reader_conf(cfg, "gwsieve-state", errstr,
                                             sizeof(errstr)))) {
                fprintf(stderr, "gwsieve state: %s\n", errstr);
                return 2;
        }
        if ((n = gws_changelog_inspect(cfg, conf,
                                       cfg->state_restore_timeout_ms, &rows,
                                       errstr, sizeof(errstr))) < 0) {
                fprintf(stderr, "gwsieve state: %s\n", errstr);
                return 1;
        }
        gws_changelog_print_inspect(cfg, rows, n, o.json, stdout);
        for (r = 0, unread = 0, cunknown = 0; r < n; r++) {
                unread += rows[r].result == GWS_STATE_UNREADABLE;
                cunknown += rows[r].committed_error[0] != '\0';
        }
        free(rows);
        /* the rows printed, but not all of them known */
        if (unread)
                fprintf(stderr,
                        "gwsieve state: %d of %d partitions unknown: their "
                        "state partition could not be read\n",
                        unread, n);
        if (cunknown)
                fprintf(stderr,
                        "gwsieve state: the group's committed offsets of %d "
                        "of %d partitions could not be looked up: what their "
                        "next owners catch up or skip is not known\n",
                        cunknown, n);
        return unread || cunknown ? 3 : 0;
}

static int cmd_check(int argc, char **argv, gws_config_t *cfg) {
        opts_t o = {0};
        int r;
        if ((r = parse_opts(argc, argv, 1, "bgwHp", &o, cfg)))
                return r < 0 ? 0 : r;
        if (!o.config) {
                fprintf(stderr, "gwsieve check-config: which file? "
                                "usage: gwsieve check-config FILE\n");
                return 2;
        }
        /* Compile what the modules compile (filter rules, ...) so that a
         * bad rule is found here and not at deploy time. */
        {
                char errstr[512];
                gws_pipeline_t *pl = gws_pipeline_new(cfg, errstr,
                                                      sizeof(errstr));
                if (!pl) {
                        fprintf(stderr, "gwsieve: %s: %s\n", o.config,
                                errstr);
                        return 2;
                }
                gws_pipeline_destroy(pl);
        }
        gws_config_dump(cfg, stdout);
        fprintf(stderr, "gwsieve: %s: OK\n", o.config);
        return 0;
}

int main(int argc, char **argv) {
        gws_config_t *cfg;
        const char *cmd;
        int r;

        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        cmd = argv[1];
        if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") ||
            !strcmp(cmd, "help")) {
                usage(stdout);
                return 0;
        }
        if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
                printf("gwsieve %s (librdkafka %s)\n", GWS_VERSION,
                       rd_kafka_version_str());
                return 0;
        }
        if (!strcmp(cmd, "help-config") || !strcmp(cmd, "--help-config")) {
                gws_config_print_help(stdout);
                return 0;
        }
        if (!(cfg = gws_config_new())) {
                fprintf(stderr, "gwsieve: out of memory\n");
                return 1;
        }
        gws_log_set_prog("gwsieve");
        if (!strcmp(cmd, "run")) {
                malloc_tune();
                r = cmd_run(argc - 1, argv + 1, cfg);
        } else if (!strcmp(cmd, "replay")) {
                r = cmd_replay(argc - 1, argv + 1, cfg);
        } else if (!strcmp(cmd, "score-series")) {
                r = cmd_series(argc - 1, argv + 1, cfg);
        } else if (!strcmp(cmd, "state")) {
                r = cmd_state(argc - 1, argv + 1, cfg);
        } else if (!strcmp(cmd, "check-config")) {
                r = cmd_check(argc - 1, argv + 1, cfg);
        } else {
                fprintf(stderr, "gwsieve: unknown command \"%s\"\n\n", cmd);
                usage(stderr);
                r = 2;
        }
        gws_config_destroy(cfg);
        return r;
}
