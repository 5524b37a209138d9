"""Shared fixtures live in tests/plugins/, one module per area, so each stays small."""

pytest_plugins = ["tests.plugins.core", "tests.plugins.backends", "tests.plugins.llama", "tests.plugins.app"]

# The browser tests need playwright; without it the rest of the suite still collects and runs.
try:
    import playwright  # noqa: F401
except ImportError:
    collect_ignore = ["test_browser.py"]
