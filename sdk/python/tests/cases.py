"""The pipelines of the shared golden files, built with the Python SDK
exactly as sdk/go/golden_test.go builds them with the Go SDK."""

import datetime
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # sdk/python, for gofer_sdk

from gofer_sdk import (  # noqa: E402
    ANY,
    FAILURE,
    MAX_PARALLELISM,
    MAX_MEMORY,
    MAX_RETRIES,
    MAX_RUN_RETENTION_COUNT,
    SUCCESS,
    Pipeline,
    Task,
    global_secret,
    pipeline_object,
    pipeline_secret,
    run_object,
)

TESTDATA = os.path.join(HERE, "..", "..", "testdata")
GOLDEN = os.path.join(TESTDATA, "golden")

NS = 1
US = 1000
MS = 1000 * US
S = 1000 * MS
H = 3600 * S
MAX_TIMEOUT = 7 * 24 * H


def simple():
    return (
        Pipeline("simple", "My Simple Pipeline")
        .description("This pipeline is purely for testing purposes.")
        .tasks(
            Task("simple_task", "ubuntu:latest")
            .description("This task simply prints our hello-world message and exits!")
            .command("echo", "Hello from Gofer!")
        )
    )


def dag():
    return (
        Pipeline("dag", "DAG")
        .description("Parallel branches and every dependency condition.")
        .parallelism(2)
        .timeout("10m")
        .tasks(
            Task("build", "gofer/busybox:latest").script("echo building $GOFER_PIPELINE_ID run $GOFER_RUN_ID; sleep 1"),
            Task("test", "gofer/gofer:latest")
            .command(["debug", "log"])
            .depends_on("build", SUCCESS)
            .variables({"LOGS_HEADER": "running the tests", "LOG_LINES": "5", "LOG_INTERVAL": "200ms"})
            .timeout(60),
            Task("lint", "gofer/busybox:latest")
            .script('echo linting; [ "$GOFER_TASK_ATTEMPT" -ge 2 ]')
            .depends_on("build", SUCCESS)
            .retries(1, datetime.timedelta(seconds=1)),
            Task("deploy", "gofer/busybox:latest")
            .command("echo", "deploying")
            .depends_on_many({"test": SUCCESS, "lint": SUCCESS}),
            Task("notify_failure", "gofer/busybox:latest").command("echo", "tests failed!").depends_on("test", FAILURE),
            Task("report", "gofer/gofer:latest")
            .command("debug", "envs")
            .depends_on("deploy", ANY)
            .depends_on("notify_failure", ANY),
        )
    )


def script():
    return Pipeline("script", "Scripts").tasks(
        Task("multi_line", "gofer/busybox:latest")
        .description("A script with several lines, quotes, a backslash and shell variables.")
        .script(
            "\n\t  set -eu\n  echo \"hello from $GOFER_TASK_ID\"\n  for i in 1 2 3; do echo \"line $i\"; done\n"
            "  printf '%s\\n' 'single' \"double \\\"quoted\\\"\" \\\n    'continued'\n\n\t"
        ),
        Task("replaced", "gofer/busybox:latest")
        .script("echo never")
        .command("echo", "a later Command replaces the script")
        .depends_on("multi_line", ANY),
        Task("with_entrypoint", "gofer/busybox:latest")
        .entrypoint("/bin/busybox")
        .script("echo $0 runs through busybox")
        .depends_on("replaced", SUCCESS),
    )


