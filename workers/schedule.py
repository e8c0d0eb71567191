"""Celery beat's schedule, built from the reviews' protocols, with a single-beat guard.

The schedule is data: each review stored in the database contributes one entry, its protocol's
``[schedule] cron`` read in the protocol's ``timezone`` (:class:`ZonedCrontab`). The environment
variable ``UPDATE_SCHEDULE`` overrides it, either for all reviews (``"30 2 * * *"``) or per review
(``"ldh_resorption=*/10 * * * *;other=600"``; a bare number means every N seconds). A fixed entry
sends pending digests every few minutes, so a digest that failed to go out is retried.

Only one beat may schedule, or every update would be started twice. :class:`ProtocolScheduler`
therefore holds a Redis key (``living-review:beat:leader``) with a short TTL, refreshed on each
tick; a second beat finds the key taken, says so in its log and stands by, sending nothing, and
takes over only when the first one stops refreshing. Should two beats still send the same
update (a clock jump, a partitioned network), the per-review lock lets only one run.

Errors: :class:`ScheduleError` for an override that cannot be parsed (names the bad part).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import uuid
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.beat import Scheduler
from celery.schedules import BaseSchedule, crontab, schedule
from redis.exceptions import RedisError
from sqlalchemy import select

from db.models import Review

logger = logging.getLogger(__name__)

LEADER_KEY = "beat:leader"  # after the settings' redis_key_prefix
LEADER_TTL = 30
PROTOCOL_RELOAD_SECONDS = 60
DIGEST_SEND_SECONDS = 300


class ScheduleError(Exception):
    """A schedule (protocol cron or UPDATE_SCHEDULE override) that cannot be used."""


class ZonedCrontab(crontab):
    """A crontab read in its own time zone (a protocol's), whatever the app's time zone is."""

    def __init__(self, expression: str, zone: str) -> None:
        fields = expression.split()
        if len(fields) != 5:
            raise ScheduleError(f"cron {expression!r} must have 5 fields")
        try:
            self.zone = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ScheduleError(f"unknown time zone {zone!r}") from exc
        minute, hour, dom, month, dow = fields
        try:
            super().__init__(minute=minute, hour=hour, day_of_month=dom,
                             month_of_year=month, day_of_week=dow)
        except ValueError as exc:
            raise ScheduleError(f"cron {expression!r}: {exc}") from exc
        self.expression = expression

    @property
    def tz(self) -> dt.tzinfo:
        return self.zone

    def now(self) -> dt.datetime:
        return self.nowfun() if self.nowfun else dt.datetime.now(self.zone)

    def __repr__(self) -> str:
        return f"<ZonedCrontab {self.expression} {self.zone}>"


def parse_override(text: str | None) -> dict[str, str]:
    """``UPDATE_SCHEDULE`` as {slug or "*": cron or seconds}."""
    if not text or not text.strip():
        return {}
    result: dict[str, str] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        slug, sep, value = part.partition("=")
        if not sep:
            slug, value = "*", part
        if not value.strip():
            raise ScheduleError(f"UPDATE_SCHEDULE: no schedule after {slug.strip()!r}=")
        result[slug.strip()] = value.strip()
    return result


def make_schedule(value: str, zone: str) -> BaseSchedule:
    """A cron expression (5 fields, in ``zone``) or a number of seconds."""
    if value.replace(".", "", 1).isdigit():
        seconds = float(value)
        if seconds <= 0:
            raise ScheduleError(f"schedule interval must be positive, got {value!r}")
        return schedule(dt.timedelta(seconds=seconds))
    return ZonedCrontab(value, zone)


def build_schedule(
    reviews: list[tuple[int, str, dict[str, Any]]], override: str | None
) -> dict[str, dict[str, Any]]:
    """Beat entries for ``reviews`` given as (id, slug, protocol dict)."""
    overrides = parse_override(override)
    entries: dict[str, dict[str, Any]] = {}
    for review_id, slug, protocol in reviews:
        cfg = (protocol or {}).get("schedule") or {}
        zone = str(cfg.get("timezone") or "UTC")
        value = overrides.get(slug) or overrides.get("*") or str(cfg.get("cron") or "0 3 * * 1")
        entries[f"update:{slug}"] = {
            "task": "living_review.scheduled_update",
            "schedule": make_schedule(value, zone),
            "args": (review_id,),
        }
    entries["send-digests"] = {
        "task": "living_review.send_digests",
        "schedule": schedule(dt.timedelta(seconds=DIGEST_SEND_SECONDS)),
        "args": (),
    }
    return entries


class BeatLeadership:
    """The single-beat guard: a Redis key holding this beat's token, with a TTL."""

    def __init__(self, client: Any, token: str | None = None, ttl: int = LEADER_TTL,
                 prefix: str = "living-review:") -> None:
        self.key = f"{prefix}{LEADER_KEY}"
        self.client = client
        self.token = token or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.ttl = ttl
        self.leading = False
        self._said_standby = False

    def check(self) -> bool:
        """True when this beat may schedule (it holds or just took the key)."""
        if self.client.set(self.key, self.token, nx=True, ex=self.ttl):
            logger.warning("beat %s: holds the single-beat lock, scheduling", self.token)
            self.leading, self._said_standby = True, False
            return True
        holder = self.client.get(self.key)
        holder = holder.decode() if isinstance(holder, bytes) else holder
        if holder == self.token:
            self.client.expire(self.key, self.ttl)
            self.leading = True
            return True
        if not self._said_standby or self.leading:
            logger.warning("beat %s: another beat (%s) is scheduling; standing by, sending nothing",
                           self.token, holder)
            self._said_standby = True
        self.leading = False
        return False

    def release(self) -> None:
        """Give the key up at shutdown (if Redis is gone, it expires by itself)."""
        try:
            if self.client.get(self.key) in (self.token, self.token.encode()):
                self.client.delete(self.key)
        except RedisError as exc:
            logger.warning("beat: could not release the single-beat lock (%s); it expires", exc)


class ProtocolScheduler(Scheduler):
    """In-memory beat scheduler fed by the protocols, sending only while it leads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loaded_at = 0.0
        self.leadership: BeatLeadership | None = None
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        from workers.celery_app import runtime

        self.leadership = BeatLeadership(runtime().redis,
                                         prefix=runtime().settings.redis_key_prefix)
        self._reload()

    def _reload(self) -> None:
        from workers.celery_app import runtime

        rt = runtime()
        with rt.session_factory() as session:
            rows = session.execute(select(Review.id, Review.slug, Review.protocol)).all()
        entries = build_schedule([(r[0], r[1], r[2]) for r in rows], rt.settings.update_schedule)
        self.merge_inplace(entries)
        self._loaded_at = time.monotonic()
        logger.info("beat: %d review schedule(s) loaded", len(entries) - 1)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            leading = self.leadership is None or self.leadership.check()
        except RedisError as exc:
            logger.warning("beat: Redis unreachable (%s); retrying", exc)
            return 2.0
        if not leading:
            return float(min(self.max_interval, LEADER_TTL / 3))
        if time.monotonic() - self._loaded_at > PROTOCOL_RELOAD_SECONDS:
            self._reload()
        return float(min(super().tick(*args, **kwargs), LEADER_TTL / 3))

    def close(self) -> None:
        if self.leadership is not None:
            self.leadership.release()
        super().close()
