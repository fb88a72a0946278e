/* harness.h - integration test harness: processes, the devbroker, Kafka.
 *
 * Processes: every program a test starts goes through gws_it_spawn(). The
 * harness remembers it and the checked fixture teardown (gws_it_teardown)
 * kills and reaps it. Spawned programs stay in the test's process group:
 * Check runs each test in a forked child that is the leader of its own
 * group and kills that whole group (killpg SIGKILL) once the child ends.
 * A failed ck_assert in fork mode _exit()s without running the teardown,
 * and a Check timeout SIGKILLs the child; the group kill still reaps every
 * spawned program in both cases, so no process outlives its test. With
 * CK_FORK=no a failure longjmps and the teardown runs.
 *
 * Files: each test gets a temp dir (printed at start). Each program's
 * stderr goes to <dir>/<name>.log (stdout too unless piped); librdkafka
 * logs of the harness' own clients go to <dir>/clients.log. The dir is
 * removed when a test passes and kept when it fails; GWS_IT_ASSERT()
 * prints the dir, each log's path and its last lines before failing.
 *
 * Kafka: plain producers (idempotent, keyed by gateway_id, partitioned by
 * CRC32 like `gwsieve replay`), a background feeder that produces at a
 * fixed rate, assign-based readers without a group that collect the `id`
 * of every JSON value into a counting set, committed offsets of a group
 * and high watermarks.
 *
 * @locality test thread, except the feeder's own thread.
 */
#ifndef GWS_IT_HARNESS_H
#define GWS_IT_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <check.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

/* ------------------------------------------------------------------------
 * fixture, logging and assertions
 * ------------------------------------------------------------------------ */

/** @brief Checked fixture setup: makes the per-test temp dir. */
void gws_it_setup(void);

/** @brief Checked fixture teardown: SIGKILLs and reaps every spawned
 *  program still running, removes the temp dir unless the test failed. */
void gws_it_teardown(void);

/** @returns the per-test temp dir (valid between setup and teardown). */
const char *gws_it_dir(void);

/** @brief Writes "<dir>/<name>" into \p buf. @returns \p buf. */
char *gws_it_path(const char *name, char *buf, size_t size);

/** @returns milliseconds of a monotonic clock. */
int64_t gws_it_now_ms(void);

/** @brief Sleeps \p ms milliseconds. */
void gws_it_sleep_ms(int ms);

/** @brief printf to stdout with a "[itest] " prefix, flushed at once (a
 *  failing test _exit()s and would lose buffered output). */
void gws_it_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** @brief Prints the temp dir, every program's log path and the tail of
 *  each log, and marks the test failed (keeps the dir). */
void gws_it_report_failure(void);

/** ck_assert_msg() that first prints where the logs are. */
#define GWS_IT_ASSERT(EXPR, ...)                                               \
        do {                                                                   \
                if (!(EXPR)) {                                                 \
                        gws_it_report_failure();                               \
                        ck_assert_msg(0, __VA_ARGS__);                         \
                }                                                              \
        } while (0)

/* ------------------------------------------------------------------------
 * processes
 * ------------------------------------------------------------------------ */

typedef struct gws_it_proc_s gws_it_proc_t;

#define GWS_IT_PIPE_STDIN  0x1 /**< a pipe to the program's stdin */
#define GWS_IT_PIPE_STDOUT 0x2 /**< a pipe from the program's stdout */

/** @brief Starts \p argv (argv[0] is a path) with posix_spawn(). stdin is
 *  /dev/null and stdout goes to the log unless piped by \p flags; stderr
 *  always goes to <dir>/<name>.log.
 *  @returns the process (owned by the harness, freed at teardown), or NULL
 *           if it cannot be started (reason printed). */
gws_it_proc_t *gws_it_spawn(const char *name, int flags, char *const argv[]);

/** @returns the program's pid. */
pid_t gws_it_proc_pid(const gws_it_proc_t *p);

