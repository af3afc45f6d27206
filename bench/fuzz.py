#!/usr/bin/env python3
"""The big fuzz run: generated valid specs built for every installed target, and mutated
specs through `mlcompile validate` / `build`, counting what the CI-sized tests sample.

    python bench/fuzz.py valid   [-n 10000] [--repeat-every 1] [--shard 0/1] [--start 0] [--seed 0]
    python bench/fuzz.py mutated [-n 10000] [--seed 0]

valid:   each spec of tests/reliability/specgen.py's strategy is compiled in-process for each
         profile of tests/toy_target/profiles on its own; every profile must build or be
         refused with located error diagnostics, never raise. Every K-th spec
         (--repeat-every) is built a second time and must give the same bytes.
mutated: tests/test_fuzz.py's mutations of the toy spec and of generated specs (with any of
         the toy profiles) and its raw documents (random bytes, truncations, YAML fragments, alias bombs) through
         `mlcompile validate`, and mutated specs through `build` for the local target; every
         run must end in exit 0 or 2, never a traceback, and exit 2 with a located error.

Prints progress and a summary (inputs tried, outcomes per profile, failures, worst time per
input, peak RSS of the process); --jsonl appends one line per input, so that a run stopped
early still says exactly how far it got. Failing inputs are written to --failures (default:
a temporary folder). --shard i/n builds every n-th spec of the same stream, for running
shards in parallel. Needs pytest and hypothesis (the project's dev extras); writes nothing
outside the temporary folder unless --jsonl or --failures say so."""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "reliability"), str(ROOT / "tests")]

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class Tally:
    def __init__(self, args: argparse.Namespace, failures: Path):
        self.args, self.failures = args, failures
        self.tried = 0
        self.failed = 0
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.times: list[float] = []
        self.started = time.perf_counter()
        self.jsonl = open(args.jsonl, "a", encoding="utf-8") if args.jsonl else None

    def record(self, index: int, seconds: float, outcomes: dict[str, str], problem: str | None, raw: bytes) -> None:
        self.tried += 1
        self.times.append(seconds)
        self.outcomes.update(f"{name}: {what}" for name, what in outcomes.items())
        if problem:
            self.failed += 1
            path = self.failures / f"failure-{index:05d}.yaml"
            path.write_bytes(raw)
            print(f"FAILURE #{index} ({path}): {problem[:2000]}", flush=True)
        if self.jsonl:
            self.jsonl.write(json.dumps({"index": index, "seconds": round(seconds, 4), "outcomes": outcomes, "problem": problem}, sort_keys=True) + "\n")
            self.jsonl.flush()
        if self.tried % self.args.progress == 0:
            self.summary(final=False)

    def summary(self, *, final: bool) -> None:
        elapsed = time.perf_counter() - self.started
        worst = max(self.times, default=0.0)
        median = statistics.median(self.times) if self.times else 0.0
        print(
            f"{'DONE' if final else 'progress'}: {self.tried} inputs, {self.failed} failures, {elapsed:.0f} s "
            f"({self.tried / max(elapsed, 1e-9):.2f}/s), median {median:.3f} s, worst {worst:.2f} s, peak RSS {peak_rss_mib():.0f} MiB",
            flush=True,
        )
        if final:
            for key, count in sorted(self.outcomes.items()):
                print(f"  {key}: {count}")


def run_valid(args: argparse.Namespace, work: Path, tally: Tally) -> None:
    import specgen

    profiles = specgen.load_profile_set(work / "targets")
    shard, shards = (int(part) for part in args.shard.split("/"))
    spec = work / "mlcompile.yaml"
    counter = iter(range(10**9))
    # one build first: the SDK imports, then out of the collector's way (as a multi-spec build does)
    warm = specgen.build_once_for_warmup(work, profiles)
    print(f"warm-up build: {warm:.1f} s", flush=True)
    gc.collect()
    gc.freeze()

    @settings(max_examples=args.count, deadline=None, database=None, derandomize=args.seed is None, suppress_health_check=list(HealthCheck))
    @given(data=specgen.valid_specs())
    def each(data: dict) -> None:
        index = next(counter)
        if index % shards != shard or index < args.start:
            return
        raw = specgen.dump(data)
        spec.write_bytes(raw)
        started = time.perf_counter()
        first = specgen.build_once(spec, profiles)
        problem = next((f"{o.profile}: {o.problem}" for o in first if o.problem), None)
        if problem is None and tally.tried % args.repeat_every == 0:  # this process's count: shards see every n-th index
            again = specgen.build_once(spec, profiles)
            for one, two in zip(first, again):
                if specgen.digest(one.files) != specgen.digest(two.files) or one.diagnostics != two.diagnostics:
                    problem = f"{one.profile}: a second build differs: " + ", ".join(
                        sorted(p for p in {*one.files, *two.files} if one.files.get(p) != two.files.get(p))
                    )
                    break
        outcomes = {o.profile: "failed" if o.problem else "built" if o.built else "refused" for o in first}
        tally.record(index, time.perf_counter() - started, outcomes, problem, raw)

    run = each if args.seed is None else seed(args.seed)(each)
    run()


