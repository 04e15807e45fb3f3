"""``python -m emulators.cloudtasks --host H --port P --oidc-port P2 --project ID``: run the
emulator until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from caplab.core.topology import LOCAL_PROJECT
from emulators.cloudtasks.emulator import CloudTasksEmulator
from emulators.cloudtasks.service import ServiceConfig
from emulators.cloudtasks.validation import TaskLimits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulators.cloudtasks", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123, help="gRPC port")
    parser.add_argument(
        "--oidc-port", type=int, default=8124, help="HTTP port of the OIDC discovery and JWKS"
    )
    parser.add_argument("--project", default=LOCAL_PROJECT, help="the one project served")
    parser.add_argument("--task-tombstone-seconds", type=float, default=3600.0)
    parser.add_argument("--queue-tombstone-seconds", type=float, default=7 * 24 * 3600.0)
    parser.add_argument(
        "--min-dispatch-deadline",
        type=float,
        default=15.0,
        help="lowest accepted dispatch_deadline in seconds (production: 15)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = ServiceConfig(
        project=args.project,
        task_tombstone_seconds=args.task_tombstone_seconds,
        queue_tombstone_seconds=args.queue_tombstone_seconds,
        task_limits=TaskLimits(min_dispatch_deadline=args.min_dispatch_deadline),
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    emulator = CloudTasksEmulator(args.host, args.port, args.oidc_port, config).start()
    logging.info(
        "Cloud Tasks emulator serving gRPC on %s, OIDC issuer %s, project %s",
        emulator.address,
        emulator.issuer,
        args.project,
    )
    try:
        stop.wait()
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
