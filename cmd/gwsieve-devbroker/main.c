/* main.c - gwsieve-devbroker: an embedded Kafka-protocol cluster for local
 * use, demos and integration tests.
 *
 * The cluster is librdkafka's mock cluster (rd_kafka_mock_cluster_new) hung
 * off a bare producer handle that never produces. The first stdout line is
 * the bootstrap.servers string; after that stdout carries only the answers
 * of the control channel: one line per command read from stdin ("ok" or
 * "error: <why>"), so a test harness can drive fault injection through a
 * pair of pipes. Logs go to stderr. SIGTERM/SIGINT destroy the cluster and
 * exit 0.
 *
 * Threads: the main thread parses arguments, reads stdin and calls the
 * mock API; the mock cluster runs its brokers on its own thread (the mock
 * API calls post ops to it and wait for the result); librdkafka's internal
 * threads call log_cb, which only logs.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "gwsieve/log.h"

/* ------------------------------------------------------------------------
 * types and constants
 * ------------------------------------------------------------------------ */

#define GWS_DEVBROKER_MAX_TOPICS   64    /**< --topic entries kept */
#define GWS_DEVBROKER_MAX_BROKERS  32    /**< sanity bound for --brokers */
#define GWS_DEVBROKER_MAX_PARTS    10000 /**< sanity bound per topic */
#define GWS_DEVBROKER_MAX_ERRCNT   100000 /**< request-errors count bound */
#define GWS_DEVBROKER_OP_GAP_US    5000 /**< after a mock op (lost wake-up) */
#define GWS_DEVBROKER_MAX_BROKER_ERRCNT 10000 /**< ... on one broker */
#define GWS_DEVBROKER_LINE_MAX     1024  /**< longest control command */
#define GWS_DEVBROKER_MAX_ARGS     8     /**< words per control command */
/* Highest Kafka ApiKey librdkafka 2.0.2's protocol table knows
 * (RD_KAFKAP__NUM - 1); the mock indexes its error stacks by it. */
#define GWS_DEVBROKER_MAX_APIKEY   58

/** One topic to create at start-up. */
typedef struct gws_devbroker_topic_s {
        char name[256]; /**< topic name */
        int partitions; /**< partition count */
} gws_devbroker_topic_t;

/** The program state (one instance, on main's stack). */
typedef struct gws_devbroker_s {
        int broker_cnt;                  /**< brokers 1..broker_cnt */
        int ntopics;                     /**< used entries of topics[] */
        gws_devbroker_topic_t topics[GWS_DEVBROKER_MAX_TOPICS];
        rd_kafka_t *rk;                  /**< bare producer owning mc */
        rd_kafka_mock_cluster_t *mc;     /**< the mock cluster */
} gws_devbroker_t;

/** Kafka protocol request names for `request-errors`. */
static const struct {
        const char *name;
        int16_t key;
} api_names[] = {
    {"Produce", 0},          {"Fetch", 1},
    {"ListOffsets", 2},      {"Metadata", 3},
    {"OffsetCommit", 8},     {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},
    {"Heartbeat", 12},       {"LeaveGroup", 13},
    {"SyncGroup", 14},       {"DescribeGroups", 15},
    {"ListGroups", 16},      {"SaslHandshake", 17},
    {"ApiVersion", 18},      {"ApiVersions", 18},
    {"CreateTopics", 19},    {"DeleteTopics", 20},
    {"DeleteRecords", 21},   {"InitProducerId", 22},
    {"OffsetForLeaderEpoch", 23}, {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25}, {"EndTxn", 26},
    {"TxnOffsetCommit", 28}, {"DescribeConfigs", 32},
    {"AlterConfigs", 33},    {"SaslAuthenticate", 36},
    {"CreatePartitions", 37}, {"DeleteGroups", 42},
    {"OffsetDelete", 47},
};

/** The default topic set (gwsieve's standard topics). */
static const gws_devbroker_topic_t default_topics[] = {
    {"gw.raw", 12},  {"gw.retained", 12}, {"gw.alerts", 3},
    {"gw.dlq", 3},   {"gw.state", 12},
};

