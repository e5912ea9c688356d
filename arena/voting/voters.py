"""Who is voting: a logged-in user with the vote permission, or, only when the open arena
is switched on, an anonymous visitor identified by their session."""

from django.conf import settings

from arena import errors
from arena.hotcache import Memo
from arena.models import Judge
from arena.voting.actions import judge_for_session, judge_for_user

# A voter's judge row never changes hands; keeping it saves a query on every request.
_judges: Memo[Judge] = Memo("voters' judges", ttl=600, invalidated_by=("arena.Judge:edited",))


def voter_judge(request) -> Judge:
    user = request.user
    if user.is_authenticated:
        if not user.has_perm("arena.add_judgment"):
            raise errors.NotAllowed("your account may not vote: ask an admin for the annotator role")
        return _judges.get(user.pk, lambda: judge_for_user(user))
    if not settings.OPEN_ARENA:
        raise errors.NotLoggedIn("log in to vote (the open arena for anonymous voters is off)")
    session = request.session
    if not session.session_key:
        session.save()
    return judge_for_session(session.session_key)
