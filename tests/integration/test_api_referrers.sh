#!/usr/bin/env bash
# HTTP API: manifests with a subject, the referrers API and its
# artifactType filter.
. "$(dirname "$0")/api_lib.sh"
start_registry || { fail "api_referrers: registry did not start"; exit 1; }

R=ref/repo
mk_image "$R" subj || fail "pushing subject blobs failed"
push_manifest "$R" v1 "$T/subj.json" "$OCI_MANIFEST" || fail "pushing subject manifest failed"
SUBJ=$(dg "$T/subj.json")
SUBJ_SIZE=$(sz "$T/subj.json")
printf '{}' >"$T/emptycfg"
mkblob sbom.data '{"sbom":true}'
mkblob sig.cfg '{"sig":"config"}'
mkblob sig.data "signature bytes"
for f in emptycfg sbom.data sig.cfg sig.data; do push_blob "$R" "$T/$f" || fail "pushing $f failed"; done

# ref_manifest OUT SUBJECT_DIGEST SUBJECT_SIZE ARTIFACT_TYPE CFG_MT CFG_FILE LAYER_FILE ANNOTATION
ref_manifest() {
	local at=
	[ -n "$4" ] && at=",\"artifactType\":\"$4\""
	printf '{"schemaVersion":2,"mediaType":"%s"%s,"config":{"mediaType":"%s","digest":"%s","size":%s},"layers":[{"mediaType":"application/octet-stream","digest":"%s","size":%s}],"subject":{"mediaType":"%s","digest":"%s","size":%s},"annotations":{"org.example.note":"%s"}}' \
		"$OCI_MANIFEST" "$at" "$5" "$(dg "$6")" "$(sz "$6")" "$(dg "$7")" "$(sz "$7")" \
		"$OCI_MANIFEST" "$2" "$3" "$8" >"$1"
}
SBOM_T=application/vnd.example.sbom.v1
SIG_CFG_T=application/vnd.example.sig.config.v1+json
ref_manifest "$T/sbom.json" "$SUBJ" "$SUBJ_SIZE" "$SBOM_T" "$OCI_EMPTY" "$T/emptycfg" "$T/sbom.data" sbom-note
ref_manifest "$T/sig.json" "$SUBJ" "$SUBJ_SIZE" "" "$SIG_CFG_T" "$T/sig.cfg" "$T/sig.data" sig-note
SBOM=$(dg "$T/sbom.json")
SIG=$(dg "$T/sig.json")

# --- PUT with subject (accepted by any registry; berth answers OCI-Subject)
req PUT "/v2/$R/manifests/$SBOM" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/sbom.json"
expect_status "PUT manifest with subject is 201" 201
if berth_only "OCI-Subject header"; then
	expect_hdr "PUT manifest with subject answers OCI-Subject" OCI-Subject "$SUBJ"
fi
req PUT "/v2/$R/manifests/$SIG" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/sig.json"
expect_status "PUT second referrer is 201" 201
req PUT "/v2/$R/manifests/plain" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/subj.json"
if berth_only "no OCI-Subject without subject"; then
	if has_hdr OCI-Subject; then fail "PUT without subject has no OCI-Subject $(ctx)"; else ok "PUT without subject has no OCI-Subject"; fi
fi
# an index referrer without artifactType
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%s}],"subject":{"mediaType":"%s","digest":"%s","size":%s},"annotations":{"org.example.note":"idx-note"}}' \
	"$OCI_INDEX" "$OCI_MANIFEST" "$SBOM" "$(sz "$T/sbom.json")" "$OCI_MANIFEST" "$SUBJ" "$SUBJ_SIZE" >"$T/ridx.json"
RIDX=$(dg "$T/ridx.json")
req PUT "/v2/$R/manifests/$RIDX" -H "Content-Type: $OCI_INDEX" --data-binary "@$T/ridx.json"
expect_status "PUT index with subject is 201" 201
if berth_only "OCI-Subject on index"; then
	expect_hdr "PUT index with subject answers OCI-Subject" OCI-Subject "$SUBJ"
fi

# a referrer whose subject does not exist yet
mk_image "$R" later || fail "pushing later blobs failed"
LATER=$(dg "$T/later.json")
ref_manifest "$T/early.json" "$LATER" "$(sz "$T/later.json")" "$SBOM_T" "$OCI_EMPTY" "$T/emptycfg" "$T/sbom.data" early-note
EARLY=$(dg "$T/early.json")
req PUT "/v2/$R/manifests/$EARLY" -H "Content-Type: $OCI_MANIFEST" --data-binary "@$T/early.json"
expect_status "PUT referrer before its subject is 201" 201

if ! berth_only "referrers API"; then
	finish
	exit 0
fi

