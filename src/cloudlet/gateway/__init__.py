"""The gateway family."""
