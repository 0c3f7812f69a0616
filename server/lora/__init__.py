"""LoRA adapter management over HTTP (vLLM's endpoints and bodies) and the registry's wiring."""