/** @returns the path of the program's log file. */
const char *gws_it_proc_log(const gws_it_proc_t *p);

/** @brief Waits until \p p's log has a line containing \p needle.
 *  @returns 0, or -1 on timeout. */
int gws_it_proc_log_wait(gws_it_proc_t *p, const char *needle,
                         int timeout_ms);

/** @brief The port of gwsieve's operations endpoint, from its log line
 *  "serving /metrics ... (port N)". @returns the port or -1 (timeout). */
int gws_it_http_port(gws_it_proc_t *p, int timeout_ms);

/** @brief GET http://127.0.0.1:\p port\p path; the body goes to \p body
 *  (NUL-terminated, truncated to \p size - 1).
 *  @returns the HTTP status, or -1 on a connection/parse error. */
int gws_it_http_get(int port, const char *path, char *body, size_t size);

/** @brief Reads one stdout line (without the newline) into \p buf.
 *  @returns 0, or -1 on timeout, EOF or error. */
int gws_it_proc_readline(gws_it_proc_t *p, char *buf, size_t size,
                         int timeout_ms);

/** @brief Writes \p line plus a newline to the program's stdin.
 *  @returns 0 or -1. */
int gws_it_proc_writeline(gws_it_proc_t *p, const char *line);

/** @brief Writes \p len bytes of \p buf (no newline added) to the
 *  program's stdin, all of them (blocking). @returns 0 or -1. */
int gws_it_proc_write(gws_it_proc_t *p, const void *buf, size_t len);

/** @brief Closes the program's stdin (it reads EOF). @returns 0 or -1. */
int gws_it_proc_close_stdin(gws_it_proc_t *p);

/** @brief Sends \p sig. @returns 0 or -1 (already reaped or kill failed). */
int gws_it_proc_signal(gws_it_proc_t *p, int sig);

/** @brief Waits up to \p timeout_ms for the program to exit.
 *  @returns 0 with \p *statusp set (waitpid status), or -1 on timeout. */
int gws_it_proc_wait(gws_it_proc_t *p, int timeout_ms, int *statusp);

/** @returns 1 if the program has not exited (reaps it if it has). */
int gws_it_proc_alive(gws_it_proc_t *p);

/** @brief Describes a waitpid status ("exit 0", "signal 9"). */
const char *gws_it_status_str(int status, char *buf, size_t size);

/* ------------------------------------------------------------------------
 * programs under test
 * ------------------------------------------------------------------------ */

/** @returns "<GWS_BIN_DIR>/<prog>" in \p buf, or NULL if not executable. */
char *gws_it_bin(const char *prog, char *buf, size_t size);

/** @brief Starts gwsieve-devbroker (default topics) and reads its
 *  bootstrap.servers line into \p bootstrap.
 *  @returns the process, or NULL (reason printed). */
gws_it_proc_t *gws_it_devbroker_start(char *bootstrap, size_t size);

/** @brief Sends one control command and reads the answer into \p answer
 *  (optional). @returns 0 if the answer is "ok", else -1. */
int gws_it_devbroker_cmd(gws_it_proc_t *db, const char *cmd, char *answer,
                         size_t answer_size);

/** @brief Writes a gwsieve config to <dir>/<name>: the base test config
 *  (group \p group, workers 2, gw.* topics, sample rate 1.0, commits every
 *  500 ms, short session timeout) with \p overrides (JSON object text,
 *  NULL-able) merged in recursively. @returns \p path or NULL. */
char *gws_it_write_config(const char *name, const char *group,
                          const char *overrides, char *path, size_t size);

/** @brief Starts `gwsieve run --config \p config --bootstrap \p bootstrap`
 *  with its log at <dir>/<name>.log. @returns the process or NULL. */
gws_it_proc_t *gws_it_gwsieve_run(const char *name, const char *config,
                                  const char *bootstrap);

