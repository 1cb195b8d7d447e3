"""posejax: 3D human pose estimation from 2D keypoints and images in JAX/Flax."""

from posejax.core import metrics, skeleton  # noqa: F401

__version__ = "0.1.0"
