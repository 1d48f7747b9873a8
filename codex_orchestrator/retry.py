"""Retry policy: which failures are retryable and how long to wait (exponential backoff, jitter, ceiling)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from codex_orchestrator.exec.errors import ExecError


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.2
    retry_on_exit_codes: frozenset[int] = field(default_factory=lambda: frozenset({75}))
    retry_on_timeout: bool = False


def delay_for(policy: RetryPolicy, failed_attempt: int, rng: random.Random | None = None) -> float:
    """Delay before attempt ``failed_attempt + 1``: base·multiplier^(n-1), ± jitter, never above the ceiling."""
    raw = policy.base_delay_s * policy.multiplier ** max(0, failed_attempt - 1)
    capped = min(raw, policy.max_delay_s)
    spread = capped * policy.jitter
    draw = (rng or random).uniform(-spread, spread)
    return max(0.0, min(policy.max_delay_s, capped + draw))


def retry_reason(
    policy: RetryPolicy, *, exit_code: int | None, timed_out: bool, error: BaseException | None
) -> str | None:
    """Why another attempt may help, or None when the failure is final."""
    if error is not None:
        if isinstance(error, ExecError) and error.retryable:
            return f"retryable {type(error).__name__}: {error}"
        return None
    if timed_out:
        return "timed out (retry_on_timeout)" if policy.retry_on_timeout else None
    if exit_code is not None and exit_code in policy.retry_on_exit_codes:
        return f"exit code {exit_code} is marked retryable"
    return None
