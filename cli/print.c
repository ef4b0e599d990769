/* Printing for people: untrusted text escaped, times in local time. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

const char *cli_escape(const char *s, char *buf, size_t len)
{
	size_t at = 0;

	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		char one[8];
		size_t n = c == '\\' || c == '"' ? (size_t)snprintf(one, sizeof(one), "\\%c", c)
			 : c < 0x20 || c == 0x7f ? (size_t)snprintf(one, sizeof(one), "\\x%02x", c)
						 : (one[0] = (char)c, one[1] = '\0', 1);

		if (at + n + (s[1] ? 3 : 0) >= len) {	/* keep room for "..." unless it ends */
			snprintf(buf + at, len - at, "%s", at + 3 < len ? "..." : "");
			return buf;
		}
		memcpy(buf + at, one, n);
		at += n;
	}
	buf[at] = '\0';
	return buf;
}

const char *cli_time_local(int64_t ms, char *buf)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	localtime_r(&s, &tm);
	strftime(buf, 32, "%m-%d %H:%M:%S", &tm);
	return buf;
}
