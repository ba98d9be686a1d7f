"""The scale family."""
