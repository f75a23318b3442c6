package sdk

// Golden files shared with the Python SDK (sdk/python/tests): both SDKs
// build the same pipelines and must print byte-identical JSON, produce the
// same validation errors and format durations the same way. The files live
// in sdk/testdata; `go test -run Golden -update` rewrites them from this
// Go code (then run the Python tests to check Python still agrees).

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../testdata from the Go SDK")

const testdata = "../testdata"

// goldenPipelines are built identically in sdk/python/tests/cases.py; each
// has sdk/testdata/golden/<name>.json.
var goldenPipelines = map[string]func() *Pipeline{
	// A zero run_retention age is no limit: the field is omitted (Python
	// builds it from "0s").
	"retention_zero_age": func() *Pipeline {
		return NewPipeline("retention", "Retention").RunRetention(5, 0).Tasks(busybox("hello"))
	},
	// The walkthrough's first pipeline.
	"simple": func() *Pipeline {
		return NewPipeline("simple", "My Simple Pipeline").
			Description("This pipeline is purely for testing purposes.").
			Tasks(NewTask("simple_task", "ubuntu:latest").
				Description("This task simply prints our hello-world message and exits!").
				Command("echo", "Hello from Gofer!"))
	},
	// Parallel branches and all three conditions.
	"dag": func() *Pipeline {
		return NewPipeline("dag", "DAG").
			Description("Parallel branches and every dependency condition.").
			Parallelism(2).
			Timeout(10*time.Minute).
			Tasks(
				NewTask("build", "gofer/busybox:latest").
					Script("echo building $GOFER_PIPELINE_ID run $GOFER_RUN_ID; sleep 1"),
				NewTask("test", "gofer/gofer:latest").
					Command("debug", "log").
					DependsOn("build", Success).
					Variables(map[string]string{"LOGS_HEADER": "running the tests", "LOG_LINES": "5", "LOG_INTERVAL": "200ms"}).
					Timeout(time.Minute),
				NewTask("lint", "gofer/busybox:latest").
					Script(`echo linting; [ "$GOFER_TASK_ATTEMPT" -ge 2 ]`).
					DependsOn("build", Success).
					Retries(1, time.Second),
				NewTask("deploy", "gofer/busybox:latest").
					Command("echo", "deploying").
					DependsOnMany(map[string]RequiredParentStatus{"test": Success, "lint": Success}),
				NewTask("notify_failure", "gofer/busybox:latest").
					Command("echo", "tests failed!").
					DependsOn("test", Failure),
				NewTask("report", "gofer/gofer:latest").
					Command("debug", "envs").
					DependsOn("deploy", Any).
					DependsOn("notify_failure", Any),
			)
	},
	// Scripts: trimmed, kept verbatim inside, later Command wins.
	"script": func() *Pipeline {
		return NewPipeline("script", "Scripts").
			Tasks(
				NewTask("multi_line", "gofer/busybox:latest").
					Description("A script with several lines, quotes, a backslash and shell variables.").
					Script("\n\t  set -eu\n  echo \"hello from $GOFER_TASK_ID\"\n  for i in 1 2 3; do echo \"line $i\"; done\n  printf '%s\\n' 'single' \"double \\\"quoted\\\"\" \\\n    'continued'\n\n\t"),
				NewTask("replaced", "gofer/busybox:latest").
					Script("echo never").
					Command("echo", "a later Command replaces the script").
					DependsOn("multi_line", Any),
				NewTask("with_entrypoint", "gofer/busybox:latest").
					Entrypoint("/bin/busybox").
					Script("echo $0 runs through busybox").
					DependsOn("replaced", Success),
			)
	},
	// Every field set, with characters JSON encoders disagree on.
	"everything": func() *Pipeline {
		return NewPipeline("every-field_1", "Every field — «tout», 全部 & <more> \"quoted\"").
			Description("Quotes \"double\" and 'single', a backslash \\, <html> & ampersands, a tab\tand a newline\n, controls \x01\x1f\x7f, separators \u2028 and \u2029, emoji 🚀, accents éüñ, CJK 日本語, NBSP\u00a0and BOM\ufeff.").
			Parallelism(100000).
			Timeout(2*time.Hour).
			RunRetention(25, 720*time.Hour).
			Tasks(
				NewTask("first", "registry.example.com:5000/team/builder:1.2.3@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").
					Description("The first task: <every> field & \"quoted\" text, ünïcødé.").
					RegistryAuth("robot$builder", "p@ss\"w<o>rd&\\").
					Entrypoint("/bin/sh", "-c").
					Command("echo \"$GREETING\" && exit 0").
					Variable("GREETING", "héllo <wörld> & \"friends\"").
					Variable("lower_case_key", "kept as given").
					Variables(map[string]string{"B_VAR": "two", "A_VAR": "one", "GREETING": "the later call wins: héllo"}).
					Variable("EMPTY", "").
					Variable("ÉTÉ", "a non-ASCII name sorts after ASCII ones").
					Variable("Z_LAST", "\u2028").
					InjectAPIToken(true).
					AlwaysPull(true).
					Timeout(90*time.Second).
					Retries(3, 500*time.Millisecond).
					Resources(500, 256),
				NewTask("second", "busybox").
					DependsOnMany(map[string]RequiredParentStatus{"first": Success}).
					DependsOn("first", Any).
					Timeout(1500*time.Microsecond).
					Retries(10, time.Hour).
					Resources(0, 64),
				NewTask("third-task", "busybox").
					Description("Micro-seconds print as µs; a 0 backoff is omitted.").
					Entrypoint("").
					Command().
					DependsOn("second", Failure).
					DependsOn("first", Success).
					Timeout(MaxTimeout-time.Nanosecond).
					Retries(2, 0).
					Resources(100, 100).Resources(0, 0),
				NewTask("fourth", "busybox").
					Timeout(2500*time.Nanosecond).
					InjectAPIToken(false).
					AlwaysPull(false),
			)
	},
	// The four interpolation markers.
	"markers": func() *Pipeline {
		return NewPipeline("markers", "Interpolation markers").
			Tasks(NewTask("use_markers", "gofer/busybox:latest").
				Variable("API_KEY", PipelineSecret("api_key")).
				Variable("SHARED_TOKEN", GlobalSecret("shared_token")).
				Variable("CACHE_KEY", PipelineObject("cache_key")).
				Variable("BUILD_ID", RunObject("build_id")).
				Variable("LITERAL", "not a marker: "+PipelineSecret("api_key")+" inside text").
				InjectAPIToken(true).
				Script(`echo "build $BUILD_ID"`))
	},
}

