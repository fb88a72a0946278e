/* replay.c - the pipeline over a file, partitioned like the input topic. */
#include "gwsieve/replay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gwsieve/detect.h"
#include "gwsieve/util.h"

typedef struct sinks_s {
        FILE *fp[GWS_SINK__CNT];
        gws_replay_result_t *res;
        int werr;         /* errno of the first write error, 0: none */
        gws_sink_t wsink; /* the file it failed on */
} sinks_t;

static int file_emit(void *opaque, gws_sink_t sink, const char *key,
                     size_t keylen, const char *val, size_t len) {
        sinks_t *s = opaque;
        if (sink == GWS_SINK_ALERTS) {
                /* "state":"open" etc. appear once per alert record. */
                if (memmem(val, len, "\"state\":\"open\"", 14))
                        s->res->alerts_by_state[0]++;
                else if (memmem(val, len, "\"state\":\"update\"", 16))
                        s->res->alerts_by_state[1]++;
                else
                        s->res->alerts_by_state[2]++;
        }
        if (fwrite(val, 1, len, s->fp[sink]) != len ||
            fputc('\n', s->fp[sink]) == EOF) {
                /* errno is the failed write(2)'s; EIO for a stream in
                 * error without one */
                if (!s->werr) {
                        s->werr = errno ? errno : EIO;
                        s->wsink = sink;
                }
                return -1;
        }
        (void)key;
        (void)keylen;
        return 0;
}

int gws_replay_key(const char *buf, size_t len, const char **s,
                   size_t *slen) {
        static const char want[] = "gateway_id";
        size_t i = 0, start;
        int depth = 0, expect_key = 0;

        while (i < len) {
                char c = buf[i];
                if (c == '{' || c == '[') {
                        depth++;
                        expect_key = c == '{' && depth == 1;
                        i++;
                } else if (c == '}' || c == ']') {
                        depth--;
                        i++;
                } else if (c == ',') {
                        expect_key = depth == 1;
                        i++;
                } else if (c == '"') {
                        start = ++i;
                        while (i < len && buf[i] != '"')
                                i += buf[i] == '\\' ? 2 : 1;
                        if (i >= len)
                                return -1;
                        if (expect_key && i - start == sizeof(want) - 1 &&
                            !memcmp(buf + start, want, sizeof(want) - 1)) {
                                /* skip to the value */
                                i++;
                                while (i < len && (buf[i] == ' ' ||
                                                   buf[i] == ':' ||
                                                   buf[i] == '\t'))
                                        i++;
                                if (i >= len || buf[i] != '"')
                                        return -1;
                                start = ++i;
                                while (i < len && buf[i] != '"')
                                        i += buf[i] == '\\' ? 2 : 1;
                                if (i > len)
                                        return -1;
                                *s = buf + start;
                                *slen = i - start;
                                return 0;
                        }
                        expect_key = 0;
                        i++;
                } else {
                        i++;
                }
        }
        return -1;
}

/* One input line on its way through the pipeline (gws_replay_run()). */
typedef struct {
        char *line;
        size_t cap;
        unsigned long long lineno;
        int32_t part;
        gws_input_t msg;
        gws_pipeline_msg_t pm;
} rline_t;

/* The input, read in blocks. A line is kept up to `keep` bytes and the
 * rest of a longer one only counted: getline() held a line whole (a
 * 400 MB line, 400 MB and more), and a failed allocation of it read as
 * the end of the input. */
typedef struct lreader_s {
        int fd;
        char *blk;       /* block buffer; [pos, end) not yet taken */
        size_t pos, end;
        int eof;
        int err;         /* errno of a read error, 0: none */
} lreader_t;

#define LR_BLOCK (256 * 1024) /* read(2) size: a few syscalls per MB */

/* @returns 1 if \p run (NULL-able) says stop. */
static int stop_asked(const volatile sig_atomic_t *run) {
        return run && !*run;
}

/* Length of \p buf[0..n) without an incomplete UTF-8 sequence at its end
 * (a line cut there stays text in its dead letter, not base64). */
