"""The fast vote loop (arena.hotcache, arena.voting.matchmaking, arena.fastpath, CachedTokenAuthentication,
request_refresh_after_vote, VoteView's shape check): what its caches and hand-written
statements promise, on the default test database (SQLite). The `rows` checks run on
PostgreSQL too, from test_vote_path_postgres.py."""

import datetime
import random
import uuid
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Group
from django.core import signing
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIClient

from arena import errors, hotcache
from arena.api.authentication import CachedTokenAuthentication
from arena.board import snapshots as leaderboard
from arena.board.snapshots import battle_for
from arena.models import (
    Arena,
    Battle,
    Comparison,
    ComparisonOrigin,
    Judgment,
    Output,
    Prompt,
    System,
)
from arena.outputs.rendered import rendered
from arena.roles import ANNOTATOR, ensure_roles
from arena.voting import actions
from arena import fastpath as rows
from arena.voting import matchmaking, presenters

NEXT = "/api/arena/next/"
VOTE = "/api/arena/vote/"


def vote(judge, comparison, verdict="a"):
    token = actions.issue_vote_token(comparison, judge)
    return actions.do_record_judgment(actions.check_vote(token=token, judge=judge, verdict=verdict))


@pytest.fixture
def judge(annotator):
    return actions.judge_for_user(annotator)


@pytest.fixture
def duel(db):
    """Two text systems answering one categorised prompt, with metadata on the outputs."""
    systems = [System.objects.create(name=f"duel-{i}", modality="text") for i in range(2)]
    prompt = Prompt.objects.create(text="Explain **joins**", categories=["code", "sql"])
    outputs = [
        Output.objects.create(
            system=system, prompt=prompt, text=f"Answer {i}: **bold**\n\n- a list",
            metadata={"tokens": 7 + i, "sampling": {"temperature": 0.7}},
        )  # fmt: skip
        for i, system in enumerate(systems)
    ]
    return SimpleNamespace(systems=systems, prompt=prompt, outputs=outputs)


# --- hotcache ---------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_memo():
    made = []

    def make(**kwargs):
        # A unique name: signal receivers are connected under it.
        memo = hotcache.Memo(f"test memo {uuid.uuid4().hex}", **kwargs)
        made.append(memo)
        return memo

    yield make
    for memo in made:
        hotcache._memos.remove(memo)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(hotcache, "time", SimpleNamespace(monotonic=clock))
    return clock


def counting(value="value"):
    calls = []

    def compute():
        calls.append(1)
        return f"{value} #{len(calls)}"

    compute.calls = calls
    return compute


def test_memo_serves_its_copy_within_the_ttl_and_recomputes_after(make_memo, clock, settings):
    # given
    settings.ARENA_CACHE_SECONDS = 5
    memo = make_memo()
    compute = counting()
    # when / then: the first read computes, reads within 5 s get the same copy
    assert memo.get("k", compute) == "value #1"
    clock.now += 4.9
    assert memo.get("k", compute) == "value #1"
    assert memo.get("other", compute) == "value #2"  # keys are separate
    # and at 5 s the copy has expired
    clock.now += 0.1
    assert memo.get("k", compute) == "value #3"
    assert len(compute.calls) == 3


def test_memo_own_ttl_outlives_the_setting_but_zero_still_turns_it_off(make_memo, clock, settings):
    # given a memo for values that never change (an output's HTML)
    settings.ARENA_CACHE_SECONDS = 5
    memo = make_memo(ttl=600)
    compute = counting()
    memo.get("k", compute)
    # when 10 minutes less a second have passed, then it is still the first copy
    clock.now += 599
    assert memo.get("k", compute) == "value #1"
    # when caching is turned off, then every read computes
    settings.ARENA_CACHE_SECONDS = 0
    assert memo.get("k", compute) == "value #2"
    assert memo.get("k", compute) == "value #3"


def test_cache_seconds_zero_disables_caching(make_memo, settings):
    settings.ARENA_CACHE_SECONDS = 0
    memo = make_memo()
    compute = counting()
    assert [memo.get("k", compute) for _ in range(3)] == ["value #1", "value #2", "value #3"]


def test_saving_or_deleting_a_source_model_clears_the_memo(make_memo, settings, db):
    # given a memo fed by systems, holding a copy
    settings.ARENA_CACHE_SECONDS = 3600
    memo = make_memo(invalidated_by=("arena.System",))
    compute = counting()
    memo.get("k", compute)
    # when an unrelated model is saved, then the copy stays
    Prompt.objects.create(text="unrelated")
    assert memo.get("k", compute) == "value #1"
    # when a system is saved, then it is recomputed
    system = System.objects.create(name="new", modality="text")
    assert memo.get("k", compute) == "value #2"
    # when a system is deleted, then it is recomputed again
    system.delete()
    assert memo.get("k", compute) == "value #3"


@pytest.fixture
def api_token(annotator):
    return Token.objects.create(user=annotator)


