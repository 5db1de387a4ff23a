-- Switchboard schema, version 1. Every statement is idempotent, so that a
-- migration that died halfway can simply run again. Times are Unix
-- nanoseconds in BIGINT: timestamptz keeps only microseconds. Ids and
-- addresses compare bytewise (COLLATE "C"), like the Go code that pages
-- through them.

CREATE TABLE IF NOT EXISTS apps (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT NOT NULL,
    secret     TEXT NOT NULL,
    interop    TEXT[] NOT NULL,
    created_at BIGINT NOT NULL
);

-- members keeps the order the conversation was given; last_seq and
-- updated_at move with every message, under this row's lock.
CREATE TABLE IF NOT EXISTS conversations (
    id         TEXT COLLATE "C" PRIMARY KEY,
    kind       TEXT NOT NULL,
    title      TEXT NOT NULL,
    members    TEXT[] NOT NULL,
    creator    TEXT NOT NULL,
    last_seq   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One row per user who is or was a member: the read position, kept when
-- they leave (active = false).
CREATE TABLE IF NOT EXISTS members (
    conversation_id TEXT COLLATE "C" NOT NULL,
    member          TEXT COLLATE "C" NOT NULL,
    read_seq        BIGINT NOT NULL,
    active          BOOLEAN NOT NULL,
    PRIMARY KEY (conversation_id, member)
);
CREATE INDEX IF NOT EXISTS members_by_member ON members (member, conversation_id);

CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT COLLATE "C" NOT NULL,
    seq             BIGINT NOT NULL,
    sender          TEXT COLLATE "C" NOT NULL,
    client_id       TEXT COLLATE "C" NOT NULL,
    kind            TEXT NOT NULL,
    body            TEXT NOT NULL,
    meta            BYTEA,
    sent_at         BIGINT NOT NULL,
    sender_cursor   BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_client ON messages (conversation_id, sender, client_id);

-- Each user's last cursor. Bumping it takes the row's lock, which orders
-- the stream: cursor n+1 cannot commit before cursor n.
CREATE TABLE IF NOT EXISTS streams (
    user_addr   TEXT COLLATE "C" PRIMARY KEY,
    last_cursor BIGINT NOT NULL
);

-- A stream entry. kind 1: message (conversation_id, seq), resolved from
-- messages when read; 2: read (conversation_id, reader, seq); 3:
-- conversation (a JSON snapshot).
CREATE TABLE IF NOT EXISTS updates (
    user_addr       TEXT COLLATE "C" NOT NULL,
    cur             BIGINT NOT NULL,
    kind            SMALLINT NOT NULL,
    conversation_id TEXT,
    seq             BIGINT,
    reader          TEXT,
    conversation    TEXT,
    PRIMARY KEY (user_addr, cur)
);

CREATE TABLE IF NOT EXISTS blocks (
    blocker TEXT COLLATE "C" NOT NULL,
    blocked TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (blocker, blocked)
);
