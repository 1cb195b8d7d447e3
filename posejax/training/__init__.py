"""posejax.training."""
