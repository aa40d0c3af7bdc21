"""Synthetic, realistic annotation projects for the demo, the tests and the benchmarks."""
