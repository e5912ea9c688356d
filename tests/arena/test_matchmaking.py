import random

import pytest
from django.db import IntegrityError, transaction

from arena import errors
from arena.models import Comparison, Judgment, Output, System
from arena.voting import actions


def vote(judge, comparison, verdict="a"):
    token = actions.issue_vote_token(comparison, judge)
    return actions.do_record_judgment(actions.check_vote(token=token, judge=judge, verdict=verdict))


def test_never_serves_a_pair_the_voter_has_judged(arena_factory, annotator):
    # given 3 systems x 2 prompts = 6 distinct output pairs
    arena_factory("text", n_systems=3, n_prompts=2)
    judge = actions.judge_for_user(annotator)
    seen = set()
    # when the voter judges everything
    for _ in range(6):
        comparison = actions.next_comparison(judge, "text", rng=random.Random(len(seen)))
        assert comparison.pair_key not in seen
        assert comparison.output_a.system_id != comparison.output_b.system_id
        assert comparison.output_a.prompt_id == comparison.output_b.prompt_id == comparison.prompt_id
        seen.add(comparison.pair_key)
        vote(judge, comparison)
    # then nothing is left, with a message that says so
    with pytest.raises(errors.NothingToCompare, match="judged every available pair"):
        actions.next_comparison(judge, "text")
    assert len(seen) == 6


def test_unanswered_comparison_is_served_again(arena_factory, annotator):
    arena_factory("text", n_systems=4, n_prompts=3)
    judge = actions.judge_for_user(annotator)
    first = actions.next_comparison(judge, "text")
    again = actions.next_comparison(judge, "text")
    assert again.pk == first.pk
    vote(judge, first)
    assert actions.next_comparison(judge, "text").pk != first.pk


def test_sides_are_random(arena_factory, make_user):
    arena_factory("text", n_systems=2, n_prompts=1)
    low_system = System.objects.order_by("id").first()
    left = 0
    for i in range(40):
        judge = actions.judge_for_user(make_user(f"voter{i}"))
        comparison = actions.next_comparison(judge, "text", rng=random.Random(i))
        left += comparison.output_a.system_id == low_system.id
    assert 8 <= left <= 32


def test_inactive_systems_and_other_modalities_are_left_out(arena_factory, annotator):
    arena_factory("text", n_systems=3, n_prompts=1)
    arena_factory("image", n_systems=2, n_prompts=1)
    System.objects.filter(name="text-sys-0").update(is_active=False)
    judge = actions.judge_for_user(annotator)
    served = set()
    while True:
        try:
            comparison = actions.next_comparison(judge, "text")
        except errors.NothingToCompare:
            break
        served |= {comparison.output_a.system.name, comparison.output_b.system.name}
        vote(judge, comparison)
    assert served == {"text-sys-1", "text-sys-2"}


def test_empty_arena_says_outputs_may_be_generating(db, annotator):
    judge = actions.judge_for_user(annotator)
    with pytest.raises(errors.NothingToCompare, match="may still be generating"):
        actions.next_comparison(judge, "image")


def test_one_original_judgment_per_comparison_and_judge(arena_factory, annotator):
    arena_factory("text")
    judge = actions.judge_for_user(annotator)
    comparison = actions.next_comparison(judge, "text")
    first, created = vote(judge, comparison)
    assert created
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(comparison=comparison, judge=judge, verdict="b")
    # a correction is appended and supersedes the first; the first is kept unchanged
    correction = Judgment.objects.create(comparison=comparison, judge=judge, verdict="b", supersedes=first)
    first.refresh_from_db()
    assert first.verdict == "a" and first.superseded_by == correction
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(comparison=comparison, judge=judge, verdict="tie", supersedes=first)


def test_comparison_needs_two_different_outputs(arena_factory):
    arena_factory("text")
    output = Output.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Comparison.objects.create(prompt=output.prompt, output_a=output, output_b=output)