func readOrUpdate(t *testing.T, path string, got []byte) []byte {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update to create it)", err)
	}
	return want
}

// indentJSON encodes a test fixture readably: two-space indentation, no
// HTML escaping, a final newline.
func indentJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGoldenPipelines(t *testing.T) {
	for name, build := range goldenPipelines {
		t.Run(name, func(t *testing.T) {
			var got bytes.Buffer
			if err := build().FinishTo(&got); err != nil {
				t.Fatalf("FinishTo: %v", err)
			}
			path := filepath.Join(testdata, "golden", name+".json")
			want := readOrUpdate(t, path, got.Bytes())
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("%s differs from the Go SDK's output:\n--- got\n%s\n--- want\n%s", path, got.Bytes(), want)
			}
			// What gofer up does with the output: decode strictly,
			// validate, and get back the same config.
			cfg, err := DecodeConfig(bytes.TrimSpace(want))
			if err != nil {
				t.Fatalf("DecodeConfig(golden): %v", err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("golden config does not validate: %v", err)
			}
			again, err := canonicalJSON(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(append(again, '\n'), want) {
				t.Errorf("decoding and re-encoding %s changes it:\n%s", path, again)
			}
		})
	}
}

// TestGoldenFilesHaveCases catches a golden file left behind by a removed
// case (the Python test checks the same).
func TestGoldenFilesHaveCases(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdata, "golden", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	if len(names) != len(goldenPipelines) {
		t.Errorf("golden files %v, cases %d", names, len(goldenPipelines))
	}
	for _, n := range names {
		if goldenPipelines[n] == nil {
			t.Errorf("golden file %s.json has no case", n)
		}
	}
}

// errorCase is one invalid pipeline, built identically in
// sdk/python/tests/cases.py; errors.json holds the message and the kind
// (which sentinel it wraps, which Python exception class it raises).
type errorCase struct {
	Error string `json:"error"`
	Kind  string `json:"kind"`
}

var kinds = map[string]error{
	"invalid_identifier": ErrInvalidIdentifier,
	"invalid_config":     ErrInvalidConfig,
	"duplicate_task":     ErrDuplicateTask,
	"unknown_dependency": ErrUnknownDependency,
	"dependency_cycle":   ErrDependencyCycle,
}

func busybox(id string) *Task { return NewTask(id, "gofer/busybox:latest") }

func errp() *Pipeline { return NewPipeline("errors", "Errors") }

var invalidPipelines = map[string]func() *Pipeline{
	"pipeline_id_short":  func() *Pipeline { return NewPipeline("x", "X").Tasks(busybox("hello")) },
	"pipeline_id_chars":  func() *Pipeline { return NewPipeline("my.pipeline", "X").Tasks(busybox("hello")) },
	"task_id_space":      func() *Pipeline { return errp().Tasks(busybox("a b")) },
	"task_id_non_ascii":  func() *Pipeline { return errp().Tasks(busybox("tâche")) },
	"task_id_long":       func() *Pipeline { return errp().Tasks(busybox(strings.Repeat("t", 80))) },
	"name_too_long":      func() *Pipeline { return NewPipeline("errors", strings.Repeat("é", 129)).Tasks(busybox("hello")) },
	"no_tasks":           func() *Pipeline { return errp() },
	"nil_task":           func() *Pipeline { return errp().Tasks(busybox("hello"), nil) },
	"no_image":           func() *Pipeline { return errp().Tasks(NewTask("hello", " \t")) },
	"duplicate_task":     func() *Pipeline { return errp().Tasks(busybox("hello"), busybox("world"), busybox("hello")) },
	"unknown_dependency": func() *Pipeline { return errp().Tasks(busybox("build"), busybox("deploy").DependsOn("biuld", Success)) },
	"self_dependency":    func() *Pipeline { return errp().Tasks(busybox("loop").DependsOn("loop", Any)) },
	"cycle": func() *Pipeline {
		return errp().Tasks(busybox("start"), busybox("aaa").DependsOn("ccc", Any).DependsOn("start", Any),
			busybox("bbb").DependsOn("aaa", Success), busybox("ccc").DependsOn("bbb", Failure))
	},
	"bad_condition":     func() *Pipeline { return errp().Tasks(busybox("build"), busybox("test").DependsOn("build", "success")) },
	"bad_variable_name": func() *Pipeline { return errp().Tasks(busybox("hello").Variable("A=B", "x")) },
	"empty_variable_name": func() *Pipeline {
		return errp().Tasks(busybox("hello").Variable("", "x"))
	},
	"negative_parallelism": func() *Pipeline { return errp().Parallelism(-1).Tasks(busybox("hello")) },
	"huge_parallelism":     func() *Pipeline { return errp().Parallelism(MaxParallelism + 1).Tasks(busybox("hello")) },
	"negative_run_timeout": func() *Pipeline { return errp().Timeout(-time.Second).Tasks(busybox("hello")) },
	"negative_run_retention_count": func() *Pipeline {
		return errp().RunRetention(-1, 0).Tasks(busybox("hello"))
	},
	"huge_run_retention_count": func() *Pipeline {
		return errp().RunRetention(MaxRunRetentionCount+1, 0).Tasks(busybox("hello"))
	},
	"negative_run_retention_age": func() *Pipeline {
		return errp().RunRetention(2, -time.Hour).Tasks(busybox("hello"))
	},
	"task_timeout_too_long": func() *Pipeline {
		return errp().Tasks(busybox("slow").Timeout(MaxTimeout + time.Nanosecond))
	},
	"backoff_too_long":   func() *Pipeline { return errp().Tasks(busybox("flaky").Retries(3, 2*time.Hour)) },
	"too_many_retries":   func() *Pipeline { return errp().Tasks(busybox("flaky").Retries(MaxRetries+1, time.Second)) },
	"negative_retries":   func() *Pipeline { return errp().Tasks(busybox("flaky").Retries(-1, 0)) },
	"negative_cpu":       func() *Pipeline { return errp().Tasks(busybox("big").Resources(-1, 0)) },
	"too_much_memory":    func() *Pipeline { return errp().Tasks(busybox("big").Resources(100, MaxMemory+1)) },
	"empty_script":       func() *Pipeline { return errp().Tasks(busybox("hello").Script(" \n\t ")) },
	"image_uppercase":    func() *Pipeline { return errp().Tasks(NewTask("build", "Foo Bar")) },
	"image_space":        func() *Pipeline { return errp().Tasks(NewTask("build", "gofer/busybox latest")) },
	"image_non_ascii":    func() *Pipeline { return errp().Tasks(NewTask("build", "gofer/büsybox")) },
	"image_empty_tag":    func() *Pipeline { return errp().Tasks(NewTask("build", "busybox:")) },
	"image_no_name":      func() *Pipeline { return errp().Tasks(NewTask("build", ":latest")) },
	"image_short_digest": func() *Pipeline { return errp().Tasks(NewTask("build", "busybox@sha256:short")) },
	"image_digest_algorithm": func() *Pipeline {
		return errp().Tasks(NewTask("build", "busybox@md5:0123456789abcdef0123456789abcdef"))
	},
	"image_leading_dash":  func() *Pipeline { return errp().Tasks(NewTask("build", "-a")) },
	"image_double_slash":  func() *Pipeline { return errp().Tasks(NewTask("build", "a//b")) },
	"image_separator":     func() *Pipeline { return errp().Tasks(NewTask("build", "a.-b")) },
	"image_port":          func() *Pipeline { return errp().Tasks(NewTask("build", "registry:port/a")) },
	"image_registry_char": func() *Pipeline { return errp().Tasks(NewTask("build", "my_registry:5000/a")) },
	"image_ipv6":          func() *Pipeline { return errp().Tasks(NewTask("build", "[zz]:5000/a")) },
	"image_tag_char":      func() *Pipeline { return errp().Tasks(NewTask("build", "busybox:-x")) },
	"image_long_name":     func() *Pipeline { return errp().Tasks(NewTask("build", strings.Repeat("a", 256))) },
	"image_long_implied":  func() *Pipeline { return errp().Tasks(NewTask("build", strings.Repeat("a", 238))) },
	"image_long_registry": func() *Pipeline { return errp().Tasks(NewTask("build", "docker.io/"+strings.Repeat("a", 238))) },
	"image_hex_name": func() *Pipeline {
		return errp().Tasks(NewTask("build", strings.Repeat("0123456789abcdef", 4)+":latest"))
	},
	// A setter's mistake is reported before the config's problems.
	"empty_script_first": func() *Pipeline {
		return NewPipeline("x", "X").Tasks(busybox("hello"), busybox("later").Script(""))
	},
}

func TestGoldenErrors(t *testing.T) {
	got := map[string]errorCase{}
	for name, build := range invalidPipelines {
		p := build()
		err := p.Validate()
		if err == nil {
			t.Errorf("%s: Validate accepted the pipeline", name)
			continue
		}
		var buf bytes.Buffer
		if ferr := p.FinishTo(&buf); ferr == nil || ferr.Error() != err.Error() || buf.Len() != 0 {
			t.Errorf("%s: FinishTo = %v and wrote %q, want %v and nothing", name, ferr, buf.Bytes(), err)
		}
		if _, jerr := p.JSON(); jerr == nil {
			t.Errorf("%s: JSON accepted the pipeline", name)
		}
		kind := ""
		for _, k := range sortedKeys(kinds) {
			if errors.Is(err, kinds[k]) {
				kind = k
				break
			}
		}
		got[name] = errorCase{Error: err.Error(), Kind: kind}
	}
	path := filepath.Join(testdata, "errors.json")
	wantRaw := readOrUpdate(t, path, indentJSON(t, got))
	var want map[string]errorCase
	if err := json.Unmarshal(wantRaw, &want); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: case %q has no Go builder", path, name)
			continue
		}
		if g != w {
			t.Errorf("%s:\n got  %+v\n want %+v", name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("case %q is missing from %s (run with -update)", name, path)
		}
	}
}

