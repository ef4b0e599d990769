/* Logging for moatd: levels, plain lines on stderr (journald adds the time) or JSON lines. */
#ifndef MOAT_LOG_H
#define MOAT_LOG_H

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/*
 * log_setup - level and format ("text" or "json"). Logging is process-wide configuration, the
 * one piece of global state moatd keeps (every module logs). Returns 0 or -EINVAL for an
 * unknown level or format name.
 */
int log_setup(const char *level, const char *format);

/* log_msg - one line at level; the message must not end with a newline. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct moat_diags;

/* log_diags - each diagnostic as an error line (moat_diag_format). */
void log_diags(const struct moat_diags *d);

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
