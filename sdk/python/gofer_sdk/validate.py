"""Pipeline validation: a port of the Go SDK's validate.go and identifier.go,
which the server runs too. The checks, their order and their messages are
the same, so a pipeline that validates here is accepted by the server, and
an error reads the same in both SDKs (sdk/testdata/errors.json checks it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

from . import _go, imageref

if TYPE_CHECKING:  # pragma: no cover
    from .builder import Task

# Identifier limits: one rule for every id in Gofer.
MIN_IDENTIFIER_LENGTH = 3
MAX_IDENTIFIER_LENGTH = 32

# Limits on a pipeline config (lengths are in UTF-8 bytes, as in Go).
MAX_TASKS = 1000
MAX_NAME_LENGTH = 256
MAX_DESCRIPTION = 4096
MAX_IMAGE_LENGTH = 1024
MAX_VARIABLES = 512
MAX_PARALLELISM = 100000
MAX_DEPENDENCIES = 1000
MAX_VARIABLE_KEY_LENGTH = 256

# Limits on timeouts and retries, in nanoseconds.
MAX_RETRIES = 10
MAX_TIMEOUT = 7 * 24 * _go.HOUR
MAX_RETRY_BACKOFF = _go.HOUR
MAX_RUN_RETENTION_AGE = 87600 * _go.HOUR
MAX_RUN_RETENTION_COUNT = 1000000

# Limits on resources.
MAX_CPU = 256000  # MHz
MAX_MEMORY = 1 << 20  # MB

# The dependency conditions.
ANY = "Any"
SUCCESS = "Success"
FAILURE = "Failure"
_CONDITIONS = (ANY, SUCCESS, FAILURE)


class ConfigError(ValueError):
    """A pipeline the server would refuse. str(error) is the same message
    the Go SDK gives, naming the pipeline or task at fault."""


class InvalidConfigError(ConfigError):
    """A field is wrong (Go: ErrInvalidConfig)."""


class InvalidIdentifierError(ConfigError):
    """An id breaks the identifier rule (Go: ErrInvalidIdentifier)."""


class DuplicateTaskError(ConfigError):
    """Two tasks have the same id (Go: ErrDuplicateTask)."""


class UnknownDependencyError(ConfigError):
    """A task depends on a task that is not in the pipeline (Go:
    ErrUnknownDependency)."""


class DependencyCycleError(ConfigError):
    """The dependencies form a cycle (Go: ErrDependencyCycle)."""


def _blen(s: str) -> int:
    return len(_go.utf8(s))


def truncate_for_error(s: str) -> bytes:
    """Go's truncateForError: at most 64 bytes, then an ellipsis."""
    b = _go.utf8(s)
    if len(b) <= 64:
        return b
    return b[:64] + "…".encode()


def _q(s: str) -> str:
    return _go.quote(truncate_for_error(s))


def _invalid(msg: str) -> InvalidConfigError:
    return InvalidConfigError("invalid pipeline config: " + msg)


def _identifier_problem(id: str) -> Optional[str]:
    b = _go.utf8(id)
    if len(b) < MIN_IDENTIFIER_LENGTH or len(b) > MAX_IDENTIFIER_LENGTH:
        return "invalid identifier: %s must be %d to %d characters long, got %d" % (
            _q(id), MIN_IDENTIFIER_LENGTH, MAX_IDENTIFIER_LENGTH, len(b))
    for i, c in enumerate(b):
        if not (0x61 <= c <= 0x7A or 0x41 <= c <= 0x5A or 0x30 <= c <= 0x39 or c in (0x5F, 0x2D)):
            return ("invalid identifier: %s may contain only letters, digits, '_' and '-' "
                    "(found %s at position %d)") % (_q(id), _go.quote_rune(c), i)
    return None


