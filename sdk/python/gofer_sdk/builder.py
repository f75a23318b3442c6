"""The pipeline and task builders: a mirror of the Go SDK's builder.go.

Setters return the builder, so calls chain; they never raise. A mistake
(a wrong type, a duration that is not one, an empty script) is recorded and
reported, with everything the server checks, by validate(), to_json(),
finish_to() and finish().
"""

from __future__ import annotations

import datetime
import io
import math
import sys
from fractions import Fraction
from typing import IO, Any, Dict, Iterable, List, Mapping, Optional, Union

from . import _go
from .validate import ConfigError, InvalidConfigError, truncate_for_error, validate_pipeline

Duration = Union[datetime.timedelta, int, float, str, None]


class RequiredParentStatus:
    """The conditions a dependency can require (also exported as ANY,
    SUCCESS and FAILURE)."""

    ANY = "Any"  #: run whatever the parent's outcome
    SUCCESS = "Success"  #: run only if the parent succeeded
    FAILURE = "Failure"  #: run only if the parent failed


def pipeline_secret(key: str) -> str:
    """The marker for the pipeline secret key: "pipeline_secret{{key}}"."""
    return "pipeline_secret{{" + key + "}}"


def global_secret(key: str) -> str:
    """The marker for the global secret key: "global_secret{{key}}"."""
    return "global_secret{{" + key + "}}"


def pipeline_object(key: str) -> str:
    """The marker for the pipeline object key: "pipeline_object{{key}}"."""
    return "pipeline_object{{" + key + "}}"


def run_object(key: str) -> str:
    """The marker for the run object key: "run_object{{key}}"."""
    return "run_object{{" + key + "}}"


def _type_name(v: Any) -> str:
    return type(v).__name__


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _to_nanoseconds(value: Duration) -> Union[int, str]:
    """A duration in nanoseconds, or the string itself when it is not a Go
    duration (validation then reports it as the server would). Raises
    TypeError or OverflowError."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise TypeError(_type_name(value))
    if isinstance(value, datetime.timedelta):
        return (value.days * 86400 + value.seconds) * _go.SECOND + value.microseconds * _go.MICROSECOND
    if isinstance(value, int):
        return value * _go.SECOND
    if isinstance(value, float):
        if not math.isfinite(value):
            raise OverflowError(repr(value))
        return round(Fraction(value) * _go.SECOND)
    if isinstance(value, str):
        try:
            return _go.parse_duration(value)
        except _go.DurationError:
            return value
    raise TypeError(_type_name(value))


def _duration_field(value: Duration, what: str, fail) -> str:
    """The config form of a duration: "" for zero (the field is omitted),
    else Go's Duration.String(), e.g. "1m30s"."""
    try:
        ns = _to_nanoseconds(value)
    except TypeError:
        fail('%s must be a timedelta, a number of seconds or a duration string like "90s", got %s'
             % (what, _type_name(value)))
        return ""
    except OverflowError:
        fail("%s %r is out of range" % (what, value))
        return ""
    if isinstance(ns, str):
        return ns
    if ns == 0:
        return ""
    if not _go.MIN_INT64 <= ns <= _go.MAX_INT64:
        fail("%s %r is out of range" % (what, value))
        return ""
    return _go.format_duration(ns)


def _args(args: tuple) -> tuple:
    """command("a", "b") and command(["a", "b"]) mean the same."""
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        return tuple(args[0])
    return args