# --- GET referrers
req GET "/v2/$R/referrers/$SUBJ"
expect_status "GET referrers is 200" 200
expect_hdr "GET referrers Content-Type is an OCI index" Content-Type "$OCI_INDEX"
expect_jq "referrers body is an index" '[.schemaVersion, .mediaType]' "[2,\"$OCI_INDEX\"]"
expect_jq "referrers lists the three referrers" '[.manifests[].digest] | sort' "$(printf '%s\n' "$SBOM" "$SIG" "$RIDX" | sort | jq -R . | jq -sc .)"
expect_jq "sbom descriptor is complete" ".manifests[] | select(.digest == \"$SBOM\") | [.mediaType, .size, .artifactType, .annotations]" \
	"[\"$OCI_MANIFEST\",$(sz "$T/sbom.json"),\"$SBOM_T\",{\"org.example.note\":\"sbom-note\"}]"
expect_jq "artifactType falls back to the config media type" ".manifests[] | select(.digest == \"$SIG\") | [.mediaType, .size, .artifactType, .annotations]" \
	"[\"$OCI_MANIFEST\",$(sz "$T/sig.json"),\"$SIG_CFG_T\",{\"org.example.note\":\"sig-note\"}]"
expect_jq "index referrer without artifactType has none" ".manifests[] | select(.digest == \"$RIDX\") | [.mediaType, .size, has(\"artifactType\"), .annotations]" \
	"[\"$OCI_INDEX\",$(sz "$T/ridx.json"),false,{\"org.example.note\":\"idx-note\"}]"
if has_hdr OCI-Filters-Applied; then fail "unfiltered referrers has no OCI-Filters-Applied $(ctx)"; else ok "unfiltered referrers has no OCI-Filters-Applied"; fi

# --- filter
req GET "/v2/$R/referrers/$SUBJ?artifactType=$SBOM_T"
expect_status "filtered referrers is 200" 200
expect_hdr "filtered referrers has OCI-Filters-Applied" OCI-Filters-Applied artifactType
expect_jq "filter keeps only matching referrers" '[.manifests[].digest]' "[\"$SBOM\"]"
req GET "/v2/$R/referrers/$SUBJ?artifactType=$SIG_CFG_T"
expect_jq "filter matches the config media type fallback" '[.manifests[].digest]' "[\"$SIG\"]"
req GET "/v2/$R/referrers/$SUBJ?artifactType=application/vnd.none"
expect_status "filter without match is 200" 200
expect_jq "filter without match is an empty list" '.manifests' '[]'
expect_hdr "filter without match has OCI-Filters-Applied" OCI-Filters-Applied artifactType

# --- no referrers
req GET "/v2/$R/referrers/$(dg "$T/sig.data")"
expect_status "referrers of a digest without referrers is 200" 200
expect_hdr "empty referrers Content-Type" Content-Type "$OCI_INDEX"
expect_jq "referrers of a digest without referrers is empty" '[.schemaVersion, .mediaType, .manifests]' "[2,\"$OCI_INDEX\",[]]"
req GET "/v2/$R/referrers/sha256:$(printf 'c%.0s' $(seq 1 64))"
expect_status "referrers of an unknown digest is 200" 200
expect_jq "referrers of an unknown digest is empty" '.manifests' '[]'

# --- subject pushed after its referrer
req GET "/v2/$R/referrers/$LATER"
expect_jq "referrer listed before its subject exists" '[.manifests[].digest]' "[\"$EARLY\"]"
push_manifest "$R" later "$T/later.json" "$OCI_MANIFEST" || fail "pushing later subject failed"
req GET "/v2/$R/referrers/$LATER"
expect_jq "referrer still listed after its subject is pushed" '[.manifests[].digest]' "[\"$EARLY\"]"

# --- referrers are per repository
mk_image ref/other o1 && push_manifest ref/other v1 "$T/o1.json" "$OCI_MANIFEST"
req GET "/v2/ref/other/referrers/$SUBJ"
expect_status "referrers in another repo is 200" 200
expect_jq "referrers of another repo are not listed" '.manifests' '[]'

# --- malformed digests
for bad in sha256:abc notadigest "sha256:$(printf 'G%.0s' $(seq 1 64))"; do
	req GET "/v2/$R/referrers/$bad"
	expect_error "referrers with malformed digest ${bad:0:15} is 400 DIGEST_INVALID" 400 DIGEST_INVALID
done

# --- deleting a referrer removes it from the list
req DELETE "/v2/$R/manifests/$SIG"
expect_status "DELETE a referrer is 202" 202
req GET "/v2/$R/referrers/$SUBJ"
expect_jq "deleted referrer is no longer listed" '[.manifests[].digest] | sort' "$(printf '%s\n' "$SBOM" "$RIDX" | sort | jq -R . | jq -sc .)"

# --- query parameters are ignored
req GET "/v2/$R/referrers/$SUBJ?ns=docker.io"
expect_status "referrers with ?ns= is 200" 200
if has_hdr OCI-Filters-Applied; then fail "?ns= is not a filter $(ctx)"; else ok "?ns= is not a filter"; fi

finish
