"""The Python builder's own behaviour: defaults, merging, later calls
winning, mistakes reported by validate() (never raised by a setter),
finish() on stdout and stderr, and validation (a port of the Go tests)."""

import contextlib
import datetime
import io
import json
import random
import subprocess
import sys
import textwrap
import unittest

import cases
from gofer_sdk import (
    ANY,
    FAILURE,
    SUCCESS,
    ConfigError,
    DependencyCycleError,
    DuplicateTaskError,
    InvalidConfigError,
    InvalidIdentifierError,
    Pipeline,
    RequiredParentStatus,
    Task,
    UnknownDependencyError,
    global_secret,
    pipeline_object,
    pipeline_secret,
    run_object,
    validate_identifier,
)
from gofer_sdk import _go
from gofer_sdk.validate import validate_dag


def one(task):
    return Pipeline("one", "One").tasks(task)


def error_of(p):
    try:
        p.validate()
    except ConfigError as err:
        return err
    raise AssertionError("validate() accepted the pipeline")


class Defaults(unittest.TestCase):
    def test_a_new_task_prints_only_the_required_fields(self):
        cfg = json.loads(one(Task("hello", "busybox")).to_json())
        self.assertEqual(
            cfg,
            {
                "id": "one",
                "name": "One",
                "parallelism": 0,
                "tasks": [
                    {
                        "id": "hello",
                        "image": "busybox",
                        "depends_on": {},
                        "variables": {},
                        "inject_api_token": False,
                        "always_pull_newest_image": False,
                    }
                ],
            },
        )

    def test_constants_and_markers(self):
        self.assertEqual((ANY, SUCCESS, FAILURE), ("Any", "Success", "Failure"))
        self.assertEqual(RequiredParentStatus.SUCCESS, SUCCESS)
        self.assertEqual(pipeline_secret("k"), "pipeline_secret{{k}}")
        self.assertEqual(global_secret("k"), "global_secret{{k}}")
        self.assertEqual(pipeline_object("k"), "pipeline_object{{k}}")
        self.assertEqual(run_object("k"), "run_object{{k}}")


class LaterCallsWin(unittest.TestCase):
    def test_fields(self):
        t = (
            Task("hello", "busybox")
            .script("echo one")
            .entrypoint("a")
            .entrypoint("b", "c")
            .depends_on("x", SUCCESS)
            .depends_on_many({"x": FAILURE, "y": ANY})
            .variable("K", "1")
            .variables({"K": "2"})
            .variable("k", "lower")
            .registry_auth("u1", "p1")
            .registry_auth("u2", "p2")
            .timeout("1s")
            .timeout(0)
            .retries(3, "1s")
            .retries(0, None)
            .always_pull()
            .inject_api_token()
        )
        c = t.config()
        self.assertEqual(c["command"], ["sh", "-c", "echo one"])
        self.assertEqual(c["entrypoint"], ["b", "c"])
        self.assertEqual(c["depends_on"], {"x": "Failure", "y": "Any"})
        self.assertEqual(c["variables"], {"K": "2", "k": "lower"})
        self.assertEqual(c["registry_auth"], {"user": "u2", "pass": "p2"})
        for absent in ("timeout", "retries", "retry_backoff"):
            self.assertNotIn(absent, c)
        self.assertTrue(c["always_pull_newest_image"])
        self.assertTrue(c["inject_api_token"])

    def test_command_takes_a_list_or_arguments(self):
        self.assertEqual(Task("a_1", "x").command(["a", "b"]).config()["command"], ["a", "b"])
        self.assertEqual(Task("a_1", "x").command("a", "b").config()["command"], ["a", "b"])
        self.assertNotIn("command", Task("a_1", "x").command("a").command().config())

    def test_tasks_accumulate_in_order(self):
        p = Pipeline("order", "Order").tasks(Task("ccc", "x")).tasks([Task("aaa", "x"), Task("bbb", "x")])
        self.assertEqual([t["id"] for t in p.config()["tasks"]], ["ccc", "aaa", "bbb"])

    def test_script_is_trimmed_like_go(self):
        # strings.TrimSpace trims Unicode spaces but not \x1c-\x1f, which
        # Python's str.strip() would remove.
        t = Task("hello", "x").script("\u3000\u00a0\x85 echo hi\x1f \t\n")
        self.assertEqual(t.config()["command"], ["sh", "-c", "echo hi\x1f"])