static volatile sig_atomic_t run = 1;

/* ------------------------------------------------------------------------
 * private prototypes
 * ------------------------------------------------------------------------ */

static void usage(FILE *fp);
static int parse_int(const char *s, long lo, long hi, int *out);
static int topic_add(gws_devbroker_t *db, const char *spec, char *errstr,
                     size_t errstr_size);
static int cmd_exec(gws_devbroker_t *db, char *line, char *errstr,
                    size_t errstr_size);

/* ------------------------------------------------------------------------
 * callbacks
 * ------------------------------------------------------------------------ */

/* @locality signal handler: only clears the flag. */
static void term(int sig) {
        (void)sig;
        run = 0;
}

/* @locality librdkafka internal threads: log only, no API calls. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf) {
        (void)rk;
        gws_log(level, "RDKAFKA", "[%s] %s", fac, buf);
}

/* ------------------------------------------------------------------------
 * usage
 * ------------------------------------------------------------------------ */

static void usage(FILE *fp) {
        fprintf(fp,
"gwsieve-devbroker %s - an embedded Kafka-protocol cluster for local use,\n"
"demos and tests (librdkafka's mock cluster, librdkafka %s)\n"
"\n"
"Usage:\n"
"  gwsieve-devbroker [--brokers N] [--topic NAME:PARTITIONS]...\n"
"                    [--no-default-topics] [--help]\n"
"\n"
"Options:\n"
"  -b, --brokers N          brokers in the cluster, ids 1..N (default 3)\n"
"  -t, --topic NAME:PARTS   create topic NAME with PARTS partitions; adds to\n"
"                           the defaults, or overrides a default of the same\n"
"                           name; repeatable\n"
"      --no-default-topics  do not create the default topics\n"
"  -h, --help               this text\n"
"\n"
"Default topics: gw.raw:12 gw.retained:12 gw.alerts:3 gw.dlq:3 gw.state:12\n"
"Replication factor of every topic: min(3, brokers).\n"
"\n"
"Output: the FIRST stdout line is the bootstrap.servers string, e.g.\n"
"  127.0.0.1:41235,127.0.0.1:39877,127.0.0.1:44453\n"
"Logs go to stderr. SIGTERM or SIGINT destroys the cluster and exits 0.\n"
"\n"
"Control channel (stdin, one command per line; each command answers exactly\n"
"one stdout line, `ok` or `error: <why>`; empty lines and lines starting\n"
"with # are ignored; at EOF on stdin the broker keeps running):\n"
"  broker down <id>          disconnect broker <id> (-1 = all) and refuse\n"
"                            connections; partition leadership does NOT move\n"
"  broker up <id>            accept connections again on the same port\n"
"  rtt <id> <ms>             add <ms> of round-trip delay on broker <id>\n"
"                            (-1 = all; 0 removes it)\n"
"  request-errors <api> <count> <error> [<broker-id>]\n"
"                            fail the next <count> requests of type <api>\n"
"                            with <error>: cluster-wide, or only those sent\n"
"                            to <broker-id> (those come first; at most\n"
"                            10000: the mock grows that stack one by one).\n"
"                            E.g. errors on a group's coordinator end when\n"
"                            `coordinator` moves the group away. <api> is a\n"
"                            number or a name: Produce(0) Fetch(1)\n"
"                            ListOffsets(2)\n"
"                            Metadata(3) OffsetCommit(8) OffsetFetch(9)\n"
"                            FindCoordinator(10) JoinGroup(11) Heartbeat(12)\n"
"                            LeaveGroup(13) SyncGroup(14) InitProducerId(22)\n"
"                            ... <error> is a number or a librdkafka error\n"
"                            name with or without RD_KAFKA_RESP_ERR_, e.g.\n"
"                            NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT,\n"
"                            LEADER_NOT_AVAILABLE, NOT_ENOUGH_REPLICAS,\n"
"                            NOT_COORDINATOR, _TRANSPORT (= disconnect)\n"
"  clear-errors <api>        drop the cluster-wide <api> errors not used yet\n"
"                            (those queued for one broker stay)\n"
"  leader <topic> <partition> <broker-id>\n"
"                            move the partition's leader (-1 = no leader)\n"
"  coordinator <group> <broker-id>\n"
"                            make broker <broker-id> the group's coordinator\n"
"                            (by default a hash of the group id picks it)\n"
"  create-topic <name> <partitions>\n"
"                            create a topic (error if it exists)\n"
"  topic-error <topic> <error>\n"
"                            answer <error> for the topic in Metadata from\n"
"                            now on (NO_ERROR ends it; an unknown topic is\n"
"                            created first). UNKNOWN_TOPIC_OR_PART makes a\n"
"                            librdkafka producer fail produce() calls to it\n"
"                            at once (unknown topic), from its next\n"
"                            metadata on\n"
"  help                      list the commands on stderr, answer ok\n"
"\n"
"Mock cluster behaviour worth knowing:\n"
"  - Auto-creation: a topic that does not exist is created with 4\n"
"    partitions and replication factor min(3, brokers) by the first\n"
"    Metadata request that names it and allows auto-creation (librdkafka\n"
"    producers do by default; so do `kcat -L -t T` and `kcat -C -t T`).\n"
"    `leader` on an unknown topic creates it the same way. Create topics\n"
"    up front (--topic or create-topic) when the partition count matters:\n"
"    a typo in a topic name silently yields a 4-partition topic.\n"
"  - Retention: each partition keeps at most ~5 MB (or 100000 message\n"
"    sets); older data is dropped and the log start offset moves on.\n"
"  - State lives in memory only and is lost when the process exits.\n"
"  - Consumer groups: use a short session.timeout.ms (e.g. 6000) and put\n"
"    cooperative-sticky first in partition.assignment.strategy, or joins\n"
"    can take ~45 s.\n"
"\n"
"Exit status: 0 after a signal, 1 if the cluster cannot start, 2 on a usage\n"
"error.\n",
                GWS_VERSION, rd_kafka_version_str());
}

