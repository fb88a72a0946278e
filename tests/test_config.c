/* test_config.c - defaults, file/env/CLI layers, errors that name keys. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gwsieve/config.h"
#include "gwsieve/service.h"
#include "suites.h"

static gws_config_t *cfg;
static char err[512];

static void setup(void) {
        cfg = gws_config_new();
        err[0] = '\0';
}
static void teardown(void) {
        gws_config_destroy(cfg);
}

START_TEST(defaults) {
        ck_assert_str_eq(cfg->topic_input, "gw.raw");
        ck_assert_str_eq(cfg->topic_dlq, "gw.dlq");
        ck_assert_str_eq(cfg->group, "gwsieve");
        ck_assert_double_eq(cfg->normal_sample_rate, 0.1);
        ck_assert_int_eq(cfg->keep_errors, 1);
        ck_assert_int_eq(gws_config_validate(cfg, err, sizeof(err)), 0);
}
END_TEST

/* A file that cannot be opened is named with the system's reason, not
 * as a parse error at "line -1 column -1" (jansson's position when it
 * read nothing). */
START_TEST(unopenable_file_named) {
        ck_assert_int_eq(gws_config_load_file(cfg, "/nonexistent/gw.json",
                                              err, sizeof(err)),
                         -1);
        ck_assert_str_eq(err, "/nonexistent/gw.json: No such file or directory");
        ck_assert_int_eq(gws_config_load_file(cfg, "/", err, sizeof(err)),
                         -1);
        ck_assert_msg(!strstr(err, "line -1") && !strncmp(err, "/: ", 3),
                      "%s", err);
}
END_TEST

START_TEST(nested_and_kafka) {
        ck_assert_int_eq(
            gws_config_load_string(
                cfg,
                "{\"workers\":4,\"topics\":{\"input\":\"in\"},"
                "\"filter\":{\"normal_sample_rate\":1},"
                "\"kafka\":{\"bootstrap.servers\":\"h:1\",\"linger.ms\":7,"
                "\"enable.idempotence\":true,"
                "\"consumer\":{\"fetch.wait.max.ms\":\"10\"},"
                "\"producer\":{\"acks\":\"all\"}}}",
                err, sizeof(err)),
            0);
        ck_assert_int_eq(cfg->workers, 4);
        ck_assert_str_eq(cfg->topic_input, "in");
        ck_assert_double_eq(cfg->normal_sample_rate, 1.0);
        ck_assert_str_eq(gws_config_kv_get(cfg->kafka, "linger.ms"), "7");
        ck_assert_str_eq(gws_config_kv_get(cfg->kafka, "enable.idempotence"),
                         "true");
        ck_assert_str_eq(
            gws_config_kv_get(cfg->kafka_consumer, "fetch.wait.max.ms"), "10");
        ck_assert_str_eq(gws_config_kv_get(cfg->kafka_producer, "acks"),
                         "all");
}
END_TEST

static const struct {
        const char *json;
        const char *needle; /* must appear in the error */
} bad[] = {
    {"{\"filter\":{\"normal_sample_rat\":0.5}}",
     "did you mean \"filter.normal_sample_rate\""},
    {"{\"workers\":\"3\"}", "\"workers\": expected an integer"},
    {"{\"workers\":0}", "\"workers\": 0 is out of range"},
    {"{\"filter\":{\"normal_sample_rate\":1.5}}", "out of range"},
    {"{\"log\":{\"format\":\"xml\"}}", "\"log.format\": \"xml\" is not one of"},
    {"{\"kafka\":{\"x\":[1]}}", "\"kafka.x\": librdkafka properties"},
    {"{\"kafka\":3}", "\"kafka\": expected an object"},
    {"{\"trim\":{\"deny\":\"x\"}}", "\"trim.deny\": expected an array"},
    {"{\"detectors\":{\"rate_settle_s\":-1}}",
     "\"detectors.rate_settle_s\": -1 is out of range"},
    {"{\"workers\":1,}", "line 1"},
    {"[]", "must be a JSON object"},
};

START_TEST(errors_name_the_key) {
        ck_assert_int_eq(
            gws_config_load_string(cfg, bad[_i].json, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, bad[_i].needle), "%s -> %s", bad[_i].json,
                      err);
}
END_TEST

/* A value of the file is taken whole, however long: a CA chain in
 * kafka.ssl.ca.pem is several KB, and a cut one is another certificate
 * (or none); a long topic name is refused with its real length. */
