<?php
// PHP stream sockets, processes and sleeps; everything printed must be identical natively and under
// the shim (timings are checked as bounds and printed as ok/FAILED). Helper of php_mysql.sh.
$failed = 0;
function check($ok, $what) {
    global $failed;
    echo $what, ": ", $ok ? "ok" : "FAILED", "\n";
    if (!$ok) $failed++;
}
function secs($t0) { return (hrtime(true) - $t0) / 1e9; }

// --- sleeps ---
$t0 = hrtime(true);
usleep(200000);
$d = secs($t0);
check($d >= 0.2 && $d < 1.5, "usleep(200ms) slept about 200 ms");
$t0 = hrtime(true);
$r = sleep(1);
$d = secs($t0);
check($r === 0 && $d >= 1.0 && $d < 2.5, "sleep(1) returned 0 after about 1 s");
$t0 = hrtime(true);
$r = time_nanosleep(0, 150000000);
$d = secs($t0);
check($r === true && $d >= 0.15 && $d < 1.5, "time_nanosleep(150ms)");

// --- a forked child as echo client (the child of a shimmed process runs in pass-through mode) ---
$srv = stream_socket_server("tcp://127.0.0.1:0", $errno, $errstr);
if (!$srv) { echo "server: $errno $errstr\n"; exit(1); }
$addr = stream_socket_get_name($srv, false);
$sizes = [1, 10, 100, 1000, 65536, 1 << 20, 7, 300000];
$pid = pcntl_fork();
if ($pid === 0) {
    fclose($srv);
    $c = stream_socket_client("tcp://$addr", $errno, $errstr, 5);
    if (!$c) exit(10);
    $bad = 0;
    foreach ($sizes as $i => $n) {
        $msg = str_repeat(chr(65 + $i), $n);
        fwrite($c, pack('N', $n) . $msg);
        $hdr = stream_get_contents($c, 4);
        $len = unpack('N', $hdr)[1];
        $got = '';
        while (strlen($got) < $len && !feof($c)) $got .= fread($c, $len - strlen($got));
        if ($got !== strrev($msg)) $bad++;
    }
    fclose($c);
    exit($bad ? 11 : 3);
}
$conn = stream_socket_accept($srv, 5);
$echoed = 0;
while (true) {
    $hdr = stream_get_contents($conn, 4);
    if (strlen($hdr) < 4) break;
    $n = unpack('N', $hdr)[1];
    $msg = '';
    while (strlen($msg) < $n && !feof($conn)) $msg .= fread($conn, $n - strlen($msg));
    fwrite($conn, pack('N', strlen($msg)) . strrev($msg));
    $echoed += $n;
}
fclose($conn);
pcntl_waitpid($pid, $status);
echo "forked client: exit ", pcntl_wexitstatus($status), ", server echoed $echoed bytes\n";

// --- a second php process (proc_open) talking to a stream_select loop in this one ---
$cmd = [PHP_BINARY, '-r', '
    $c = stream_socket_client("tcp://" . $argv[1], $e, $s, 5);
    $sum = 0;
    for ($i = 1; $i <= 200; $i++) {
        fwrite($c, "$i\n");
        $sum += (int)fgets($c);
    }
    fwrite($c, "bye\n");
    echo "client sum $sum, last ", trim(fgets($c)), "\n";
', $addr];
$proc = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => STDERR], $pipes);
$clients = [];
$lines = 0;
$done = false;
$deadline = hrtime(true) + 20e9;
while (!$done && hrtime(true) < $deadline) {
    $read = array_merge([$srv], $clients);
    $w = $e = null;
    if (stream_select($read, $w, $e, 1) === false) break;
    foreach ($read as $s) {
        if ($s === $srv) { $clients[] = stream_socket_accept($srv, 1); continue; }
        $line = fgets($s);
        if ($line === false) { $done = true; break; }
        $line = trim($line);
        $lines++;
        if ($line === 'bye') { fwrite($s, "served $lines lines\n"); $done = true; break; }
        fwrite($s, ((int)$line * (int)$line) . "\n");
    }
}
echo "php peer says: ", stream_get_contents($pipes[1]);
fclose($pipes[1]);
echo "php peer exit: ", proc_close($proc), "\n";
foreach ($clients as $c) fclose($c);

// --- timeouts: stream_select on an idle socket, fread with stream_set_timeout ---
$c = stream_socket_client("tcp://$addr", $errno, $errstr, 5);
$idle = stream_socket_accept($srv, 5);
$read = [$idle]; $w = $e = null;
$t0 = hrtime(true);
$n = stream_select($read, $w, $e, 0, 300000);
$d = secs($t0);
echo "idle stream_select: $n\n";
check($d >= 0.3 && $d < 1.5, "idle stream_select waited about 300 ms");
stream_set_timeout($idle, 0, 400000);
$t0 = hrtime(true);
$got = fread($idle, 10);
$d = secs($t0);
$meta = stream_get_meta_data($idle);
echo "fread on silent peer: '", $got, "' timed_out ", var_export($meta['timed_out'], true), "\n";
check($d >= 0.4 && $d < 1.5, "fread timed out after about 400 ms");
fclose($c);
$t0 = hrtime(true);
$got = fread($idle, 10);
echo "fread after peer closed: '", $got, "' eof ", var_export(feof($idle), true), "\n";
fclose($idle);
fclose($srv);
$c = @stream_socket_client("tcp://127.0.0.1:" . (int)getenv('CLOSED_PORT'), $errno, $errstr, 5);
echo "connect to closed port: ", var_export($c, true), " errno $errno $errstr\n";
exit($failed ? 1 : 0);
