"""The vote loop: serve a comparison, check and record a vote, vote tokens, who is voting,
and the hand-written SQL fast path (`fastpath`) these run on every request."""