static size_t utf8_whole(const unsigned char *buf, size_t n) {
        size_t i = n, need;
        while (i > 0 && n - i < 3 && (buf[i - 1] & 0xC0) == 0x80)
                i--;
        if (i == 0 || buf[i - 1] < 0xC0)
                return n; /* ASCII, or not UTF-8 anyway */
        need = buf[i - 1] >= 0xF0 ? 4 : buf[i - 1] >= 0xE0 ? 3 : 2;
        return n - (i - 1) >= need ? n : i - 1;
}

/* Reads the next line (without its '\n') into \p L->line (\p keep + 1
 * bytes): at most \p keep bytes of it, NUL-terminated; \p *whole its
 * length. @returns 1, 0 at the end of the input, -1 on a read error
 * (r->err), -2 when \p run says stop (a read that the signal
 * interrupted; a line read in part is dropped). */
static int lr_line(lreader_t *r, rline_t *L, size_t keep, size_t *kept,
                   uint64_t *whole, const volatile sig_atomic_t *run) {
        size_t k = 0;
        uint64_t w = 0;
        int any = 0;

        for (;;) {
                const char *p, *nl;
                size_t take, c;
                if (r->pos == r->end) {
                        ssize_t n;
                        if (r->eof)
                                break;
                        n = read(r->fd, r->blk, LR_BLOCK);
                        if (n < 0 && errno == EINTR) {
                                /* cmd/gwsieve installs its handlers
                                 * without SA_RESTART, so that a replay
                                 * waiting on a pipe stops */
                                if (stop_asked(run))
                                        return -2;
                                continue;
                        }
                        if (n < 0) {
                                r->err = errno;
                                return -1;
                        }
                        if (n == 0) {
                                r->eof = 1;
                                break;
                        }
                        r->pos = 0;
                        r->end = (size_t)n;
                }
                any = 1;
                p = r->blk + r->pos;
                nl = memchr(p, '\n', r->end - r->pos);
                take = nl ? (size_t)(nl - p) : r->end - r->pos;
                c = k < keep ? keep - k : 0;
                if (c > take)
                        c = take;
                memcpy(L->line + k, p, c);
                k += c;
                w += take;
                r->pos += take + (nl != NULL);
                if (nl)
                        break;
        }
        if (!any)
                return 0;
        if (w > k)
                k = utf8_whole((const unsigned char *)L->line, k);
        L->line[k] = '\0';
        *kept = k;
        *whole = w;
        return 1;
}

/* 1 if the \p n bytes of \p line are none, or JSON whitespace only. */
static int blank(const char *line, size_t n) {
        size_t i;
        for (i = 0; i < n; i++)
                if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
                        return 0;
        return 1;
}

/* Reads the next message (blank lines are skipped) into \p L: its bytes,
 * key and partition; a line over \p keep bytes is kept in part, its
 * size in L->msg.whole_len (a too_large dead letter). @returns 1, or 0
 * at the end, on a read error (r->err), or when \p run says stop
 * (\p *stopped set). */
