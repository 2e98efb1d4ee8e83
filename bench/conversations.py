"""A busy account's own pages: one account with ``--calls`` conversations (300,000), as a ratio to the bare page.

Adds to the small agency's root of the scale data (``build_scale_data``) two agents, ``--contacts`` contacts and
the calls, the first ``TEMPLATE`` through ``workspace.services.conversation_record`` (their usage, audit rows and
webhook events as recording writes them) and the rest as copies of those (``INSERT … SELECT``: conversations only,
a new public ID, start and length each, 25 seconds apart going back). Then, as ``bench/pages.py`` does (test
client in this process, floor and page alternating, medians, ``VACUUM ANALYZE`` first), times the Owner's
Conversations, Agents and Contacts pages with their filters, sorts and searches. Target: every page at most 5x
the bare page,
except those marked "reads every call" (the deep page 400 and a search of the summaries), printed for reading.

Run it on a copy of the scale database, never on the one ``bench/pages.py`` measures (the calls stay)::

    createdb -h 127.0.0.1 -U postgres -T bench busy
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/busy .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/busy .venv/bin/python bench/conversations.py [--repeat 7]

(SQLite: copy the file, ``DATABASE_URL=sqlite:////tmp/busy.sqlite3``.) A second run reuses the calls.
"""

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pages  # noqa: E402  (sets Django up, as the other benchmarks)
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

TEMPLATE = 100  # calls recorded through the service; the rest are copies
SPACING = datetime.timedelta(seconds=25)
DEEP = "reads every call"


def build(root, calls: int, contacts: int):
    """The agents, contacts and calls of ``root`` (once); returns its agents."""
    from billing.rollups import rollups_recount_blocked
    from workspace.counts import recount_agent_conversations
    from workspace.models import Agent, Contact, Conversation
    from workspace.services import conversation_record

    agents = list(Agent.objects.filter(account=root, name__in=["Sales line", "Support line"]).order_by("name"))
    if agents and Conversation.objects.filter(account=root).count() >= calls:
        return agents
    started = time.perf_counter()
    with transaction.atomic():
        agents = [Agent.objects.create(account=root, name=n) for n in ("Sales line", "Support line")]
        people = Contact.objects.bulk_create(
            Contact(account=root, name=f"Caller {i:05d}", phone=f"+1415{i:07d}") for i in range(contacts))
    topics = ("pricing", "opening hours", "a refund", "an appointment", "delivery")
    now = timezone.now().replace(microsecond=0)
    for i in range(TEMPLATE):
        conversation_record(account=root, agent=agents[i % 2], contact=people[i * 7919 % contacts], by=None,
                            started_at=now - (i + 1) * SPACING, duration_seconds=10 + i * 131 % 1790,
                            summary=f"Caller asked about {topics[i % 5]} #{i}")
    table, columns = Conversation._meta.db_table, [
        f.column for f in Conversation._meta.concrete_fields
        if f.column not in ("id", "public_id", "started_at", "ended_at", "duration_seconds")]
    cols = ", ".join(columns)
    # Each copy moves the rows it copies back by the length of what is there (so the starts stay 25 s apart and
    # distinct) and gives each a length of its own (copies of one length would make long runs of equal rows).
    length = "10 + (duration_seconds + id) %% 1790"
    if connection.vendor == "sqlite":
        new_uuid, start = "lower(hex(randomblob(16)))", "datetime(started_at, '-' || (%s * 25) || ' seconds')"
        end = f"datetime({start}, '+' || ({length}) || ' seconds')"
    else:
        new_uuid, start = "gen_random_uuid()", "started_at - %s * interval '25 seconds'"
        end = f"{start} + ({length}) * interval '1 second'"
    done = TEMPLATE
    with connection.cursor() as cursor:
        while done < calls:  # doubling: the rows there, copied
            n = min(done, calls - done)
            cursor.execute(f"INSERT INTO {table} ({cols}, public_id, started_at, ended_at, duration_seconds) "
                           f"SELECT {cols}, {new_uuid}, {start}, {end}, {length} FROM {table} "
                           "WHERE account_id = %s ORDER BY started_at DESC, id LIMIT %s", [done, done, root.pk, n])
            done += n
    recount_agent_conversations()  # the copies were written around Conversation.save, which keeps both figures
    rollups_recount_blocked()
    print(f"built {calls:,} calls and {contacts:,} contacts in {time.perf_counter() - started:.0f} s")
    return agents


def busy_pages(root, agents, contact) -> list[tuple[str, str]]:
    a = lambda suffix: pages.a(root, suffix)  # noqa: E731
    sales = agents[0].public_id
    return [
        ("conversations", a("conversations/")), ("conversations, page 2", a("conversations/?page=2")),
        ("conversations, longest first", a("conversations/?sort=minutes")),
        ("conversations, shortest first", a("conversations/?sort=-minutes")),
        ("conversations, oldest first", a("conversations/?sort=started")),
        ("conversations, blocked", a("conversations/?status=blocked")),
        ("conversations, blocked, longest first", a("conversations/?status=blocked&sort=minutes")),
        ("conversations, one agent", a(f"conversations/?agent={sales}")),
        ("conversations, one agent, longest first", a(f"conversations/?agent={sales}&sort=minutes")),
        ("conversations, search a contact", a("conversations/?q=Caller+01234")),
        ("conversations, search a phone", a("conversations/?q=%2B14150001234")),
        ("conversations, search an agent", a("conversations/?q=Support")),
        ("conversations, search 1,000 contacts", a("conversations/?q=Caller+01")),
        ("conversations, search nothing found", a("conversations/?q=zzzz")),
        ("agents", a("agents/")), ("agents, most calls first", a("agents/?sort=-conversations")),
        ("agent", a(f"agents/{sales}/")),
        ("contacts", a("contacts/")), ("contacts, search", a("contacts/?q=01234")),
        ("contact", a(f"contacts/{contact.public_id}/")),
        (f"conversations, page 400 ({DEEP})", a("conversations/?page=400")),
        (f"conversations, search summaries ({DEEP})", a("conversations/?q=zzzz&summaries=1")),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300_000)
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7, help="requests of each (at least 5)")
    args = parser.parse_args()
    from accounts.models import Account
    from members.models import User
    from workspace.models import Contact

    root = Account.objects.get(name="Small Agency", depth=1)
    agents = build(root, args.calls, args.contacts)
    pages.prepare()
    client = Client()
    client.force_login(User.objects.get(email="small@scale.example"))
    contact = Contact.objects.filter(account=root, name="Caller 01234").first()
    print(f"{connection.vendor}, one account with {args.calls:,} calls, {args.repeat} alternating requests each, "
          "medians")
    worst = (0.0, "")
    for label, url in busy_pages(root, agents, contact):
        pages.timed(client, "/bench/bare/")
        _warm, status = pages.timed(client, url)
        floor, page = [], []
        for _ in range(args.repeat):
            floor.append(pages.timed(client, "/bench/bare/")[0])
            seconds, status = pages.timed(client, url)
            page.append(seconds)
        f, p = statistics.median(floor), statistics.median(page)
        ratio = p / f
        if DEEP not in label and ratio > worst[0]:
            worst = (ratio, label)
        print(f"  {label:<52} {status} {p * 1000:8.1f} ms {ratio:6.1f}x")
    print(f"worst (target 5x, pages that read every call aside): {worst[0]:.1f}x ({worst[1]})")


if __name__ == "__main__":
    main()
