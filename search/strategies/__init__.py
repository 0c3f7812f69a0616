"""The search strategies, registered by name: one module each, one signature,
`async def run(problem, engine, scorer, params) -> SearchResult`, and a params dataclass."""