def everything():
    return (
        Pipeline("every-field_1", "Every field — «tout», 全部 & <more> \"quoted\"")
        .description(
            "Quotes \"double\" and 'single', a backslash \\, <html> & ampersands, a tab\tand a newline\n, "
            "controls \x01\x1f\x7f, separators \u2028 and \u2029, emoji 🚀, accents éüñ, CJK 日本語, "
            "NBSP\u00a0and BOM\ufeff."
        )
        .parallelism(100000)
        .timeout(datetime.timedelta(hours=2))
        .run_retention(25, datetime.timedelta(hours=720))
        .tasks(
            Task("first", "registry.example.com:5000/team/builder:1.2.3@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
            .description("The first task: <every> field & \"quoted\" text, ünïcødé.")
            .registry_auth("robot$builder", "p@ss\"w<o>rd&\\")
            .entrypoint("/bin/sh", "-c")
            .command("echo \"$GREETING\" && exit 0")
            .variable("GREETING", "héllo <wörld> & \"friends\"")
            .variable("lower_case_key", "kept as given")
            .variables({"B_VAR": "two", "A_VAR": "one", "GREETING": "the later call wins: héllo"})
            .variable("EMPTY", "")
            .variable("ÉTÉ", "a non-ASCII name sorts after ASCII ones")
            .variable("Z_LAST", "\u2028")
            .inject_api_token(True)
            .always_pull(True)
            .timeout("90s")
            .retries(3, 0.5)
            .resources(500, 256),
            Task("second", "busybox")
            .depends_on_many({"first": SUCCESS})
            .depends_on("first", ANY)
            .timeout(datetime.timedelta(microseconds=1500))
            .retries(10, "1h")
            .resources(0, 64),
            Task("third-task", "busybox")
            .description("Micro-seconds print as µs; a 0 backoff is omitted.")
            .entrypoint("")
            .command()
            .depends_on("second", FAILURE)
            .depends_on("first", SUCCESS)
            .timeout("167h59m59.999999999s")
            .retries(2, 0)
            .resources(100, 100)
            .resources(0, 0),
            Task("fourth", "busybox").timeout("2500ns").inject_api_token(False).always_pull(False),
        )
    )


def markers():
    return Pipeline("markers", "Interpolation markers").tasks(
        Task("use_markers", "gofer/busybox:latest")
        .variable("API_KEY", pipeline_secret("api_key"))
        .variable("SHARED_TOKEN", global_secret("shared_token"))
        .variable("CACHE_KEY", pipeline_object("cache_key"))
        .variable("BUILD_ID", run_object("build_id"))
        .variable("LITERAL", "not a marker: " + pipeline_secret("api_key") + " inside text")
        .inject_api_token(True)
        .script('echo "build $BUILD_ID"')
    )


def retention_zero_age():
    # A zero age is no limit, omitted like the Go builder's 0.
    return Pipeline("retention", "Retention").run_retention(5, "0s").tasks(busybox("hello"))


GOLDEN_PIPELINES = {
    "simple": simple,
    "retention_zero_age": retention_zero_age,
    "dag": dag,
    "script": script,
    "everything": everything,
    "markers": markers,
}


# Invalid pipelines: sdk/testdata/errors.json holds each one's message and
# kind, written from sdk/go/golden_test.go's invalidPipelines.


def busybox(id):
    return Task(id, "gofer/busybox:latest")


def errp():
    return Pipeline("errors", "Errors")


INVALID_PIPELINES = {
    "pipeline_id_short": lambda: Pipeline("x", "X").tasks(busybox("hello")),
    "pipeline_id_chars": lambda: Pipeline("my.pipeline", "X").tasks(busybox("hello")),
    "task_id_space": lambda: errp().tasks(busybox("a b")),
    "task_id_non_ascii": lambda: errp().tasks(busybox("tâche")),
    "task_id_long": lambda: errp().tasks(busybox("t" * 80)),
    "name_too_long": lambda: Pipeline("errors", "é" * 129).tasks(busybox("hello")),
    "no_tasks": lambda: errp(),
    "nil_task": lambda: errp().tasks(busybox("hello"), None),
    "no_image": lambda: errp().tasks(Task("hello", " \t")),
    "duplicate_task": lambda: errp().tasks(busybox("hello"), busybox("world"), busybox("hello")),
    "unknown_dependency": lambda: errp().tasks(busybox("build"), busybox("deploy").depends_on("biuld", SUCCESS)),
    "self_dependency": lambda: errp().tasks(busybox("loop").depends_on("loop", ANY)),
    "cycle": lambda: errp().tasks(
        busybox("start"),
        busybox("aaa").depends_on("ccc", ANY).depends_on("start", ANY),
        busybox("bbb").depends_on("aaa", SUCCESS),
        busybox("ccc").depends_on("bbb", FAILURE),
    ),
    "bad_condition": lambda: errp().tasks(busybox("build"), busybox("test").depends_on("build", "success")),
    "bad_variable_name": lambda: errp().tasks(busybox("hello").variable("A=B", "x")),
    "empty_variable_name": lambda: errp().tasks(busybox("hello").variable("", "x")),
    "negative_parallelism": lambda: errp().parallelism(-1).tasks(busybox("hello")),
    "huge_parallelism": lambda: errp().parallelism(MAX_PARALLELISM + 1).tasks(busybox("hello")),
    "negative_run_timeout": lambda: errp().timeout(-1).tasks(busybox("hello")),
    "negative_run_retention_count": lambda: errp().run_retention(-1).tasks(busybox("hello")),
    "huge_run_retention_count": lambda: errp().run_retention(MAX_RUN_RETENTION_COUNT + 1).tasks(busybox("hello")),
    "negative_run_retention_age": lambda: errp().run_retention(2, datetime.timedelta(hours=-1)).tasks(busybox("hello")),
    "task_timeout_too_long": lambda: errp().tasks(busybox("slow").timeout("%dns" % (MAX_TIMEOUT + 1))),
    "backoff_too_long": lambda: errp().tasks(busybox("flaky").retries(3, datetime.timedelta(hours=2))),
    "too_many_retries": lambda: errp().tasks(busybox("flaky").retries(MAX_RETRIES + 1, 1)),
    "negative_retries": lambda: errp().tasks(busybox("flaky").retries(-1, 0)),
    "negative_cpu": lambda: errp().tasks(busybox("big").resources(-1, 0)),
    "too_much_memory": lambda: errp().tasks(busybox("big").resources(100, MAX_MEMORY + 1)),
    "empty_script": lambda: errp().tasks(busybox("hello").script(" \n\t ")),
    "empty_script_first": lambda: Pipeline("x", "X").tasks(busybox("hello"), busybox("later").script("")),
    "image_uppercase": lambda: errp().tasks(Task("build", "Foo Bar")),
    "image_space": lambda: errp().tasks(Task("build", "gofer/busybox latest")),
    "image_non_ascii": lambda: errp().tasks(Task("build", "gofer/büsybox")),
    "image_empty_tag": lambda: errp().tasks(Task("build", "busybox:")),
    "image_no_name": lambda: errp().tasks(Task("build", ":latest")),
    "image_short_digest": lambda: errp().tasks(Task("build", "busybox@sha256:short")),
    "image_digest_algorithm": lambda: errp().tasks(Task("build", "busybox@md5:0123456789abcdef0123456789abcdef")),
    "image_leading_dash": lambda: errp().tasks(Task("build", "-a")),
    "image_double_slash": lambda: errp().tasks(Task("build", "a//b")),
    "image_separator": lambda: errp().tasks(Task("build", "a.-b")),
    "image_port": lambda: errp().tasks(Task("build", "registry:port/a")),
    "image_registry_char": lambda: errp().tasks(Task("build", "my_registry:5000/a")),
    "image_ipv6": lambda: errp().tasks(Task("build", "[zz]:5000/a")),
    "image_tag_char": lambda: errp().tasks(Task("build", "busybox:-x")),
    "image_long_name": lambda: errp().tasks(Task("build", "a" * 256)),
    "image_long_implied": lambda: errp().tasks(Task("build", "a" * 238)),
    "image_long_registry": lambda: errp().tasks(Task("build", "docker.io/" + "a" * 238)),
    "image_hex_name": lambda: errp().tasks(Task("build", "0123456789abcdef" * 4 + ":latest")),
}
