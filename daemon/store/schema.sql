-- The store's schema, as numbered migrations applied in order by PRAGMA user_version.
-- A released migration never changes; a change of schema is a new migration.

-- migration 1
CREATE TABLE definitions (
    digest     TEXT PRIMARY KEY,      -- source_digest() of the workflow file's text
    workflow   TEXT NOT NULL,
    file       TEXT NOT NULL,
    source     TEXT NOT NULL,         -- kept so an interrupted execution resumes with its own definition
    created_at INTEGER NOT NULL
);

CREATE TABLE workflow_settings (
    workflow TEXT PRIMARY KEY,
    enabled  INTEGER,                 -- NULL: the file's `enabled` decides; 0/1: luaflowctl disable/enable
    skipped  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE executions (
    id            TEXT PRIMARY KEY,
    seq           INTEGER NOT NULL,   -- creation order, for FIFO queues and newest-first listings
    workflow      TEXT NOT NULL,
    definition    TEXT NOT NULL REFERENCES definitions(digest),
    status        TEXT NOT NULL,
    trigger       TEXT NOT NULL,      -- JSON
    input         TEXT NOT NULL,      -- JSON
    shared        TEXT NOT NULL,      -- JSON object: ctx.shared as committed so far
    error         TEXT,
    created_at    INTEGER NOT NULL,   -- Unix milliseconds
    started_at    INTEGER,
    finished_at   INTEGER,
    scheduled_for INTEGER,
    parent        TEXT
);
CREATE UNIQUE INDEX executions_seq ON executions(seq);
CREATE INDEX executions_workflow ON executions(workflow, seq);
CREATE INDEX executions_active ON executions(status) WHERE status IN ('queued', 'running');

CREATE TABLE actions (
    execution_id    TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,  -- attempts made, ever (the interrupted one included)
    attempt_base    INTEGER NOT NULL DEFAULT 0,  -- attempts before the latest `retry` of the execution
    output          TEXT,                        -- JSON
    error           TEXT,
    event           TEXT,                        -- why it failed when not by its own doing: resource, interrupted
    exit_code       INTEGER,
    host            TEXT,
    node            TEXT,                        -- JSON: ctx.node, kept across retries and restarts
    started_at      INTEGER,
    finished_at     INTEGER,
    next_attempt_at INTEGER,                     -- set while pending a retry
    PRIMARY KEY (execution_id, name)
) WITHOUT ROWID;

CREATE TABLE logs (
    id           INTEGER PRIMARY KEY,
    execution_id TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    action       TEXT,
    attempt      INTEGER,
    time         INTEGER NOT NULL,
    stream       TEXT NOT NULL,       -- stdout | stderr | log
    line         TEXT NOT NULL
);
CREATE INDEX logs_execution ON logs(execution_id, id);

-- migration 2
-- One row per schedule rule (SPEC 4): the series' start when the file gives no dtstart, so that reloads
-- and restarts do not move it, and the newest occurrence already handled (started or dropped), so that
-- a restart neither fires an occurrence twice nor forgets the ones it missed.
CREATE TABLE schedules (
    workflow   TEXT NOT NULL,
    rule       TEXT NOT NULL,         -- the rule's key: kind, text and zone
    dtstart    INTEGER NOT NULL,      -- Unix seconds
    handled    INTEGER NOT NULL,      -- Unix seconds: occurrences up to this one are done with
    PRIMARY KEY (workflow, rule)
) WITHOUT ROWID;

-- Events that are not an execution's end: `skipped` (scheduled occurrences dropped, with how many)
-- and `late` (a scheduled run that started more than 1 s after its time). The notifications issue
-- sends them; inspect (execution events) and show (workflow events) list them.
CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    workflow     TEXT NOT NULL,
    execution_id TEXT REFERENCES executions(id) ON DELETE CASCADE,
    event        TEXT NOT NULL,
    time         INTEGER NOT NULL,    -- Unix milliseconds
    count        INTEGER NOT NULL DEFAULT 1,
    message      TEXT NOT NULL
);
CREATE INDEX events_execution ON events(execution_id) WHERE execution_id IS NOT NULL;
CREATE INDEX events_workflow ON events(workflow, id);

