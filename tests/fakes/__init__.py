"""Stand-in upstream servers used by the tests."""
