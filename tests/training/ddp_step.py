"""One global-scope DRO step, run under ``torchrun`` (gloo, CPU) or as one process; writes Δθ to ``<out>/delta.safetensors``.

Usage: ``python ddp_step.py OUT AGGREGATOR BATCH [SCOPE]`` (one process) or ``torchrun --nproc_per_node 2 ddp_step.py ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiny import ListDataset, PadTokenizer, args, params, qa_items, tiny_llama  # noqa: E402

from baldro.training.trainer import UnlearnTrainer  # noqa: E402

AGGREGATORS = {"dv": {"name": "dv", "beta": 0.5}, "group": {"name": "group", "ratio": 0.5}}


def main(out: str, aggregator: str, batch: int, scope: str = "global") -> None:
    model = tiny_llama(seed=3)
    before = params(model)
    trainer = UnlearnTrainer(
        model=model,
        args=args(Path(out) / "run", per_device_train_batch_size=batch, optim="sgd", learning_rate=1.0,
                  lr_scheduler_type="constant", max_grad_norm=0.0, weight_decay=0.0),
        forget_dataset=ListDataset(qa_items(8, seed=4)),
        processing_class=PadTokenizer(),
        objective="ga",
        aggregator=AGGREGATORS[aggregator],
        retain=None,
        dro_scope=scope,
    )
    trainer.train()
    if trainer.args.process_index == 0:
        after = params(model)
        save_file({k: (after[k] - before[k]).contiguous() for k in before}, str(Path(out) / "delta.safetensors"))
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():  # leave together: a rank exiting while the others still use
        dist.barrier()  # the gloo group can abort at teardown ("terminate called without an active exception")
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:5])
