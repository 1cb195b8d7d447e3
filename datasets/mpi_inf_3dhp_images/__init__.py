"""TFDS builder for posejax's `mpi_inf_3dhp_images` dataset
(`tfds build datasets/mpi_inf_3dhp_images`)."""
