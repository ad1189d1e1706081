"""Print the README's set-up block and its two commands, verbatim, as a bash script.

The block is the first ```bash fence under the heading "## The two commands"; CI runs exactly
these lines, so the README and CI cannot drift apart.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def readme_block(readme: Path) -> str:
    text = readme.read_text(encoding="utf-8")
    section = re.search(r"^## The two commands\n(.*?)(?=^## )", text, flags=re.M | re.S)
    if section is None:
        raise SystemExit(f"{readme}: no '## The two commands' section")
    block = re.search(r"^```bash\n(.*?)^```", section.group(1), flags=re.M | re.S)
    if block is None:
        raise SystemExit(f"{readme}: no ```bash block under '## The two commands'")
    return block.group(1)


if __name__ == "__main__":
    sys.stdout.write(readme_block(Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")))
