"""posejax: 3D human pose estimation from 2D keypoints and images in JAX/Flax."""

from posejax.core import metrics, skeleton  # noqa: F401

__version__ = "0.1.0"


def __getattr__(name):
    # ``posejax.load_predictor`` without importing the methods, Flax and Orbax on
    # ``import posejax`` (and without an import cycle: inference imports posejax.*).
    if name == "load_predictor":
        from posejax.inference import load_predictor

        return load_predictor
    raise AttributeError(f"module 'posejax' has no attribute {name!r}")