static int replay_next(lreader_t *r, const gws_config_t *cfg, int rnd,
                       size_t keep, int64_t *offsets,
                       gws_replay_result_t *res, rline_t *L,
                       const volatile sig_atomic_t *run, int *stopped) {
        int nparts = cfg->partitions;

        for (;;) {
                char *line;
                const char *key = NULL;
                size_t keylen = 0, n;
                uint64_t whole;
                int32_t part = 0;
                int rr;

                if (stop_asked(run)) {
                        *stopped = 1;
                        return 0;
                }
                if ((rr = lr_line(r, L, keep, &n, &whole, run)) != 1) {
                        *stopped = rr == -2;
                        return 0; /* the end, a read error, or stop */
                }
                line = L->line;
                /* a UTF-8 byte order mark opening the file (Windows
                 * editors write one) is the file's, not the first
                 * message's */
                if (res->lines == 0 && n >= 3 &&
                    !memcmp(line, "\xEF\xBB\xBF", 3)) {
                        memmove(line, line + 3, n - 2);
                        n -= 3;
                        whole -= 3;
                }
                if (whole == n && n > 0 && line[n - 1] == '\r')
                        whole = --n;
                res->lines++;
                res->bytes += whole;
                if (whole == n && blank(line, n))
                        continue; /* blank lines separate, not messages:
                                   * empty, or spaces and tabs only */
                if (gws_replay_key(line, n, &key, &keylen) == 0 && !rnd)
                        part = gws_partition_for_key(key, keylen, nparts);
                else if (rnd)
                        part = (int32_t)(gws_hash64(&res->lines,
                                                    sizeof(res->lines),
                                                    0x72616e64) %
                                         (uint64_t)nparts);
                L->lineno = (unsigned long long)res->lines;
                L->part = part;
                L->msg.value = line;
                L->msg.len = n;
                L->msg.whole_len = whole > n ? (size_t)whole : 0;
                L->msg.line = res->lines;
                L->msg.key = key;
                L->msg.keylen = keylen;
                L->msg.topic = cfg->topic_input;
                L->msg.partition = part;
                L->msg.offset = offsets[part]++;
                return 1;
        }
}