-- migration 3
-- kv.* (SPEC 3): values as JSON text, per workflow (`scope` is its id) or global (`scope` is '').
CREATE TABLE kv (
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,      -- Unix milliseconds
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;

-- migration 4
-- Child executions (workflows.run): a parent's children are found by its id; the trigger of a child
-- names the parent's action, attempt and call.
CREATE INDEX executions_parent ON executions(parent, seq) WHERE parent IS NOT NULL;

-- migration 5
-- Subprocess actions: why a pending action waits (its queue is full, its host lacks the resources) and
-- what a running or finished attempt holds of its host (cpus, gpus, memory), both shown by inspect.
ALTER TABLE actions ADD COLUMN waiting TEXT;
ALTER TABLE actions ADD COLUMN allocation TEXT;

-- migration 6
-- The zone of the schedule rule that started an execution, so that its scheduled_for is shown in that
-- zone, as `next` shows the rule's times (NULL: not scheduled, or from before this migration).
ALTER TABLE executions ADD COLUMN scheduled_tz TEXT;

-- migration 7
-- What a definition uses beside its workflow file, so that a running or interrupted execution keeps the
-- text it started with (SPEC 5): {"scripts": {path: digest}, "lib": {path: digest}} (NULL: a definition
-- stored before, which reads those files from disk). Each text is kept once, by its digest.
ALTER TABLE definitions ADD COLUMN files TEXT;
CREATE TABLE sources (
    digest TEXT PRIMARY KEY,
    text   TEXT NOT NULL
) WITHOUT ROWID;

-- migration 7
-- File watches (SPEC 4, `triggers.watch`): a directory a workflow watches, once its files present when the
-- watch first began were taken as the baseline (they start nothing), and each file seen since, with what
-- it was when last handled, so that a restart starts a run for what changed while it was down, and
-- nothing twice.
CREATE TABLE watch_dirs (
    workflow TEXT NOT NULL,
    dir      TEXT NOT NULL,
    PRIMARY KEY (workflow, dir)
) WITHOUT ROWID;

CREATE TABLE watch_files (
    workflow TEXT NOT NULL,
    dir      TEXT NOT NULL,
    name     TEXT NOT NULL,
    mtime_ns INTEGER NOT NULL,
    size     INTEGER NOT NULL,
    PRIMARY KEY (workflow, dir, name)
) WITHOUT ROWID;

-- migration 9
-- The notification outbox (SPEC 8): one row per message to one notifier, written in the transaction of
-- the state change it reports, then sent from the committed row, retried with backoff for up to 24 h and
-- across restarts. Not tied to its execution's row: retention prunes both by age, and a message still
-- pending outlives an execution pruned for `keep_per_workflow`.
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY,
    uid          TEXT NOT NULL,         -- the message's stable id: Message-ID, X-Luaflow-Notification-Id
    notifier     TEXT NOT NULL,
    event        TEXT NOT NULL,         -- success ... late (common/event.hpp), or notify
    workflow     TEXT NOT NULL,
    execution_id TEXT,
    message      TEXT NOT NULL,         -- JSON: what it says (notifiers/message.hpp)
    status       TEXT NOT NULL,         -- pending | sent | failed | recorded (luaflowctl test: never sent)
    attempts     INTEGER NOT NULL DEFAULT 0,
    error        TEXT,                  -- the last failed attempt's
    created_at   INTEGER NOT NULL,      -- Unix milliseconds
    next_at      INTEGER NOT NULL,      -- pending: when the next attempt is due
    sent_at      INTEGER
);
CREATE INDEX notifications_due ON notifications(notifier, next_at) WHERE status = 'pending';
CREATE INDEX notifications_execution ON notifications(execution_id) WHERE execution_id IS NOT NULL;

-- migration 10
-- Actions keyed by their execution's seq instead of its random id: the rows of a new execution go at the
-- right edge of the table's B-tree, where the previous execution's went, instead of onto a page of their
-- own anywhere in it, which each commit then wrote again (bench: 1.55x the store's rows per second with
-- 30 000 executions). The columns are those of migrations 1 and 5, in their order.
CREATE TABLE actions_by_seq (
    execution_seq   INTEGER NOT NULL REFERENCES executions(seq) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    attempt_base    INTEGER NOT NULL DEFAULT 0,
    output          TEXT,
    error           TEXT,
    event           TEXT,
    exit_code       INTEGER,
    host            TEXT,
    node            TEXT,
    started_at      INTEGER,
    finished_at     INTEGER,
    next_attempt_at INTEGER,
    waiting         TEXT,
    allocation      TEXT,
    PRIMARY KEY (execution_seq, name)
) WITHOUT ROWID;
INSERT INTO actions_by_seq
    SELECT e.seq, a.name, a.status, a.attempts, a.attempt_base, a.output, a.error, a.event, a.exit_code,
           a.host, a.node, a.started_at, a.finished_at, a.next_attempt_at, a.waiting, a.allocation
    FROM actions a JOIN executions e ON e.id = a.execution_id;
DROP TABLE actions;
ALTER TABLE actions_by_seq RENAME TO actions;

-- migration 11
-- Executions keyed by seq: the row's rowid is its seq, so a new execution's row goes at the right edge
-- of the table and no separate index on seq is kept. A lone execution's commit wrote six B-tree pages
-- (WAL frames), one of them that index's; `actions` finds its parent by rowid; the listings by workflow
-- and by parent read the rowid that ends every index entry, in seq order. The columns and their order are
-- those of migrations 1 and 6. Migrations run with foreign keys off: dropping the old table deletes no
-- action, log or event.
CREATE TABLE executions_by_seq (
    id            TEXT NOT NULL UNIQUE,
    seq           INTEGER PRIMARY KEY,
    workflow      TEXT NOT NULL,
    definition    TEXT NOT NULL REFERENCES definitions(digest),
    status        TEXT NOT NULL,
    trigger       TEXT NOT NULL,
    input         TEXT NOT NULL,
    shared        TEXT NOT NULL,
    error         TEXT,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    scheduled_for INTEGER,
    parent        TEXT,
    scheduled_tz  TEXT
);
INSERT INTO executions_by_seq
    SELECT id, seq, workflow, definition, status, trigger, input, shared, error, created_at, started_at,
           finished_at, scheduled_for, parent, scheduled_tz
    FROM executions;
DROP TABLE executions;
ALTER TABLE executions_by_seq RENAME TO executions;
CREATE INDEX executions_workflow ON executions(workflow);
CREATE INDEX executions_active ON executions(status) WHERE status IN ('queued', 'running');
CREATE INDEX executions_parent ON executions(parent) WHERE parent IS NOT NULL;
