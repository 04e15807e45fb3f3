"""The one idempotency helper (semantics of the IETF httpapi ``Idempotency-Key`` draft and
Stripe): the header, the canonical request hash, and the errors every endpoint answers.

- A request without the header is a 400 naming ``header.Idempotency-Key``.
- A stored key whose request hash differs is a 422 (the key was reused for another body).
- A key this process is still working on is a 409 with ``Retry-After``.

The hash is SHA-256 over the request body's JSON with sorted keys and no whitespace, so two
bodies that mean the same thing hash the same whichever field order the client sent.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Header

from services.shared.problems import Problem

HEADER = "Idempotency-Key"
FIELD = f"header.{HEADER}"
MAX_KEY_LENGTH = 255

KeyHeader = Annotated[str | None, Header(alias=HEADER, max_length=MAX_KEY_LENGTH)]
"""The header as an endpoint parameter (``None`` when absent: see :func:`required`)."""


def required(key: str | None, endpoint: str) -> str:
    """The key, or a 400 problem saying ``endpoint`` needs one."""
    if not key:
        raise Problem(
            400,
            "idempotency-key-missing",
            f"{endpoint} requires an {HEADER} header (any unique string, e.g. a UUID)",
            field=FIELD,
        )
    return key


def request_hash(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def reused() -> Problem:
    return Problem(
        422,
        "idempotency-key-reused",
        f"this {HEADER} was used with a different request body",
        field=FIELD,
    )


class InFlightKeys:
    """Idempotency keys this process is working on right now."""

    def __init__(self) -> None:
        self._keys: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def claim(self, key: str) -> Iterator[None]:
        with self._lock:
            if key in self._keys:
                raise Problem(
                    409,
                    "idempotency-key-in-flight",
                    f"a request with this {HEADER} is still being processed; retry later",
                    field=FIELD,
                    headers={"Retry-After": "1"},
                )
            self._keys.add(key)
        try:
            yield
        finally:
            with self._lock:
                self._keys.discard(key)
