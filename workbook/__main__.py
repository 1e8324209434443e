"""``python -m workbook``: record the notebooks, and the small checks the Makefile asks for.

- ``record [--from N]``: regenerate checkpoints and notebook outputs (``make checkpoints``)
- ``check-determinism``: would recording again change a stored notebook?
- ``app-dir PART``: where part PART's application lives (``make serve PART=5``)
- ``browser``: the Chrome/Chromium/Edge for the site check (``make test``)
"""

from __future__ import annotations

import argparse
import sys

from workbook.browser import find_browser
from workbook.checkpoints import determinism_problems, record
from workbook.parts import REPO_ROOT, all_parts, checkpoint_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbook")
    commands = parser.add_subparsers(dest="command", required=True)
    record_parser = commands.add_parser(
        "record", help="execute the notebooks in order and regenerate every checkpoint"
    )
    record_parser.add_argument("--from", dest="first", type=int, default=1, metavar="N")
    commands.add_parser(
        "check-determinism",
        help="find stored outputs that would change if recorded again",
    )
    app_dir_parser = commands.add_parser(
        "app-dir", help="print the folder of part PART's application, relative to the repository"
    )
    # A string, so a wrong PART gets one line from us rather than argparse's usage text.
    app_dir_parser.add_argument("part", metavar="PART")
    commands.add_parser("browser", help="print the Chrome/Chromium/Edge the site check uses")
    args = parser.parse_args(argv)
    if args.command == "browser":
        found = find_browser()
        if found:
            print(found)
        return 0 if found else 1
    parts = all_parts()
    if args.command == "app-dir":
        number = int(args.part) if args.part.isdigit() else 0
        if not 1 <= number <= len(parts):
            print(
                f"PART must be a part number, 1 to {len(parts)}; got {args.part!r}", file=sys.stderr
            )
            return 2
        folder = checkpoint_dir(number)
        assert folder is not None
        print(folder.relative_to(REPO_ROOT).as_posix())
        return 0
    if args.command == "check-determinism":
        problems = [problem for part in parts for problem in determinism_problems(part.notebook)]
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    if not 1 <= args.first <= len(parts):
        print(f"python -m workbook: --from must be between 1 and {len(parts)}", file=sys.stderr)
        return 2
    record(args.first)
    return 0


if __name__ == "__main__":
    sys.exit(main())
