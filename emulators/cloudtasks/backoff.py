"""The retry schedule and stop rule of a Cloud Tasks queue (``RetryConfig`` in queue.proto).

Pure functions, so the documented example (min 10 s, max 300 s, 3 doublings → 10, 20, 40, 80,
160, 240, 300) is checked on its own, apart from any dispatch.
"""

from __future__ import annotations

from dataclasses import dataclass

RETENTION_SECONDS = 31 * 24 * 3600
"""A task is deleted 31 days after creation whatever its retry settings."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    """-1 = unlimited."""
    min_backoff: float
    max_backoff: float
    max_doublings: int
    max_retry_duration: float
    """0 = unlimited task age."""


def retry_delay(retry_number: int, policy: RetryPolicy) -> float:
    """Seconds to wait before the ``retry_number``-th retry (1 after the first failure).

    The interval doubles ``max_doublings`` times starting at ``min_backoff``, then grows
    linearly by ``2**max_doublings * min_backoff`` per retry, and never exceeds
    ``max_backoff``.
    """
    if retry_number < 1:
        raise ValueError("retry numbers start at 1")
    doublings = policy.max_doublings
    if retry_number - 1 <= doublings:
        delay = policy.min_backoff * 2 ** (retry_number - 1)
    else:
        delay = policy.min_backoff * 2**doublings * (retry_number - doublings)
    return min(delay, policy.max_backoff)


def should_stop(attempts: int, age: float, policy: RetryPolicy) -> bool:
    """True when a task that just failed its ``attempts``-th attempt, ``age`` seconds after its
    first attempt, must not be retried.

    Cloud Tasks stops only when *both* limits are reached. ``max_retry_duration = 0`` imposes
    no age limit, so the attempts alone decide; ``max_attempts = -1`` is never reached, so such
    a task is retried until the 31-day retention ends, whatever its duration (the literal
    reading of the RetryConfig reference).
    """
    attempts_reached = policy.max_attempts != -1 and attempts >= policy.max_attempts
    age_reached = policy.max_retry_duration == 0 or age >= policy.max_retry_duration
    return attempts_reached and age_reached
