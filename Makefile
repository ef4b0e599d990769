# Moat: one hand-written Makefile. `make V=1` shows the commands; `make SAN=1` builds with
# AddressSanitizer + UndefinedBehaviorSanitizer into build-san/.

PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/moat
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
# The web UI's files (web/), served by moatd --web from here unless --web-root says otherwise.
WEBDIR ?= $(PREFIX)/share/moat/web
# moatd reads /etc/moat/moatd.conf whatever the PREFIX.
SYSCONFDIR ?= /etc
DESTDIR ?=

ifeq ($(SAN),1)
B ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
B ?= build
SANFLAGS :=
endif

CC ?= cc
PKG_CONFIG ?= pkg-config
POLICY_PKGS := yaml-0.1 jansson
CLI_PKGS := yaml-0.1 jansson libcurl
DAEMON_PKGS := libnftnl libmnl libnl-3.0 libnl-route-3.0 libpcap jansson yaml-0.1 libcurl libmicrohttpd

# Lazy (=): pkg-config runs when a recipe needs it, after `make deps` has installed it.
pkgcflags = $(shell $(PKG_CONFIG) --cflags $(1))
pkglibs = $(shell $(PKG_CONFIG) --libs $(1))

# Build on every core unless told otherwise (-jN on the command line wins).
ifeq ($(filter -j%,$(MAKEFLAGS)),)
MAKEFLAGS += -j$(shell nproc)
endif

CFLAGS ?= -O2 -g
MOAT_CFLAGS = -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Iinclude -Idaemon -MMD -MP \
	$(SANFLAGS) $(call pkgcflags,$(DAEMON_PKGS)) -DMOAT_WEB_ROOT='"$(WEBDIR)"'
LDFLAGS += $(SANFLAGS)

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-6s %s\n' $(1) $(2)
endif

