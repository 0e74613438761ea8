"""A few unlearning steps of a tiny Llama under one engine; writes the step losses, the saved model and whether the
lean LM head was used into OUT. Run as one process, or under ``torchrun --nproc_per_node 2`` (gloo, CPU).

Usage: ``python scaleout_step.py OUT ENGINE AGGREGATOR:SCOPE:BATCH:ACCUMULATION ...`` (several runs in one launch);
ENGINE is ``none`` (one process, or DDP under torchrun: accelerate's choice), ``fsdp1``, ``fsdp2`` or
``fsdp2-sharded`` (accelerate's default ``SHARDED_STATE_DICT``, which must be refused before training), ``zero2`` /
``zero3`` (DeepSpeed, where installed: on CPU its own CPU accelerator over gloo, :func:`force_deepspeed_on_cpu`).
``SCALEOUT_DEVICE=cuda`` runs the same on GPUs (``benchmarks/scaleout_gpu_check.py``).

FSDP on CPU: accelerate keeps a multi-CPU run on DDP even when given an FSDP plugin (its ``AcceleratorState`` only
turns multi-GPU-like runs into FSDP). :func:`force_fsdp_on_cpu` is the test harness: it lets the plugin that
``TrainingArguments(fsdp=..., fsdp_config=...)`` builds take effect on gloo (and drops the ``device_id=cpu`` FSDP1
rejects, and the CPU offload of the saved state dict, which crashes on a CPU model), so the run goes through the same Trainer → accelerate → torch FSDP code a GPU run does.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiny import ListDataset, PadTokenizer, args, qa_items, tiny_llama  # noqa: E402

DEVICE = os.environ.get("SCALEOUT_DEVICE", "cpu")  # "cuda": the same runs on GPUs, one per process
AGGREGATORS = {"dv": {"name": "dv", "beta": 0.5}, "group": {"name": "group", "ratio": 0.5}}


def force_fsdp_on_cpu() -> None:
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType

    original = AcceleratorState.__init__

    def init(self, *a, fsdp_plugin=None, **kw):  # noqa: ANN001, ANN002, ANN003
        original(self, *a, fsdp_plugin=fsdp_plugin, **kw)
        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = fsdp_plugin
            PartialState._shared_state["distributed_type"] = DistributedType.FSDP

    AcceleratorState.__init__ = init

    from torch.distributed.fsdp import FullyShardedDataParallel

    fsdp1_init = FullyShardedDataParallel.__init__

    def fsdp1(self, module, *a, device_id=None, **kw):  # noqa: ANN001, ANN002, ANN003
        # the wrapped units get device_id cpu:0, which FSDP1 compares with its CPU compute device "cpu" and rejects
        fsdp1_init(self, module, *a, device_id=torch.device("cpu") if torch.device(device_id or "cpu").type == "cpu" else device_id, **kw)

    FullyShardedDataParallel.__init__ = fsdp1

    import torch.distributed.fsdp as fsdp_api

    full_config = fsdp_api.FullStateDictConfig

    def full_state_dict_on_cpu(offload_to_cpu: bool = False, rank0_only: bool = False) -> object:
        # accelerate asks FSDP1 to gather the saved state dict with offload_to_cpu=True, which on a CPU model clones
        # views of freed storage (segmentation fault); on CPU there is nothing to offload
        return full_config(offload_to_cpu=False, rank0_only=rank0_only)

    fsdp_api.FullStateDictConfig = full_state_dict_on_cpu


def force_deepspeed_on_cpu() -> None:
    """DeepSpeed (≥ 0.15) runs on CPU with its own CPU accelerator over gloo, but accelerate finds no distributed
    backend for a CPU run that is not ``use_cpu`` (and ``use_cpu`` turns DeepSpeed off): give it gloo."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    original = PartialState._prepare_backend

    def prepare(self, cpu=False, sagemaker_dp=False, backend=None):  # noqa: ANN001
        found = original(self, cpu, sagemaker_dp, backend)
        if found[0] is None and os.environ.get("ACCELERATE_USE_DEEPSPEED") == "true" and "LOCAL_RANK" in os.environ:
            return "gloo", DistributedType.MULTI_CPU
        return found

    PartialState._prepare_backend = prepare


