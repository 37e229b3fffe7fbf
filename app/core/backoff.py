"""Exponential backoff with jitter, for task retries and reconnect loops."""

from __future__ import annotations

import random


def retry_delay(
    attempt: int,
    *,
    base: float = 5.0,
    factor: float = 2.0,
    cap: float = 600.0,
    jitter: float = 0.2,
    rng: random.Random | None = None,
) -> float:
    """Delay before retry number ``attempt`` (1 = first retry).

    ``base * factor**(attempt-1)`` capped at ``cap``, then spread by ±``jitter``
    (a fraction) so that many failures at once do not retry in lockstep.
    """
    if attempt < 1:
        attempt = 1
    delay = min(cap, base * factor ** (attempt - 1))
    spread = (rng or random).uniform(-jitter, jitter)
    return max(0.0, delay * (1.0 + spread))
