"""Training: the loop, its configuration, input feeds, federated rounds, detectors."""
