"""The Python example: the simple pipeline, written with the Python SDK.

    PYTHONPATH=sdk/python gofer up examples/python/pipeline.py
    PYTHONPATH=sdk/python gofer run local examples/python/pipeline.py
"""
from gofer_sdk import Pipeline, Task, SUCCESS

Pipeline("simple_python", "Simple Pipeline (Python)").description(
    "Two tasks: hello, then world once hello succeeds."
).tasks(
    Task("hello", "gofer/busybox:latest")
    .description("Say hello.")
    .command("echo", "Hello from Gofer, in Python!"),
    Task("world", "gofer/busybox:latest")
    .description("Runs after hello succeeds.")
    .command("sh", "-c", "echo world from $GOFER_TASK_ID")
    .depends_on("hello", SUCCESS),
).finish()
