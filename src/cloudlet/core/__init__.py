"""Pieces every family shares: settings, database, clock, security, errors, families."""
