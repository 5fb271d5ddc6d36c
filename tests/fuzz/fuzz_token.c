/* libFuzzer harness for what the token endpoint reads from a client
 * (registry/handlers_auth.c, compiled into this file with #include to
 * reach its static parsers, and auth/basic.c):
 *   - the POST form (containerd's OAuth2 password grant): the body
 *     streamed through h_token_post_body() in chunks the input chooses,
 *     then form_parse() and form_decode() as h_token_post_finish() runs
 *     them, then scopes_add() on its scope field;
 *   - the GET query's scope arguments: scope_arg() / scopes_add() on a
 *     space-separated list (libmicrohttpd itself splits and unescapes the
 *     query string);
 *   - the Authorization header: auth_basic_decode().
 * token_issue() is not called: it signs in with PBKDF2 (600000 rounds) and
 * signs tokens (fuzz_jwt covers those). Built by `make fuzz`.
 *
 * Input: one byte choosing what the rest is: 0 a form body (split into
 * chunks at each 0xff byte), 1 a scope list, 2 an Authorization header.
 *
 * Promises checked, besides crashes and sanitizer reports:
 *   - the body is kept whole up to TOKEN_BODY_MAX, else too_large is set;
 *   - form_parse() finds for each field exactly what a straightforward
 *     reference decoder finds (split at '&', drop pairs without '=',
 *     decode '+' and valid %XX, last one wins), its strings inside the
 *     body buffer;
 *   - scopes_add() keeps at most TOKEN_SCOPES_MAX scopes, each one that
 *     auth_scope_parse() accepts alone, in order;
 *   - a decoded Basic credential has a non-empty user without ':' or NUL,
 *     and encoding "user:password" again decodes to the same pair. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/handlers_auth.c"

#include "auth/auth_internal.h"
#include "tests/fuzz/fake_req.h"

#define TOKEN_INPUT_MAX (TOKEN_BODY_MAX + 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- reference form decoding ---- */