def test_token_memo_sees_a_newly_granted_role_at_once(make_user, settings):
    # given a user without a role whose token is cached
    settings.ARENA_CACHE_SECONDS = 3600
    ensure_roles()
    user = make_user("newcomer", role=None)
    token = Token.objects.create(user=user)
    auth = CachedTokenAuthentication()
    before, _ = auth.authenticate_credentials(token.key)
    assert not before.has_perm("arena.add_judgment")
    # when they are added to the annotators' group in this process (an m2m change only)
    user.groups.add(Group.objects.get(name=ANNOTATOR))
    # then the next request sees the role
    after, _ = auth.authenticate_credentials(token.key)
    assert after.has_perm("arena.add_judgment")


def test_deleted_token_is_refused_at_once(api_token, settings):
    settings.ARENA_CACHE_SECONDS = 3600
    auth = CachedTokenAuthentication()
    auth.authenticate_credentials(api_token.key)
    api_token.delete()
    with pytest.raises(AuthenticationFailed):
        auth.authenticate_credentials(api_token.key)


# --- token authentication through the API ----------------------------------------------------


def test_revoking_the_annotator_role_refuses_the_next_vote(arena_factory, annotator, api_token, settings):
    # given a voter whose token and roles this process has cached while serving a comparison
    settings.ARENA_CACHE_SECONDS = 3600
    arena_factory("text")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token.key}")
    served = client.get(NEXT, {"modality": "text"})
    assert served.status_code == 200, served.content
    # when an admin revokes the role in this process
    annotator.groups.remove(Group.objects.get(name=ANNOTATOR))
    # then the vote is refused, not recorded
    response = client.post(VOTE, {"token": served.json()["token"], "verdict": "a"}, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["error"] == "permission_denied"
    assert Judgment.objects.count() == 0


def test_each_request_gets_its_own_copy_of_the_cached_user(api_token, settings, django_assert_num_queries):
    # given a request that set attributes on its user
    settings.ARENA_CACHE_SECONDS = 3600
    auth = CachedTokenAuthentication()
    first, _ = auth.authenticate_credentials(api_token.key)
    first.voter_note = "set by a view"
    first.username = "changed in one request"
    # when the next request authenticates (from the cache: no query, permissions included)
    with django_assert_num_queries(0):
        second, token = auth.authenticate_credentials(api_token.key)
        may_vote = second.has_perm("arena.add_judgment")
    # then it sees none of that
    assert second is not first and token == api_token
    assert not hasattr(second, "voter_note")
    assert second.username == "ann"
    assert may_vote


# --- matchmaking ------------------------------------------------------------------------------


def judge_all_but(judge, keep_open: int, rng: random.Random) -> set[str]:
    """Judge every available pair but `keep_open` of them (as earlier arena votes); their keys."""
    index = matchmaking.match_index("text", fresh=True)
    triples = [t for pair in index.pairs for t in index.triples(pair)]
    rng.shuffle(triples)
    judged = set()
    for prompt_id, first, second in triples[keep_open:]:
        comparison = Comparison.objects.create(
            prompt_id=prompt_id, output_a_id=first, output_b_id=second, origin=ComparisonOrigin.ARENA,
            served_to=judge,
        )  # fmt: skip
        Judgment.objects.create(comparison=comparison, judge=judge, verdict="tie")
        judged.add(comparison.pair_key)
    return judged


@pytest.fixture
def fallbacks(monkeypatch):
    """Counts the draws the fast path left to the exact path."""
    calls = []
    exact = matchmaking._draw_exact

    def counted(*args, **kwargs):
        calls.append(1)
        return exact(*args, **kwargs)

    monkeypatch.setattr(matchmaking, "_draw_exact", counted)
    return calls


def test_fast_path_rejects_judged_candidates_and_never_serves_them(arena_factory, judge, fallbacks):
    # given 3 systems x 10 prompts = 30 pairs, 26 of them judged: most candidates are judged
    arena_factory("text", n_systems=3, n_prompts=10)
    judged = judge_all_but(judge, keep_open=4, rng=random.Random(7))
    assert len(judged) == 26
    # when the voter goes on voting until nothing is left
    served = []
    for seed in range(10):
        try:
            comparison = actions.next_comparison(judge, "text", rng=random.Random(seed))
        except errors.NothingToCompare:
            break
        served.append(comparison.pair_key)
        vote(judge, comparison)
    # then each open pair was served once, no judged one ever
    assert len(served) == len(set(served)) == 4
    assert not set(served) & judged
    # and the fast path answered some of those draws itself (the last draw, with nothing
    # left, always falls back to the exact path)
    assert len(served) + 1 - len(fallbacks) >= 1


def draw(judge, rng):
    """What next_comparison does when nothing is pending: candidates, the judged ones among
    them from the database, the first open one."""
    drawn = matchmaking.candidates("text", rng)
    keys = [Comparison.make_pair_key(first, second) for _, first, second in drawn]
    _, judged = rows.served_and_judged(judge.pk, "text", timezone.now(), keys)
    return matchmaking.choose(judge, "text", drawn, judged, rng)


def test_fast_path_draws_are_never_judged_pairs(arena_factory, judge, monkeypatch):
    # given an arena where 26 of 30 pairs are judged
    arena_factory("text", n_systems=3, n_prompts=10)
    judged = judge_all_but(judge, keep_open=4, rng=random.Random(3))
    left_to_exact = object()
    monkeypatch.setattr(matchmaking, "_draw_exact", lambda *args: left_to_exact)
    # when the fast path alone draws many times
    draws = [draw(judge, random.Random(seed)) for seed in range(60)]
    # then what it returned is open, and it did return something (and rejected something)
    fast = [Comparison.make_pair_key(drawn[1], drawn[2]) for drawn in draws if drawn is not left_to_exact]
    assert fast and not set(fast) & judged
    assert left_to_exact in draws


def test_system_deactivated_elsewhere_is_not_served_once_the_index_is_rebuilt(arena_factory, judge, settings):
    # given a pending comparison, with this process's copies trusted for an hour
    settings.ARENA_CACHE_SECONDS = 3600
    arena_factory("text", n_systems=3, n_prompts=2)
    pending = actions.next_comparison(judge, "text", rng=random.Random(1))
    assert actions.next_comparison(judge, "text").pk == pending.pk
    # when another process deactivates one of its systems with .update() (no signal here)
    gone = pending.output_a.system_id
    System.objects.filter(pk=gone).update(is_active=False)
    # and this process rebuilds its index
    matchmaking.match_index("text", fresh=True)
    # then the pending comparison is not served again, and not eligible any more
    assert not matchmaking.still_eligible("text", pending.output_a_id, pending.output_b_id)
    served = actions.next_comparison(judge, "text", rng=random.Random(2))
    assert served.pk != pending.pk
    assert gone not in {served.output_a.system_id, served.output_b.system_id}
    assert matchmaking.still_eligible("text", served.output_a_id, served.output_b_id)


def test_outputs_bulk_created_elsewhere_join_an_empty_index_at_once(db, judge, settings):
    # given systems and a prompt without outputs: this process holds an empty index
    settings.ARENA_CACHE_SECONDS = 3600
    systems = [System.objects.create(name=f"late-{i}", modality="text") for i in range(2)]
    prompt = Prompt.objects.create(text="Late prompt")
    with pytest.raises(errors.NothingToCompare, match="may still be generating"):
        actions.next_comparison(judge, "text")
    assert matchmaking.match_index("text").pairs == ()
    # when the outputs arrive with bulk_create (no signal)
    outputs = Output.objects.bulk_create(
        [Output(system=system, prompt=prompt, text=f"late answer {i}") for i, system in enumerate(systems)]
    )
    # then the next draw finds them
    comparison = actions.next_comparison(judge, "text")
    assert {comparison.output_a_id, comparison.output_b_id} == {output.pk for output in outputs}


# --- rows (also run on PostgreSQL: test_vote_path_postgres.py) ---------------------------------

VOTE_DATA = {
    "verdict": "b",
    "time_to_vote_ms": 4321,
    "play_events": [{"side": "a", "type": "play", "position": 0.0, "t": 12}],
    "aspects": {"helpful": "b", "naïve": ["ü", 1.5, None]},
    "rationale": "B says “why”",
    "metadata": {"client": {"v": 2}, "identity_leak": False},
}


def raw_row(model, pk) -> dict:
    """The row as the database holds it, column by column, before any field converts it."""
    columns = [field.column for field in model._meta.concrete_fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT {", ".join(connection.ops.quote_name(c) for c in columns)} '
            f"FROM {connection.ops.quote_name(model._meta.db_table)} WHERE id = %s",
            [pk],
        )
        return dict(zip(columns, cursor.fetchone(), strict=True))


def without(row: dict, *names) -> dict:
    return {key: value for key, value in row.items() if key not in names}


def test_insert_linked_writes_what_the_orm_writes(duel, judge, make_user):
    # given one comparison judged by two voters: one through the ORM, one through rows
    comparison = actions.next_comparison(judge, "text", rng=random.Random(0))
    other = actions.judge_for_user(make_user("other"))
    with transaction.atomic():
        by_orm = Judgment.objects.create(comparison=comparison, judge=other, **VOTE_DATA)
        orm_battle = battle_for(by_orm)
        orm_battle.save()
    # when
    judgment = Judgment(comparison=rows.comparison_for_vote(comparison.public_id), judge=judge, **VOTE_DATA)
    with transaction.atomic():
        battle = rows.insert_linked(judgment, battle_for, "judgment")
    # then both rows exist, linked, as the returned instances say
    assert judgment.pk is not None and battle.pk is not None and battle.judgment_id == judgment.pk
    stored = Judgment.objects.get(pk=judgment.pk)
    assert isinstance(stored.public_id, uuid.UUID) and stored.public_id == judgment.public_id
    assert timezone.is_aware(stored.created_at) and stored.created_at == judgment.created_at
    stored_battle = Battle.objects.get(pk=battle.pk)
    assert stored_battle.tstamp == stored.created_at
    assert stored_battle.style == orm_battle.style and set(stored_battle.style) == {"a", "b"}
    # and, column by column, the same values as the ORM's rows, in the same representation
    mine, theirs = raw_row(Judgment, judgment.pk), raw_row(Judgment, by_orm.pk)
    assert without(mine, "id", "public_id", "judge_id", "created_at") == without(
        theirs, "id", "public_id", "judge_id", "created_at"
    )
    for column in ("public_id", "created_at"):
        assert type(mine[column]) is type(theirs[column])
        assert len(str(mine[column])) == len(str(theirs[column]))
    mine, theirs = raw_row(Battle, battle.pk), raw_row(Battle, orm_battle.pk)
    assert without(mine, "id", "judgment_id", "judge_name", "tstamp") == without(
        theirs, "id", "judgment_id", "judge_name", "tstamp"
    )
    assert type(mine["tstamp"]) is type(theirs["tstamp"])
    # and the ORM reads back the data it was given
    assert {name: getattr(stored, name) for name in VOTE_DATA} == VOTE_DATA


def test_duplicate_judgment_raises_and_leaves_no_battle(duel, judge):
    # given a recorded judgment
    comparison = actions.next_comparison(judge, "text")
    with transaction.atomic():
        rows.insert_linked(Judgment(comparison=comparison, judge=judge, verdict="a"), battle_for, "judgment")
    # when the same voter's second judgment of it is written
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.insert_linked(Judgment(comparison=comparison, judge=judge, verdict="b"), battle_for, "judgment")
    # then nothing more was written
    assert list(Judgment.objects.values_list("verdict", flat=True)) == ["a"]
    assert Battle.objects.count() == 1


def test_comparison_for_vote_loads_what_the_vote_reads_in_one_statement(duel, judge, django_assert_num_queries):
    # given
    comparison = actions.next_comparison(judge, "text")
    expected = Comparison.objects.select_related("prompt", "output_a", "output_b").get(pk=comparison.pk)

    def what_a_vote_reads(c):
        return (
            c.pk, c.public_id, c.pair_key, c.origin, c.served_to_id, c.modality, c.prompt.categories,
            [(o.pk, o.system_id, o.prompt_id, o.metadata, o.media_type, str(o.media), o.turn)
             for o in (c.output_a, c.output_b)],
        )  # fmt: skip

    # when it is loaded by its public id (as the token carries it: a string)
    loaded = rows.comparison_for_vote(str(comparison.public_id))
    # then it holds what the ORM reads
    assert what_a_vote_reads(loaded) == what_a_vote_reads(expected)
    assert loaded.prompt.categories == ["code", "sql"] and loaded.output_a.metadata["sampling"]["temperature"] == 0.7
    # and reading all that takes the one statement
    with django_assert_num_queries(1):
        loaded = rows.comparison_for_vote(comparison.public_id)
        what_a_vote_reads(loaded)
    # and an unknown or malformed id
    assert rows.comparison_for_vote(uuid.uuid4()) is None
    with pytest.raises(ValueError):
        rows.comparison_for_vote("not-a-uuid")


def served_at(judge, outputs, when, *, origin=ComparisonOrigin.ARENA) -> Comparison:
    comparison = Comparison.objects.create(
        prompt=outputs[0].prompt, output_a=outputs[0], output_b=outputs[1], origin=origin, served_to=judge
    )
    Comparison.objects.filter(pk=comparison.pk).update(created_at=when)
    return comparison


def test_a_vote_reads_no_comparison_back_its_token_carries_it(duel, judge, settings):
    # given a served comparison, its prompt and outputs already read once in this process
    settings.ARENA_CACHE_SECONDS = 3600
    comparison = actions.next_comparison(judge, "text")
    leaderboard.default_arena()
    token = actions.issue_vote_token(comparison, judge)
    warm = actions.check_vote(token=token, judge=judge, verdict="a")
    assert warm.comparison.prompt.categories == ["code", "sql"]
    battle_for(Judgment(comparison=warm.comparison, judge=judge, verdict="a"))  # the outputs' style counted
    # when the vote is checked and written
    with CaptureQueriesContext(connection) as statements:
        recorded = actions.check_vote(token=token, judge=judge, verdict="b")
        judgment, created = actions.do_record_judgment(recorded)
    # then no statement read the comparison, its prompt or its outputs: only writes (and
    # the refresh claim), and the judgment and battle are what the comparison says
    reads = [q["sql"] for q in statements.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    assert not [sql for sql in reads if "arena_comparison" in sql or "arena_output" in sql or "arena_prompt" in sql]
    assert created and judgment.comparison_id == comparison.pk
    battle = Battle.objects.get(judgment=judgment)
    assert (battle.system_a_id, battle.system_b_id) == (comparison.output_a.system_id, comparison.output_b.system_id)
    assert (battle.category, battle.modality, battle.outcome) == ("code", "text", "b")


def test_a_token_from_before_tokens_carried_the_comparison_still_votes(duel, judge):
    # given a token in the earlier format: the comparison's public id and the judge only
    comparison = actions.next_comparison(judge, "text")
    token = signing.dumps({"c": comparison.public_id.hex, "j": judge.pk}, salt=actions.VOTE_TOKEN_SALT, compress=True)
    # when it is used, then the vote is recorded on that comparison
    judgment, created = actions.do_record_judgment(actions.check_vote(token=token, judge=judge, verdict="tie"))
    assert created and judgment.comparison_id == comparison.pk
    assert Battle.objects.get(judgment=judgment).category == "code"


@pytest.mark.django_db(transaction=True)
def test_a_vote_on_a_comparison_deleted_after_its_token_is_404_and_writes_nothing(duel, judge):
    # given a token for a comparison that is then deleted
    comparison = actions.next_comparison(judge, "text")
    token = actions.issue_vote_token(comparison, judge)
    actions.check_vote(token=token, judge=judge, verdict="a")  # its prompt and outputs now cached
    Comparison.objects.filter(pk=comparison.pk).delete()
    # when the vote comes, then it is refused as not found, and nothing was written
    with pytest.raises(errors.NotFound, match=f"comparison {comparison.public_id} does not exist"):
        actions.do_record_judgment(actions.check_vote(token=token, judge=judge, verdict="a"))
    assert (Judgment.objects.count(), Battle.objects.count()) == (0, 0)


def test_latest_served_is_the_newest_only_and_says_whether_it_is_open(duel, judge, make_user):
    # given two comparisons served to the voter, and newer ones that are not theirs to vote on
    now = timezone.now()
    older = served_at(judge, duel.outputs, now - datetime.timedelta(minutes=10))
    newer = served_at(judge, duel.outputs[::-1], now - datetime.timedelta(minutes=5))
    served_at(judge, duel.outputs, now - datetime.timedelta(minutes=1), origin=ComparisonOrigin.IMPORT)
    served_at(actions.judge_for_user(make_user("other")), duel.outputs, now)
    image_prompt = Prompt.objects.create(text="Draw", modality="image")
    images = [Output.objects.create(system=s, prompt=image_prompt, media="outputs/x.png", media_type="image/png")
              for s in duel.systems]  # fmt: skip
    served_at(judge, images, now)
    an_hour_ago = now - datetime.timedelta(hours=1)
    # when / then: the newest text arena comparison, open
    latest, is_open = rows.latest_served(judge.pk, "text", an_hour_ago)
    assert (latest.pk, latest.public_id, latest.pair_key, is_open) == (newer.pk, newer.public_id, newer.pair_key, True)
    assert isinstance(latest.public_id, uuid.UUID)
    # when it was served before `since`, then it is not open
    assert rows.latest_served(judge.pk, "text", now - datetime.timedelta(minutes=6))[1] is True
    assert rows.latest_served(judge.pk, "text", now - datetime.timedelta(minutes=4))[1] is False
    # when it is judged, then it is still the newest, and not open (the older one is not offered)
    Judgment.objects.create(comparison=newer, judge=judge, verdict="a")
    latest, is_open = rows.latest_served(judge.pk, "text", an_hour_ago)
    assert (latest.pk, is_open) == (newer.pk, False)
    assert older.pk != latest.pk
    # and for a voter served nothing, nothing
    assert rows.latest_served(actions.judge_for_user(make_user("fresh")).pk, "text", an_hour_ago) is None


@pytest.mark.parametrize(
    "claimed",
    [
        datetime.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=datetime.UTC),
        datetime.datetime(2026, 3, 1, 12, 30, 15, tzinfo=datetime.UTC),  # no fraction in SQLite's text
        datetime.datetime(2026, 3, 1, 17, 0, 1, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=5))),
    ],
)
def test_refresh_claim_reads_back_an_aware_datetime_equal_to_the_stored_one(db, claimed):
    arena = leaderboard.default_arena()
    assert rows.refresh_state(arena.pk)[0] is None
    Arena.objects.filter(pk=arena.pk).update(refresh_requested_at=claimed)
    value = rows.refresh_state(arena.pk)[0]
    assert timezone.is_aware(value) and value == claimed
    assert value == Arena.objects.get(pk=arena.pk).refresh_requested_at
    assert rows.refresh_state(arena.pk + 1000)[0] is None


