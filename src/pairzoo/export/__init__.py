"""Model files: safetensors and ONNX exporters."""
