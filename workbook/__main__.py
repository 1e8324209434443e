"""``python -m workbook record [--from N]``: regenerate checkpoints and notebook outputs."""

from __future__ import annotations

import argparse
import sys

from workbook.checkpoints import record
from workbook.parts import all_parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbook")
    commands = parser.add_subparsers(dest="command", required=True)
    record_parser = commands.add_parser(
        "record", help="execute the notebooks in order and regenerate every checkpoint"
    )
    record_parser.add_argument("--from", dest="first", type=int, default=1, metavar="N")
    args = parser.parse_args(argv)
    parts = len(all_parts())
    if not 1 <= args.first <= parts:
        print(f"python -m workbook: --from must be between 1 and {parts}", file=sys.stderr)
        return 2
    record(args.first)
    return 0


if __name__ == "__main__":
    sys.exit(main())
