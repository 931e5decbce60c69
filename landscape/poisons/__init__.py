"""Unlearnable-example methods: the `POISONS` registry (filled by one module per method)."""

from __future__ import annotations

from landscape.registry import Registry

POISONS: Registry[type] = Registry("poison method")
