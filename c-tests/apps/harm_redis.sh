#!/usr/bin/env bash
# asyncshim-test: timeout=120
# asyncshim-test: modes=native,shim,shim-w1
#
# Do no harm: redis-server (its event loop, background bio threads, and in a second instance 2 I/O
# threads) under the shim with a temporary config on a free port, driven by redis-cli (commands from
# stdin, --pipe mass insertion) and redis-benchmark, also under the shim. Replies, counts and the final
# data are compared, never the benchmark's rates. Both servers are stopped with SHUTDOWN NOSAVE.
. "$APPS_DIR/lib.sh"
. "$APPS_DIR/harm_lib.bash"
cd "$H_TMP" || exit 1
export LC_ALL=C

start_redis() { # NAME EXTRA-CONFIG... -> port, rpid
    local name=$1 attempt
    shift
    mkdir -p "$H_TMP/$name"
    for attempt in 1 2 3; do
        port=$(free_port)
        {
            echo "port $port"
            echo "bind 127.0.0.1"
            echo "daemonize no"
            echo "save \"\""
            echo "appendonly no"
            echo "dir $H_TMP/$name"
            echo "logfile $H_TMP/$name/redis.log"
            echo "pidfile $H_TMP/$name/redis.pid"
            printf '%s\n' "$@"
        } >"$H_TMP/$name/redis.conf"
        bg "redis-$name" env $SHIM_ENV redis-server "$H_TMP/$name/redis.conf"
        rpid=$BG_PID
        wait_port "$port" 20 "$rpid" && return 0
        bg_stop "$rpid"
        # Only a lost race for the port is retried; any other failure (a crash) fails the test.
        grep -q 'Address already in use' "$H_TMP/$name/redis.log" || break
    done
    die "redis-server $name did not start: $(tail -n 5 "$H_TMP/$name/redis.log")"
}

# Client programs under the shim, each bounded (a stuck server must not stall the whole test).
# After one of them times out (the server is stuck), the rest are skipped, so the test fails quickly.
bounded() { # SECS CMD...
    local secs=$1 st
    shift
    if [ -e "$H_TMP/stuck" ]; then echo "(skipped: server stuck)"; return 1; fi
    timeout -k 2 "$secs" env $SHIM_ENV "$@"
    st=$?
    if [ $st = 124 ] || [ $st = 137 ]; then
        touch "$H_TMP/stuck"
        echo "$1 timed out after $secs s: server stuck" >&2
    fi
    return $st
}
rcli() { bounded 10 redis-cli "$@"; }

session() { # PORT BENCH-REQUESTS: the same checks against each server
    local p=$1 n=$2
    # Commands from stdin, one reply each (redis-cli prints raw replies when stdout is not a terminal).
    {
        echo "PING"
        echo "SET greeting hello"
        echo "GET greeting"
        echo "APPEND greeting \" world\""
        echo "GET greeting"
        echo "INCRBY counter 41"
        echo "INCR counter"
        for i in $(seq 1 50); do echo "RPUSH list item$i"; done
        echo "LLEN list"
        echo "LRANGE list 10 14"
        echo "HSET h a 1 b 2 c 3"
        echo "HGETALL h"
        echo "SADD s x y z x"
        echo "SCARD s"
        echo "ZADD z 3 c 1 a 2 b"
        echo "ZRANGE z 0 -1 WITHSCORES"
        echo "GET nosuchkey"
        echo "LPUSH greeting x"
        echo "EXPIRE greeting 1000"
        echo "TTL greeting"
        echo "DEL list h s z"
    } | rcli -p "$p" | sha256sum
    rcli -p "$p" GET counter
    rcli -p "$p" LPUSH greeting x   # WRONGTYPE error reply
    # Mass insertion through --pipe (the redis protocol on stdin).
    awk 'BEGIN { for (i = 0; i < 20000; i++) { k = "key:" i; v = "value-" i * 7;
        printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v } }' |
        rcli -p "$p" --pipe | grep -E 'errors'
    rcli -p "$p" DBSIZE
    rcli -p "$p" GET key:12345
    # redis-benchmark with 20 clients: rates are dropped, the test names and the final data kept.
    bounded 30 redis-benchmark -p "$p" -q -n $n -c 20 -t set,get,incr,lpush,rpop,sadd,hset,mset 2>&1 |
        tr '\r' '\n' | grep -o '^[A-Z_]*[A-Z]: [0-9.]* requests per second' | sed 's/: .*/: done/' | sort
    rcli -p "$p" GET counter:__rand_int__
    rcli -p "$p" DBSIZE
    rcli -p "$p" FLUSHALL
    rcli -p "$p" DBSIZE
}

for variant in plain iothreads; do
    echo "== redis-server ($variant)"
    if [ $variant = plain ]; then
        start_redis plain
    else
        start_redis iothreads "io-threads 2" "io-threads-do-reads yes"
    fi
    # The I/O threads of redis busy-wait for work: on 2 cores the benchmark is much slower there.
    if [ $variant = plain ]; then session "$port" 2000; else session "$port" 300; fi
    [ -e "$H_TMP/stuck" ] && die "redis-server ($variant) stuck"
    echo "server OS threads: $( t=$(h_threads "$rpid"); t=${t:-0}; if [ "$(h_workers)" = 0 ]; then [ "$t" -ge 4 ] && echo "as expected"; else [ "$t" -le $(( $(h_workers) + 8 )) ] && echo "as expected"; fi )"
    rcli -p "$port" SHUTDOWN NOSAVE || true
    bg_wait "$rpid" 20
    echo "redis-server exit status: $?"
    echo "ready lines in the log: $(grep -c 'Ready to accept connections' "$H_TMP/$variant/redis.log")"
    # Problems the server logged (the overcommit warning depends on the machine, not on the shim).
    echo "log lines about problems: $(grep -Ei 'error|warning|panic|assert|crash|bug report' "$H_TMP/$variant/redis.log" |
        grep -vc 'WARNING Memory overcommit must be enabled')"
done
