/* harness.c - integration test harness: processes, the devbroker, Kafka.
 *
 * See harness.h for the process-group and temp-dir contract. Everything
 * here runs on the test's thread except feeder_main() (its own thread) and
 * the librdkafka callbacks, whose thread is noted on each.
 */
#include "harness.h"

#include <errno.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ------------------------------------------------------------------------
 * constants and types
 * ------------------------------------------------------------------------ */

#define GWS_IT_MAX_PROCS   16   /**< programs per test */
#define GWS_IT_LOG_TAIL    15   /**< log lines shown on failure */
/* Generous: the devbroker prints its line once its topics exist (~50-150
 * ms; before it paused between creates, librdkafka 2.0.2's mock lost a
 * wake-up in about every other start and took 1-2 s), but a loaded 2-core
 * CI box can stall a fresh process. */
#define GWS_IT_DEVBROKER_START_MS 15000
/* A control command is one mock-thread round trip (~ms); 10 s only
 * guards against a wedged devbroker. */
#define GWS_IT_DEVBROKER_CMD_MS   10000
/* Longer than any fault a test injects (a broker down for ~3 s, retried
 * produce errors), far shorter than a test's Check timeout: a lost message
 * shows up as a delivery failure, not as a hung test. */
#define GWS_IT_MSG_TIMEOUT_MS     120000
/* Metadata and offset queries retry inside this bound: the group
 * coordinator can be briefly unavailable right after a broker fault. */
#define GWS_IT_QUERY_RETRY_MS     200

struct gws_it_proc_s {
        char name[64];         /**< for messages and the log name */
        char log[PATH_MAX];    /**< <dir>/<name>.log */
        pid_t pid;             /**< the program */
        int in_fd;             /**< write end of its stdin, or -1 */
        int out_fd;            /**< read end of its stdout, or -1 */
        int reaped;            /**< waitpid() collected it */
        int essential;         /**< the test cannot go on without it */
        int death_told;        /**< its death was reported */
        int status;            /**< its status once reaped */
        char buf[8192];        /**< stdout bytes not yet returned */
        size_t buflen;         /**< used bytes of buf */
};

/* Per-test state: one test per process in fork mode, reset by setup. */
static struct {
        char dir[PATH_MAX];                     /**< temp dir, "" if none */
        int failed;                             /**< keep the dir */
        int nprocs;                             /**< used procs[] */
        gws_it_proc_t *procs[GWS_IT_MAX_PROCS]; /**< spawned programs */
        FILE *clients_log;                      /**< our clients' logs */
        int nclients;                           /**< unique client names */
        int64_t t0;                             /**< setup time (ms) */
} it;

/* ------------------------------------------------------------------------
 * time, printing, files
 * ------------------------------------------------------------------------ */

int64_t gws_it_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void gws_it_sleep_ms(int ms) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
                ;
}

