"""Training loops and the checkpoint format."""
