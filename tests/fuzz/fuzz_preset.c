/* fuzz_preset.c - libFuzzer target: foreign gateway logs (input.format
 * cloudflare, litellm, otel-genai) through the whole pipeline.
 *
 * The first byte picks the preset (byte % 3), the rest is the message.
 * The presets read the message with jansson and map it onto native JSON
 * text, which the native parser then validates; the invariants are those
 * of fuzz_pipeline.c: no crash or leak (ASan/UBSan), one outcome, every
 * record emitted one valid JSON object. Seeds: the samples of
 * tests/data/presets/ with their selector byte (scripts/fuzz.sh).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "gwsieve/config.h"
#include "gwsieve/detect.h"
#include "gwsieve/pipeline.h"

static const char *formats[3] = {"cloudflare", "litellm", "otel-genai"};
static gws_config_t *cfgs[3];
static gws_pipeline_t *pls[3];
static gws_detect_t *dets[3];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        char errstr[512], conf[256];
        int i;
        (void)argc;
        (void)argv;
        for (i = 0; i < 3; i++) {
                snprintf(conf, sizeof(conf),
                         "{\"input\":{\"format\":\"%s\"},"
                         "\"trim\":{\"max_body_bytes\":64},"
                         "\"detectors\":{\"warmup_events\":2,"
                         "\"max_entities\":64}}",
                         formats[i]);
                cfgs[i] = gws_config_new();
                if (gws_config_load_string(cfgs[i], conf, errstr,
                                           sizeof(errstr)) == -1 ||
                    !(pls[i] = gws_pipeline_new(cfgs[i], errstr,
                                                sizeof(errstr))) ||
                    !(dets[i] = gws_detect_new(cfgs[i], 0))) {
                        fprintf(stderr, "fuzz setup (%s): %s\n", formats[i],
                                errstr);
                        abort();
                }
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static int64_t offset;
        gws_input_t in = {NULL, 0, "k", 1, "gw.raw", 0, offset++, 0, 0};
        int p;
        if (!size)
                return 0;
        p = data[0] % 3;
        in.value = (const char *)data + 1;
        in.len = size - 1;
        if (gws_pipeline_process(pls[p], dets[p], &in, fuzz_check_record,
                                 NULL) == GWS_OUT_FAILED)
                abort(); /* the sink never fails here */
        return 0;
}