void gws_it_printf(const char *fmt, ...) {
        va_list ap;
        fputs("[itest] ", stdout);
        va_start(ap, fmt);
        vfprintf(stdout, fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
        fflush(stdout);
}

const char *gws_it_dir(void) {
        return it.dir;
}

char *gws_it_path(const char *name, char *buf, size_t size) {
        if ((size_t)snprintf(buf, size, "%s/%s", it.dir, name) >= size)
                gws_it_printf("path truncated: %s", buf);
        return buf;
}

static int rm_cb(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        remove(path);
        return 0;
}

/* Prints the last GWS_IT_LOG_TAIL lines of \p path, each indented. */
static void print_tail(const char *path) {
        FILE *fp = fopen(path, "r");
        char *data = NULL, *line, *save = NULL;
        long size, start;
        int lines = 0;

        if (!fp)
                return;
        if (fseek(fp, 0, SEEK_END) || (size = ftell(fp)) <= 0)
                goto out;
        /* The last 16 KB hold the tail of any sane log. */
        start = size > 16384 ? size - 16384 : 0;
        if (fseek(fp, start, SEEK_SET) ||
            !(data = malloc((size_t)(size - start) + 1)))
                goto out;
        size = (long)fread(data, 1, (size_t)(size - start), fp);
        data[size] = '\0';
        for (start = size - 1; start > 0; start--) {
                if (data[start - 1] == '\n' && ++lines > GWS_IT_LOG_TAIL)
                        break;
        }
        for (line = strtok_r(data + start, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
                fprintf(stdout, "      | %s\n", line);
out:
        free(data);
        fclose(fp);
}

void gws_it_report_failure(void) {
        char path[PATH_MAX];
        int i;

        it.failed = 1;
        gws_it_printf("FAILED: logs kept in %s", it.dir);
        for (i = 0; i < it.nprocs; i++) {
                gws_it_proc_t *p = it.procs[i];
                char st[64];
                gws_it_printf("  %s (pid %d, %s) log: %s", p->name,
                              (int)p->pid,
                              gws_it_proc_alive(p)
                                  ? "running"
                                  : gws_it_status_str(p->status, st,
                                                      sizeof(st)),
                              p->log);
                print_tail(p->log);
        }
        gws_it_printf("  harness clients log: %s",
                      gws_it_path("clients.log", path, sizeof(path)));
        fflush(stdout);
}

/* ------------------------------------------------------------------------
 * fixture
 * ------------------------------------------------------------------------ */

void gws_it_setup(void) {
        const char *tmp = getenv("TMPDIR");
        char path[PATH_MAX];

        memset(&it, 0, sizeof(it));
        /* A devbroker that died must not kill the test on write(). */
        signal(SIGPIPE, SIG_IGN);
        snprintf(it.dir, sizeof(it.dir), "%s/gws-itest-XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        ck_assert_msg(mkdtemp(it.dir) != NULL, "mkdtemp %s: %s", it.dir,
                      strerror(errno));
        it.clients_log = fopen(gws_it_path("clients.log", path, sizeof(path)),
                               "a");
        it.t0 = gws_it_now_ms();
        gws_it_printf("test dir %s", it.dir);
}

void gws_it_teardown(void) {
        int i;

        for (i = 0; i < it.nprocs; i++) {
                gws_it_proc_t *p = it.procs[i];
                if (!p->reaped) {
                        kill(p->pid, SIGKILL);
                        waitpid(p->pid, &p->status, 0);
                        p->reaped = 1;
                }
                if (p->in_fd != -1)
                        close(p->in_fd);
                if (p->out_fd != -1)
                        close(p->out_fd);
                free(p);
        }
        it.nprocs = 0;
        if (it.clients_log) {
                fclose(it.clients_log);
                it.clients_log = NULL;
        }
        if (it.dir[0] && !it.failed && !getenv("GWS_ITEST_KEEP"))
                nftw(it.dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        else if (it.dir[0])
                gws_it_printf("kept %s", it.dir);
        /* what CI spends per test (`grep 'itest\] test.* took'`); Check
         * names the running test only from here on, not in setup */
        gws_it_printf("%s took %.1f s",
                      tcase_name() ? tcase_name() : "test",
                      (gws_it_now_ms() - it.t0) / 1000.0);
}

/* ------------------------------------------------------------------------
 * processes
 * ------------------------------------------------------------------------ */

gws_it_proc_t *gws_it_spawn(const char *name, int flags, char *const argv[]) {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, defaults;
        int in[2] = {-1, -1}, out[2] = {-1, -1}, r;
        gws_it_proc_t *p = NULL;

        if (it.nprocs == GWS_IT_MAX_PROCS) {
                gws_it_printf("spawn %s: too many processes", name);
                return NULL;
        }
        if (!(p = calloc(1, sizeof(*p))))
                return NULL;
        snprintf(p->name, sizeof(p->name), "%s", name);
        p->in_fd = p->out_fd = -1;
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        if ((size_t)snprintf(p->log, sizeof(p->log), "%s/%s.log", it.dir,
                             name) >= sizeof(p->log)) {
                errno = ENAMETOOLONG;
                goto err;
        }
        /* O_CLOEXEC: our pipe ends must not leak into other children, or a
         * devbroker would never see EOF and pipes would stay open. */
        if ((flags & GWS_IT_PIPE_STDIN) && pipe2(in, O_CLOEXEC) == -1)
                goto err;
        if ((flags & GWS_IT_PIPE_STDOUT) && pipe2(out, O_CLOEXEC) == -1)
                goto err;
        if (flags & GWS_IT_PIPE_STDIN)
                posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        else
                posix_spawn_file_actions_addopen(&fa, 0, "/dev/null",
                                                 O_RDONLY, 0);
        if (flags & GWS_IT_PIPE_STDOUT)
                posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        else
                posix_spawn_file_actions_addopen(
                    &fa, 1, p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_addopen(&fa, 2, p->log,
                                         O_WRONLY | O_CREAT | O_APPEND, 0644);
        /* The program gets default signal handling whatever Check or we
         * set up (SIGPIPE is ignored here). It stays in our process group
         * so Check's killpg() after the test reaches it (harness.h). */
        sigemptyset(&none);
        sigemptyset(&defaults);
        sigaddset(&defaults, SIGPIPE);
        sigaddset(&defaults, SIGTERM);
        sigaddset(&defaults, SIGINT);
        sigaddset(&defaults, SIGCHLD);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &defaults);
        posix_spawnattr_setflags(&attr,
                                 POSIX_SPAWN_SETSIGMASK |
                                     POSIX_SPAWN_SETSIGDEF);

        r = posix_spawn(&p->pid, argv[0], &fa, &attr, argv, environ);
        if (r) {
                errno = r;
                goto err;
        }
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (in[0] != -1) {
                close(in[0]);
                p->in_fd = in[1];
        }
        if (out[1] != -1) {
                close(out[1]);
                p->out_fd = out[0];
        }
        it.procs[it.nprocs++] = p;
        gws_it_printf("started %s (pid %d), log %s", name, (int)p->pid,
                      p->log);
        return p;

err:
        gws_it_printf("spawn %s (%s): %s", name, argv[0], strerror(errno));
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (in[0] != -1) {
                close(in[0]);
                close(in[1]);
        }
        if (out[0] != -1) {
                close(out[0]);
                close(out[1]);
        }
        free(p);
        return NULL;
}

pid_t gws_it_proc_pid(const gws_it_proc_t *p) {
        return p->pid;
}

const char *gws_it_proc_log(const gws_it_proc_t *p) {
        return p->log;
}

int gws_it_proc_readline(gws_it_proc_t *p, char *buf, size_t size,
                         int timeout_ms) {
        int64_t deadline = gws_it_now_ms() + timeout_ms;

        if (p->out_fd == -1)
                return -1;
        for (;;) {
                char *nl = memchr(p->buf, '\n', p->buflen);
                struct pollfd pfd = {.fd = p->out_fd, .events = POLLIN};
                int64_t left;
                ssize_t r;

                if (nl) {
                        size_t len = (size_t)(nl - p->buf);
                        size_t n = len < size - 1 ? len : size - 1;
                        memcpy(buf, p->buf, n);
                        buf[n] = '\0';
                        p->buflen -= len + 1;
                        memmove(p->buf, nl + 1, p->buflen);
                        return 0;
                }
                if (p->buflen == sizeof(p->buf))
                        p->buflen = 0; /* an absurd line: drop it */
                left = deadline - gws_it_now_ms();
                if (left <= 0)
                        return -1;
                if (poll(&pfd, 1, (int)left) <= 0)
                        continue;
                r = read(p->out_fd, p->buf + p->buflen,
                         sizeof(p->buf) - p->buflen);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return -1;
                p->buflen += (size_t)r;
        }
}

int gws_it_proc_writeline(gws_it_proc_t *p, const char *line) {
        size_t len = strlen(line);
        char *buf;
        int rc = -1;

        if (p->in_fd == -1 || !(buf = malloc(len + 1)))
                return -1;
        memcpy(buf, line, len);
        buf[len] = '\n';
        /* A line is far below PIPE_BUF: one write() is atomic. */
        if (write(p->in_fd, buf, len + 1) == (ssize_t)(len + 1))
                rc = 0;
        free(buf);
        return rc;
}

int gws_it_proc_write(gws_it_proc_t *p, const void *buf, size_t len) {
        const char *b = buf;
        if (p->in_fd == -1)
                return -1;
        while (len > 0) {
                ssize_t w = write(p->in_fd, b, len);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return -1;
                b += w;
                len -= (size_t)w;
        }
        return 0;
}

int gws_it_proc_close_stdin(gws_it_proc_t *p) {
        if (p->in_fd == -1)
                return -1;
        close(p->in_fd);
        p->in_fd = -1;
        return 0;
}

int gws_it_proc_signal(gws_it_proc_t *p, int sig) {
        if (p->reaped)
                return -1;
        return kill(p->pid, sig);
}

int gws_it_proc_wait(gws_it_proc_t *p, int timeout_ms, int *statusp) {
        int64_t deadline = gws_it_now_ms() + timeout_ms;

        while (!p->reaped) {
                pid_t r = waitpid(p->pid, &p->status, WNOHANG);
                if (r == p->pid) {
                        p->reaped = 1;
                        break;
                }
                if (gws_it_now_ms() >= deadline)
                        return -1;
                /* 20 ms: exit time is measured to this precision only. */
                gws_it_sleep_ms(20);
        }
        if (statusp)
                *statusp = p->status;
        return 0;
}

int gws_it_proc_alive(gws_it_proc_t *p) {
        if (!p->reaped && waitpid(p->pid, &p->status, WNOHANG) == p->pid)
                p->reaped = 1;
        return !p->reaped;
}

const char *gws_it_status_str(int status, char *buf, size_t size) {
        if (WIFEXITED(status))
                snprintf(buf, size, "exit %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(buf, size, "signal %d", WTERMSIG(status));
        else
                snprintf(buf, size, "status 0x%x", status);
        return buf;
}

/* @returns 1 if an essential program (the devbroker) has exited: waits
 * on Kafka then stop at once with a clear message instead of running into
 * their timeouts one after another. */
static int essential_dead(void) {
        int i;
        for (i = 0; i < it.nprocs; i++) {
                gws_it_proc_t *p = it.procs[i];
                char st[64];
                if (!p->essential || gws_it_proc_alive(p))
                        continue;
                if (!p->death_told++)
                        gws_it_printf("%s (pid %d) is gone (%s): was it "
                                      "killed from outside the test?",
                                      p->name, (int)p->pid,
                                      gws_it_status_str(p->status, st,
                                                        sizeof(st)));
                return 1;
        }
        return 0;
}

/* ------------------------------------------------------------------------
 * programs under test
 * ------------------------------------------------------------------------ */

char *gws_it_bin(const char *prog, char *buf, size_t size) {
        snprintf(buf, size, "%s/%s", GWS_BIN_DIR, prog);
        return access(buf, X_OK) == 0 ? buf : NULL;
}

gws_it_proc_t *gws_it_devbroker_start(char *bootstrap, size_t size) {
        char bin[PATH_MAX];
        char *argv[2];
        gws_it_proc_t *db;

        if (!gws_it_bin("gwsieve-devbroker", bin, sizeof(bin))) {
                gws_it_printf("%s is missing: build it first", bin);
                return NULL;
        }
        argv[0] = bin;
        argv[1] = NULL;
        if (!(db = gws_it_spawn("devbroker",
                                GWS_IT_PIPE_STDIN | GWS_IT_PIPE_STDOUT, argv)))
                return NULL;
        if (gws_it_proc_readline(db, bootstrap, size,
                                 GWS_IT_DEVBROKER_START_MS) ||
            !strchr(bootstrap, ':')) {
                gws_it_printf("devbroker printed no bootstrap line");
                return NULL;
        }
        gws_it_printf("devbroker at %s", bootstrap);
        db->essential = 1;
        return db;
}

int gws_it_devbroker_cmd(gws_it_proc_t *db, const char *cmd, char *answer,
                         size_t answer_size) {
        char line[512];

        if (gws_it_proc_writeline(db, cmd) ||
            gws_it_proc_readline(db, line, sizeof(line),
                                 GWS_IT_DEVBROKER_CMD_MS)) {
                snprintf(line, sizeof(line), "error: no answer");
        }
        if (answer)
                snprintf(answer, answer_size, "%s", line);
        gws_it_printf("devbroker> %s -> %s", cmd, line);
        return strcmp(line, "ok") ? -1 : 0;
}

char *gws_it_write_config(const char *name, const char *group,
                          const char *overrides, char *path, size_t size) {
        json_t *cfg, *ov = NULL;
        json_error_t jerr;
        char *ret = NULL;

        /* session.timeout.ms 6000 / heartbeat 500 ms: the mock's group
         * coordinator then notices a killed member in ~6 s instead of the
         * default 45 s; cooperative-sticky is what gwsieve sets anyway and
         * joins quickly on the mock. Commits every 500 ms keep the waits
         * for "offsets reached the end" short. */
        /* http.listen port 0: several workers share this host. */
        cfg = json_pack(
            "{s:s, s:i, s:{s:s, s:s, s:s, s:s}, s:{s:f}, s:i, s:{s:s},"
            " s:{s:s, s:s, s:s}, s:{s:s}}",
            "group", group, "workers", 2, "topics", "input", "gw.raw",
            "retained", "gw.retained", "alerts", "gw.alerts", "dlq", "gw.dlq",
            "filter", "normal_sample_rate", 1.0, "commit_interval_ms", 500,
            "log", "level", "info", "kafka", "session.timeout.ms", "6000",
            "heartbeat.interval.ms", "500", "partition.assignment.strategy",
            "cooperative-sticky", "http", "listen", "127.0.0.1:0");
        if (!cfg)
                goto out;
        if (overrides) {
                if (!(ov = json_loads(overrides, 0, &jerr))) {
                        gws_it_printf("config overrides: %s", jerr.text);
                        goto out;
                }
                if (json_object_update_recursive(cfg, ov))
                        goto out;
        }
        gws_it_path(name, path, size);
        if (json_dump_file(cfg, path, JSON_INDENT(2) | JSON_SORT_KEYS) == 0)
                ret = path;
out:
        json_decref(ov);
        json_decref(cfg);
        return ret;
}

gws_it_proc_t *gws_it_gwsieve_run(const char *name, const char *config,
                                  const char *bootstrap) {
        char bin[PATH_MAX];
        char *argv[] = {bin, "run", "--config", (char *)config, "--bootstrap",
                        (char *)bootstrap, NULL};

        if (!gws_it_bin("gwsieve", bin, sizeof(bin))) {
                gws_it_printf("%s is missing: build it first", bin);
                return NULL;
        }
        return gws_it_spawn(name, 0, argv);
}

int gws_it_gwsieve_stop(gws_it_proc_t *p, int timeout_ms) {
        int status;

        gws_it_proc_signal(p, SIGTERM);
        if (gws_it_proc_wait(p, timeout_ms, &status) == 0)
                return status;
        gws_it_printf("%s did not exit within %d ms of SIGTERM: killing",
                      p->name, timeout_ms);
        gws_it_proc_signal(p, SIGKILL);
        gws_it_proc_wait(p, 5000, NULL);
        return -1;
}

/* ------------------------------------------------------------------------
 * id sets (open addressing, FNV-1a)
 * ------------------------------------------------------------------------ */

struct gws_it_idset_s {
        char **keys;   /**< NULL = empty slot */
        int *counts;   /**< adds per key */
        size_t cap;    /**< slots, a power of two */
        size_t size;   /**< distinct keys */
        size_t adds;   /**< all adds */
};

static uint64_t fnv1a(const char *s) {
        uint64_t h = 1469598103934665603ULL;
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        return h;
}

gws_it_idset_t *gws_it_idset_new(void) {
        gws_it_idset_t *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->cap = 1024;
        s->keys = calloc(s->cap, sizeof(*s->keys));
        s->counts = calloc(s->cap, sizeof(*s->counts));
        if (!s->keys || !s->counts) {
                gws_it_idset_destroy(s);
                return NULL;
        }
        return s;
}

void gws_it_idset_destroy(gws_it_idset_t *s) {
        size_t i;
        if (!s)
                return;
        for (i = 0; s->keys && i < s->cap; i++)
                free(s->keys[i]);
        free(s->keys);
        free(s->counts);
        free(s);
}

static size_t idset_slot(const gws_it_idset_t *s, const char *id) {
        size_t i = (size_t)fnv1a(id) & (s->cap - 1);
        while (s->keys[i] && strcmp(s->keys[i], id))
                i = (i + 1) & (s->cap - 1);
        return i;
}

static int idset_grow(gws_it_idset_t *s) {
        gws_it_idset_t n = {0};
        size_t i;

        n.cap = s->cap * 2;
        n.keys = calloc(n.cap, sizeof(*n.keys));
        n.counts = calloc(n.cap, sizeof(*n.counts));
        if (!n.keys || !n.counts) {
                free(n.keys);
                free(n.counts);
                return -1;
        }
        for (i = 0; i < s->cap; i++) {
                if (s->keys[i]) {
                        size_t j = idset_slot(&n, s->keys[i]);
                        n.keys[j] = s->keys[i];
                        n.counts[j] = s->counts[i];
                }
        }
        free(s->keys);
        free(s->counts);
        s->keys = n.keys;
        s->counts = n.counts;
        s->cap = n.cap;
        return 0;
}

int gws_it_idset_add(gws_it_idset_t *s, const char *id) {
        size_t i;

        /* Load factor <= 1/2 keeps probe chains short. */
        if ((s->size + 1) * 2 > s->cap && idset_grow(s))
                return -1;
        i = idset_slot(s, id);
        if (!s->keys[i]) {
                if (!(s->keys[i] = strdup(id)))
                        return -1;
                s->size++;
        }
        s->adds++;
        return ++s->counts[i];
}

int gws_it_idset_count(const gws_it_idset_t *s, const char *id) {
        size_t i = idset_slot(s, id);
        return s->keys[i] ? s->counts[i] : 0;
}

size_t gws_it_idset_size(const gws_it_idset_t *s) {
        return s->size;
}

size_t gws_it_idset_dups(const gws_it_idset_t *s) {
        return s->adds - s->size;
}

size_t gws_it_idset_missing(const gws_it_idset_t *want,
                            const gws_it_idset_t *have, char *example,
                            size_t example_size) {
        size_t i, n = 0;

        if (example && example_size)
                example[0] = '\0';
        for (i = 0; i < want->cap; i++) {
                if (!want->keys[i] || gws_it_idset_count(have, want->keys[i]))
                        continue;
                if (!n++ && example)
                        snprintf(example, example_size, "%s", want->keys[i]);
        }
        return n;
}

/* ------------------------------------------------------------------------
 * events
 * ------------------------------------------------------------------------ */

/* xorshift64*: the fallback generator must be the same on every host. */
static uint64_t rnd_next(uint64_t *st) {
        uint64_t x = *st;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *st = x;
        return x * 2685821657736338717ULL;
}

static double rnd_unit(uint64_t *st) {
        return (double)(rnd_next(st) >> 11) / 9007199254740992.0;
}

static const char filler[] =
    "The quick brown fox jumps over the lazy dog while the gateway proxies "
    "another completion request to the upstream provider and records its "
    "latency, status and token counts for the stream processor to sieve. ";

/* Appends about \p n characters of body text (JSON-safe). */
static void fill_text(char *dst, size_t n) {
        size_t i;
        for (i = 0; i < n; i++)
                dst[i] = filler[i % (sizeof(filler) - 1)];
        dst[n] = '\0';
}

static char *fmt_ts(int64_t ms, char *buf, size_t size) {
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        if (snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int)(ms % 1000)) < 0)
                buf[0] = '\0';
        return buf;
}

size_t gws_it_event_make(char *buf, size_t size, const char *id,
                         const char *gateway, int64_t ts_ms) {
        char ts[40], body[401];
        int n;

        fill_text(body, 400);
        n = snprintf(buf, size,
                     "{\"id\":\"%s\",\"ts\":\"%s\",\"gateway_id\":\"%s\","
                     "\"provider\":\"openai\",\"model\":\"gpt-4o-mini\","
                     "\"status\":200,\"latency_ms\":420,\"tokens_in\":120,"
                     "\"tokens_out\":80,\"cost_usd\":0.0002,"
                     "\"endpoint\":\"chat/completions\","
                     "\"request\":{\"messages\":[{\"role\":\"user\","
                     "\"content\":\"%s\"}]},"
                     "\"response\":{\"choices\":[{\"message\":{\"content\":"
                     "\"%s\"}}]}}",
                     id, fmt_ts(ts_ms, ts, sizeof(ts)), gateway, body, body);
        return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

/* The harness' own generator: 6 gateways, each with one provider and two
 * models (12 entities, so each passes the detectors' warm-up), one event
 * every 200 ms of event time, about 1.5 KB each. With \p incidents, gw-03
 * gets 15x latency and gw-05 a 60 % 503 storm in the middle third of the
 * stream, and both end long enough before the end to resolve. */
static int fallback_gen(const char *path, int n, unsigned seed,
                        int incidents) {
        static const struct {
                const char *gw, *provider, *models[2];
        } gws[] = {
            {"gw-01", "openai", {"gpt-4o", "gpt-4o-mini"}},
            {"gw-02", "anthropic", {"claude-3-5-sonnet", "claude-3-haiku"}},
            {"gw-03", "openai", {"gpt-4o", "o1-mini"}},
            {"gw-04", "workers-ai", {"llama-3.1-8b", "mistral-7b"}},
            {"gw-05",
             "google-ai-studio",
             {"gemini-1.5-pro", "gemini-1.5-flash"}},
            {"gw-06", "anthropic", {"claude-3-opus", "claude-3-haiku"}},
        };
        /* 2025-01-01T00:00:00Z: a fixed start keeps runs comparable. */
        const int64_t t0 = 1735689600000LL;
        uint64_t st = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)seed << 17 | seed);
        FILE *fp = fopen(path, "w");
        char ts[40], req[701], resp[701];
        int i;

        if (!fp)
                return -1;
        if (!st)
                st = 1;
        fill_text(req, 700);
        fill_text(resp, 600);
        for (i = 0; i < n; i++) {
                int g = (int)(rnd_next(&st) % 6);
                int m = (int)(rnd_next(&st) % 2);
                double lat = 300.0 + 600.0 * rnd_unit(&st);
                int status = rnd_unit(&st) < 0.01 ? 429 : 200;
                int tin = 100 + (int)(rnd_next(&st) % 900);
                int tout = 50 + (int)(rnd_next(&st) % 450);
                int mid = i >= n / 3 && i < n / 2;

                if (incidents && mid && g == 2)
                        lat *= 15.0;
                if (incidents && i >= n * 2 / 5 && i < n * 3 / 5 && g == 4 &&
                    rnd_unit(&st) < 0.6)
                        status = 503;
                fprintf(fp,
                        "{\"id\":\"evt-%08x-%06d\",\"ts\":\"%s\","
                        "\"gateway_id\":\"%s\",\"account_id\":\"acct-%d\","
                        "\"provider\":\"%s\",\"model\":\"%s\","
                        "\"endpoint\":\"chat/completions\",\"method\":\"POST\","
                        "\"status\":%d,\"success\":%s,\"cached\":false,"
                        "\"latency_ms\":%.1f,\"ttfb_ms\":%.1f,"
                        "\"tokens_in\":%d,\"tokens_out\":%d,"
                        "\"cost_usd\":%.6f,\"user_id\":\"user-%d\","
                        "\"metadata\":{\"team\":\"t%d\"},"
                        "\"request\":{\"messages\":[{\"role\":\"user\","
                        "\"content\":\"%.*s\"}]},"
                        "\"response\":{\"choices\":[{\"message\":"
                        "{\"content\":\"%.*s\"}}]}}\n",
                        seed, i, fmt_ts(t0 + (int64_t)i * 200, ts, sizeof(ts)),
                        gws[g].gw, g % 3, gws[g].provider, gws[g].models[m],
                        status, status < 400 ? "true" : "false", lat,
                        lat / 3.0, tin, tout, (tin + 3 * tout) * 1e-6,
                        (int)(rnd_next(&st) % 50), g,
                        300 + (int)(rnd_next(&st) % 400), req,
                        200 + (int)(rnd_next(&st) % 400), resp);
        }
        return fclose(fp) == 0 ? 0 : -1;
}

gws_it_events_t *gws_it_events_gen(const char *name, int n, unsigned seed,
                                   int incidents) {
        char path[PATH_MAX], bin[PATH_MAX], ns[32], ss[32];
        const char *generator = "fallback";
        gws_it_events_t *ev;

        gws_it_path(name, path, sizeof(path));
        snprintf(ns, sizeof(ns), "%d", n);
        snprintf(ss, sizeof(ss), "%u", seed);
        if (gws_it_bin("gwsieve-gen", bin, sizeof(bin))) {
                char *argv[] = {bin,  "--out",  path, "--events", ns,
                                "--seed", ss, incidents ? "--incidents" : NULL,
                                NULL};
                gws_it_proc_t *p = gws_it_spawn("gwsieve-gen", 0, argv);
                int status = -1;
                /* Generating a few thousand events takes well under a
                 * second; 60 s only bounds a broken generator. */
                if (!p || gws_it_proc_wait(p, 60000, &status) ||
                    !WIFEXITED(status) || WEXITSTATUS(status)) {
                        gws_it_printf("gwsieve-gen failed");
                        return NULL;
                }
                generator = "gwsieve-gen";
        } else if (fallback_gen(path, n, seed, incidents)) {
                gws_it_printf("cannot write %s: %s", path, strerror(errno));
                return NULL;
        }
        if ((ev = gws_it_events_load(path)))
                ev->generator = generator;
        if (ev)
                gws_it_printf("generated %zu events (%s%s) in %s", ev->n,
                              generator, incidents ? ", incidents" : "", path);
        return ev;
}

gws_it_events_t *gws_it_events_load(const char *path) {
        gws_it_events_t *ev = calloc(1, sizeof(*ev));
        FILE *fp = fopen(path, "r");
        char *line = NULL;
        size_t cap = 0, alloc = 0;
        ssize_t len;

        if (!ev || !fp || !(ev->ids = gws_it_idset_new()))
                goto err;
        while ((len = getline(&line, &cap, fp)) != -1) {
                json_t *o, *id, *gw;
                json_error_t jerr;

                while (len > 0 &&
                       (line[len - 1] == '\n' || line[len - 1] == '\r'))
                        line[--len] = '\0';
                if (len == 0)
                        continue;
                if (ev->n == alloc) {
                        size_t na = alloc ? alloc * 2 : 1024;
                        char **l = realloc(ev->lines, na * sizeof(*l));
                        if (!l)
                                goto err;
                        ev->lines = l;
                        if (!(l = realloc(ev->keys, na * sizeof(*l))))
                                goto err;
                        ev->keys = l;
                        size_t *ls = realloc(ev->lens, na * sizeof(*ls));
                        if (!ls)
                                goto err;
                        ev->lens = ls;
                        alloc = na;
                }
                ev->lines[ev->n] = strndup(line, (size_t)len);
                ev->lens[ev->n] = (size_t)len;
                ev->keys[ev->n] = NULL;
                if ((o = json_loadb(line, (size_t)len, 0, &jerr))) {
                        if ((gw = json_object_get(o, "gateway_id")) &&
                            json_is_string(gw))
                                ev->keys[ev->n] = strdup(json_string_value(gw));
                        if ((id = json_object_get(o, "id")) &&
                            json_is_string(id))
                                gws_it_idset_add(ev->ids,
                                                 json_string_value(id));
                        json_decref(o);
                }
                ev->n++;
        }
        free(line);
        fclose(fp);
        return ev;
err:
        gws_it_printf("cannot load %s", path);
        free(line);
        if (fp)
                fclose(fp);
        gws_it_events_destroy(ev);
        return NULL;
}

void gws_it_events_destroy(gws_it_events_t *ev) {
        size_t i;
        if (!ev)
                return;
        for (i = 0; i < ev->n; i++) {
                free(ev->lines[i]);
                free(ev->keys[i]);
        }
        free(ev->lines);
        free(ev->keys);
        free(ev->lens);
        gws_it_idset_destroy(ev->ids);
        free(ev);
}

/* ------------------------------------------------------------------------
 * Kafka clients
 * ------------------------------------------------------------------------ */

/* @locality librdkafka internal threads: one fprintf (stdio locks). */
static void client_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                          const char *buf) {
        FILE *fp = it.clients_log;
        if (fp) {
                fprintf(fp, "%d %s [%s] %s\n", level, rd_kafka_name(rk), fac,
                        buf);
                fflush(fp);
        }
}

/* @locality the thread that polls the client: log only. */
static void client_error_cb(rd_kafka_t *rk, int err, const char *reason,
                            void *opaque) {
        (void)opaque;
        if (it.clients_log) {
                fprintf(it.clients_log, "ERROR %s %s: %s\n", rd_kafka_name(rk),
                        rd_kafka_err2name(err), reason);
                fflush(it.clients_log);
        }
}

static rd_kafka_conf_t *client_conf(const char *bootstrap, const char *role) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[512], id[64];

        snprintf(id, sizeof(id), "gws-itest-%s-%d", role, ++it.nclients);
        if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(conf, "client.id", id, errstr, sizeof(errstr))) {
                gws_it_printf("client conf: %s", errstr);
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rd_kafka_conf_set_log_cb(conf, client_log_cb);
        rd_kafka_conf_set_error_cb(conf, client_error_cb);
        return conf;
}