def validate_identifier(id: str) -> None:
    """Raise InvalidIdentifierError unless id is 3 to 32 characters of ASCII
    letters, digits, '_' and '-'."""
    problem = _identifier_problem(id)
    if problem is not None:
        raise InvalidIdentifierError(problem)


def _validate_duration(what: str, s: str, max_ns: int) -> None:
    if s == "":
        return
    try:
        d = _go.parse_duration(s)
    except _go.DurationError:
        raise _invalid('%s %s is not a duration like "90s" or "5m"' % (what, _q(s))) from None
    if d <= 0 or d > max_ns:
        raise _invalid("%s must be between 1ns and %s, got %s" % (
            what, _go.format_duration(max_ns), _go.format_duration(d)))


def _sorted_keys(m: Dict[str, object]) -> List[str]:
    return sorted(m, key=_go.utf8)


def validate_pipeline(p_id: str, name: str, description: str, parallelism: int,
                      timeout: str, tasks: Sequence[Optional["Task"]],
                      run_retention: Optional[tuple] = None) -> None:
    """PipelineConfig.Validate, over the builder's fields."""
    problem = _identifier_problem(p_id)
    if problem is not None:
        raise InvalidIdentifierError("pipeline id: " + problem)
    if _blen(name) > MAX_NAME_LENGTH:
        raise _invalid("pipeline name is longer than %d characters" % MAX_NAME_LENGTH)
    if _blen(description) > MAX_DESCRIPTION:
        raise _invalid("pipeline description is longer than %d characters" % MAX_DESCRIPTION)
    if parallelism < 0 or parallelism > MAX_PARALLELISM:
        raise _invalid("parallelism must be between 0 and %d, got %d" % (MAX_PARALLELISM, parallelism))
    _validate_duration("pipeline timeout", timeout, MAX_TIMEOUT)
    if run_retention is not None:
        count, age = run_retention
        if count < 0 or count > MAX_RUN_RETENTION_COUNT:
            raise _invalid("run_retention.count must be between 0 (no limit) and %d, got %d" % (
                MAX_RUN_RETENTION_COUNT, count))
        _validate_duration("run_retention.age", age, MAX_RUN_RETENTION_AGE)
    if len(tasks) == 0:
        raise _invalid("pipeline %s has no tasks" % _go.quote(p_id))
    if len(tasks) > MAX_TASKS:
        raise _invalid("pipeline %s has %d tasks, the limit is %d" % (_go.quote(p_id), len(tasks), MAX_TASKS))
    for i, t in enumerate(tasks):
        if t is None:
            raise _invalid("task at position %d is empty" % i)
        _validate_task_fields(t)
    validate_dag(tasks)


