"""Dev-only code: synthetic returns, benchmarks and the reference implementations tests use as oracles. Never in the image."""
