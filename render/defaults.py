"""Defaults the command line shows in its help, kept apart from the modules that use them so that ``--help``
loads neither torch nor OpenGL."""

DEFAULT_MAX_EDGES = 5_000  # faint context lines; each costs fill rate on software rasterisers
DEFAULT_PRESET = "superfast"  # libx264: ~1.6x faster than veryfast at ~1.2x the size
DEMO_SECONDS = 8.0  # the demo music's length
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")  # libx264
DEFAULT_OSC_HOST = "127.0.0.1"  # OSC listens on this machine only unless told otherwise
DEFAULT_OSC_PORT = 9000

LEVEL_MODES = ("reference", "clip")
"""What lights a neuron: its rise above the model's reference levels, or its layer's range over the clip."""

MOVE_LR = 5e-4
"""Adam step of a move's feature inversion. optimize's 2e-3 grows sound from silence; from a music clip it drowned
the clip and moved its c away from the target (relative distance 0.063 -> 0.103 in 200 steps on the lean model);
5e-4 brought a training clip closer (0.059 -> 0.043 in 60 steps, the article's regularisers on)."""
