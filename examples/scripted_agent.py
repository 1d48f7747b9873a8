#!/usr/bin/env python3
"""A scripted stand-in for `codex exec "..."`: it reads the task and really edits the repository.

Usage: scripted_agent.py TASK    (run in the repository to edit; TASK as "add a multiply function with tests")
Understands "add a <name> function" for multiply/divide/power; prints what it does like an agent would.

From the directory that holds examples/ (the agent edits its repository: give it a copy):

    cp -r examples/sample-repo repo
    (cd repo && python ../examples/scripted_agent.py "add a multiply function with tests")
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

OPERATIONS = {
    "multiply": ("a * b", "(3, 4) == 12"),
    "divide": ("a / b", "(8, 2) == 4"),
    "power": ("a ** b", "(2, 5) == 32"),
}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 2
    prompt = " ".join(sys.argv[1:])
    match = re.search(r"add an? (\w+) function", prompt)
    if not match or match.group(1) not in OPERATIONS:
        print(f"agent: I do not know how to do: {prompt!r}", file=sys.stderr)
        return 1
    name = match.group(1)
    expr, check = OPERATIONS[name]
    root = Path.cwd()
    instructions = root / "AGENTS.md"
    if instructions.exists():
        print(f"agent: read {instructions.name} ({len(instructions.read_text().splitlines())} lines)")
    module = root / "calc.py"
    source = module.read_text()
    if f"def {name}(" in source:
        print(f"agent: calc.{name} already exists; nothing to do")
        return 0
    module.write_text(
        source.rstrip("\n") + f"\n\n\ndef {name}(a: float, b: float) -> float:\n    return {expr}\n"
    )
    print(f"agent: edited calc.py: added {name}()")
    test = root / "tests" / f"test_{name}.py"
    test.write_text(f"from calc import {name}\n\n\ndef test_{name}() -> None:\n    assert {name}{check}\n")
    print(f"agent: wrote {test.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