START_TEST(file_values_not_cut) {
        size_t n = 5000;
        char *pem = malloc(n + 1), *json = malloc(2 * n + 128);
        memset(pem, 'A', n);
        pem[n] = '\0';
        snprintf(json, 2 * n + 128, "{\"kafka\":{\"ssl.ca.pem\":\"%s\"}}",
                 pem);
        ck_assert_int_eq(gws_config_load_string(cfg, json, err, sizeof(err)),
                         0);
        ck_assert_uint_eq(
            strlen(gws_config_kv_get(cfg->kafka, "ssl.ca.pem")), n);
        snprintf(json, 2 * n + 128, "{\"topics\":{\"input\":\"%s\"}}",
                 pem);
        ck_assert_int_eq(gws_config_load_string(cfg, json, err, sizeof(err)),
                         0);
        ck_assert_uint_eq(strlen(cfg->topic_input), n);
        ck_assert_int_eq(gws_config_validate(cfg, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, "\"topics.input\": 5000 characters"), "%s",
                      err);
        free(json);
        free(pem);
}
END_TEST

/* Numbers from the environment and --set are decimal text and nothing
 * else: "5 " was refused but " 5" taken, "0x10" refused for an integer
 * but "0x1p-1" (hex, 0.5) taken for a number. */
static const struct {
        const char *key, *value;
} badnum[] = {
    {"workers", " 5"},
    {"workers", "\t5"},
    {"workers", "5 "},
    {"workers", "0x10"},
    {"workers", "1e3"},
    {"limits.max_event_bytes", " 65536"},
    {"filter.normal_sample_rate", " 0.5"},
    {"filter.normal_sample_rate", "\n0.5"},
    {"filter.normal_sample_rate", "0x1p-1"},
    {"filter.normal_sample_rate", "0X.8P0"},
};

START_TEST(numbers_are_decimal_text) {
        ck_assert_msg(gws_config_set(cfg, badnum[_i].key, badnum[_i].value,
                                     err, sizeof(err)) == -1,
                      "%s=\"%s\" taken", badnum[_i].key, badnum[_i].value);
        ck_assert_msg(strstr(err, badnum[_i].key), "%s", err);
        ck_assert_int_eq(gws_config_set(cfg, "workers", "+5", err,
                                        sizeof(err)),
                         0);
        ck_assert_int_eq(cfg->workers, 5);
        ck_assert_int_eq(gws_config_set(cfg, "filter.normal_sample_rate",
                                        ".25", err, sizeof(err)),
                         0);
        ck_assert_double_eq(cfg->normal_sample_rate, 0.25);
        ck_assert_int_eq(gws_config_set(cfg, "filter.normal_sample_rate",
                                        "2.5e-1", err, sizeof(err)),
                         0);
        ck_assert_double_eq(cfg->normal_sample_rate, 0.25);
}
END_TEST

/* The file refuses a name given twice in an object (jansson's
 * JSON_REJECT_DUPLICATES), in filter.rules too; the same rules from
 * --set or GWSIEVE_FILTER_RULES took the last one silently. */
START_TEST(json_values_refuse_duplicates) {
        static const char *rules =
            "[{\"name\":\"hc\",\"when\":{\"field\":\"user_agent\","
            "\"equals\":\"kube-probe\"},\"action\":\"keep\","
            "\"action\":\"drop\"}]";
        char file[512];
        snprintf(file, sizeof(file), "{\"filter\":{\"rules\":%s}}", rules);
        ck_assert_int_eq(gws_config_load_string(cfg, file, err, sizeof(err)),
                         -1);
        ck_assert_msg(strstr(err, "duplicate"), "%s", err);
        ck_assert_int_eq(gws_config_set(cfg, "filter.rules", rules, err,
                                        sizeof(err)),
                         -1);
        ck_assert_msg(strstr(err, "\"filter.rules\"") &&
                          strstr(err, "duplicate"),
                      "%s", err);
        setenv("GWSIEVE_FILTER_RULES", rules, 1);
        ck_assert_int_eq(gws_config_apply_env(cfg, err, sizeof(err)), -1);
        unsetenv("GWSIEVE_FILTER_RULES");
        ck_assert_msg(strstr(err, "GWSIEVE_FILTER_RULES"), "%s", err);
}
END_TEST

