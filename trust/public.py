"""An account's public trust page: saving its settings and address, and what the public sees.

The public answer is rendered once and kept in Django's default cache (shared: Redis in production, see
``CACHE_URL``), keyed by address; every change that shows on a page (its settings, its address, the retention
policy of its account or of an account above) drops the cached copies, and they expire after
``TRUST_PAGE_CACHE_SECONDS`` anyway (which bounds how long a suspension takes to hide a page).
"""

import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.access import require
from accounts.audit import audit
from accounts.models import Account, subtree_q

from .models import PublicTrustPage, TrustPageSlug
from .policy import effective_retention

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,48}[a-z0-9])$")
SLUG_HELP = "3 to 50 characters: lowercase letters, digits and hyphens, starting and ending with a letter or digit."
PAGE_FIELDS = ("is_enabled", "company_name", "privacy_policy_url", "terms_url", "subprocessors", "ai_providers",
               "security_contact", "show_company_name", "show_legal_links", "show_subprocessors",
               "show_ai_providers", "show_retention", "show_security_contact", "show_last_updated")
LIST_LIMIT, ITEM_LIMIT = 50, 200


def random_slug() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(12))


def cache_key(slug: str) -> str:
    return f"trust-page:{slug}"


def invalidate_slugs(slugs, *, again_on_commit: bool = True) -> None:
    """Drop the cached answers for ``slugs`` now, and again once the transaction commits (a visitor between
    the two would have cached what was there before)."""
    keys = [cache_key(s) for s in slugs]
    cache.delete_many(keys)
    if again_on_commit:
        transaction.on_commit(lambda: cache.delete_many(keys))


def invalidate_subtree(account: Account) -> None:
    """Drop the cached public pages of ``account`` and every account below it (their retention summary
    follows its policy). One query."""
    invalidate_slugs(TrustPageSlug.objects.filter(subtree_q(account.path, "page__account__path"))
                     .values_list("slug", flat=True))


def current_slug(page: PublicTrustPage | None) -> TrustPageSlug | None:
    if page is None or page.pk is None:
        return None
    return page.slugs.filter(retired_at__isnull=True).first()


def _clean_list(values, field: str) -> list[str]:
    items = [" ".join(str(v).split()) for v in values or []]
    items = [v for v in items if v]
    if len(items) > LIST_LIMIT:
        raise ValidationError({field: f"At most {LIST_LIMIT} entries."})
    if any(len(v) > ITEM_LIMIT for v in items):
        raise ValidationError({field: f"Each entry takes at most {ITEM_LIMIT} characters."})
    return list(dict.fromkeys(items))


def _claim(page: PublicTrustPage, slug: str, now: datetime) -> list[str]:
    """Make ``slug`` the page's address (the old one is retired and keeps redirecting for the grace period).
    Returns the addresses whose cached answers changed. Raises ValidationError when the address is taken."""
    if not SLUG_RE.match(slug):
        raise ValidationError({"slug": SLUG_HELP})
    current = current_slug(page)
    if current is not None and current.slug == slug:
        return []
    taken = ValidationError({"slug": "This address is taken: choose another one."})
    existing = TrustPageSlug.objects.select_for_update().filter(slug=slug).first()
    if existing is not None and existing.page_id != page.pk:
        if existing.retired_at is None or existing.frees_at() > now:
            raise taken
        existing.delete()  # another page's old address, past its grace period: free again
        existing = None
    if current is not None:
        current.retired_at = now
        current.save(update_fields=["retired_at"])
    try:
        with transaction.atomic():
            if existing is not None:  # one of this page's own old addresses, taken back
                existing.retired_at, existing.created_at = None, now
                existing.save(update_fields=["retired_at", "created_at"])
            else:
                TrustPageSlug.objects.create(page=page, slug=slug, created_at=now)
    except IntegrityError as exc:  # taken a moment ago by someone else
        raise taken from exc
    return [slug, *([current.slug] if current else [])]


@transaction.atomic
def page_save(*, account: Account, by, slug: str, request=None, **fields) -> PublicTrustPage:
    """Save the account's public trust page (created on first save) and its address. Needs Trust Center
    management; bad input changes nothing. Audited; the cached public answers are dropped after commit."""
    require(by, account, "manage_trust_center")
    unknown = set(fields) - set(PAGE_FIELDS)
    if unknown:
        raise TypeError(f"Unknown page fields: {', '.join(sorted(unknown))}")
    page = PublicTrustPage.objects.select_for_update().filter(account=account).first()
    created = page is None
    if created:
        page = PublicTrustPage(account=account)
    for field in ("subprocessors", "ai_providers"):
        if field in fields:
            fields[field] = _clean_list(fields[field], field)
    if "company_name" in fields:
        fields["company_name"] = " ".join(fields["company_name"].split())
    changed = sorted(f for f, v in fields.items() if getattr(page, f) != v)
    for f in changed:
        setattr(page, f, fields[f])
    now = timezone.now()
    page.full_clean(exclude=["account", "updated_by"])
    if changed or created:
        page.updated_at, page.updated_by = now, by if getattr(by, "pk", None) else None
        page.save()
    slug = (slug or "").strip().lower()
    touched = _claim(page, slug, now)
    if touched:
        changed.append("address")
    if changed or created:
        state = "published" if page.is_enabled else "not published"
        audit(account=account, actor=by, request=request, action="trust_page.updated",
              summary=f"Public trust page saved ({state})" + (f": address /trust/{slug}/" if touched else ""),
              fields=changed, slug=slug)
        all_slugs = list(page.slugs.values_list("slug", flat=True))
        invalidate_slugs({*all_slugs, *touched})
    return page


# ---- what the public sees ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PublicAnswer:
    """What /trust/<slug>/ answers: a page (``body``), a redirect to the current address, or nothing (404)."""

    body: str = ""
    last_modified: float | None = None  # UNIX seconds
    redirect_to: str = ""

    @property
    def missing(self) -> bool:
        return not self.body and not self.redirect_to


def public_answer(slug: str) -> PublicAnswer:
    """The answer for ``slug``, from the cache or rendered (then cached). Queries only on a miss: the address
    with its page and account, whether the account or one above is suspended, the retention policy."""
    key = cache_key(slug)
    found = cache.get(key)
    if found is None:
        found = _render(slug)
        cache.set(key, found, settings.TRUST_PAGE_CACHE_SECONDS)
    return found


def _render(slug: str) -> PublicAnswer:
    address = (TrustPageSlug.objects.filter(slug=slug).select_related("page__account").first()
               if SLUG_RE.match(slug) else None)
    if address is None or not address.page.is_enabled:
        return PublicAnswer()
    now = timezone.now()
    page, account = address.page, address.page.account
    if address.retired_at is not None:
        if address.frees_at() <= now:
            return PublicAnswer()
        current = current_slug(page)
        return PublicAnswer(redirect_to=current.slug) if current else PublicAnswer()
    if Account.objects.filter(path__in=account.lineage_paths, status=Account.Status.SUSPENDED).exists():
        return PublicAnswer()
    retention = effective_retention(account) if page.show_retention else None
    changed = [page.updated_at, retention.last_changed if retention else None]
    last_modified = max(c for c in changed if c is not None)
    body = render_to_string("trust/public_page.html", {"page": page, "retention": retention,
                                                        "last_modified": last_modified})
    return PublicAnswer(body=body, last_modified=last_modified.timestamp())
