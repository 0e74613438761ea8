"""``python paused_cli.py STEP MARKER GO [--in-save] -- baldro-args...``: the ``baldro`` CLI in a real process that,
when the trainer is about to run step STEP+1, writes MARKER and waits (up to 120 s) until the file GO exists.

With ``--in-save`` it pauses instead in the middle of saving ``checkpoint-STEP``: after the weights are written,
before the optimizer state and ``trainer_state.json`` are (a kill there leaves an incomplete checkpoint).

Used by the run-folder tests to hold a run at a known point while another process races it or kills it."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path


def main() -> int:
    # as in a terminal: Ctrl-C raises KeyboardInterrupt. A process started in the background by a non-interactive
    # shell (nohup, `&`, some CI runners) inherits SIGINT ignored, and Python then leaves it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    step, marker, go = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    in_save = "--in-save" in sys.argv[: sys.argv.index("--")]
    argv = sys.argv[sys.argv.index("--") + 1:]

    import transformers

    from baldro.cli.main import main as baldro_main
    from baldro.training import trainer as trainer_mod

    def wait() -> None:
        marker.write_text("paused")
        deadline = time.monotonic() + 120
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    if in_save:
        save_optimizer = transformers.Trainer._save_optimizer_and_scheduler

        def paused_save(self, output_dir):
            if self.state.global_step == step:
                wait()
            return save_optimizer(self, output_dir)

        transformers.Trainer._save_optimizer_and_scheduler = paused_save
    else:
        def pause(self, args, state, control, **kwargs):
            if state.global_step == step:
                wait()

        trainer_mod._EpochCallback.on_step_begin = pause
    return baldro_main(argv)


if __name__ == "__main__":
    sys.exit(main())
