"""Performance benchmarks of rkm (see benchmarks/README.md)."""