class HeadInputs:
    """Every input shape the LM head module sees (a full-logit forward shows up as a [B, T>1, H] input)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.shapes: list[list[int]] = []
        model.get_output_embeddings().register_forward_pre_hook(lambda _m, a: self.shapes.append(list(a[0].shape)))


def run(out: Path, engine: str, aggregator: str, scope: str, batch: int, accumulation: int, steps: int) -> None:
    from baldro.training.trainer import UnlearnTrainer

    extra: dict = {"use_cpu": DEVICE == "cpu" and not engine.startswith("zero")}  # DeepSpeed: its own CPU accelerator
    if engine.startswith("zero"):  # DeepSpeed (GPU machines: benchmarks/scaleout_gpu_check.py)
        zero = {"stage": int(engine[4]), "stage3_gather_16bit_weights_on_model_save": True}
        extra["deepspeed"] = {"zero_optimization": zero, "zero_allow_untested_optimizer": True,
                              "train_micro_batch_size_per_gpu": "auto",
                              "gradient_accumulation_steps": "auto", "gradient_clipping": "auto"}
    if engine.startswith("fsdp"):
        sharded = engine.endswith("-sharded")  # accelerate's default state dict: the run must be refused
        config = {"version": int(engine[4]), "state_dict_type": "SHARDED_STATE_DICT" if sharded else "FULL_STATE_DICT",
                  "transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"]}
        if engine == "fsdp1":
            config["sync_module_states"] = False  # "not supported on cpu"; every rank builds the same model (seed)
        extra.update(fsdp=True, fsdp_config=config)
    model = tiny_llama(seed=3)
    heads = HeadInputs(model)
    trainer = UnlearnTrainer(
        model=model,
        args=args(out / "run", per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation,
                  max_steps=steps, learning_rate=2e-2, logging_steps=1, logging_strategy="steps", **extra),
        forget_dataset=ListDataset(qa_items(8 * steps, seed=4)),
        retain_dataset=ListDataset(qa_items(12, seed=5)),
        processing_class=PadTokenizer(),
        objective={"name": "npo", "beta": 0.1},
        aggregator=AGGREGATORS[aggregator],
        retain="nll",
        dro_scope=scope,
    )
    trainer.train()
    trainer.save_model(str(out / "model"))
    if trainer.args.process_index == 0:
        history = trainer.state.log_history
        (out / "result.json").write_text(json.dumps({
            "losses": [row["loss"] for row in history if "loss" in row],
            "retain": [row["retain/loss"] for row in history if "retain/loss" in row],
            "forget": [row["forget/loss"] for row in history if "forget/loss" in row],
            "head_inputs": heads.shapes,
            "wrapped": type(trainer.model_wrapped).__name__,
            "processes": trainer.args.world_size,
        }))


def main(out: str, engine: str, *runs: str, steps: int = 3) -> None:
    """Each of ``runs`` is ``AGGREGATOR:SCOPE:BATCH:ACCUMULATION``, written to ``OUT/AGGREGATOR-SCOPE``."""
    if engine.startswith("fsdp") and DEVICE == "cpu":
        force_fsdp_on_cpu()
    if engine.startswith("zero") and DEVICE == "cpu":
        force_deepspeed_on_cpu()
    for spec in runs:
        aggregator, scope, batch, accumulation = spec.split(":")
        run(Path(out) / f"{aggregator}-{scope}", engine, aggregator, scope, int(batch), int(accumulation), steps)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():  # leave together, the wrappers freed first (baldro.cli.main)
        import gc

        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
    if engine.startswith("zero"):  # everything is written; DeepSpeed's threads can abort the interpreter's teardown
        sys.stdout.flush()  # ("terminate called without an active exception"): leave without it
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main(*sys.argv[1:])