class Durations(unittest.TestCase):
    def timeout_of(self, value):
        return Task("hello", "x").timeout(value).config().get("timeout")

    def test_forms(self):
        self.assertEqual(self.timeout_of("90s"), "1m30s")
        self.assertEqual(self.timeout_of(90), "1m30s")
        self.assertEqual(self.timeout_of(1.5), "1.5s")
        self.assertEqual(self.timeout_of(0.1), "100ms")
        self.assertEqual(self.timeout_of(datetime.timedelta(minutes=1, seconds=30)), "1m30s")
        self.assertEqual(self.timeout_of(datetime.timedelta(milliseconds=500)), "500ms")
        self.assertEqual(self.timeout_of("2h"), "2h0m0s")
        self.assertEqual(self.timeout_of("1.5µs"), "1.5µs")
        self.assertIsNone(self.timeout_of(0))
        self.assertIsNone(self.timeout_of("0s"))
        self.assertIsNone(self.timeout_of(None))

    def test_bad_durations_are_reported_by_validate(self):
        # A string that is not a duration reaches the server's check.
        err = error_of(one(Task("slow", "x").timeout("ten minutes")))
        self.assertIsInstance(err, InvalidConfigError)
        self.assertEqual(str(err), 'invalid pipeline config: task "slow": timeout "ten minutes" is not a duration like "90s" or "5m"')
        err = error_of(one(Task("slow", "x").retries(1, "1d")))
        self.assertEqual(str(err), 'invalid pipeline config: task "slow": retry_backoff "1d" is not a duration like "90s" or "5m"')
        err = error_of(Pipeline("one", "One").timeout("soon").tasks(Task("slow", "x")))
        self.assertEqual(str(err), 'invalid pipeline config: pipeline timeout "soon" is not a duration like "90s" or "5m"')
        err = error_of(one(Task("slow", "x").timeout(-5)))
        self.assertEqual(str(err), 'invalid pipeline config: task "slow": timeout must be between 1ns and 168h0m0s, got -5s')

    def test_wrong_types_and_overflow(self):
        for value in ([1], True, float("nan")):
            with self.subTest(value=value):
                err = error_of(one(Task("slow", "x").timeout(value)))
                self.assertIsInstance(err, InvalidConfigError)
                self.assertIn('task "slow": timeout', str(err))
        err = error_of(one(Task("slow", "x").timeout(10**12)))
        self.assertIn("out of range", str(err))


class Mistakes(unittest.TestCase):
    """Setters never raise; validate() reports, naming the task."""

    def test_setters_never_raise(self):
        t = (
            Task(123, None)
            .description(5)
            .command(1, 2)
            .entrypoint(None)
            .script(None)
            .variable(1, 2)
            .variables([1])
            .depends_on(None, 3)
            .depends_on_many(7)
            .inject_api_token("yes")
            .registry_auth(1, 2)
            .always_pull(1)
            .timeout(object())
            .retries("3", [])
        )
        p = Pipeline(None, 7).description(1).parallelism("2").timeout([]).tasks(t, "not a task", None)
        with self.assertRaises(InvalidConfigError):
            p.validate()
        with self.assertRaises(ConfigError):
            p.to_json()

    def test_each_mistake_names_its_task(self):
        mistakes = {
            "description": lambda t: t.description(5),
            "command argument 1": lambda t: t.command("echo", 1),
            "variable \"N\" value": lambda t: t.variable("N", 5),
            "variables must be a mapping": lambda t: t.variables(["A=B"]),
            "condition": lambda t: t.depends_on("build", True),
            "inject_api_token must be a bool": lambda t: t.inject_api_token("yes"),
            "retries must be an int": lambda t: t.retries(2.0),
            "script is empty": lambda t: t.script("   "),
        }
        for what, mistake in mistakes.items():
            with self.subTest(mistake=what):
                err = error_of(Pipeline("mistakes", "M").tasks(Task("build", "x"), mistake(Task("culprit", "x"))))
                self.assertIsInstance(err, InvalidConfigError)
                self.assertTrue(str(err).startswith('invalid pipeline config: task "culprit": '), str(err))
                self.assertIn(what, str(err))

    def test_pipeline_mistakes(self):
        err = error_of(Pipeline("pipe", "P").parallelism(2.5).tasks(Task("hello", "x")))
        self.assertEqual(str(err), "invalid pipeline config: parallelism must be an int, got float")
        err = error_of(Pipeline("pipe", "P").tasks(Task("hello", "x"), "oops"))
        self.assertEqual(str(err), "invalid pipeline config: tasks: argument 1 is a str, not a Task")

    def test_run_retention_count_beyond_int64_is_refused_locally(self):
        # Go's int64 cannot hold it: the server would refuse it while
        # decoding; the SDK says so first, naming the field.
        err = error_of(Pipeline("pipe", "P").run_retention(2 ** 63).tasks(Task("hello", "x")))
        self.assertIsInstance(err, InvalidConfigError)
        self.assertIn("run_retention.count must be between 0 (no limit) and 1000000", str(err))

    def test_the_first_mistake_wins(self):
        err = error_of(one(Task("hello", "x").script("").script("echo fine").description(1)))
        self.assertIn("script is empty", str(err))


