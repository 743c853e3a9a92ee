"""Done-when: `tgmon replay` of the real corpus against a webhook that answers 503 to a random 30% of requests
delivers every alert of `alerts.jsonl` to it exactly once (by id), in order, and leaves nothing pending.

The process is the real one (`python -m bot replay`), so retries wait the dispatcher's real backoff
(0.5-1 s after a first failure, doubling after each further one): about half a second per alert on
average. Over the whole corpus (590 alerts) that is about five minutes, so this test replays the
first `POSTS` posts of `../shared/data/*.jsonl` (in the order `tgmon replay ../shared/data/*.jsonl`
reads them), 3,000 by default, which raise about 30 alerts. Set TGMON_TEST_REPLAY_POSTS=all (or a
number) in the environment to run it over more, up to the whole corpus.

The server's coin is seeded: deliveries go one at a time in a fixed order, so the run is repeatable.
With this seed, 15 of the first 45 requests fail and no alert fails more than twice in a row (about
15 s of backoff); an unlucky seed can fail one alert five times running, and wait 30 s for it alone.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.alerts.test_webhook import HookServer, Reply
from tests.helpers import REPO, read_jsonl

_WANTED = os.environ.get("TGMON_TEST_REPLAY_POSTS", "3000")  # read at import: the test environment is scrubbed
POSTS = None if _WANTED == "all" else int(_WANTED)
FAILURE_RATE = 0.3
SEED = 12


def corpus(shared_data: Path, out: Path) -> Path:
    """The first POSTS lines of the corpus files, in the order a shell glob passes them."""
    written = 0
    with out.open("wb") as sink:
        for path in sorted(shared_data.glob("*.jsonl")):
            with path.open("rb") as source:
                for line in source:
                    if POSTS is not None and written >= POSTS:
                        return out
                    if line.strip():
                        sink.write(line if line.endswith(b"\n") else line + b"\n")
                        written += 1
    return out


def tgmon(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_replay_delivers_every_alert_once_in_order_through_a_flaky_webhook(shared_data: Path, tmp_path: Path) -> None:
    rng = random.Random(SEED)

    def decide(body: dict[str, Any]) -> Reply:
        return (503, {}, b"try later") if rng.random() < FAILURE_RATE else (200, {}, b"ok")

    data_dir = tmp_path / "data"
    feed = corpus(shared_data, tmp_path / "corpus.jsonl")
    with HookServer(decide) as server:
        env = {
            **os.environ,
            "TGMON_NOTIFIERS": "jsonl",
            "TGMON_LOG_LEVEL": "warning",
            "TGMON_CONFIG_DIR": str(REPO / "config"),
            "ALERT_WEBHOOK_URL": server.url,
        }
        tgmon("replay", str(feed), "--data-dir", str(data_dir), "--no-progress", env=env, timeout=1800)
        stats = json.loads(tgmon("stats", "--json", "--data-dir", str(data_dir), env=env, timeout=120).stdout)

    alerts = read_jsonl(data_dir / "alerts.jsonl")
    assert len(alerts) >= 20  # the slice does raise alerts
    accepted = [body["id"] for body in server.accepted]
    assert len(accepted) == len(set(accepted)), "an alert was accepted twice"
    assert accepted == [a["id"] for a in alerts]  # every one, once, in alerts.jsonl order
    by_id = {a["id"]: a for a in alerts}
    for body in server.accepted:  # the body is the alerts.jsonl object (bar the per-delivery delay, if any)
        assert {k: v for k, v in body.items() if k != "delayed_s"} == {
            k: v for k, v in by_id[body["id"]].items() if k != "delayed_s"
        }
    assert server.requests > len(accepted)  # the 503s did happen, and were retried
    assert stats["pending_deliveries"] == 0
    assert stats["dead_letters"] == 0
    (webhook,) = [name for name in stats["deliveries"] if name.startswith("webhook:")]
    assert stats["deliveries"][webhook] == {"sent": len(alerts)}