START_TEST(env_and_set_layers) {
        setenv("GWSIEVE_WORKERS", "7", 1);
        setenv("GWSIEVE_FILTER_NORMAL_SAMPLE_RATE", "0.25", 1);
        setenv("GWSIEVE_GROUP", "", 1); /* empty = unset */
        ck_assert_int_eq(gws_config_apply_env(cfg, err, sizeof(err)), 0);
        ck_assert_int_eq(cfg->workers, 7);
        ck_assert_double_eq(cfg->normal_sample_rate, 0.25);
        ck_assert_str_eq(cfg->group, "gwsieve");
        setenv("GWSIEVE_WORKERS", "many", 1);
        ck_assert_int_eq(gws_config_apply_env(cfg, err, sizeof(err)), -1);
        ck_assert_ptr_nonnull(strstr(err, "GWSIEVE_WORKERS"));
        unsetenv("GWSIEVE_WORKERS");
        unsetenv("GWSIEVE_FILTER_NORMAL_SAMPLE_RATE");
        unsetenv("GWSIEVE_GROUP");
        ck_assert_int_eq(gws_config_set(cfg, "workers", "3", err, sizeof(err)),
                         0);
        ck_assert_int_eq(cfg->workers, 3);
        ck_assert_int_eq(gws_config_set(cfg, "kafka.consumer.x", "1", err,
                                        sizeof(err)),
                         0);
        ck_assert_str_eq(gws_config_kv_get(cfg->kafka_consumer, "x"), "1");
        ck_assert_int_eq(gws_config_set(cfg, "nope", "1", err, sizeof(err)),
                         -1);
        ck_assert_ptr_nonnull(strstr(err, "unknown key \"nope\""));
}
END_TEST

START_TEST(validate_topics_and_commit) {
        gws_config_set(cfg, "topics.retained", "gw.raw", err, sizeof(err));
        ck_assert_int_eq(gws_config_validate(cfg, err, sizeof(err)), -1);
        ck_assert_ptr_nonnull(strstr(err, "also the input topic"));
        gws_config_set(cfg, "topics.retained", "gw.dlq", err, sizeof(err));
        ck_assert_int_eq(gws_config_validate(cfg, err, sizeof(err)), -1);
        gws_config_set(cfg, "topics.retained", "gw.retained", err,
                       sizeof(err));
        gws_config_set(cfg, "kafka.enable.auto.commit", "true", err,
                       sizeof(err));
        ck_assert_int_eq(gws_config_validate(cfg, err, sizeof(err)), -1);
        ck_assert_ptr_nonnull(strstr(err, "enable.auto.commit"));
}
END_TEST

/* detectors.rate_settle_s is 0 (never) or at least two windows: under
 * that a rate_drop would settle as soon as it opened. */
START_TEST(validate_rate_settle) {
        ck_assert_int_eq(gws_config_validate(cfg, err, sizeof(err)), 0);
        ck_assert_int_eq(gws_config_set(cfg, "detectors.rate_settle_s", "119",
                                        err, sizeof(err)),
                         0);
        ck_assert_int_eq(gws_config_validate(cfg, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, "\"detectors.rate_settle_s\": 119 is less "
                                  "than two windows (detectors.window_s 60)"),
                      "%s", err);
        ck_assert_int_eq(gws_config_set(cfg, "detectors.rate_settle_s", "120",
                                        err, sizeof(err)),
                         0);
        ck_assert_int_eq(gws_config_validate(cfg, err, sizeof(err)), 0);
        ck_assert_int_eq(gws_config_set(cfg, "detectors.rate_settle_s", "0",
                                        err, sizeof(err)),
                         0);
        ck_assert_int_eq(gws_config_validate(cfg, err, sizeof(err)), 0);
}
END_TEST

/* Kafka topic names have at most 249 characters; a longer group or topic
 * cut the state topic's keys ("<group>/<topic>/<partition>", 512 bytes):
 * every partition's snapshot then had the same key, compaction kept one,
 * and the others restored as another partition's (foreign). */
