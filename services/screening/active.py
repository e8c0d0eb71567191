"""Active learning in the queue: a debounced background refit reorders the pending records.

After each decision the web app calls :meth:`QueueRefitter.poke` (O(1), on the request path);
a background thread coalesces the pokes of ``debounce`` seconds and has a child process run
:func:`refit_queue`, off the request path and outside the web process's interpreter lock:

1. the review's pool (pending title/abstract records and the labelled ones) is read; its
   features are fitted once per pool (:class:`classifiers.ranking.QueueRanker`, cached while the
   pool's records do not change) and only the linear classifier is refitted on the labels;
2. labels: included studies' records, records at or past full text and included records are 1;
   excluded records (any source, inferred excludes too) are 0. Until both classes exist nothing
   is refitted (the pre-screen's order stays);
3. each pending record gets ``priority`` = the refit's decision value (the queue's order),
   ``score`` = its calibrated probability of inclusion (a logistic fit of the labels on the
   decision values of the labelled records), and ``model_version`` = ``refit-<labels>-<time>``;
   written in short transactions of :data:`CHUNK` rows, only for records still queued. A queue
   longer than :data:`FULL_WRITE` has only its head rewritten (the :data:`HEAD` records the
   refit ranks first, and the previous refit's), placed above the rest.

The stopping aid (:func:`relevant_left`) reads those scores: the expected number of includes
left is their sum, with a normal-approximation interval of the Poisson-binomial count.

Errors: none of its own; a refit that fails is logged and recorded (a result without a model
version), a refit process that dies is replaced, and the next poke tries again.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from classifiers.features import record_text
from classifiers.ranking import QueueRanker
from db.models import Record, ReviewRecord, Study

logger = logging.getLogger(__name__)
CHUNK = 2_000
PENDING_STAGE = "title_abstract"
# With more pending records than FULL_WRITE, a refit rewrites only the HEAD records it ranks
# first (and those of the previous refit), lifted above the pre-screen's priorities by
# HEAD_OFFSET: writing 100,000 rows every few seconds would slow the decisions themselves.
FULL_WRITE = 20_000
HEAD = 2_000
HEAD_OFFSET = 1_000.0


@dataclass(frozen=True)
class RefitResult:
    """What one refit did."""

    review_id: int
    model_version: str | None
    labelled: int
    positives: int
    reordered: int
    seconds: float
    pool_seconds: float = 0.0  # of which fitting the pool's features (once per pool)


@dataclass
class _Pool:
    key: tuple[int, int]
    ids: list[int]  # review_record ids in pool order (-1 for a study without a record)
    ranker: QueueRanker


class QueueRefitter:
    """Coalesced background refits: ``poke`` after each decision; refits run in a child process.

    The first poke of a review schedules its refit ``debounce`` seconds later; pokes until then
    join it, and a poke during a refit schedules the next one (no sooner than twice the last
    refit's duration after it, the pool's one-off feature fit not counted, so slow refits take
    at most a third of a core). So a reviewer
    clicking steadily gets a refit every ``debounce`` seconds, and one at the end. The refit
    runs in a separate process at a lower CPU priority (features and the fitted pool are cached
    there), so it never holds the web process's interpreter lock while requests are served.
    """

    def __init__(self, database_url: str, *, debounce: float = 2.0, seed: int = 0) -> None:
        self.database_url, self.debounce, self.seed = database_url, debounce, seed
        self._due: dict[int, float] = {}
        self._rest: dict[int, float] = {}  # review -> no refit before this time
        self._wake = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._executor: ProcessPoolExecutor | None = None
        self.results: list[RefitResult] = []  # the last 100
        self.completed = 0  # refits finished (or failed) since the start

    def start(self) -> None:
        """Start the scheduling thread and the refit process (idempotent)."""
        with self._wake:
            if self._thread is not None:
                return
            self._stop = False
            self._executor = self._new_executor()
            self._thread = threading.Thread(target=self._run, name="queue-refit", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop scheduling; wait for a refit under way, drop the ones not started."""
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(60)
            self._thread = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def poke(self, review_id: int) -> None:
        """A decision was made in ``review_id``: refit it within ``debounce`` seconds (or
        twice the last refit's duration after it ended, when refits are slow)."""
        self.start()
        with self._wake:
            earliest = max(time.monotonic() + self.debounce, self._rest.get(review_id, 0.0))
            self._due.setdefault(review_id, earliest)
            self._wake.notify_all()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stop and not self._ready():
                    self._wake.wait(self._timeout())
                if self._stop:
                    return
                now = time.monotonic()
                ready = [r for r, due in self._due.items() if due <= now]
                for review_id in ready:
                    del self._due[review_id]
                executor = self._executor
            for review_id in ready:
                if executor is None:
                    return
                began = time.perf_counter()
                try:
                    result = executor.submit(_child_refit, review_id, self.seed).result()
                except BrokenProcessPool:
                    logger.exception("the queue refit process died; starting another")
                    result = RefitResult(review_id, None, 0, 0, 0, time.perf_counter() - began)
                    self._restart()
                except Exception:  # the thread's entry point: log, keep serving later pokes
                    logger.exception("queue refit of review %s failed", review_id)
                    result = RefitResult(review_id, None, 0, 0, 0, time.perf_counter() - began)
                self.results = [*self.results[-99:], result]
                self.completed += 1
                took = time.perf_counter() - began - result.pool_seconds
                with self._wake:
                    self._rest[review_id] = time.monotonic() + 2 * took

    def _restart(self) -> None:
        with self._wake:
            broken, self._executor = self._executor, self._new_executor()
        if broken is not None:
            broken.shutdown(wait=False, cancel_futures=True)

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"),
            initializer=_child_init, initargs=(self.database_url,),
        )

    def _ready(self) -> bool:
        now = time.monotonic()
        return any(due <= now for due in self._due.values())

    def _timeout(self) -> float | None:
        if not self._due:
            return None
        return max(0.0, min(self._due.values()) - time.monotonic())


