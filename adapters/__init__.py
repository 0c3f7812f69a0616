"""LoRA adapter registry: validate, hot-load/unload, resolve `model` to base or adapter.

Importing this package is light (no torch, no vLLM): validation reads JSON and safetensors
headers only.
"""
