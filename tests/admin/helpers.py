"""What several admin tests share: the messages a response left, and an account's change form as posted."""

from django.contrib.messages import get_messages
from django.urls import reverse


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def change_form(client, account, *, browser=False, **changes):
    """The account's change form as the admin renders it, with ``changes``. The hidden ``initial-`` inputs of its
    JSON fields (what the page showed) are sent only with ``browser=True``; without them, as a hand-made request,
    the admin still changes only what differs from the stored row."""
    page = client.get(reverse("admin:accounts_account_change", args=[account.pk]))
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        data[name] = "" if value is None else (field.prepare_value(value) if hasattr(field, "prepare_value")
                                               else value)
        if browser and field.show_hidden_initial:
            data[f"initial-{name}"] = data[name]
    for prefix in ("memberships", "agency_grants", "agency_settings"):
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
    data.update(changes)
    return data
