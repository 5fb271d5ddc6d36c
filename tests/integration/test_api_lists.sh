#!/usr/bin/env bash
# HTTP API: tags/list and _catalog ordering and pagination (n, last, Link).
. "$(dirname "$0")/api_lib.sh"
start_registry || { fail "api_lists: registry did not start"; exit 1; }

R=list/repo
mk_image "$R" img || fail "pushing blobs failed"
# pushed out of order on purpose
TAGS=(v1.10 b latest a v1.2 d c 0.9 e_x e-x e.x)
for t in "${TAGS[@]}"; do push_manifest "$R" "$t" "$T/img.json" "$OCI_MANIFEST" || fail "push tag $t"; done
SORTED=$(printf '%s\n' "${TAGS[@]}" | LC_ALL=C sort | jq -R . | jq -sc .)

# jarr A B...: JSON array of strings
jarr() { if [ $# -eq 0 ]; then echo '[]'; else printf '%s\n' "$@" | jq -R . | jq -sc .; fi; }
# sorted_slice START COUNT: the lexically sorted tags from index START
sorted_slice() { printf '%s\n' "${TAGS[@]}" | LC_ALL=C sort | tail -n +$(($1 + 1)) | head -n "$2" | jq -R . | jq -sc .; }

req GET "/v2/$R/tags/list"
expect_status "tags/list is 200" 200
expect_eq "tags/list Content-Type" application/json "$(ctype)"
expect_jq "tags/list name" .name "\"$R\""
expect_jq "tags/list has every tag once" '.tags | sort' "$SORTED"
if has_hdr Link; then fail "full tags/list has no Link $(ctx)"; else ok "full tags/list has no Link"; fi
req GET "/v2/$R/tags/list?ns=docker.io"
expect_jq "tags/list ignores ?ns=" '.tags | sort' "$SORTED"

# distribution 2.8 neither sorts nor pages tags
if berth_only "tags/list order and paging"; then
	expect_jq "tags/list is in lexical order" .tags "$SORTED"

	# --- n
	req GET "/v2/$R/tags/list?n=2"
	expect_status "tags/list?n=2 is 200" 200
	expect_jq "tags/list?n=2 gives the first two" .tags "$(sorted_slice 0 2)"
	second=$(sorted_slice 0 2 | jq -r '.[1]')
	expect_hdr "tags/list?n=2 Link" Link "</v2/$R/tags/list?n=2&last=$second>; rel=\"next\""
	req GET "/v2/$R/tags/list?n=2&last=$second"
	expect_jq "tags/list?n=2&last= gives the next two" .tags "$(sorted_slice 2 2)"
	has_hdr Link && ok "middle page has a Link" || fail "middle page has a Link $(ctx)"

	# follow the Link header to the end; the concatenation is the full list
	all=() next="/v2/$R/tags/list?n=3" pages=0
	for _ in $(seq 1 20); do
		req GET "$next"
		[ "$ST" = 200 ] || break
		pages=$((pages + 1))
		mapfile -t got < <(jq -r '.tags[]' "$T/b")
		all+=("${got[@]}")
		next=$(hdr Link | sed -nE 's/^<([^>]*)>;.*rel="next".*/\1/p' | sed -E 's#^https?://[^/]*##')
		[ -n "$next" ] || break
	done
	expect_eq "following Link with n=3 visits every tag once, in order" "$SORTED" "$(jarr "${all[@]}")"
	expect_eq "following Link with n=3 takes 4 pages" 4 "$pages"

	# last page: exactly the remaining tags, no Link
	total=${#TAGS[@]}
	penult=$(sorted_slice $((total - 3)) 1 | jq -r '.[0]')
	req GET "/v2/$R/tags/list?n=5&last=$penult"
	expect_jq "last page has the remaining tags" .tags "$(sorted_slice $((total - 2)) 5)"
	if has_hdr Link; then fail "last page has no Link $(ctx)"; else ok "last page has no Link"; fi
	req GET "/v2/$R/tags/list?n=$total"
	expect_jq "n equal to the count gives every tag" .tags "$SORTED"
	if has_hdr Link; then fail "n equal to the count has no Link $(ctx)"; else ok "n equal to the count has no Link"; fi
	req GET "/v2/$R/tags/list?n=1000"
	expect_jq "large n gives every tag" .tags "$SORTED"
	if has_hdr Link; then fail "large n has no Link $(ctx)"; else ok "large n has no Link"; fi

	# --- last without n, last past the end, last not a tag
	req GET "/v2/$R/tags/list?last=c"
	expect_jq "last=c without n gives the tags after c" .tags "$(printf '%s\n' "${TAGS[@]}" | LC_ALL=C sort | awk '$0 > "c"' | jq -R . | jq -sc .)"
	req GET "/v2/$R/tags/list?last=zzz"
	expect_status "last after every tag is 200" 200
	expect_jq "last after every tag gives an empty list" '.tags // []' '[]'
	req GET "/v2/$R/tags/list?n=2&last=bb"
	expect_jq "last between tags starts after it" .tags "$(jarr c d)"

	# --- n=0 and bad n
	req GET "/v2/$R/tags/list?n=0"
	expect_status "tags/list?n=0 is 200" 200
	expect_jq "tags/list?n=0 is an empty list" .tags '[]'
	if has_hdr Link; then fail "tags/list?n=0 has no Link $(ctx)"; else ok "tags/list?n=0 has no Link"; fi
	req GET "/v2/$R/tags/list?n=abc"
	expect_4xx "tags/list?n=abc is a 4xx"
	req GET "/v2/$R/tags/list?n=-1"
	expect_4xx "tags/list?n=-1 is a 4xx"
fi

# --- unknown repository
req GET "/v2/list/nosuch/tags/list"
expect_error "tags/list of unknown repo is 404 NAME_UNKNOWN" 404 NAME_UNKNOWN

# --- catalog
REPOS=(list/repo list/b list/a zz/last a0 list/c)
for r in "${REPOS[@]:1}"; do
	push_blob "$r" "$T/img.cfg" && push_blob "$r" "$T/img.layer" &&
		push_manifest "$r" latest "$T/img.json" "$OCI_MANIFEST" || fail "push into $r"
done
RSORTED=$(printf '%s\n' "${REPOS[@]}" | LC_ALL=C sort | jq -R . | jq -sc .)
req GET /v2/_catalog
expect_status "_catalog is 200" 200
expect_eq "_catalog Content-Type" application/json "$(ctype)"
expect_jq "_catalog lists every repository in lexical order" .repositories "$RSORTED"
req GET "/v2/_catalog?n=2"
expect_jq "_catalog?n=2 gives the first two" .repositories "$(echo "$RSORTED" | jq -c '.[0:2]')"
r2=$(echo "$RSORTED" | jq -r '.[1]')
# the repository name may be percent-encoded in the Link
r2e=${r2//\//%2[Ff]}
if is_berth; then
	expect_hdr_re "_catalog?n=2 Link" Link "^</v2/_catalog\\?n=2&last=($r2|$r2e)>; rel=\"next\"\$"
else
	expect_hdr_re "_catalog?n=2 Link" Link "^<[^>]*/v2/_catalog\\?[^>]*last=($r2|$r2e)[^>]*>; rel=\"next\"\$"
fi
req GET "/v2/_catalog?n=2&last=$r2"
expect_jq "_catalog second page" .repositories "$(echo "$RSORTED" | jq -c '.[2:4]')"
r5=$(echo "$RSORTED" | jq -r '.[4]')
req GET "/v2/_catalog?n=2&last=$r5"
expect_jq "_catalog last page" .repositories "$(echo "$RSORTED" | jq -c '.[5:]')"
if has_hdr Link; then fail "_catalog last page has no Link $(ctx)"; else ok "_catalog last page has no Link"; fi
if berth_only "_catalog n=0"; then
	req GET "/v2/_catalog?n=0"
	expect_status "_catalog?n=0 is 200" 200
	expect_jq "_catalog?n=0 is an empty list" .repositories '[]'
	if has_hdr Link; then fail "_catalog?n=0 has no Link $(ctx)"; else ok "_catalog?n=0 has no Link"; fi
fi
req GET "/v2/_catalog?ns=docker.io"
expect_jq "_catalog ignores ?ns=" .repositories "$RSORTED"

finish