/** @brief Stops a gwsieve process with SIGTERM and waits \p timeout_ms.
 *  @returns the waitpid status, or -1 on timeout (then it is SIGKILLed). */
int gws_it_gwsieve_stop(gws_it_proc_t *p, int timeout_ms);

/* ------------------------------------------------------------------------
 * events
 * ------------------------------------------------------------------------ */

/** A counting set of strings (event ids). */
typedef struct gws_it_idset_s gws_it_idset_t;

gws_it_idset_t *gws_it_idset_new(void);
void gws_it_idset_destroy(gws_it_idset_t *s);
/** @returns the id's count after adding it (1 = first time). */
int gws_it_idset_add(gws_it_idset_t *s, const char *id);
/** @returns how often \p id was added (0 = never). */
int gws_it_idset_count(const gws_it_idset_t *s, const char *id);
/** @returns distinct ids. */
size_t gws_it_idset_size(const gws_it_idset_t *s);
/** @returns adds beyond the first per id. */
size_t gws_it_idset_dups(const gws_it_idset_t *s);
/** @brief Ids of \p want not in \p have; the first is copied to \p example
 *  (optional). @returns their number. */
size_t gws_it_idset_missing(const gws_it_idset_t *want,
                            const gws_it_idset_t *have, char *example,
                            size_t example_size);

/** An NDJSON event file in memory. */
typedef struct gws_it_events_s {
        size_t n;              /**< lines */
        char **lines;          /**< each line, NUL-terminated, no newline */
        size_t *lens;          /**< byte length of each line */
        char **keys;           /**< gateway_id per line, NULL if none */
        gws_it_idset_t *ids;   /**< `id` of every line */
        const char *generator; /**< "gwsieve-gen" or "fallback" */
} gws_it_events_t;

/** @brief Writes \p n events to <dir>/<name> with build/bin/gwsieve-gen
 *  when it exists (`--out --events --seed [--incidents]`), else with the
 *  harness' own generator (one latency incident and one error storm when
 *  \p incidents), then loads them.
 *  @returns the events (gws_it_events_destroy()) or NULL. */
gws_it_events_t *gws_it_events_gen(const char *name, int n, unsigned seed,
                                   int incidents);

/** @brief Loads an NDJSON file. @returns the events or NULL. */
gws_it_events_t *gws_it_events_load(const char *path);

void gws_it_events_destroy(gws_it_events_t *ev);

/** @brief Builds one small valid event (about 1 KB) into \p buf: id
 *  \p id, gateway \p gateway. @returns its length. */
size_t gws_it_event_make(char *buf, size_t size, const char *id,
                         const char *gateway, int64_t ts_ms);

/* ------------------------------------------------------------------------
 * Kafka clients
 * ------------------------------------------------------------------------ */

typedef struct gws_it_producer_s gws_it_producer_t;

/** @brief An idempotent producer. @returns NULL on error (printed). */
gws_it_producer_t *gws_it_producer_new(const char *bootstrap);

/** @brief Produces one message (copied); \p key NULL-able.
 *  @returns 0 or -1. */
int gws_it_producer_send(gws_it_producer_t *p, const char *topic,
                         const void *key, size_t keylen, const void *value,
                         size_t len);

/** @brief Same as gws_it_producer_send() to a given \p partition. */
int gws_it_producer_send_to(gws_it_producer_t *p, const char *topic,
                            int32_t partition, const void *key,
                            size_t keylen, const void *value, size_t len);

/** @brief Waits for every delivery report.
 *  @returns failed deliveries so far, or -1 if some are still pending
 *           after \p timeout_ms. */
int gws_it_producer_flush(gws_it_producer_t *p, int timeout_ms);

void gws_it_producer_destroy(gws_it_producer_t *p);

/** @brief Produces lines [from, to) of \p ev keyed by gateway_id and waits
 *  for delivery. @returns 0 if all were delivered, else -1 (printed). */
