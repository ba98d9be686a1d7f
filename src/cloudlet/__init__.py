"""Cloudlet: a self-hosted device cloud that speaks the wire protocols of real devices."""

__version__ = "0.1.0"