START_TEST(validate_name_lengths) {
        char name[300];
        memset(name, 'g', 249);
        name[249] = '\0';
        ck_assert_int_eq(gws_config_set(cfg, "group", name, err, sizeof(err)),
                         0);
        ck_assert_int_eq(gws_config_validate(cfg, err, sizeof(err)), 0);
        ck_assert_int_eq(gws_config_set(cfg, "topics.input", name, err,
                                        sizeof(err)),
                         0);
        ck_assert_int_eq(gws_config_validate(cfg, err, sizeof(err)), 0);
        strcat(name, "g");
        ck_assert_int_eq(gws_config_set(cfg, "group", name, err, sizeof(err)),
                         0);
        ck_assert_int_eq(gws_config_validate(cfg, err, sizeof(err)), -1);
        ck_assert_ptr_nonnull(strstr(err, "\"group\": 250 characters"));
        ck_assert_int_eq(gws_config_set(cfg, "group", "g", err, sizeof(err)),
                         0);
        ck_assert_int_eq(gws_config_set(cfg, "state.topic", name, err,
                                        sizeof(err)),
                         0);
        ck_assert_int_eq(gws_config_validate(cfg, err, sizeof(err)), -1);
        ck_assert_ptr_nonnull(strstr(err, "\"state.topic\": 250"));
}
END_TEST

START_TEST(dump_masks_secrets) {
        char *buf = NULL;
        size_t len = 0;
        FILE *fp = open_memstream(&buf, &len);
        json_t *j;
        json_error_t jerr;
        gws_config_set(cfg, "kafka.sasl.password", "hunter2", err,
                       sizeof(err));
        gws_config_dump(cfg, fp);
        fclose(fp);
        ck_assert_ptr_null(strstr(buf, "hunter2"));
        j = json_loads(buf, 0, &jerr);
        ck_assert_ptr_nonnull(j);
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(j, "kafka"), "sasl.password")),
                         "***");
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(j, "topics"), "input")),
                         "gw.raw");
        json_decref(j);
        free(buf);
}
END_TEST

/* Every property librdkafka 2.0.2 marks _RK_SENSITIVE (src/rdkafka_conf.c;
 * its own debug dumps print "[redacted]"), plus the OIDC client secret it
 * does not mark, is dumped as "***" in each of the three sections. */
static const char *sensitive[] = {
    "ssl.key.location", "ssl.key.password", "ssl.key.pem", "ssl.ca.pem",
    "ssl.keystore.password", "sasl.username", "sasl.password",
    "sasl.oauthbearer.config", "sasl.oauthbearer.client.secret"};

START_TEST(dump_masks_sensitive_props) {
        static const char *sect[] = {"kafka", "kafka.consumer",
                                     "kafka.producer"};
        char *buf = NULL, key[128];
        size_t len = 0, i;
        FILE *fp = open_memstream(&buf, &len);
        json_t *j, *o;
        json_error_t jerr;

        for (i = 0; i < 3; i++) {
                snprintf(key, sizeof(key), "%s.%s", sect[i], sensitive[_i]);
                ck_assert_int_eq(gws_config_set(cfg, key, "hunter2", err,
                                                sizeof(err)),
                                 0);
        }
        gws_config_dump(cfg, fp);
        fclose(fp);
        ck_assert_msg(!strstr(buf, "hunter2"), "%s shown: %s", sensitive[_i],
                      buf);
        j = json_loads(buf, 0, &jerr);
        ck_assert_ptr_nonnull(j);
        o = json_object_get(j, "kafka");
        ck_assert_str_eq(json_string_value(json_object_get(o, sensitive[_i])),
                         "***");
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(o, "consumer"), sensitive[_i])),
                         "***");
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(o, "producer"), sensitive[_i])),
                         "***");
        json_decref(j);
        free(buf);
}
END_TEST

/* redact.alert_id_key (the secret of alert ids) is optional and at least
 * 16 bytes wherever it comes from (file, environment, --set): a shorter
 * one is refused at load with an error that names the key and does not
 * print the value. check-config masks it, help-config lists it. */