static int conf_set(rd_kafka_conf_t *conf, const char *name,
                    const char *value) {
        char errstr[512];
        if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
                gws_it_printf("%s=%s: %s", name, value, errstr);
                return -1;
        }
        return 0;
}

/* A consumer that never subscribes; \p group NULL gives a throwaway id
 * (assign() needs some group.id, nothing is ever committed to it). */
static rd_kafka_t *consumer_new(const char *bootstrap, const char *group) {
        rd_kafka_conf_t *conf = client_conf(bootstrap, "consumer");
        char gid[128], errstr[512];
        rd_kafka_t *rk;

        if (!conf)
                return NULL;
        if (!group) {
                snprintf(gid, sizeof(gid), "gws-itest-reader-%d-%d",
                         (int)getpid(), it.nclients);
                group = gid;
        }
        if (conf_set(conf, "group.id", group) ||
            conf_set(conf, "enable.auto.commit", "false") ||
            conf_set(conf, "enable.auto.offset.store", "false") ||
            conf_set(conf, "auto.offset.reset", "earliest")) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
                                sizeof(errstr)))) {
                gws_it_printf("consumer: %s", errstr);
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        /* conf is now owned by rk */
        return rk;
}

static int partition_count0(rd_kafka_t *rk, const char *topic,
                            int timeout_ms) {
        int64_t deadline = gws_it_now_ms() + timeout_ms;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        int cnt = -1;

        while (rkt && cnt <= 0 && gws_it_now_ms() < deadline) {
                const struct rd_kafka_metadata *md = NULL;
                if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) ==
                        RD_KAFKA_RESP_ERR_NO_ERROR &&
                    md->topic_cnt == 1 && !md->topics[0].err)
                        cnt = md->topics[0].partition_cnt;
                if (md)
                        rd_kafka_metadata_destroy(md);
                if (cnt <= 0)
                        gws_it_sleep_ms(GWS_IT_QUERY_RETRY_MS);
        }
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        return cnt;
}