// Every error names the task (or the pipeline) at fault.
func TestErrorsNameTheCulprit(t *testing.T) {
	culprits := map[string]string{
		"pipeline_id_short": `"x"`, "pipeline_id_chars": `"my.pipeline"`, "task_id_space": `"a b"`,
		"task_id_non_ascii": `"tâche"`, "task_id_long": `"tttt`, "name_too_long": "pipeline name",
		"no_tasks": `pipeline "errors"`, "nil_task": "position 1", "no_image": `task "hello"`,
		"duplicate_task": `task "hello"`, "unknown_dependency": `task "deploy"`, "self_dependency": `task "loop"`,
		"cycle": `task "aaa"`, "bad_condition": `task "test"`, "bad_variable_name": `task "hello"`,
		"empty_variable_name": `task "hello"`, "negative_parallelism": "parallelism",
		"huge_parallelism": "parallelism", "negative_run_timeout": "pipeline timeout",
		"task_timeout_too_long": `task "slow"`, "backoff_too_long": `task "flaky"`,
		"too_many_retries": `task "flaky"`, "negative_retries": `task "flaky"`, "empty_script": `task "hello"`,
		"empty_script_first":           `task "later"`,
		"negative_cpu":                 `task "big": resources.cpu`,
		"too_much_memory":              `task "big": resources.memory`,
		"image_uppercase":              "tasks[build].image",
		"image_space":                  "tasks[build].image",
		"image_non_ascii":              "tasks[build].image",
		"image_empty_tag":              "tasks[build].image",
		"image_no_name":                "tasks[build].image",
		"image_short_digest":           "tasks[build].image",
		"image_digest_algorithm":       "tasks[build].image",
		"image_leading_dash":           "tasks[build].image",
		"image_double_slash":           "tasks[build].image",
		"image_separator":              "tasks[build].image",
		"image_port":                   "tasks[build].image",
		"image_registry_char":          "tasks[build].image",
		"image_ipv6":                   "tasks[build].image",
		"image_tag_char":               "tasks[build].image",
		"image_long_name":              "tasks[build].image",
		"image_long_implied":           "tasks[build].image",
		"image_long_registry":          "tasks[build].image",
		"image_hex_name":               "tasks[build].image",
		"negative_run_retention_count": "run_retention.count",
		"negative_run_retention_age":   "run_retention.age",
		"huge_run_retention_count":     "run_retention.count",
	}
	for name, build := range invalidPipelines {
		want, ok := culprits[name]
		if !ok {
			t.Errorf("%s: no culprit listed", name)
			continue
		}
		if err := build().Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v does not name %s", name, err, want)
		}
	}
}