POLICY_SRC := $(sort $(wildcard policy/*.c))
DAEMON_SRC := $(sort $(wildcard daemon/*.c daemon/*/*.c))
CLI_SRC := $(sort $(wildcard cli/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
E2E_SRC := $(sort $(wildcard tests/e2e/*.c))
BENCH_SRC := $(sort $(wildcard tests/bench/*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/*.c))

POLICY_OBJ := $(POLICY_SRC:%.c=$(B)/%.o)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(B)/%.o)
DAEMON_LIB_OBJ := $(filter-out $(B)/daemon/main.o,$(DAEMON_OBJ))
CLI_OBJ := $(CLI_SRC:%.c=$(B)/%.o)
UNIT_BIN := $(UNIT_SRC:%.c=$(B)/%)
E2E_BIN := $(E2E_SRC:%.c=$(B)/%)
BENCH_BIN := $(BENCH_SRC:%.c=$(B)/%)
FUZZ_BIN := $(FUZZ_SRC:%.c=$(B)/%)

LIBMOAT := $(B)/libmoat.a
LIBMOATD := $(B)/libmoatd.a

all: $(B)/moat $(B)/moatd $(E2E_BIN)

$(B)/%.o: %.c
	$(call msg,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(MOAT_CFLAGS) -c -o $@ $<

$(LIBMOAT): $(POLICY_OBJ)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# moat policy push talks to etcd itself, with the daemon's client and wire format.
CLI_DAEMON_OBJ := $(B)/daemon/cluster/etcd.o $(B)/daemon/cluster/wire.o $(B)/daemon/curlio.o

$(B)/moat: $(CLI_OBJ) $(CLI_DAEMON_OBJ) $(LIBMOAT)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pkglibs,$(CLI_PKGS)) -lpthread

# The daemon's parts, so that e2e test programs (tests/e2e/*.c) can drive them directly.
$(LIBMOATD): $(DAEMON_LIB_OBJ)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/moatd: $(B)/daemon/main.o $(LIBMOATD) $(LIBMOAT)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pkglibs,$(DAEMON_PKGS)) -lpthread

$(B)/tests/e2e/%: $(B)/tests/e2e/%.o $(LIBMOATD) $(LIBMOAT)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pkglibs,$(DAEMON_PKGS)) -lpthread

# Unit tests and benchmarks may also drive the daemon's pure parts (flow table, NFLOG parser).
$(B)/tests/unit/%: $(B)/tests/unit/%.o $(LIBMOATD) $(LIBMOAT)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pkglibs,$(DAEMON_PKGS)) -lpthread

$(B)/tests/bench/%: $(B)/tests/bench/%.o $(LIBMOATD) $(LIBMOAT)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pkglibs,$(DAEMON_PKGS)) -lpthread

# libFuzzer harnesses (tests/fuzz/*.c), one per parser entry point. `make fuzz` builds them
# and everything they link with clang into $(B_FUZZ) and runs each for FUZZ_SECONDS on a
# scratch copy of its seed corpus (tests/fuzz/NAME.corpus/); crashes land in $(B_FUZZ)/artifacts.
B_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60
# -Wno-error (it lands after -Werror): warnings are gcc's job in the normal build; a warning
# only clang gives in code the harnesses do not even link must not stop the fuzzers.
FUZZ_SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all -Wno-error

$(B)/tests/fuzz/%: $(B)/tests/fuzz/%.o $(LIBMOATD) $(LIBMOAT)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(call pkglibs,$(DAEMON_PKGS)) -lpthread

fuzz-build:
	$(Q)$(MAKE) --no-print-directory B=$(B_FUZZ) CC=clang SANFLAGS="$(FUZZ_SANFLAGS)" \
		fuzz-bins

fuzz-bins: $(FUZZ_BIN)

fuzz: deps fuzz-build
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) B_FUZZ=$(B_FUZZ) tests/fuzz/run.sh

# Static analysis, zero findings. A false positive is silenced where it is, with the reason:
# /* cppcheck-suppress ID ; why */. tests/lint/jansson.cfg teaches cppcheck jansson's macros.
CPPCHECK_FLAGS := --enable=warning,portability --error-exitcode=1 --inline-suppr -Iinclude -Idaemon \
	--std=c11 --library=posix,gnu,libcurl,tests/lint/jansson.cfg -q

lint:
	$(call msg,LINT,cppcheck)
	$(Q)cppcheck $(CPPCHECK_FLAGS) policy/ daemon/ cli/

# The two-command start: `make demo` runs Moat for real in a sandbox and leaves it running.
demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)deploy/demo.sh start

demo-stop:
	$(Q)deploy/demo.sh stop

# Installs the Debian packages the build and the tests need (root; no-op when present).
deps:
	$(Q)tests/deps.sh

units: $(UNIT_BIN)

# `make test`: every tier. Unit tests also run under sanitizers; e2e needs root.
test: deps
	$(Q)$(MAKE) --no-print-directory all units
	$(Q)$(MAKE) --no-print-directory SAN=1 all units
	$(Q)tests/run.sh

bench: deps
	$(Q)$(MAKE) --no-print-directory all $(BENCH_BIN)
	$(Q)tests/bench/run.sh

# `make soak` (root): the restart and churn tests at their long scale, and a 10-minute soak.
soak: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)MOAT_BUILD=$(abspath $(B)) tests/soak.sh

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR)
	install -m 0755 $(B)/moatd $(DESTDIR)$(SBINDIR)/moatd
	install -m 0755 $(B)/moat $(DESTDIR)$(BINDIR)/moat
	install -d $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(BASHCOMPDIR) \
		$(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(SYSCONFDIR)/moat/policies
	install -m 0644 deploy/man/moatd.8 deploy/man/moat.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 deploy/man/moat-policy.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 deploy/moat.bash-completion $(DESTDIR)$(BASHCOMPDIR)/moat
	ln -sf moat $(DESTDIR)$(BASHCOMPDIR)/moatd
	sed 's|^ExecStart=/usr/local/sbin/moatd|ExecStart=$(SBINDIR)/moatd|' deploy/moatd.service \
		>$(DESTDIR)$(SYSTEMDUNITDIR)/moatd.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/moatd.service
	install -m 0644 policy/examples/*.yaml $(DESTDIR)$(DOCDIR)/examples/
	install -d $(DESTDIR)$(DOCDIR)/examples/compose/policies
	install -m 0644 policy/examples/compose/docker-compose.yml $(DESTDIR)$(DOCDIR)/examples/compose/
	install -m 0644 policy/examples/compose/policies/*.yaml \
		$(DESTDIR)$(DOCDIR)/examples/compose/policies/
	install -d $(DESTDIR)$(WEBDIR)
	install -m 0644 web/* $(DESTDIR)$(WEBDIR)/
	@# An operator's configuration is never overwritten.
	[ -e $(DESTDIR)$(SYSCONFDIR)/moat/moatd.conf ] || \
		install -m 0644 deploy/moatd.conf $(DESTDIR)$(SYSCONFDIR)/moat/moatd.conf

clean:
	rm -rf build build-san build-fuzz

.PHONY: all deps units test bench soak install clean demo demo-stop fuzz fuzz-build fuzz-bins lint

-include $(POLICY_OBJ:.o=.d) $(DAEMON_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(UNIT_BIN:=.d) $(BENCH_BIN:=.d) $(E2E_BIN:=.d) \
	$(FUZZ_BIN:=.d)
