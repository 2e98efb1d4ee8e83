"""Which of a person's memberships are the tops of their reachable forest (``Membership.below_own``).

A membership lies below another of the person's own when one of its account's proper ancestors holds a
non-agency membership of the same person; agency memberships are never below anything (agency access is not
inherited, so each client is its own entry point) and never cover anything. The switcher lists the memberships
that do not lie below another; deciding that on every request read every membership of the person (10,001 for
someone in every account of a big agency), so it is decided when it changes instead:

- a membership is created, deleted, or moved to another account or person (``post_save``/``post_delete``, below);
- accounts move (``accounts.services.subtree_move``: subaccount moves and billing transfers);
- bulk writes that skip signals call ``refresh`` themselves (``build_scale_data``).

``refresh`` recomputes every membership of the given people from their paths (one read, then UPDATEs of only the
rows whose flag changes), so it is right whatever happened before; a stale flag could only hide or repeat a
switcher entry or hide a search match, never show an account the person does not reach (the switcher still reads
their memberships, with agency ones checked for an active grant).

The refresh in the transaction that changes a membership cannot see another transaction's uncommitted change to
the same person's memberships (one removes a membership while the other adds one below it: each decides from what
it sees, and the added one stays flagged below a membership that is gone). So each change also asks for a refresh
after its commit (``refresh_after_commit``), one person's at a time (a PostgreSQL advisory lock): whichever of
two such refreshes runs second reads both commits.
"""

from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.models import STEPLEN

from .models import Membership

_CHUNK = 500


def refresh(user_ids) -> int:
    """Recompute ``below_own`` for every membership of these people; returns how many rows changed."""
    user_ids = sorted(set(user_ids))
    if not user_ids:
        return 0
    rows = list(Membership.objects.filter(user_id__in=user_ids)
                .values_list("pk", "user_id", "is_agency", "below_own", "account__path"))
    own_paths = {(user_id, path) for _, user_id, is_agency, _, path in rows if not is_agency}
    flip_on, flip_off = [], []
    for pk, user_id, is_agency, was, path in rows:
        below = not is_agency and any((user_id, path[:cut]) in own_paths for cut in range(STEPLEN, len(path), STEPLEN))
        if below != was:
            (flip_on if below else flip_off).append(pk)
    for ids, value in ((flip_on, True), (flip_off, False)):
        for start in range(0, len(ids), _CHUNK):
            Membership.objects.filter(pk__in=ids[start:start + _CHUNK]).update(below_own=value)
    return len(flip_on) + len(flip_off)


def refresh_subtree(path: str) -> int:
    """After accounts under ``path`` moved: the people with a membership there (no one else's changes), now and
    after the commit."""
    from accounts.models import subtree_q

    user_ids = list(Membership.objects.filter(subtree_q(path, "account__path")).values_list("user_id", flat=True)
                    .distinct())
    refresh_after_commit(user_ids)
    return refresh(user_ids)


# the advisory locks' first key: this module's, so that no other use of advisory locks meets these
_LOCK_SPACE = 0x656E7472  # "entr"


def refresh_after_commit(user_ids) -> None:
    """``refresh`` these people once the current transaction commits (at once outside one), each person's
    refresh alone: the flags from committed memberships, whatever concurrent transactions saw."""
    user_ids = sorted(set(user_ids))
    if user_ids:
        # (robust: the change has committed; a failure here is logged, and the next change of theirs refreshes)
        transaction.on_commit(lambda: _refresh_locked(user_ids), robust=True)


def _refresh_locked(user_ids) -> None:
    with transaction.atomic():
        if connection.vendor == "postgresql":  # (SQLite runs one writing transaction at a time)
            with connection.cursor() as cursor:
                for user_id in user_ids:  # in order: two refreshes of the same people wait, never deadlock
                    cursor.execute("SELECT pg_advisory_xact_lock(%s::integer, (%s::bigint %% 2147483647)::integer)",
                                   [_LOCK_SPACE, user_id])
        refresh(user_ids)


_SHAPE = {"account", "account_id", "user", "user_id", "is_agency"}


@receiver(post_save, sender=Membership, dispatch_uid="members.entry_points.saved")
def _saved(sender, instance, created, update_fields=None, raw=False, **kwargs):
    if raw:
        return
    if created or update_fields is None or _SHAPE & set(update_fields):
        refresh([instance.user_id])
        refresh_after_commit([instance.user_id])


@receiver(post_delete, sender=Membership, dispatch_uid="members.entry_points.deleted")
def _deleted(sender, instance, **kwargs):
    refresh([instance.user_id])
    refresh_after_commit([instance.user_id])
