"""The register's durable store: bindings, quarantine and hand-overs.

``Store`` keeps the register's state in one SQLite file in WAL mode.
``WriteBatch`` carries the changes of one group commit: the register
collects them, ``Store.write`` applies them in a single transaction.
"""

import os
import sqlite3
import threading

DEFAULT_STATE_PATH = '/var/lib/tmip_ryu/state.sqlite'

SCHEMA_VERSION = 1

# Hand-over rows kept in the file; older ones are deleted on write.
DEFAULT_HANDOVER_ROWS = 10000

_SCHEMA = (
    '''CREATE TABLE IF NOT EXISTS bindings (
        mac TEXT PRIMARY KEY,
        home_cell INTEGER NOT NULL,
        cell INTEGER NOT NULL,
        dpid INTEGER NOT NULL,
        port INTEGER NOT NULL,
        network INTEGER NOT NULL,
        lease_start REAL NOT NULL,
        lease_time INTEGER NOT NULL,
        client_id BLOB,
        seq INTEGER NOT NULL
    ) WITHOUT ROWID''',
    '''CREATE TABLE IF NOT EXISTS quarantine (
        network INTEGER PRIMARY KEY,
        cell INTEGER NOT NULL,
        until REAL NOT NULL
    )''',
    '''CREATE TABLE IF NOT EXISTS handovers (
        id INTEGER PRIMARY KEY,
        mac TEXT NOT NULL,
        from_cell INTEGER, from_dpid INTEGER, from_port INTEGER,
        to_cell INTEGER, to_dpid INTEGER, to_port INTEGER,
        seq INTEGER,
        status TEXT NOT NULL,
        reason TEXT,
        started_at REAL,
        queued_ms REAL, prepare_ms REAL, commit_ms REAL, total_ms REAL
    )''',
)

