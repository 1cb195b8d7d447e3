"""posejax.models."""