static int
ref_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes s[0..n) into a new string. */
static char *
ref_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;

	if (out == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			*o++ = ' ';
		} else if (s[i] == '%' && i + 2 < n && ref_hex(s[i + 1]) >= 0 &&
		           ref_hex(s[i + 2]) >= 0) {
			*o++ = (char)(ref_hex(s[i + 1]) * 16 +
			              ref_hex(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

static const char *const fields[] = {"grant_type", "username", "password",
                                     "service", "scope"};
#define N_FIELDS 5

/* want[i]: the decoded value of fields[i] (last one wins), or NULL. */
static void
ref_form(const char *body, char *want[N_FIELDS])
{
	const char *p = body;

	for (size_t i = 0; i < N_FIELDS; i++)
		want[i] = NULL;
	while (*p != '\0') {
		size_t n = strcspn(p, "&");
		const char *eq = memchr(p, '=', n);

		if (eq != NULL) {
			char *k = ref_decode(p, (size_t)(eq - p));
			/* A decoded key holding a NUL ends early, as a C
			 * string does for strcmp. */
			for (size_t i = 0; i < N_FIELDS; i++) {
				if (strcmp(k, fields[i]) == 0) {
					free(want[i]);
					want[i] = ref_decode(
					        eq + 1,
					        n - (size_t)(eq + 1 - p));
				}
			}
			free(k);
		}
		p += n;
		while (*p == '&')
			p++;
	}
}

static void
check_scopes(const struct scopes *sc, const char *list)
{
	char one[AUTH_NAME_MAX + 64];
	struct auth_scope want;
	size_t k = 0;

	if (sc->n > TOKEN_SCOPES_MAX)
		abort();
	/* the same walk, one scope at a time */
	while (list != NULL && *list != '\0' && k < TOKEN_SCOPES_MAX) {
		size_t len = strcspn(list, " ");

		if (len > 0 && len < sizeof(one)) {
			memcpy(one, list, len);
			one[len] = '\0';
			if (auth_scope_parse(one, &want) == RC_OK) {
				if (k >= sc->n || memcmp(&want, &sc->asked[k],
				                         sizeof(want)) != 0)
					abort();
				k++;
			}
		}
		list += len;
		while (*list == ' ')
			list++;
	}
	if (k != sc->n)
		abort();
}

static void
fuzz_form(const uint8_t *data, size_t size)
{
	struct app app = {0};
	struct req r = {.app = &app};
	struct form f = {0};
	struct scopes sc = {.n = 0};
	char *want[N_FIELDS], *body;
	const char *got[N_FIELDS];
	size_t total = 0;

	h_token_post_start(&r);
	/* The body in the chunks libmicrohttpd would hand over. */
	while (size > 0) {
		const uint8_t *cut = memchr(data, 0xff, size);
		size_t n = cut != NULL ? (size_t)(cut - data) : size;

		if (n > 0 && h_token_post_body(&r, (const char *)data, n) != 0)
			abort();
		total += n;
		data += n + (cut != NULL);
		size -= n + (cut != NULL);
	}
	if (h_token_post_body(&r, NULL, 0) != 0)
		abort();
	if (total > TOKEN_BODY_MAX ? !r.too_large
	                           : r.too_large || r.len != total)
		abort();
	if (r.too_large || r.buf == NULL)
		goto out;
	/* Form bytes hold no NUL on the wire that matters: the handler sees
	 * a C string. The reference reads the same one. */
	if ((body = strdup(r.buf)) == NULL)
		abort();
	ref_form(body, want);
	form_parse(r.buf, &f);
	got[0] = f.grant_type, got[1] = f.username, got[2] = f.password;
	got[3] = f.service, got[4] = f.scope;
	for (size_t i = 0; i < N_FIELDS; i++) {
		if ((got[i] == NULL) != (want[i] == NULL))
			abort();
		if (got[i] == NULL)
			continue;
		if (got[i] < r.buf || got[i] >= r.buf + r.len + 1 ||
		    strcmp(got[i], want[i]) != 0)
			abort();
		free(want[i]);
	}
	free(body);
	scopes_add(&sc, f.scope);
	check_scopes(&sc, f.scope);
out:
	free(r.buf);
}

static void
fuzz_query(const uint8_t *data, size_t size)
{
	struct scopes sc = {.n = 0};
	char *s = strndup((const char *)data, size);

	if (s == NULL)
		abort();
	/* as libmicrohttpd calls it for each argument */
	scope_arg(&sc, MHD_GET_ARGUMENT_KIND, "service", s);
	if (sc.n != 0)
		abort();
	scope_arg(&sc, MHD_GET_ARGUMENT_KIND, "scope", s);
	check_scopes(&sc, s);
	free(s);
}

static void
fuzz_basic(const uint8_t *data, size_t size)
{
	char user[TOKEN_USER_MAX], pass[TOKEN_PASS_MAX];
	char user2[TOKEN_USER_MAX], pass2[TOKEN_PASS_MAX];
	char *h = strndup((const char *)data, size), *plain, *again;
	size_t ul, pl;

	if (h == NULL)
		abort();
	if (auth_basic_decode(h, user, sizeof(user), pass, sizeof(pass)) !=
	    RC_OK)
		goto out;
	ul = strlen(user);
	pl = strlen(pass);
	if (ul == 0 || ul >= sizeof(user) || pl >= sizeof(pass) ||
	    strchr(user, ':') != NULL)
		abort();
	if ((plain = malloc(ul + pl + 2)) == NULL ||
	    (again = malloc(6 + auth_b64_len(ul + pl + 1) + 1)) == NULL)
		abort();
	memcpy(plain, user, ul);
	plain[ul] = ':';
	memcpy(plain + ul + 1, pass, pl + 1);
	memcpy(again, "Basic ", 6);
	auth_b64_encode(AUTH_B64_STD, (const unsigned char *)plain, ul + pl + 1,
	                again + 6);
	if (auth_basic_decode(again, user2, sizeof(user2), pass2,
	                      sizeof(pass2)) != RC_OK ||
	    strcmp(user, user2) != 0 || strcmp(pass, pass2) != 0)
		abort();
	free(plain);
	free(again);
out:
	free(h);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > TOKEN_INPUT_MAX)
		return 0;
	switch (data[0] % 3) {
	case 0: fuzz_form(data + 1, size - 1); break;
	case 1: fuzz_query(data + 1, size - 1); break;
	default: fuzz_basic(data + 1, size - 1); break;
	}
	return 0;
}
