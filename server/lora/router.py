"""POST /v1/load_lora_adapter and /v1/unload_lora_adapter, answered as vLLM answers them."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from adapters.registry import AdapterRegistry
from server.auth import require_admin_key
from server.lora.protocol import LoadLoRAAdapterRequest, UnloadLoRAAdapterRequest

router = APIRouter(dependencies=[Depends(require_admin_key)])


async def get_registry(request: Request) -> AdapterRegistry:
    return request.app.state.adapters


@router.post("/v1/load_lora_adapter")
async def load_lora_adapter(body: LoadLoRAAdapterRequest,
                            registry: AdapterRegistry = Depends(get_registry)):
    registry.refuse_reserved(body.lora_name, unloading=False)
    await registry.load(body.lora_name, body.lora_path, pinned=body.pinned)
    return PlainTextResponse(f"Success: LoRA adapter '{body.lora_name}' added successfully.")


@router.post("/v1/unload_lora_adapter")
async def unload_lora_adapter(body: UnloadLoRAAdapterRequest,
                              registry: AdapterRegistry = Depends(get_registry)):
    registry.refuse_reserved(body.lora_name, unloading=True)
    await registry.unload(body.lora_name)
    return PlainTextResponse(f"Success: LoRA adapter '{body.lora_name}' removed successfully.")
