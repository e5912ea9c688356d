"""The judge rows people vote as, by name: the vote loop creates them
(`arena.voting.actions`), the board looks them up (a voter's own board) without creating one.
Here, below both, so that neither imports the other for a name."""

import hashlib


def session_judge_name(session_key: str) -> str:
    """The name of the judge an anonymous visitor votes as in the open arena."""
    # The session key is a credential: store only a hash of it.
    return "session-" + hashlib.sha256(session_key.encode()).hexdigest()[:32]
