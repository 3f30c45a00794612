"""CPC model: shapes per the published tables, strict causality, receptive fields, tracing, gradients."""
import math
from dataclasses import replace

import pytest
import torch
import torch.fx
from torch import nn

from immersions.cpc.config import CONFIGS, CPCConfig, get_config
from immersions.cpc.model import CPC

LEAN = CONFIGS["lean"]
SEED = CONFIGS["seed"]

# Frequency size after every encoder conv, from the published kernels: valid convs shrink by k - 1,
# the two pools halve (rounding up): 216 -3+1 -> 214 /2 -> 107, -25+1 -> 83, ...
PUBLISHED_FREQS = [107, 83, 81, 79, 77, 63, 61, 59, 29, 15, 13, 11, 9, 5, 3, 1]


def _capture_taps(model: CPC, audio: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of every tap plus the scaleogram, z and c for one forward pass."""
    modules = dict(model.named_modules())
    taps, handles = {}, []
    for name in ["scaleogram"] + model.tap_names():
        handles.append(modules[name].register_forward_hook(
            lambda _m, _i, out, name=name: taps.__setitem__(name, out.detach())))
    try:
        z, c = model(audio)
    finally:
        for handle in handles:
            handle.remove()
    taps["z"], taps["c"] = z.detach(), c.detach()
    return taps


def _frames_per_step(name: str) -> int:
    """Scaleogram frames per time step of a tap (pools of 2 in encoder blocks 0 and 4, AR blocks 2, 5)."""
    if name == "scaleogram":
        return 1
    if name.startswith("encoder"):
        block = int(name.split(".")[2])
        return 2 if block < 4 else 4
    if name == "z":
        return 4
    if name == "c":
        return 16
    block = int(name.split(".")[2])
    return 4 * (1 if block < 2 else 2 if block < 5 else 4)


@pytest.mark.parametrize("config, batch", [(LEAN, 2), (SEED, 1)])
def test_shapes_follow_the_published_tables(config, batch):
    model = CPC(config).eval()
    seconds_frames = 4 * config.sample_rate // config.hop
    assert seconds_frames == 172
    with torch.no_grad():
        taps = _capture_taps(model, torch.randn(batch, 4 * config.sample_rate))
    assert taps["scaleogram"].shape == (batch, 2, 216, 172)
    encoder_taps = [n for n in model.tap_names() if n.startswith("encoder")]
    assert len(encoder_taps) == 16
    for name, freq, spec in zip(encoder_taps, PUBLISHED_FREQS, [s for s in config.encoder for _ in (0, 1)]):
        assert taps[name].shape == (batch, spec.channels, freq, math.ceil(172 / _frames_per_step(name)))
    ar_taps = [n for n in model.tap_names() if n.startswith("ar")]
    assert len(ar_taps) == 9
    for name, spec in zip(ar_taps, config.ar):
        assert taps[name].shape == (batch, spec.channels, math.ceil(172 / _frames_per_step(name)))
    assert taps["z"].shape == (batch, 43, config.encoder[-1].channels)
    assert taps["c"].shape == (batch, 11, config.ar[-1].channels)
    assert len(model.predictors) == 16
    assert all(p.weight.shape == (config.encoder[-1].channels, config.ar[-1].channels) for p in model.predictors)


def test_seed_dimensions_and_lean_checkpoint_size():
    seed = CPC(SEED)
    assert seed.embedding_size == 512 and seed.context_size == 256
    lean = CPC(LEAN)
    size = sum(t.numel() * t.element_size() for t in lean.state_dict().values())
    assert size <= 10 * 2 ** 20
    assert [s.conv1 for s in LEAN.encoder] == [s.conv1 for s in SEED.encoder]
    assert [(s.kernel, s.pool) for s in LEAN.ar] == [(s.kernel, s.pool) for s in SEED.ar]


def test_changing_input_after_t_never_changes_outputs_before_t():
    model = CPC(LEAN).eval()
    hop = LEAN.hop
    generator = torch.Generator().manual_seed(5)
    audio = 0.1 * torch.randn(1, 96 * hop, generator=generator)
    cut = 53 * hop + 300
    changed = audio.clone()
    changed[0, cut] += 5.0  # an impulse
    changed[0, cut + 1:] += 0.2 * torch.randn(96 * hop - cut - 1, generator=generator)
    with torch.no_grad():
        before, after = _capture_taps(model, audio), _capture_taps(model, changed)
    first_frame = cut // hop  # the first frame whose window reaches the cut
    for name, value in before.items():
        time_axis = 1 if name in ("z", "c") else -1
        safe = first_frame // _frames_per_step(name)
        kept = value.narrow(time_axis, 0, safe)
        assert torch.equal(kept, after[name].narrow(time_axis, 0, safe)), name
    for name in ("scaleogram", "z", "c"):
        assert not torch.equal(before[name], after[name]), name


def _dependence(module: nn.Module, inputs: torch.Tensor, axis: int, output_step: int, out_axis: int) -> list[int]:
    """Input steps whose large perturbation changes output step ``output_step`` (batched, eval mode)."""
    length = inputs.shape[axis]
    generator = torch.Generator().manual_seed(6)
    batch = inputs.repeat(length, *[1] * (inputs.dim() - 1))
    for step in range(length):
        batch[step].select(axis - 1, step).add_(50 * torch.randn(batch[step].select(axis - 1, step).shape,
                                                                 generator=generator))
    with torch.no_grad():
        base = module(inputs).select(out_axis, output_step)
        out = module(batch).select(out_axis, output_step)
    changed = (out - base).flatten(1).abs().amax(dim=1) > 1e-5
    return torch.nonzero(changed).flatten().tolist()


def test_receptive_fields_are_exact():
    model = CPC(LEAN).eval()
    rf = model.receptive_field()
    assert (rf.encoder_frames, rf.frames_per_step, rf.context_steps, rf.context_stride) == (22, 4, 46, 4)
    assert rf.context_frames == 22 + 45 * 4
    generator = torch.Generator().manual_seed(7)
    z = torch.randn(1, 64, model.embedding_size, generator=generator)
    j = 14  # last seen z step 4 j + 3 = 59
    assert _dependence(model.ar, z, axis=1, output_step=j, out_axis=1) == list(range(59 - 45, 60))
    scaleogram = torch.randn(1, 2, 216, 48, generator=generator)
    i = 10  # last seen frame 4 i + 3 = 43
    assert _dependence(model.encoder, scaleogram, axis=3, output_step=i, out_axis=1) == list(range(43 - 21, 44))


def test_clip_samples_gives_n_contexts_and_a_full_receptive_field():
    model = CPC(LEAN).eval()
    samples = model.clip_samples(3)
    with torch.no_grad():
        z, c = model(torch.randn(2, samples))
    assert z.shape[1] == 4 * 3 + LEAN.prediction_gap + LEAN.prediction_steps
    model.loss(z, c, n_context=3)
    with pytest.raises(ValueError, match="n_context"):
        model.loss(z, c, n_context=4)

    full = model.clip_samples(1, full_receptive_field=True)
    rf = model.receptive_field()
    per_context = rf.context_stride * rf.frames_per_step * rf.hop  # audio per context step
    used = full // per_context - (LEAN.prediction_gap + LEAN.prediction_steps) // rf.context_stride - 1
    end = (used + 1) * per_context  # c_used has seen samples < end
    assert 0 <= end - rf.context_samples < per_context  # the whole window fits, with less than a step to spare
    generator = torch.Generator().manual_seed(8)
    audio = 0.1 * torch.randn(1, full + per_context, generator=generator)
    with torch.no_grad():
        c_long = model(audio)[1]
        c_full = model(audio[:, per_context:])[1]
    assert torch.allclose(c_full[:, used], c_long[:, used + 1], atol=1e-6)  # earlier audio is out of reach


def test_forward_is_traceable_and_taps_are_named_modules():
    model = CPC(LEAN).eval()
    traced = torch.fx.symbolic_trace(model)
    targets = {node.target for node in traced.graph.nodes if node.op == "call_module"}
    assert set(model.tap_names()) <= targets
    audio = torch.randn(1, 40 * LEAN.hop)
    with torch.no_grad():
        z, c = model(audio)
        tz, tc = traced(audio)
    assert torch.equal(z, tz) and torch.equal(c, tc)


def test_gradient_reaches_the_waveform_through_the_whole_model():
    model = CPC(LEAN).train()
    audio = torch.zeros(2, model.clip_samples(1)).requires_grad_(True)
    with torch.no_grad():
        audio[:, ::97] = 0.3
    z, c = model(audio)
    loss, _ = model.loss(z, c)
    loss.backward()
    assert torch.isfinite(audio.grad).all() and audio.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.predictors.parameters())


def test_other_bin_counts_finish_with_a_frequency_pool():
    config = replace(LEAN, n_bins=240, fmin=20.0)
    model = CPC(config).eval()
    with torch.no_grad():
        z, _ = model(torch.randn(1, 32 * config.hop))
    assert z.shape == (1, 8, model.embedding_size)
    assert isinstance(model.encoder.freq_pool, nn.MaxPool2d)


def test_invalid_configs_raise():
    with pytest.raises(TypeError, match="CPCConfig"):
        CPC("seed")
    with pytest.raises(ValueError, match="unknown CPC config"):
        get_config("huge")
    with pytest.raises(ValueError, match="Nyquist"):
        CPCConfig(name="x", n_bins=260)
    with pytest.raises(ValueError, match="no frequency bins"):
        CPC(replace(LEAN, n_bins=120, fmin=320.0))


@pytest.mark.gpu
def test_cuda_matches_cpu_and_autocast_keeps_the_front_end_in_float32():
    model = CPC(LEAN).eval()
    audio = torch.randn(2, model.clip_samples(1), generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        z_cpu, c_cpu = model(audio)
        gpu = model.to("cuda")
        z_gpu, c_gpu = gpu(audio.cuda())
        with torch.autocast("cuda", dtype=torch.float16):
            scaleogram = gpu.scaleogram(audio.cuda())
            z_amp, _ = gpu(audio.cuda())
    assert torch.allclose(z_gpu.cpu(), z_cpu, atol=1e-3, rtol=1e-3)
    assert torch.allclose(c_gpu.cpu(), c_cpu, atol=1e-3, rtol=1e-3)
    assert scaleogram.dtype == torch.float32
    assert torch.isfinite(z_amp).all()
