"""Filling in outputs: run a system's provider on the prompts it has not answered yet.

Called from the worker (`arena.tasks.generate_outputs`) and from `seed_demo`; never from a
web request.
"""

import logging

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from arena.models import POOL_ORIGINS, Output, Prompt, System
from arena.outputs import media
from arena.outputs.textstats import markdown_counts
from arena.providers import GenerationRequest, get_provider

logger = logging.getLogger(__name__)


def missing_prompts(system: System, prompt_ids=None):
    """The arena's prompts (or the given ones) this system has not answered yet.

    Without ``prompt_ids``, only the prompts the open arena serves: a project's imported
    prompts come with their own answers, and a voter's live prompt is answered live, so a new
    system answering them would spend the worker's time on outputs nobody is shown.
    """
    prompts = Prompt.objects.filter(modality=system.modality).exclude(outputs__system=system).order_by("id")
    if prompt_ids is not None:
        return prompts.filter(id__in=prompt_ids)
    return prompts.filter(origin__in=POOL_ORIGINS)


def _save_output(system: System, prompt: Prompt, generated) -> Output | None:
    output = Output(system=system, prompt=prompt, generation_time_s=generated.generation_time_s)
    metadata = dict(generated.metadata)
    if generated.media is not None:
        # Generated media passes the same decoder checks as uploads.
        info = media.validate_media(generated.media, filename=f"generated.{generated.media_extension}")
        output.media_type = info.media_type
        metadata = {**metadata, **info.metadata}
        output.media.save(f"generated.{info.extension}", ContentFile(generated.media), save=False)
    else:
        output.text = generated.text
        metadata = {**markdown_counts(generated.text), **metadata}
    output.metadata = metadata
    try:
        with transaction.atomic():
            output.save()
    except IntegrityError:
        # Another worker answered the same prompt first; keep theirs.
        if output.media:
            output.media.delete(save=False)
        return None
    return output


def generate_missing_outputs(system: System, prompt_ids=None, batch_size: int = 8, on_progress=None) -> int:
    """Generate this system's missing outputs in batches; returns how many were written.

    Each output is committed as soon as its batch is done, so an interrupted run keeps what
    it finished and a rerun only does the rest.
    """
    provider = get_provider(system.provider, system.provider_config)
    prompts = list(missing_prompts(system, prompt_ids))
    written = 0
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        requests = [GenerationRequest(prompt_text=p.text, prompt_id=p.id) for p in batch]
        for prompt, generated in zip(batch, provider.generate(requests), strict=True):
            if _save_output(system, prompt, generated) is not None:
                written += 1
        if on_progress is not None:
            on_progress(min(start + batch_size, len(prompts)), len(prompts))
    logger.info("generated %d outputs for %s", written, system.name)
    return written
