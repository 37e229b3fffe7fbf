"""The garbage collector's settings for a long-running TaskDesk process.

The engine allocates many small short-lived objects per task (records, events,
futures). With Python's defaults a full collection walks every tracked object,
start-up's included (~85,000 in the console), and collections run every 700
allocations: ~6% of a busy engine's time, and 60-90 ms pauses on the console's
event loop. ``settle_heap`` is called once start-up is done, by ``taskdesk serve``
and the console alike.
"""

from __future__ import annotations

import gc

# Young objects are collected every 5,000 allocations instead of 700: a short task's
# garbage is mostly freed by reference counting anyway, and a young collection of
# 5,000 objects still takes well under a millisecond.
THRESHOLDS = (5000, 20, 20)


def settle_heap() -> None:
    """Collect, move what start-up built out of the collector's way (frozen objects
    are not walked again; objects made later are collected as before), and set
    :data:`THRESHOLDS`."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
