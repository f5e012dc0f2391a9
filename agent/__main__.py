"""``dianne-agent``: entry point of the headless agent process.

The agent itself (discovery over zeroconf, deployment, tensors over ZeroMQ) is built in its own
issue; until then this entry point exists so the console script is installed, and says plainly
that it cannot serve yet.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("dianne-agent: the agent is not implemented yet in this version; "
          "use the local engine through 'dianne eval' / 'dianne run'.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
