/*
 * The table store's contract (server/store/tstore.h) as one check any backend must pass:
 * put and replace, put_new (a second writer of a key gets RN_EEXIST and the first one's bytes
 * stay), get with ranges, stat, listing order and recursion with scratch names hidden, delete
 * (idempotent), map (an empty object maps to data NULL, len 0) and bad keys refused. It works
 * under a fresh prefix ("contract-<pid>-<n>-<time>/") and deletes what it wrote, so it can run
 * against a shared bucket. Backend-neutral: no cmocka, no file system calls.
 */
#ifndef RN_TESTS_TSTORE_CONTRACT_H
#define RN_TESTS_TSTORE_CONTRACT_H

struct rn_tstore;

/* Runs the contract on st. 0 when every check held, else the number of failed checks, each
 * printed to stderr with its line and the store's message. */
int rn_tstore_contract_run(struct rn_tstore *st);

/* rn_tstore_contract_run plus a put_new race in two threads: st and st2 (another object
 * opened on the same root; NULL = no threads) create the same keys at once, 50 rounds, and
 * exactly one of them must win each key, with its bytes stored. */
int rn_tstore_contract_run_pair(struct rn_tstore *st, struct rn_tstore *st2);

#endif