START_TEST(alert_id_key_secret) {
        char *buf = NULL;
        size_t len = 0;
        FILE *fp;
        json_t *j;
        json_error_t jerr;

        /* unset by default: dumped as null */
        fp = open_memstream(&buf, &len);
        gws_config_dump(cfg, fp);
        fclose(fp);
        j = json_loads(buf, 0, &jerr);
        ck_assert_ptr_nonnull(j);
        ck_assert(json_is_null(json_object_get(json_object_get(j, "redact"),
                                               "alert_id_key")));
        json_decref(j);
        free(buf);

        ck_assert_int_eq(gws_config_set(cfg, "redact.alert_id_key",
                                        "short-secret-15", err, sizeof(err)),
                         -1);
        ck_assert_msg(strstr(err, "\"redact.alert_id_key\": 15 bytes, at "
                                  "least 16"),
                      "%s", err);
        ck_assert_ptr_null(strstr(err, "short-secret-15"));
        ck_assert_int_eq(gws_config_load_string(
                             cfg,
                             "{\"redact\":{\"alert_id_key\":\"hunter2\"}}",
                             err, sizeof(err)),
                         -1);
        ck_assert_msg(strstr(err, "\"redact.alert_id_key\": 7 bytes"), "%s",
                      err);
        ck_assert_ptr_null(strstr(err, "hunter2"));
        setenv("GWSIEVE_REDACT_ALERT_ID_KEY", "hunter2", 1);
        ck_assert_int_eq(gws_config_apply_env(cfg, err, sizeof(err)), -1);
        unsetenv("GWSIEVE_REDACT_ALERT_ID_KEY");
        ck_assert_msg(strstr(err, "GWSIEVE_REDACT_ALERT_ID_KEY") &&
                          strstr(err, "\"redact.alert_id_key\": 7 bytes"),
                      "%s", err);
        ck_assert_ptr_null(strstr(err, "hunter2"));

        /* 16 bytes will do; the environment is the usual way in */
        setenv("GWSIEVE_REDACT_ALERT_ID_KEY", "0123456789abcdef", 1);
        ck_assert_int_eq(gws_config_apply_env(cfg, err, sizeof(err)), 0);
        unsetenv("GWSIEVE_REDACT_ALERT_ID_KEY");
        ck_assert_int_eq(gws_config_validate(cfg, err, sizeof(err)), 0);
        buf = NULL;
        fp = open_memstream(&buf, &len);
        gws_config_dump(cfg, fp);
        fclose(fp);
        ck_assert_ptr_null(strstr(buf, "0123456789abcdef"));
        j = json_loads(buf, 0, &jerr);
        ck_assert_ptr_nonnull(j);
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(j, "redact"), "alert_id_key")),
                         "***");
        json_decref(j);
        free(buf);

        buf = NULL;
        fp = open_memstream(&buf, &len);
        gws_config_print_help(fp);
        fclose(fp);
        ck_assert_ptr_nonnull(strstr(buf, "\n  redact.alert_id_key "));
        ck_assert_ptr_null(strstr(buf, "(null)"));
        free(buf);
}
END_TEST

/* librdkafka refuses some combinations of properties only in
 * rd_kafka_new(), with its own words ("`fetch.max.bytes` must be >=
 * `message.max.bytes`"): the error must also say, for each property it
 * names, which gwsieve key its value came from (or whose default it is)
 * and where to change it. No broker is needed: the refusal comes before
 * any connection. */
static const struct {
        const char *key, *value; /* --set KEY=VALUE */
        const char *needle[4];   /* must all appear in the error */
} refused[] = {
    {"kafka.consumer.fetch.max.bytes", "524288",
     {"consumer: `fetch.max.bytes` must be >= `message.max.bytes` "
      "(librdkafka refused the consumer configuration: ",
      "fetch.max.bytes=524288 from \"kafka.consumer\"; ",
      "message.max.bytes=1000000 is librdkafka's default; ",
      "set them under \"kafka.consumer\" or \"kafka\", --set "
      "kafka.consumer.NAME=VALUE or -X consumer.NAME=VALUE)"}},
    /* an alias of the property the refusal names; gwsieve's linger.ms */
    {"kafka.producer.delivery.timeout.ms", "10",
     {"producer: `message.timeout.ms` must be greater than `linger.ms` "
      "(librdkafka refused the producer configuration: ",
      "message.timeout.ms=10 from \"kafka.producer\" (as "
      "delivery.timeout.ms); ",
      "linger.ms=50 is gwsieve's default; ",
      "--set kafka.producer.NAME=VALUE or -X producer.NAME=VALUE)"}},
    /* the shared section; gwsieve's enable.idempotence */
    {"kafka.max.in.flight", "10",
     {"producer: `max.in.flight` must be set <= 5",
      "max.in.flight=10 from \"kafka\"; ",
      "enable.idempotence=true is gwsieve's default; ", NULL}},
    /* rd_kafka_topic_new() of an output topic (no default topic conf:
     * rd_kafka_new() had no topic property to check) */
    {"kafka.producer.queue.buffering.max.ms", "400000",
     {"producer topic \"gw.retained\": `message.timeout.ms` must be "
      "greater than `linger.ms` (librdkafka refused the producer topic "
      "\"gw.retained\" configuration: ",
      "message.timeout.ms=300000 is librdkafka's default; ",
      "linger.ms=400000 from \"kafka.producer\" (as "
      "queue.buffering.max.ms); ",
      "set them under \"kafka.producer\" or \"kafka\", --set "
      "kafka.producer.NAME=VALUE or -X producer.NAME=VALUE)"}},
    {"kafka.linger.ms", "300000",
     {"producer topic \"gw.retained\": `message.timeout.ms` must be ",
      "linger.ms=300000 from \"kafka\"", NULL}},
    /* gwsieve's fetch.max.bytes (fetch_max_conf(), every consumer) */
    {"kafka.consumer.receive.message.max.bytes", "1000000",
     {"consumer: `receive.message.max.bytes` must be >= "
      "`fetch.max.bytes` + 512 (librdkafka refused the consumer "
      "configuration: ",
      "receive.message.max.bytes=1000000 from \"kafka.consumer\"; ",
      "fetch.max.bytes=1048576 is gwsieve's default; ",
      "--set kafka.consumer.NAME=VALUE"}},
};