class Task:
    """One container in the pipeline's DAG. Task(id, image) starts one: the
    id is 3 to 32 characters of ASCII letters, digits, '_' and '-', unique
    in the pipeline. By default a task has no dependencies and no
    variables, keeps the image's entrypoint and command, pulls the image only
    when it is absent, and has no timeout and no retries. When two setters
    write the same field the later call wins."""

    def __init__(self, id: str, image: str):
        self._err: Optional[ConfigError] = None
        self._id = id if isinstance(id, str) else str(id)
        if not isinstance(id, str):
            self._fail("task id must be a str, got %s" % _type_name(id), named=False)
        self._image = self._str("image", image)
        self._description = ""
        self._registry_auth: Optional[tuple] = None
        self._depends_on: Dict[str, str] = {}
        self._variables: Dict[str, str] = {}
        self._entrypoint: Optional[List[str]] = None
        self._command: Optional[List[str]] = None
        self._inject_api_token = False
        self._always_pull = False
        self._timeout = ""
        self._retries = 0
        self._retry_backoff = ""
        self._resources = (0, 0)

    # -- mistakes

    def _fail(self, msg: str, named: bool = True) -> None:
        if self._err is None:
            if named:
                msg = "task %s: %s" % (_go.quote(truncate_for_error(self._id)), msg)
            self._err = InvalidConfigError("invalid pipeline config: " + msg)

    def _str(self, what: str, value: Any) -> str:
        if isinstance(value, str):
            return value
        self._fail("%s must be a str, got %s" % (what, _type_name(value)))
        return ""

    def _bool(self, what: str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        self._fail("%s must be a bool, got %s" % (what, _type_name(value)))
        return False

    def _strs(self, what: str, args: tuple) -> List[str]:
        return [self._str("%s argument %d" % (what, i), a) for i, a in enumerate(_args(args))]

    # -- setters

    def description(self, description: str) -> "Task":
        """The task's description (up to 4096 bytes)."""
        self._description = self._str("description", description)
        return self

    def command(self, *args: str) -> "Task":
        """Override the image's CMD. With no arguments the image's own CMD
        is kept. command("a", "b") and command(["a", "b"]) are the same."""
        self._command = self._strs("command", args)
        return self

    def entrypoint(self, *args: str) -> "Task":
        """Override the image's ENTRYPOINT (Docker then also ignores the
        image's CMD). With no arguments the image's own ENTRYPOINT is kept;
        entrypoint("") runs the command without the image's entrypoint."""
        self._entrypoint = self._strs("entrypoint", args)
        return self

    def script(self, text: str) -> "Task":
        """Run text with the image's sh: the command becomes
        ["sh", "-c", <text without leading and trailing white space>]. The
        image must have sh (gofer/busybox:latest does, gofer/gofer:latest
        does not); an image with an ENTRYPOINT gets the command as its
        arguments, so set entrypoint() too if needed. A later command()
        replaces the script. An empty script is an error."""
        text = self._str("script", text)
        script = _go.trim_space(text)
        if script == "":
            self._fail("script is empty")
            return self
        self._command = ["sh", "-c", script]
        return self

    def variable(self, name: str, value: str) -> "Task":
        """Set one environment variable of the container. The name is kept
        as given (not upper-cased); a later call with the same name wins.
        The value may be a marker such as pipeline_secret("key")."""
        name = self._str("variable name", name)
        self._variables[name] = self._str("variable %s value" % _go.quote(name), value)
        return self

    def variables(self, variables: Optional[Mapping[str, str]]) -> "Task":
        """Set several environment variables, merged into those set before;
        on the same name the later call wins."""
        return self._each("variables", variables, self.variable)

    def depends_on(self, parent: str, status: str) -> "Task":
        """Wait for the task parent and run only if it ends as status
        requires: ANY, SUCCESS or FAILURE. A task whose condition can no
        longer be met is skipped. Calling it again for the same parent
        replaces the condition."""
        parent = self._str("dependency", parent)
        self._depends_on[parent] = self._str("dependency %s condition" % _go.quote(parent), status)
        return self

    def depends_on_many(self, parents: Optional[Mapping[str, str]]) -> "Task":
        """Add several dependencies at once, merged into those set before."""
        return self._each("dependencies", parents, self.depends_on)

    def _each(self, what: str, mapping: Optional[Mapping[str, str]], add) -> "Task":
        """Apply add(key, value) to every entry of mapping (None: nothing)."""
        if mapping is None:
            return self
        if not isinstance(mapping, Mapping):
            self._fail("%s must be a mapping, got %s" % (what, _type_name(mapping)))
            return self
        for k, v in mapping.items():
            add(k, v)
        return self

    def inject_api_token(self, inject: bool = True) -> "Task":
        """Ask for a Gofer API token for each run, given to the container in
        an environment variable."""
        self._inject_api_token = self._bool("inject_api_token", inject)
        return self

    def registry_auth(self, user: str, password: str) -> "Task":
        """The credentials to pull the task's image with."""
        self._registry_auth = (self._str("registry user", user), self._str("registry password", password))
        return self

    def always_pull(self, always: bool = True) -> "Task":
        """Pull the image before every run even when it is present
        (always_pull_newest_image). The default pulls only an absent
        image."""
        self._always_pull = self._bool("always_pull", always)
        return self

    def timeout(self, duration: Duration) -> "Task":
        """Bound one attempt: the container is stopped when it runs longer,
        and the attempt fails. duration is a timedelta, a number of seconds
        or a Go duration string ("90s", "1h30m"); it is stored as Go prints
        it ("1m30s"). 0 or None, the default, means no limit."""
        self._timeout = _duration_field(duration, "timeout", self._fail)
        return self

    def retries(self, n: int, backoff: Duration = 0) -> "Task":
        """Give a failed attempt up to n more attempts (0 to 10), waiting
        backoff before the first retry and twice as long before each next
        one (capped at 1h). A backoff of 0 retries at once."""
        if _is_int(n):
            self._retries = n
        else:
            self._fail("retries must be an int, got %s" % _type_name(n))
        self._retry_backoff = _duration_field(backoff, "retry_backoff", self._fail)
        return self

    def resources(self, cpu: int = 0, memory: int = 0) -> "Task":
        """Set the CPU (MHz) and memory (MB) the task reserves on the
        scheduler; 0 for either keeps the scheduler's default ([scheduler.nomad]
        cpu and memory on Nomad; no limit on Docker). Memory is a hard limit."""
        for what, v in (("cpu", cpu), ("memory", memory)):
            if not _is_int(v):
                self._fail("resources.%s must be an int, got %s" % (what, _type_name(v)))
                return self
        self._resources = (cpu, memory)
        return self

    # -- output

    def config(self) -> Dict[str, Any]:
        """The task's config as a dict, fields in the order the JSON has
        them and, like the JSON, without the empty optional ones."""
        return _plain(self._struct())

    def _struct(self) -> _go.Struct:
        f: List[tuple] = [("id", self._id)]
        if self._description:
            f.append(("description", self._description))
        f.append(("image", self._image))
        if self._registry_auth is not None:
            f.append(("registry_auth", _go.Struct([("user", self._registry_auth[0]), ("pass", self._registry_auth[1])])))
        f.append(("depends_on", dict(self._depends_on)))
        f.append(("variables", dict(self._variables)))
        if self._entrypoint:
            f.append(("entrypoint", list(self._entrypoint)))
        if self._command:
            f.append(("command", list(self._command)))
        f.append(("inject_api_token", self._inject_api_token))
        f.append(("always_pull_newest_image", self._always_pull))
        if self._timeout:
            f.append(("timeout", self._timeout))
        if self._retries:
            f.append(("retries", self._retries))
        if self._retry_backoff:
            f.append(("retry_backoff", self._retry_backoff))
        if self._resources != (0, 0):
            r: List[tuple] = []
            if self._resources[0]:
                r.append(("cpu", self._resources[0]))
            if self._resources[1]:
                r.append(("memory", self._resources[1]))
            f.append(("resources", _go.Struct(r)))
        return _go.Struct(f)


class Pipeline:
    """A pipeline: a DAG of tasks. Pipeline(id, name) starts one: the id is
    3 to 32 characters of ASCII letters, digits, '_' and '-'; the name is
    for humans (up to 256 bytes). Chain the setters and end with finish(),
    which prints the config JSON that `gofer up` registers."""

    def __init__(self, id: str, name: str):
        self._err: Optional[ConfigError] = None
        self._id = self._str("pipeline id", id)
        self._name = self._str("pipeline name", name)
        self._description = ""
        self._parallelism = 0
        self._timeout = ""
        # None: the server's run retention; else (count, age).
        self._run_retention: Optional[tuple] = None
        self._tasks: List[Optional[Task]] = []

    def _fail(self, msg: str) -> None:
        if self._err is None:
            self._err = InvalidConfigError("invalid pipeline config: " + msg)

    def _str(self, what: str, value: Any) -> str:
        if isinstance(value, str):
            return value
        self._fail("%s must be a str, got %s" % (what, _type_name(value)))
        return ""

    def description(self, description: str) -> "Pipeline":
        """The pipeline's description (up to 4096 bytes)."""
        self._description = self._str("pipeline description", description)
        return self

    def parallelism(self, n: int) -> "Pipeline":
        """How many runs of this pipeline may run at once; 0 (the default)
        means the server's per-pipeline default."""
        if _is_int(n):
            self._parallelism = n
        else:
            self._fail("parallelism must be an int, got %s" % _type_name(n))
        return self

    def timeout(self, duration: Duration) -> "Pipeline":
        """Bound a whole run: a run still going after it is cancelled.
        duration is a timedelta, a number of seconds or a Go duration
        string; stored as Go prints it ("10m0s"). 0 or None means no
        limit."""
        self._timeout = _duration_field(duration, "pipeline timeout", self._fail)
        return self

    def run_retention(self, count: int = 0, age: Duration = None) -> "Pipeline":
        """Which finished runs the server keeps, replacing its
        api.run_retention_count and api.run_retention_age for this
        pipeline: the newest count runs (0: no limit by number) and the
        runs that ended less than age ago (a timedelta, a number of
        seconds or a Go duration string; 0 or None: no limit by age).
        run_retention(0) keeps every run whatever the server sets. Older
        runs are deleted with their task logs and run objects."""
        if not _is_int(count):
            self._fail("run_retention.count must be an int, got %s" % _type_name(count))
            count = 0
        self._run_retention = (count, _duration_field(age, "run_retention.age", self._fail))
        return self

    def tasks(self, *tasks: Union[Task, Iterable[Task], None]) -> "Pipeline":
        """Add tasks, in order; calls accumulate. tasks(a, b) and
        tasks([a, b]) are the same. The order is kept in the config; only
        dependencies decide when a task runs."""
        for i, t in enumerate(_args(tasks)):
            if t is None or isinstance(t, Task):
                self._tasks.append(t)  # None is reported by validate()
            else:
                self._fail("tasks: argument %d is a %s, not a Task" % (i, _type_name(t)))
        return self

    def validate(self) -> None:
        """Raise ConfigError (a ValueError) for the first problem: a mistake
        made through a setter, then everything the server checks (ids,
        limits, duplicate tasks, unknown dependencies, cycles). The message
        is the Go SDK's and names the pipeline or task at fault."""
        if self._err is not None:
            raise self._err
        for t in self._tasks:
            if t is not None and t._err is not None:
                raise t._err
        validate_pipeline(self._id, self._name, self._description, self._parallelism, self._timeout, self._tasks,
                          self._run_retention)

    def config(self) -> Dict[str, Any]:
        """The pipeline's config as a dict (not validated), fields in JSON
        order, without the empty optional ones."""
        return _plain(self._struct())

    def _struct(self) -> _go.Struct:
        f: List[tuple] = [("id", self._id), ("name", self._name)]
        if self._description:
            f.append(("description", self._description))
        f.append(("parallelism", self._parallelism))
        if self._timeout:
            f.append(("timeout", self._timeout))
        if self._run_retention is not None:
            count, age = self._run_retention
            r: List[tuple] = []
            if count:
                r.append(("count", count))
            if age:
                r.append(("age", age))
            f.append(("run_retention", _go.Struct(r)))
        f.append(("tasks", [None if t is None else t._struct() for t in self._tasks]))
        return _go.Struct(f)

    def to_json(self) -> str:
        """Validate, then return the config in the canonical form both SDKs
        print: two-space indentation, fields in Go struct order, map keys
        sorted, no HTML escaping, non-ASCII as it is; no trailing newline."""
        self.validate()
        return _go.json_indent(self._struct())

    def finish_to(self, stream: IO) -> None:
        """Validate and write the JSON and a newline to stream: UTF-8 bytes
        to a binary stream, text to a text stream. Raises ConfigError and
        then writes nothing."""
        data = self.to_json() + "\n"
        if isinstance(stream, io.TextIOBase):
            stream.write(data)
        else:
            stream.write(data.encode("utf-8"))
        stream.flush()

    def finish(self) -> None:
        """Validate and print the config JSON on stdout (as UTF-8 bytes,
        whatever the locale), which is what `gofer up` reads and registers.
        If the pipeline is invalid, print the error on stderr instead and
        exit with status 1 (SystemExit)."""
        try:
            data = self.to_json() + "\n"
        except ConfigError as err:
            print(err, file=sys.stderr)
            raise SystemExit(1) from None
        out = getattr(sys.stdout, "buffer", None)
        if out is None:
            sys.stdout.write(data)
            sys.stdout.flush()
            return
        sys.stdout.flush()
        out.write(data.encode("utf-8"))
        out.flush()


def _plain(value: Any) -> Any:
    if isinstance(value, _go.Struct):
        return {k: _plain(v) for k, v in value.fields}
    if isinstance(value, dict):
        return {k: value[k] for k in sorted(value, key=_go.utf8)}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
