"""Objectives: each reads the right slice of the right tap, they compose arithmetically, bad input is named."""
import pytest
import torch

from immersions.cpc.objectives import channel, layer, neuron, parse_objective


@pytest.fixture
def taps():
    generator = torch.Generator().manual_seed(0)
    return {"enc": torch.rand(2, 3, 4, 5, generator=generator), "ar": torch.rand(2, 3, 5, generator=generator)}


def test_layer_channel_and_neuron_read_their_slices(taps):
    enc, ar = taps["enc"], taps["ar"]
    torch.testing.assert_close(layer("enc")(taps), enc.mean(dim=(1, 2, 3)))
    torch.testing.assert_close(channel("enc", 2)(taps), enc[:, 2].mean(dim=(1, 2)))
    torch.testing.assert_close(channel("ar", 1)(taps), ar[:, 1].mean(dim=1))
    torch.testing.assert_close(neuron("enc", 1, 3)(taps), enc[:, 1, 3].mean(dim=1))
    torch.testing.assert_close(neuron("ar", 0)(taps), ar[:, 0].mean(dim=1))
    assert neuron("enc", 1, 3)(taps).shape == (2,)


def test_objectives_compose_like_numbers(taps):
    a, b, c = channel("enc", 0), neuron("ar", 2), layer("enc")
    combined = a + 2 * b - c * 0.5
    torch.testing.assert_close(combined(taps), a(taps) + 2 * b(taps) - 0.5 * c(taps))
    torch.testing.assert_close((-a)(taps), -a(taps))
    assert combined.taps == {"enc", "ar"}
    assert "channel enc:0" in combined.description and "neuron ar:2" in combined.description
    with pytest.raises(TypeError):
        a * "2"
    with pytest.raises(TypeError):
        a + 1.0


def test_bad_indices_and_missing_taps_are_named(taps):
    with pytest.raises(ValueError, match="channel 3 is out of range for tap 'enc' with 3 channels"):
        channel("enc", 3)(taps)
    with pytest.raises(ValueError, match="'enc' has 4 frequency positions"):
        neuron("enc", 0)(taps)
    with pytest.raises(ValueError, match="'enc' has 4 frequency positions"):
        neuron("enc", 0, 4)(taps)
    with pytest.raises(ValueError, match="'ar' has no frequency axis"):
        neuron("ar", 0, 1)(taps)
    with pytest.raises(ValueError, match=r"needs taps \['other'\]"):
        layer("other")(taps)


def test_parse_objective_reads_the_cli_forms(taps):
    assert parse_objective("enc").description == "layer enc"
    torch.testing.assert_close(parse_objective("enc:2")(taps), channel("enc", 2)(taps))
    torch.testing.assert_close(parse_objective("enc:1:3")(taps), neuron("enc", 1, 3)(taps))
    for bad in ("", ":1", "enc:1:2:3", "enc:x"):
        with pytest.raises(ValueError, match="objective"):
            parse_objective(bad)
