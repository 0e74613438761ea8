"""Whether a model's parameters are sharded by FSDP1, FSDP2 or DeepSpeed ZeRO-3 (then every forward is a collective
and no single process holds the whole model)."""

from __future__ import annotations

from torch import nn


def parameters_sharded(model: nn.Module) -> bool:
    """Whether ``model`` (as the Trainer wrapped it) holds sharded parameters — an FSDP1 unit, an FSDP2 module or a
    ZeRO-3 partitioned parameter anywhere in it. Each forward then runs collectives, so every process must run the
    same number of forwards."""
    try:
        from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel
    except ImportError:  # torch built without distributed
        return False
    for module in model.modules():
        if isinstance(module, FullyShardedDataParallel | FSDPModule):
            return True
    return any(hasattr(p, "ds_id") for p in model.parameters())
