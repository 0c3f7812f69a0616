import asyncio

from engine.scope import RequestScope, current_scope, request_scope


async def test_concurrent_tasks_inside_a_scope_see_it_and_scopes_do_not_leak():
    async def call() -> RequestScope | None:
        await asyncio.sleep(0)
        return current_scope()

    async def serve(key: str) -> list[RequestScope | None]:
        with request_scope(RequestScope(key, cache_salt=f"salt-{key}")):
            return await asyncio.gather(*(call() for _ in range(3)))

    a, b = await asyncio.gather(serve("a"), serve("b"))
    assert {s.key for s in a} == {"a"} and {s.key for s in b} == {"b"}
    assert a[0].cache_salt == "salt-a"
    assert current_scope() is None
