"""The OpenAI-compatible API: request/response types, routers and the generation service."""