# --- leaderboard refresh after votes -----------------------------------------------------------


class WallClock:
    """`timezone.now` for arena.board.snapshots, moved by hand."""

    def __init__(self):
        self.now = timezone.now().timestamp()

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def install(self, monkeypatch) -> None:
        monkeypatch.setattr(leaderboard, "timezone", SimpleNamespace(
            now=lambda: datetime.datetime.fromtimestamp(self.now, datetime.UTC), timedelta=datetime.timedelta,
        ))  # fmt: skip


@pytest.fixture
def wall_clock(monkeypatch):
    clock = WallClock()
    clock.install(monkeypatch)
    return clock


@pytest.fixture
def queued(monkeypatch, wall_clock):
    """The refresh tasks queued, as (arena id, time it may start)."""
    from arena.tasks import refresh_leaderboards

    calls = []
    monkeypatch.setattr(
        refresh_leaderboards, "apply_async",
        lambda args, countdown=0, **kwargs: calls.append((args[0], wall_clock.now + countdown)),
    )  # fmt: skip
    return calls


def test_a_vote_while_a_claim_stands_reads_it_and_queues_nothing(db, settings, queued, django_assert_num_queries):
    # given a vote that claimed a refresh
    settings.LEADERBOARD_DEBOUNCE_SECONDS = 10
    arena = leaderboard.default_arena()
    assert leaderboard.request_refresh_after_vote(arena) is True
    # when the next votes come within the debounce, then each reads the claim (in the
    # database, where every host sees it) and queues nothing
    with django_assert_num_queries(2):
        assert leaderboard.request_refresh_after_vote(arena) is False
        assert leaderboard.request_refresh_after_vote(arena) is False
    assert len(queued) == 1


