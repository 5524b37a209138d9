"""Shared fixtures live in tests/plugins/, one module per area, so each stays small."""

pytest_plugins = ["tests.plugins.core", "tests.plugins.llama", "tests.plugins.app"]