int gws_it_partition_count(const char *bootstrap, const char *topic,
                           int timeout_ms) {
        rd_kafka_t *rk = consumer_new(bootstrap, NULL);
        int cnt;
        if (!rk)
                return -1;
        cnt = partition_count0(rk, topic, timeout_ms);
        rd_kafka_destroy(rk);
        return cnt;
}

int gws_it_watermarks(const char *bootstrap, const char *topic, int nparts,
                      int64_t *hi, int timeout_ms) {
        int64_t deadline = gws_it_now_ms() + timeout_ms;
        rd_kafka_t *rk = consumer_new(bootstrap, NULL);
        int p, rc = 0;

        if (!rk)
                return -1;
        for (p = 0; p < nparts; p++) {
                int64_t lo;
                rd_kafka_resp_err_t err;
                while ((err = rd_kafka_query_watermark_offsets(
                            rk, topic, p, &lo, &hi[p], 5000)) &&
                       gws_it_now_ms() < deadline)
                        gws_it_sleep_ms(GWS_IT_QUERY_RETRY_MS);
                if (err) {
                        gws_it_printf("watermarks %s [%d]: %s", topic, p,
                                      rd_kafka_err2str(err));
                        rc = -1;
                        break;
                }
        }
        rd_kafka_destroy(rk);
        return rc;
}

