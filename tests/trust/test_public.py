"""The public trust page: off by default, only the chosen sections, nothing private, its address and grace period,
caching with Last-Modified, no sign-in; and its settings page (isolation, roles, query budget)."""

import datetime

import pytest
import time_machine
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.http import http_date

from accounts.models import Account, AuditEvent
from accounts.services import subaccount_set_access
from members.roles import RoleId
from tests.factories import AccountFactory
from trust.models import DataType, PublicTrustPage, TrustPageSlug
from trust.public import page_save
from trust.retention import Choice, policy_update

pytestmark = pytest.mark.django_db

EVERYTHING = {"is_enabled": True, "company_name": "Acme Health", "privacy_policy_url": "https://acme.example/privacy",
              "terms_url": "https://acme.example/terms", "subprocessors": ["Stripe — payments"],
              "ai_providers": ["OpenAI — language model"], "security_contact": "security@acme.example",
              "show_company_name": True, "show_legal_links": True, "show_subprocessors": True,
              "show_ai_providers": True, "show_retention": True, "show_security_contact": True,
              "show_last_updated": True}


def public(slug):
    return reverse("trust:public-page", kwargs={"slug": slug})


def settings_url(account):
    return reverse("trust:public-settings", kwargs={"account_id": account.public_id})


@pytest.fixture
def account():
    return AccountFactory(name="Acme Internal Name")


@pytest.fixture
def owner(account, make_member):
    return make_member(account, RoleId.OWNER)


@pytest.fixture
def anon():
    return Client()


class TestPublicPage:
    def test_off_by_default(self, account, owner, anon):
        assert anon.get(public("acme")).status_code == 404  # nothing set up
        page_save(account=account, by=owner, slug="acme", company_name="Acme", show_company_name=True)
        assert not PublicTrustPage.objects.get().is_enabled
        assert anon.get(public("acme")).status_code == 404  # saved, not published
        page_save(account=account, by=owner, slug="acme", is_enabled=True)
        assert anon.get(public("acme")).status_code == 200

    def test_no_sign_in_no_private_data_ids_or_member_names(self, account, owner, anon, make_member):
        owner.name = "Olivia Ownerperson"
        owner.save()
        child = AccountFactory(parent=account, name="Hidden Child")
        page_save(account=account, by=owner, slug="acme", **EVERYTHING)
        response = anon.get(public("acme"))
        text = response.content.decode()
        assert response.status_code == 200 and "Acme Health Trust Center" in text
        for private in (str(account.public_id), str(child.public_id), "Acme Internal Name", "Hidden Child",
                        owner.email, "Olivia Ownerperson", "/a/", "csrf"):
            assert private not in text, private
        assert "Set-Cookie" not in response.headers or not response.cookies  # no session for visitors

    def test_shows_only_the_chosen_sections(self, account, owner, anon):
        page_save(account=account, by=owner, slug="acme", **{
            **EVERYTHING, "show_subprocessors": False, "show_security_contact": False, "show_retention": False,
            "show_company_name": False})
        text = anon.get(public("acme")).content.decode()
        assert "https://acme.example/privacy" in text and "OpenAI — language model" in text
        for hidden in ("Stripe", "security@acme.example", "Data retention", "Acme Health"):
            assert hidden not in text, hidden

    def test_the_retention_summary_follows_the_live_policy_and_refreshes(self, account, owner, anon,
                                                                        make_member):
        child = AccountFactory(parent=account)
        child_owner = make_member(child, RoleId.OWNER)
        page_save(account=child, by=child_owner, slug="child-co", **EVERYTHING)
        assert "Kept until deleted" in anon.get(public("child-co")).content.decode()
        policy_update(account=account, by=owner, choices={DataType.TRANSCRIPTS: Choice("90d", "anonymise"),
                                                          DataType.RECORDINGS: Choice("none")})
        text = anon.get(public("child-co")).content.decode()  # the parent's change dropped the child's copy
        assert "Anonymised after 90 days" in text and "Not stored" in text

    def test_cached_with_last_modified_and_conditional_get(self, account, owner, anon, django_assert_num_queries):
        with time_machine.travel(datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC), tick=False):
            page_save(account=account, by=owner, slug="acme", **EVERYTHING)
        first = anon.get(public("acme"))
        assert first["Last-Modified"] == "Sun, 01 Mar 2026 12:00:00 GMT"
        assert "public" in first["Cache-Control"] and "max-age" in first["Cache-Control"]
        with django_assert_num_queries(0):  # from the cache
            again = anon.get(public("acme"))
        assert again.content == first.content
        assert anon.get(public("acme"), HTTP_IF_MODIFIED_SINCE=first["Last-Modified"]).status_code == 304
        page_save(account=account, by=owner, slug="acme", **{**EVERYTHING, "company_name": "Acme Care"})
        changed = anon.get(public("acme"))  # saving dropped the cached copy
        assert "Acme Care" in changed.content.decode() and changed["Last-Modified"] != first["Last-Modified"]
        assert anon.get(public("acme"), HTTP_IF_MODIFIED_SINCE=first["Last-Modified"]).status_code == 200

    def test_a_miss_costs_a_fixed_number_of_queries(self, account, owner, anon, django_assert_num_queries):
        page_save(account=account, by=owner, slug="acme", **EVERYTHING)
        with django_assert_num_queries(3):  # the address with page and account, suspension, retention rules
            anon.get(public("acme"))

    def test_a_suspended_account_has_no_public_page(self, account, owner, anon):
        child = AccountFactory(parent=account)
        page_save(account=child, by=owner, slug="child-co", is_enabled=True)
        Account.objects.filter(pk=account.pk).update(status=Account.Status.SUSPENDED)
        assert anon.get(public("child-co")).status_code == 404

    def test_only_get_and_head(self, account, owner, anon):
        page_save(account=account, by=owner, slug="acme", is_enabled=True)
        assert anon.post(public("acme")).status_code == 405
        assert anon.head(public("acme")).status_code == 200


