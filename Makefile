# Kmpromail: build, test, install.
#   make            release build
#   make test       every test (unit, black-box with real clients); first checks
#                   that the programs the tests run are installed (tests/tools.txt)
#   make demo       a demo instance in ./demo on 127.0.0.1:20025 (SMTP), :20110 (POP3), :20143 (IMAP),
#                   webmail at http://127.0.0.1:20080/ when lighttpd is installed
#   make install    PREFIX=/usr/local DESTDIR=
CARGO   ?= cargo
PREFIX  ?= /usr/local
DESTDIR ?=
DEMO    ?= $(CURDIR)/demo
OS      != uname -s
SYSCONFDIR ?= $(if $(filter FreeBSD,$(OS)),$(PREFIX)/etc,/etc)
MANDIR  ?= $(if $(filter FreeBSD,$(OS)),$(PREFIX)/man,$(PREFIX)/share/man)
LIBEXEC  = $(PREFIX)/libexec/kmpromail
UNITDIR ?= $(PREFIX)/lib/systemd/system
DAEMONS  = kmp-authd kmp-send kmp-local kmp-remote kmp-smtpd kmp-pop3d kmp-imapd kmp-sieved kmp-fetch kmp-admind
# The webmail CGI goes beside the daemons; its skins and languages under share.
CGI      = kmp-webmail
WEBSHARE = $(PREFIX)/share/kmpromail/webmail
# The mailing lists' texts (lists.texts_dir), one directory per language.
LISTSHARE = $(PREFIX)/share/kmpromail/lists
REL      = target/release
# Installed programs are stripped of symbols and debug info (target/ keeps them).
INSTALL_STRIP ?= -s
DEMO_PORT_BASE ?= 20000

.PHONY: all build test lint demo demo-stop clean install uninstall

all: build

build:
	$(CARGO) build --release --locked

test:
	@sh tests/tools.sh
	$(CARGO) build --locked --all-targets
	$(CARGO) test --locked -- --test-threads=2

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

demo: build
	@if [ ! -f $(DEMO)/kmpromail.toml ]; then \
	  target/release/kmpctl init $(DEMO) --port-base $(DEMO_PORT_BASE) --hostname mail.example.test \
	    --postmaster postmaster@example.test --trust-loopback --spam-checks && \
	  target/release/kmpctl -c $(DEMO)/kmpromail.toml domain add example.test --postmaster demo@example.test && \
	  echo demo-password | target/release/kmpctl -c $(DEMO)/kmpromail.toml user add demo@example.test --password-stdin; \
	fi
	target/release/kmpctl -c $(DEMO)/kmpromail.toml start
	@echo "demo running: SMTP 127.0.0.1:$$(( $(DEMO_PORT_BASE) + 25 )), POP3 :$$(( $(DEMO_PORT_BASE) + 110 )), IMAP :$$(( $(DEMO_PORT_BASE) + 143 ))"
	@if [ -f $(DEMO)/run/lighttpd.pid ]; then \
	  echo "webmail: http://127.0.0.1:$$(( $(DEMO_PORT_BASE) + 80 ))/ (and https://127.0.0.1:$$(( $(DEMO_PORT_BASE) + 443 ))/ when lighttpd has TLS)"; \
	else \
	  echo "webmail: not served (install lighttpd, then make demo-stop demo)"; \
	fi
	@echo "user demo@example.test, password demo-password; postmaster@ and abuse@ reach it too"
	@echo "stop it with: make demo-stop"

demo-stop:
	target/release/kmpctl -c $(DEMO)/kmpromail.toml stop

clean:
	$(CARGO) clean

