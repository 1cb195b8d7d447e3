"""TFDS builder for posejax's `cmu_mocap` dataset (`tfds build datasets/cmu_mocap`)."""
