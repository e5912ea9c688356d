"""The vote loop's hand-written statements (arena.fastpath) on PostgreSQL: the one-statement
judgment-and-battle write, duplicates inside and outside a transaction, and prepared
statements (DUET_DB_PREPARED_STATEMENTS).

The suite's database is SQLite; `test_vote_path_on_postgresql` starts a throwaway
PostgreSQL server (tests/annotation/test_concurrency.py: `throwaway_postgres`, or
DUET_TEST_POSTGRES_URL) and runs this file again in a subprocess on it, where
`TestOnPostgreSQL` is collected instead."""

import datetime
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from arena.board import snapshots as leaderboard
from arena.models import Battle, Comparison, Judgment, Prompt, System
from arena.voting import actions
from arena import fastpath as rows
from arena.voting import matchmaking
from tests.annotation.test_concurrency import throwaway_postgres
from tests.arena import test_judgment_writer as writer_tests
from tests.arena import test_vote_path as on_any_database
from tests.arena.test_judgment_writer import announced, arena_pair, people  # noqa: F401 - fixtures
from tests.arena.test_vote_path import duel, judge, queued, vote, wall_clock  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]
ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def test_vote_path_on_postgresql():
    # given a PostgreSQL server (or a skip that says why there is none)
    with throwaway_postgres() as url:
        # when this file runs on it
        result = subprocess.run(
            [sys.executable, "-m", "pytest", str(Path(__file__).relative_to(ROOT)), "-p", "no:cacheprovider", "-q"],
            cwd=ROOT, env={**_environ(), "DATABASE_URL": url}, capture_output=True, text=True, timeout=540,
        )  # fmt: skip
    # then every PostgreSQL test ran and passed: none skipped
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    summary = output.strip().splitlines()[-1]
    assert re.fullmatch(r"=* ?\d+ passed in [\d.]+s.*", summary), output[-3000:]
    print(f"\nPostgreSQL vote path: {summary}")


test_vote_path_on_postgresql.__test__ = not ON_POSTGRESQL


def _environ() -> dict:
    return {key: value for key, value in os.environ.items() if key != "DUET_DB_PREPARED_STATEMENTS"}


