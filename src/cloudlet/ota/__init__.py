"""The ota family."""
