"""The load-and-consistency lab and the benchmark scripts."""