/* ------------------------------------------------------------------------
 * parsing helpers
 * ------------------------------------------------------------------------ */

/* Strict decimal integer in [lo, hi]. @returns 0 or -1. */
static int parse_int(const char *s, long lo, long hi, int *out) {
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < lo || v > hi)
                return -1;
        *out = (int)v;
        return 0;
}

/* Adds or overrides a NAME:PARTITIONS topic spec. @returns 0 or -1. */
static int topic_add(gws_devbroker_t *db, const char *spec, char *errstr,
                     size_t errstr_size) {
        const char *colon = strrchr(spec, ':');
        size_t nlen;
        int parts, i;

        if (!colon || colon == spec) {
                snprintf(errstr, errstr_size,
                         "--topic \"%s\": expected NAME:PARTITIONS", spec);
                return -1;
        }
        nlen = (size_t)(colon - spec);
        if (nlen >= sizeof(db->topics[0].name)) {
                snprintf(errstr, errstr_size, "--topic \"%s\": name too long",
                         spec);
                return -1;
        }
        if (parse_int(colon + 1, 1, GWS_DEVBROKER_MAX_PARTS, &parts)) {
                snprintf(errstr, errstr_size,
                         "--topic \"%s\": partitions must be 1..%d", spec,
                         GWS_DEVBROKER_MAX_PARTS);
                return -1;
        }
        for (i = 0; i < db->ntopics; i++) {
                if (strlen(db->topics[i].name) == nlen &&
                    !memcmp(db->topics[i].name, spec, nlen)) {
                        db->topics[i].partitions = parts;
                        return 0;
                }
        }
        if (db->ntopics == GWS_DEVBROKER_MAX_TOPICS) {
                snprintf(errstr, errstr_size, "more than %d topics",
                         GWS_DEVBROKER_MAX_TOPICS);
                return -1;
        }
        memcpy(db->topics[db->ntopics].name, spec, nlen);
        db->topics[db->ntopics].name[nlen] = '\0';
        db->topics[db->ntopics].partitions = parts;
        db->ntopics++;
        return 0;
}