int gws_replay_run(const gws_config_t *cfg, const char *input,
                   const char *out_dir, const volatile sig_atomic_t *run,
                   gws_replay_result_t *res, char *errstr,
                   size_t errstr_size) {
        static const char *names[GWS_SINK__CNT] = {
            "retained.ndjson", "alerts.ndjson", "dlq.ndjson"};
        sinks_t sinks;
        lreader_t rd = {-1, NULL, 0, 0, 0, 0};
        /* A line over limits.max_event_bytes is a too_large dead letter
         * that shows at most limits.dlq_payload_bytes of it: more is not
         * kept. 64 KiB beyond, so that a secret across the payload's cut
         * is still seen whole by the redaction before the cut. */
        size_t keep = (size_t)(cfg->max_event_bytes > cfg->dlq_payload_bytes
                                   ? cfg->max_event_bytes
                                   : cfg->dlq_payload_bytes) +
                      65536;
        gws_pipeline_t *pl = NULL;
        gws_detect_t **dets = NULL;
        int64_t *offsets = NULL;
        char path[4096];
        struct stat ist, ost;
        rline_t L[2];
        int i, rc = -1, nparts = cfg->partitions, cur = 0, have;
        int stopped = 0;
        int rnd = !strcmp(cfg->replay_partitioner, "random");
        int64_t t0 = gws_mono_ms();

        memset(res, 0, sizeof(*res));
        memset(L, 0, sizeof(L));
        memset(&sinks, 0, sizeof(sinks));
        sinks.res = res;
        gws_placement_reset();

        /* The pipeline and the input first: a replay that cannot start
         * leaves the outputs of the previous one as they were (the files
         * are truncated when opened). */
        if (!(pl = gws_pipeline_new(cfg, errstr, errstr_size))) {
                rc = -2; /* the configuration's (a rule, a pattern) */
                goto out;
        }
        if (!strcmp(input, "-"))
                rd.fd = STDIN_FILENO;
        else if ((rd.fd = open(input, O_RDONLY | O_CLOEXEC)) == -1) {
                snprintf(errstr, errstr_size, "%s: %s", input,
                         strerror(errno));
                goto out;
        }
        /* the line buffers at their largest at once (pages are only
         * touched as lines fill them): no reallocation per line */
        if (!(rd.blk = malloc(LR_BLOCK)) ||
            !(L[0].line = malloc(keep + 1)) ||
            !(L[1].line = malloc(keep + 1))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto out;
        }
        L[0].cap = L[1].cap = keep + 1;
        if (!(dets = calloc((size_t)nparts, sizeof(*dets))) ||
            !(offsets = calloc((size_t)nparts, sizeof(*offsets)))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto out;
        }
        if (mkdir(out_dir, 0755) == -1 && errno != EEXIST) {
                snprintf(errstr, errstr_size, "%s: %s", out_dir,
                         strerror(errno));
                goto out;
        }
        /* The input one of the outputs (DIR/retained.ndjson replayed
         * into DIR again, or a link to it): opening the outputs would
         * empty it before a line is read. The same file is the same
         * device and inode, whatever the path. */
        if (fstat(rd.fd, &ist) == 0 && S_ISREG(ist.st_mode))
                for (i = 0; i < GWS_SINK__CNT; i++) {
                        snprintf(path, sizeof(path), "%s/%s", out_dir,
                                 names[i]);
                        if (stat(path, &ost) == 0 &&
                            ost.st_dev == ist.st_dev &&
                            ost.st_ino == ist.st_ino) {
                                snprintf(errstr, errstr_size,
                                         "the input %s is %s, an output of "
                                         "this replay: writing it would "
                                         "empty it first (replay into "
                                         "another --out-dir)",
                                         input, path);
                                rc = -2;
                                goto out;
                        }
                }
        for (i = 0; i < GWS_SINK__CNT; i++) {
                snprintf(path, sizeof(path), "%s/%s", out_dir, names[i]);
                if (!(sinks.fp[i] = fopen(path, "w"))) {
                        snprintf(errstr, errstr_size, "%s: %s", path,
                                 strerror(errno));
                        goto out;
                }
        }

        /* Each line is parsed while the one before it is processed, as
         * in the service's workers (service.c, worker_run()): the
         * detector state an event touches is fetched meanwhile. A
         * partition's detector is created when its first line is
         * processed, not when it is read ahead (the state budget is
         * process-wide). */
        have = replay_next(&rd, cfg, rnd, keep, offsets, res, &L[cur], run,
                           &stopped);
        if (have)
                gws_pipeline_parse(pl, dets[L[cur].part], &L[cur].msg,
                                   &L[cur].pm);
        while (have) {
                rline_t *c = &L[cur], *nx = &L[cur ^ 1];
                int32_t part = c->part;
                gws_pipeline_prefetch(&c->pm);
                if ((have = replay_next(&rd, cfg, rnd, keep, offsets, res,
                                       nx, run, &stopped)))
                        gws_pipeline_parse(pl, dets[nx->part], &nx->msg,
                                           &nx->pm);
                if (!dets[part] &&
                    !(dets[part] = gws_detect_new(cfg, part))) {
                        snprintf(errstr, errstr_size, "out of memory");
                        goto out;
                }
                if (gws_pipeline_finish(pl, dets[part], &c->msg, &c->pm,
                                        file_emit, &sinks) ==
                    GWS_OUT_FAILED) {
                        /* A file that could not be written set werr.
                         * Without it the pipeline failed on its own (out
                         * of memory parsing, redacting or writing a
                         * record), with no errno to show: it was reported
                         * as a write error, EIO. The line's outputs may be
                         * partly written (an alert, not its event's
                         * retained record). */
                        if (sinks.werr)
                                snprintf(errstr, errstr_size,
                                         "line %llu: cannot write %s/%s: %s",
                                         c->lineno, out_dir,
                                         names[sinks.wsink],
                                         strerror(sinks.werr));
                        else
                                snprintf(errstr, errstr_size,
                                         "line %llu: event could not be "
                                         "processed (out of memory, or one "
                                         "of its outputs could not be "
                                         "built); nothing after it was "
                                         "written, and its own outputs may "
                                         "be incomplete",
                                         c->lineno);
                        goto out;
                }
                cur ^= 1;
        }
        if (rd.err) {
                snprintf(errstr, errstr_size, "%s: read error after line "
                         "%llu: %s", input, (unsigned long long)res->lines,
                         strerror(rd.err));
                goto out;
        }
        for (i = 0; i < GWS_SINK__CNT; i++) {
                FILE *fp = sinks.fp[i];
                sinks.fp[i] = NULL;
                if (fclose(fp) == EOF) {
                        snprintf(errstr, errstr_size, "%s/%s: %s", out_dir,
                                 names[i], strerror(errno));
                        goto out;
                }
        }
        if (stopped) {
                /* every line read was processed: the outputs hold the
                 * records of lines 1..res->lines, each whole */
                snprintf(errstr, errstr_size,
                         "interrupted after line %llu of %s: the outputs "
                         "hold the records of lines 1-%llu, each complete",
                         (unsigned long long)res->lines, input,
                         (unsigned long long)res->lines);
                rc = 1;
                goto out;
        }
        rc = 0;
out:
        if (pl)
                gws_pipeline_stats_add(pl, &res->st);
        res->seconds = (gws_mono_ms() - t0) / 1000.0;
        for (i = 0; i < GWS_SINK__CNT; i++)
                if (sinks.fp[i])
                        fclose(sinks.fp[i]);
        if (rd.fd > STDIN_FILENO)
                close(rd.fd);
        free(rd.blk);
        if (dets)
                for (i = 0; i < nparts; i++) {
                        gws_detect_stats_t ds;
                        if (!dets[i])
                                continue;
                        gws_detect_stats(dets[i], &ds);
                        res->det.entities += ds.entities;
                        res->det.bytes += ds.bytes;
                        res->det.evictions += ds.evictions;
                        res->det.untracked += ds.untracked;
                        res->det.late += ds.late;
                        res->det.skewed += ds.skewed;
                        gws_detect_destroy(dets[i]);
                }
        free(dets);
        free(offsets);
        for (i = 0; i < 2; i++) {
                gws_pipeline_msg_free(&L[i].pm);
                free(L[i].line);
        }
        gws_pipeline_destroy(pl);
        gws_placement_stats(&res->place);
        return rc;
}

