"""CPC training: the loss falls on learnable data, resuming is exact, two gloo ranks stay identical."""
import json
import socket

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.multiprocessing as mp

from immersions.cpc.checkpoint import (config_from_dict, config_to_json, export_model, load_checkpoint,
                                       load_pretrained, model_from_checkpoint, pretrained_names)
from immersions.cpc.config import get_config
from immersions.cpc.model import CPC
from immersions.cpc.train import TrainConfig, learning_rate, train
from immersions.render.cli import main

TINY = {"base": "lean", "name": "tiny", "sample_rate": 8000, "hop": 32, "n_bins": 24, "fmin": 100.0,
        "bins_per_octave": 12, "prediction_steps": 2, "prediction_gap": 1,
        "encoder": [{"channels": 4, "conv1": [3, 3], "pool": 2, "conv2": [1, 3]},
                    {"channels": 8, "conv1": [3, 3], "pool": 1, "conv2": [1, 3]}],
        "ar": [{"channels": 8, "kernel": 3, "pool": 1}, {"channels": 8, "kernel": 1, "pool": 2}]}


def tiny_model() -> CPC:
    """The TINY config's model with seeded random weights."""
    base = json.loads(config_to_json(get_config("lean")))
    values = {k: v for k, v in TINY.items() if k != "base"}
    torch.manual_seed(0)
    return CPC(config_from_dict({**base, **values}))



@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """Eight files of tones gliding slowly, each in its own register: the future is predictable."""
    root = tmp_path_factory.mktemp("tiny")
    rate, seconds = 8000, 1.5
    t = np.arange(int(rate * seconds)) / rate
    for index in range(8):
        base = 200.0 * 2 ** (index / 4)
        phase = 2 * np.pi * np.cumsum(base * (1 + 0.2 * np.sin(2 * np.pi * 0.7 * t))) / rate
        sf.write(root / f"tone{index}.wav", (0.5 * np.sin(phase)).astype(np.float32), rate)
    config_path = root / "tiny.json"
    config_path.write_text(json.dumps(TINY))
    return root, config_path


def _config(data, out_dir, **overrides) -> TrainConfig:
    values = dict(data=str(data), out_dir=str(out_dir), steps=6, batch_size=6, lr=3e-3, warmup_steps=2,
                  n_context=4, checkpoint_every=3, validation_clips=6, seed=0)
    return TrainConfig(**{**values, **overrides})


def test_learning_rate_warms_up_then_decays():
    config = TrainConfig(data="x", out_dir="y", steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    rates = [learning_rate(s, config) for s in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(rates[:10], rates[1:10]))
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))
    assert rates[-1] == pytest.approx(0.1, abs=0.01)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="amp"):
        TrainConfig(data="x", out_dir="y", amp="fp8")
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(data="x", out_dir="y", steps=0)


def test_loss_decreases_on_learnable_data(tiny_data, tmp_path):
    data, model_config = tiny_data
    result = train(_config(data, tmp_path, steps=40, checkpoint_every=40, warmup_steps=5), model_config)
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 40
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8])
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "best.pt").is_file()
    exported = export_model(tmp_path / "best.pt", tmp_path / "shipped.pt", corpus="tones")
    assert exported.stat().st_size < (tmp_path / "best.pt").stat().st_size   # no optimiser state
    assert json.loads(load_checkpoint(exported)["metadata"]) == {"corpus": "tones"}
    reloaded = model_from_checkpoint(tmp_path / "last.pt")
    for name, tensor in result.model.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[name], tensor)
    assert not reloaded.training


def test_batches_grouped_by_a_manifest_column(tiny_data, tmp_path):
    data, model_config = tiny_data
    manifest = tmp_path / "labelled.csv"
    manifest.write_text("path,composer,piece,register\n" + "".join(
        f"{data / f'tone{i}.wav'},c,p{i},{'low' if i < 4 else 'high'}\n" for i in range(8)))
    result = train(_config(manifest, tmp_path / "run", steps=3, batch_by="register"), model_config)
    assert result.step == 3 and np.isfinite(result.last_loss)
    with pytest.raises(ValueError, match="group_by='register'"):
        train(_config(data, tmp_path / "plain", steps=1, batch_by="register"), model_config)


