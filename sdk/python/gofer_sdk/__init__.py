"""Gofer's Python pipeline SDK: build a pipeline (a DAG of container tasks)
and print the config JSON that `gofer up` registers.

    from gofer_sdk import Pipeline, Task, SUCCESS

    Pipeline("simple", "My Simple Pipeline").tasks(
        Task("build", "gofer/busybox:latest").script("echo building"),
        Task("test", "gofer/busybox:latest").command("echo", "testing").depends_on("build", SUCCESS),
    ).finish()

It mirrors the Go SDK (github.com/goferhq/gofer/sdk/go), validates the same
way with the same messages, and prints byte-for-byte the same JSON for the
same pipeline. Standard library only.
"""

from ._go import DurationError, format_duration, parse_duration
from .builder import (
    Pipeline,
    RequiredParentStatus,
    Task,
    global_secret,
    pipeline_object,
    pipeline_secret,
    run_object,
)
from .validate import (
    ANY,
    FAILURE,
    MAX_CPU,
    MAX_DEPENDENCIES,
    MAX_DESCRIPTION,
    MAX_IDENTIFIER_LENGTH,
    MAX_IMAGE_LENGTH,
    MAX_MEMORY,
    MAX_NAME_LENGTH,
    MAX_PARALLELISM,
    MAX_RETRIES,
    MAX_RETRY_BACKOFF,
    MAX_RUN_RETENTION_AGE,
    MAX_RUN_RETENTION_COUNT,
    MAX_TASKS,
    MAX_TIMEOUT,
    MAX_VARIABLES,
    MIN_IDENTIFIER_LENGTH,
    SUCCESS,
    ConfigError,
    DependencyCycleError,
    DuplicateTaskError,
    InvalidConfigError,
    InvalidIdentifierError,
    UnknownDependencyError,
    validate_identifier,
)

__version__ = "0.1.0"

__all__ = [
    "Pipeline",
    "Task",
    "RequiredParentStatus",
    "ANY",
    "SUCCESS",
    "FAILURE",
    "pipeline_secret",
    "global_secret",
    "pipeline_object",
    "run_object",
    "ConfigError",
    "InvalidConfigError",
    "InvalidIdentifierError",
    "DuplicateTaskError",
    "UnknownDependencyError",
    "DependencyCycleError",
    "validate_identifier",
    "parse_duration",
    "format_duration",
    "DurationError",
    "MIN_IDENTIFIER_LENGTH",
    "MAX_IDENTIFIER_LENGTH",
    "MAX_TASKS",
    "MAX_NAME_LENGTH",
    "MAX_DESCRIPTION",
    "MAX_IMAGE_LENGTH",
    "MAX_VARIABLES",
    "MAX_PARALLELISM",
    "MAX_DEPENDENCIES",
    "MAX_RETRIES",
    "MAX_TIMEOUT",
    "MAX_RETRY_BACKOFF",
    "MAX_RUN_RETENTION_AGE",
    "MAX_RUN_RETENTION_COUNT",
    "MAX_CPU",
    "MAX_MEMORY",
]
