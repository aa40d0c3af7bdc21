"""``python -m ledger.storage.watchdog HOME POSTMASTER_PID``: stops an embedded server nobody uses any more.

Started by ``EmbeddedPostgres`` beside each server it starts. A command killed with SIGKILL never releases
its use of the server; the watchdog notices within ``WATCH_INTERVAL`` seconds that no registered user is
alive (and the server is not pinned), stops it and exits. It also exits as soon as the server it watches is
gone. It detaches first, as a daemon does: it forks, the parent prints the watchdog's pid and exits, and the
watchdog runs in a session of its own with no terminal.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Detach, then watch the server of ``LEDGER_HOME`` argv[0] whose postmaster has pid argv[1]."""
    home, postmaster = Path(argv[0]), int(argv[1])
    pid = os.fork()
    if pid:
        print(pid, flush=True)
        return 0
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, sys.stdin.fileno())
    os.dup2(devnull, sys.stdout.fileno())  # the starter reads stdout until it closes
    from ledger.storage.embedded import EmbeddedPostgres

    EmbeddedPostgres(home).watch(postmaster)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
