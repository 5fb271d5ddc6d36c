/* Return codes shared by every module: 0 is success, negative errno values
 * mirror system errors, and berth's own conditions start at -1000. The
 * registry maps each code to an HTTP status and OCI error in one table. */
#ifndef BERTH_COMMON_RC_H
#define BERTH_COMMON_RC_H

#define RC_OK 0

enum {
	RC_BLOB_UNKNOWN = -1000,     /* no such blob (or not linked in repo) */
	RC_UPLOAD_UNKNOWN = -1001,   /* no such upload session */
	RC_UPLOAD_INVALID = -1002,   /* upload session misuse */
	RC_DIGEST_INVALID = -1003,   /* digest syntax or content mismatch */
	RC_SIZE_INVALID = -1004,     /* length does not match content */
	RC_MANIFEST_UNKNOWN = -1005, /* no such manifest or tag */
	RC_MANIFEST_INVALID = -1006, /* manifest failed validation */
	RC_MANIFEST_BLOB_UNKNOWN = -1007, /* manifest references missing item */
	RC_NAME_INVALID = -1008,  /* repository name fails the grammar */
	RC_NAME_UNKNOWN = -1009,  /* repository has no content */
	RC_TAG_INVALID = -1010,   /* tag fails the grammar */
	RC_RANGE_INVALID = -1011, /* chunk out of order / bad range */
	RC_UNSUPPORTED = -1012,   /* operation or format not supported */
	RC_TOO_LARGE = -1013,     /* body over the configured limit */
	RC_SCHEMA1 = -1014,       /* docker schema1 manifest refused */
	RC_CORRUPT = -1015,       /* stored data failed a consistency check */
	RC_DB = -1016,            /* LMDB failure not covered elsewhere */
	RC_FULL = -1017,          /* LMDB map or reader table full */
	RC_BUSY = -1018,          /* resource used by another request */
	RC_BAD_REQUEST = -1019,   /* malformed request parameter */
	RC_METHOD = -1020,        /* method not allowed on this route */
	RC_NOT_FOUND = -1021,     /* no such route */
	RC_DENIED = -1022,        /* access denied */
	RC_UNAUTHORIZED = -1023,  /* authentication required */
	RC_SPACE_LOW = -1024,     /* free space below the configured minimum */
};

/* Static, human-readable description of rc (never NULL). */
const char *rc_str(int rc);

/* 1 when rc says the data volume has no space left (ENOSPC, EDQUOT). */
int rc_is_nospace(int rc);

#endif
