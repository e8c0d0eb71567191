"""Celery configuration, CLI refusals without Redis, stable digest emails (no services needed)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from db.models import OutboxEmail
from services.digest import build_message, message_id
from services.settings import Settings
from workers.celery_app import make_celery

ROOT = Path(__file__).resolve().parents[3]


def test_late_acks_json_and_time_limit_below_visibility_timeout() -> None:
    conf = make_celery(Settings(redis_url="redis://x:6379/0", celery_visibility_timeout=600)).conf
    assert conf.task_acks_late is True and conf.task_reject_on_worker_lost is True
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.broker_transport_options["visibility_timeout"] == 600
    assert conf.task_time_limit < 600 and conf.task_soft_time_limit < conf.task_time_limit
    assert conf.worker_prefetch_multiplier == 1
    assert conf.beat_scheduler == "workers.schedule:ProtocolScheduler"


def test_a_lost_broker_cancels_running_late_acked_tasks_and_retries_for_ever() -> None:
    conf = make_celery(Settings(redis_url="redis://x:6379/0")).conf
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is True
    assert conf.broker_connection_retry is True and conf.broker_connection_max_retries is None


def test_only_an_unreachable_redis_counts_as_a_broker_outage() -> None:
    """What ``PipelineTask.on_failure`` does not settle the run for (real exception types, as
    kombu raises them when the chain's next message cannot be published)."""
    import sqlalchemy.exc
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError

    from workers.tasks import broker_lost

    def raised(exc: BaseException, cause: BaseException | None = None) -> BaseException:
        try:
            raise exc from cause
        except BaseException as caught:
            return caught

    refused = RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    assert broker_lost(raised(OperationalError(str(refused)), refused))
    assert broker_lost(raised(RuntimeError("while sending the next step"), raised(refused)))
    assert not broker_lost(raised(ValueError("bad record")))
    database = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed"))
    assert not broker_lost(raised(database))


def test_every_pipeline_task_is_registered() -> None:
    import workers.tasks  # noqa: F401  (registers the tasks)
    from workers.celery_app import app

    names = {n for n in app.tasks if n.startswith("living_review.")}
    assert {
        "living_review.start_update",
        "living_review.harvest",
        "living_review.recompute",
        "living_review.finish_update",
        "living_review.scheduled_update",
        "living_review.send_digests",
        "living_review.recompute_after_confirmations",
    } <= names


def test_worker_and_beat_say_they_need_redis(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "REDIS_URL": "",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
    }
    for command in ("worker", "beat"):
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1
        assert done.stderr.startswith("error: REDIS_URL is not set: workers and beat need")


def test_message_is_byte_identical_when_built_again() -> None:
    mid = message_id("ldh", 12, "Ana@Example.org", "example.org")
    assert mid == message_id("ldh", 12, "ana@example.org ", "example.org")
    assert mid != message_id("ldh", 13, "ana@example.org", "example.org")
    row = OutboxEmail(
        recipient="ana@example.org",
        subject="s → t",
        message_id=mid,
        body_text="text",
        body_html="<p>html <img src='cid:f@x'></p>",
        attachments=[
            {
                "cid": "f@x",
                "filename": "forest.png",
                "mime": "image/png",
                "data_b64": "iVBORw0KGgo=",
            }
        ],
        created_at=dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC),
    )
    first = build_message(row, "lr <d@example.org>").as_bytes()
    assert first == build_message(row, "lr <d@example.org>").as_bytes()
    assert b"Message-ID: " + mid.encode() in first and b"Content-ID: <f@x>" in first


# A fresh interpreter (other tests build apps of their own with make_celery) counts the Celery
# apps that importing the tasks, the app module and the CLI's worker entry point constructs.
ONE_APP = """
import json
import celery
import celery._state

built = []
original = celery.Celery.__init__


def counting_init(self, *args, **kwargs):
    built.append(args[0] if args else kwargs.get("main"))
    original(self, *args, **kwargs)


celery.Celery.__init__ = counting_init
import workers.tasks
import workers.celery_app
import services.cli.workers

app = workers.celery_app.app
ours = {n: t for n, t in app.tasks.items() if n.startswith("living_review.")}
ours_built = list(built)  # before current_app, whose first use builds Celery's own fallback
print(json.dumps({
    "built": ours_built,
    "task_app_is_app": [workers.tasks.send_digests.app is app, workers.tasks.harvest.app is app],
    "registered_apps_are_app": sorted({t.app is app for t in ours.values()}),
    "current_app_is_app": celery._state.get_current_app() is app,
}))
"""


def test_importing_the_tasks_builds_one_celery_app(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "REDIS_URL": "redis://127.0.0.1:6379/15",  # never contacted: only imports run
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
    }
    done = subprocess.run(
        [sys.executable, "-c", ONE_APP],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {
        "built": ["living_review"],
        "task_app_is_app": [True, True],
        "registered_apps_are_app": [True],
        "current_app_is_app": True,
    }