/* ApiKey by number or name (case-insensitive, optional "Request" suffix).
 * @returns 0 or -1. */
static int parse_apikey(const char *s, int16_t *out) {
        size_t i, len = strlen(s);
        int v;

        if (!parse_int(s, 0, GWS_DEVBROKER_MAX_APIKEY, &v)) {
                *out = (int16_t)v;
                return 0;
        }
        if (len > 7 && !strcasecmp(s + len - 7, "Request"))
                len -= 7;
        for (i = 0; i < sizeof(api_names) / sizeof(api_names[0]); i++) {
                if (strlen(api_names[i].name) == len &&
                    !strncasecmp(api_names[i].name, s, len)) {
                        *out = api_names[i].key;
                        return 0;
                }
        }
        return -1;
}

/* parse_apikey() of a command argument, with the error message.
 * @returns 0 or -1. */
static int apikey_arg(const char *s, int16_t *out, char *errstr,
                      size_t errstr_size) {
        if (!parse_apikey(s, out))
                return 0;
        snprintf(errstr, errstr_size,
                 "unknown api \"%s\" (a name such as Produce or a number "
                 "0..%d)",
                 s, GWS_DEVBROKER_MAX_APIKEY);
        return -1;
}

/* Error code by number or by librdkafka name, with or without the
 * RD_KAFKA_RESP_ERR_ prefix (case-insensitive), found by scanning
 * rd_kafka_get_err_descs(). @returns 0 or -1. */
static int parse_error(const char *s, rd_kafka_resp_err_t *out) {
        static const char prefix[] = "RD_KAFKA_RESP_ERR_";
        const struct rd_kafka_err_desc *descs;
        size_t i, n;
        int v;

        /* Numbers must still be known codes: a typo should not inject an
         * error the client cannot name. */
        int is_num = !parse_int(s, INT_MIN, INT_MAX, &v);

        if (!is_num && !strncasecmp(s, prefix, sizeof(prefix) - 1))
                s += sizeof(prefix) - 1;
        rd_kafka_get_err_descs(&descs, &n);
        for (i = 0; i < n; i++) {
                if (!descs[i].name)
                        continue;
                if (is_num ? (int)descs[i].code == v
                           : !strcasecmp(descs[i].name, s)) {
                        *out = descs[i].code;
                        return 0;
                }
        }
        return -1;
}

/* A broker id: 1..broker_cnt, or -1 (all) when \p allow_all. */
static int parse_broker(const gws_devbroker_t *db, const char *s,
                        int allow_all, int *out) {
        if (parse_int(s, allow_all ? -1 : 1, db->broker_cnt, out) ||
            *out == 0)
                return -1;
        return 0;
}

/* ------------------------------------------------------------------------
 * control commands
 * ------------------------------------------------------------------------ */

/* Executes one command line (modified in place).
 * @returns 0 (answer "ok") or -1 with \p errstr (answer "error: ..."). */
