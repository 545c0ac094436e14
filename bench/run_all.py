"""Run every benchmark under bench/ in turn (`make bench`); each prints its own ratios.

Usage: .venv/bin/python bench/run_all.py [NAME ...]   (names without bench_ and .py)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ORDER = ["devnet", "network", "consensus", "p2p", "settlement", "openlora"]


def main(argv: list[str]) -> int:
    names = argv or ORDER
    failed = []
    for name in names:
        script = BENCH / f"bench_{name}.py"
        if not script.exists():
            print(f"== {name}: no {script.name}", flush=True)
            failed.append(name)
            continue
        print(f"\n== {name} ({script.name})", flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(script)], cwd=BENCH.parent)
        print(f"== {name}: exit {result.returncode} after {time.monotonic() - started:.0f} s",
              flush=True)
        if result.returncode:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
