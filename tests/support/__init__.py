"""Helpers shared by the test suites (real stores, never mocks)."""
