"""TFDS builder for posejax's `h36m` dataset (`tfds build datasets/h36m`)."""
