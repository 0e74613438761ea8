"""A run whose model would not be saved in full is refused before training; logged metrics pool over processes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from baldro.errors import ConfigError
from baldro.training.sharding import check_full_save, full_save_problem, parameters_sharded, pooled_means


def test_fsdp_saves_in_full_only_with_a_full_state_dict():
    assert full_save_problem() is None
    assert full_save_problem("StateDictType.FULL_STATE_DICT") is None
    problem = full_save_problem("StateDictType.SHARDED_STATE_DICT")
    assert problem is not None and "SHARDED_STATE_DICT" in problem and "state_dict_type: FULL_STATE_DICT" in problem


@pytest.mark.parametrize(("zero", "refused"), [
    ({"stage": 2}, False),
    ({"stage": 3}, True),
    ({"stage": 3, "stage3_gather_16bit_weights_on_model_save": False}, True),
    ({"stage": 3, "stage3_gather_16bit_weights_on_model_save": True}, False),
    ({"stage": 3, "gather_16bit_weights_on_model_save": "true"}, False),
])
def test_zero3_saves_in_full_only_when_it_gathers_the_weights(zero, refused):
    problem = full_save_problem(deepspeed_config={"zero_optimization": zero})
    assert (problem is not None) == refused
    if refused:
        assert "stage3_gather_16bit_weights_on_model_save: true" in problem


def test_check_full_save_reads_the_trainers_engine_settings():
    def trainer(fsdp_type=None, ds_config=None):
        state = SimpleNamespace(fsdp_plugin=SimpleNamespace(state_dict_type=fsdp_type))
        return SimpleNamespace(accelerator=SimpleNamespace(state=state), is_fsdp_enabled=fsdp_type is not None,
                               is_deepspeed_enabled=ds_config is not None,
                               args=SimpleNamespace(hf_deepspeed_config=SimpleNamespace(config=ds_config)))

    check_full_save(trainer())
    check_full_save(trainer("StateDictType.FULL_STATE_DICT"))
    with pytest.raises(ConfigError, match="writes no Hugging Face weights"):
        check_full_save(trainer("StateDictType.SHARDED_STATE_DICT"))
    with pytest.raises(ConfigError, match="ZeRO-3"):
        check_full_save(trainer(ds_config={"zero_optimization": {"stage": 3}}))


def test_pooled_means_weight_each_value():
    assert pooled_means({"a": [1.0, 3.0], "b": []}) == {"a": 2.0}
    # token-weighted: a micro-batch of 3 retain tokens with mean 1 and one of 1 token with mean 5 → 8 / 4
    assert pooled_means({"r": [1.0, 5.0]}, {"r": [3.0, 1.0]}) == {"r": 2.0}


def test_an_unwrapped_model_is_not_sharded():
    from torch import nn

    assert not parameters_sharded(nn.Linear(2, 2))


def test_an_fsdp2_module_is_sharded_and_curves_are_refused_on_it(tmp_path):
    """One gloo process is enough for fully_shard; the curve callback then stops the run before the first step."""
    import socket

    import torch.distributed as dist
    from torch import nn
    from torch.distributed.fsdp import fully_shard

    from baldro.evaluation.trajectory import TrajectoryCallback

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
        assert not parameters_sharded(model)
        fully_shard(model)
        assert parameters_sharded(model)
        callback = TrajectoryCallback.__new__(TrajectoryCallback)  # the check runs before anything the callback holds
        state = SimpleNamespace(is_world_process_zero=True, global_step=0)
        with pytest.raises(ConfigError, match="eval_every: .* with FSDP or ZeRO-3 the weights are sharded"):
            callback.on_train_begin(SimpleNamespace(output_dir=str(tmp_path)), state, None, model=model)
    finally:
        dist.destroy_process_group()
