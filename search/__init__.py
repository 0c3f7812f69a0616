"""Inference-time search: strategies over reasoning steps, scored by the verifier stack.

Imports nothing heavy: strategies talk to the `Engine` protocol, never to vLLM or FastAPI.
"""