class TestAddress:
    def test_changing_it_redirects_the_old_one_and_keeps_it_reserved_for_the_grace_period(self, account, owner,
                                                                                          anon, make_member,
                                                                                          settings):
        other = AccountFactory()
        other_owner = make_member(other, RoleId.OWNER)
        start = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC)
        with time_machine.travel(start, tick=False):
            page_save(account=account, by=owner, slug="acme", is_enabled=True)
            page_save(account=account, by=owner, slug="acme-health", is_enabled=True)
            response = anon.get(public("acme"))
            assert response.status_code == 302 and response["Location"] == public("acme-health")
            with pytest.raises(ValidationError, match="taken"):
                page_save(account=other, by=other_owner, slug="acme")
            with pytest.raises(ValidationError, match="taken"):
                page_save(account=other, by=other_owner, slug="acme-health")
        later = start + datetime.timedelta(days=settings.TRUST_SLUG_GRACE_DAYS, minutes=1)
        with time_machine.travel(later, tick=False):
            cache.clear()  # the cached redirect would otherwise last its few minutes more
            assert anon.get(public("acme")).status_code == 404  # freed
            page_save(account=other, by=other_owner, slug="acme", is_enabled=True)
            assert anon.get(public("acme")).status_code == 200
        assert TrustPageSlug.objects.get(slug="acme").page.account == other

    def test_taking_back_ones_own_old_address(self, account, owner, anon):
        page_save(account=account, by=owner, slug="first", is_enabled=True)
        page_save(account=account, by=owner, slug="second", is_enabled=True)
        page_save(account=account, by=owner, slug="first", is_enabled=True)
        assert anon.get(public("first")).status_code == 200
        assert anon.get(public("second"))["Location"] == public("first")

    @pytest.mark.parametrize("slug", ["A", "ab", "-abc", "abc-", "has space", "ünï", "x" * 51, "a_b"])
    def test_bad_addresses_are_refused_and_change_nothing(self, account, owner, slug):
        with pytest.raises(ValidationError) as exc:
            page_save(account=account, by=owner, slug=slug, is_enabled=True)
        assert "slug" in exc.value.error_dict
        assert not PublicTrustPage.objects.exists()


class TestService:
    def test_roles_without_management_are_refused(self, account, make_member):
        for role in (RoleId.MEMBER, RoleId.VIEWER):
            with pytest.raises(PermissionDenied):
                page_save(account=account, by=make_member(account, role), slug="acme", is_enabled=True)
        with pytest.raises(PermissionDenied):
            page_save(account=account, by=make_member(AccountFactory(), RoleId.OWNER), slug="acme")
        page_save(account=account, by=make_member(account, RoleId.AGENCY_ADMIN), slug="acme")
        assert AuditEvent.objects.filter(account=account, action="trust_page.updated").count() == 1

    def test_lists_are_cleaned_and_bounded(self, account, owner):
        page = page_save(account=account, by=owner, slug="acme", subprocessors=["  A  b ", "", "A b", "C"])
        assert page.subprocessors == ["A b", "C"]
        with pytest.raises(ValidationError):
            page_save(account=account, by=owner, slug="acme", ai_providers=["x" * 201])


