"""The fake Gateway for tests, demos and load runs; never imported by production code."""
