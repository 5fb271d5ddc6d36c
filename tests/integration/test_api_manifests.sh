#!/usr/bin/env bash
# HTTP API: manifest PUT/GET/HEAD for every supported type, digests,
# validation errors and limits.
. "$(dirname "$0")/api_lib.sh"
start_registry || { fail "api_manifests: registry did not start"; exit 1; }

R=man/repo

# --- OCI image manifest by tag
mk_image "$R" img1 || fail "pushing image blobs failed"
M1=$(dg "$T/img1.json")
S1=$(sz "$T/img1.json")
req PUT "/v2/$R/manifests/v1" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/img1.json"
expect_status "PUT OCI manifest by tag is 201" 201
if is_berth; then
	expect_hdr "PUT manifest Location is /v2/<name>/manifests/<digest>" Location "/v2/$R/manifests/$M1"
else
	expect_hdr_re "PUT manifest Location ends in /v2/<name>/manifests/<digest>" Location "/v2/$R/manifests/$M1\$"
fi
expect_hdr "PUT manifest Docker-Content-Digest is sha256 of the bytes" Docker-Content-Digest "$M1"

# expect_manifest NAME REF FILE MEDIATYPE: GET and HEAD serve it exactly
expect_manifest() {
	local n=$1 ref=$2 f=$3 mt=$4 d
	d=$(dg "$f")
	req GET "/v2/$R/manifests/$ref"
	expect_status "$n: GET is 200" 200
	expect_body_file "$n: GET returns the exact bytes" "$f"
	expect_hdr "$n: GET Content-Type" Content-Type "$mt"
	expect_hdr "$n: GET Docker-Content-Digest" Docker-Content-Digest "$d"
	req HEAD "/v2/$R/manifests/$ref"
	expect_status "$n: HEAD is 200" 200
	expect_hdr "$n: HEAD Content-Type" Content-Type "$mt"
	expect_hdr "$n: HEAD Docker-Content-Digest" Docker-Content-Digest "$d"
	expect_hdr "$n: HEAD Content-Length" Content-Length "$(sz "$f")"
}
expect_manifest "OCI manifest by tag" v1 "$T/img1.json" "$OCI_MANIFEST"
expect_manifest "OCI manifest by digest" "$M1" "$T/img1.json" "$OCI_MANIFEST"
expect_eq "HEAD manifest sends no body" 0 "$(raw_head "/v2/$R/manifests/v1")"
req GET "/v2/$R/manifests/v1?ns=docker.io"
expect_status "GET manifest with ?ns= is 200" 200
expect_hdr "GET manifest with ?ns= digest" Docker-Content-Digest "$M1"
req GET "/v2/$R/manifests/v1" -H "Content-Length: 0"
expect_hdr "GET manifest Content-Length" Content-Length "$S1"

# --- PUT by digest
mk_image "$R" img2 || fail "pushing image blobs failed"
M2=$(dg "$T/img2.json")
req PUT "/v2/$R/manifests/$M2" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/img2.json"
expect_status "PUT manifest by its digest is 201" 201
expect_hdr "PUT by digest Docker-Content-Digest" Docker-Content-Digest "$M2"
expect_manifest "OCI manifest pushed by digest" "$M2" "$T/img2.json" "$OCI_MANIFEST"
req PUT "/v2/$R/manifests/$M1" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/img2.json"
expect_error "PUT by digest with another body is 400 DIGEST_INVALID" 400 DIGEST_INVALID
# the same bytes with different whitespace are a different manifest
printf '%s\n' "$(cat "$T/img1.json")" >"$T/img1nl.json"
req PUT "/v2/$R/manifests/nl" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/img1nl.json"
expect_status "PUT manifest with a trailing newline is 201" 201
expect_hdr "digest covers the exact bytes (trailing newline)" Docker-Content-Digest "$(dg "$T/img1nl.json")"
expect_manifest "manifest with trailing newline" nl "$T/img1nl.json" "$OCI_MANIFEST"

