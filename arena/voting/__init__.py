"""The vote loop: serve a comparison, check and record a vote, vote tokens, who is voting.
Its hand-written SQL is `arena.fastpath`, outside this package: the judgment writer and the
board run it too, and neither imports the vote loop."""
