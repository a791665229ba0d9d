"""Kept for tools that look for it; the project's metadata and dependencies live in pyproject.toml."""
from setuptools import setup

setup()