def _validate_task_fields(t: "Task") -> None:
    tid = t._id
    problem = _identifier_problem(tid)
    if problem is not None:
        raise InvalidIdentifierError("task %s: %s" % (_q(tid), problem))
    qid = _go.quote(tid)
    if _go.trim_space(t._image) == "":
        raise _invalid("task %s: image is required" % qid)
    if _blen(t._image) > MAX_IMAGE_LENGTH:
        raise _invalid("task %s: image is longer than %d characters" % (qid, MAX_IMAGE_LENGTH))
    image_problem = imageref.image_ref_problem(t._image)
    if image_problem is not None:
        raise _invalid("tasks[%s].image: %s is not a valid image reference: %s" % (
            tid, _q(t._image), image_problem))
    if _blen(t._description) > MAX_DESCRIPTION:
        raise _invalid("task %s: description is longer than %d characters" % (qid, MAX_DESCRIPTION))
    if len(t._variables) > MAX_VARIABLES:
        raise _invalid("task %s: %d variables, the limit is %d" % (qid, len(t._variables), MAX_VARIABLES))
    for k in _sorted_keys(t._variables):
        if k == "" or _blen(k) > MAX_VARIABLE_KEY_LENGTH or "=" in k or "\x00" in k:
            raise _invalid("task %s: variable name %s must be 1 to %d characters without '=' or NUL" % (
                qid, _q(k), MAX_VARIABLE_KEY_LENGTH))
    _validate_duration("task %s: timeout" % qid, t._timeout, MAX_TIMEOUT)
    _validate_duration("task %s: retry_backoff" % qid, t._retry_backoff, MAX_RETRY_BACKOFF)
    if t._retries < 0 or t._retries > MAX_RETRIES:
        raise _invalid("task %s: retries must be between 0 and %d, got %d" % (qid, MAX_RETRIES, t._retries))
    cpu, memory = t._resources
    if cpu < 0 or cpu > MAX_CPU:
        raise _invalid("task %s: resources.cpu must be between 0 (the default) and %d MHz, got %d" % (
            qid, MAX_CPU, cpu))
    if memory < 0 or memory > MAX_MEMORY:
        raise _invalid("task %s: resources.memory must be between 0 (the default) and %d MB, got %d" % (
            qid, MAX_MEMORY, memory))
    if len(t._depends_on) > MAX_DEPENDENCIES:
        raise _invalid("task %s: %d dependencies, the limit is %d" % (qid, len(t._depends_on), MAX_DEPENDENCIES))
    for parent in _sorted_keys(t._depends_on):
        status = t._depends_on[parent]
        if status not in _CONDITIONS:
            raise _invalid("task %s: dependency on %s has condition %s, want Any, Success or Failure" % (
                qid, _q(parent), _q(status)))


def validate_dag(tasks: Sequence["Task"]) -> None:
    """ValidateDAG: ids valid and unique, every dependency names a task of
    the pipeline, no task depends on itself, no cycle. Errors name the
    offending task; a cycle error lists the whole cycle."""
    by_id: Dict[str, "Task"] = {}
    for t in tasks:
        problem = _identifier_problem(t._id)
        if problem is not None:
            raise InvalidIdentifierError("task %s: %s" % (_q(t._id), problem))
        if t._id in by_id:
            raise DuplicateTaskError("task %s: duplicate task id" % _go.quote(t._id))
        by_id[t._id] = t
    for t in tasks:
        for parent in _sorted_keys(t._depends_on):
            if parent == t._id:
                raise DependencyCycleError("task %s: dependency cycle: %s -> %s" % (_go.quote(t._id), t._id, t._id))
            if parent not in by_id:
                raise UnknownDependencyError("task %s: unknown dependency %s" % (_go.quote(t._id), _q(parent)))
    cycle = _find_cycle(tasks, by_id)
    if cycle is not None:
        raise DependencyCycleError("task %s: dependency cycle: %s" % (_go.quote(cycle[0]), " -> ".join(cycle)))


def _find_cycle(tasks: Sequence["Task"], by_id: Dict[str, "Task"]) -> Optional[List[str]]:
    """The same iterative depth-first search as Go's findCycle, visiting in
    the same order, so it reports the same cycle."""
    UNVISITED, IN_PROGRESS, DONE = 0, 1, 2
    state: Dict[str, int] = {}
    for root in tasks:
        if state.get(root._id, UNVISITED) != UNVISITED:
            continue
        # A frame is [id, parents, next].
        stack = [[root._id, _sorted_keys(root._depends_on), 0]]
        state[root._id] = IN_PROGRESS
        while stack:
            top = stack[-1]
            if top[2] == len(top[1]):
                state[top[0]] = DONE
                stack.pop()
                continue
            parent = top[1][top[2]]
            top[2] += 1
            st = state.get(parent, UNVISITED)
            if st == IN_PROGRESS:
                start = 0
                for i, f in enumerate(stack):
                    if f[0] == parent:
                        start = i
                        break
                return [f[0] for f in stack[start:]] + [parent]
            if st == UNVISITED:
                state[parent] = IN_PROGRESS
                stack.append([parent, _sorted_keys(by_id[parent]._depends_on), 0])
    return None
