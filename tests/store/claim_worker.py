"""A separate engine process for the multi-process claim test.

    python -m tests.store.claim_worker LOCATION OWNER GO_FILE

Opens the store, creates ``GO_FILE.OWNER.ready``, waits until GO_FILE exists
(so all workers start together), then claims in a loop until nothing is left
and prints every claimed uid on its own line. Like a real engine it does a
little other work between claims (a 5 ms pause), which is also what gives the
other process its turn at SQLite's writer lock.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

from app.store import tasks
from app.store.schema import open_store


def main(location: str, owner: str, go_file: str) -> int:
    warnings.simplefilter("ignore", DeprecationWarning)
    open_store(location)
    Path(f"{go_file}.{owner}.ready").touch()
    deadline = time.monotonic() + 30
    while not Path(go_file).exists():
        if time.monotonic() > deadline:
            return 2
        time.sleep(0.005)
    slots = [tasks.Slot(f"{owner}-dev{i}", capacity=1 + i % 2) for i in range(3)]
    claimed: list[str] = []
    empty_rounds = 0
    while empty_rounds < 3:  # a few empty rounds: the other may still hold the lock
        got = tasks.claim(owner, slots, lease_s=60)
        time.sleep(0.005)
        if not got:
            empty_rounds += 1
            continue
        empty_rounds = 0
        claimed.extend(t.uid for batch in got.values() for t in batch)
    sys.stdout.write("\n".join(claimed) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
