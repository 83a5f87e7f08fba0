"""Web server of the web scenario (scripts/bench-web.sh, scripts/demo-web.sh): a WSGI app on a MySQL
driver, served by the standard library's wsgiref with socketserver.ThreadingMixIn, one thread per
connection, as a Python web app without an async framework is served.

    python3 server.py APP MODE DRIVER [SECONDS]

APP     django  the Django app of bench/web/webapp (ORM, a database wait and a 20-row query, a template)
        wsgi    a plain WSGI app whose request is one database wait (bench/web/light.py)
MODE    threads run as is: natively, or under the shim with LD_PRELOAD (the same script either way)
        gevent  gevent.monkey.patch_all() first, so the same threads run as greenlets
DRIVER  mysqlclient  the C driver (MySQLdb, libmariadb)
        pymysql      the pure-Python driver (for Django through pymysql.install_as_MySQLdb())

The database comes from MARIADB_HOST, MARIADB_PORT, MARIADB_USER, MARIADB_PASSWORD, MARIADB_DB (the
env file of scripts/mariadb.sh). The server creates and fills its table when missing, prints
"listening PORT" once it accepts on 127.0.0.1, and ends after SECONDS (default 600, its own alarm) or
on SIGTERM.
"""
import sys

USAGE = "usage: server.py django|wsgi threads|gevent mysqlclient|pymysql [SECONDS]"
if len(sys.argv) < 4:
    sys.exit(USAGE)
APP, MODE, DRIVER = sys.argv[1:4]
SECONDS = int(sys.argv[4]) if len(sys.argv) > 4 else 600
if APP not in ("django", "wsgi") or MODE not in ("threads", "gevent") or DRIVER not in ("mysqlclient", "pymysql"):
    sys.exit(USAGE)

if MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()

import os
import resource
import signal
import socketserver
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
DB = {k: os.environ["MARIADB_" + k.upper()] for k in ("host", "port", "user", "password", "db")}


class QuietHandler(WSGIRequestHandler):
    # wsgiref writes a line to stderr for every request; at thousands of requests a second that is a
    # measurable part of the server's work and of its output, and no production server does it.
    def log_message(self, *args):
        pass


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # The listen backlog: socketserver's default of 5 drops SYNs as soon as a few hundred clients
    # reconnect at once (wsgiref speaks HTTP/1.0: one request per connection), and each dropped SYN
    # costs the client a one-second retransmission.
    request_queue_size = 4096
    allow_reuse_address = True


def django_app():
    if DRIVER == "pymysql":
        import pymysql

        pymysql.install_as_MySQLdb()
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        SECRET_KEY="asyncshim-bench-web",
        ROOT_URLCONF="webapp.urls",
        INSTALLED_APPS=["webapp"],
        MIDDLEWARE=["django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.mysql",
                "HOST": DB["host"],
                "PORT": DB["port"],
                "NAME": DB["db"],
                "USER": DB["user"],
                "PASSWORD": DB["password"],
            }
        },
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
        USE_TZ=False,
    )
    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    from webapp.models import Item

    if Item._meta.db_table not in connection.introspection.table_names():
        with connection.schema_editor() as editor:
            editor.create_model(Item)
    if Item.objects.count() != 50:
        Item.objects.all().delete()
        Item.objects.bulk_create(Item(id=i, name="item-%d" % i, price=i) for i in range(1, 51))
    connection.close()
    return get_wsgi_application()


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    signal.alarm(SECONDS)  # the default action ends the process, whatever its threads are doing
    if APP == "django":
        app = django_app()
    else:
        import light

        app = light.make_app(DRIVER, DB)
    srv = ThreadingWSGIServer(("127.0.0.1", 0), QuietHandler)
    srv.set_app(app)
    print("listening", srv.server_address[1], flush=True)
    srv.serve_forever()


main()
