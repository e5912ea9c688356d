"""Live battles: a voter's own prompt, answered by two anonymous systems in the worker.

Actions here are the only writers of LiveBattle and LiveGeneration rows. The worker
streams each side's text into its LiveGeneration row; the voter's event stream reads
those rows, so streaming works through any broker and any number of web processes.
"""

import logging
import random
import time

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from arena import errors, ratelimit
from arena.live.checks import check_prompt
from arena.live.leaks import find_leaks
from arena.live.streaming import LIVE_PROVIDERS, Stopped, stream_answer
from arena.models import (
    Comparison,
    ComparisonOrigin,
    GenerationStatus,
    Judge,
    LiveBattle,
    LiveBattleStatus,
    LiveGeneration,
    Modality,
    Output,
    Prompt,
    PromptOrigin,
    System,
    Verdict,
)
from arena.outputs.rendering import render_markdown
from arena.voting.actions import Vote, do_record_judgment, reveal
from arena.voting.presenters import _side

logger = logging.getLogger(__name__)

# How often a streaming answer is written to its row: often enough to look live, rarely
# enough that a 2-core machine does not spend itself on UPDATEs.
FLUSH_SECONDS = 0.08
VOID_MESSAGE = "One side could not answer ({why}), so this battle is void and cannot be voted on. Start a new round."


# --- matchmaking ----------------------------------------------------------------------------


def live_candidates(modality: str):
    """Active systems that can answer live, leaving out those in an outage cool-down."""
    cooled = timezone.now() - timezone.timedelta(seconds=settings.LIVE_OUTAGE_COOLDOWN_SECONDS)
    return System.objects.filter(
        modality=modality, is_active=True, retired_at__isnull=True, provider__in=LIVE_PROVIDERS
    ).filter(
        Q(live_failures__lt=settings.LIVE_OUTAGE_FAILURES) | Q(live_failed_at__lt=cooled)
    )


def _choose_pair(modality: str, rng: random.Random) -> tuple[System, System]:
    systems = list(live_candidates(modality).order_by("id"))
    if len(systems) < 2:
        raise errors.NothingToCompare(f"fewer than two {modality} systems can answer live right now; try again later")
    from arena.voting.matchmaking import choose_system_pair

    pairs = [(a.id, b.id) for i, a in enumerate(systems) for b in systems[i + 1 :]]
    first, second = choose_system_pair(pairs, modality, rng)
    if rng.random() < 0.5:
        first, second = second, first
    by_id = {s.id: s for s in systems}
    return by_id[first], by_id[second]


def preload_live_models() -> list[str]:
    """Load the local models of the systems that can answer live into this process, so a
    voter's first battle does not wait for a model to load (seconds on a small machine).
    Returns the models loaded; a model that cannot load is logged and left to the battle,
    which reports the failure."""
    from arena.providers.localmodel import load_causal_lm
    from arena.providers import get_provider

    loaded = []
    for system in live_candidates(Modality.TEXT).filter(provider="transformers"):
        try:
            provider = get_provider(system.provider, system.provider_config)
            load_causal_lm(provider.model_ref, provider.device)
        except Exception as exc:  # noqa: BLE001 - a preload never stops the worker; the battle reports
            logger.warning("could not preload %s for live battles: %s", system.name, exc)
            continue
        logger.info("preloaded %s for live battles (%s)", provider.model_ref, system.name)
        loaded.append(provider.model_ref)
    return loaded


# --- starting and continuing --------------------------------------------------------------


def _count_prompt(judge: Judge) -> None:
    """Count a prompt (or follow-up) against the voter's hourly budget, shared by every host
    (arena.ratelimit): called once the prompt is accepted, so one that fails its checks or
    finds no pair costs nothing."""
    limit = settings.LIVE_PROMPTS_PER_HOUR
    counted = ratelimit.count(f"live:judge:{judge.pk}", ratelimit.Rate(limit, 3600, "hour"))
    if counted is not None and not counted.allowed:
        # Every prompt counted before this one in the window went through, and the window
        # began less than an hour ago: the voter sent `limit` prompts in the last hour.
        raise ratelimit.RateLimitExceeded(
            f"you have sent {limit} prompts in the last hour; the limit is {limit}. Try again later.",
            counted.retry_after,
        )


