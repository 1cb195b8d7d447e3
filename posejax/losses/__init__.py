"""posejax.losses."""