class Finish(unittest.TestCase):
    def run_program(self, body):
        program = "import sys; sys.path.insert(0, %r)\nfrom gofer_sdk import *\n" % cases.os.path.dirname(cases.HERE)
        program += textwrap.dedent(body)
        return subprocess.run([sys.executable, "-c", program], capture_output=True, env={"PYTHONIOENCODING": "ascii", "PATH": ""})

    def test_finish_prints_utf8_json_whatever_the_locale(self):
        res = self.run_program("""
            Pipeline("simple", "Ünïcode").tasks(Task("hello", "x").command("echo", "héllo")).finish()
        """)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stderr, b"")
        self.assertEqual(res.stdout, (Pipeline("simple", "Ünïcode").tasks(Task("hello", "x").command("echo", "héllo")).to_json() + "\n").encode())

    def test_finish_on_an_invalid_pipeline_prints_the_error_and_exits_1(self):
        res = self.run_program("""
            Pipeline("typo", "Typo").tasks(Task("build", "x"), Task("deploy", "x").depends_on("biuld", SUCCESS)).finish()
            print("not reached")
        """)
        self.assertEqual(res.returncode, 1)
        self.assertEqual(res.stdout, b"")
        self.assertEqual(res.stderr, b'task "deploy": unknown dependency "biuld"\n')

    def test_finish_in_process(self):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cases.simple().finish()
            with self.assertRaises(SystemExit) as ctx:
                Pipeline("x", "X").finish()
        self.assertEqual(out.getvalue(), cases.simple().to_json() + "\n")
        self.assertEqual(ctx.exception.code, 1)
        self.assertIn("pipeline id: invalid identifier", err.getvalue())


class Identifiers(unittest.TestCase):
    """validate_test.go's TestValidateIdentifier."""

    def test_rule(self):
        for id, ok in [
            ("abc", True), ("simple_task", True), ("devops-test", True), ("A1_-z", True), ("a" * 32, True),
            ("ab", False), ("a" * 33, False), ("has space", False), ("dot.ted", False), ("slash/x", False),
            ("..x", False), ("nul\x00x", False), ("ünï", False), ("", False),
        ]:
            with self.subTest(id=id):
                if ok:
                    validate_identifier(id)
                else:
                    with self.assertRaises(InvalidIdentifierError):
                        validate_identifier(id)


class ImageReferences(unittest.TestCase):
    """imageref_test.go's TestValidateImageRef: the same table; the messages
    of the invalid ones are pinned by sdk/testdata/errors.json."""

    SHA = "0123456789abcdef" * 4

    def test_table(self):
        from gofer_sdk.imageref import image_ref_problem

        valid = ["busybox", "gofer/busybox:latest", "ghcr.io/a/b:1.2", "localhost:5000/x/y@sha256:" + self.SHA,
                 "registry:5000/a", "localhost/a", "localhost:5000", "a/b/c/d", "a.b_c__d-e---f/g",
                 "Registry.Example.com/team/app", "Foo/bar", "[::1]:5000/a:tag", "[fe80::1]/img",
                 "10.0.0.1:5000/app:v1_2-3.4", "app:_tag", "app@sha512:" + "ab" * 64, "a" * 237, "a/" + "b" * 243,
                 "docker.io/" + "a" * 237, "reg.io/" + "a" * 248, "index.docker.io/a/" + "b" * 243,
                 "app:" + "t" * 128, self.SHA[:63], "x/" + self.SHA]
        invalid = ["", "Foo", "gofer/Busybox", "a b", " busybox", "busybox ", ":tag", "x:", "x@sha256:short",
                   "x@sha256:" + self.SHA.upper(), "x@md5:" + self.SHA, "x@" + self.SHA, "-a", "a-", "a//b", "a/",
                   "/a", "a..b", "a___b", "a.-b", "x:-tag", "x:t/g", "x:" + "t" * 129, "registry:port/a",
                   "registry:/a", "my_registry:5000/a", "-reg.io/a", "reg..io/a", "[::1/a", "[zz]:5000/a",
                   "[::1]x/a", "ghcr.io/A/b", "a" * 256, "a\x00b", "ünïcode", "a\udc80b", "a" * 238,
                   "a/" + "b" * 244, "docker.io/" + "a" * 238, "reg.io/" + "a" * 249, self.SHA, self.SHA + ":latest"]
        for ref in valid:
            with self.subTest(ref=ref):
                self.assertIsNone(image_ref_problem(ref))
        for ref in invalid:
            with self.subTest(ref=ref):
                self.assertIsNotNone(image_ref_problem(ref))

    def test_validate_names_task_and_field(self):
        with self.assertRaises(InvalidConfigError) as cm:
            Pipeline("imgs", "imgs").tasks(Task("build", "Foo Bar")).validate()
        self.assertIn('tasks[build].image: "Foo Bar" is not a valid image reference: ', str(cm.exception))


