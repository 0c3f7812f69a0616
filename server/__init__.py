"""Deliberate's web server: the OpenAI-compatible API over an `engine.Engine`."""
