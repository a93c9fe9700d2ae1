"""Run every benchmarks/bench_*.py module and print its section."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback

import benchmarks
from benchmarks.harness import format_section


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("topics", nargs="*", help="only these bench_<topic> modules")
    parser.add_argument("--quick", action="store_true", help="fewer operations and repeats (smoke run)")
    args = parser.parse_args(argv)
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    if args.topics:
        names = [n for n in names if n.removeprefix("bench_") in args.topics]
    failed = 0
    for name in names:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            print(format_section(module.run(args.quick)), flush=True)
        except Exception:
            failed += 1
            print(f"== {name} FAILED ==", flush=True)
            traceback.print_exc()
        print(flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