// durationCase pins Go's ParseDuration and Duration.String, which the
// Python SDK ports, on inputs that exercise their corners.
type durationCase struct {
	In     string `json:"in"`
	NS     *int64 `json:"ns,omitempty"`
	String string `json:"string,omitempty"`
	Error  bool   `json:"error,omitempty"`
}

type durationFormatCase struct {
	NS     int64  `json:"ns"`
	String string `json:"string"`
}

var durationInputs = []string{
	"0", "+0", "-0", "0s", "1ns", "1us", "1µs", "1μs", "999ns", "1000ns", "1.5s", "90s", "500ms", "2h", "1h30m",
	"-1m30s", "+5m", ".5s", "5.s", "1.0000000001s", "0.1s", "1.5h", "2h45m30.5s", "3h2m1s900ms800us700ns",
	"9223372036854775807ns", "9223372036854775808ns", "-9223372036854775808ns", "-9223372036854775809ns",
	"2562047h47m16.854775807s", "2562047h47m16.854775808s", "-2562047h47m16.854775808s", "2562048h",
	"1.00000000000000000000000000001s", "0.333333333333333333h", "100000000000000000000ns",
	"", "-", "+", "abc", "1", "1d", "s", ".s", "1.5.5s", "1s ", " 1s", "1S", "1sec", "--1s", "1e3s", "1_000s",
}