def _queue(generations: list[LiveGeneration]) -> None:
    def send():
        for generation in generations:
            generate_live_turn.delay(generation.pk)

    transaction.on_commit(send)


def start_live_battle(judge: Judge, modality: str, message: str, rng: random.Random | None = None) -> LiveBattle:
    if modality not in Modality.values:
        raise errors.InvalidInput(f"unknown modality {modality!r}; expected one of {', '.join(Modality.values)}")
    message = check_prompt(message)
    system_a, system_b = _choose_pair(modality, rng or random.SystemRandom())
    _count_prompt(judge)
    with transaction.atomic():
        prompt = Prompt.objects.create(text=message, modality=modality, origin=PromptOrigin.USER)
        battle = LiveBattle.objects.create(
            judge=judge, modality=modality, prompt=prompt, system_a=system_a, system_b=system_b
        )
        generations = [
            LiveGeneration.objects.create(battle=battle, side=side, turn=0, user_message=message, system=system)
            for side, system in (("a", system_a), ("b", system_b))
        ]
        _queue(generations)
    return battle


def current_turn(battle: LiveBattle) -> int:
    return max((g.turn for g in battle.generations.all()), default=0)


def send_follow_up(battle: LiveBattle, message: str) -> int:
    """Ask both systems a follow-up; each answers with its own conversation so far."""
    if battle.modality != Modality.TEXT:
        raise errors.InvalidInput("only text battles take follow-up messages")
    if battle.status != LiveBattleStatus.READY:
        raise errors.InvalidInput(f"a follow-up can be sent once both answers are complete (battle is {battle.status})")
    message = check_prompt(message)
    turn = current_turn(battle) + 1
    if turn >= settings.LIVE_MAX_TURNS:
        raise errors.InvalidInput(f"a battle has at most {settings.LIVE_MAX_TURNS} turns; vote or start a new round")
    _count_prompt(battle.judge)
    with transaction.atomic():
        updated = LiveBattle.objects.filter(pk=battle.pk, status=LiveBattleStatus.READY).update(
            status=LiveBattleStatus.GENERATING
        )
        if not updated:
            raise errors.InvalidInput("this battle changed meanwhile; reload it")
        generations = [
            LiveGeneration.objects.create(battle=battle, side=side, turn=turn, user_message=message, system=system)
            for side, system in (("a", battle.system_a), ("b", battle.system_b))
        ]
        _queue(generations)
    battle.refresh_from_db()
    return turn


# --- the worker side ----------------------------------------------------------------------


def conversation(generation: LiveGeneration) -> list[dict]:
    """This side's conversation up to and including the generation's user message."""
    earlier = LiveGeneration.objects.filter(
        battle=generation.battle_id, side=generation.side, turn__lt=generation.turn
    ).order_by("turn")
    messages = []
    for turn in earlier:
        messages += [{"role": "user", "content": turn.user_message}, {"role": "assistant", "content": turn.text}]
    return messages + [{"role": "user", "content": generation.user_message}]


def _claim_slot(generation: LiveGeneration) -> bool:
    """Start the generation if its system has a free slot (the database counts, so the
    limit holds across worker processes)."""
    with transaction.atomic():
        running = LiveGeneration.objects.filter(system=generation.system_id, status=GenerationStatus.RUNNING).count()
        if running >= settings.LIVE_MAX_CONCURRENT_PER_SYSTEM:
            return False
        return bool(
            LiveGeneration.objects.filter(pk=generation.pk, status=GenerationStatus.QUEUED).update(
                status=GenerationStatus.RUNNING, started_at=timezone.now()
            )
        )


