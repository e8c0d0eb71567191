"""The Celery application: Redis broker, JSON messages, late acks, one process-wide runtime.

``celery -A workers.celery_app worker`` / ``beat`` (or ``living-review worker`` / ``beat``) use
:data:`app`, configured from :func:`services.settings.get_settings`. Delivery guarantees:

- ``task_acks_late``: a task's message is acknowledged after it returns, so a worker that dies
  mid-task leaves it unacknowledged and Redis hands it out again once the *visibility timeout*
  (``CELERY_VISIBILITY_TIMEOUT``) has passed. Every task is idempotent, so that is harmless.
- ``task_reject_on_worker_lost``: a child process killed by the OS (OOM, SIGKILL) requeues its
  message instead of acknowledging it; :mod:`workers.tasks` counts deliveries per task id and
  gives up after ``MAX_DELIVERIES`` so a task that kills its process cannot loop for ever.
- ``task_time_limit`` sits below the visibility timeout, so no task outlives it (a task still
  running when the timeout passes would be delivered a second time).
- A broker outage: the worker keeps retrying the connection for ever
  (``broker_connection_max_retries=None``) and, on losing it, cancels the late-acked tasks it is
  running (``worker_cancel_long_running_tasks_on_connection_loss``): their messages can no longer
  be acknowledged and are delivered again once Redis is back, so one copy of a step runs, not
  two. A step that failed only because Redis was unreachable does not fail its run
  (:class:`workers.tasks.PipelineTask`).
- A worker that stops although nobody asked it to (no SIGTERM, SIGINT or SIGQUIT), e.g. after an error it cannot recover from while the broker was away, exits with
  status 1 instead of 0 (:func:`_exit_non_zero_unless_asked`), so ``restart: on-failure`` or a
  systemd ``Restart=on-failure`` brings it back.
- Only IDs travel in messages; tasks open their own sessions (:class:`Runtime`).

Errors: :class:`BrokerNotConfiguredError` when ``REDIS_URL`` is unset and a worker or beat is asked
for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_shutdown, worker_shutting_down
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.session import make_engine, make_sessionmaker
from services.digest.mailer import SmtpConfig
from services.locks import RedisReviewLock
from services.settings import Settings, get_settings

QUEUE = "living-review"
logger = logging.getLogger(__name__)


class BrokerNotConfiguredError(Exception):
    """REDIS_URL is not set: there is no broker for workers and beat."""


def make_celery(settings: Settings) -> Celery:
    """Build the Celery app for ``settings`` (the broker stays unset without REDIS_URL)."""
    celery = Celery("living_review", broker=settings.redis_url or "memory://",
                    include=["workers.tasks"])
    visibility = settings.celery_visibility_timeout
    celery.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        task_time_limit=int(visibility * 0.9),
        task_soft_time_limit=int(visibility * 0.8),
        broker_transport_options={
            "visibility_timeout": visibility,
            # sweep for unacked messages past the timeout every interval (not every 10th one)
            "unacked_restore_interval": max(5, min(60, visibility // 20)),
            "unacked_restore_throttle": 1,
            "global_keyprefix": settings.redis_key_prefix,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        enable_utc=True,
        timezone="UTC",
        beat_scheduler="workers.schedule:ProtocolScheduler",
        beat_max_loop_interval=10,
        worker_send_task_events=False,
    )
    return celery


def require_broker(settings: Settings) -> str:
    """The broker URL, or BrokerNotConfiguredError with what to do."""
    if not settings.redis_url:
        raise BrokerNotConfiguredError(
            "REDIS_URL is not set: workers and beat need a Redis broker "
            "(e.g. REDIS_URL=redis://127.0.0.1:6379/0); without it, run updates in-process "
            "with `living-review update`"
        )
    return settings.redis_url


@dataclass
class Runtime:
    """Per-process resources of the tasks: engine, sessions, Redis, review lock.

    Built lazily in each worker child (after the fork), never shared across processes.
    """

    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def session_factory(self) -> sessionmaker[Session]:
        return make_sessionmaker(self.engine)

    @cached_property
    def redis(self) -> Any:
        import redis

        url = require_broker(self.settings)
        return redis.Redis.from_url(url, socket_timeout=15, socket_connect_timeout=10,
                                    health_check_interval=30)

    @cached_property
    def lock(self) -> RedisReviewLock:
        return RedisReviewLock(self.redis, self.settings.redis_key_prefix)


def smtp_config(settings: Settings) -> SmtpConfig:
    """The SMTP settings as the digest sender takes them."""
    return SmtpConfig(
        host=settings.smtp_host, port=settings.smtp_port, mail_from=settings.mail_from,
        user=settings.smtp_user, password=settings.smtp_password,
        starttls=settings.smtp_starttls, use_ssl=settings.smtp_ssl, timeout=settings.smtp_timeout,
    )


_runtime: Runtime | None = None
_shutdown_asked: list[str] = []


@worker_shutting_down.connect
def _note_shutdown_asked(sig: str = "", **_: Any) -> None:
    """A signal (SIGTERM, SIGINT, SIGQUIT) asked this worker to stop: its exit status stands."""
    _shutdown_asked.append(sig or "signal")


@worker_shutdown.connect
def _exit_non_zero_unless_asked(sender: Any = None, **_: Any) -> None:
    """A worker that stops with status 0 although no signal asked it to exits with 1 instead."""
    if _shutdown_asked or sender is None or getattr(sender, "exitcode", None) not in (None, 0):
        return
    logger.critical("worker stopped without being asked to; exiting with status 1 so that its "
                    "supervisor restarts it")
    sender.exitcode = 1


@worker_process_init.connect
def _new_runtime(**_: Any) -> None:
    """Each worker child builds its own engine and Redis client (never the parent's, forked)."""
    global _runtime
    _runtime = Runtime(get_settings())


def configure(settings: Settings) -> None:
    """Make ``settings`` (not the environment) this process's broker and runtime.

    The web app calls it at start-up with its own settings, so the configuration it checks
    (``redis_url``) is the one the tasks it enqueues and their debouncer use.
    """
    global _runtime
    _runtime = Runtime(settings)
    app.conf.broker_url = require_broker(settings)


def runtime() -> Runtime:
    """The Runtime of this process: built by ``worker_process_init`` in a worker child, on first
    use elsewhere (beat, the CLI)."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime(get_settings())
    return _runtime


app = make_celery(get_settings())
