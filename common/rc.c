#include "common/rc.h"

#include <errno.h>
#include <string.h>

const char *
rc_str(int rc)
{
	switch (rc) {
	case RC_OK: return "success";
	case RC_BLOB_UNKNOWN: return "blob unknown to registry";
	case RC_UPLOAD_UNKNOWN: return "blob upload unknown to registry";
	case RC_UPLOAD_INVALID: return "blob upload invalid";
	case RC_DIGEST_INVALID:
		return "provided digest did not match uploaded content";
	case RC_SIZE_INVALID:
		return "provided length did not match content length";
	case RC_MANIFEST_UNKNOWN: return "manifest unknown to registry";
	case RC_MANIFEST_INVALID: return "manifest invalid";
	case RC_MANIFEST_BLOB_UNKNOWN:
		return "manifest references a manifest or blob unknown to "
		       "registry";
	case RC_NAME_INVALID: return "invalid repository name";
	case RC_NAME_UNKNOWN: return "repository name not known to registry";
	case RC_TAG_INVALID: return "invalid tag";
	case RC_RANGE_INVALID: return "requested range not satisfiable";
	case RC_UNSUPPORTED: return "the operation is unsupported";
	case RC_TOO_LARGE: return "payload too large";
	case RC_SCHEMA1:
		return "docker schema1 manifests are not supported; push as "
		       "docker schema2 or OCI";
	case RC_CORRUPT: return "stored data is corrupt";
	case RC_DB: return "metadata database error";
	case RC_FULL: return "metadata database is full";
	case RC_BUSY: return "resource is in use by another request";
	case RC_BAD_REQUEST: return "malformed request";
	case RC_METHOD: return "method not allowed";
	case RC_NOT_FOUND: return "not found";
	case RC_DENIED: return "requested access to the resource is denied";
	case RC_UNAUTHORIZED: return "authentication required";
	case RC_SPACE_LOW:
		return "free space on the data volume is below the minimum";
	}
	if (rc < 0 && rc > -1000)
		return strerror(-rc);
	return "unknown error";
}

int
rc_is_nospace(int rc)
{
	return rc == -ENOSPC || rc == -EDQUOT;
}
