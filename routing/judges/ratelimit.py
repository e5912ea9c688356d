"""A token bucket: at most ``rate`` requests a second on average, bursts of up to ``capacity``.

Shared by the threads of one judge. It limits this process only; several workers judging
against one endpoint each get their own bucket, so set the rate per worker (the endpoint's
limit divided by the number of ``judging`` workers). A 429 that still gets through is
retried with backoff by the transport.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate: float, capacity: float | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else max(1.0, rate))
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting until there is one; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return waited
                wait = (1.0 - self._tokens) / self.rate
            # Sleep outside the lock so other threads can refill-and-check meanwhile.
            self._sleep(wait)
            waited += wait
