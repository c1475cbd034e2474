"""ONNX deployment: ``export`` (needs torch) writes the model graph plus the feature matrices;
``runtime`` serves it with onnxruntime + numpy + soundfile + soxr only (no torch, no transformers)."""
