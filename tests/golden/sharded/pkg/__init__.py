"""Operator packages."""