int gws_it_produce_events(const char *bootstrap, const char *topic,
                          const gws_it_events_t *ev, size_t from, size_t to,
                          int timeout_ms);

/** A thread producing events at a fixed rate. */
typedef struct gws_it_feeder_s gws_it_feeder_t;

/** @brief Starts producing every line of \p ev (borrowed, must outlive the
 *  feeder) at \p per_sec messages per second. @returns NULL on error. */
gws_it_feeder_t *gws_it_feeder_start(const char *bootstrap, const char *topic,
                                     const gws_it_events_t *ev, int per_sec);

/** @returns lines handed to the producer so far. */
size_t gws_it_feeder_sent(gws_it_feeder_t *f);

/** @brief Waits for the feeder to finish and all deliveries.
 *  @returns 0 if every message was delivered, else -1 (printed). The
 *  feeder is freed in both cases. */
int gws_it_feeder_join(gws_it_feeder_t *f, int timeout_ms);

/** Called for each message a reader gets; \p val is the parsed JSON
 *  (borrowed, NULL if not JSON). */
typedef void(gws_it_record_cb)(const rd_kafka_message_t *rkm, json_t *val,
                               void *opaque);

typedef struct gws_it_reader_s gws_it_reader_t;

/** @brief A consumer assigned to every partition of \p topic from the
 *  beginning, without a group. @returns NULL on error (printed). */
gws_it_reader_t *gws_it_reader_new(const char *bootstrap, const char *topic);

void gws_it_reader_destroy(gws_it_reader_t *r);

/** @brief Sets the per-message callback (NULL-able). */
void gws_it_reader_set_cb(gws_it_reader_t *r, gws_it_record_cb *cb,
                          void *opaque);

/** @brief Polls for up to \p timeout_ms. @returns messages read. */
size_t gws_it_reader_poll(gws_it_reader_t *r, int timeout_ms);

/** @brief Polls until every id of \p want was seen, or \p timeout_ms.
 *  @returns 1 if all were seen, 0 on timeout. */
int gws_it_reader_wait_ids(gws_it_reader_t *r, const gws_it_idset_t *want,
                           int timeout_ms);

/** @brief Polls until at least \p n messages were read, or \p timeout_ms.
 *  @returns 1 or 0. */
int gws_it_reader_wait_count(gws_it_reader_t *r, size_t n, int timeout_ms);

/** @brief Polls until every partition's high watermark (queried now) is
 *  reached. @returns 1 or 0 on timeout. */
int gws_it_reader_read_to_end(gws_it_reader_t *r, int timeout_ms);

/** @returns the ids seen so far (borrowed). */
const gws_it_idset_t *gws_it_reader_ids(const gws_it_reader_t *r);

/** @returns messages read so far. */
size_t gws_it_reader_count(const gws_it_reader_t *r);

/** @returns the topic's partition count, or -1. */
int gws_it_partition_count(const char *bootstrap, const char *topic,
                           int timeout_ms);

/** @brief Fills \p hi[0..nparts) with high watermarks. @returns 0 or -1. */
int gws_it_watermarks(const char *bootstrap, const char *topic, int nparts,
                      int64_t *hi, int timeout_ms);

/** @brief Fills \p off[0..nparts) with \p group's committed offsets (-1
 *  when none) through a consumer with that group.id that never
 *  subscribes. @returns 0 or -1. */
int gws_it_committed(const char *bootstrap, const char *group,
                     const char *topic, int nparts, int64_t *off,
                     int timeout_ms);

/** @brief Commits \p offset of \p topic [\p partition] for \p group
 *  (a consumer with that group.id that never subscribes: a simple,
 *  generation-less commit, as a group's previous run leaves it).
 *  @returns 0 or -1. */
int gws_it_commit(const char *bootstrap, const char *group,
                  const char *topic, int32_t partition, int64_t offset,
                  int timeout_ms);

#endif /* GWS_IT_HARNESS_H */
