"""Ingest benchmark: `tgmon replay` over the real corpus against a naive peer, in the same run.

The corpus is every post of ../shared/data, repeated (timestamps shifted, so each copy is a new post)
until there are at least --posts of them. Each contender runs as its own process on the same file:

- tgmon: `python -m bot replay FILE` end to end: parse, rules, archive, alert outbox, alerts.jsonl,
  full-text index caught up. Wall time of the whole process, start-up included.
- naive: json.loads per line, one compiled regex per keyword of config/rules.toml run over every post,
  one INSERT per post in autocommit, no full-text index.

Peak memory (resident, sampled every 0.1 s: tgmon and its rules process together) is read at two
corpus sizes: flat memory means it does not grow with the number of posts. Prints its figures, then
one JSON object on the last line.

    .venv/bin/python bench/ingest.py [--posts 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

NAIVE = r"""
import json, re, sqlite3, sys, tomllib
rules = tomllib.load(open(sys.argv[3], "rb"))["rule"]
patterns = [re.compile(re.escape(t), re.IGNORECASE) for r in rules for t in r.get("any", [])]
db = sqlite3.connect(sys.argv[2], isolation_level=None)
db.execute("PRAGMA journal_mode = WAL")
db.execute("PRAGMA synchronous = NORMAL")
db.execute("CREATE TABLE posts (channel_id INTEGER, message_id INTEGER, date TEXT, text TEXT,"
           " UNIQUE (channel_id, message_id))")
db.execute("CREATE TABLE alerts (channel_id INTEGER, message_id INTEGER, keyword TEXT)")
for number, line in enumerate(open(sys.argv[1], encoding="utf-8")):
    post = json.loads(line)
    key = (post["channel_id"], post.get("message_id") or number)
    db.execute("INSERT OR IGNORE INTO posts VALUES (?, ?, ?, ?)", (*key, post["timestamp"], post["text"]))
    for pattern in patterns:
        if pattern.search(post["text"]):
            db.execute("INSERT INTO alerts VALUES (?, ?, ?)", (*key, pattern.pattern))
print(len(patterns))
"""


def build_corpus(target: int, out: Path) -> int:
    """The real posts, repeated with shifted timestamps until there are `target` of them."""
    files = sorted(DATA.glob("*.jsonl"))
    if not files:
        sys.exit(f"no corpus: {DATA} has no .jsonl files (this bench needs ../shared/data beside the repo)")
    posts = [json.loads(line) for path in files for line in path.open(encoding="utf-8") if line.strip()]
    written = 0
    with out.open("w", encoding="utf-8") as sink:
        copy = 0
        while written < target:
            for post in posts:
                shifted = dict(post)
                when = datetime.fromisoformat(post["timestamp"]) + timedelta(days=1000 * copy)
                shifted["timestamp"] = when.isoformat()
                if shifted.get("message_id"):
                    shifted["message_id"] = post["message_id"] + 10_000_000 * copy
                sink.write(json.dumps(shifted, ensure_ascii=False) + "\n")
                written += 1
            copy += 1
    return written


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants (tgmon's rules process is a child), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    family, grown = {pid}, True
    while grown:
        grown = False
        for child, parent in parents.items():
            if parent in family and child not in family:
                family.add(child)
                grown = True
    total = 0
    for member in family:
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB, the process and its children together) and stdout of one process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.1)
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-2000:]}")
    return elapsed, peak, stdout


def tgmon(corpus: Path, work: Path) -> tuple[float, float, dict[str, int]]:
    data_dir = work / "tgmon"
    shutil.rmtree(data_dir, ignore_errors=True)
    env = {
        **os.environ,
        "TGMON_NOTIFIERS": "jsonl",
        "TGMON_LOG_LEVEL": "warning",
        "TGMON_CONFIG_DIR": str(ROOT / "config"),
    }
    cmd = [sys.executable, "-m", "bot", "replay", str(corpus), "--data-dir", str(data_dir), "--no-progress"]
    elapsed, rss, _ = run(cmd, env)
    stats = [sys.executable, "-m", "bot", "stats", "--json", "--data-dir", str(data_dir)]
    _, _, out = run(stats, env)
    return elapsed, rss, json.loads(out)


def naive(corpus: Path, work: Path) -> tuple[float, int]:
    db = work / "naive.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    cmd = [sys.executable, "-c", NAIVE, str(corpus), str(db), str(ROOT / "config" / "rules.toml")]
    elapsed, _, out = run(cmd, dict(os.environ))
    return elapsed, int(out.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000, help="corpus size (default 100,000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tgmon-bench-") as tmp:
        work = Path(tmp)
        small, large = work / "corpus.jsonl", work / "corpus-2x.jsonl"
        count = build_corpus(args.posts, small)
        count_2x = build_corpus(2 * args.posts, large)
        print(f"corpus: {count:,} posts ({small.stat().st_size / 1e6:.0f} MB), and {count_2x:,} for the memory check")

        naive_s, keywords = naive(small, work)
        print(f"naive peer: {count / naive_s:,.0f} posts/s ({naive_s:.1f} s, {keywords} keyword regexes, no FTS)")
        ours_s, rss, stats = tgmon(small, work)
        print(f"tgmon:      {count / ours_s:,.0f} posts/s ({ours_s:.1f} s incl. start-up, peak RSS {rss:.0f} MB)")
        print(
            f"            stored {stats['posts']:,} posts, {stats['alerts']:,} alerts, search lag {stats['search_lag']}"
        )
        if stats["posts"] != count:
            sys.exit(f"tgmon stored {stats['posts']} posts, expected {count}")
        ours_2x_s, rss_2x, stats_2x = tgmon(large, work)
        print(
            f"tgmon 2x:   {count_2x / ours_2x_s:,.0f} posts/s, peak RSS {rss_2x:.0f} MB ({stats_2x['posts']:,} posts)"
        )

    result = {
        "posts": count,
        "posts_per_s": round(count / ours_s),
        "baseline_posts_per_s": round(count / naive_s),
        "ratio": round(naive_s / ours_s, 2),
        "peak_rss_mb": round(rss),
        "peak_rss_mb_2x_posts": round(rss_2x),
        "alerts": stats["alerts"],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
