/* fuzz_config.c - libFuzzer target: configuration files.
 *
 * A configuration is an operator's file, not traffic, but a typo must end
 * in a message naming the key (exit 2), never a crash. Per input (JSON
 * text): load, validate, print the effective configuration (check-config),
 * and when it is valid build the pipeline (filter rules, redaction
 * patterns with PCRE2, trim paths, key sets) and run two events through
 * it (one with secrets to redact, one error); every record emitted must be
 * valid JSON. Seeds: the JSON files of deploy/ and tests/fuzz/corpus_config/
 * (scripts/fuzz.sh).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "gwsieve/config.h"
#include "gwsieve/detect.h"
#include "gwsieve/pipeline.h"

static const char *events[] = {
    "{\"id\":\"e1\",\"ts\":\"2026-01-01T00:00:00Z\",\"gateway_id\":\"gw\","
    "\"provider\":\"openai\",\"model\":\"gpt-4o\",\"status\":200,"
    "\"latency_ms\":120,\"tokens_in\":10,\"tokens_out\":5,"
    "\"cost_usd\":0.001,\"user_id\":\"u1\",\"client_ip\":\"10.0.0.1\","
    "\"endpoint\":\"chat/completions\",\"metadata\":{\"tier\":\"gold\"},"
    "\"request\":{\"messages\":[{\"role\":\"user\",\"content\":\"my key "
    "is sk-abcdefghijklmnopqrstuvwx and mail a@b.example\"}]},"
    "\"response\":{\"choices\":[{\"message\":{\"content\":\"ok\"}}]}}",
    "{\"id\":\"e2\",\"ts\":\"2026-01-01T00:00:01Z\",\"gateway_id\":\"gw\","
    "\"provider\":\"openai\",\"model\":\"gpt-4o\",\"status\":503,"
    "\"success\":false,\"latency_ms\":30000,\"user_id\":\"u2\"}",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char errstr[512], *text = malloc(size + 1);
        gws_config_t *cfg = gws_config_new();
        gws_pipeline_t *pl;
        gws_detect_t *det;
        FILE *devnull;
        size_t i;

        if (!text || !cfg)
                abort();
        memcpy(text, data, size);
        text[size] = '\0';
        errstr[0] = '\0';
        if (gws_config_load_string(cfg, text, errstr, sizeof(errstr)) == -1 ||
            gws_config_validate(cfg, errstr, sizeof(errstr)) == -1) {
                if (!errstr[0])
                        abort(); /* a refusal always says why */
                goto out;
        }
        if ((devnull = fopen("/dev/null", "w"))) {
                gws_config_dump(cfg, devnull);
                fclose(devnull);
        }
        errstr[0] = '\0';
        if (!(pl = gws_pipeline_new(cfg, errstr, sizeof(errstr)))) {
                if (!errstr[0])
                        abort();
                goto out;
        }
        if (!(det = gws_detect_new(cfg, 0)))
                abort();
        for (i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
                gws_input_t in = {events[i], strlen(events[i]), "k", 1,
                                  "gw.raw", 0, (int64_t)i, 0, 0};
                if (gws_pipeline_process(pl, det, &in, fuzz_check_record,
                                         NULL) == GWS_OUT_FAILED)
                        abort();
        }
        gws_detect_destroy(det);
        gws_pipeline_destroy(pl);
out:
        gws_config_destroy(cfg);
        free(text);
        return 0;
}
