"""The essay's request handler: wait for the database, fetch rows through the ORM, render a template."""
from django.db import connection
from django.shortcuts import render

from .models import Item

# The server-side wait of the first query (seconds): the part of a request where a thread only waits.
DB_WAIT = 0.02


def items(request):
    with connection.cursor() as cur:
        cur.execute("SELECT SLEEP(%s)", [DB_WAIT])
        (slept,) = cur.fetchone()
    rows = list(Item.objects.order_by("id")[:20])
    total = sum(r.price for r in rows)
    return render(request, "webapp/items.html", {"items": rows, "total": total, "slept": slept})
