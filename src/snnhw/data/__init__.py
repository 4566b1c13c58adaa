"""Dataset loaders for the native layouts (IDX, UCI HAPT/HAR, speech WAV, npz)."""