def void_battle(battle_id: int, why: str) -> None:
    LiveBattle.objects.filter(pk=battle_id).exclude(status=LiveBattleStatus.VOTED).update(
        status=LiveBattleStatus.VOID, void_reason=VOID_MESSAGE.format(why=why)
    )


def _fail(generation: LiveGeneration, error: str, why: str) -> None:
    LiveGeneration.objects.filter(pk=generation.pk).update(
        status=GenerationStatus.FAILED, error=error[:2000], finished_at=timezone.now()
    )
    System.objects.filter(pk=generation.system_id).update(
        live_failures=F("live_failures") + 1, live_failed_at=timezone.now()
    )
    void_battle(generation.battle_id, why)


def run_live_generation(generation_id: int) -> str:
    """Answer one side of one turn. Returns the generation's final status, or "wait" when
    the system has no free slot (the task retries shortly)."""
    generation = LiveGeneration.objects.select_related("battle", "system").get(pk=generation_id)
    if generation.status != GenerationStatus.QUEUED:
        return generation.status  # already handled (a redelivered task)
    if generation.battle.status == LiveBattleStatus.VOID:
        LiveGeneration.objects.filter(pk=generation.pk).update(status=GenerationStatus.FAILED, error="battle void")
        return GenerationStatus.FAILED
    timeout = settings.LIVE_GENERATION_TIMEOUT_SECONDS
    if (timezone.now() - generation.queued_at).total_seconds() > timeout:
        _fail(generation, "waited longer than the timeout for a free slot", "it was too busy")
        return GenerationStatus.FAILED
    if not _claim_slot(generation):
        return "wait"
    started = time.monotonic()
    last_flush = [0.0]
    first_token = [False]

    def emit(text: str) -> None:
        now = time.monotonic()
        if now - started > timeout:
            raise TimeoutError(f"no complete answer within {timeout:.0f} s")
        if now - last_flush[0] < FLUSH_SECONDS and first_token[0]:
            return
        fields = {"text": text}
        if not first_token[0]:
            fields["first_token_at"] = timezone.now()
            first_token[0] = True
        LiveGeneration.objects.filter(pk=generation.pk).update(**fields)
        last_flush[0] = now

    def should_stop() -> bool:
        return LiveBattle.objects.filter(pk=generation.battle_id, status=LiveBattleStatus.VOID).exists()

    try:
        answer = stream_answer(generation.system, conversation(generation), emit, should_stop, timeout)
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"no complete answer within {timeout:.0f} s")
    except Stopped:
        LiveGeneration.objects.filter(pk=generation.pk).update(status=GenerationStatus.FAILED, error="battle void")
        return GenerationStatus.FAILED
    except TimeoutError as exc:
        _fail(generation, f"no complete answer within {timeout:.0f} s ({exc})", "it timed out")
        return GenerationStatus.FAILED
    except Exception as exc:  # noqa: BLE001 - any provider failure voids the battle, never the worker
        logger.exception("live generation %s failed", generation.pk)
        _fail(generation, f"{type(exc).__name__}: {exc}", "it failed")
        return GenerationStatus.FAILED
    _finish(generation, answer)
    return GenerationStatus.DONE


