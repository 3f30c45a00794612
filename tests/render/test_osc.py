"""OSC control over real UDP on 127.0.0.1: messages change the plan, bad ones are logged and change nothing."""
import json
import logging
import socket
import threading

import pytest

from immersions.cpc.checkpoint import config_to_json, save_checkpoint
from immersions.cpc.loop_control import LoopControl
from immersions.cpc.objectives import channel
from immersions.cpc.optimize import OptimizeSettings
from immersions.render.cli import main

pytest.importorskip("pythonosc")
from pythonosc.udp_client import SimpleUDPClient  # noqa: E402

from immersions.render.osc import OscControl  # noqa: E402
from tests.cpc.test_train import tiny_model  # noqa: E402
from tests.render.test_live import _wait_for  # noqa: E402

SETTINGS = OptimizeSettings(steps=3, lr=5e-3, seed=2)


def _refuse_tap_9(objective):
    if "ar.blocks.9.relu" in objective.taps:
        raise ValueError("unknown taps ['ar.blocks.9.relu']")


def test_messages_change_the_plan():
    control = LoopControl(channel("ar.blocks.1.relu", 1), SETTINGS)
    with OscControl(control, 0, check=_refuse_tap_9) as osc:
        host, port = osc.address
        assert host == "127.0.0.1"                                   # this machine only, by default
        client = SimpleUDPClient(host, port)
        client.send_message("/objective", ["ar.blocks.0.relu:2", "ar.blocks.1.relu"])
        client.send_message("/lr", 0.01)
        client.send_message("/steps", 7)
        client.send_message("/pitch_shift", 4)
        client.send_message("/start", "noise")
        _wait_for(lambda: control.plan.restart == "noise")
    plan = control.plan
    assert plan.objective.description == "channel ar.blocks.0.relu:2 + layer ar.blocks.1.relu"
    assert plan.settings.lr == pytest.approx(0.01) and plan.settings.steps == 7
    assert plan.settings.regularization.pitch_shift == 4


def test_bad_messages_are_logged_and_change_nothing(caplog):
    control = LoopControl(channel("ar.blocks.1.relu", 1), SETTINGS)
    before = control.plan
    with caplog.at_level(logging.WARNING, logger="immersions.render.osc"), OscControl(
            control, 0, check=_refuse_tap_9) as osc:
        client = SimpleUDPClient(*osc.address)
        for address, value in [("/objective", "ar.blocks.9.relu:0"), ("/objective", "a:b"), ("/steps", 2.5),
                               ("/masks", "many"), ("/lr", -1.0), ("/start", "drums"), ("/volume", 1.0)]:
            client.send_message(address, value)
        client.send_message("/seed", 11)                              # the server is still there after them
        _wait_for(lambda: control.plan.settings.seed == 11)
    assert control.plan == LoopControl(before.objective, OptimizeSettings(steps=3, lr=5e-3, seed=11)).plan
    log = caplog.text
    for why in ["ar.blocks.9.relu", "must be integers", "steps takes whole numbers", "give one number",
                "lr=-1.0", "'drums' is not one of", "/volume [1.0] ignored: unknown address"]:
        assert why in log


def test_steer_command_sends_one_change(capsys):
    control = LoopControl(channel("ar.blocks.1.relu", 1), SETTINGS)
    with OscControl(control, 0, check=_refuse_tap_9) as osc:
        port = str(osc.address[1])
        assert main(["steer", "/objective", "ar.blocks.0.relu:2", "--port", port]) == 0
        assert main(["steer", "/gradient_noise", "0.25", "--port", port]) == 0
        assert main(["steer", "/masks", "3", "--port", port]) == 0
        _wait_for(lambda: control.plan.settings.regularization.masks == 3)
    assert control.plan.objective.description == "channel ar.blocks.0.relu:2"
    assert control.plan.settings.regularization.gradient_noise == pytest.approx(0.25)
    assert f"sent /masks [3] to 127.0.0.1:{port}" in capsys.readouterr().out
    assert main(["steer", "/volume", "1"]) == 1
    assert "unknown address '/volume'; the addresses are /objective" in capsys.readouterr().err


def test_a_taken_port_is_an_error_naming_it():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen for OSC on 127.0.0.1:{port}"):
            OscControl(LoopControl(channel("ar.blocks.1.relu", 1)), port)


def test_cli_serves_osc_while_it_grows_and_records_each_clips_plan(tmp_path):
    model = tiny_model().eval()
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, {"model_config": config_to_json(model.config), "model": model.state_dict()})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = threading.Event()

    def controller():                       # keeps asking for 1-step clips until the command returns
        client = SimpleUDPClient("127.0.0.1", port)
        while not done.wait(0.005):
            client.send_message("/steps", 1)

    sender = threading.Thread(target=controller)
    sender.start()
    out = tmp_path / "out"
    try:
        assert main(["optimize", str(out), "--model", str(checkpoint), "--objective", "ar.blocks.1.relu:1",
                     "--start", "noise", "--seconds", "0.5", "--steps", "4", "--loops", "2",
                     "--osc-port", str(port)]) == 0
    finally:
        done.set()
        sender.join()
    report = json.loads((out / "scores.json").read_text())
    assert [c["objective"] for c in report["clips"]] == ["channel ar.blocks.1.relu:1"] * 2
    assert [c["settings"]["seed"] for c in report["clips"]] == [0, 1] and report["settings"]["steps"] == 4
    last = report["clips"][-1]
    assert last["settings"]["steps"] == 1 and len(last["step_scores"]) == 1       # steered while it ran
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", port))                               # the port was given back