_child: dict[str, Any] = {}


def _child_init(database_url: str) -> None:
    """In the refit process: one engine, and the pools cached across refits."""
    from db.session import make_engine, make_sessionmaker

    os.nice(10)  # the web process's requests come first when the CPU is short
    _child["factory"] = make_sessionmaker(make_engine(database_url))
    _child["pools"] = {}


def _child_refit(review_id: int, seed: int) -> RefitResult:
    return refit_queue(_child["factory"], review_id, _child["pools"], seed=seed)


def _pool_key(session: Session, review_id: int) -> tuple[int, int]:
    from sqlalchemy import func

    count, last = session.execute(
        select(func.count(ReviewRecord.id), func.max(ReviewRecord.id)).where(
            ReviewRecord.review_id == review_id)
    ).one()
    return int(count or 0), int(last or 0)


def _load_pool(session: Session, review_id: int, seed: int) -> _Pool:
    rows = session.execute(
        select(ReviewRecord.id, Record.title, Record.abstract, Record.mesh, Record.keywords)
        .join(Record, Record.id == ReviewRecord.record_id)
        .where(ReviewRecord.review_id == review_id)
        .order_by(ReviewRecord.id)
    ).all()
    ids = [r[0] for r in rows]
    texts = [record_text(t, a, "; ".join((m or []) + (k or []))) for _i, t, a, m, k in rows]
    linked = set(session.scalars(select(ReviewRecord.study_id).where(
        ReviewRecord.review_id == review_id, ReviewRecord.study_id.is_not(None))))
    for study in session.scalars(select(Study).where(
            Study.review_id == review_id, Study.status == "included")):
        if study.id not in linked and study.title:
            ids.append(-1)
            texts.append(record_text(study.title, "", ""))
    return _Pool(_pool_key(session, review_id), ids, QueueRanker(texts, seed=seed))


def _labels(session: Session, review_id: int) -> tuple[dict[int, int], set[int]]:
    """Labels by review_record id, and the ids of the pending records."""
    labels: dict[int, int] = {}
    pending: set[int] = set()
    rows = session.execute(
        select(ReviewRecord.id, ReviewRecord.state, ReviewRecord.stage, Study.status)
        .outerjoin(Study, Study.id == ReviewRecord.study_id)
        .where(ReviewRecord.review_id == review_id)
    ).all()
    for rr_id, state, stage, study_status in rows:
        if state == "queued" and stage == PENDING_STAGE:
            pending.add(rr_id)
        elif state in ("excluded", "inferred_excluded", "auto_excluded"):
            labels[rr_id] = 0
        elif state == "included" or (state == "queued" and stage != PENDING_STAGE) or (
                state == "linked" and study_status == "included"):
            labels[rr_id] = 1
    return labels, pending


