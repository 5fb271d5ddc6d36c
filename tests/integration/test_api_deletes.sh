#!/usr/bin/env bash
# HTTP API: deleting manifests (by digest and by tag), blobs and uploads, and
# the errors for unknown things.
. "$(dirname "$0")/api_lib.sh"
start_registry || { fail "api_deletes: registry did not start"; exit 1; }

R=del/repo
mk_image "$R" a || fail "pushing blobs failed"
MA=$(dg "$T/a.json")
for t in a1 a2 a3; do push_manifest "$R" "$t" "$T/a.json" "$OCI_MANIFEST" || fail "push $t"; done
mk_image "$R" b || fail "pushing blobs failed"
MB=$(dg "$T/b.json")
for t in b1 b2; do push_manifest "$R" "$t" "$T/b.json" "$OCI_MANIFEST" || fail "push $t"; done
tags() { req GET "/v2/$R/tags/list"; jq -c '.tags // [] | sort' "$T/b"; }

# --- delete a manifest by digest: the digest and all its tags go
req DELETE "/v2/$R/manifests/$MA"
expect_status "DELETE manifest by digest is 202" 202
req GET "/v2/$R/manifests/$MA"
expect_error "deleted manifest by digest is 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
req HEAD "/v2/$R/manifests/$MA"
expect_status "HEAD deleted manifest is 404" 404
for t in a1 a2 a3; do
	req GET "/v2/$R/manifests/$t"
	expect_error "tag $t of the deleted manifest is 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
done
expect_eq "tags of the deleted manifest are gone from tags/list" '["b1","b2"]' "$(tags)"
req GET "/v2/$R/manifests/b1"
expect_status "other manifest untouched by the delete" 200
req DELETE "/v2/$R/manifests/$MA"
expect_error "DELETE the same manifest again is 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN

# --- delete by tag: only that tag
if berth_only "DELETE by tag"; then
	req DELETE "/v2/$R/manifests/b1"
	expect_status "DELETE by tag is 202" 202
	req GET "/v2/$R/manifests/b1"
	expect_error "deleted tag is 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
	req GET "/v2/$R/manifests/b2"
	expect_status "other tag of the same manifest still pullable" 200
	expect_hdr "other tag still points at the manifest" Docker-Content-Digest "$MB"
	req GET "/v2/$R/manifests/$MB"
	expect_status "manifest still pullable by digest after tag delete" 200
	expect_body_file "manifest bytes unchanged after tag delete" "$T/b.json"
	expect_eq "tags/list after tag delete" '["b2"]' "$(tags)"
	req DELETE "/v2/$R/manifests/b1"
	expect_error "DELETE the same tag again is 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
	req DELETE "/v2/$R/manifests/nosuchtag"
	expect_error "DELETE unknown tag is 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
	# re-tagging after a tag delete works
	push_manifest "$R" b1 "$T/b.json" "$OCI_MANIFEST"
	expect_status "re-push a deleted tag is 201" 201
	expect_eq "tags/list after re-tag" '["b1","b2"]' "$(tags)"
fi

# --- a manifest can be pushed again after its delete
push_manifest "$R" a1 "$T/a.json" "$OCI_MANIFEST"
expect_status "re-push a deleted manifest is 201" 201
req GET "/v2/$R/manifests/a1"
expect_body_file "re-pushed manifest is served" "$T/a.json"

# --- delete an index: children stay
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%s}]}' \
	"$OCI_INDEX" "$OCI_MANIFEST" "$MB" "$(sz "$T/b.json")" >"$T/idx.json"
MI=$(dg "$T/idx.json")
push_manifest "$R" multi "$T/idx.json" "$OCI_INDEX" || fail "push index"
req DELETE "/v2/$R/manifests/$MI"
expect_status "DELETE index is 202" 202
req GET "/v2/$R/manifests/multi"
expect_status "tag of the deleted index is 404" 404
req GET "/v2/$R/manifests/$MB"
expect_status "child of the deleted index still pullable" 200

# --- delete a blob
mkblob shared "blob linked in two repositories"
DS=$(dg "$T/shared")
push_blob "$R" "$T/shared" || fail "push shared blob"
req POST "/v2/del/other/blobs/uploads/?mount=$DS&from=$R"
expect_status "mount shared blob into del/other" 201
req DELETE "/v2/$R/blobs/$DS"
expect_status "DELETE blob is 202" 202
req GET "/v2/$R/blobs/$DS"
expect_error "deleted blob is 404 BLOB_UNKNOWN in its repo" 404 BLOB_UNKNOWN
req HEAD "/v2/$R/blobs/$DS"
expect_status "HEAD deleted blob is 404" 404
req GET "/v2/del/other/blobs/$DS"
expect_status "blob still served from the other repo" 200
expect_body_file "blob bytes intact in the other repo" "$T/shared"
req DELETE "/v2/$R/blobs/$DS"
expect_error "DELETE the same blob again is 404 BLOB_UNKNOWN" 404 BLOB_UNKNOWN
push_blob "$R" "$T/shared"
expect_status "re-upload a deleted blob is 201" 201
req GET "/v2/$R/blobs/$DS"
expect_body_file "re-uploaded blob is served" "$T/shared"

# --- unknown things
UNK=sha256:$(printf 'b%.0s' $(seq 1 64))
req DELETE "/v2/$R/blobs/$UNK"
expect_error "DELETE unknown blob is 404 BLOB_UNKNOWN" 404 BLOB_UNKNOWN
req DELETE "/v2/$R/manifests/$UNK"
expect_error "DELETE unknown manifest is 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
req DELETE "/v2/del/nosuchrepo/manifests/$UNK"
expect_error "DELETE manifest in unknown repo is 404" 404 "NAME_UNKNOWN|MANIFEST_UNKNOWN"
req DELETE "/v2/del/nosuchrepo/blobs/$UNK"
expect_error "DELETE blob in unknown repo is 404" 404 "NAME_UNKNOWN|BLOB_UNKNOWN"
if berth_only "DELETE with malformed digests"; then
	req DELETE "/v2/$R/blobs/sha256:abc"
	expect_error "DELETE blob with malformed digest is 400 DIGEST_INVALID" 400 DIGEST_INVALID
	req DELETE "/v2/Bad/Name/manifests/$UNK"
	expect_error "DELETE in invalid repo name is 400 NAME_INVALID" 400 NAME_INVALID
fi

# --- query parameters are ignored
push_manifest "$R" q1 "$T/b.json" "$OCI_MANIFEST" || fail "push q1"
if berth_only "DELETE tag with ?ns="; then
	req DELETE "/v2/$R/manifests/q1?ns=docker.io"
	expect_status "DELETE tag with ?ns= is 202" 202
fi

finish
