/*
 * rn_strerror and errno mapping for the project-wide error enum. Pure functions, no state.
 */
#include "rn_err.h"

#include <errno.h>

const char *rn_strerror(int err)
{
	switch (err) {
	case RN_OK: return "success";
	case RN_ENOMEM: return "out of memory or over a size cap";
	case RN_EINVAL: return "invalid argument or malformed input";
	case RN_EIO: return "I/O error";
	case RN_ERANGE: return "value out of range";
	case RN_EAGAIN: return "try again later";
	case RN_ENOSPC: return "no space left on device";
	case RN_ECORRUPT: return "corrupt data";
	case RN_ETOOBIG: return "too big";
	case RN_EEOF: return "end of input";
	case RN_ENOTFOUND: return "not found";
	case RN_EEXIST: return "already exists";
	case RN_ENOTSUP: return "not supported";
	case RN_ECONFIG: return "configuration error";
	case RN_EBUFFER: return "disk buffer error";
	case RN_EFULL: return "disk buffer full";
	case RN_EPROTO: return "protocol error";
	case RN_ESTATUS: return "peer returned an error status";
	case RN_ECONNECT: return "cannot connect";
	case RN_EWAL: return "write-ahead log error";
	case RN_EDELTA: return "delta log error";
	case RN_ECONFLICT: return "concurrent commit conflict";
	case RN_EOVERLAP: return "another writer committed part of these rows";
	}
	return "unknown error";
}

int rn_err_from_errno(int e)
{
	switch (e) {
	case 0: return RN_OK;
	case ENOMEM: return RN_ENOMEM;
	case EINVAL: return RN_EINVAL;
	case ENOSPC:
	case EDQUOT: return RN_ENOSPC;
	case ENOENT: return RN_ENOTFOUND;
	case EEXIST: return RN_EEXIST;
	case EAGAIN: return RN_EAGAIN;
	case ERANGE: return RN_ERANGE;
	case EFBIG: return RN_ETOOBIG;
	}
	return RN_EIO;
}