var durationValues = []int64{
	0, 1, -1, 999, 1000, 1001, 1500, 999999, 1000000, 1500000, 999999999, 1000000000, 1500000000,
	int64(90 * time.Second), int64(time.Hour), int64(2 * time.Hour), int64(MaxTimeout), int64(MaxTimeout) + 1,
	int64(-90 * time.Second), 1<<63 - 1, -1 << 63, -1<<63 + 1, 3723004005006,
}

func TestGoldenDurations(t *testing.T) {
	var got struct {
		Parse  []durationCase       `json:"parse"`
		Format []durationFormatCase `json:"format"`
	}
	for _, in := range durationInputs {
		d, err := time.ParseDuration(in)
		c := durationCase{In: in, Error: err != nil}
		if err == nil {
			ns := int64(d)
			c.NS, c.String = &ns, d.String()
		}
		got.Parse = append(got.Parse, c)
	}
	for _, ns := range durationValues {
		got.Format = append(got.Format, durationFormatCase{NS: ns, String: time.Duration(ns).String()})
	}
	raw := indentJSON(t, got)
	path := filepath.Join(testdata, "durations.json")
	want := readOrUpdate(t, path, raw)
	if !bytes.Equal(raw, want) {
		t.Errorf("%s is not what Go produces (run with -update):\n%s", path, raw)
	}
}