# --- missing references
mk_image "$R" img3 || fail "pushing image blobs failed"
UNK=sha256:$(printf 'd%.0s' $(seq 1 64))
sed "s/${IMG_LAYER#sha256:}/${UNK#sha256:}/" "$T/img3.json" >"$T/miss.json"
req PUT "/v2/$R/manifests/miss" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/miss.json"
expect_error "manifest with a missing layer is 400 MANIFEST_BLOB_UNKNOWN" 400 MANIFEST_BLOB_UNKNOWN
sed "s/${IMG_CFG#sha256:}/${UNK#sha256:}/" "$T/img3.json" >"$T/miss2.json"
req PUT "/v2/$R/manifests/miss" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/miss2.json"
expect_error "manifest with a missing config is 400 MANIFEST_BLOB_UNKNOWN" 400 MANIFEST_BLOB_UNKNOWN
req GET "/v2/$R/manifests/miss"
expect_error "a refused manifest leaves no tag (404 MANIFEST_UNKNOWN)" 404 MANIFEST_UNKNOWN
# a blob only in another repository does not count
req PUT "/v2/man/other/manifests/x" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/img3.json"
expect_error "manifest whose blobs are only in another repo is 400 MANIFEST_BLOB_UNKNOWN" 400 MANIFEST_BLOB_UNKNOWN

# --- OCI index
mkidx() { # mkidx OUT MEDIATYPE CHILD_MT FILE...
	local out=$1 mt=$2 cmt=$3 f sep= arch=amd64
	shift 3
	{
		printf '{"schemaVersion":2,"mediaType":"%s","manifests":[' "$mt"
		for f in "$@"; do
			printf '%s{"mediaType":"%s","digest":"%s","size":%s,"platform":{"architecture":"%s","os":"linux"}}' \
				"$sep" "$cmt" "$(dg "$f")" "$(sz "$f")" "$arch"
			sep=, arch=arm64
		done
		printf ']}'
	} >"$out"
}
mkidx "$T/idx.json" "$OCI_INDEX" "$OCI_MANIFEST" "$T/img1.json" "$T/img2.json"
IDX=$(dg "$T/idx.json")
req PUT "/v2/$R/manifests/multi" -H "Content-Type: $OCI_INDEX" --data-binary "@$T/idx.json"
expect_status "PUT OCI index is 201" 201
expect_hdr "PUT OCI index Docker-Content-Digest" Docker-Content-Digest "$IDX"
expect_manifest "OCI index" multi "$T/idx.json" "$OCI_INDEX"
echo '{"schemaVersion":2,"mediaType":"x","config":{},"layers":[]}' >"$T/phantom.json"
mkidx "$T/idxmiss.json" "$OCI_INDEX" "$OCI_MANIFEST" "$T/img1.json" "$T/phantom.json"
req PUT "/v2/$R/manifests/idxmiss" -H "Content-Type: $OCI_INDEX" --data-binary "@$T/idxmiss.json"
expect_error "index with a missing child manifest is 400 MANIFEST_BLOB_UNKNOWN" 400 MANIFEST_BLOB_UNKNOWN

# --- tag moves between an index and a manifest
push_manifest "$R" moving "$T/idx.json" "$OCI_INDEX"
expect_manifest "tag on an index" moving "$T/idx.json" "$OCI_INDEX"
push_manifest "$R" moving "$T/img1.json" "$OCI_MANIFEST"
expect_manifest "tag moved to a manifest" moving "$T/img1.json" "$OCI_MANIFEST"
push_manifest "$R" moving "$T/idx.json" "$OCI_INDEX"
expect_manifest "tag moved back to the index" moving "$T/idx.json" "$OCI_INDEX"

# --- Docker schema2 manifest and manifest list
mkblob d2cfg '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
mkblob d2layer "docker layer bytes"
push_blob "$R" "$T/d2cfg" && push_blob "$R" "$T/d2layer" || fail "pushing docker blobs failed"
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","size":%s,"digest":"%s"},"layers":[{"mediaType":"%s","size":%s,"digest":"%s"}]}' \
	"$D2_MANIFEST" "$D2_CONFIG" "$(sz "$T/d2cfg")" "$(dg "$T/d2cfg")" \
	"$D2_LAYER" "$(sz "$T/d2layer")" "$(dg "$T/d2layer")" >"$T/d2.json"
