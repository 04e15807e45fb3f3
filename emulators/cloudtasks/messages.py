"""The raw protobuf classes of the Cloud Tasks v2 API, taken from the proto-plus types that
``google-cloud-tasks`` ships (``tasks_v2.X.pb()``): the server speaks exactly the client's
schema without generated code."""

from __future__ import annotations

from typing import Any

from google.cloud import tasks_v2

_TYPES: Any = tasks_v2  # proto-plus classes; ``.pb()`` returns the protobuf message class

Queue: Any = _TYPES.Queue.pb()
Task: Any = _TYPES.Task.pb()
HttpRequest: Any = _TYPES.HttpRequest.pb()
Attempt: Any = _TYPES.Attempt.pb()
RateLimits: Any = _TYPES.RateLimits.pb()
RetryConfig: Any = _TYPES.RetryConfig.pb()
ListQueuesRequest: Any = _TYPES.ListQueuesRequest.pb()
ListQueuesResponse: Any = _TYPES.ListQueuesResponse.pb()
GetQueueRequest: Any = _TYPES.GetQueueRequest.pb()
CreateQueueRequest: Any = _TYPES.CreateQueueRequest.pb()
UpdateQueueRequest: Any = _TYPES.UpdateQueueRequest.pb()
DeleteQueueRequest: Any = _TYPES.DeleteQueueRequest.pb()
PurgeQueueRequest: Any = _TYPES.PurgeQueueRequest.pb()
PauseQueueRequest: Any = _TYPES.PauseQueueRequest.pb()
ResumeQueueRequest: Any = _TYPES.ResumeQueueRequest.pb()
ListTasksRequest: Any = _TYPES.ListTasksRequest.pb()
ListTasksResponse: Any = _TYPES.ListTasksResponse.pb()
GetTaskRequest: Any = _TYPES.GetTaskRequest.pb()
CreateTaskRequest: Any = _TYPES.CreateTaskRequest.pb()
DeleteTaskRequest: Any = _TYPES.DeleteTaskRequest.pb()
RunTaskRequest: Any = _TYPES.RunTaskRequest.pb()

RUNNING: int = Queue.State.Value("RUNNING")
PAUSED: int = Queue.State.Value("PAUSED")
DISABLED: int = Queue.State.Value("DISABLED")
BASIC: int = Task.View.Value("BASIC")
FULL: int = Task.View.Value("FULL")
METHODS: dict[int, str] = {
    value.number: value.name
    for value in HttpRequest.DESCRIPTOR.fields_by_name["http_method"].enum_type.values
}
"""HttpMethod number -> name (``POST``...)."""
POST: int = 1
