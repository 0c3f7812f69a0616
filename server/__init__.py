"""Deliberate's server. Importing this package is cheap: search code imports `server.engine`
(the protocol) without pulling in FastAPI or vLLM."""