def test_the_refresh_claim_is_kept_in_no_process_state():
    # a per-process copy of the claim would let a host whose clock runs behind the
    # worker's skip a vote's refresh (ARCHITECTURE.md: no per-process dict)
    assert not any(isinstance(value, dict) and "refresh" in name for name, value in vars(leaderboard).items())


def test_a_vote_after_the_task_took_the_claim_claims_again(db, settings, queued, wall_clock):
    # given a vote that claimed a refresh, and the task that took the claim
    settings.LEADERBOARD_DEBOUNCE_SECONDS = 10
    arena = leaderboard.default_arena()
    leaderboard.request_refresh_after_vote(arena)
    wall_clock.advance(10)
    Arena.objects.filter(pk=arena.pk).update(refresh_requested_at=None)
    # when the next vote comes
    assert leaderboard.request_refresh_after_vote(arena) is True
    # then it claimed and queued another refresh
    assert len(queued) == 2
    assert rows.refresh_state(arena.pk)[0].timestamp() == pytest.approx(wall_clock.now)


def test_a_vote_right_after_the_refresh_started_gets_a_refresh(
    arena_factory, judge, settings, queued, wall_clock, django_capture_on_commit_callbacks
):
    # given a vote that queued a refresh, whose countdown has passed: the task starts
    settings.LEADERBOARD_DEBOUNCE_SECONDS = 10
    arena_factory("text", n_systems=3, n_prompts=2)
    with django_capture_on_commit_callbacks(execute=True):
        vote(judge, actions.next_comparison(judge, "text"))
    assert len(queued) == 1
    wall_clock.advance(queued[0][1] - wall_clock.now)
    leaderboard.refresh_arena(leaderboard.default_arena())
    # when a vote comes right after the refresh read the battles
    wall_clock.advance(0.001)
    with django_capture_on_commit_callbacks(execute=True):
        vote(judge, actions.next_comparison(judge, "text"))
    # then another refresh is queued for it
    assert len(queued) == 2
    assert Battle.objects.count() == 2