void gws_replay_print_summary(const gws_replay_result_t *res, FILE *fp) {
        const gws_pipeline_stats_t *st = &res->st;
        uint64_t dlq = 0, kept;
        int i, first = 1;

        for (i = 0; i < GWS_EV_ERR__CNT; i++)
                dlq += st->dlq[i];
        kept = st->kept[GWS_KEEP_ERROR] + st->kept[GWS_KEEP_ANOMALY] +
               st->kept[GWS_KEEP_SAMPLE] + st->kept[GWS_KEEP_RULE];
        fprintf(fp, "events     %llu in %.2f s (%.0f events/s, %.1f MB/s)\n",
                (unsigned long long)st->in, res->seconds,
                res->seconds > 0 ? st->in / res->seconds : 0.0,
                res->seconds > 0 ? res->bytes / 1e6 / res->seconds : 0.0);
        fprintf(fp,
                "retained   %llu (error %llu, anomaly %llu, sample %llu, "
                "rule %llu)\n",
                (unsigned long long)kept,
                (unsigned long long)st->kept[GWS_KEEP_ERROR],
                (unsigned long long)st->kept[GWS_KEEP_ANOMALY],
                (unsigned long long)st->kept[GWS_KEEP_SAMPLE],
                (unsigned long long)st->kept[GWS_KEEP_RULE]);
        fprintf(fp, "dropped    %llu\n",
                (unsigned long long)st->kept[GWS_KEEP_NONE]);
        fprintf(fp, "dlq        %llu", (unsigned long long)dlq);
        for (i = 1; i < GWS_EV_ERR__CNT; i++) {
                if (!st->dlq[i])
                        continue;
                fprintf(fp, "%s%s %llu", first ? " (" : ", ",
                        gws_ev_err2str((gws_ev_err_t)i),
                        (unsigned long long)st->dlq[i]);
                first = 0;
        }
        fprintf(fp, "%s\n", first ? "" : ")");
        {
                uint64_t nred = 0;
                int k, f2 = 1;
                for (k = 0; k < GWS_RK__CNT; k++)
                        nred += st->rec.redactions[k];
                fprintf(fp, "redacted   %llu", (unsigned long long)nred);
                for (k = 0; k < GWS_RK__CNT; k++) {
                        if (!st->rec.redactions[k])
                                continue;
                        fprintf(fp, "%s%s %llu", f2 ? " (" : ", ",
                                gws_redact_kind_name((gws_redact_kind_t)k),
                                (unsigned long long)st->rec.redactions[k]);
                        f2 = 0;
                }
                fprintf(fp, "%s\n", f2 ? "" : ")");
                fprintf(fp, "trimmed    %llu bodies truncated, %llu bodies "
                            "dropped, %llu fields removed\n",
                        (unsigned long long)st->rec.bodies_truncated,
                        (unsigned long long)st->rec.bodies_dropped,
                        (unsigned long long)st->rec.fields_trimmed);
        }
        fprintf(fp, "alerts     %llu (open %llu, update %llu, resolved "
                    "%llu)\n",
                (unsigned long long)st->alerts,
                (unsigned long long)res->alerts_by_state[0],
                (unsigned long long)res->alerts_by_state[1],
                (unsigned long long)res->alerts_by_state[2]);
        fprintf(fp, "detectors  %llu entities (%.1f MB), %llu evicted, "
                    "%llu late, %llu clock-skewed\n",
                (unsigned long long)res->det.entities,
                res->det.bytes / 1048576.0,
                (unsigned long long)res->det.evictions,
                (unsigned long long)res->det.late,
                (unsigned long long)res->det.skewed);
        fprintf(fp, "gateways   %llu, %llu on several partitions%s\n",
                (unsigned long long)res->place.gateways,
                (unsigned long long)res->place.split,
                res->place.split ? " (the input is not keyed by gateway_id: "
                                   "detectors see fragments)"
                                 : "");
}

