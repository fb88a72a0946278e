/* metrics.c - Prometheus text exposition helpers (see metrics.h). */
#include "gwsieve/metrics.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

const double gws_hist_bounds[GWS_HIST_NB] = {
    2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4,
    5e-4,   1e-3, 2.5e-3, 1e-2, 5e-2, 0.25, 1.0};

void gws_hist_observe(gws_hist_t *h, uint64_t ns) {
        double s = (double)ns / 1e9;
        int i = 0;
        while (i < GWS_HIST_NB && s > gws_hist_bounds[i])
                i++;
        __atomic_add_fetch(&h->bucket[i], 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&h->count, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&h->sum_ns, ns, __ATOMIC_RELAXED);
}

/* The count is the sum of the buckets as read, not src->count: a thread
 * observing between the loads would make _count and the +Inf bucket
 * differ (Prometheus requires them equal). _sum may hold an observation
 * more or less than the buckets, as in any lock-free client. */
void gws_hist_add(gws_hist_t *dst, const gws_hist_t *src) {
        uint64_t v;
        int i;
        for (i = 0; i <= GWS_HIST_NB; i++) {
                v = __atomic_load_n(&src->bucket[i], __ATOMIC_RELAXED);
                dst->bucket[i] += v;
                dst->count += v;
        }
        dst->sum_ns += __atomic_load_n(&src->sum_ns, __ATOMIC_RELAXED);
}

int gws_prom_family(gws_buf_t *b, const char *name, const char *type,
                    const char *help) {
        return gws_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
                              name, type);
}

/* name{l="v",...} */
static int put_series(gws_buf_t *b, const char *name, const char *suffix,
                      const char *const *labels, const char *extra_k,
                      const char *extra_v) {
        int r = gws_buf_printf(b, "%s%s", name, suffix ? suffix : "");
        int first = 1;
        const char *const *l;
        if ((!labels || !labels[0]) && !extra_k)
                return r;
        r |= gws_buf_puts(b, "{");
        for (l = labels; l && l[0] && l[1]; l += 2) {
                const char *v;
                r |= gws_buf_printf(b, "%s%s=\"", first ? "" : ",", l[0]);
                first = 0;
                for (v = l[1]; *v; v++) {
                        if (*v == '\\')
                                r |= gws_buf_puts(b, "\\\\");
                        else if (*v == '"')
                                r |= gws_buf_puts(b, "\\\"");
                        else if (*v == '\n')
                                r |= gws_buf_puts(b, "\\n");
                        else
                                r |= gws_buf_append(b, v, 1);
                }
                r |= gws_buf_puts(b, "\"");
        }
        if (extra_k)
                r |= gws_buf_printf(b, "%s%s=\"%s\"", first ? "" : ",",
                                    extra_k, extra_v);
        r |= gws_buf_puts(b, "}");
        return r;
}

int gws_prom_u64(gws_buf_t *b, const char *name, const char *const *labels,
                 uint64_t v) {
        int r = put_series(b, name, NULL, labels, NULL, NULL);
        return r | gws_buf_printf(b, " %llu\n", (unsigned long long)v);
}

int gws_prom_dbl(gws_buf_t *b, const char *name, const char *const *labels,
                 double v) {
        int r = put_series(b, name, NULL, labels, NULL, NULL);
        if (isnan(v))
                return r | gws_buf_puts(b, " NaN\n");
        if (isinf(v))
                return r | gws_buf_puts(b, v > 0 ? " +Inf\n" : " -Inf\n");
        return r | gws_buf_printf(b, " %.17g\n", v);
}

int gws_prom_hist(gws_buf_t *b, const char *name, const gws_hist_t *h) {
        uint64_t cum = 0;
        char le[32];
        int i, r = 0;
        for (i = 0; i <= GWS_HIST_NB; i++) {
                cum += h->bucket[i];
                if (i < GWS_HIST_NB)
                        snprintf(le, sizeof(le), "%g", gws_hist_bounds[i]);
                else
                        snprintf(le, sizeof(le), "+Inf");
                r |= put_series(b, name, "_bucket", NULL, "le", le);
                r |= gws_buf_printf(b, " %llu\n", (unsigned long long)cum);
        }
        /* _count is the +Inf bucket by construction */
        r |= gws_buf_printf(b, "%s_sum %.9f\n%s_count %llu\n", name,
                            (double)h->sum_ns / 1e9, name,
                            (unsigned long long)cum);
        return r;
}

