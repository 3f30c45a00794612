"""Names and defaults the command line shows in its help, kept apart from the torch modules that use them."""

DEFAULT_MAX_EDGES = 250_000_000  # graphs with more edges are refused before they are built
ZOO_INPUT_SHAPES: dict[str, tuple[int, ...]] = {  # the zoo's models and their default example inputs
    "vgg16": (1, 3, 224, 224),
    "resnet18": (1, 3, 224, 224),
    "audio": (1, 2, 32, 64),
}

COARSENINGS = ("graph", "axes")
"""How the multilevel hierarchy merges vertices: from the edges alone (any graph), or along the layer axes
(channel, frequency) as the article does for neuron graphs."""
