// Package pebblestore implements store.Store on Pebble, an embedded LSM, in
// one directory. It is Switchboard's default backend.
//
// # Writes
//
// One writer goroutine owns every write. Callers queue a request and wait;
// the writer drains up to Options.MaxBatch queued requests into one batch,
// applying them in order, so that each sees the writes of those before it.
// A request does all its checks before it writes anything, so its error
// leaves the batch and the other requests untouched. Because one goroutine
// numbers everything, seqs and cursors have no gaps or duplicates.
//
// A finished batch goes down a pipeline: an applier goroutine applies it
// with pebble.Sync but without waiting for the sync (DB.ApplyNoSyncWait),
// and a syncer goroutine waits for the WAL sync and then answers the
// batch's requests. So concurrent writers share one fsync, and the writer
// builds the next batch while the last is applied and synced. A call
// returns only once its batch is durable. If an apply or sync fails, that
// batch and every later one fail with store.ErrUnavailable: the store must
// be reopened.
//
// What the writer reads must include the batches not yet applied. It
// caches conversations (members, last seq, updated at) and every user's
// last cursor, and keeps the other keys it reads back (apps, read
// positions) in a pending map until their batch is applied; the messages
// of those batches, which only a repeated send reads back, it keeps in a
// list by batch; anything else it reads from the DB.
//
// Idempotency records are not in pending but in an index of their own
// (idem.go), from their write until Pebble reports a flush that put them
// in sstables. Every append looks its client id up and almost never finds
// it, and a Pebble Get for a missing key searches every memtable's skip
// list, which has no filter; so the writer looks in the index and then in
// the sstables alone, whose bloom filters answer at once. This holds only
// while the writer is the one to write those records and Open leaves no
// memtable it did not see. The index holds the records of at most the
// memtables not yet flushed, by a 64-bit hash of their key, their keys in
// one arena, without pointers: about 100 bytes a message, some tens of MB
// at most with 32 MiB memtables.
//
// Batches reach Pebble sorted by key (sorted.go), so that the memtable
// inserts of a stream's or a conversation's entries follow one another.
//
// Pebble makes a batch visible before its sync ends. Reads go straight to
// the DB, but Updates and Messages stop before the first stream entry or
// message that is not durable yet (durableGate), so a reader never sees a
// cursor or seq that a crash could then give to something else.
//
// # Keys
//
// Numbers are big-endian and fixed width, so that byte order is numeric
// order. Ids and addresses never hold a 0x00 byte, which ends them where
// something follows. Times are Unix nanoseconds.
//
//	a <app id>                                  app, JSON
//	c <conv id>                                 conversation, binary (encodeConversation); LastSeq and UpdatedAt as of its last write
//	m <conv id> 00 <seq u64>                    message, binary (see encodeMessage)
//	i <conv id> 00 <sender> 00 <client id>      seq u64 | sender's cursor u64 (idempotency)
//	r <conv id> 00 <member>                     read seq u64
//	u <user> 00 <cursor u64>                    stream entry, or a run of message entries, by kind (see entryMessage)
//	l <user> 00 <^updated at u64> <^conv id> ff nothing: the user's conversation list
//	b <blocker> 00 <blocked>                    nothing: a block
//
// A stream entry for a message is a reference (conversation id, seq) that is
// resolved when read, so that a send to a group of 256 writes the message
// once; read and conversation updates are stored whole. The message entries
// that one batch gives a stream with consecutive seqs of one conversation
// are one key, a run (conversation id, first seq, count) at the first
// cursor, which holds the cursors after it up to the count: in a
// conversation of two, a batch of 16 sends then writes 2 stream keys, not
// 32. A read that starts inside a run finds it with a seek to the key
// before. (Format change: stores written before it have single entries
// only, which this version reads; earlier versions cannot read runs.) The conversation
// list key inverts the time (with its sign bit flipped, so negative times
// order too) and every byte of the id, so that ascending iteration yields
// UpdatedAt descending, then id descending; the trailing ff makes a shorter
// id sort after the longer ids it prefixes. Appends move the entry of each
// member: delete the key with the old time, write the new one. A batch
// does that once per conversation it appended to, not once per message,
// which matters for a busy group of 256.
//
// An append does not rewrite the conversation record, nor any head record:
// a conversation's LastSeq and UpdatedAt are those of its record unless its
// last message (the last m key) is newer, whose seq and SentAt then are
// they. The message is written in the same batch as its seq, so this holds
// after a crash too, and it saves a memtable insert per conversation per
// batch. (Format change: stores written before it kept the head in an
// h <conv id> record and LastSeq 0 in the conversation record; this version
// reads their conversations with the last message's seq but, when a
// membership change came last, a stale UpdatedAt.)
package pebblestore
