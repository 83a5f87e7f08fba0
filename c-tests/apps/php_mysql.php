<?php
// PHP's mysqlnd (mysqli and PDO) against the test server; everything printed must be identical natively
// and under the shim. Helper of php_mysql.sh; server from the MARIADB_* environment.
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$host = getenv('MARIADB_HOST');
$port = (int)getenv('MARIADB_PORT');
$user = getenv('MARIADB_USER');
$pw = getenv('MARIADB_PASSWORD');
$db = getenv('MARIADB_DB');
$sock = getenv('MARIADB_SOCKET');
$table = 'php_' . str_replace('-', '_', getenv('MODE') ?: 'x');

// --- mysqli ---
$m = new mysqli($host, $user, $pw, $db, $port);
echo "mysqli connected: ", $m->host_info === "$host via TCP/IP" ? "tcp" : $m->host_info, "\n";
$m->query("DROP TABLE IF EXISTS $table");
$m->query("CREATE TABLE $table (id INT PRIMARY KEY, name VARCHAR(64), amount DECIMAL(10,2), data MEDIUMBLOB)");
$ins = $m->prepare("INSERT INTO $table (id, name, amount, data) VALUES (?, ?, ?, ?)");
$id = 0; $name = ''; $amount = 0.0; $data = '';
$ins->bind_param('isds', $id, $name, $amount, $data);
for ($id = 1; $id <= 300; $id++) {
    $name = "row-$id-" . str_repeat(chr(97 + $id % 26), $id % 17);
    $amount = $id * 1.25;
    $data = str_repeat(pack('N', $id * 2654435761 & 0xffffffff), 64 * ($id % 9));
    $ins->execute();
}
echo "mysqli inserted: ", $m->query("SELECT COUNT(*) FROM $table")->fetch_row()[0], "\n";
$sel = $m->prepare("SELECT id, name, amount, data FROM $table WHERE id > ? ORDER BY id");
$lo = 50;
$sel->bind_param('i', $lo);
$sel->execute();
$res = $sel->get_result();
$h = hash_init('sha256');
$n = 0;
while ($row = $res->fetch_assoc()) {
    hash_update($h, implode("\x1f", $row) . "\x1e");
    $n++;
}
echo "mysqli prepared select: $n rows, sha256 ", hash_final($h), "\n";
// A large unbuffered result (about 5 MB) streamed from the server.
$r = $m->query("SELECT seq, REPEAT(MD5(seq), 3) FROM seq_1_to_50000", MYSQLI_USE_RESULT);
$h = hash_init('sha256');
$n = 0;
while ($row = $r->fetch_row()) { hash_update($h, $row[0] . ':' . $row[1]); $n++; }
$r->free();
echo "mysqli unbuffered: $n rows, sha256 ", hash_final($h), "\n";
try {
    $m->query("SELECT no_such_column FROM $table");
} catch (mysqli_sql_exception $e) {
    echo "mysqli error: ", $e->getCode(), " ", $e->getMessage(), " (sqlstate ", $e->getSqlState(), ")\n";
}
try {
    $id = 7; $name = 'dup'; $amount = 1.0; $data = '';
    $ins->execute();
} catch (mysqli_sql_exception $e) {
    echo "mysqli duplicate: ", $e->getCode(), " ", $e->getMessage(), "\n";
}
// Async query API: mysqli_poll waits on the socket.
$m->query("SELECT SLEEP(0.3), 'async'", MYSQLI_ASYNC);
$links = $errors = $rejects = [$m];
$ready = mysqli_poll($links, $errors, $rejects, 5);
$row = $m->reap_async_query()->fetch_row();
echo "mysqli async: ready $ready, result {$row[0]} {$row[1]}\n";
$m->close();

try {
    new mysqli($host, $user, 'bad-password', $db, $port);
    echo "mysqli bad password: accepted\n";
} catch (mysqli_sql_exception $e) {
    echo "mysqli bad password: ", $e->getCode(), " ", $e->getMessage(), "\n";
}

// --- PDO ---
$pdo = new PDO("mysql:host=$host;port=$port;dbname=$db", $user, $pw, [
    PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
    PDO::ATTR_EMULATE_PREPARES => false,
]);
$st = $pdo->prepare("SELECT id, name, amount FROM $table WHERE id BETWEEN :lo AND :hi ORDER BY id DESC");
$st->execute([':lo' => 10, ':hi' => 20]);
$rows = $st->fetchAll(PDO::FETCH_NUM);
echo "pdo prepared: ", count($rows), " rows, first ", json_encode($rows[0]), "\n";
$pdo->beginTransaction();
$upd = $pdo->prepare("UPDATE $table SET amount = amount + ? WHERE id <= ?");
$upd->execute([100, 10]);
echo "pdo updated: ", $upd->rowCount(), "\n";
$pdo->rollBack();
echo "pdo after rollback: ", $pdo->query("SELECT SUM(amount) FROM $table")->fetchColumn(), "\n";
try {
    $pdo->query("SELECT * FROM missing_table");
} catch (PDOException $e) {
    echo "pdo error: ", $e->getCode(), " ", $e->errorInfo[1], " ", $e->errorInfo[2], "\n";
}
$pdo->exec("DROP TABLE $table");
$pdo = null;
try {
    new PDO("mysql:host=127.0.0.1;port=" . (int)getenv('CLOSED_PORT'), $user, $pw);
    echo "pdo closed port: connected\n";
} catch (PDOException $e) {
    // The message names the port; code and class are what must agree.
    echo "pdo closed port: ", $e->getCode(), " ", preg_replace('/:\d+/', ':PORT', $e->getMessage()), "\n";
}
$s = new PDO("mysql:unix_socket=$sock;dbname=$db", $user, $pw);
echo "pdo socket: ", $s->query("SELECT CONCAT('sum ', SUM(seq)) FROM seq_1_to_1000")->fetchColumn(), "\n";