def test_no_vote_is_left_without_a_refresh(db, settings, queued, wall_clock):
    """Web processes take votes at random moments while the worker starts each queued
    refresh when its countdown ends: every vote is followed by the start of a refresh
    (which reads the battles after it starts) within the debounce."""
    debounce = settings.LEADERBOARD_DEBOUNCE_SECONDS = 1.0
    arena = leaderboard.default_arena()
    rng = random.Random(11)
    votes, starts = [], {}  # starts: queued task number -> when it started

    def start_due_refreshes():
        for number, (_, start) in enumerate(queued):
            if start <= wall_clock.now and number not in starts:
                starts[number] = start
                Arena.objects.filter(pk=arena.pk).update(refresh_requested_at=None)

    for _ in range(300):
        wall_clock.advance(rng.uniform(0, 0.4))
        start_due_refreshes()
        votes.append(wall_clock.now)
        leaderboard.request_refresh_after_vote(arena)
    wall_clock.advance(10 * debounce)
    start_due_refreshes()

    uncovered = [v for v in votes if not any(v < start <= v + debounce + 1e-6 for start in starts.values())]
    assert uncovered == []
    assert 10 < len(queued) < len(votes) / 2  # debounced: many votes per refresh


# --- the vote endpoint's shape check -----------------------------------------------------------


