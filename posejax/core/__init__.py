"""Skeletons, cameras, geometry and metrics; imports only jax and numpy."""