/* ------------------------------------------------------------------------
 * score-series: NAB's timestamp,value CSV through the numeric-deviation
 * detector.
 * ------------------------------------------------------------------------ */

int gws_replay_series(const gws_config_t *cfg, const char *input,
                      const char *output, uint64_t *rows, char *errstr,
                      size_t errstr_size) {
        FILE *in = NULL, *out = NULL;
        gws_series_t *s = NULL;
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        uint64_t lineno = 0;
        int rc = -1;

        *rows = 0;
        if (!(in = strcmp(input, "-") ? fopen(input, "r") : stdin)) {
                snprintf(errstr, errstr_size, "%s: %s", input,
                         strerror(errno));
                goto out;
        }
        if (!(out = strcmp(output, "-") ? fopen(output, "w") : stdout)) {
                snprintf(errstr, errstr_size, "%s: %s", output,
                         strerror(errno));
                goto out;
        }
        if (!(s = gws_series_new(cfg))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto out;
        }
        fprintf(out, "timestamp,value,anomaly_score\n");
        while ((n = getline(&line, &cap, in)) != -1) {
                char *comma, *end;
                double v;
                lineno++;
                while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                        line[--n] = '\0';
                if (!n || (lineno == 1 && !strncmp(line, "timestamp", 9)))
                        continue;
                if (!(comma = strchr(line, ','))) {
                        snprintf(errstr, errstr_size,
                                 "%s line %llu: expected timestamp,value",
                                 input, (unsigned long long)lineno);
                        goto out;
                }
                *comma = '\0';
                v = strtod(comma + 1, &end);
                if (end == comma + 1 || *end) {
                        snprintf(errstr, errstr_size,
                                 "%s line %llu: value \"%s\" is not a "
                                 "number", input, (unsigned long long)lineno,
                                 comma + 1);
                        goto out;
                }
                fprintf(out, "%s,%.17g,%.6f\n", line, v,
                        gws_series_score(s, v));
                (*rows)++;
        }
        rc = 0;
out:
        gws_series_destroy(s);
        if (in && in != stdin)
                fclose(in);
        /* stdout too: its writes fail unseen until it is flushed (or
         * failed before: the stream's error flag) */
        if (out) {
                int bad = ferror(out), e = errno;
                if ((out != stdout ? fclose(out) : fflush(out)) == EOF)
                        bad = 1, e = errno;
                if (bad && rc == 0) {
                        snprintf(errstr, errstr_size, "%s: %s",
                                 out != stdout ? output : "standard output",
                                 e ? strerror(e) : "write error");
                        rc = -1;
                }
        }
        free(line);
        return rc;
}
