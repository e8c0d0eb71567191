"""Run one run's harvest step and kill this process (SIGKILL) once ``KILL_AFTER`` records are
stored: a worker dying while the staged window is applied. Run with ``python -m killed_harvest
DB_URL ENTREZ_URL RUN_ID KILL_AFTER CHUNK`` from this folder."""

from __future__ import annotations

import os
import signal
import sys

from harvest_helpers import options

from db.session import make_engine, make_sessionmaker
from services import update


def main() -> None:
    url, entrez, run_id, kill_after, chunk = sys.argv[1:6]

    def progress(message: str) -> None:
        if message.startswith("stored ") and int(message.split()[1].split("/")[0]) >= int(
            kill_after
        ):
            os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind, as a power cut

    factory = make_sessionmaker(make_engine(url))
    update.harvest(factory, int(run_id), options(entrez).make_client(), progress, chunk=int(chunk))
    raise SystemExit("the harvest finished before it was killed")


if __name__ == "__main__":
    main()
