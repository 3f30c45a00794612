"""Install the user's top-level folders as one namespace: immersions.{layout,render,cpc,shaders}."""
from setuptools import setup

FOLDERS = ("layout", "render", "cpc", "shaders")
SUBPACKAGES = ("layout.backends", "render.commands")


def _package_map() -> dict[str, str]:
    """Map every importable package name to the folder that holds it."""
    mapping = {f"immersions.{name}": name for name in FOLDERS}
    mapping.update({f"immersions.{name}": name.replace(".", "/") for name in SUBPACKAGES})
    return mapping


setup(
    name="immersions",
    version="0.1.0",
    description="See and hear what happens inside an audio neural network: graph layout, rendering, sonification.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=list(_package_map()),
    package_dir=_package_map(),
    package_data={"immersions.shaders": ["*.glsl"], "immersions.cpc": ["assets/*"]},
    include_package_data=False,
    install_requires=[
        "torch>=2.2",
        "numpy>=1.24",
        "numba>=0.59",
        "moderngl>=5.8",
        "glfw>=2.5",
        "pyrr>=0.10",
        "imageio>=2.31",
        "imageio-ffmpeg>=0.4.9",
        "tqdm>=4.60",
        "soundfile>=0.12",
        "scikit-learn>=1.3",
        "scipy>=1.10",
        "openTSNE>=1.0",
        "plotly>=5.0",
        "matplotlib>=3.7",
    ],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6", "PySide6-Essentials>=6.5", "librosa>=0.10",
                 "music21>=9", "pyloudnorm>=0.1", "ogdf-py>=0.5", "python-osc>=1.8", "playwright>=1.40",
                 "networkx>=3",
                 "triton; platform_system == 'Linux' and platform_machine == 'x86_64'"],
        "qt": ["PySide6-Essentials>=6.5"],
        "graphs": ["networkx>=3"],
        "sound": ["sounddevice>=0.4"],
        "osc": ["python-osc>=1.8"],
        "corpus": ["music21>=9", "pyloudnorm>=0.1"],
        "umap": ["umap-learn>=0.5"],
        "bench": ["igraph>=0.10", "fa2-modified>=0.3", "ogdf-py>=0.5"],  # the layout benchmark's peers
    },
    entry_points={"console_scripts": ["immersions=immersions.render.cli:main"]},
)