def refit_queue(
    factory: sessionmaker[Session], review_id: int, pools: dict[int, _Pool], *, seed: int = 0
) -> RefitResult:
    """Refit the review's queue order now (see the module docstring); returns what it did."""
    began = time.perf_counter()
    with factory() as session:
        key = _pool_key(session, review_id)
        pool = pools.get(review_id)
        pool_seconds = 0.0
        if pool is None or pool.key != key:
            pool = pools[review_id] = _load_pool(session, review_id, seed)
            pool_seconds = time.perf_counter() - began
        labels, pending = _labels(session, review_id)
    index = [i for i, rr in enumerate(pool.ids) if rr == -1 or rr in labels]
    y = np.array([1 if pool.ids[i] == -1 else labels[pool.ids[i]] for i in index], dtype=int)
    todo = [i for i, rr in enumerate(pool.ids) if rr in pending]
    if not todo or not (y == 1).any() or not (y == 0).any():
        return RefitResult(review_id, None, len(y), int(y.sum()), 0, time.perf_counter() - began,
                           pool_seconds)
    scores = pool.ranker.scores(index, y)
    probability = _calibrate(scores[index], y)
    version = f"refit-{len(y)}-{dt.datetime.now(dt.UTC):%H%M%S}"
    offset = 0.0
    if len(todo) > FULL_WRITE:
        todo, offset = _head(factory, review_id, pool, todo, scores), HEAD_OFFSET
    values = [
        {"rid": pool.ids[i], "p": offset + float(scores[i]), "s": float(probability(scores[i])),
         "v": version}
        for i in todo
    ]
    statement = (
        update(ReviewRecord)
        .where(and_(ReviewRecord.id == bindparam("rid"), ReviewRecord.state == "queued"))
        .values(priority=bindparam("p"), score=bindparam("s"), model_version=bindparam("v"))
        .execution_options(synchronize_session=False)
    )
    for start in range(0, len(values), CHUNK):
        with factory.begin() as session:
            session.connection().execute(statement, values[start : start + CHUNK])
    seconds = time.perf_counter() - began
    logger.info("review %s: queue refit %s on %d labels, %d records reordered in %.2fs",
                review_id, version, len(y), len(values), seconds)
    return RefitResult(review_id, version, len(y), int(y.sum()), len(values), seconds,
                       pool_seconds)


def _head(
    factory: sessionmaker[Session], review_id: int, pool: _Pool, todo: list[int],
    scores: np.ndarray,
) -> list[int]:
    """A long queue: only its new head and the previous one are rewritten (see FULL_WRITE)."""
    head = sorted(todo, key=lambda i: -scores[i])[:HEAD]
    with factory() as session:
        before = set(session.scalars(select(ReviewRecord.id).where(
            ReviewRecord.review_id == review_id, ReviewRecord.state == "queued",
            ReviewRecord.stage == PENDING_STAGE, ReviewRecord.model_version.like("refit-%"))))
    wanted = {pool.ids[i] for i in head} | before
    return [i for i in todo if pool.ids[i] in wanted]


def _calibrate(decision: np.ndarray, y: np.ndarray):  # type: ignore[no-untyped-def]
    """Platt scaling of the decision values on the labelled records."""
    model = LogisticRegression(C=1.0)
    model.fit(decision.reshape(-1, 1), y)
    a, b = float(model.coef_[0][0]), float(model.intercept_[0])
    return lambda value: 1.0 / (1.0 + math.exp(-(a * value + b)))


def relevant_left(scores_sum: float, squares_sum: float, queued: int) -> tuple[float, float, float]:
    """Expected includes among the pending records and a 95% interval, from their
    probabilities' sum and sum of squares (Poisson-binomial, normal approximation)."""
    variance = max(scores_sum - squares_sum, 0.0)
    half = 1.96 * math.sqrt(variance)
    return scores_sum, max(0.0, scores_sum - half), min(float(queued), scores_sum + half)
