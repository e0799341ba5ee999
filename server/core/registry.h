/*
 * The durable stream registry: every file under data_root/_streams/, and with tables on S3
 * each persistent stream's object on the table store (below, "The registry on the table
 * store"). It owns their layout and durability rules, and nothing else: it knows stream ids and
 * records (table, record type, owner, clock reference, descriptor bytes), never a call, a table's
 * rows or the server. Files, one set per stream id: <id>        a persistent stream's entry,
 * "table\nrecord_type\nowner\n" (entries made before owners were kept have no third line); its
 * mtime is the stream's last use (stream_expiry)
 *   .<id>.tmp   an entry being registered (rn_registry_begin .. rn_registry_commit)
 *   <id>.desc   "table\n" + the stream's DescriptorProto bytes
 *   <id>.clock  "boot_id delta_us\n", the agent's boot timeline on the server's clock
 *   <id>.owner  "principal\n", an ephemeral stream's principal (a persistent one's is in
 *               its entry)
 *   .live       empty; every server using the directory holds a shared flock on it
 *               (rn_registry_join), so a starting server knows whether it is alone
 * Registration is a group commit, as the WAL's is for batches: rn_registry_begin writes the
 * entry as a temp file, starts its writeback (sync_file_range, where there is one) and
 * queues the caller's rn_reg_pending; rn_registry_commit fsyncs each
 * temp file (the journal commits once for them all), renames each into place and fsyncs the
 * directory once, then reports every entry's outcome. The caller answers its creates from
 * that report, so an answered create always has a durable entry.
 *
 * Lifetime: rn_server_create makes the registry once the data root is known and destroys it
 * with the server; only the loop thread touches it (no locks). Test builds
 * (RN_FAULT_HOOKS) read RN_FAULT_REG_DIR=N: the Nth group commit's directory fsync fails
 * with EIO.
 */
#ifndef RN_REGISTRY_H
#define RN_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "rn_list.h"

/* Entries held open by one group commit at most: a caller queueing more commits first. */
#define RN_REGISTRY_GROUP_MAX 256
/* The longest owner (principal) name an entry or an .owner file keeps. */
#define RN_REGISTRY_OWNER_MAX 64
/* A stream id's room, its NUL included (ids are UUIDs, 36 characters). */
#define RN_REGISTRY_ID_MAX 40

struct rn_registry;

/*
 * A registration in flight, embedded in the caller's stream object (the caller finds its
 * stream from it with RN_LIST_ENTRY-style offset arithmetic). Make it with
 * rn_registry_pending_init; it is queued from rn_registry_begin until rn_registry_commit
 * reports it or rn_registry_drop takes it off. `id` points at the caller's copy of the
 * stream id, which must stay put while queued.
 */
struct rn_reg_pending {
	struct rn_list link; /* on the registry's queue while linked */
	int fd;              /* the temp file, open until its fsync */
	const char *id;
};

/* A registry entry as read back at start. */
struct rn_reg_record {
	const char *id;
	const char *table;
	int record_type;
	const char *owner; /* "" when made before owners were kept */
	int64_t used_s;    /* the entry's mtime (wall seconds): its last use */
};

/* Makes a registry on directory `dir` (copied; the directory must exist). 0 or RN_ENOMEM. */
int rn_registry_create(struct rn_registry **out, const char *dir);
/* Drops every queued registration (temp files removed) and frees r. NULL is a no-op. */
void rn_registry_destroy(struct rn_registry *r);
/* The directory (for log lines). */
const char *rn_registry_dir(const struct rn_registry *r);

static inline void rn_registry_pending_init(struct rn_reg_pending *p, const char *id)
{
	p->link.next = p->link.prev = NULL; /* on no list (rn_list.h) */
	p->fd = -1;
	p->id = id;
}

/* 1 while p is queued for the next group commit. */
static inline int rn_registry_queued(const struct rn_reg_pending *p)
{
	return rn_list_linked(&p->link);
}

/* Registrations queued for the next rn_registry_commit. */
size_t rn_registry_waiting(const struct rn_registry *r);

