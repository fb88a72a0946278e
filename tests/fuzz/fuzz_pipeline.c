/* fuzz_pipeline.c - libFuzzer target: one message through parse -> score ->
 * filter -> redact -> trim -> serialise.
 *
 * Invariants checked on every input: the pipeline never crashes or leaks
 * (ASan/UBSan), emits exactly one retained-or-DLQ outcome, and every record
 * it emits is one valid UTF-8 JSON object (checked with jansson, an
 * independent parser). Run: scripts/fuzz.sh [seconds].
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "gwsieve/config.h"
#include "gwsieve/detect.h"
#include "gwsieve/pipeline.h"

static gws_config_t *cfg;
static gws_pipeline_t *pl;
static gws_detect_t *det;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        char errstr[512];
        (void)argc;
        (void)argv;
        cfg = gws_config_new();
        /* Exercise every stage: rules, trimming, small body limit,
         * a custom pattern and ip_truncate (dead letters' text too). */
        if (gws_config_load_string(
                cfg,
                "{\"filter\":{\"normal_sample_rate\":0.5,\"rules\":["
                "{\"name\":\"r1\",\"when\":{\"any\":[{\"field\":"
                "\"metadata.tier\",\"equals\":\"gold\"},{\"field\":"
                "\"tokens_in\",\"gt\":1000}]},\"action\":\"keep\"},"
                "{\"name\":\"r2\",\"when\":{\"field\":\"endpoint\","
                "\"prefix\":\"emb\"},\"action\":\"sample\",\"rate\":0.5}]},"
                "\"trim\":{\"deny\":[\"metadata.secret\",\"request.tools\"],"
                "\"max_body_bytes\":64},"
                "\"redact\":{\"ip_truncate\":true,\"custom\":[{\"name\":"
                "\"acct\",\"pattern\":\"\\\\bACCT-[0-9]{6}\\\\b\"}]},"
                "\"limits\":{\"max_event_bytes\":65536,\"max_depth\":16},"
                "\"detectors\":{\"warmup_events\":2,\"max_entities\":64}}",
                errstr, sizeof(errstr)) == -1) {
                fprintf(stderr, "fuzz config: %s\n", errstr);
                abort();
        }
        if (!(pl = gws_pipeline_new(cfg, errstr, sizeof(errstr))) ||
            !(det = gws_detect_new(cfg, 0))) {
                fprintf(stderr, "fuzz setup: %s\n", errstr);
                abort();
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static int64_t offset;
        gws_input_t in = {(const char *)data, size, "k", 1, "gw.raw", 0,
                          offset++, 0, 0};
        gws_outcome_t o =
            gws_pipeline_process(pl, det, &in, fuzz_check_record, NULL);
        if (o == GWS_OUT_FAILED)
                abort(); /* the sink never fails here */
        return 0;
}
