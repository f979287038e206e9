"""Run every benchmark of bench/ and print ratios against references on the same input.

python bench/run.py            # all
python bench/run.py video hpss # some (module names bench_<name>.py)
"""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names):
    mods = sorted(HERE.glob("bench_*.py"))
    if names:
        mods = [m for m in mods if m.stem[len("bench_") :] in names]
    for path in mods:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        print(f"== {path.stem}")
        mod.run()
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
