"""The admin's provisioning page (upload, dry run, apply) and the "Export selected" action."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import Account, AuditEvent
from members.models import Invitation
from members.staff import SUPPORT
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

URL = "admin:accounts_account_provision"
GOOD = "external_id,name,parent,owner_email\nc1,Acme,nw,new@example.com\nc2,Acme Sales,c1,\n"


@pytest.fixture
def agency(db):
    return AccountFactory(name="Northwind", external_id="nw")


def upload(client, text, name="accounts.csv", update=True):
    data = {"file": SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")}
    if update:
        data["update"] = "on"
    return client.post(reverse(URL), data)


def test_the_list_links_to_the_page(staff_client):
    response = staff_client.get(reverse("admin:accounts_account_changelist"))
    assert reverse(URL) in response.content.decode()


def test_check_shows_the_plan_and_writes_nothing_then_apply_writes_it(staff_client, agency, superuser,
                                                                      django_capture_on_commit_callbacks):
    before = Account.objects.count()
    response = upload(staff_client, GOOD)
    assert response.status_code == 200
    page = response.content.decode()
    assert "2 to create" in page and "Acme Sales" in page and "Apply" in page
    assert Account.objects.count() == before and not Invitation.objects.exists()
    token = response.context["token"]
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(reverse(URL), {"apply": "yes", "token": token})
    assert response.status_code == 302 and response["Location"] == reverse("admin:accounts_account_changelist")
    assert Account.objects.filter(external_id__in=["c1", "c2"]).count() == 2
    assert Invitation.objects.get().email == "new@example.com"
    assert AuditEvent.objects.filter(action="subaccount.created", actor=superuser).exists()
    # every row of the run names the staff member and is marked as the platform's staff (not "system")
    rows = AuditEvent.objects.filter(action__in=["subaccount.created", "invitation.sent"])
    assert rows.count() >= 3 and all((e.actor, e.data.get("staff")) == (superuser, True) for e in rows)
    # The same token cannot apply twice.
    response = staff_client.post(reverse(URL), {"apply": "yes", "token": token})
    assert response.status_code == 302 and response["Location"] == reverse(URL)
    assert Account.objects.filter(external_id__in=["c1", "c2"]).count() == 2


def test_problems_are_listed_with_their_line_and_nothing_can_be_applied(staff_client, agency):
    response = upload(staff_client, "external_id,name,parent\nc1,A,nw\nc2,Beta,zz\n")
    page = response.content.decode()
    assert "Line 2, column name" in page and "Line 3, column parent" in page
    assert response.context["token"] is None and 'name="apply"' not in page


def test_bad_uploads_get_a_form_error(staff_client, agency):
    response = upload(staff_client, GOOD, name="accounts.txt")
    assert "name it .csv or .json" in response.content.decode()
    data = {"file": SimpleUploadedFile("x.csv", b"external_id,name\nc1,Caf\xe9\n")}
    response = staff_client.post(reverse(URL), data)
    assert "not UTF-8" in response.content.decode()
    response = staff_client.post(reverse(URL), {"apply": "yes", "token": "forged"})
    assert response.status_code == 302 and not Account.objects.filter(external_id="c1").exists()


def test_staff_without_add_permission_are_refused(client, staff_user, agency):
    client.force_login(staff_user(SUPPORT))
    assert client.get(reverse(URL)).status_code == 403
    assert upload(client, GOOD).status_code == 403
    assert not Account.objects.filter(external_id="c1").exists()


def test_export_selected_downloads_the_subtrees_in_the_provisioning_format(staff_client, agency):
    AccountFactory(parent=agency, name="=Formula Co")
    AccountFactory(name="Elsewhere")
    response = staff_client.post(reverse("admin:accounts_account_changelist"),
                                 {"action": "export_selected", "_selected_action": [agency.pk]})
    assert response["Content-Disposition"].startswith('attachment; filename="accounts.csv"')
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["name"] for r in rows] == ["Northwind", "'=Formula Co"]  # neutralised for spreadsheets
    # ... and read back as it was: the file provisions with no change.
    from accounts.provisioning import provision

    report = provision(response.content.decode(), fmt="csv")
    assert set(report.counts) == {"unchanged"}