_UPSERT_BINDING = (
    'INSERT OR REPLACE INTO bindings (mac, home_cell, cell, dpid, port, '
    'network, lease_start, lease_time, client_id, seq) '
    'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
_UPSERT_QUARANTINE = (
    'INSERT OR REPLACE INTO quarantine (network, cell, until) '
    'VALUES (?, ?, ?)')
_INSERT_HANDOVER = (
    'INSERT INTO handovers (mac, from_cell, from_dpid, from_port, to_cell, '
    'to_dpid, to_port, seq, status, reason, started_at, queued_ms, '
    'prepare_ms, commit_ms, total_ms) '
    'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')

# Seconds to wait for another process's lock on the file before failing:
# long enough for a controller that is stopping to let go of it.
_LOCK_WAIT = 1.0

# Rows read per step while loading, to bound the memory of recovery.
_LOAD_CHUNK = 10000

_TIMING_KEYS = ('queued_ms', 'prepare_ms', 'commit_ms', 'total_ms')
_SYNCHRONOUS_MODES = ('FULL', 'NORMAL')


class StoreError(OSError):
    """The state file could not be opened, read or written."""


def to_sql_u64(value):
    """Map an unsigned 64-bit int (a datapath id) to SQLite's signed one."""
    return value - (1 << 64) if value >= 1 << 63 else value


def from_sql_u64(value):
    """Map a signed SQLite integer back to the unsigned 64-bit value."""
    return value + (1 << 64) if value < 0 else value


class WriteBatch:
    """The changes of one group commit, as rows ready for the store.

    The register fills the row lists and keeps in ``macs`` and
    ``networks`` the keys it marked dirty, so that it can mark them again
    if the write fails. ``generation`` is the register's change counter
    when the batch was collected.
    """

    __slots__ = ('upserts', 'deletes', 'quarantined', 'unquarantined',
                 'handovers', 'macs', 'networks', 'generation')

    def __init__(self, generation=0):
        self.upserts = []
        self.deletes = []
        self.quarantined = []
        self.unquarantined = []
        self.handovers = []
        self.macs = ()
        self.networks = ()
        self.generation = generation

    def __len__(self):
        return (len(self.upserts) + len(self.deletes)
                + len(self.quarantined) + len(self.unquarantined)
                + len(self.handovers))


class Store:
    """One SQLite file holding the register's committed state.

    Opens (and creates) the file at ``path``, creating its directory. The
    file is locked for this process (SQLite exclusive locking mode), so a
    second controller on the same file fails at start instead of
    corrupting the first one's state. Writes use WAL mode with
    ``synchronous`` FULL by default: every committed batch is on disk
    before ``write`` returns, so it survives a power loss as well as a
    crash. NORMAL survives a process crash but may lose the last batches
    on a power loss or kernel crash.

    One connection is shared by every call, under a lock, so ``write``
    may run in a worker thread while the register keeps serving lookups.
    """

    def __init__(self, path=DEFAULT_STATE_PATH, synchronous='FULL',
                 handover_rows=DEFAULT_HANDOVER_ROWS):
        if synchronous not in _SYNCHRONOUS_MODES:
            raise ValueError('invalid synchronous mode %r: expected one of '
                             '%s' % (synchronous,
                                     ', '.join(_SYNCHRONOUS_MODES)))
        self.path = path
        self.synchronous = synchronous
        self.handover_rows = handover_rows
        self._lock = threading.Lock()
        self._connection = None
        self._make_directory()
        try:
            self._connection = self._open()
        except sqlite3.Error as error:
            if self._connection is not None:
                self._connection.close()
            raise StoreError('cannot open state file %s: %s (check that it '
                             'is a tmip_ryu state file and that no other '
                             'process uses it)' % (path, error)) from error

    def _make_directory(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as error:
            raise StoreError('cannot create directory %s for the state file '
                             '%s: %s' % (directory, self.path,
                                         error.strerror)) from error

    def _open(self):
        connection = sqlite3.connect(self.path, isolation_level=None,
                                     check_same_thread=False,
                                     timeout=_LOCK_WAIT)
        self._connection = connection
        connection.execute('PRAGMA locking_mode=EXCLUSIVE')
        mode = connection.execute('PRAGMA journal_mode=WAL').fetchone()[0]
        if mode.lower() != 'wal':
            raise sqlite3.OperationalError(
                'cannot switch the journal to WAL mode (got %s)' % mode)
        connection.execute('PRAGMA synchronous=%s' % self.synchronous)
        version = connection.execute('PRAGMA user_version').fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                'schema version %d is newer than this tmip_ryu supports '
                '(%d)' % (version, SCHEMA_VERSION))
        connection.execute('BEGIN IMMEDIATE')
        try:
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute('PRAGMA user_version=%d' % SCHEMA_VERSION)
            connection.execute('COMMIT')
        except sqlite3.Error:
            connection.execute('ROLLBACK')
            raise
        return connection

    def write(self, batch):
        """Apply every change of a WriteBatch in one transaction.

        Returns once the transaction is committed. Raises StoreError, with
        nothing applied, if SQLite fails (disk full, I/O error).
        """
        with self._lock:
            connection = self._checked_connection()
            try:
                connection.execute('BEGIN IMMEDIATE')
                self._apply(connection, batch)
                connection.execute('COMMIT')
            except sqlite3.Error as error:
                if connection.in_transaction:
                    connection.execute('ROLLBACK')
                raise StoreError('cannot write %d changes to state file %s: '
                                 '%s' % (len(batch), self.path,
                                         error)) from error

    def _apply(self, connection, batch):
        if batch.deletes:
            connection.executemany('DELETE FROM bindings WHERE mac = ?',
                                   ((mac,) for mac in batch.deletes))
        if batch.upserts:
            connection.executemany(_UPSERT_BINDING, batch.upserts)
        if batch.unquarantined:
            connection.executemany(
                'DELETE FROM quarantine WHERE network = ?',
                ((network,) for network in batch.unquarantined))
        if batch.quarantined:
            connection.executemany(_UPSERT_QUARANTINE, batch.quarantined)
        if batch.handovers:
            connection.executemany(_INSERT_HANDOVER, batch.handovers)
            connection.execute(
                'DELETE FROM handovers WHERE id <= '
                '(SELECT max(id) FROM handovers) - ?',
                (self.handover_rows,))

    def load_bindings(self):
        """Yield every stored binding as a row tuple.

        Rows are (mac, home_cell, cell, dpid, port, network_int,
        lease_start, lease_time, client_id, seq), dpid unsigned.
        """
        for rows in self.load_binding_chunks():
            yield from rows

    def load_binding_chunks(self):
        """Yield the stored bindings as lists of rows (see load_bindings).

        Reading in chunks bounds the memory that recovery needs on top of
        the register itself.
        """
        with self._lock:
            cursor = self._checked_connection().execute(
                'SELECT mac, home_cell, cell, dpid, port, network, '
                'lease_start, lease_time, client_id, seq FROM bindings')
        while True:
            with self._lock:
                rows = cursor.fetchmany(_LOAD_CHUNK)
            if not rows:
                return
            for position, row in enumerate(rows):
                if row[3] < 0:
                    rows[position] = (row[:3] + (from_sql_u64(row[3]),)
                                      + row[4:])
            yield rows

    def load_quarantine(self):
        """Return the quarantined blocks as (network_int, cell, until)."""
        with self._lock:
            return self._checked_connection().execute(
                'SELECT network, cell, until FROM quarantine').fetchall()

    def load_handovers(self, limit):
        """Return the latest ``limit`` hand-over records, oldest first."""
        with self._lock:
            rows = self._checked_connection().execute(
                'SELECT mac, from_cell, from_dpid, from_port, to_cell, '
                'to_dpid, to_port, seq, status, reason, started_at, '
                'queued_ms, prepare_ms, commit_ms, total_ms '
                'FROM handovers ORDER BY id DESC LIMIT ?',
                (limit,)).fetchall()
        return [handover_from_row(row) for row in reversed(rows)]

    def close(self):
        """Close the file; later calls raise StoreError."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _checked_connection(self):
        if self._connection is None:
            raise StoreError('state file %s is closed' % self.path)
        return self._connection

    def __repr__(self):
        return 'Store(%r, synchronous=%r)' % (self.path, self.synchronous)


def binding_row(binding):
    """Return the store row of a Binding."""
    return (binding.mac, binding.home_cell, binding.cell,
            to_sql_u64(binding.dpid), binding.port, binding.network_int,
            binding.lease_start, binding.lease_time, binding.client_id,
            binding.seq)


def handover_row(record):
    """Return the store row of a hand-over record (a history dict)."""
    source = record['from']
    target = record['to']
    timings = record['timings']
    return ((record['mac'], source['cell'], to_sql_u64(source['dpid']),
             source['port'], target['cell'], to_sql_u64(target['dpid']),
             target['port'], record['seq'], record['status'],
             record['reason'], record['started_at'])
            + tuple(timings[key] for key in _TIMING_KEYS))


def handover_from_row(row):
    """Return the hand-over record (a history dict) of a store row."""
    return {
        'mac': row[0],
        'from': {'cell': row[1], 'dpid': from_sql_u64(row[2]),
                 'port': row[3]},
        'to': {'cell': row[4], 'dpid': from_sql_u64(row[5]),
               'port': row[6]},
        'seq': row[7],
        'status': row[8],
        'reason': row[9],
        'started_at': row[10],
        'timings': dict(zip(_TIMING_KEYS, row[11:15])),
    }
