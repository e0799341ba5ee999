/*
 * The project-wide error codes. Every fallible function returns 0 or one of these negative
 * values; human detail lives on the failing object (rn_<module>_errmsg()). Codes are grouped
 * in ranges so a log line tells at a glance which layer failed. Never renumber: codes appear
 * in logs and metrics.
 */
#ifndef RN_ERR_H
#define RN_ERR_H

enum rn_err {
	RN_OK = 0,
	/* generic: -1 .. -99 */
	RN_ENOMEM = -1,     /* allocation failed or a hard cap was reached */
	RN_EINVAL = -2,     /* bad argument or malformed input */
	RN_EIO = -3,        /* an I/O call failed; errno-derived detail on the object */
	RN_ERANGE = -4,     /* a value outside its allowed range */
	RN_EAGAIN = -5,     /* nothing to do now; try again later */
	RN_ENOSPC = -6,     /* out of disk space */
	RN_ECORRUPT = -7,   /* stored data failed its checksum or structure checks */
	RN_ETOOBIG = -8,    /* a message or record larger than its limit */
	RN_EEOF = -9,       /* end of input */
	RN_ENOTFOUND = -10, /* the named thing does not exist */
	RN_EEXIST = -11,    /* the thing to create already exists */
	RN_ENOTSUP = -12,   /* valid but not supported by this build */
	/* config: -100 .. -199 */
	RN_ECONFIG = -100, /* config file invalid; detail names file and line */
	/* buffer: -200 .. -299 */
	RN_EBUFFER = -200, /* the disk buffer failed; detail from SQLite */
	RN_EFULL = -201,   /* the disk buffer reached its byte cap */
	/* uplink and protocol: -300 .. -399 */
	RN_EPROTO = -300,   /* the peer broke the protocol */
	RN_ESTATUS = -301,  /* the peer answered with a non-OK gRPC status */
	RN_ECONNECT = -302, /* could not reach the peer */
	/* server storage: -400 .. -499 */
	RN_EWAL = -400,      /* the write-ahead log failed */
	RN_EDELTA = -401,    /* a Delta log operation failed */
	RN_ECONFLICT = -402, /* another writer committed first; retry */
	RN_EOVERLAP = -403   /* another writer committed part of these rows: rebuild them */
};

/* A static English description of `err`; never NULL, also for unknown codes. */
const char *rn_strerror(int err);

/* Maps an errno value to the closest RN_E* code. */
int rn_err_from_errno(int e);

#endif