req PUT "/v2/$R/manifests/docker" -H "Content-Type: $D2_MANIFEST" --data-binary "@$T/d2.json"
expect_status "PUT docker schema2 manifest is 201" 201
expect_manifest "docker schema2 manifest" docker "$T/d2.json" "$D2_MANIFEST"
mkidx "$T/d2list.json" "$D2_LIST" "$D2_MANIFEST" "$T/d2.json"
req PUT "/v2/$R/manifests/dockerlist" -H "Content-Type: $D2_LIST" --data-binary "@$T/d2list.json"
expect_status "PUT docker manifest list is 201" 201
expect_manifest "docker manifest list" dockerlist "$T/d2list.json" "$D2_LIST"

# --- artifact: artifactType + empty config
printf '{}' >"$T/emptycfg"
mkblob art.data "artifact payload"
push_blob "$R" "$T/emptycfg" && push_blob "$R" "$T/art.data" || fail "pushing artifact blobs failed"
expect_eq "empty config digest" "$EMPTY_DIGEST" "$(dg "$T/emptycfg")"
printf '{"schemaVersion":2,"mediaType":"%s","artifactType":"application/vnd.example.thing.v1","config":{"mediaType":"%s","digest":"%s","size":2,"data":"e30="},"layers":[{"mediaType":"application/vnd.example.data","digest":"%s","size":%s}],"annotations":{"org.example.k":"v"}}' \
	"$OCI_MANIFEST" "$OCI_EMPTY" "$EMPTY_DIGEST" "$(dg "$T/art.data")" "$(sz "$T/art.data")" >"$T/art.json"
req PUT "/v2/$R/manifests/artifact" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/art.json"
expect_status "PUT artifact manifest is 201" 201
expect_manifest "artifact manifest" artifact "$T/art.json" "$OCI_MANIFEST"
# an artifact whose config blob has an arbitrary media type
mkblob art2.cfg '{"kind":"helm"}'
push_blob "$R" "$T/art2.cfg" || fail "pushing artifact config failed"
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"%s","size":%s},"layers":[]}' \
	"$OCI_MANIFEST" "$(dg "$T/art2.cfg")" "$(sz "$T/art2.cfg")" >"$T/art2.json"
req PUT "/v2/$R/manifests/helm" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/art2.json"
expect_status "PUT manifest with a custom config type and no layers is 201" 201
expect_manifest "custom config artifact" helm "$T/art2.json" "$OCI_MANIFEST"

# --- Content-Type parameters are ignored on PUT and not sent on GET
if berth_only "Content-Type parameters"; then
	req PUT "/v2/$R/manifests/params" -H "Content-Type: $OCI_MANIFEST; charset=utf-8" --data-binary "@$T/img2.json"
	expect_status "PUT with Content-Type parameters is 201" 201
	req GET "/v2/$R/manifests/params"
	expect_hdr "GET Content-Type has no parameters" Content-Type "$OCI_MANIFEST"
fi

# --- invalid manifests
printf '{"schemaVersion":2,"mediaType":"%s","config":' "$OCI_MANIFEST" >"$T/trunc.json"
req PUT "/v2/$R/manifests/bad" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/trunc.json"
expect_error "PUT invalid JSON is 400 MANIFEST_INVALID" 400 MANIFEST_INVALID
printf 'not json at all' >"$T/nojson.json"
req PUT "/v2/$R/manifests/bad" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/nojson.json"
expect_error "PUT non-JSON is 400 MANIFEST_INVALID" 400 MANIFEST_INVALID
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"sha256:xyz","size":1},"layers":[]}' \
	"$OCI_MANIFEST" "$OCI_CONFIG" >"$T/baddesc.json"
if berth_only "malformed descriptor digest"; then
	# distribution answers 500 here
	req PUT "/v2/$R/manifests/bad" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/baddesc.json"
	expect_error "PUT manifest with a malformed descriptor digest is 400" 400 "MANIFEST_INVALID|DIGEST_INVALID"
fi
if berth_only "schema1 refusal"; then
	cat >"$T/s1.json" <<-'EOF'
		{"schemaVersion":1,"name":"man/repo","tag":"old","architecture":"amd64","fsLayers":[{"blobSum":"sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"}],"history":[{"v1Compatibility":"{}"}],"signatures":[]}
	EOF
	req PUT "/v2/$R/manifests/old" -H "Content-Type: application/vnd.docker.distribution.manifest.v1+prettyjws" --data-binary "@$T/s1.json"
	expect_error "PUT docker schema1 is 400 MANIFEST_INVALID" 400 MANIFEST_INVALID
	if jq -r '.errors[0].message + " " + (.errors[0].detail|tostring)' "$T/b" | grep -qi 'schema *1\|schema1'; then
		ok "schema1 refusal mentions schema1"
	else
		fail "schema1 refusal mentions schema1 $(ctx)"
	fi
	req PUT "/v2/$R/manifests/old" -H "Content-Type: application/vnd.docker.distribution.manifest.v1+json" --data-binary "@$T/s1.json"
	expect_error "PUT unsigned docker schema1 is 400 MANIFEST_INVALID" 400 MANIFEST_INVALID