def prepared_statements() -> list[str]:
    """The statements prepared in this connection's session."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall()]


class TestOnPostgreSQL:
    __test__ = ON_POSTGRESQL

    # The checks test_vote_path.py runs on SQLite, here on PostgreSQL (with statements
    # prepared, where the test does not count queries).
    test_insert_linked_writes_what_the_orm_writes = staticmethod(
        on_any_database.test_insert_linked_writes_what_the_orm_writes
    )
    # The one writer's batch, its lost race and corrections (arena.judgments).
    test_a_batch_skips_what_is_recorded_and_announces_the_rest_in_one_event = staticmethod(
        writer_tests.test_a_batch_skips_what_is_recorded_and_announces_the_rest_in_one_event
    )
    test_a_batch_that_lost_a_race_keeps_the_first_judgment_and_writes_the_rest = staticmethod(
        writer_tests.test_a_batch_that_lost_a_race_keeps_the_first_judgment_and_writes_the_rest
    )
    test_a_correction_moves_the_battle_so_the_board_counts_the_vote_once = staticmethod(
        writer_tests.test_a_correction_moves_the_battle_so_the_board_counts_the_vote_once
    )
    test_duplicate_judgment_raises_and_leaves_no_battle = staticmethod(
        on_any_database.test_duplicate_judgment_raises_and_leaves_no_battle
    )
    test_comparison_for_vote_loads_what_the_vote_reads_in_one_statement = staticmethod(
        on_any_database.test_comparison_for_vote_loads_what_the_vote_reads_in_one_statement
    )
    test_a_vote_reads_no_comparison_back_its_token_carries_it = staticmethod(
        on_any_database.test_a_vote_reads_no_comparison_back_its_token_carries_it
    )
    test_a_vote_on_a_comparison_deleted_after_its_token_is_404_and_writes_nothing = staticmethod(
        on_any_database.test_a_vote_on_a_comparison_deleted_after_its_token_is_404_and_writes_nothing
    )
    test_latest_served_is_the_newest_only_and_says_whether_it_is_open = staticmethod(
        on_any_database.test_latest_served_is_the_newest_only_and_says_whether_it_is_open
    )
    test_refresh_claim_reads_back_an_aware_datetime_equal_to_the_stored_one = staticmethod(
        on_any_database.test_refresh_claim_reads_back_an_aware_datetime_equal_to_the_stored_one
    )

    def test_duplicate_vote_inside_a_transaction_leaves_it_usable(self, duel, judge):  # noqa: F811
        # given a recorded vote
        comparison = actions.next_comparison(judge, "text")
        first, created = vote(judge, comparison, "a")
        assert created
        # when the same vote comes again inside the caller's transaction
        with transaction.atomic():
            again, created = vote(judge, comparison, "b")
            # then the first judgment is returned and the transaction goes on working
            Prompt.objects.create(text="written after the duplicate")
            assert Judgment.objects.filter(comparison=comparison).count() == 1
        assert (again.pk, again.verdict, created) == (first.pk, "a", False)
        assert Battle.objects.count() == 1
        assert Prompt.objects.filter(text="written after the duplicate").exists()

    @pytest.mark.django_db(transaction=True)
    def test_vote_outside_a_transaction_is_one_statement(self, duel, judge, queued):  # noqa: F811
        # given a comparison served, no transaction open (autocommit), and the default arena
        # read since it was made (the change stamp of its creation drops the first copy)
        leaderboard.default_arena()
        leaderboard.default_arena()
        comparison = actions.next_comparison(judge, "text")
        token = actions.issue_vote_token(comparison, judge)
        assert not connection.in_atomic_block
        # when the vote is recorded
        with CaptureQueriesContext(connection) as statements:
            judgment, created = actions.do_record_judgment(actions.check_vote(token=token, judge=judge, verdict="b"))
        # then the judgment and its battle were written by one statement, no transaction of its own
        writes = [q["sql"] for q in statements.captured_queries if "INSERT" in q["sql"].upper()]
        assert len(writes) == 1 and writes[0].startswith("WITH r AS (INSERT INTO")
        assert not [q for q in statements.captured_queries if "SAVEPOINT" in q["sql"].upper()]
        assert created and Battle.objects.get().judgment_id == judgment.pk
        assert len(queued) == 1  # its leaderboard refresh asked for at once: the write committed
        # when it comes again, then the first stands and nothing was added
        again, created = actions.do_record_judgment(actions.check_vote(token=token, judge=judge, verdict="a"))
        assert (again.pk, again.verdict, created) == (judgment.pk, "b", False)
        assert (Judgment.objects.count(), Battle.objects.count()) == (1, 1)

    @pytest.mark.django_db(transaction=True)
    def test_vote_loop_statements_are_prepared_on_the_connection(self, duel, judge):  # noqa: F811
        # given a new session, with DUET_DB_PREPARED_STATEMENTS on (the default)
        connection.close()
        connection.ensure_connection()
        assert connection.connection.prepare_threshold == 5
        since = timezone.now() - datetime.timedelta(hours=1)
        # when the vote loop looks up a voter's pending comparison a few times
        for _ in range(3):
            rows.latest_served(judge.pk, "text", since)
        # and the ORM runs a query more often than the threshold
        for _ in range(8):
            list(System.objects.filter(modality="text"))
        # then the vote loop's statement is prepared, once, and the ORM's is not
        prepared = prepared_statements()
        assert len([s for s in prepared if '"arena_comparison"' in s and "LIMIT 1" in s]) == 1, prepared
        assert not [s for s in prepared if '"arena_system"' in s], prepared

    @pytest.mark.django_db(transaction=True)
    def test_nothing_is_prepared_when_turned_off(self, duel, judge, monkeypatch):  # noqa: F811
        # given a new session with DUET_DB_PREPARED_STATEMENTS=0 (no prepare_threshold in OPTIONS)
        monkeypatch.delitem(connection.settings_dict["OPTIONS"], "prepare_threshold")
        connection.close()
        try:
            connection.ensure_connection()
            assert connection.connection.prepare_threshold is None
            comparison = actions.next_comparison(judge, "text")
            since = timezone.now() - datetime.timedelta(hours=1)
            # when the vote loop's statements run many times
            for _ in range(8):
                rows.latest_served(judge.pk, "text", since)
                rows.comparison_for_vote(comparison.public_id)
                rows.served_and_judged(judge.pk, "text", since, [comparison.pair_key])
            # then none is prepared
            assert prepared_statements() == []
        finally:
            connection.close()  # the next test connects with the settings' OPTIONS again

    @pytest.mark.django_db(transaction=True)
    def test_serving_reads_no_more_rows_as_the_voter_history_grows(self, arena_factory, judge):  # noqa: F811
        # given a voter with 400 judged comparisons, and statistics (as autovacuum keeps them)
        arena_factory("text", n_systems=6, n_prompts=30)
        rng = random.Random(3)
        for _ in range(400):
            vote(judge, actions.next_comparison(judge, "text", rng=rng))
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        drawn = matchmaking.candidates("text", rng)
        keys = [Comparison.make_pair_key(first, second) for _, first, second in drawn]
        since = timezone.now() - datetime.timedelta(hours=1)
        # when the statement that serves the next comparison is planned as a prepared one
        params = [*keys, judge.pk, judge.pk, since, judge.pk, "arena", "text"]
        plan = explain_prepared(rows._served_and_judged_sql(len(keys), "postgresql"), params)
        # then the newest comparison comes from walking the (served_to, created_at) index
        # backwards, the judged pairs from the pair keys: neither reads the voter's history
        assert "Index Scan Backward using arena_compa_served_" in plan, plan
        assert "arena_judgment_judge_id" not in plan, plan
        rows_read = [int(n) for n in re.findall(r"actual time=\S+ rows=(\d+)", plan)]
        assert max(rows_read) < 100, plan


def explain_prepared(sql: str, params: list) -> str:
    """EXPLAIN ANALYZE of the statement prepared server-side, with its generic plan (what a
    connection settles on after a few executions)."""
    numbered = iter(range(1, len(params) + 1))
    statement = re.sub(r"%s", lambda _: f"${next(numbered)}", sql)
    raw = connection.connection
    raw.execute("SET plan_cache_mode = force_generic_plan")
    try:
        raw.execute("PREPARE served_and_judged AS " + statement)
        arguments = ", ".join(psycopg.sql.Literal(value).as_string(raw) for value in params)
        plan = raw.execute(f"EXPLAIN (ANALYZE) EXECUTE served_and_judged({arguments})").fetchall()
        raw.execute("DEALLOCATE served_and_judged")
    finally:
        raw.execute("RESET plan_cache_mode")
    return "\n".join(line for (line,) in plan)
