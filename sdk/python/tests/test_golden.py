"""The shared golden files: the Python SDK must print byte-for-byte what
the Go SDK prints (sdk/go/golden_test.go writes the files with -update),
give the same validation errors, and format durations like Go."""

import glob
import io
import json
import os
import unittest

import cases
from gofer_sdk import (
    ConfigError,
    DependencyCycleError,
    DuplicateTaskError,
    DurationError,
    InvalidConfigError,
    InvalidIdentifierError,
    UnknownDependencyError,
    format_duration,
    parse_duration,
)

KINDS = {
    "invalid_identifier": InvalidIdentifierError,
    "invalid_config": InvalidConfigError,
    "duplicate_task": DuplicateTaskError,
    "unknown_dependency": UnknownDependencyError,
    "dependency_cycle": DependencyCycleError,
}


def read(path):
    with open(path, "rb") as f:
        return f.read()


class GoldenPipelines(unittest.TestCase):
    def test_every_case_matches_its_golden_file(self):
        for name, build in cases.GOLDEN_PIPELINES.items():
            with self.subTest(pipeline=name):
                want = read(os.path.join(cases.GOLDEN, name + ".json"))
                out = io.BytesIO()
                build().finish_to(out)
                got = out.getvalue()
                if got != want:
                    self.fail(
                        "%s.json differs from the Python SDK's output:\n--- got\n%s\n--- want\n%s"
                        % (name, got.decode("utf-8", "replace"), want.decode("utf-8", "replace"))
                    )
                # to_json is the same without the newline, and a text
                # stream gets the same characters.
                self.assertEqual(build().to_json().encode("utf-8") + b"\n", want)
                text = io.StringIO()
                build().finish_to(text)
                self.assertEqual(text.getvalue().encode("utf-8"), want)
                # The JSON means what config() says.
                self.assertEqual(json.loads(want), build().config())

    def test_every_golden_file_has_a_case(self):
        files = sorted(os.path.basename(p)[: -len(".json")] for p in glob.glob(os.path.join(cases.GOLDEN, "*.json")))
        self.assertEqual(files, sorted(cases.GOLDEN_PIPELINES))


class GoldenErrors(unittest.TestCase):
    def test_messages_and_kinds_match_go(self):
        with open(os.path.join(cases.TESTDATA, "errors.json"), encoding="utf-8") as f:
            want = json.load(f)
        self.assertEqual(sorted(want), sorted(cases.INVALID_PIPELINES), "cases differ from errors.json")
        for name, build in cases.INVALID_PIPELINES.items():
            with self.subTest(case=name):
                with self.assertRaises(ConfigError) as ctx:
                    build().validate()
                err = ctx.exception
                self.assertEqual(str(err), want[name]["error"])
                self.assertIs(type(err), KINDS[want[name]["kind"]])
                self.assertIsInstance(err, ValueError)
                # finish_to and to_json refuse too, and write nothing.
                out = io.BytesIO()
                with self.assertRaises(ConfigError):
                    build().finish_to(out)
                self.assertEqual(out.getvalue(), b"")
                with self.assertRaises(ConfigError):
                    build().to_json()


class GoldenDurations(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(cases.TESTDATA, "durations.json"), encoding="utf-8") as f:
            cls.data = json.load(f)

    def test_parse_duration_matches_go(self):
        for c in self.data["parse"]:
            with self.subTest(input=c["in"]):
                if c.get("error"):
                    with self.assertRaises(DurationError):
                        parse_duration(c["in"])
                    continue
                ns = parse_duration(c["in"])
                self.assertEqual(ns, c["ns"])
                self.assertEqual(format_duration(ns), c["string"])

    def test_format_duration_matches_go(self):
        for c in self.data["format"]:
            with self.subTest(ns=c["ns"]):
                self.assertEqual(format_duration(c["ns"]), c["string"])


if __name__ == "__main__":
    unittest.main()
