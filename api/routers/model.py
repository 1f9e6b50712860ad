"""``GET /v1/model``: which diagnosis model the server uses (409 until one is trained and saved)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from api.auth import AUTH_RESPONSES, CLINICAL
from api.routers.deps import ModelSlotDep, model_held
from api.routers.schemas import ModelInfo, error_responses

router = APIRouter(tags=["model"], dependencies=[Depends(CLINICAL)], responses=AUTH_RESPONSES)


@router.get("/model", response_model=ModelInfo, responses=error_responses(409))
def model_info(request: Request, slot: ModelSlotDep) -> ModelInfo:
    """The served model: id, encoder, candidate diagnoses and its metrics per split.

    ``input_sections``: the report sections whose findings the model reads."""
    with model_held(request) as engine:
        result = engine.result
    return ModelInfo(
        model_id=result.model_id,
        encoder=result.config["encoder"],
        directory=str(slot.directory),
        candidate_ids=result.candidate_ids,
        metrics=result.metrics,
        input_sections=result.sections,
        input_sections_text=result.sections.describe(),
    )
