"""Training of the starter model (each stage) on the synthetic corpus."""