class TestSettingsPage:
    def test_owner_publishes_and_copies_the_url(self, client, account, owner, anon):
        client.force_login(owner)
        response = client.get(settings_url(account))
        assert response.status_code == 200 and "Not set up yet" in response.content.decode()
        form = response.context["form"]
        data = {"slug": form.initial["slug"], "is_enabled": "on", "company_name": "Acme Health",
                "show_company_name": "on", "subprocessors": "Stripe — payments\nTwilio", "show_subprocessors": "on"}
        assert client.post(settings_url(account), data).status_code == 302
        page = PublicTrustPage.objects.get(account=account)
        assert page.subprocessors == ["Stripe — payments", "Twilio"] and page.is_enabled
        text = client.get(settings_url(account)).content.decode()
        assert f"http://testserver/trust/{data['slug']}/" in text and "data-copy" in text
        assert "Twilio" in anon.get(public(data["slug"])).content.decode()

    def test_generate_a_random_address_fills_the_form_without_saving(self, client, account, owner):
        client.force_login(owner)
        response = client.post(settings_url(account), {"slug": "mine", "random": "1", "company_name": "Keep me"})
        slug = response.context["form"].data["slug"]
        assert response.status_code == 200 and slug != "mine" and len(slug) == 12
        assert "Keep me" in response.content.decode()
        assert not PublicTrustPage.objects.exists()

    def test_a_taken_address_is_named_at_the_field(self, client, account, owner, make_member):
        other = AccountFactory()
        page_save(account=other, by=make_member(other, RoleId.OWNER), slug="taken", is_enabled=True)
        client.force_login(owner)
        response = client.post(settings_url(account), {"slug": "taken", "is_enabled": "on"})
        assert response.status_code == 200 and "This address is taken" in response.content.decode()
        assert not PublicTrustPage.objects.filter(account=account).exists()

    def test_read_level_views_without_saving_and_members_are_refused(self, client, account, owner, make_member):
        child = AccountFactory(parent=account)
        subaccount_set_access(account=child, matrix={"trust_center": "read"}, by=owner)
        page_save(account=child, by=owner, slug="child-co", company_name="Child Co")
        client.force_login(make_member(child, RoleId.ADMIN))
        response = client.get(settings_url(child))
        assert response.status_code == 200 and "can view but not change" in response.content.decode()
        assert client.post(settings_url(child), {"slug": "hijack", "is_enabled": "on"}).status_code == 403
        assert not PublicTrustPage.objects.get(account=child).is_enabled
        client.force_login(make_member(child, RoleId.MEMBER))
        assert client.get(settings_url(child)).status_code == 403

    def test_another_tenants_settings_are_404(self, client, account, owner, make_member):
        other = AccountFactory()
        client.force_login(make_member(other, RoleId.OWNER))
        assert client.get(settings_url(account)).status_code == 404
        assert client.post(settings_url(account), {"slug": "hijack", "is_enabled": "on"}).status_code == 404
        assert not PublicTrustPage.objects.exists()

    def test_query_budget_is_absolute_and_does_not_grow_with_old_addresses(self, client, account, owner,
                                                                           count_queries):
        client.force_login(owner)
        client.get(settings_url(account))
        counts = []
        for n in (1, 8):
            for i in range(n):
                page_save(account=account, by=owner, slug=f"addr-{n}-{i}", is_enabled=True)
            counts.append(count_queries(lambda: client.get(settings_url(account))))
        assert counts == [SETTINGS_PAGE_BUDGET] * 2

    def test_the_index_links_both_sections(self, client, account, owner):
        client.force_login(owner)
        text = client.get(reverse("trust:index", kwargs={"account_id": account.public_id})).content.decode()
        assert settings_url(account) in text and reverse("trust:retention", args=[account.public_id]) in text


# session + user, access (memberships, permission rows), security-policy lineage, agency nav check, the page,
# its current address, its old addresses (5 at most).
SETTINGS_PAGE_BUDGET = 6


def test_the_timestamp_is_the_later_of_the_page_and_the_policy(account, owner, anon):
    page_save(account=account, by=owner, slug="acme", **EVERYTHING)
    later = timezone.now() + datetime.timedelta(hours=2)
    with time_machine.travel(later, tick=False):
        policy_update(account=account, by=owner, choices={DataType.TRANSCRIPTS: Choice("1y")})
    assert anon.get(public("acme"))["Last-Modified"] == http_date(int(later.timestamp()))