int gws_proc_usage(double *cpu_s, uint64_t *rss_bytes) {
        struct rusage ru;
        FILE *fp;
        unsigned long vsz = 0, rss = 0;
        *cpu_s = 0;
        *rss_bytes = 0;
        if (getrusage(RUSAGE_SELF, &ru) == 0)
                *cpu_s = (double)ru.ru_utime.tv_sec +
                         (double)ru.ru_utime.tv_usec / 1e6 +
                         (double)ru.ru_stime.tv_sec +
                         (double)ru.ru_stime.tv_usec / 1e6;
        if (!(fp = fopen("/proc/self/statm", "r")))
                return -1;
        if (fscanf(fp, "%lu %lu", &vsz, &rss) != 2)
                rss = 0;
        fclose(fp);
        *rss_bytes = (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
        return 0;
}

/* Start time: /proc/self/stat field 22 (clock ticks after boot) plus
 * /proc/stat's btime. */
static double start_time(void) {
        static double cached;
        char buf[1024], *p;
        unsigned long long ticks = 0, btime = 0;
        FILE *fp;
        if (cached > 0)
                return cached;
        if ((fp = fopen("/proc/self/stat", "r"))) {
                size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
                buf[n] = '\0';
                fclose(fp);
                /* after the ")" that ends the command name: field 3
                 * (state) .. field 22 (starttime) */
                if ((p = strrchr(buf, ')')) &&
                    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
                                  "%*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                           &ticks) != 1)
                        ticks = 0;
        }
        if ((fp = fopen("/proc/stat", "r"))) {
                while (fgets(buf, sizeof(buf), fp))
                        if (!strncmp(buf, "btime ", 6))
                                btime = strtoull(buf + 6, NULL, 10);
                fclose(fp);
        }
        cached = (double)btime + (double)ticks / (double)sysconf(_SC_CLK_TCK);
        return cached;
}

int gws_prom_process(gws_buf_t *b) {
        double cpu;
        uint64_t rss, fds = 0;
        unsigned long vsz = 0;
        struct rlimit rl;
        DIR *dir;
        FILE *fp;
        int r = 0;

        gws_proc_usage(&cpu, &rss);
        if ((fp = fopen("/proc/self/statm", "r"))) {
                if (fscanf(fp, "%lu", &vsz) != 1)
                        vsz = 0;
                fclose(fp);
        }
        if ((dir = opendir("/proc/self/fd"))) {
                struct dirent *de;
                while ((de = readdir(dir)))
                        if (de->d_name[0] != '.')
                                fds++;
                closedir(dir);
                if (fds)
                        fds--; /* the directory's own descriptor */
        }
        r |= gws_prom_family(b, "process_cpu_seconds_total", "counter",
                             "Total user and system CPU time spent in "
                             "seconds.");
        r |= gws_prom_dbl(b, "process_cpu_seconds_total", NULL, cpu);
        r |= gws_prom_family(b, "process_resident_memory_bytes", "gauge",
                             "Resident memory size in bytes.");
        r |= gws_prom_u64(b, "process_resident_memory_bytes", NULL, rss);
        r |= gws_prom_family(b, "process_virtual_memory_bytes", "gauge",
                             "Virtual memory size in bytes.");
        r |= gws_prom_u64(b, "process_virtual_memory_bytes", NULL,
                          (uint64_t)vsz * (uint64_t)sysconf(_SC_PAGESIZE));
        r |= gws_prom_family(b, "process_start_time_seconds", "gauge",
                             "Start time of the process since unix epoch in "
                             "seconds.");
        r |= gws_prom_dbl(b, "process_start_time_seconds", NULL,
                          start_time());
        r |= gws_prom_family(b, "process_open_fds", "gauge",
                             "Number of open file descriptors.");
        r |= gws_prom_u64(b, "process_open_fds", NULL, fds);
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
                r |= gws_prom_family(b, "process_max_fds", "gauge",
                                     "Maximum number of open file "
                                     "descriptors.");
                r |= gws_prom_u64(b, "process_max_fds", NULL,
                                  (uint64_t)rl.rlim_cur);
        }
        return r;
}
