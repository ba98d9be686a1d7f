"""Cloudlet beside other tools: Prometheus gauges, Home Assistant discovery, CLI progress."""
