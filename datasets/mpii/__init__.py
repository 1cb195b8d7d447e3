"""TFDS builder for posejax's `mpii` dataset (`tfds build datasets/mpii`)."""
