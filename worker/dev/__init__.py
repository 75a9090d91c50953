"""Developer tools: the demo and a private redis-server; never imported by production code."""