/*
 * Writes p->id's entry as a temp file and queues p. Does not commit: a caller holding
 * RN_REGISTRY_GROUP_MAX queued entries commits them first. 0, or RN_EIO (errno set; nothing
 * is left behind, p not queued).
 */
int rn_registry_begin(struct rn_registry *r, struct rn_reg_pending *p, const char *table,
		      int record_type, const char *owner);
/* Takes p off the queue (no-op if not on it), its temp file removed. */
void rn_registry_drop(struct rn_registry *r, struct rn_reg_pending *p);

/*
 * The group commit of every queued registration. Each one is taken off the queue and then
 * reported once through done(ctx, p, err): err 0 = its entry is durable; else the errno of
 * the step that failed (its own fsync or rename: only it fails; the directory fsync: every
 * entry of the group fails) and nothing of it is left on disk. done may call
 * rn_registry_drop (a no-op by then) but must not queue new entries. Returns the number of
 * entries reported; 0 when nothing was queued (no I/O, no commit counted).
 */
size_t rn_registry_commit(struct rn_registry *r,
			  void (*done)(void *ctx, struct rn_reg_pending *p, int err), void *ctx);

/*
 * Reads every entry (temp files and the per-stream files skipped) and hands each to
 * entry(ctx, rec): 0 = taken, 1 = not taken (logged as unreadable, like an entry that cannot
 * be parsed), < 0 = stop and return that error. 0, RN_EIO when the directory cannot be read,
 * or entry's error.
 */
int rn_registry_load(struct rn_registry *r,
		     int (*entry)(void *ctx, const struct rn_reg_record *rec), void *ctx);

/* Whether (id, len) can name an entry: 1 to RN_REGISTRY_ID_MAX - 1 bytes, no '/', '.', NUL,
 * space or control byte (so it is one plain file name in the directory). 0 or RN_EINVAL. */
int rn_registry_id_check(const char *id, size_t len);

/*
 * Reads one entry by id (not NUL-terminated; as it came off the wire), e.g. a stream another
 * server sharing the data root registered after this one loaded the directory, and hands it
 * to entry(ctx, rec) as rn_registry_load does. Returns entry's answer (0 taken, 1 not taken,
 * < 0 its error); 1 without calling it when the id cannot name an entry
 * (rn_registry_id_check), has none (never registered, retired, ephemeral) or its entry
 * cannot be parsed (logged).
 */
int rn_registry_find(struct rn_registry *r, const char *id, size_t len,
		     int (*entry)(void *ctx, const struct rn_reg_record *rec), void *ctx);

/*
 * Removes a persistent stream's entry durably (unlink + directory fsync); a missing entry is
 * not an error. 0, or RN_EIO (logged, naming the stream; the entry stays).
 */
int rn_registry_retire(struct rn_registry *r, const char *id);
/*
 * With tables on S3 a retired stream's entry on the table store is deleted after the local
 * one, from another thread, and that delete may fail: until it is known gone, <id>.retired
 * (empty, written atomically) marks the stream retired here, so that a resume of it is
 * answered NOT_FOUND instead of reading the entry from the store and taking the stream up
 * again. rn_registry_mark_retired: 0 or RN_EIO (errno set; nothing marked).
 * rn_registry_marked_retired: 1 when (id, len) is marked, 0 when not or it cannot name an
 * entry. rn_registry_unmark_retired: the store's entry is gone (a missing mark is fine;
 * another failure is logged). rn_registry_each_marked: hands every marked id whose entry is
 * gone to fn (at start, their deletes are tried again) and returns how many; a mark beside
 * an entry that stands (a retire that did not complete) is removed instead.
 */
int rn_registry_mark_retired(struct rn_registry *r, const char *id);
int rn_registry_marked_retired(struct rn_registry *r, const char *id, size_t len);
void rn_registry_unmark_retired(struct rn_registry *r, const char *id);
size_t rn_registry_each_marked(struct rn_registry *r, void (*fn)(void *ctx, const char *id),
			       void *ctx);