/* Clients of \p cfg point at a port nobody listens on (nothing here
 * connects: librdkafka refuses or takes the configuration first), and
 * with \p no_http the service opens no HTTP port. */
static void offline(int no_http) {
        ck_assert_int_eq(gws_config_set(cfg, "kafka.bootstrap.servers",
                                        "127.0.0.1:1", err, sizeof(err)),
                         0);
        if (no_http)
                ck_assert_int_eq(gws_config_set(cfg, "http.listen", "off",
                                                err, sizeof(err)),
                                 0);
}

START_TEST(kafka_refusal_names_the_source) {
        gws_service_t *svc;
        int i;

        offline(1);
        ck_assert_int_eq(gws_config_set(cfg, refused[_i].key,
                                        refused[_i].value, err, sizeof(err)),
                         0);
        svc = gws_service_new(cfg, err, sizeof(err));
        ck_assert_ptr_null(svc);
        for (i = 0; i < 4 && refused[_i].needle[i]; i++)
                ck_assert_msg(strstr(err, refused[_i].needle[i]),
                              "%s=%s: \"%s\" not in: %s", refused[_i].key,
                              refused[_i].value, refused[_i].needle[i], err);
        ck_assert_msg(!strchr(err, '\n'), "not one line: %s", err);
}
END_TEST

/* Every consumer gets the main consumer's fetch.max.bytes (1 MB, or
 * message.max.bytes if larger) when the user sets none: with librdkafka's
 * 50 MB a receive.message.max.bytes the main consumer takes was refused
 * by the state restore consumer and by `gwsieve state` (both built from
 * gws_service_reader_conf()). */
START_TEST(reader_takes_the_consumer_config) {
        rd_kafka_conf_t *rconf;
        rd_kafka_t *rk;
        char fb[32];
        size_t fl = sizeof(fb);

        offline(0);
        ck_assert_int_eq(
            gws_config_set(cfg, "kafka.consumer.receive.message.max.bytes",
                           "2000000", err, sizeof(err)),
            0);
        rconf = gws_service_reader_conf(cfg, "gws-test", err, sizeof(err));
        ck_assert_msg(rconf != NULL, "%s", err);
        rk = gws_service_kafka_new(cfg, RD_KAFKA_CONSUMER, rconf,
                                   "state restore consumer", err,
                                   sizeof(err));
        ck_assert_msg(rk != NULL, "%s", err);
        rd_kafka_destroy(rk);
        rconf = gws_service_reader_conf(cfg, "gws-test", err, sizeof(err));
        ck_assert_msg(rconf != NULL, "%s", err);
        ck_assert_int_eq(rd_kafka_conf_get(rconf, "fetch.max.bytes", fb, &fl),
                         RD_KAFKA_CONF_OK);
        ck_assert_str_eq(fb, "1048576");
        rd_kafka_conf_destroy(rconf);

        /* the user's fetch.max.bytes is theirs */
        ck_assert_int_eq(gws_config_set(cfg, "kafka.fetch.max.bytes",
                                        "3000000", err, sizeof(err)),
                         0);
        rconf = gws_service_reader_conf(cfg, "gws-test", err, sizeof(err));
        ck_assert_msg(rconf != NULL, "%s", err);
        fl = sizeof(fb);
        ck_assert_int_eq(rd_kafka_conf_get(rconf, "fetch.max.bytes", fb, &fl),
                         RD_KAFKA_CONF_OK);
        ck_assert_str_eq(fb, "3000000");
        rd_kafka_conf_destroy(rconf);
}
END_TEST

