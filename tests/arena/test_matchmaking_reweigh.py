"""Active matchmaking reweighs pairs for a new board at most every
DUET_MATCHMAKING_REWEIGH_SECONDS per process (under load the board refreshes every second
or two, and each of a host's processes reweighing every time cost a sixth of the web's CPU
per vote in bench/load.py); 0 reweighs on every new board."""

import random

import pytest

from arena.voting import matchmaking

pytestmark = pytest.mark.django_db


class Index:
    """A stand-in for a MatchIndex: pairs, hashable by identity as the memo's key."""

    pairs = ((1, 2), (1, 3), (2, 3))


@pytest.fixture
def board(monkeypatch):
    """A controlled clock and boards' change stamp; records which board each reweigh saw."""
    state = {"now": 1000.0, "stamp": 1, "weighed": []}
    monkeypatch.setattr(matchmaking.time, "monotonic", lambda: state["now"])
    monkeypatch.setattr(matchmaking.hotcache, "seen_stamp", lambda label: state["stamp"])
    monkeypatch.setattr(matchmaking, "_epoch", matchmaking._Epoch())

    def probabilities(pairs, modality):
        state["weighed"].append(state["stamp"])
        return None  # uniform

    monkeypatch.setattr(matchmaking, "pair_probabilities", probabilities)
    return state


def draw(index):
    return matchmaking._draw_pairs(index, "text", random.Random(0), 4)


def test_a_new_board_is_weighed_once_the_wait_has_passed(board, settings):
    settings.MATCHMAKING_REWEIGH_SECONDS = 5
    index = Index()
    draw(index)
    assert board["weighed"] == [1]
    draw(index)
    assert board["weighed"] == [1], "the same board is not weighed twice"

    board["stamp"], board["now"] = 2, board["now"] + 1  # a refresh, 1 s after the last reweigh
    draw(index)
    assert board["weighed"] == [1], "within the wait the process keeps the weights it has"

    board["now"] += 4.5  # 5.5 s after the last reweigh
    draw(index)
    assert board["weighed"] == [1, 2]
    board["now"] += 30  # no new board since: nothing to reweigh
    draw(index)
    assert board["weighed"] == [1, 2]


def test_zero_reweighs_on_every_new_board(board, settings):
    settings.MATCHMAKING_REWEIGH_SECONDS = 0
    index = Index()
    draw(index)
    board["stamp"] = 2
    draw(index)
    board["stamp"] = 3
    draw(index)
    draw(index)
    assert board["weighed"] == [1, 2, 3]


def test_a_new_index_is_weighed_at_once(board, settings):
    settings.MATCHMAKING_REWEIGH_SECONDS = 5
    draw(Index())
    draw(Index())  # new outputs: a new index, whatever the wait
    assert board["weighed"] == [1, 1]