// The builder's own behaviour, beyond the golden files.

func TestBuilderSettersDoNotPanic(t *testing.T) {
	// Everything at its zero or odd value: no panic, and Validate reports.
	p := NewPipeline("", "").Tasks(nil, NewTask("", "").Variables(nil).DependsOnMany(nil).Command().Entrypoint().Script(""))
	if err := p.Validate(); err == nil {
		t.Fatal("Validate accepted an empty pipeline")
	}
	if _, err := p.JSON(); err == nil {
		t.Fatal("JSON accepted an empty pipeline")
	}
	// Zero values work too (not only NewPipeline and NewTask).
	var zp Pipeline
	var zt Task
	zt.Variable("A", "b").DependsOn("aaa", Any).Description("zero")
	if err := zp.Description("zero").Tasks(&zt, &Task{}).Validate(); err == nil {
		t.Fatal("Validate accepted zero values")
	}
	if zt.Config().Variables["A"] != "b" || zt.Config().DependsOn["aaa"] != Any {
		t.Fatalf("zero task config %+v", zt.Config())
	}
}

func TestBuilderDefaults(t *testing.T) {
	p := NewPipeline("defaults", "Defaults").Tasks(NewTask("hello", "busybox"))
	c := p.Config()
	if c.Tasks[0].DependsOn == nil || c.Tasks[0].Variables == nil {
		t.Fatal("a new task must have empty, not nil, maps (they print as {} not null)")
	}
	out, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"description", "timeout", "registry_auth", "entrypoint", "command", "retries", "retry_backoff", "null"} {
		if bytes.Contains(out, []byte(absent)) {
			t.Errorf("default config prints %q:\n%s", absent, out)
		}
	}
}

func TestBuilderLaterCallsWin(t *testing.T) {
	task := NewTask("hello", "busybox").
		Script("echo one").
		Entrypoint("a").Entrypoint("b", "c").
		DependsOn("x", Success).DependsOnMany(map[string]RequiredParentStatus{"x": Failure, "y": Any}).
		Variable("K", "1").Variables(map[string]string{"K": "2"}).Variable("k", "lower").
		RegistryAuth("u1", "p1").RegistryAuth("u2", "p2").
		Timeout(time.Second).Timeout(0).
		Retries(3, time.Second).Retries(0, 0).
		AlwaysPull(true).InjectAPIToken(true)
	c := task.Config()
	if strings.Join(c.Command, " ") != "sh -c echo one" {
		t.Errorf("command %q", c.Command)
	}
	if strings.Join(c.Entrypoint, " ") != "b c" {
		t.Errorf("entrypoint %q", c.Entrypoint)
	}
	if c.DependsOn["x"] != Failure || c.DependsOn["y"] != Any || len(c.DependsOn) != 2 {
		t.Errorf("depends_on %v", c.DependsOn)
	}
	if c.Variables["K"] != "2" || c.Variables["k"] != "lower" || len(c.Variables) != 2 {
		t.Errorf("variables %v", c.Variables)
	}
	if *c.RegistryAuth != (RegistryAuth{"u2", "p2"}) {
		t.Errorf("registry auth %v", c.RegistryAuth)
	}
	if c.Timeout != "" || c.Retries != 0 || c.RetryBackoff != "" {
		t.Errorf("timeout %q retries %d backoff %q, want all cleared", c.Timeout, c.Retries, c.RetryBackoff)
	}
	if !c.AlwaysPullNewestImage || !c.InjectAPIToken {
		t.Error("flags not set")
	}
	// Command copies its arguments: changing the caller's slice later
	// does not change the task.
	args := []string{"echo", "hi"}
	task.Command(args...)
	args[1] = "changed"
	if c.Command[1] != "hi" {
		t.Error("Command kept the caller's slice")
	}
}

