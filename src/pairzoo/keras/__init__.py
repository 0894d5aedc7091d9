"""The Keras door: the PyTorch vocabulary (build, train, accuracy, export) for Keras."""
