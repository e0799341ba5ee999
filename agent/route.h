/*
 * Topic filters for source routes, I/O-free: MQTT's matching rules applied to any record's
 * topic (an MQTT topic, a file path, a serial device). Pure functions.
 */
#ifndef RN_ROUTE_H
#define RN_ROUTE_H

/* Is `filter` well formed? Levels are separated by '/'; '+' matches exactly one level and
 * must be a whole level; '#' matches the rest (zero or more levels) and must be the last
 * level. Not empty. */
int rn_topic_filter_valid(const char *filter);

/* Does `topic` match `filter`? A NULL topic matches nothing. As in MQTT, "a/#" also matches
 * "a", and wildcards do not match a first level that starts with '$'. */
int rn_topic_match(const char *filter, const char *topic);

#endif
