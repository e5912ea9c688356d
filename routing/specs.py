"""Judge specs as a project names them: routing.judges' own (``get_judge``) plus two that
need the database, so they live here rather than in the Django-free judges package.

    smollm2 | generate-smollm2 | model:/dir | generate-model:/dir | openai:[MODEL]   (routing.judges)
    reward:RUN_ID     a finished reward-model TrainingRun (routing.reward.RewardModelJudge)
    imported:NAME     the verdicts an import brought for judge NAME (already Judgments; replayed)
"""

from __future__ import annotations

from arena.errors import InvalidInput
from routing.judges import DEFAULT_JUDGE, ImportedJudge, AutomaticJudge, JudgeError, get_judge

LOGIT_SPECS = ("smollm2",)
PREFIXES = ("model:", "generate-model:", "openai:", "reward:", "imported:")
NAMED = ("smollm2", "generate-smollm2")


def check_judge_spec(spec: str | None) -> str:
    """The spec, stripped, if it has a known shape (whether it runs is the worker's business)."""
    spec = (spec or "").strip() or DEFAULT_JUDGE
    if spec in NAMED or spec.startswith(PREFIXES):
        prefix, _, rest = spec.partition(":")
        if prefix in ("model", "generate-model", "imported") and not rest.strip():
            raise InvalidInput(f"judge {spec!r} names nothing after the colon")
        if prefix == "reward" and not rest.strip().isdigit():
            raise InvalidInput(f"judge {spec!r}: reward: takes a training run id, e.g. reward:3")
        return spec
    raise InvalidInput(
        f"unknown judge {spec!r}: use smollm2, generate-smollm2, model:/dir, generate-model:/dir, "
        "openai:[MODEL], reward:RUN_ID or imported:NAME"
    )


def build_judge(spec: str, project=None, batch_size: int | None = None) -> AutomaticJudge:
    """The judge named by ``spec``; ``imported:NAME`` needs the project whose import it replays.

    Raises JudgeError when it cannot be built (unknown run, missing endpoint configuration).
    """
    spec = check_judge_spec(spec)
    if spec.startswith("reward:"):
        from .reward import RewardModelJudge

        options = {"batch_size": batch_size} if batch_size else {}
        return RewardModelJudge.for_run(spec.split(":", 1)[1].strip(), **options)
    if spec.startswith("imported:"):
        if project is None:
            raise JudgeError(f"{spec}: imported verdicts belong to a project")
        return imported_judge(project, spec.split(":", 1)[1].strip())
    logit = spec == "smollm2" or spec.startswith("model:")
    return get_judge(spec, **({"batch_size": batch_size} if logit and batch_size else {}))


def imported_judge(project, name: str) -> ImportedJudge:
    """Replays the project's imported judgments of the automatic judge ``name``.

    Its identity is the Judge row the import created (kind external_judge, no version), so
    its verdicts are the judgments already there and nothing is written twice.
    """
    from annotation.models import ProjectItem
    from arena.models import JudgeKind, Judgment

    item_of = dict(ProjectItem.objects.filter(project=project).values_list("comparison_id", "pk"))
    rows = Judgment.objects.filter(
        judge__kind=JudgeKind.EXTERNAL_JUDGE, judge__name=name, judge__version="", supersedes__isnull=True,
        comparison_id__in=ProjectItem.objects.filter(project=project).values("comparison_id"),
    ).values_list("comparison_id", "verdict", "confidence")  # fmt: skip
    # both_bad is no verdict a judge gives (a, b, tie): read as a tie, as routing.judges.files does.
    records = {str(item_of[comparison_id]): {"verdict": "tie" if verdict == "both_bad" else verdict,
                                             "confidence": confidence}
               for comparison_id, verdict, confidence in rows}
    if not records:
        raise JudgeError(f"imported:{name}: project {project.name!r} has no imported judgments by {name!r}")
    return ImportedJudge(name, records, version="")
