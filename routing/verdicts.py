"""Between the database and the judges' contract: project items as PairItems, stored
judgments back as JudgeVerdicts, and the human labels routing learns from and is scored
against. Reads only; `routing.actions` writes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from annotation.models import ProjectItem
from arena.models import HUMAN_JUDGE_KINDS, Judge, Judgment
from routing.judges import UNPARSABLE, JudgeVerdict, OrderResult, PairItem
from routing.judges.files import majority

# Comparison ids per IN (...) list: under SQLite's default limit of variables with room to spare.
IN_CHUNK = 500


def chunks(values: list, size: int = IN_CHUNK) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def pair_item(item: ProjectItem) -> PairItem:
    """The item as a judge sees it (select_related comparison__prompt, output_a, output_b)."""
    comparison = item.comparison
    return PairItem(
        id=str(item.pk),
        prompt=comparison.prompt.text,
        a=comparison.output_a.text,
        b=comparison.output_b.text,
        modality=comparison.prompt.modality,
        category=item.category,
    )


def items_for_judging(queryset):
    return queryset.select_related("comparison__prompt", "comparison__output_a", "comparison__output_b")


def judge_verdict_metadata(verdict: JudgeVerdict) -> dict:
    """What a judge's Judgment keeps in ``metadata`` beside its verdict and confidence."""
    data = verdict.to_dict()
    for key in ("item_id", "verdict", "confidence", "judge", "judge_version"):
        data.pop(key, None)
    return data


def verdict_from_judgment(item_id, verdict: str, confidence, metadata: dict) -> JudgeVerdict:
    """A stored judgment back as the JudgeVerdict the policy sees (orders included)."""
    orders = tuple(OrderResult(**order) for order in (metadata.get("orders") or ()) if isinstance(order, dict))
    return JudgeVerdict(
        item_id=str(item_id),
        # An imported judge may have said both_bad; judges answer a, b or tie.
        verdict="tie" if verdict == "both_bad" else verdict,
        p_a=metadata.get("p_a"), p_b=metadata.get("p_b"), p_tie=metadata.get("p_tie"),
        confidence=confidence,
        order_consistent=metadata.get("order_consistent"),
        orders=orders,
        detail=metadata.get("detail", ""),
    )  # fmt: skip


def stored_verdicts(judge: Judge, items: list[ProjectItem]) -> dict[int, JudgeVerdict]:
    """{item pk: the judge's verdict} for the items it has judged: its current judgment, or
    its unusable answer."""
    from routing.models import UnusableVerdict

    item_of = defaultdict(list)
    for item in items:
        item_of[item.comparison_id].append(item.pk)
    found: dict[int, JudgeVerdict] = {}
    for ids in chunks(list(item_of)):
        rows = Judgment.objects.filter(judge=judge, comparison_id__in=ids, superseded_by__isnull=True).values_list(
            "comparison_id", "verdict", "confidence", "metadata"
        )
        for comparison_id, verdict, confidence, metadata in rows:
            for item_id in item_of[comparison_id]:
                found[item_id] = verdict_from_judgment(item_id, verdict, confidence, metadata or {})
        unusable = UnusableVerdict.objects.filter(judge=judge, comparison_id__in=ids).values_list(
            "comparison_id", "verdict", "detail", "metadata"
        )
        for comparison_id, verdict, detail, metadata in unusable:
            for item_id in item_of[comparison_id]:
                found.setdefault(item_id, JudgeVerdict(
                    item_id=str(item_id), verdict=verdict or UNPARSABLE, detail=detail,
                    order_consistent=(metadata or {}).get("order_consistent"),
                ))  # fmt: skip
    return found


def human_labels(project) -> dict[int, str]:
    """{comparison pk: the majority of its current human judgments} where there is one.

    both_bad counts as a tie (judges answer a, b or tie); a comparison whose two most
    common verdicts are equally common has no label. Current judgments: after an
    adjudication the reviewer's verdict stands.
    """
    said = defaultdict(list)
    rows = Judgment.objects.filter(
        comparison__project_items__project=project, judge__kind__in=HUMAN_JUDGE_KINDS, superseded_by__isnull=True
    ).values_list("comparison_id", "verdict")
    for comparison_id, verdict in rows.iterator(chunk_size=5000):
        said[comparison_id].append("tie" if verdict == "both_bad" else verdict)
    labels = {}
    for comparison_id, verdicts in said.items():
        label = majority(verdicts)
        if label is not None:
            labels[comparison_id] = label
    return labels