def task(id, *deps):
    t = Task(id, "busybox")
    for d in deps:
        t.depends_on(d, ANY)
    return t


class DAG(unittest.TestCase):
    """validate_test.go's TestValidateDAG and fuzz_test.go's reference
    check, on random graphs."""

    def test_cases(self):
        for name, tasks, exc, naming in [
            ("diamond", [task("aaa"), task("bbb", "aaa"), task("ccc", "aaa"), task("ddd", "bbb", "ccc")], None, ""),
            ("duplicate", [task("aaa"), task("aaa")], DuplicateTaskError, '"aaa"'),
            ("unknown", [task("aaa"), task("bbb", "zzz")], UnknownDependencyError, '"bbb"'),
            ("self", [task("aaa", "aaa")], DependencyCycleError, '"aaa"'),
            ("cycle", [task("aaa", "ccc"), task("bbb", "aaa"), task("ccc", "bbb")], DependencyCycleError, "->"),
            ("invalid id", [task("a b")], InvalidIdentifierError, '"a b"'),
        ]:
            with self.subTest(case=name):
                if exc is None:
                    validate_dag(tasks)
                    continue
                with self.assertRaises(exc) as ctx:
                    validate_dag(tasks)
                self.assertIn(naming, str(ctx.exception))

    def test_random_graphs_against_kahn(self):
        rng = random.Random(42)
        for _ in range(2000):
            n = rng.randint(1, 12)
            tasks = [Task("t%03d" % i, "x") for i in range(n)]
            for _ in range(rng.randint(0, 2 * n)):
                tasks[rng.randrange(n)].depends_on("t%03d" % rng.randrange(n), SUCCESS)
            # Kahn's algorithm.
            indeg = {t._id: len(t._depends_on) for t in tasks}
            children = {}
            for t in tasks:
                for p in t._depends_on:
                    children.setdefault(p, []).append(t._id)
            queue = [i for i, d in indeg.items() if d == 0]
            seen = 0
            while queue:
                i = queue.pop()
                seen += 1
                for c in children.get(i, []):
                    indeg[c] -= 1
                    if indeg[c] == 0:
                        queue.append(c)
            has_cycle = seen != n
            try:
                validate_dag(tasks)
                self.assertFalse(has_cycle)
            except DependencyCycleError as err:
                self.assertTrue(has_cycle)
                path = str(err).split(": dependency cycle: ")[1].split(" -> ")
                self.assertEqual(path[0], path[-1])
                by_id = {t._id: t for t in tasks}
                for child, parent in zip(path, path[1:]):
                    self.assertIn(parent, by_id[child]._depends_on)


class GoPorts(unittest.TestCase):
    def test_json_string(self):
        self.assertEqual(_go.json_string('<a href="x">&</a>'), '"<a href=\\"x\\">&</a>"')
        self.assertEqual(_go.json_string("\x00\x08\x0c\n\r\t\x1f\x7f"), '"\\u0000\\b\\f\\n\\r\\t\\u001f\x7f"')
        self.assertEqual(_go.json_string("\u2028\u2029é🚀"), '"\\u2028\\u2029é🚀"')
        self.assertEqual(_go.json_string("\ud800"), '"\\ufffd\\ufffd\\ufffd"')  # invalid UTF-8 in Go

    def test_quote(self):
        self.assertEqual(_go.quote('a"b\\c\n\x01é\u00a0\U0001F680'), '"a\\"b\\\\c\\n\\x01é\\u00a0🚀"')
        self.assertEqual(_go.quote(b"\xc3"), '"\\xc3"')
        self.assertEqual(_go.quote_rune(0xC3), "'Ã'")
        self.assertEqual(_go.quote_rune(ord("'")), "'\\''")


if __name__ == "__main__":
    unittest.main()
