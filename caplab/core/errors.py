"""Errors caplab reports to a person, each with what to do about it.

CaplabError                  base: the CLI prints the message and exits non-zero
├── SdkNotFoundError         no Cloud SDK, or an emulator binary missing under it
├── JavaNotFoundError        the Pub/Sub emulator needs a Java runtime
├── PortInUseError           a port caplab wants is held by another process
├── EmulatorNotReadyError    an emulator did not pass its readiness probe in time
│                            (carries the tail of its log)
└── SettingError             a service's settings are missing or unsafe where it runs
                             (it refuses to start: fail closed)
"""

from __future__ import annotations


class CaplabError(Exception):
    """Base of every error caplab reports to a person instead of a traceback."""


class SdkNotFoundError(CaplabError):
    pass


class JavaNotFoundError(CaplabError):
    pass


class PortInUseError(CaplabError):
    def __init__(self, port: int, purpose: str, hint: str) -> None:
        self.port = port
        super().__init__(
            f"port {port} ({purpose}) is already in use by another process; stop that process "
            f"or choose another port with {hint}"
        )


class EmulatorNotReadyError(CaplabError):
    def __init__(self, name: str, reason: str, log_tail: str) -> None:
        self.name = name
        self.log_tail = log_tail
        super().__init__(
            f"the {name} emulator is not ready: {reason}\n--- last lines of its log ---\n{log_tail}"
        )


class SettingError(CaplabError):
    """A setting is missing or unsafe for where the process runs; the message names it."""
