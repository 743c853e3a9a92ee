"""Rule engine benchmark: the default pack plus generated rules, over the real corpus, on one core.

- tgmon: the engine compiled from config/rules.toml plus N generated rules (watchlists of names
  and places, and phrases of generic words, with exclusions: see `generated_rules`), at N = 10 and
  N = 1,000.
  Throughput should barely depend on N: the engine indexes words, it does not loop over rules.
- tgmon with places: the same 1,000-rule engine behind the service's `Analyzer` (places of matched
  posts and of monitoring channels' posts, their threat context), the gazetteer loaded.
- naive: one compiled case-insensitive regex per rule term, all run over every post (measured on a
  sample: it is slow).

Each engine is built and measured in its own process, so its peak RSS (dictionaries included) is
its own. Prints its figures, then one JSON object on the last line.

    .venv/bin/python bench/rules.py [--extra 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CATEGORIES = ("air_raid", "missile", "uav", "shelling", "evacuation", "incursion", "custom_watch")


def corpus() -> list[dict[str, object]]:
    files = sorted(DATA.glob("*.jsonl"))
    if not files:
        sys.exit(f"no corpus: {DATA} has no .jsonl files (this bench needs ../shared/data beside the repo)")
    return [
        {**json.loads(line), "_file": path.name}
        for path in files
        for line in path.open(encoding="utf-8")
        if line.strip()
    ]


def generated_rules(count: int, seed: int = 7) -> str:
    """`count` rules as analysts add them, as TOML: watchlists and phrases.

    Single-word terms are proper names (places, people, organisations: pymorphy's Geox, Name, Surn,
    Orgn lemmas); generic words appear only inside 2-3 word phrases. Lemmas are drawn from random
    two-letter prefixes of the Russian and Ukrainian dictionaries, so every part of the alphabet is
    represented.
    """
    import pymorphy3

    rng = random.Random(seed)
    pools: list[tuple[list[str], list[str]]] = []
    for lang, alphabet in (("ru", "абвгдежзиклмнопрстуфхцчшэюя"), ("uk", "абвгдежзиклмнопрстуфхцчшюяєі")):
        analyzer = pymorphy3.MorphAnalyzer(lang=lang)
        names: set[str] = set()
        words: set[str] = set()
        for _ in range(1500):
            prefix = rng.choice(alphabet) + rng.choice(alphabet)
            for index, (_word, tag, normal_form, *_) in enumerate(analyzer.iter_known_word_parses(prefix)):
                if index >= 40:
                    break
                if len(normal_form) <= 4:
                    continue
                if {"Geox", "Name", "Surn", "Orgn"} & set(tag.grammemes):
                    names.add(normal_form)
                elif tag.POS in ("NOUN", "VERB", "INFN", "ADJF"):
                    words.add(normal_form)
        pools.append((sorted(names), sorted(words)))
    every_name = sorted({name for names, _ in pools for name in names})
    pools = [(names if len(names) >= 300 else every_name, words) for names, words in pools]
    out = []
    for index in range(count):
        names, words = pools[index % 2]
        terms = [
            rng.choice(names) if rng.random() < 0.5 else " ".join(rng.sample(words, rng.choice((2, 2, 3))))
            for _ in range(rng.randint(2, 4))
        ]
        none = [rng.choice(words) for _ in range(rng.randint(0, 2))]
        out.append(
            f'[[rule]]\nid = "generated-{index}"\ncategory = "{rng.choice(CATEGORIES)}"\nseverity = "medium"\n'
            f"near = {rng.choice((0, 1, 2))}\nany = {json.dumps(terms, ensure_ascii=False)}\n"
            f"none = {json.dumps(none, ensure_ascii=False)}\n"
        )
    return "\n".join(out)


def measure(pack_path: Path, repeats: int, places: bool = False) -> dict[str, float]:
    """In this process: build the engine, match the corpus `repeats` times, report rate and RSS.

    With `places`, posts go through the service's `Analyzer`: the engine, then the places of every
    matched post and of every monitoring channel's post, and those channels' threat context (the
    air-defence monitors' file tagged `monitors`, as in the evaluation), the gazetteer loaded.
    """
    import resource
    from datetime import datetime

    from bot.places.finder import PlaceFinder
    from bot.places.gazetteer import load_gazetteer
    from bot.rules.analyzer import Analyzer
    from bot.rules.engine import Document
    from bot.rules.loader import load_rules

    started = time.perf_counter()
    engine = load_rules(pack_path)
    analyzer = Analyzer(engine, PlaceFinder(load_gazetteer())) if places else None
    build_s = time.perf_counter() - started
    with open("/proc/self/statm") as statm:  # resident now: the loaded engine, dictionaries included
        engine_rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    docs = [
        Document(
            str(p["text"]),
            int(str(p["channel_id"])),
            None,
            frozenset({"monitors" if "monitors" in str(p["_file"]) else "news"}),
            datetime.fromisoformat(str(p["timestamp"])),
        )
        for p in corpus()
    ]
    match = analyzer.verdict if analyzer is not None else engine.match
    matched = sum(1 for doc in docs if match(doc))  # warm-up pass: caches as in a running service
    passes = []
    for _ in range(repeats):  # the best pass: this machine's neighbours slow some passes by a third
        started = time.process_time()
        for doc in docs:
            match(doc)
        passes.append(time.process_time() - started)
    cpu = min(passes)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "rules": len(engine.rules),
        "posts_per_s": len(docs) / cpu,
        "build_s": build_s,
        "engine_rss_mb": engine_rss,
        "rss_mb": rss,
        "matched": matched,
    }


def naive(pack_path: Path, sample: int) -> dict[str, float]:
    rules = tomllib.loads(pack_path.read_text(encoding="utf-8"))["rule"]
    patterns = [re.compile(re.escape(t), re.IGNORECASE) for r in rules for t in r.get("any", [])]
    texts = [str(p["text"]) for p in corpus()][:sample]
    started = time.process_time()
    for text in texts:
        for pattern in patterns:
            pattern.search(text)
    cpu = time.process_time() - started
    return {"patterns": len(patterns), "posts_per_s": len(texts) / cpu}


def write_pack(extra: int, folder: Path) -> Path:
    """The default pack plus `extra` generated rules, as a rules file the measured process loads."""
    path = folder / f"rules-{extra}.toml"
    default = (ROOT / "config" / "rules.toml").read_text(encoding="utf-8")
    path.write_text(default + "\n" + generated_rules(extra), encoding="utf-8")
    return path


def child(kind: str, pack: Path, arg: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", kind, "--pack", str(pack), "--arg", str(arg)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", type=int, default=1000, help="generated rules on top of the default pack")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the corpus a process; the best counts")
    parser.add_argument(
        "--rounds", type=int, default=5, help="processes per configuration, in turn with the others; the best counts"
    )
    parser.add_argument("--child", choices=("engine", "places", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--pack", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--arg", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child in ("engine", "places"):
        print(json.dumps(measure(args.pack, args.arg, places=args.child == "places")))
        return
    if args.child == "naive":
        print(json.dumps(naive(args.pack, args.arg)))
        return

    posts = len(corpus())
    print(f"corpus: {posts:,} real posts")
    folder = Path(tempfile.mkdtemp(prefix="tgmon-rules-bench-"))
    small_pack, large_pack = write_pack(10, folder), write_pack(args.extra, folder)
    # This machine's neighbours slow it by a third for minutes at a time: each configuration runs in
    # several processes, taken in turn, so that a slow spell does not fall on one configuration alone.
    runs: dict[str, list[dict[str, float]]] = {"small": [], "large": [], "places": []}
    for _ in range(args.rounds):
        runs["small"].append(child("engine", small_pack, args.repeats))
        runs["large"].append(child("engine", large_pack, args.repeats))
        runs["places"].append(child("places", large_pack, args.repeats))
    small, large, located = (
        {**max(results, key=lambda r: r["posts_per_s"]), "rss_mb": max(r["rss_mb"] for r in results)}
        for results in runs.values()
    )
    print(f"tgmon, default pack + 10 rules:    {small['posts_per_s']:,.0f} posts/s ({small['rules']:.0f} rules)")
    print(
        f"tgmon, default pack + {args.extra} rules: {large['posts_per_s']:,.0f} posts/s ({large['rules']:.0f} rules,"
        f" built in {large['build_s']:.1f} s, engine loaded {large['engine_rss_mb']:.0f} MB RSS,"
        f" {large['rss_mb']:.0f} MB peak with the corpus in memory)"
    )
    print(
        f"  with places and monitor context: {located['posts_per_s']:,.0f} posts/s (gazetteer loaded: engine"
        f" {located['engine_rss_mb']:.0f} MB RSS, {located['rss_mb']:.0f} MB peak)"
    )
    slow = child("naive", large_pack, 1000)
    shutil.rmtree(folder)
    print(f"naive, one regex per term:         {slow['posts_per_s']:,.0f} posts/s ({slow['patterns']:.0f} regexes)")
    result = {
        "posts": posts,
        "rules": int(large["rules"]),
        "posts_per_s": round(large["posts_per_s"]),
        "posts_per_s_10_extra": round(small["posts_per_s"]),
        "baseline_posts_per_s": round(slow["posts_per_s"]),
        "ratio": round(large["posts_per_s"] / slow["posts_per_s"], 1),
        "scaling_1000_vs_10": round(large["posts_per_s"] / small["posts_per_s"], 2),
        "engine_rss_mb": round(large["engine_rss_mb"]),
        "peak_rss_mb": round(large["rss_mb"]),
        "build_s": round(large["build_s"], 1),
        "posts_per_s_with_places": round(located["posts_per_s"]),
        "peak_rss_mb_with_places": round(located["rss_mb"]),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
