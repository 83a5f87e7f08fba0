"""The light app of the web scenario: plain WSGI, one database wait per request (SELECT SLEEP), on
mysqlclient or PyMySQL, connections kept in a pool shared by the request threads."""
import collections

# The server-side wait of a request (seconds).
DB_WAIT = 0.02


def make_app(driver, db):
    if driver == "pymysql":
        import pymysql

        def connect():
            return pymysql.connect(host=db["host"], port=int(db["port"]), user=db["user"],
                                   password=db["password"], database=db["db"], autocommit=True)
    else:
        import MySQLdb

        def connect():
            return MySQLdb.connect(host=db["host"], port=int(db["port"]), user=db["user"],
                                   passwd=db["password"], db=db["db"], autocommit=True)

    # deque.append/pop are atomic: no lock needed between the request threads (or greenlets).
    pool = collections.deque()

    def app(environ, start_response):
        if environ["PATH_INFO"] != "/wait":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        try:
            conn = pool.pop()
        except IndexError:
            conn = connect()
        try:
            cur = conn.cursor()
            cur.execute("SELECT SLEEP(%s)", (DB_WAIT,))
            (slept,) = cur.fetchone()
            cur.close()
        except Exception:
            conn.close()
            raise
        pool.append(conn)
        body = b"slept %d\n" % slept
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app
