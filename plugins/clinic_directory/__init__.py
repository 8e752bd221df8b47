"""Pelican plugin: a multi-clinic directory built from a YAML registry.

Importing defines; ``register()`` only connects signals. All reading happens in
the generator's ``generate_context``.
"""

from __future__ import annotations

from typing import Any

from pelican import signals

from .articles import add_feed_notice
from .generator import ClinicDirectoryGenerator, add_template_helpers
from .sitemap import write_sitemap


def get_generators(pelican: Any) -> type[ClinicDirectoryGenerator]:
    return ClinicDirectoryGenerator


def register() -> None:
    signals.get_generators.connect(get_generators)
    signals.generator_init.connect(add_template_helpers)
    signals.finalized.connect(write_sitemap)
    signals.feed_generated.connect(add_feed_notice)