/* A property librdkafka refuses is named with its value, unless the
 * value is a secret. The librdkafka 2.0.2 here is built without libcurl:
 * it refuses sasl.oauthbearer.client.secret in rd_kafka_conf_set(); a
 * build with OIDC takes it, and then there is nothing to refuse. */
START_TEST(refusal_masks_secrets) {
        gws_service_t *svc;
        rd_kafka_conf_t *rconf;

        offline(1);
        ck_assert_int_eq(
            gws_config_set(cfg, "kafka.sasl.oauthbearer.client.secret",
                           "hunter2", err, sizeof(err)),
            0);
        svc = gws_service_new(cfg, err, sizeof(err));
        ck_assert_msg(!strstr(err, "hunter2"), "secret shown: %s", err);
        gws_service_destroy(svc);
        err[0] = '\0';
        rconf = gws_service_reader_conf(cfg, "gws-test", err, sizeof(err));
        ck_assert_msg(!strstr(err, "hunter2"), "secret shown: %s", err);
        if (rconf)
                rd_kafka_conf_destroy(rconf);
}
END_TEST

/* A property librdkafka does not know is named without its value: a
 * secret's name mistyped ("sasl.pasword") is no known secret, and its
 * value went to the log. A known property's refused value is still
 * shown (it is what is wrong). */
START_TEST(unknown_property_value_not_shown) {
        gws_service_t *svc;

        offline(1);
        ck_assert_int_eq(gws_config_set(cfg, "kafka.consumer.sasl.pasword",
                                        "hunter2", err, sizeof(err)),
                         0);
        svc = gws_service_new(cfg, err, sizeof(err));
        ck_assert_ptr_null(svc);
        ck_assert_msg(strstr(err, "sasl.pasword"), "not named: %s", err);
        ck_assert_msg(!strstr(err, "hunter2"), "value shown: %s", err);
        gws_config_destroy(cfg);
        cfg = gws_config_new();
        offline(1);
        ck_assert_int_eq(gws_config_set(cfg, "kafka.producer.acks", "maybe",
                                        err, sizeof(err)),
                         0);
        svc = gws_service_new(cfg, err, sizeof(err));
        ck_assert_ptr_null(svc);
        ck_assert_msg(strstr(err, "\"maybe\""), "value not shown: %s", err);
}
END_TEST

Suite *gws_config_suite(void) {
        Suite *s = suite_create("config");
        TCase *tc = tcase_create("load");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, defaults);
        tcase_add_test(tc, nested_and_kafka);
        tcase_add_test(tc, unopenable_file_named);
        tcase_add_loop_test(tc, errors_name_the_key, 0,
                            sizeof(bad) / sizeof(bad[0]));
        tcase_add_test(tc, file_values_not_cut);
        tcase_add_loop_test(tc, numbers_are_decimal_text, 0,
                            sizeof(badnum) / sizeof(badnum[0]));
        tcase_add_test(tc, json_values_refuse_duplicates);
        tcase_add_test(tc, env_and_set_layers);
        tcase_add_test(tc, validate_topics_and_commit);
        tcase_add_test(tc, validate_name_lengths);
        tcase_add_test(tc, validate_rate_settle);
        tcase_add_test(tc, dump_masks_secrets);
        tcase_add_test(tc, alert_id_key_secret);
        tcase_add_loop_test(tc, dump_masks_sensitive_props, 0,
                            sizeof(sensitive) / sizeof(sensitive[0]));
        suite_add_tcase(s, tc);
        tc = tcase_create("refusals");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_loop_test(tc, kafka_refusal_names_the_source, 0,
                            sizeof(refused) / sizeof(refused[0]));
        tcase_add_test(tc, refusal_masks_secrets);
        tcase_add_test(tc, unknown_property_value_not_shown);
        tcase_add_test(tc, reader_takes_the_consumer_config);
        suite_add_tcase(s, tc);
        return s;
}
