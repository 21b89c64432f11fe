"""Input contracts: bytes from a producer -> native events and dead letters, totally."""
