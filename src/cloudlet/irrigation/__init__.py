"""The irrigation family."""