/* Marks the entry used now (its mtime; logged when it fails, ignored when it is gone). */
void rn_registry_touch(struct rn_registry *r, const char *id);

/* Keeps a stream's descriptor durably (<id>.desc, written atomically). 0 or RN_EIO. */
int rn_registry_save_descriptor(struct rn_registry *r, const char *id, const char *table,
				const uint8_t *desc, size_t len);
/*
 * Hands every kept descriptor (of `table`'s streams only, unless NULL) to
 * desc(ctx, id, table, bytes, len); unreadable files are logged and skipped. Returns the
 * number desc refused (returned non-zero for).
 */
int rn_registry_load_descriptors(struct rn_registry *r, const char *table,
				 int (*desc)(void *ctx, const char *id, const char *table,
					     const uint8_t *bytes, size_t len),
				 void *ctx);

/* The descriptor kept for one stream id (NUL-terminated), handed to desc as above: 1 when
 * desc refused it, 0 when it took it or there is none (an unreadable one is logged). */
int rn_registry_load_descriptor(struct rn_registry *r, const char *id,
				int (*desc)(void *ctx, const char *id, const char *table,
					    const uint8_t *bytes, size_t len),
				void *ctx);

/* Keeps a stream's clock reference durably (<id>.clock). 0 or RN_EIO. */
int rn_registry_save_clock(struct rn_registry *r, const char *id, const char *boot_id,
			   int64_t delta_us);
/* Reads it back: 1 found (boot_id, of cap >= 64, and *delta_us set), 0 none or unreadable
 * (the latter logged). */
int rn_registry_load_clock(struct rn_registry *r, const char *id, char *boot_id, size_t cap,
			   int64_t *delta_us);

/* Keeps an ephemeral stream's principal durably (<id>.owner). 0 or RN_EIO. */
int rn_registry_save_owner(struct rn_registry *r, const char *id, const char *owner);
/* Reads it back into owner (RN_REGISTRY_OWNER_MAX + 1 bytes): "" when there is none or it is
 * unreadable (the latter logged). */
void rn_registry_load_owner(struct rn_registry *r, const char *id, char *owner);

/* Deletes <id>.desc, <id>.clock and <id>.owner (missing ones are fine; others logged). */
void rn_registry_forget_files(struct rn_registry *r, const char *id);

/*
 * Joins the servers using this directory (servers sharing a data root share it): holds a
 * shared lock (flock) on <dir>/.live until rn_registry_destroy. *alone = 1 when no other
 * server held it at that moment; only then may rn_registry_sweep run, since another live
 * server's ephemeral streams (and a create it is committing) have files this one does not
 * know: a registry that joined not alone sweeps nothing. A second call is a no-op (*alone
 * 0). 0, or RN_EIO (errno set; *alone 0, not joined: the sweep stays on).
 */
int rn_registry_join(struct rn_registry *r, int *alone);

/*
 * At start, after recovery: every .desc, .clock and .owner file for which keep(ctx, id, ext)
 * says 0 is deleted (ext is ".desc", ".clock" or ".owner"; keep may drop what it holds for
 * the id). Returns the number deleted (logged when not 0). Nothing is deleted (0, keep not
 * called) when rn_registry_join found another server in the directory.
 */
size_t rn_registry_sweep(struct rn_registry *r,
			 int (*keep)(void *ctx, const char *id, const char *ext), void *ctx);

/*
 * The registry on the table store. When table_root is an S3 prefix, servers that share
 * nothing but the bucket must resume each other's persistent streams, so each persistent
 * stream also has one object on the store, under RN_REGISTRY_STORE_ROOT of the table root
 * (a table name's parts never start with '_', so no table can be there), key
 * "streams/<id>", holding everything a resume needs (rn_registry_entry_encode):
 *   "runnel-stream 1\n" table "\n" record_type "\n" owner "\n" clock "\n" descriptor...
 * where clock is "boot_id delta_us" or "-" (none) and the descriptor (DescriptorProto bytes,
 * possibly none) runs to the end. It is written with put_new before the create is answered,
 * read by a resume of an id the local directory does not know (then written into the
 * directory with rn_registry_adopt, the local copy being the fast path from there on), and
 * deleted when the stream is retired or expires. The object's clock is the create's: a later
 * change is kept in the local <id>.clock only (a resume on another server brings its own
 * x-runnel-clock).
 *
 * rn_registry_store_put/_get/_delete do network I/O: call them on a worker, never the loop,
 * with a store object that thread holds alone (tstore.h); they touch no struct rn_registry,
 * so any thread may. The encode/decode pair does no I/O.
 */
