"""posejax.methods."""