def test_resume_continues_exactly(tiny_data, tmp_path):
    data, model_config = tiny_data
    straight = train(_config(data, tmp_path / "straight"), model_config)
    first = train(_config(data, tmp_path / "resumed"), model_config, stop_after=3)
    assert first.step == 3 and load_checkpoint(tmp_path / "resumed" / "last.pt")["step"] == 3
    resumed = train(_config(data, tmp_path / "resumed"), model_config)
    assert resumed.step == 6 and len(resumed.history) == 3
    for name, tensor in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], tensor)
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in straight.history[3:]])
    logged = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in logged] == [1, 2, 3, 4, 5, 6]
    train(_config(data, tmp_path / "resumed"), model_config, resume=False, stop_after=2)
    logged = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in logged] == [1, 2]


def test_fine_tuning_starts_from_the_given_weights(tiny_data, tmp_path):
    data, model_config = tiny_data
    train(_config(data, tmp_path / "first", steps=3), model_config)
    source = tmp_path / "first" / "last.pt"
    start = model_from_checkpoint(source)
    # lr 0: the parameters stay where the run started, so they show which weights it started from
    tuned = train(_config(data, tmp_path / "tuned", steps=1, lr=0.0, init_from=str(source)), "lean")
    fresh = train(_config(data, tmp_path / "fresh", steps=1, lr=0.0), model_config)
    assert tuned.model.config == start.config   # the architecture comes from the checkpoint, not "lean"
    for name, tensor in start.named_parameters():
        torch.testing.assert_close(dict(tuned.model.named_parameters())[name], tensor, rtol=0, atol=0)
    assert not torch.equal(fresh.model.encoder.blocks[0].conv1.weight, start.encoder.blocks[0].conv1.weight)
    assert load_checkpoint(tmp_path / "tuned" / "last.pt")["step"] == 1   # a new schedule from step 0
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        train(_config(data, tmp_path / "missing", steps=1, init_from="no-such-model"), model_config)


def _rank(rank: int, world_size: int, port: int, data: str, model_config: str, out_dir: str) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    result = train(_config(data, out_dir, steps=4, checkpoint_every=2, batch_size=4), model_config)
    torch.save(result.model.state_dict(), f"{out_dir}/rank{rank}.pt")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_ranks_end_identical(tiny_data, tmp_path):
    data, model_config = tiny_data
    mp.spawn(_rank, args=(2, _free_port(), str(data), str(model_config), str(tmp_path)), nprocs=2, join=True)
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for name, tensor in states[0].items():
        torch.testing.assert_close(states[1][name], tensor, rtol=0, atol=0)
    checkpoint = load_checkpoint(tmp_path / "last.pt")
    assert checkpoint["step"] == 4
    for name, tensor in states[0].items():
        torch.testing.assert_close(checkpoint["model"][name], tensor)
    initial = model_from_checkpoint(tmp_path / "last.pt")   # trained: differs from a fresh model of the seed
    torch.manual_seed(0)
    fresh = type(initial)(initial.config)
    assert not torch.equal(fresh.encoder.blocks[0].conv1.weight, initial.encoder.blocks[0].conv1.weight)


def test_cli_trains_and_reports(tiny_data, tmp_path, capsys):
    data, model_config = tiny_data
    status = main(["train", str(data), str(tmp_path), "--model", str(model_config), "--steps", "2",
                   "--batch-size", "4", "--n-context", "4", "--validation-clips", "4", "--warmup-steps", "1"])
    assert status == 0
    assert "step 2" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2


def test_unknown_pretrained_name_is_an_error():
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        load_pretrained("no-such-model")


@pytest.mark.skipif("lean" not in pretrained_names(), reason="no shipped lean checkpoint")
def test_shipped_lean_model_loads_and_runs():
    model = load_pretrained("lean")
    assert model.config.name == "lean" and not model.training
    with torch.no_grad():
        z, c = model(0.1 * torch.randn(1, model.clip_samples(1)))
    assert torch.isfinite(c).all() and c.shape[-1] == model.context_size
