/*
 * The WAL's bytes per principal: how many bytes of batches each principal (the writer named
 * with rn_mat_add_as) has added to tables and not yet committed, for the server's per-principal
 * fair share of the WAL (server/limits.h rn_limits_share). The materializer charges a table's
 * debts as batches are added and settles all of them whenever that table's pending bytes go
 * back to zero (a flush takes them, or a rebuild drops and refills them), so the ledger always
 * agrees with the per-table pending bytes. No I/O and no clock: tests/unit/mat/test_ledger.c
 * drives it directly.
 *
 * One rn_ledger per materializer, created and destroyed with it, touched only from the thread
 * that calls rn_mat. Each table keeps its own struct rn_ledger_debts (zeroed = no debts) and
 * must settle or free it before the ledger is destroyed. A principal's entry exists only
 * while it holds bytes, so memory follows the principals writing now, not every principal
 * ever seen.
 */
#ifndef RN_LEDGER_H
#define RN_LEDGER_H

#include <stddef.h>

struct rn_ledger;
struct rn_ledger_debt;

/* One table's debts: which principals hold how many of its pending bytes. Owned by the
 * table; its array belongs to the ledger's functions (never written by the caller). */
struct rn_ledger_debts {
	struct rn_ledger_debt *v;
	size_t n, cap;
};

/* A new empty ledger in *out. 0 or RN_ENOMEM. */
int rn_ledger_create(struct rn_ledger **out);

/* Frees the ledger; NULL is a no-op. Every table's debts must be settled or freed first. */
void rn_ledger_destroy(struct rn_ledger *l);

/*
 * Charges `len` bytes of a batch the table `d` took to `principal` (NUL-terminated; NULL or
 * "" = nobody: not counted, 0 returned; len 0: nothing). Constant time for a principal
 * writing the same table again, else linear in that table's writers. 0, or RN_ENOMEM with
 * nothing charged.
 */
int rn_ledger_charge(struct rn_ledger *l, struct rn_ledger_debts *d, const char *principal,
		     size_t len);

/* Releases every debt of d (its table's pending bytes are gone); keeps d's array for reuse.
 * A principal left holding nothing is forgotten. Never fails. */
void rn_ledger_settle(struct rn_ledger *l, struct rn_ledger_debts *d);

/* rn_ledger_settle, then frees d's array (d is zeroed): for a table going away. */
void rn_ledger_debts_free(struct rn_ledger *l, struct rn_ledger_debts *d);

/* Bytes `principal` holds (0 for NULL, "" or one holding nothing); in *active (may be NULL)
 * the number of principals holding bytes. Constant time. */
size_t rn_ledger_held(const struct rn_ledger *l, const char *principal, size_t *active);

#endif
