"""TFDS builder for posejax's `synthpose` dataset (`tfds build datasets/synthpose`)."""
