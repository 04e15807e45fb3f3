"""The gRPC face of the emulator: generic handlers that (de)serialize with the protobuf classes
``google-cloud-tasks`` ships, so the official client talks to it unchanged (no generated code)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc
from google.cloud.location import locations_pb2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2

from emulators.cloudtasks import messages
from emulators.cloudtasks.errors import ApiError
from emulators.cloudtasks.service import CloudTasksService

TASKS_SERVICE = "google.cloud.tasks.v2.CloudTasks"
LOCATIONS_SERVICE = "google.cloud.location.Locations"

_log = logging.getLogger(__name__)

_TASKS_METHODS: dict[str, tuple[Any, Any]] = {
    "ListQueues": (messages.ListQueuesRequest, messages.ListQueuesResponse),
    "GetQueue": (messages.GetQueueRequest, messages.Queue),
    "CreateQueue": (messages.CreateQueueRequest, messages.Queue),
    "UpdateQueue": (messages.UpdateQueueRequest, messages.Queue),
    "DeleteQueue": (messages.DeleteQueueRequest, empty_pb2.Empty),
    "PurgeQueue": (messages.PurgeQueueRequest, messages.Queue),
    "PauseQueue": (messages.PauseQueueRequest, messages.Queue),
    "ResumeQueue": (messages.ResumeQueueRequest, messages.Queue),
    "GetIamPolicy": (iam_policy_pb2.GetIamPolicyRequest, policy_pb2.Policy),
    "SetIamPolicy": (iam_policy_pb2.SetIamPolicyRequest, policy_pb2.Policy),
    "TestIamPermissions": (
        iam_policy_pb2.TestIamPermissionsRequest,
        iam_policy_pb2.TestIamPermissionsResponse,
    ),
    "ListTasks": (messages.ListTasksRequest, messages.ListTasksResponse),
    "GetTask": (messages.GetTaskRequest, messages.Task),
    "CreateTask": (messages.CreateTaskRequest, messages.Task),
    "DeleteTask": (messages.DeleteTaskRequest, empty_pb2.Empty),
    "RunTask": (messages.RunTaskRequest, messages.Task),
}
_LOCATIONS_METHODS: dict[str, tuple[Any, Any]] = {
    "ListLocations": (locations_pb2.ListLocationsRequest, locations_pb2.ListLocationsResponse),
    "GetLocation": (locations_pb2.GetLocationRequest, locations_pb2.Location),
}


def _unary(method: Callable[[Any], Any], request_class: Any, response_class: Any) -> Any:
    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return method(request)
        except ApiError as error:
            await context.abort(error.code, error.message)
        except Exception as error:  # a bug must cost one request, never the server
            _log.exception("internal error in %s", getattr(method, "__name__", method))
            await context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")

    return grpc.unary_unary_rpc_method_handler(
        handle,
        request_deserializer=request_class.FromString,
        response_serializer=response_class.SerializeToString,
    )


def add_handlers(server: grpc.aio.Server, service: CloudTasksService) -> None:
    """Register every RPC of both services; unregistered methods (the newer BatchCreateTasks,
    BatchDeleteTasks, CMEK config) answer UNIMPLEMENTED."""
    for name, methods in ((TASKS_SERVICE, _TASKS_METHODS), (LOCATIONS_SERVICE, _LOCATIONS_METHODS)):
        handlers = {
            method: _unary(getattr(service, method), request, response)
            for method, (request, response) in methods.items()
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