int gws_it_committed(const char *bootstrap, const char *group,
                     const char *topic, int nparts, int64_t *off,
                     int timeout_ms) {
        int64_t deadline = gws_it_now_ms() + timeout_ms;
        rd_kafka_t *rk = consumer_new(bootstrap, group);
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_resp_err_t err;
        int p, rc = -1;

        if (!rk)
                return -1;
        parts = rd_kafka_topic_partition_list_new(nparts);
        for (p = 0; p < nparts; p++)
                rd_kafka_topic_partition_list_add(parts, topic, p);
        do {
                err = rd_kafka_committed(rk, parts, 5000);
                for (p = 0; !err && p < nparts; p++)
                        err = parts->elems[p].err;
                if (err)
                        gws_it_sleep_ms(GWS_IT_QUERY_RETRY_MS);
        } while (err && gws_it_now_ms() < deadline);
        if (err) {
                gws_it_printf("committed offsets of %s: %s", group,
                              rd_kafka_err2str(err));
                goto out;
        }
        for (p = 0; p < nparts; p++)
                off[p] = parts->elems[p].offset < 0 ? -1
                                                    : parts->elems[p].offset;
        rc = 0;
out:
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_destroy(rk);
        return rc;
}

int gws_it_commit(const char *bootstrap, const char *group,
                  const char *topic, int32_t partition, int64_t offset,
                  int timeout_ms) {
        int64_t deadline = gws_it_now_ms() + timeout_ms;
        rd_kafka_t *rk = consumer_new(bootstrap, group);
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_resp_err_t err;

        if (!rk)
                return -1;
        parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, topic, partition)->offset =
            offset;
        do {
                err = rd_kafka_commit(rk, parts, 0);
                if (!err)
                        err = parts->elems[0].err;
                if (err)
                        gws_it_sleep_ms(GWS_IT_QUERY_RETRY_MS);
        } while (err && gws_it_now_ms() < deadline);
        if (err)
                gws_it_printf("commit %s [%d] @ %lld for %s: %s", topic,
                              (int)partition, (long long)offset, group,
                              rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_destroy(rk);
        return err ? -1 : 0;
}