@pytest.fixture
def voter(arena_factory, annotator):
    arena_factory("text")
    client = APIClient()
    client.force_authenticate(annotator)
    served = client.get(NEXT, {"modality": "text"})
    assert served.status_code == 200, served.content
    return SimpleNamespace(client=client, token=served.json()["token"])


@pytest.mark.parametrize(
    "body, fragment",
    [
        ([{"token": "TOKEN", "verdict": "a"}], "must be an object with token and verdict"),
        ("a", "must be an object with token and verdict"),
        ({"token": 12345, "verdict": "a"}, "token must be a string"),
        ({"token": "TOKEN", "verdict": ["a"]}, "verdict must be a string"),
        ({"token": "TOKEN", "verdict": "a", "time_to_vote_ms": True}, "time_to_vote_ms must be a whole number"),
    ],
)
def test_vote_body_of_the_wrong_shape_is_400_naming_the_problem(voter, body, fragment):
    if isinstance(body, dict) and body.get("token") == "TOKEN":
        body = {**body, "token": voter.token}
    elif isinstance(body, list):
        body = [{**body[0], "token": voter.token}]
    response = voter.client.post(VOTE, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid"
    assert fragment in response.json()["detail"]
    assert Judgment.objects.count() == 0


def test_form_encoded_vote_is_recorded(voter):
    response = voter.client.post(
        VOTE, urlencode({"token": voter.token, "verdict": "b", "time_to_vote_ms": "1500"}),
        content_type="application/x-www-form-urlencoded",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    judgment = Judgment.objects.get()
    assert (judgment.verdict, judgment.time_to_vote_ms) == ("b", 1500)
    assert response.json()["reveal"]["a"]["system"] != response.json()["reveal"]["b"]["system"]


def test_the_vote_loop_answers_the_bytes_drf_would_render():
    # given a body with what a comparison can hold: a UUID, non-ASCII text, the two
    # JavaScript line separators, numbers, None
    body = {"comparison": uuid.UUID(int=7), "prompt": {"html": "<p>caf\u00e9 \u2028 \u2029 \U0001f600</p>"},
            "duration": 1.5, "url": None, "ok": True}  # fmt: skip
    # when the hot endpoints encode it, then the bytes are JSONRenderer's
    from rest_framework.renderers import JSONRenderer

    from arena.api.views import JSONOnlyView

    response = JSONOnlyView.answer(body, 201)
    assert response.content == JSONRenderer().render(body)
    assert (response.status_code, response["Content-Type"]) == (201, "application/json")


def test_insert_params_convert_values_not_already_of_the_field_type(db):
    # given a judgment with values of other types than its fields' (a numeric string for
    # a key, an enum member for text, a bool for an integer)
    from arena.models import Verdict

    connection = transaction.get_connection()
    judgment = Judgment(comparison_id="3", judge_id=4, verdict=Verdict.A, time_to_vote_ms=True, confidence=0.5)
    # when it is turned into statement parameters
    params = rows.insert_judgment_row.params(judgment, connection)
    # then each is what the field itself makes of it, as the ORM would write it
    expected = [f.get_db_prep_save(f.pre_save(judgment, True), connection) for f in rows.insert_judgment_row.fields]
    names = [attname for attname, _, _ in rows.insert_judgment_row.columns]
    del params[names.index("created_at")], expected[names.index("created_at")]  # "now", each time
    assert params == expected
    assert [type(value) for value in params] == [type(value) for value in expected]
    assert params[names.index("comparison_id")] == 3 and params[names.index("time_to_vote_ms")] == 1


# --- what is derived from an output's text, once for every process ---------------------------


def test_an_output_is_rendered_once_for_every_process_and_again_after_its_text_changes(duel, judge, monkeypatch):
    """Each web process kept its own rendering of every output it served (8 renders an
    output over two hosts of 4 processes); now the first process to serve an output keeps
    its HTML and style counts on the row, and the others read them there."""
    from arena.outputs import rendered as rendered_module
    from arena.outputs.textstats import style_features
    from arena.voting.presenters import comparison_payload

    made = []
    real_derive = rendered_module.derive
    monkeypatch.setattr(rendered_module, "derive", lambda output: made.append(output.pk) or real_derive(output))
    comparison = actions.next_comparison(judge, "text")
    first = comparison_payload(comparison, "t")
    assert sorted(made) == sorted(o.pk for o in duel.outputs)
    stored = Output.objects.get(pk=duel.outputs[0].pk).rendered
    assert "<strong>bold</strong>" in stored["html"] and "<li>a list</li>" in stored["html"]
    assert stored["style"] == style_features(duel.outputs[0].text, 7)

    hotcache.clear_all()  # another process: no copies of its own
    again = comparison_payload(Comparison.objects.get(pk=comparison.pk), "t")
    assert (again["a"], again["b"]) == (first["a"], first["b"])
    vote(judge, comparison)  # the battle's style counts come from the row too
    assert len(made) == 2
    battle = Battle.objects.get(judgment__comparison=comparison)
    assert battle.style["a"] == Output.objects.get(pk=comparison.output_a_id).rendered["style"]

    output = Output.objects.get(pk=duel.outputs[0].pk)
    output.text = "Now a *different* answer"
    output.save(update_fields=["text"])
    assert Output.objects.get(pk=output.pk).rendered is None
    hotcache.clear_all()
    assert "<em>different</em>" in comparison_payload(Comparison.objects.get(pk=comparison.pk), "t")[
        "a" if comparison.output_a_id == output.pk else "b"]["html"]  # fmt: skip
    assert made[-1] == output.pk


def test_comparison_for_vote_reads_the_kept_rendering(duel, judge):
    comparison = actions.next_comparison(judge, "text")
    from arena.outputs.rendered import rendered

    kept = rendered(Output.objects.get(pk=comparison.output_a_id))
    loaded = rows.comparison_for_vote(comparison.public_id)
    assert loaded.output_a.rendered == kept
    assert loaded.output_b.rendered is None


def test_a_process_that_never_saw_the_comparison_reads_it_in_one_statement(duel, judge, settings):
    # given a served comparison and a process with no copies of its prompt or outputs
    settings.ARENA_CACHE_SECONDS = 3600
    comparison = actions.next_comparison(judge, "text")
    token = actions.issue_vote_token(comparison, judge)
    hotcache.clear_all()
    # when the vote is checked
    with CaptureQueriesContext(connection) as statements:
        checked = actions.check_vote(token=token, judge=judge, verdict="a")
    # then one statement read the prompt and both outputs (it was three, one a row)
    reads = [q["sql"] for q in statements.captured_queries if "arena_output" in q["sql"] or "arena_prompt" in q["sql"]]
    assert len(reads) == 1
    assert checked.comparison.prompt.categories == ["code", "sql"]
    assert {checked.comparison.output_a.system_id, checked.comparison.output_b.system_id} == {
        s.pk for s in duel.systems}  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_cold_process_voting_on_a_deleted_comparison_keeps_no_false_copies(duel, judge):
    # given a token for a comparison deleted before any process read it
    comparison = actions.next_comparison(judge, "text")
    token = actions.issue_vote_token(comparison, judge)
    Comparison.objects.filter(pk=comparison.pk).delete()
    hotcache.clear_all()
    with pytest.raises(errors.NotFound):
        actions.do_record_judgment(actions.check_vote(token=token, judge=judge, verdict="a"))
    # then this process's copies of the outputs, which still exist, are the outputs
    for output in duel.outputs:
        kept = actions._vote_outputs.get(output.pk, lambda: None)
        assert kept is not None and (kept.pk, kept.system_id) == (output.pk, output.system_id)


def test_a_process_that_never_served_the_outputs_reads_them_in_one_statement(duel, judge, settings):
    # given a served comparison and a process with no copies of its prompt or outputs
    settings.ARENA_CACHE_SECONDS = 3600
    comparison = actions.next_comparison(judge, "text")
    expected = Comparison.objects.select_related("prompt", "output_a", "output_b").get(pk=comparison.pk)
    for output in (expected.output_a, expected.output_b):
        rendered(output)  # kept on the row by an earlier process
    hotcache.clear_all()
    served = Comparison.objects.get(pk=comparison.pk)  # ids only, as the insert returns it
    # when it is sent to the voter
    with CaptureQueriesContext(connection) as statements:
        payload = presenters.comparison_payload(served, "token")
    # then one statement read the prompt and both outputs (it was three)
    reads = [q["sql"] for q in statements.captured_queries if "arena_output" in q["sql"] or "arena_prompt" in q["sql"]]
    assert len(reads) == 1
    assert payload["prompt"]["text"] == expected.prompt.text and payload["modality"] == "text"
    assert payload["a"] == {"kind": "text", "html": rendered(expected.output_a)["html"]}
    assert payload["b"] == {"kind": "text", "html": rendered(expected.output_b)["html"]}
    # and the next time this process has them: nothing read
    with CaptureQueriesContext(connection) as statements:
        assert presenters.comparison_payload(Comparison.objects.get(pk=comparison.pk), "token")["a"] == payload["a"]
    assert len(statements.captured_queries) == 1  # the comparison's own get above


def test_the_next_refresh_waits_a_multiple_of_the_last_ones_duration(db, settings, queued, wall_clock, monkeypatch):
    # given a refresh that took 3 s, with refreshing allowed a fifth of a worker
    settings.LEADERBOARD_DEBOUNCE_SECONDS = 0.5
    settings.LEADERBOARD_REFRESH_SHARE = 0.2
    arena = leaderboard.default_arena()
    ticks = iter([100.0, 103.0])
    monkeypatch.setattr(leaderboard, "time", SimpleNamespace(monotonic=lambda: next(ticks)))
    leaderboard.refresh_arena(arena)
    # then the next may start 4 x 3 = 12 s after it ended
    assert Arena.objects.get(pk=arena.pk).refresh_not_before.timestamp() == pytest.approx(wall_clock.now + 12)
    # when a vote comes 2 s later, the refresh it queues waits out the pacing, not the debounce
    wall_clock.advance(2)
    assert leaderboard.request_refresh_after_vote(arena) is True
    assert queued[-1][1] == pytest.approx(wall_clock.now + 10)
    # and a refresh queued from elsewhere (a flagged voter, say) waits as long
    Arena.objects.filter(pk=arena.pk).update(refresh_requested_at=None)
    wall_clock.advance(1)
    assert leaderboard.request_refresh(arena) is True
    assert queued[-1][1] == pytest.approx(wall_clock.now + 9)


def test_refresh_pacing_is_bounded_by_the_debounce_and_twenty_seconds(settings):
    settings.LEADERBOARD_DEBOUNCE_SECONDS = 0.5
    now = timezone.now()
    assert leaderboard.refresh_countdown(None, now) == 0.5
    assert leaderboard.refresh_countdown(now - datetime.timedelta(seconds=5), now) == 0.5  # long past
    assert leaderboard.refresh_countdown(now + datetime.timedelta(seconds=3), now) == pytest.approx(3)
    assert leaderboard.refresh_countdown(now + datetime.timedelta(seconds=300), now) == 20.0
