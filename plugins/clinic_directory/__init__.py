"""Pelican plugin: a multi-clinic directory built from a YAML registry.

Importing defines; ``register()`` only connects signals. All reading happens in
the generator's ``generate_context``.
"""

from __future__ import annotations

from typing import Any

from pelican import signals

from .generator import ClinicDirectoryGenerator, add_template_helpers


def get_generators(pelican: Any) -> type[ClinicDirectoryGenerator]:
    return ClinicDirectoryGenerator


def register() -> None:
    signals.get_generators.connect(get_generators)
    signals.generator_init.connect(add_template_helpers)
