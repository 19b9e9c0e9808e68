/*
 * asan_preload.c: preloaded after gcc's libasan when test/run --sanitize starts a server (see
 * pg_private_sanitizer in test/pg_private.sh).
 *
 * Why: fct is built with AddressSanitizer but Debian's postgres, psql, initdb are not, so libasan
 * comes in through LD_PRELOAD, and its initialisation then runs lazily, at the first malloc.  The
 * libraries postgres links (krb5's com_err, p11-kit through gnutls) call bindtextdomain and
 * newlocale from their constructors, which run before libasan's: ASan initialises inside glibc's
 * locale locks and leaves them broken (the reader count of __libc_setlocale_lock wraps to -7), and
 * the next setlocale, bindtextdomain or exit() waits forever (postgres -V hangs).  Each function
 * here makes sure ASan is initialised before glibc takes such a lock, then calls glibc's.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <locale.h>

extern void __asan_init(void);

#define CALL_REAL(type, name, params, args) \
	do { \
		static type (*real) params; \
		__asan_init(); \
		if (!real) \
			real = (type (*) params) dlsym(RTLD_NEXT, #name); \
		return real args; \
	} while (0)

locale_t
newlocale(int mask, const char *locale, locale_t base)
{
	CALL_REAL(locale_t, newlocale, (int, const char *, locale_t), (mask, locale, base));
}

char *
setlocale(int category, const char *locale)
{
	CALL_REAL(char *, setlocale, (int, const char *), (category, locale));
}

char *
bindtextdomain(const char *domain, const char *dir)
{
	CALL_REAL(char *, bindtextdomain, (const char *, const char *), (domain, dir));
}

char *
bind_textdomain_codeset(const char *domain, const char *codeset)
{
	CALL_REAL(char *, bind_textdomain_codeset, (const char *, const char *), (domain, codeset));
}

char *
textdomain(const char *domain)
{
	CALL_REAL(char *, textdomain, (const char *), (domain));
}

char *
dcgettext(const char *domain, const char *msgid, int category)
{
	CALL_REAL(char *, dcgettext, (const char *, const char *, int), (domain, msgid, category));
}

char *
dgettext(const char *domain, const char *msgid)
{
	CALL_REAL(char *, dgettext, (const char *, const char *), (domain, msgid));
}