# Installs the programs, man pages, the sample configuration (never the live one),
# the sendmail/mailq names, rc.d and systemd files. `kmpctl setup` (as root) then
# creates the users, directories and a first configuration, and makes kmp-inject
# set-group-id kmpdrop if the group did not exist yet.
install:
	@test -x $(REL)/kmpctl || { echo "run make first"; exit 1; }
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBEXEC)
	install $(INSTALL_STRIP) -m 0755 $(REL)/kmpctl $(DESTDIR)$(PREFIX)/sbin/kmpctl
	for d in $(DAEMONS) $(CGI); do \
	  if [ -x $(REL)/$$d ]; then install $(INSTALL_STRIP) -m 0755 $(REL)/$$d $(DESTDIR)$(LIBEXEC)/$$d; fi; \
	done
	install -d $(DESTDIR)$(WEBSHARE)/lang
	for f in share/webmail/lang/*.toml; do install -m 0644 $$f $(DESTDIR)$(WEBSHARE)/lang/; done
	for s in share/webmail/skins/*/; do \
	  n=$$(basename $$s); install -d $(DESTDIR)$(WEBSHARE)/skins/$$n; \
	  for f in $$s*; do [ -f "$$f" ] && install -m 0644 "$$f" $(DESTDIR)$(WEBSHARE)/skins/$$n/; done; \
	done
	for l in share/lists/*/; do \
	  n=$$(basename $$l); install -d $(DESTDIR)$(LISTSHARE)/$$n; \
	  for f in $$l*.txt; do install -m 0644 "$$f" $(DESTDIR)$(LISTSHARE)/$$n/; done; \
	done
	if [ -x $(REL)/kmp-inject ]; then \
	  install $(INSTALL_STRIP) -m 0755 $(REL)/kmp-inject $(DESTDIR)$(PREFIX)/sbin/kmp-inject; \
	  if getent group kmpdrop >/dev/null 2>&1 && \
	     chgrp kmpdrop $(DESTDIR)$(PREFIX)/sbin/kmp-inject 2>/dev/null; then \
	    chmod 2755 $(DESTDIR)$(PREFIX)/sbin/kmp-inject; \
	  else \
	    echo "note: kmp-inject is not set-group-id kmpdrop yet: run kmpctl setup as root"; \
	  fi; \
	  ln -sf kmp-inject $(DESTDIR)$(PREFIX)/sbin/sendmail; \
	  ln -sf ../sbin/kmp-inject $(DESTDIR)$(PREFIX)/bin/mailq; \
	fi
	for s in 5 7 8; do \
	  install -d $(DESTDIR)$(MANDIR)/man$$s; \
	  for m in man/man$$s/*.$$s; do [ -f "$$m" ] && install -m 0644 "$$m" $(DESTDIR)$(MANDIR)/man$$s/; done; \
	done
	install -d $(DESTDIR)$(SYSCONFDIR)/kmpromail
	install -m 0644 etc/kmpromail.toml $(DESTDIR)$(SYSCONFDIR)/kmpromail/kmpromail.toml.sample
	if [ "$(OS)" = FreeBSD ]; then \
	  install -d $(DESTDIR)$(PREFIX)/etc/rc.d; \
	  sed 's|/usr/local|$(PREFIX)|g' rc.d/kmpromail > $(DESTDIR)$(PREFIX)/etc/rc.d/kmpromail; \
	  chmod 0755 $(DESTDIR)$(PREFIX)/etc/rc.d/kmpromail; \
	else \
	  install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/lib/tmpfiles.d; \
	  for u in systemd/*.service systemd/*.target; do \
	    sed 's|/usr/local/libexec|$(PREFIX)/libexec|; s|/etc/kmpromail|$(SYSCONFDIR)/kmpromail|' $$u \
	      > $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
	  done; \
	  install -m 0644 systemd/kmpromail.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/kmpromail.conf; \
	fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/kmpctl $(DESTDIR)$(PREFIX)/sbin/kmp-inject \
	  $(DESTDIR)$(PREFIX)/sbin/sendmail $(DESTDIR)$(PREFIX)/bin/mailq
	for d in $(DAEMONS) $(CGI); do rm -f $(DESTDIR)$(LIBEXEC)/$$d; done
	for f in share/webmail/lang/*.toml; do rm -f $(DESTDIR)$(WEBSHARE)/lang/$$(basename $$f); done
	for s in share/webmail/skins/*/; do \
	  n=$$(basename $$s); for f in $$s*; do rm -f $(DESTDIR)$(WEBSHARE)/skins/$$n/$$(basename $$f); done; \
	  rmdir $(DESTDIR)$(WEBSHARE)/skins/$$n 2>/dev/null || true; \
	done
	for l in share/lists/*/; do \
	  n=$$(basename $$l); for f in $$l*.txt; do rm -f $(DESTDIR)$(LISTSHARE)/$$n/$$(basename $$f); done; \
	  rmdir $(DESTDIR)$(LISTSHARE)/$$n 2>/dev/null || true; \
	done
	-rmdir $(DESTDIR)$(LISTSHARE) 2>/dev/null
	-rmdir $(DESTDIR)$(WEBSHARE)/skins $(DESTDIR)$(WEBSHARE)/lang $(DESTDIR)$(WEBSHARE) $(DESTDIR)$(PREFIX)/share/kmpromail 2>/dev/null
	-rmdir $(DESTDIR)$(LIBEXEC)
	for s in 5 7 8; do for m in man/man$$s/*.$$s; do rm -f $(DESTDIR)$(MANDIR)/man$$s/$$(basename $$m); done; done
	rm -f $(DESTDIR)$(SYSCONFDIR)/kmpromail/kmpromail.toml.sample
	rm -f $(DESTDIR)$(PREFIX)/etc/rc.d/kmpromail $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/kmpromail.conf
	for u in systemd/*.service systemd/*.target; do rm -f $(DESTDIR)$(UNITDIR)/$$(basename $$u); done