#define RN_REGISTRY_STORE_ROOT "_runnel"
/* The longest table name an entry keeps (rn_table_name_check allows 255 bytes). */
#define RN_REGISTRY_TABLE_MAX 255

struct rn_buf;
struct rn_tstore;

/* A stream's registry entry with its files, as the store keeps it. */
struct rn_reg_entry {
	const char *table;
	int record_type;
	const char *owner;   /* "" = unknown (made before owners were kept) */
	const char *boot_id; /* the clock reference, or NULL for none */
	int64_t delta_us;
	const uint8_t *desc; /* the DescriptorProto, desc_len bytes (0: none) */
	size_t desc_len;
};

/* Appends e's object bytes to out. 0, RN_EINVAL (a table, owner or boot id that cannot be
 * kept: a bad table name, a newline or space, too long), RN_ENOMEM. */
int rn_registry_entry_encode(struct rn_buf *out, const struct rn_reg_entry *e);

/* Room for a decoded entry's strings (rn_registry_entry_decode points e into it). */
struct rn_reg_entry_text {
	char table[RN_REGISTRY_TABLE_MAX + 1];
	char owner[RN_REGISTRY_OWNER_MAX + 1];
	char boot_id[64];
};

/* Parses p[0..len) (an object's bytes) into e: strings in *t, e->desc pointing into p.
 * 0, or RN_EINVAL for bytes that are not such an entry (wrong first line, bad table name,
 * missing lines, an unparsable clock). */
int rn_registry_entry_decode(const uint8_t *p, size_t len, struct rn_reg_entry *e,
			     struct rn_reg_entry_text *t);

/*
 * Creates id's object (put_new) with bytes p[0..len). A lost answer is settled by the
 * store (tstore.h: S3 reads the object back) or is RN_EIO; a put_new that finds the key
 * taken reads the object back too: exactly these bytes are ours (an earlier attempt whose
 * answer was lost, 0). 0; RN_EEXIST
 * (another entry has the id); RN_EINVAL (an id rn_registry_id_check refuses); the store's
 * error otherwise (RN_ECONNECT, RN_EIO, RN_ENOSPC, RN_ENOMEM), after deleting what may have
 * landed: the caller answers the create UNAVAILABLE. err (errcap bytes) gets the store's
 * detail of a failed put_new (rn_tstore_errmsg, before that delete).
 */
int rn_registry_store_put(struct rn_tstore *st, const char *id, const uint8_t *p, size_t len,
			  char *err, size_t errcap);
/* Appends id's object bytes to out. 0; RN_ENOTFOUND (no such entry, or an id that cannot
 * name one); the store's error otherwise (the resume is then UNAVAILABLE, never NOT_FOUND). */
int rn_registry_store_get(struct rn_tstore *st, const char *id, size_t len, struct rn_buf *out);
/* Deletes id's object (a missing one is fine). 0 or the store's error. */
int rn_registry_store_delete(struct rn_tstore *st, const char *id);

/*
 * Writes an entry read from the store (rn_registry_store_get, decoded) into the directory,
 * as the create on the other server did: its <id>.desc and <id>.clock first, then the entry
 * itself, each atomically and durably, so that rn_registry_find then reads it like any other.
 * Loop thread. 0, RN_EINVAL (a bad id or entry), or RN_EIO (errno set; the entry itself is
 * not written, files written before it are removed).
 */
int rn_registry_adopt(struct rn_registry *r, const char *id, const struct rn_reg_entry *e);

#endif
