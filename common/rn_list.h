/*
 * An intrusive doubly-linked list: the node lives inside the object listed, so putting an
 * object on a list never allocates and taking it off is O(1) from the object alone (what lets
 * an object be freed while listed: it unlinks itself first). A list is a sentinel node; an
 * unlinked node has next == NULL, so a zeroed object is "on no list" and rn_list_linked
 * answers whether it is on one. Header-only, no I/O; not thread-safe (one owner's thread).
 */
#ifndef RN_LIST_H
#define RN_LIST_H

#include <stddef.h>

struct rn_list {
	struct rn_list *next, *prev; /* in a list: its neighbours; unlinked: both NULL */
};

/* The object of type `type` whose member `field` is the node `node`. */
#define RN_LIST_ENTRY(node, type, field) ((type *)(void *)((char *)(node)-offsetof(type, field)))

/* Makes `head` an empty list (a sentinel pointing at itself). */
static inline void rn_list_init(struct rn_list *head)
{
	head->next = head->prev = head;
}

static inline int rn_list_empty(const struct rn_list *head)
{
	return head->next == head;
}

/* Whether `node` is on a list. */
static inline int rn_list_linked(const struct rn_list *node)
{
	return node->next != NULL;
}

/* Appends node (which must be on no list) at the tail of head. */
static inline void rn_list_push(struct rn_list *head, struct rn_list *node)
{
	node->prev = head->prev;
	node->next = head;
	head->prev->next = node;
	head->prev = node;
}

/* Takes node off its list; a node on no list is left alone. */
static inline void rn_list_unlink(struct rn_list *node)
{
	if (!node->next)
		return;
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->next = node->prev = NULL;
}

/* The first node of head, or NULL when it is empty. */
static inline struct rn_list *rn_list_first(const struct rn_list *head)
{
	return head->next == head ? NULL : head->next;
}

#endif