def run_mutated(args: argparse.Namespace, work: Path, tally: Tally) -> None:
    import test_fuzz

    (work / "spec").mkdir()
    (work / "profiles").mkdir()
    (work / "spec" / "valid.yaml").write_text(test_fuzz.SPEC_TEXT)
    for name, text in test_fuzz.PROFILE_TEXTS.items():
        (work / "profiles" / f"{name}.yaml").write_text(text)
    spec = work / "spec" / "mlcompile.yaml"
    counter = iter(range(10**9))
    import specgen

    kinds = st.sampled_from(["validate", "generated", "raw", "build"])

    @settings(max_examples=args.count, deadline=None, database=None, derandomize=args.seed is None, suppress_health_check=list(HealthCheck))
    @given(kind=kinds, data=st.data())
    def each(kind: str, data: st.DataObject) -> None:
        index = next(counter)
        if kind == "raw":
            raw = data.draw(test_fuzz.raw_documents())
        elif kind == "generated":  # a generated spec (specgen.py), mutated
            raw = test_fuzz.dump(data.draw(test_fuzz.mutated(data.draw(specgen.valid_specs()))))
        else:
            raw = test_fuzz.dump(data.draw(test_fuzz.mutated(test_fuzz.SPEC_DATA)))
        spec.write_bytes(raw)
        started = time.perf_counter()
        if kind == "build":
            args_ = ["build", str(spec), "--target", str(work / "profiles" / "local.yaml"), "--out", str(work / "out"), "--git-commit", "none"]
        else:
            targets = data.draw(test_fuzz.TARGET_CHOICES)
            args_ = ["validate", str(spec)] + [a for t in targets for a in ("--target", str(work / "profiles" / f"{t}.yaml"))]
        result = test_fuzz.RUNNER.invoke(test_fuzz.main, args_, catch_exceptions=True)
        seconds = time.perf_counter() - started
        try:
            test_fuzz.assert_clean(result, raw)
            problem = None
        except AssertionError as exc:
            problem = str(exc)
        tally.record(index, seconds, {kind: f"exit {result.exit_code}"}, problem, raw)

    run = each if args.seed is None else seed(args.seed)(each)
    run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["valid", "mutated"])
    parser.add_argument("-n", "--count", type=int, default=10_000, help="inputs to generate (default 10,000)")
    parser.add_argument("--repeat-every", type=int, default=1, help="build every K-th valid spec twice and compare the bytes (default: every spec)")
    parser.add_argument("--shard", default="0/1", help="i/n: build only every n-th spec of the stream, starting at the i-th")
    parser.add_argument("--start", type=int, default=0, help="skip the specs before this index of the stream (to finish a shard's tail in parallel)")
    parser.add_argument("--seed", type=int, default=None, help="a hypothesis seed (default: derandomized, the same stream every run)")
    parser.add_argument("--progress", type=int, default=100, help="print a progress line every N inputs")
    parser.add_argument("--jsonl", help="append one JSON line per input to this file")
    parser.add_argument("--failures", type=Path, help="folder for failing inputs (default: inside the temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mlcompile-fuzz-") as scratch:
        work = Path(scratch)
        failures = args.failures or work / "failures"
        failures.mkdir(parents=True, exist_ok=True)
        tally = Tally(args, failures)
        print(f"{args.mode}: {args.count} inputs, shard {args.shard}, PYTHONHASHSEED={os.environ.get('PYTHONHASHSEED', 'random')}", flush=True)
        (run_valid if args.mode == "valid" else run_mutated)(args, work, tally)
        tally.summary(final=True)
        if tally.failed and args.failures is None:
            print("(failing inputs were in the temporary folder; pass --failures DIR to keep them)")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
