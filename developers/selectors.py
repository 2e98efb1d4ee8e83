from django.db.models import Exists, OuterRef, Q

from accounts.models import Account
from members.models import Membership

from .models import ApiKey


def key_rows(account: Account):
    """The account's keys for the list, each with ``creator_reaches``: whether its creator still reaches the
    account (one correlated subquery, not a query per row). A key whose creator left does not work."""
    reaches = Membership.objects.effective().filter(user=OuterRef("created_by"), user__is_active=True).filter(
        Q(is_agency=False, account__path__in=account.lineage_paths) | Q(is_agency=True, account=account))
    return (ApiKey.objects.in_account(account).select_related("created_by")
            .annotate(creator_reaches=Exists(reaches)))