// A setter mistake is kept until Validate even if a later call would have
// fixed the field: the first mistake is the one reported.
func TestBuilderFirstMistakeWins(t *testing.T) {
	task := NewTask("hello", "busybox").Script("").Script("  ").Script("echo fine")
	err := NewPipeline("mistake", "M").Tasks(task).Validate()
	if err == nil || !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "script is empty") {
		t.Fatalf("got %v", err)
	}
}

func TestTasksAccumulateInOrder(t *testing.T) {
	p := NewPipeline("order", "Order").Tasks(NewTask("ccc", "x")).Tasks(NewTask("aaa", "x"), NewTask("bbb", "x"))
	var ids []string
	for _, tc := range p.Config().Tasks {
		ids = append(ids, tc.ID)
	}
	if strings.Join(ids, ",") != "ccc,aaa,bbb" {
		t.Fatalf("tasks %v", ids)
	}
	if sort.StringsAreSorted(ids) {
		t.Fatal("test is meaningless: ids already sorted")
	}
}

func TestMarkers(t *testing.T) {
	for got, want := range map[string]string{
		PipelineSecret("k"): "pipeline_secret{{k}}",
		GlobalSecret("k"):   "global_secret{{k}}",
		PipelineObject("k"): "pipeline_object{{k}}",
		RunObject("k"):      "run_object{{k}}",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	for v, want := range map[string][2]string{
		PipelineSecret("api_key"):         {"pipeline_secret", "api_key"},
		"  Global_Secret{{ reg_pass }}  ": {"global_secret", "reg_pass"},
		RunObject("out"):                  {"run_object", "out"},
	} {
		if kind, key, ok := ParseMarker(v); !ok || kind != want[0] || key != want[1] {
			t.Errorf("ParseMarker(%q) = %q %q %v, want %q %q", v, kind, key, ok, want[0], want[1])
		}
	}
	for _, v := range []string{"plain", "x pipeline_secret{{k}}", "secret{{k}}"} {
		if _, _, ok := ParseMarker(v); ok {
			t.Errorf("ParseMarker(%q) found a marker", v)
		}
	}
	if Any != RequiredParentStatusAny || Success != RequiredParentStatusSuccess || Failure != RequiredParentStatusFailure {
		t.Error("short condition names differ")
	}
}

// Finish prints the JSON on stdout, or the error on stderr.
func TestFinish(t *testing.T) {
	capture := func(f func() error) (stdout, stderr string, err error) {
		t.Helper()
		outF, errF := tempFile(t), tempFile(t)
		oldOut, oldErr := os.Stdout, os.Stderr
		os.Stdout, os.Stderr = outF, errF
		err = f()
		os.Stdout, os.Stderr = oldOut, oldErr
		o, _ := os.ReadFile(outF.Name())
		e, _ := os.ReadFile(errF.Name())
		return string(o), string(e), err
	}
	stdout, stderr, err := capture(goldenPipelines["simple"]().Finish)
	want, _ := os.ReadFile(filepath.Join(testdata, "golden", "simple.json"))
	if err != nil || stderr != "" || stdout != string(want) {
		t.Errorf("valid: err %v, stderr %q, stdout %q", err, stderr, stdout)
	}
	stdout, stderr, err = capture(invalidPipelines["unknown_dependency"]().Finish)
	if !errors.Is(err, ErrUnknownDependency) || stdout != "" || stderr != `task "deploy": unknown dependency "biuld"`+"\n" {
		t.Errorf("invalid: err %v, stderr %q, stdout %q", err, stderr, stdout)
	}
}

func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