# The task lives beside what it runs and what queues it; `arena.tasks` lists it under the
# name the settings route by.
@shared_task(name="arena.tasks.generate_live_turn", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def generate_live_turn(self, generation_id: int) -> str:
    """Answer one side of one live-battle turn, streaming into its row (`live` queue).
    Waits for a free slot of its system by retrying shortly; gives up at the timeout."""
    status = run_live_generation(generation_id)
    if status == "wait":
        raise self.retry(countdown=0.25)
    return status


def _finish(generation: LiveGeneration, answer) -> None:
    from django.core.files.base import ContentFile

    from arena.outputs import media

    battle = generation.battle
    output = Output(
        system=generation.system, prompt=battle.prompt, turn=generation.turn,
        generation_time_s=answer.generation_time_s,
    )  # fmt: skip
    metadata = dict(answer.metadata)
    if answer.media is not None:
        info = media.validate_media(answer.media, filename=f"live.{answer.media_extension}")
        output.media_type = info.media_type
        metadata.update(info.metadata)
        output.media.save(f"live.{info.extension}", ContentFile(answer.media), save=False)
    else:
        output.text = answer.text
        metadata["conversation"] = conversation(generation) + [{"role": "assistant", "content": answer.text}]
    output.metadata = metadata
    with transaction.atomic():
        output.save()
        LiveGeneration.objects.filter(pk=generation.pk).update(
            status=GenerationStatus.DONE, text=answer.text, output=output, finished_at=timezone.now()
        )
        System.objects.filter(pk=generation.system_id).update(live_failures=0)
        turn_done = not LiveGeneration.objects.filter(battle=battle, turn=generation.turn).exclude(
            status=GenerationStatus.DONE
        ).exists()
        if turn_done:
            LiveBattle.objects.filter(pk=battle.pk, status=LiveBattleStatus.GENERATING).update(
                status=LiveBattleStatus.READY
            )


def expire_stuck(battle: LiveBattle) -> None:
    """A worker that died mid-answer never reports; past the timeout (and a grace period)
    its generation is failed here, so the voter is told instead of waiting forever."""
    limit = timezone.now() - timezone.timedelta(seconds=settings.LIVE_GENERATION_TIMEOUT_SECONDS + 15)
    stuck = LiveGeneration.objects.filter(
        battle=battle, status__in=[GenerationStatus.QUEUED, GenerationStatus.RUNNING], queued_at__lt=limit
    )
    for generation in stuck:
        _fail(generation, "no answer from the worker within the timeout", "it timed out")


# --- what the voter sees --------------------------------------------------------------------


def queue_position(generation: LiveGeneration) -> int:
    """How many answers are ahead of this one: those of other battles queued earlier (the
    live lane takes them in order), or, where more, those of the same system beyond its
    free slots."""
    if generation.status != GenerationStatus.QUEUED:
        return 0
    # Rows older than the timeout are dead (a worker lost them); they hold nobody up.
    alive_since = timezone.now() - timezone.timedelta(seconds=settings.LIVE_GENERATION_TIMEOUT_SECONDS)
    earlier = LiveGeneration.objects.filter(
        status=GenerationStatus.QUEUED, queued_at__lt=generation.queued_at, queued_at__gte=alive_since
    )
    ahead_in_lane = earlier.exclude(battle=generation.battle_id).count()
    ahead = earlier.filter(system=generation.system_id).count()
    running = LiveGeneration.objects.filter(system=generation.system_id, status=GenerationStatus.RUNNING).count()
    free = max(0, settings.LIVE_MAX_CONCURRENT_PER_SYSTEM - running)
    return max(ahead_in_lane, ahead + 1 - free)


def _side_state(generation: LiveGeneration) -> dict:
    state = {"status": generation.status}
    if generation.status == GenerationStatus.DONE and generation.output_id:
        output = generation.output
        state.update(_side(output))
        if output.kind == "text":
            state["text"] = output.text
    elif generation.status in (GenerationStatus.RUNNING, GenerationStatus.QUEUED):
        state["kind"] = "text" if generation.battle.modality == Modality.TEXT else generation.battle.modality
        state["text"] = generation.text
        state["queue_position"] = queue_position(generation)
        if generation.status == GenerationStatus.QUEUED:
            # The voter is told how long the answer has waited for a worker, so a busy
            # worker shows as a wait instead of a silent "Answering…".
            state["waiting_s"] = round((timezone.now() - generation.queued_at).total_seconds())
    return state


def battle_state(battle: LiveBattle) -> dict:
    """Everything the voter may see: no system identity before the vote."""
    expire_stuck(battle)
    battle.refresh_from_db()
    generations = list(battle.generations.select_related("output", "battle"))
    turns = {}
    for generation in generations:
        turn = turns.setdefault(generation.turn, {"turn": generation.turn, "message": generation.user_message})
        turn[generation.side] = _side_state(generation)
    complete = [t for t in turns.values() if t.get("a", {}).get("status") == "done" and t.get("b", {}).get("status") == "done"]
    state = {
        "battle": str(battle.public_id),
        "modality": battle.modality,
        "status": battle.status,
        "void_reason": battle.void_reason,
        "turns": [turns[k] for k in sorted(turns)],
        "can_vote": battle.status in (LiveBattleStatus.READY, LiveBattleStatus.GENERATING) and bool(complete),
        "can_follow_up": battle.status == LiveBattleStatus.READY and battle.modality == Modality.TEXT
        and len(turns) < settings.LIVE_MAX_TURNS,
        "prompt": {"text": battle.prompt.text, "html": render_markdown(battle.prompt.text)},
    }
    if battle.status == LiveBattleStatus.VOTED and battle.comparison_id:
        state["reveal"] = reveal(battle.comparison)
    return state


def live_battle_for(judge: Judge, public_id) -> LiveBattle:
    """The voter's own live battle by its public id (another voter's is refused)."""
    battle = LiveBattle.objects.select_related("prompt", "system_a", "system_b").filter(public_id=public_id).first()
    if battle is None:
        raise errors.NotFound(f"live battle {public_id} does not exist")
    if battle.judge_id != judge.pk:
        raise errors.ForeignVoteToken("this battle belongs to another voter")
    return battle


# --- the vote -----------------------------------------------------------------------------


def vote_live(battle: LiveBattle, verdict: str) -> tuple[dict, bool]:
    """Judge the whole conversation once. The comparison is the last complete pair of
    answers (each carries its side's conversation); an answer that names a system marks
    the judgment as not anonymous, and it stays off the public board."""
    if verdict not in Verdict.values:
        raise errors.InvalidInput(f"verdict must be one of {', '.join(Verdict.values)}; got {verdict!r}")
    if battle.status == LiveBattleStatus.VOID:
        raise errors.InvalidInput("this battle is void (a side failed to answer); it cannot be voted on")
    if battle.status == LiveBattleStatus.VOTED:
        judgment = battle.comparison.judgments.filter(judge=battle.judge, supersedes__isnull=True).first()
        return {"judgment": judgment.public_id, "verdict": judgment.verdict, "duplicate": True,
                "reveal": reveal(battle.comparison)}, False  # fmt: skip
    done = {
        (g.turn, g.side): g
        for g in battle.generations.filter(status=GenerationStatus.DONE).select_related("output__system")
    }
    turns = sorted({turn for turn, side in done if (turn, "a") in done and (turn, "b") in done})
    if not turns:
        raise errors.InvalidInput("voting opens once both systems have answered")
    last = turns[-1]
    output_a, output_b = done[(last, "a")].output, done[(last, "b")].output
    texts = [g.text for g in done.values()]
    leaks = find_leaks(texts, [battle.system_a, battle.system_b]) if battle.modality == Modality.TEXT else []
    with transaction.atomic():
        claimed = LiveBattle.objects.filter(
            pk=battle.pk, status__in=[LiveBattleStatus.READY, LiveBattleStatus.GENERATING]
        ).update(status=LiveBattleStatus.VOTED)
        if not claimed:
            raise errors.InvalidInput("this battle changed meanwhile; reload it")
        comparison = Comparison.objects.create(
            prompt=battle.prompt, output_a=output_a, output_b=output_b, origin=ComparisonOrigin.LIVE,
            served_to=battle.judge,
        )  # fmt: skip
        LiveBattle.objects.filter(pk=battle.pk).update(comparison=comparison)
        vote = Vote(
            comparison=comparison, judge=battle.judge, verdict=verdict,
            metadata={"live_battle": str(battle.public_id), "turns": last + 1, "identity_leak": bool(leaks),
                      "leaked_words": leaks},
        )  # fmt: skip
        judgment, created = do_record_judgment(vote)
    return {"judgment": judgment.public_id, "verdict": judgment.verdict, "duplicate": not created,
            "reveal": reveal(comparison), "anonymous": not leaks}, created  # fmt: skip
