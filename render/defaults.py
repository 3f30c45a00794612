"""Defaults the command line shows in its help, kept apart from the modules that use them so that ``--help``
loads neither torch nor OpenGL."""

DEFAULT_MAX_EDGES = 5_000  # faint context lines; each costs fill rate on software rasterisers
DEFAULT_PRESET = "superfast"  # libx264: ~1.6x faster than veryfast at ~1.2x the size
