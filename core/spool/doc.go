// Package spool is the core's disk buffer for sink batches: what Telegraf
// calls buffer_strategy = "disk", with sequence numbers, acknowledgements
// that survive restarts, checksums on every record, and losses that are
// counted and reported rather than silent.
//
// # Use
//
//	sp, rec, err := spool.Open(spool.Options{Dir: dir})
//	// rec says what a previous run left: records to replay, and any loss.
//	seq, err := sp.Append(payload)        // ErrFull when over MaxBytes
//	r := sp.Reader(0)                     // unacknowledged records, in order
//	rec, err := r.NextWait(ctx)
//	err = sp.Ack(rec.Seq)                 // any order; frees whole segments
//
// One goroutine may append while others read and acknowledge; every
// method is safe for concurrent use.
//
// # Guarantees
//
//   - Order: readers see records in sequence order, which is append order.
//   - Sequence numbers start at 1, increase with every Append and keep
//     increasing across restarts (the newest segment's name and contents
//     carry them); a number is never handed out twice. They go up by one,
//     except that a failed write and a cut tail skip numbers (those a
//     reader may have seen).
//   - Durability: with SyncEveryBatch (the default) a record is on disk
//     when Append returns, and an acknowledgement is on disk when Ack
//     returns. With SyncGrouped they are fsynced every N records or every
//     interval; a record becomes visible to readers only once fsynced, so
//     a sink never acknowledges a record that a power loss could undo.
//     With SyncNone nothing is fsynced: a process crash (kill -9) loses
//     nothing, a power loss may cut tails, which Open reports.
//     Acknowledgements follow Options.AckSync (default: as Sync); they are
//     written before Ack returns, so only a power loss can undo one, and
//     that only replays a record again.
//   - At least once: every appended record that has not been
//     acknowledged is replayed after a restart, in order. A record whose
//     acknowledgement was not yet durable when the process died is
//     replayed again: sinks must treat a repeated sequence number as done
//     (the SDK's Sink contract already says so).
//   - Bounded: the segment files never exceed MaxBytes; Append returns
//     ErrFull instead and the caller decides (back-pressure with
//     AppendWait, or drop and count). Space is freed a segment at a time,
//     when its last record is acknowledged. AppendLimit sets another
//     bound for one record: lower (a high-water mark for records that may
//     be dropped) or, for a record that must be kept, higher.
//   - No silent loss: Open validates every record (CRC32C, sequence
//     continuity). A torn or damaged tail is cut at the last good record
//     and reported in Recovery (records, bytes, sequence range, reason,
//     and whether it looks like a crash or like corruption); damage a
//     Reader meets later is returned as *CorruptError and counted in
//     Stats.
//   - One owner: Open takes an flock on dir/LOCK; a second Open of the
//     same directory, from this process or another, fails with ErrLocked.
//     The kernel releases the lock when the process dies.
//
// # On-disk format (version 1)
//
// A spool directory holds LOCK, segment files NNNNNNNNNNNNNNNNNNNN.seg and
// acknowledgement logs NNNNNNNNNNNNNNNNNNNN.ack, where the twenty digits
// are the first sequence number of the segment. All integers are little
// endian; CRC32C is CRC-32 with the Castagnoli polynomial.
//
// A segment starts with a 32-byte header:
//
//	offset size
//	0      8    magic "NGSPOOL\x00"
//	8      4    format version (1)
//	12     4    flags (0)
//	16     8    first sequence number (equals the file name's)
//	24     4    reserved (0)
//	28     4    CRC32C of bytes 0..27
//
// followed by records, back to back:
//
//	0      4    payload length n (≤ 1 GiB)
//	4      4    CRC32C of: the length field, the sequence field, the payload
//	8      8    sequence number: the header's first, then +1 per record
//	16     n    payload
//
// A segment is append-only; it is closed (sealed, fsynced) when the next
// record would take it over SegmentBytes, and a new one is created, its
// header fsynced and the directory fsynced, before anything else. The
// newest segment is the only one a crash can leave with a torn tail (with
// SyncNone, a power loss may tear any).
//
// An acknowledgement log holds 12-byte entries, appended in the order the
// acknowledgements came: sequence number (8), CRC32C of those 8 bytes
// (4). Entries with a bad checksum are ignored (that record is replayed
// again); a torn last entry is cut at Open.
//
// When every record of a sealed segment is acknowledged, the segment file
// is deleted, then its acknowledgement log (an orphan log left by a crash
// in between is removed at Open). The newest segment is never deleted
// while the spool is open; it is reused by the next Open when intact.
//
// # Recovery
//
// Open scans the segments oldest first. In each, it stops at the first
// record that is short, fails its checksum or breaks the sequence, and
// cuts the file there (the cut bytes are reported, never kept as
// records). To count what was cut it resynchronises: it looks for intact
// records after the damage, whose sequence numbers tell how many records
// came before them, and counts one more for damage after the last intact
// one. A segment whose header is unreadable is removed whole. Records in
// the cut bytes that had been acknowledged are not counted as lost.
package spool
