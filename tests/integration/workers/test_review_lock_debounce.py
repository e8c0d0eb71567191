"""The per-review lock (Redis and file) and the recompute debouncer, on the real Redis."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from services.locks import FileReviewLock, LockLostError, RedisReviewLock, ReviewBusyError
from workers.debounce import Debouncer

pytestmark = [pytest.mark.integration, pytest.mark.redis]


def test_redis_lock_excludes_other_tokens_reenters_same_and_expires(wk_redis) -> None:
    lock = RedisReviewLock(wk_redis)
    lock.acquire(7, "run-a", ttl=5)
    lock.acquire(7, "run-a", ttl=5)  # a redelivered step of the same update
    with pytest.raises(ReviewBusyError, match=r"review 7 is already being updated .*run-a"):
        lock.acquire(7, "run-b", ttl=5)
    lock.acquire(8, "run-b", ttl=5)  # other reviews are independent
    assert lock.release(7, "run-b") is False and lock.holder(7) == "run-a"
    assert lock.release(7, "run-a") is True and lock.holder(7) is None
    lock.acquire(7, "run-c", ttl=0.3)
    time.sleep(0.5)
    lock.acquire(7, "run-d", ttl=5)  # the crashed holder's lock expired
    with pytest.raises(LockLostError, match="run-c expired and run-d holds it"):
        lock.refresh(7, "run-c", ttl=5)


def test_file_lock_excludes_another_process(tmp_path) -> None:
    lock = FileReviewLock(tmp_path)
    lock.acquire(3, "update-1")
    code = (
        "import sys; from pathlib import Path; from services.locks import FileReviewLock, "
        "ReviewBusyError\n"
        "try:\n    FileReviewLock(Path(sys.argv[1])).acquire(3, 'update-2')\n"
        "except ReviewBusyError as e:\n    print(e); sys.exit(3)\n"
    )
    busy = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert busy.returncode == 3 and "lock held by update-1" in busy.stdout
    lock.release(3, "update-1")
    free = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert free.returncode == 0


def test_ten_confirmations_in_a_minute_make_one_recompute(wk_redis) -> None:
    debouncer = Debouncer(wk_redis, delay=60)
    t0 = 1_000_000.0
    scheduled = [debouncer.touch(1, now=t0 + 6 * i) for i in range(10)]  # one every 6 s
    assert scheduled == [True] + [False] * 9
    assert debouncer.settle(1, now=t0 + 60) == pytest.approx(54)  # last one at t0+54
    assert debouncer.settle(1, now=t0 + 114) is None  # quiet for 60 s: recompute once
    assert debouncer.touch(1, now=t0 + 200) is True  # a later confirmation: a new round


def test_debounce_is_bounded_under_a_steady_stream(wk_redis) -> None:
    debouncer = Debouncer(wk_redis, delay=10, max_wait=30)
    t0 = 2_000_000.0
    debouncer.touch(2, now=t0)
    for i in range(1, 8):
        debouncer.touch(2, now=t0 + 5 * i)
    assert debouncer.settle(2, now=t0 + 25) is not None
    assert debouncer.settle(2, now=t0 + 31) is None
