"""Writes the README's demo figures from the committed demo report.

The block between the README's demo markers is
``reiqa_jax.demo.report.readme_block`` of ``benchmarks/demo_report.json``
(one ``reiqa demo`` run, with its date and machine) and
``benchmarks/demo_seeds.json`` (the spread over training seeds,
``benchmarks/demo_seeds.py``). ``tests/test_demo_readme.py`` fails when the
README and these files disagree.

  python benchmarks/demo_readme.py            # rewrite the block
  python benchmarks/demo_readme.py --check    # exit 1 if the README is stale
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"


def main() -> int:
    from reiqa_jax.demo.report import README_BEGIN, README_END, load_committed, readme_block

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    block = readme_block(*load_committed(HERE))
    text = README.read_text()
    if README_BEGIN not in text or README_END not in text:
        print(f"demo_readme: the README has no {README_BEGIN} ... {README_END} markers",
              file=sys.stderr)
        return 2
    head, rest = text.split(README_BEGIN, 1)
    new = head + README_BEGIN + "\n" + block + "\n" + README_END + rest.split(README_END, 1)[1]
    if args.check:
        if new != text:
            print("demo_readme: README.md's demo block differs from the committed report",
                  file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
