"""POST /v1/verify: score a finished solution step by step with the verifier stack."""
