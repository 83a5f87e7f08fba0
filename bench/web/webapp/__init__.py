"""A minimal Django app for the web scenario of the benchmark and the demo (bench/web/server.py).

One model (Item), one view (items: a database wait and a 20-row ORM query rendered by a template).
Settings are configured in code by bench/web/server.py; there is no manage.py and no migration: the
server creates and fills the table through the ORM's schema editor at start.
"""
