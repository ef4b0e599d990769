/* Domain names of domainNames peers: the API's pattern, one form, and matching. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "domain.h"

static bool label_ok(const char *s, size_t n)
{
	static const char inner[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789-_";

	if (!n || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (!strchr(inner, s[i]))
			return false;
	return true;
}

const char *domain_problem(const char *s)
{
	const char *p = strncmp(s, "*.", 2) ? s : s + 2, *end = p + strlen(p);
	size_t labels = 0;

	if (strchr(p, '*'))
		return "'*' may only stand for whole labels at the start, as in *.example.com";
	if (end > p && end[-1] == '.')
		end--;
	for (const char *l = p; l <= end; labels++) {
		const char *dot = memchr(l, '.', end - l);
		size_t n = (dot ? dot : end) - l;

		if (!n)
			return "it has an empty label (a dot at the start, or two in a row)";
		if (!label_ok(l, n))
			return "a label is letters, digits, '-' and '_', starting and ending with a "
			       "letter or digit";
		l += n + 1;
	}
	if (labels < 2)
		return "it needs at least two labels (like example.com; *.example.com for the "
		       "names under it)";
	return NULL;
}

char *domain_normalize(struct arena *a, const char *s)
{
	size_t n = strlen(s);
	char *out;

	if (n && s[n - 1] == '.')
		n--;
	out = arena_strndup(a, s, n);
	for (size_t i = 0; out && i < n; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
	return out;
}

bool domain_match(const char *pattern, const char *name)
{
	size_t n = strlen(name), p;

	if (n && name[n - 1] == '.')
		n--;
	if (strncmp(pattern, "*.", 2)) {
		p = strlen(pattern);
		return n == p && !strncasecmp(pattern, name, n);
	}
	p = strlen(pattern + 1);	/* ".example.com" must end a longer name */
	return n > p && !strncasecmp(pattern + 1, name + n - p, p);
}

bool moat_domain_match(const char *pattern, const char *name)
{
	return domain_match(pattern, name);
}
