"""Benchmarks that print their figures: `make bench` runs `python -m reviews_dev.bench`.

A benchmark is a function in a module of this package whose name ends in `_bench`, registered
with `@benchmark(...)`. `main()` imports every such module, runs every registered benchmark
(or the ones named with `--only`), and ends with one summary line. Each benchmark prints its
own figures and returns its targets; main prints them with PASS or FAIL beside each.

Benchmarks are not tests: timings depend on the machine and on what else it is doing. The exit
status is 0 whatever the targets say, unless `--strict` is given (then 1 if any target fails).

    python -m reviews_dev.bench --list
    python -m reviews_dev.bench --only timeliness --repeat 5
    make bench BENCH_ARGS="--only timeliness --timeliness-rows 200000"
"""
from __future__ import annotations

import argparse
import gc
import importlib
import pkgutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    """One promise a benchmark checks, e.g. what="(a) under 2 s", measured="0.61 s"."""

    what: str
    measured: str
    passed: bool


@dataclass(frozen=True)
class Benchmark:
    name: str
    help: str
    run: Callable[[argparse.Namespace], list[Target]]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None


REGISTRY: dict[str, Benchmark] = {}


def benchmark(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None] | None = None):
    """Register `run(options) -> list[Target]` under `name` (decorator)."""

    def register(run: Callable[[argparse.Namespace], list[Target]]):
        if name in REGISTRY and REGISTRY[name].run is not run:
            raise ValueError(f"benchmark {name!r} is registered twice")
        REGISTRY[name] = Benchmark(name, help, run, add_arguments)
        return run

    return register


def discover() -> dict[str, Benchmark]:
    """Import every `*_bench` module of this package, so their benchmarks register themselves."""
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name.endswith("_bench"):
            importlib.import_module(f"{__name__}.{module.name}")
    return REGISTRY


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """One call's wall time, with the garbage collector run before and kept off during (as timeit)."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result
    finally:
        if enabled:
            gc.enable()


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """(fastest wall time in seconds over `repeat` calls, the last call's result)."""
    return interleaved(repeat, {"fn": fn})["fn"]


def interleaved(repeat: int, fns: dict[str, Callable[[], Any]]) -> dict[str, tuple[float, Any]]:
    """Time several functions in alternating rounds; per name, (fastest time, last result).

    Alternating keeps figures that are compared with each other fair on a machine whose load
    changes while the benchmark runs: each gets the same spread of quiet and busy moments.
    """
    best = {name: float("inf") for name in fns}
    results: dict[str, Any] = {name: None for name in fns}
    for _ in range(max(1, repeat)):
        for name, fn in fns.items():
            results[name] = None  # the previous result is freed here, outside the timed call
            elapsed, results[name] = _timed(fn)
            best[name] = min(best[name], elapsed)
    return {name: (best[name], results[name]) for name in fns}


def say(line: str = "") -> None:
    print(line, flush=True)


def print_targets(targets: Sequence[Target]) -> None:
    width = max((len(t.what) for t in targets), default=0)
    say("  targets:")
    for t in targets:
        say(f"    {t.what:<{width}}  {t.measured:>10}  {'PASS' if t.passed else 'FAIL'}")


def _parser(benchmarks: dict[str, Benchmark]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reviews_dev.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list the benchmarks and stop")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this benchmark (repeatable)")
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds; the fastest counts (default 7)")
    parser.add_argument("--seed", type=int, default=2024, help="seed for synthetic data (default 2024)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any target fails")
    for b in benchmarks.values():
        if b.add_arguments:
            b.add_arguments(parser.add_argument_group(f"{b.name} benchmark"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    benchmarks = discover()
    options = _parser(benchmarks).parse_args(argv)
    if options.list:
        for b in benchmarks.values():
            say(f"{b.name}: {b.help}")
        return 0
    unknown = sorted(set(options.only or ()) - set(benchmarks))
    if unknown:
        say(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(benchmarks)}")
        return 2
    chosen = [b for b in benchmarks.values() if not options.only or b.name in options.only]
    results: list[tuple[str, list[Target]]] = []
    for b in chosen:
        say(f"== {b.name}: {b.help}")
        targets = b.run(options)
        print_targets(targets)
        results.append((b.name, targets))
        say()
    passed = sum(t.passed for _, ts in results for t in ts)
    total = sum(len(ts) for _, ts in results)
    per = "; ".join(f"{name} {sum(t.passed for t in ts)}/{len(ts)}" for name, ts in results)
    verdict = "all targets met" if passed == total else f"{total - passed} target(s) missed"
    say(f"bench summary: {passed}/{total} targets passed ({per}): {verdict}")
    return 1 if options.strict and passed < total else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
