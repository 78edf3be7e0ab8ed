"""Settings shared by the whole suite: quiet TensorFlow, CPU only, deterministic ops."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Tests must pass on CPU-only CI; hide any GPU so local runs match.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