/* --- producer --- */

struct gws_it_producer_s {
        rd_kafka_t *rk;       /**< idempotent producer */
        int failed;           /**< atomic: failed deliveries */
        int first_err;        /**< atomic: first failure's code */
};

/* @locality the thread calling rd_kafka_poll()/flush() on p->rk. */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                      void *opaque) {
        gws_it_producer_t *p = opaque;
        int zero = 0;
        (void)rk;
        if (!rkm->err)
                return;
        __atomic_add_fetch(&p->failed, 1, __ATOMIC_SEQ_CST);
        __atomic_compare_exchange_n(&p->first_err, &zero, (int)rkm->err, 0,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

gws_it_producer_t *gws_it_producer_new(const char *bootstrap) {
        gws_it_producer_t *p = calloc(1, sizeof(*p));
        rd_kafka_conf_t *conf = client_conf(bootstrap, "producer");
        char errstr[512], tmo[32];

        if (!p || !conf)
                goto err;
        snprintf(tmo, sizeof(tmo), "%d", GWS_IT_MSG_TIMEOUT_MS);
        /* Idempotence: retries after injected errors neither reorder nor
         * duplicate, so the topic holds exactly the file in order.
         * One request in flight per broker: the mock (librdkafka 2.0.2 and
         * later) checks sequence numbers only for transactional producers,
         * so with R1 failed by an injected error and R2 accepted, the
         * client "implicitly acks" R1 as a real broker's ordering
         * guarantee would allow, and R1's messages are silently lost.
         * consistent_random = CRC32(key) % partitions, what `gwsieve
         * replay --partitions N` simulates. linger.ms 5 batches without
         * slowing a paced feeder. */
        if (conf_set(conf, "enable.idempotence", "true") ||
            conf_set(conf, "max.in.flight.requests.per.connection", "1") ||
            conf_set(conf, "partitioner", "consistent_random") ||
            conf_set(conf, "linger.ms", "5") ||
            conf_set(conf, "message.timeout.ms", tmo))
                goto err;
        rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
        rd_kafka_conf_set_opaque(conf, p);
        if (!(p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                   sizeof(errstr)))) {
                gws_it_printf("producer: %s", errstr);
                goto err;
        }
        return p;
err:
        if (conf)
                rd_kafka_conf_destroy(conf);
        free(p);
        return NULL;
}

int gws_it_producer_send(gws_it_producer_t *p, const char *topic,
                         const void *key, size_t keylen, const void *value,
                         size_t len) {
        return gws_it_producer_send_to(p, topic, RD_KAFKA_PARTITION_UA, key,
                                       keylen, value, len);
}

int gws_it_producer_send_to(gws_it_producer_t *p, const char *topic,
                            int32_t partition, const void *key,
                            size_t keylen, const void *value, size_t len) {
        rd_kafka_resp_err_t err;

        for (;;) {
                err = rd_kafka_producev(
                    p->rk, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_PARTITION(partition),
                    RD_KAFKA_V_KEY((void *)key, key ? keylen : 0),
                    RD_KAFKA_V_VALUE((void *)value, len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                /* Queue full (a broker is down): serve delivery reports,
                 * which frees room, then retry. */
                rd_kafka_poll(p->rk, 100);
        }
        rd_kafka_poll(p->rk, 0);
        if (err) {
                gws_it_printf("produce to %s: %s", topic,
                              rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

int gws_it_producer_flush(gws_it_producer_t *p, int timeout_ms) {
        if (rd_kafka_flush(p->rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
                return -1;
        return __atomic_load_n(&p->failed, __ATOMIC_SEQ_CST);
}

void gws_it_producer_destroy(gws_it_producer_t *p) {
        if (!p)
                return;
        rd_kafka_destroy(p->rk);
        free(p);
}

/* Reports a producer's failures. @returns 0 if none, else -1. */
static int producer_check(gws_it_producer_t *p, int flushed, size_t n) {
        if (flushed == 0)
                return 0;
        if (flushed < 0)
                gws_it_printf("producer: %d of %zu messages undelivered after "
                              "the flush timeout",
                              rd_kafka_outq_len(p->rk), n);
        else
                gws_it_printf("producer: %d of %zu deliveries failed "
                              "(first: %s)",
                              flushed, n,
                              rd_kafka_err2name(
                                  (rd_kafka_resp_err_t)p->first_err));
        return -1;
}

int gws_it_produce_events(const char *bootstrap, const char *topic,
                          const gws_it_events_t *ev, size_t from, size_t to,
                          int timeout_ms) {
        gws_it_producer_t *p = gws_it_producer_new(bootstrap);
        size_t i;
        int rc = -1;

        if (!p)
                return -1;
        for (i = from; i < to && i < ev->n; i++) {
                const char *k = ev->keys[i];
                if (gws_it_producer_send(p, topic, k, k ? strlen(k) : 0,
                                         ev->lines[i], ev->lens[i]))
                        goto out;
        }
        rc = producer_check(p, gws_it_producer_flush(p, timeout_ms),
                            to - from);
out:
        gws_it_producer_destroy(p);
        return rc;
}

/* --- feeder --- */

struct gws_it_feeder_s {
        gws_it_producer_t *p;        /**< owned */
        const gws_it_events_t *ev;   /**< borrowed */
        char topic[256];             /**< target topic */
        int per_sec;                 /**< pace */
        size_t sent;                 /**< atomic: lines handed over */
        int send_failed;             /**< producev failed */
        pthread_t thr;               /**< feeder_main */
};

/* @locality the feeder thread. */
static void *feeder_main(void *arg) {
        gws_it_feeder_t *f = arg;
        int64_t t0 = gws_it_now_ms();
        size_t i;

        for (i = 0; i < f->ev->n; i++) {
                const char *k = f->ev->keys[i];
                int64_t due = t0 + (int64_t)(i * 1000 / (size_t)f->per_sec);
                int64_t now = gws_it_now_ms();
                if (due > now)
                        gws_it_sleep_ms((int)(due - now));
                if (gws_it_producer_send(f->p, f->topic, k, k ? strlen(k) : 0,
                                         f->ev->lines[i], f->ev->lens[i])) {
                        f->send_failed = 1;
                        break;
                }
                __atomic_store_n(&f->sent, i + 1, __ATOMIC_SEQ_CST);
        }
        return NULL;
}

gws_it_feeder_t *gws_it_feeder_start(const char *bootstrap, const char *topic,
                                     const gws_it_events_t *ev, int per_sec) {
        gws_it_feeder_t *f = calloc(1, sizeof(*f));

        if (!f || !(f->p = gws_it_producer_new(bootstrap)))
                goto err;
        f->ev = ev;
        f->per_sec = per_sec > 0 ? per_sec : 1;
        snprintf(f->topic, sizeof(f->topic), "%s", topic);
        if (pthread_create(&f->thr, NULL, feeder_main, f))
                goto err;
        gws_it_printf("feeding %zu events to %s at %d/s", ev->n, topic,
                      f->per_sec);
        return f;
err:
        if (f)
                gws_it_producer_destroy(f->p);
        free(f);
        return NULL;
}

size_t gws_it_feeder_sent(gws_it_feeder_t *f) {
        return __atomic_load_n(&f->sent, __ATOMIC_SEQ_CST);
}

int gws_it_feeder_join(gws_it_feeder_t *f, int timeout_ms) {
        int rc;

        pthread_join(f->thr, NULL);
        rc = producer_check(f->p, gws_it_producer_flush(f->p, timeout_ms),
                            f->sent);
        if (f->send_failed)
                rc = -1;
        gws_it_producer_destroy(f->p);
        free(f);
        return rc;
}

/* --- reader --- */

struct gws_it_reader_s {
        rd_kafka_t *rk;          /**< assign-based consumer */
        char topic[256];         /**< the topic read */
        int nparts;              /**< its partitions */
        int64_t *next;           /**< per partition: next offset */
        gws_it_idset_t *ids;     /**< `id` of every JSON value */
        size_t count;            /**< messages read */
        gws_it_record_cb *cb;    /**< optional */
        void *opaque;            /**< for cb */
};

gws_it_reader_t *gws_it_reader_new(const char *bootstrap, const char *topic) {
        gws_it_reader_t *r = calloc(1, sizeof(*r));
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_resp_err_t err;
        int p;

        if (!r || !(r->rk = consumer_new(bootstrap, NULL)) ||
            !(r->ids = gws_it_idset_new()))
                goto err;
        snprintf(r->topic, sizeof(r->topic), "%s", topic);
        /* 30 s: the topic exists from the devbroker's start; only a
         * stalled broker makes this slow. */
        if ((r->nparts = partition_count0(r->rk, topic, 30000)) <= 0) {
                gws_it_printf("reader: no metadata for %s", topic);
                goto err;
        }
        if (!(r->next = calloc((size_t)r->nparts, sizeof(*r->next))))
                goto err;
        parts = rd_kafka_topic_partition_list_new(r->nparts);
        for (p = 0; p < r->nparts; p++)
                rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        if ((err = rd_kafka_assign(r->rk, parts))) {
                gws_it_printf("reader: assign %s: %s", topic,
                              rd_kafka_err2str(err));
                goto err;
        }
        rd_kafka_topic_partition_list_destroy(parts);
        return r;
err:
        if (parts)
                rd_kafka_topic_partition_list_destroy(parts);
        gws_it_reader_destroy(r);
        return NULL;
}

void gws_it_reader_destroy(gws_it_reader_t *r) {
        if (!r)
                return;
        if (r->rk) {
                rd_kafka_consumer_close(r->rk);
                rd_kafka_destroy(r->rk);
        }
        gws_it_idset_destroy(r->ids);
        free(r->next);
        free(r);
}

void gws_it_reader_set_cb(gws_it_reader_t *r, gws_it_record_cb *cb,
                          void *opaque) {
        r->cb = cb;
        r->opaque = opaque;
}

size_t gws_it_reader_poll(gws_it_reader_t *r, int timeout_ms) {
        int64_t deadline = gws_it_now_ms() + timeout_ms;
        size_t n = 0;

        do {
                int64_t left = deadline - gws_it_now_ms();
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(
                    r->rk, (int)(left > 0 ? left : 0));
                json_t *val = NULL, *id;
                json_error_t jerr;

                if (!rkm)
                        continue;
                if (rkm->err) {
                        if (it.clients_log)
                                fprintf(it.clients_log, "reader %s: %s\n",
                                        r->topic, rd_kafka_message_errstr(rkm));
                        rd_kafka_message_destroy(rkm);
                        continue;
                }
                if (rkm->partition >= 0 && rkm->partition < r->nparts)
                        r->next[rkm->partition] = rkm->offset + 1;
                r->count++;
                n++;
                if (rkm->payload &&
                    (val = json_loadb(rkm->payload, rkm->len, 0, &jerr)) &&
                    (id = json_object_get(val, "id")) && json_is_string(id))
                        gws_it_idset_add(r->ids, json_string_value(id));
                if (r->cb)
                        r->cb(rkm, val, r->opaque);
                json_decref(val);
                rd_kafka_message_destroy(rkm);
        } while (gws_it_now_ms() < deadline);
        return n;
}

int gws_it_reader_wait_ids(gws_it_reader_t *r, const gws_it_idset_t *want,
                           int timeout_ms) {
        int64_t deadline = gws_it_now_ms() + timeout_ms;

        for (;;) {
                if (gws_it_idset_size(r->ids) >= gws_it_idset_size(want) &&
                    gws_it_idset_missing(want, r->ids, NULL, 0) == 0)
                        return 1;
                if (gws_it_now_ms() >= deadline || essential_dead())
                        return 0;
                /* 250 ms batches: the set check is O(ids), keep it rare. */
                gws_it_reader_poll(r, 250);
        }
}

int gws_it_reader_wait_count(gws_it_reader_t *r, size_t n, int timeout_ms) {
        int64_t deadline = gws_it_now_ms() + timeout_ms;

        while (r->count < n) {
                if (gws_it_now_ms() >= deadline || essential_dead())
                        return 0;
                gws_it_reader_poll(r, 100);
        }
        return 1;
}

int gws_it_reader_read_to_end(gws_it_reader_t *r, int timeout_ms) {
        int64_t deadline = gws_it_now_ms() + timeout_ms;
        int64_t *hi = calloc((size_t)r->nparts, sizeof(*hi));
        int p, done = 0;

        if (!hi)
                return 0;
        for (p = 0; p < r->nparts; p++) {
                int64_t lo;
                if (rd_kafka_query_watermark_offsets(r->rk, r->topic, p, &lo,
                                                     &hi[p], 10000)) {
                        gws_it_printf("reader: no watermarks for %s [%d]",
                                      r->topic, p);
                        goto out;
                }
        }
        while (!done) {
                done = 1;
                for (p = 0; p < r->nparts; p++)
                        if (r->next[p] < hi[p])
                                done = 0;
                if (done)
                        break;
                if (gws_it_now_ms() >= deadline || essential_dead())
                        goto out;
                gws_it_reader_poll(r, 100);
        }
out:
        free(hi);
        return done;
}

const gws_it_idset_t *gws_it_reader_ids(const gws_it_reader_t *r) {
        return r->ids;
}

size_t gws_it_reader_count(const gws_it_reader_t *r) {
        return r->count;
}

/* ------------------------------------------------------------------------
 * operations endpoint
 * ------------------------------------------------------------------------ */

int gws_it_proc_log_wait(gws_it_proc_t *p, const char *needle,
                         int timeout_ms) {
        int64_t end = gws_it_now_ms() + timeout_ms;
        char line[4096];
        do {
                FILE *fp = fopen(gws_it_proc_log(p), "r");
                if (fp) {
                        while (fgets(line, sizeof(line), fp))
                                if (strstr(line, needle)) {
                                        fclose(fp);
                                        return 0;
                                }
                        fclose(fp);
                }
                gws_it_sleep_ms(100);
        } while (gws_it_now_ms() < end);
        return -1;
}

int gws_it_http_port(gws_it_proc_t *p, int timeout_ms) {
        int64_t end = gws_it_now_ms() + timeout_ms;
        char line[4096];
        do {
                FILE *fp = fopen(gws_it_proc_log(p), "r");
                if (fp) {
                        while (fgets(line, sizeof(line), fp)) {
                                const char *q = strstr(line, "(port ");
                                if (strstr(line, "serving /metrics") && q) {
                                        fclose(fp);
                                        return atoi(q + 6);
                                }
                        }
                        fclose(fp);
                }
                gws_it_sleep_ms(100);
        } while (gws_it_now_ms() < end);
        return -1;
}

int gws_it_http_get(int port, const char *path, char *body, size_t size) {
        struct sockaddr_in sa;
        char req[512], *resp = NULL, *hdr_end;
        size_t len = 0, cap = 0;
        ssize_t n;
        int fd, status = -1;
        struct timeval tv = {10, 0};

        if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
                return -1;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
                goto out;
        snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Connection: close\r\n\r\n",
                 path);
        if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
                goto out;
        for (;;) {
                if (len + 4096 + 1 > cap) {
                        char *t = realloc(resp, cap = (cap + 4096) * 2);
                        if (!t)
                                goto out;
                        resp = t;
                }
                if ((n = read(fd, resp + len, cap - len - 1)) <= 0)
                        break;
                len += (size_t)n;
        }
        if (!resp)
                goto out;
        resp[len] = '\0';
        if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
                status = -1;
        if (body && size) {
                body[0] = '\0';
                if ((hdr_end = strstr(resp, "\r\n\r\n")))
                        snprintf(body, size, "%s", hdr_end + 4);
        }
out:
        free(resp);
        close(fd);
        return status;
}
