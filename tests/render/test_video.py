"""write_video: exact frame count, duration, a sound track cut or padded to the video, atomic writes."""
import os

import numpy as np
import pytest
import soundfile

from immersions.render.video import probe_video, write_video

FPS = 30
SYNC_TOLERANCE = 0.005  # seconds between the decoded sound track and the video


def gradient_frames(count, height=48, width=64):
    """Frames that differ from each other, so the encoder cannot collapse them."""
    for i in range(count):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[..., 0] = (np.arange(width) * 4 + i * 8) % 256
        frame[..., 1] = (np.arange(height)[:, None] * 5) % 256
        yield frame


def tone(seconds, rate=44100):
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def test_frame_count_duration_and_size(tmp_path):
    path = write_video(tmp_path / "clip.mp4", gradient_frames(45), FPS, progress=False)
    info = probe_video(path)
    assert info["n_frames"] == 45
    assert info["fps"] == pytest.approx(FPS)
    assert info["duration"] == pytest.approx(1.5, abs=1 / FPS)
    assert (info["width"], info["height"]) == (64, 48)
    assert info["video_codec"] == "h264"
    assert info["audio_codec"] is None and info["audio_duration"] is None


def test_written_file_follows_umask(tmp_path):
    """The temporary file is private while written; the finished video gets the usual permissions."""
    old = os.umask(0o022)
    try:
        path = write_video(tmp_path / "clip.mp4", gradient_frames(3), FPS, progress=False)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("n_frames", [None, 30])  # sound added in a second pass, or in the encoding pass
@pytest.mark.parametrize("audio_seconds", [3.0, 0.5])
def test_audio_array_is_trimmed_or_padded_to_video(tmp_path, audio_seconds, n_frames):
    path = write_video(tmp_path / "clip.mp4", gradient_frames(30), FPS, audio=tone(audio_seconds),
                       sample_rate=44100, n_frames=n_frames, progress=False)
    info = probe_video(path)
    assert info["n_frames"] == 30
    assert info["audio_codec"] == "aac"
    assert info["audio_duration"] == pytest.approx(1.0, abs=SYNC_TOLERANCE)


def test_audio_file_and_n_frames_limit(tmp_path):
    wav = tmp_path / "track.wav"
    soundfile.write(wav, np.stack([tone(2.0), tone(2.0)], axis=1), 44100)
    path = write_video(tmp_path / "clip.mp4", gradient_frames(100), FPS, audio=wav, n_frames=20, progress=False)
    info = probe_video(path)
    assert info["n_frames"] == 20
    assert info["audio_duration"] == pytest.approx(20 / FPS, abs=SYNC_TOLERANCE)


def test_odd_frame_size_is_padded_to_even(tmp_path):
    path = write_video(tmp_path / "odd.mp4", gradient_frames(5, height=47, width=63), FPS, progress=False)
    info = probe_video(path)
    assert (info["width"], info["height"]) == (64, 48)
    assert info["n_frames"] == 5


def test_failing_generator_leaves_no_file_and_keeps_previous(tmp_path):
    target = tmp_path / "clip.mp4"

    def failing():
        yield from gradient_frames(3)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_video(target, failing(), FPS, progress=False)
    assert list(tmp_path.iterdir()) == []

    write_video(target, gradient_frames(4), FPS, progress=False)
    before = target.read_bytes()
    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_video(target, failing(), FPS, progress=False)
    assert target.read_bytes() == before
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("bad, error, message", [
    (np.zeros((48, 64, 3), np.float32), TypeError, "frame 2 must have dtype uint8"),
    (np.zeros((48, 64), np.uint8), ValueError, r"frame 2 must have shape \(H, W, 3\)"),
    (np.zeros((48, 62, 3), np.uint8), ValueError, "frame 2 has size"),
])
def test_bad_frame_names_its_index(tmp_path, bad, error, message):
    frames = [*gradient_frames(2), bad]
    with pytest.raises(error, match=message):
        write_video(tmp_path / "clip.mp4", frames, FPS, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="n_frames=10"):
        write_video(tmp_path / "a.mp4", gradient_frames(3), FPS, n_frames=10, progress=False)
    with pytest.raises(ValueError, match="sample_rate"):
        write_video(tmp_path / "a.mp4", gradient_frames(3), FPS, audio=tone(0.1), progress=False)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        write_video(tmp_path / "a.mp4", gradient_frames(3), FPS, audio=tmp_path / "missing.wav", progress=False)
    with pytest.raises(ValueError, match="fps"):
        write_video(tmp_path / "a.mp4", gradient_frames(3), 0, progress=False)
    with pytest.raises(ValueError, match="preset"):
        write_video(tmp_path / "a.mp4", gradient_frames(3), FPS, preset="quick", progress=False)
    with pytest.raises(ValueError, match="no frame"):
        write_video(tmp_path / "a.mp4", iter(()), FPS, progress=False)
    assert list(tmp_path.iterdir()) == []


def decoded_frames(path):
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    return np.stack([np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in reader])


def test_frames_come_back_in_order(tmp_path):
    frames = list(gradient_frames(12))
    decoded = decoded_frames(write_video(tmp_path / "clip.mp4", frames, FPS, progress=False))
    assert decoded.shape == (12, 48, 64, 3)
    errors = np.abs(decoded.astype(np.int16) - np.stack(frames).astype(np.int16)).mean(axis=(1, 2, 3))
    assert errors.max() < 4, f"mean absolute error per frame {errors}"


def test_offscreen_animation_with_sound(tmp_path):
    from immersions.render.animation import Timeline
    from immersions.render.camera import Camera
    from immersions.render.offscreen import Offscreen
    from immersions.render.scene import Scene

    rng = np.random.default_rng(3)
    snapshots = rng.normal(size=(2, 30, 2)).astype(np.float32)
    values = rng.random((8, 30)).astype(np.float32)
    timeline = Timeline.for_activations(len(values), fps=FPS)
    with Offscreen(64, 48) as offscreen, Scene(offscreen.ctx, snapshots[0]) as scene:
        camera = Camera.fitted(snapshots.reshape(-1, 2), aspect=64 / 48)

        def cameras():
            for positions, activations in timeline.states(snapshots, values):
                scene.update(positions=positions, activations=activations)
                yield camera

        path = write_video(tmp_path / "anim.mp4", offscreen.frames(scene, cameras()), FPS, audio=tone(5.0),
                           sample_rate=44100, n_frames=timeline.n_frames, progress=False)
    info = probe_video(path)
    assert info["n_frames"] == timeline.n_frames
    assert info["audio_duration"] == pytest.approx(timeline.duration, abs=SYNC_TOLERANCE)
    assert decoded_frames(path).max() > 50, "lit neurons should be visible"
