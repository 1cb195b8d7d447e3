"""TFDS builder for posejax's `h36m_images` dataset (`tfds build datasets/h36m_images`)."""