static int cmd_exec(gws_devbroker_t *db, char *line, char *errstr,
                    size_t errstr_size) {
        char *argv[GWS_DEVBROKER_MAX_ARGS + 1], *save = NULL, *tok;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        int argc = 0, id, n;

        for (tok = strtok_r(line, " \t\r", &save); tok;
             tok = strtok_r(NULL, " \t\r", &save)) {
                if (argc == GWS_DEVBROKER_MAX_ARGS) {
                        snprintf(errstr, errstr_size, "too many words");
                        return -1;
                }
                argv[argc++] = tok;
        }
        argv[argc] = NULL;

        if (!strcmp(argv[0], "help")) {
                usage(stderr);
                return 0;

        } else if (!strcmp(argv[0], "broker")) {
                if (argc != 3 || (strcmp(argv[1], "down") &&
                                  strcmp(argv[1], "up"))) {
                        snprintf(errstr, errstr_size,
                                 "usage: broker down|up <id>");
                        return -1;
                }
                if (parse_broker(db, argv[2], 1, &id)) {
                        snprintf(errstr, errstr_size,
                                 "broker id \"%s\": must be 1..%d or -1",
                                 argv[2], db->broker_cnt);
                        return -1;
                }
                err = !strcmp(argv[1], "down")
                          ? rd_kafka_mock_broker_set_down(db->mc, id)
                          : rd_kafka_mock_broker_set_up(db->mc, id);
                if (!err)
                        gws_log(GWS_LOG_NOTICE, "CONTROL", "broker %d %s", id,
                                argv[1]);

        } else if (!strcmp(argv[0], "rtt")) {
                if (argc != 3) {
                        snprintf(errstr, errstr_size, "usage: rtt <id> <ms>");
                        return -1;
                }
                if (parse_broker(db, argv[1], 1, &id)) {
                        snprintf(errstr, errstr_size,
                                 "broker id \"%s\": must be 1..%d or -1",
                                 argv[1], db->broker_cnt);
                        return -1;
                }
                /* One hour: anything longer is a typo, and would hold
                 * the client's requests past every timeout anyway. */
                if (parse_int(argv[2], 0, 3600 * 1000, &n)) {
                        snprintf(errstr, errstr_size,
                                 "rtt \"%s\": must be 0..3600000 ms", argv[2]);
                        return -1;
                }
                err = rd_kafka_mock_broker_set_rtt(db->mc, id, n);
                if (!err)
                        gws_log(GWS_LOG_NOTICE, "CONTROL",
                                "broker %d rtt %d ms", id, n);

        } else if (!strcmp(argv[0], "request-errors")) {
                rd_kafka_resp_err_t code, *errs;
                int16_t apikey;
                int i;

                if (argc != 4 && argc != 5) {
                        snprintf(errstr, errstr_size,
                                 "usage: request-errors <api> <count> "
                                 "<error> [<broker-id>]");
                        return -1;
                }
                id = -1;
                if (argc == 5 && parse_broker(db, argv[4], 0, &id)) {
                        snprintf(errstr, errstr_size,
                                 "broker id \"%s\": must be 1..%d", argv[4],
                                 db->broker_cnt);
                        return -1;
                }
                if (apikey_arg(argv[1], &apikey, errstr, errstr_size))
                        return -1;
                if (parse_int(argv[2], 1, GWS_DEVBROKER_MAX_ERRCNT, &n)) {
                        snprintf(errstr, errstr_size,
                                 "count \"%s\": must be 1..%d", argv[2],
                                 GWS_DEVBROKER_MAX_ERRCNT);
                        return -1;
                }
                if (parse_error(argv[3], &code)) {
                        snprintf(errstr, errstr_size,
                                 "unknown error \"%s\" (a librdkafka error "
                                 "name such as NOT_LEADER_FOR_PARTITION, or "
                                 "a code)",
                                 argv[3]);
                        return -1;
                }
                if (id != -1 && n > GWS_DEVBROKER_MAX_BROKER_ERRCNT) {
                        snprintf(errstr, errstr_size,
                                 "count %d: at most %d with a broker id", n,
                                 GWS_DEVBROKER_MAX_BROKER_ERRCNT);
                        return -1;
                }
                if (id != -1) {
                        /* one (error, rtt) pair per call: the API is
                         * variadic (and its stack grows by 4 + the count
                         * per call: quadratic, hence the bound) */
                        for (i = 0; i < n && !err; i++)
                                err =
                                    rd_kafka_mock_broker_push_request_error_rtts(
                                        db->mc, id, apikey, 1, code, 0);
                        if (!err)
                                gws_log(GWS_LOG_NOTICE, "CONTROL",
                                        "next %d requests of ApiKey %d to "
                                        "broker %d fail with %s",
                                        n, (int)apikey, id,
                                        rd_kafka_err2name(code));
                } else {
                        if (!(errs = malloc((size_t)n * sizeof(*errs)))) {
                                snprintf(errstr, errstr_size, "out of memory");
                                return -1;
                        }
                        for (i = 0; i < n; i++)
                                errs[i] = code;
                        rd_kafka_mock_push_request_errors_array(
                            db->mc, apikey, (size_t)n, errs);
                        free(errs);
                        gws_log(GWS_LOG_NOTICE, "CONTROL",
                                "next %d requests of ApiKey %d fail with %s",
                                n, (int)apikey, rd_kafka_err2name(code));
                }

        } else if (!strcmp(argv[0], "clear-errors")) {
                int16_t apikey;

                if (argc != 2) {
                        snprintf(errstr, errstr_size,
                                 "usage: clear-errors <api>");
                        return -1;
                }
                if (apikey_arg(argv[1], &apikey, errstr, errstr_size))
                        return -1;
                rd_kafka_mock_clear_request_errors(db->mc, apikey);
                gws_log(GWS_LOG_NOTICE, "CONTROL",
                        "cluster-wide errors of ApiKey %d cleared",
                        (int)apikey);

        } else if (!strcmp(argv[0], "leader")) {
                int part;

                if (argc != 4) {
                        snprintf(errstr, errstr_size,
                                 "usage: leader <topic> <partition> "
                                 "<broker-id>");
                        return -1;
                }
                if (parse_int(argv[2], 0, INT_MAX, &part)) {
                        snprintf(errstr, errstr_size,
                                 "partition \"%s\": must be >= 0", argv[2]);
                        return -1;
                }
                if (parse_broker(db, argv[3], 1, &id)) {
                        snprintf(errstr, errstr_size,
                                 "broker id \"%s\": must be 1..%d or -1",
                                 argv[3], db->broker_cnt);
                        return -1;
                }
                err = rd_kafka_mock_partition_set_leader(db->mc, argv[1], part,
                                                         id);
                if (!err)
                        gws_log(GWS_LOG_NOTICE, "CONTROL",
                                "%s [%d] leader is now broker %d", argv[1],
                                part, id);

        } else if (!strcmp(argv[0], "coordinator")) {
                if (argc != 3) {
                        snprintf(errstr, errstr_size,
                                 "usage: coordinator <group> <broker-id>");
                        return -1;
                }
                if (parse_broker(db, argv[2], 0, &id)) {
                        snprintf(errstr, errstr_size,
                                 "broker id \"%s\": must be 1..%d", argv[2],
                                 db->broker_cnt);
                        return -1;
                }
                err = rd_kafka_mock_coordinator_set(db->mc, "group", argv[1],
                                                    id);
                if (!err)
                        gws_log(GWS_LOG_NOTICE, "CONTROL",
                                "group \"%s\": coordinator is now broker %d",
                                argv[1], id);

        } else if (!strcmp(argv[0], "create-topic")) {
                if (argc != 3) {
                        snprintf(errstr, errstr_size,
                                 "usage: create-topic <name> <partitions>");
                        return -1;
                }
                if (parse_int(argv[2], 1, GWS_DEVBROKER_MAX_PARTS, &n)) {
                        snprintf(errstr, errstr_size,
                                 "partitions \"%s\": must be 1..%d", argv[2],
                                 GWS_DEVBROKER_MAX_PARTS);
                        return -1;
                }
                err = rd_kafka_mock_topic_create(
                    db->mc, argv[1], n,
                    db->broker_cnt < 3 ? db->broker_cnt : 3);
                if (!err)
                        gws_log(GWS_LOG_NOTICE, "CONTROL",
                                "created topic %s with %d partitions",
                                argv[1], n);

        } else if (!strcmp(argv[0], "topic-error")) {
                rd_kafka_resp_err_t code;

                if (argc != 3) {
                        snprintf(errstr, errstr_size,
                                 "usage: topic-error <topic> <error>");
                        return -1;
                }
                if (parse_error(argv[2], &code)) {
                        snprintf(errstr, errstr_size,
                                 "unknown error \"%s\" (a librdkafka error "
                                 "name such as UNKNOWN_TOPIC_OR_PART, "
                                 "NO_ERROR, or a code)",
                                 argv[2]);
                        return -1;
                }
                rd_kafka_mock_topic_set_error(db->mc, argv[1], code);
                gws_log(GWS_LOG_NOTICE, "CONTROL",
                        "topic %s: Metadata answers %s", argv[1],
                        rd_kafka_err2name(code));

        } else {
                snprintf(errstr, errstr_size,
                         "unknown command \"%s\" (try help)", argv[0]);
                return -1;
        }

        if (err) {
                snprintf(errstr, errstr_size, "%s: %s", rd_kafka_err2name(err),
                         rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

/* Handles one complete stdin line: answers on stdout unless it is empty
 * or a comment. */
static void line_handle(gws_devbroker_t *db, char *line) {
        char errstr[512];
        char *p = line;

        while (isspace((unsigned char)*p))
                p++;
        if (!*p || *p == '#')
                return;
        if (cmd_exec(db, p, errstr, sizeof(errstr)) == 0) {
                /* Before the answer: a client that sends its next command
                 * at once must not hit the mock's lost wake-up (see the
                 * topic creation in main()). */
                usleep(GWS_DEVBROKER_OP_GAP_US);
                fputs("ok\n", stdout);
        } else {
                gws_log(GWS_LOG_WARNING, "CONTROL", "command failed: %s",
                        errstr);
                fprintf(stdout, "error: %s\n", errstr);
        }
        fflush(stdout);
}

/* ------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------ */

int main(int argc, char **argv) {
        static const struct option longopts[] = {
            {"brokers", required_argument, NULL, 'b'},
            {"topic", required_argument, NULL, 't'},
            {"no-default-topics", no_argument, NULL, 'N'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0}};
        static gws_devbroker_t db; /* large (topic names): not on the stack */
        char errstr[512];
        char line[GWS_DEVBROKER_LINE_MAX];
        size_t linelen = 0;
        int line_overflow = 0, stdin_open = 1, use_defaults = 1;
        int c, i, rc = 1;
        const char *extra[GWS_DEVBROKER_MAX_TOPICS];
        int nextra = 0;
        rd_kafka_conf_t *conf = NULL;
        struct sigaction sa;

        gws_log_set_prog("gwsieve-devbroker");
        db.broker_cnt = 3;

        while ((c = getopt_long(argc, argv, "b:t:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'b':
                        if (parse_int(optarg, 1, GWS_DEVBROKER_MAX_BROKERS,
                                      &db.broker_cnt)) {
                                fprintf(stderr,
                                        "gwsieve-devbroker: --brokers must be "
                                        "1..%d\n",
                                        GWS_DEVBROKER_MAX_BROKERS);
                                return 2;
                        }
                        break;
                case 't':
                        if (nextra == GWS_DEVBROKER_MAX_TOPICS) {
                                fprintf(stderr, "gwsieve-devbroker: too many "
                                                "--topic options\n");
                                return 2;
                        }
                        extra[nextra++] = optarg;
                        break;
                case 'N':
                        use_defaults = 0;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "gwsieve-devbroker: unexpected argument "
                                "\"%s\"\n",
                        argv[optind]);
                return 2;
        }

        if (use_defaults) {
                for (i = 0; i < (int)(sizeof(default_topics) /
                                      sizeof(default_topics[0]));
                     i++)
                        db.topics[db.ntopics++] = default_topics[i];
        }
        for (i = 0; i < nextra; i++) {
                if (topic_add(&db, extra[i], errstr, sizeof(errstr))) {
                        fprintf(stderr, "gwsieve-devbroker: %s\n", errstr);
                        return 2;
                }
        }

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = term;
        sigemptyset(&sa.sa_mask);
        /* No SA_RESTART: poll() below returns EINTR so shutdown is prompt. */
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        /* A reader that goes away must not kill the cluster mid-test. */
        signal(SIGPIPE, SIG_IGN);

        conf = rd_kafka_conf_new();
        rd_kafka_conf_set_log_cb(conf, log_cb);
        if (rd_kafka_conf_set(conf, "client.id", "gwsieve-devbroker", errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK) {
                gws_log(GWS_LOG_ERR, "INIT", "%s", errstr);
                goto out;
        }
        /* The handle only hosts the cluster and never connects anywhere;
         * without this it warns about the missing bootstrap.servers. */
        if (rd_kafka_conf_set(conf, "log_level", "3", errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK) {
                gws_log(GWS_LOG_ERR, "INIT", "%s", errstr);
                goto out;
        }
        db.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!db.rk) {
                gws_log(GWS_LOG_ERR, "INIT", "rd_kafka_new: %s", errstr);
                goto out;
        }
        conf = NULL; /* now owned by db.rk */

        db.mc = rd_kafka_mock_cluster_new(db.rk, db.broker_cnt);
        if (!db.mc) {
                gws_log(GWS_LOG_ERR, "INIT",
                        "cannot create a mock cluster of %d brokers",
                        db.broker_cnt);
                goto out;
        }
        for (i = 0; i < db.ntopics; i++) {
                rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
                    db.mc, db.topics[i].name, db.topics[i].partitions,
                    db.broker_cnt < 3 ? db.broker_cnt : 3);
                if (err) {
                        gws_log(GWS_LOG_ERR, "INIT",
                                "cannot create topic %s: %s",
                                db.topics[i].name, rd_kafka_err2str(err));
                        goto out;
                }
                gws_log(GWS_LOG_INFO, "INIT", "topic %s: %d partitions",
                        db.topics[i].name, db.topics[i].partitions);
                /* librdkafka 2.0.2's mock thread serves its op queue (and
                 * re-arms the wake-up) before it drains the wake-up pipe:
                 * an op posted in between loses its wake-up byte and waits
                 * for the thread's 1 s poll timeout. Back-to-back creates
                 * hit that gap about every other start (1-2 s, up to 10 s
                 * with many topics); a pause lets the drain happen first. */
                usleep(GWS_DEVBROKER_OP_GAP_US);
        }

        fprintf(stdout, "%s\n", rd_kafka_mock_cluster_bootstraps(db.mc));
        fflush(stdout);
        gws_log(GWS_LOG_NOTICE, "INIT", "%d brokers at %s", db.broker_cnt,
                rd_kafka_mock_cluster_bootstraps(db.mc));

        while (run) {
                struct pollfd pfd = {.fd = stdin_open ? STDIN_FILENO : -1,
                                     .events = POLLIN};
                char buf[4096];
                ssize_t r, k;
                /* 500 ms: a signal arriving between the `run` check and
                 * poll() is noticed within this bound; EINTR covers the
                 * common case. It also paces rd_kafka_poll() on the idle
                 * host handle, which has no work that needs promptness. */
                int n = poll(&pfd, 1, 500);

                rd_kafka_poll(db.rk, 0);
                if (n <= 0 || !(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
                        continue;
                r = read(STDIN_FILENO, buf, sizeof(buf));
                if (r < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (r <= 0) {
                        /* EOF (or a broken stdin): keep serving Kafka. */
                        if (linelen && !line_overflow) {
                                line[linelen] = '\0';
                                line_handle(&db, line);
                        }
                        stdin_open = 0;
                        gws_log(GWS_LOG_INFO, "CONTROL",
                                "stdin closed: control channel off");
                        continue;
                }
                for (k = 0; k < r; k++) {
                        if (buf[k] != '\n') {
                                if (linelen + 1 < sizeof(line))
                                        line[linelen++] = buf[k];
                                else
                                        line_overflow = 1;
                                continue;
                        }
                        line[linelen] = '\0';
                        if (line_overflow) {
                                fputs("error: line too long\n", stdout);
                                fflush(stdout);
                        } else {
                                line_handle(&db, line);
                        }
                        linelen = 0;
                        line_overflow = 0;
                }
        }

        gws_log(GWS_LOG_NOTICE, "EXIT", "signal received: stopping cluster");
        rc = 0;
out:
        if (db.mc)
                rd_kafka_mock_cluster_destroy(db.mc);
        if (db.rk)
                rd_kafka_destroy(db.rk);
        if (conf)
                rd_kafka_conf_destroy(conf);
        return rc;
}