fi

# --- size limits
# filler FILE BYTES: a valid OCI manifest of about BYTES bytes
filler() {
	{
		printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%s},"layers":[],"annotations":{"pad":"' \
			"$OCI_MANIFEST" "$OCI_CONFIG" "$(dg "$T/img1.cfg")" "$(sz "$T/img1.cfg")"
		head -c "$2" /dev/zero | tr '\0' a
		printf '"}}'
	} >"$1"
}
filler "$T/big4m.json" 4000000
req PUT "/v2/$R/manifests/big" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/big4m.json"
expect_status "PUT a 4 MB manifest is 201" 201
req GET "/v2/$R/manifests/big"
expect_body_file "GET the 4 MB manifest returns the exact bytes" "$T/big4m.json"
if berth_only "manifest over 4 MiB"; then
	filler "$T/huge.json" $((4 * 1024 * 1024 + 10))
	req PUT "/v2/$R/manifests/huge" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/huge.json"
	expect_error "PUT a manifest over 4 MiB is 413 MANIFEST_INVALID" 413 MANIFEST_INVALID
	req GET "/v2/$R/manifests/huge"
	expect_status "the oversized manifest was not stored" 404
fi

# --- unknown references
req GET "/v2/$R/manifests/nosuchtag"
expect_error "GET unknown tag is 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
req HEAD "/v2/$R/manifests/nosuchtag"
expect_status "HEAD unknown tag is 404" 404
req GET "/v2/$R/manifests/$UNK"
expect_error "GET unknown digest is 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
req GET "/v2/man/nosuchrepo/manifests/latest"
expect_error "GET manifest of unknown repo is 404" 404 "NAME_UNKNOWN|MANIFEST_UNKNOWN"
req GET "/v2/man/other/manifests/$M1"
expect_error "manifest of one repo is unknown in another" 404 "MANIFEST_UNKNOWN|NAME_UNKNOWN"
if berth_only "malformed manifest digest reference"; then
	req GET "/v2/$R/manifests/sha256:1234"
	expect_error "GET manifest by malformed digest is 400 DIGEST_INVALID" 400 "DIGEST_INVALID|MANIFEST_INVALID|TAG_INVALID"
fi
# a reference that is not even a valid tag names no manifest: reading or
# deleting it is 404 (the OCI conformance suite GETs .INVALID_MANIFEST_NAME);
# only a push is told that its tag is malformed
if berth_only "invalid tag as a manifest reference"; then
	t129=$(printf 't%.0s' $(seq 1 129))
	for t in .INVALID_MANIFEST_NAME -bad a:b "$t129"; do
		req GET "/v2/$R/manifests/$t"
		expect_error "GET manifest by invalid tag '${t:0:22}' is 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
		req HEAD "/v2/$R/manifests/$t"
		expect_status "HEAD manifest by invalid tag '${t:0:22}' is 404" 404
	done
	req GET "/v2/man/nosuchrepo/manifests/.INVALID_MANIFEST_NAME"
	expect_error "GET invalid tag in an unknown repo is 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
	req DELETE "/v2/$R/manifests/.INVALID_MANIFEST_NAME"
	expect_error "DELETE manifest by invalid tag is 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
	req PUT "/v2/$R/manifests/.INVALID_MANIFEST_NAME" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/img1.json"
	expect_error "PUT manifest with invalid tag is 400 TAG_INVALID" 400 TAG_INVALID
	req PUT "/v2/$R/manifests/$t129" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/img1.json"
	expect_error "PUT manifest with a 129-character tag is 400 TAG_INVALID" 400 TAG_INVALID
fi

# the first image is untouched by all of the above
expect_manifest "first manifest still intact" v1 "$T/img1.json" "$OCI_MANIFEST"

finish
