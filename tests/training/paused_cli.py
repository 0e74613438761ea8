"""``python paused_cli.py STEP MARKER GO -- baldro-args...``: the ``baldro`` CLI in a real process that, when the
trainer is about to run step STEP+1, writes MARKER and waits (up to 120 s) until the file GO exists.

Used by the run-folder tests to hold a run at a known point while another process races it or kills it."""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main() -> int:
    step, marker, go = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    argv = sys.argv[sys.argv.index("--") + 1:]

    from baldro.cli.main import main as baldro_main
    from baldro.training import trainer as trainer_mod

    def pause(self, args, state, control, **kwargs):
        if state.global_step == step:
            marker.write_text("paused")
            deadline = time.monotonic() + 120
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.05)

    trainer_mod._EpochCallback.on_step_begin = pause
    return baldro_main(argv)


if __name__ == "__main__":
    sys.exit(main())
