# Kmpromail: build, test, install.
#   make            release build
#   make test       every test (unit, black-box with real clients)
#   make demo       a demo instance in ./demo on 127.0.0.1:20025 (SMTP), :20110 (POP3), :20143 (IMAP)
#   make install    PREFIX=/usr/local DESTDIR=
CARGO   ?= cargo
PREFIX  ?= /usr/local
DESTDIR ?=
DEMO    ?= $(CURDIR)/demo
DEMO_PORT_BASE ?= 20000

.PHONY: all build test lint demo demo-stop clean

all: build

build:
	$(CARGO) build --release --locked

test:
	$(CARGO) build --locked --all-targets
	$(CARGO) test --locked -- --test-threads=2

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

demo: build
	@if [ ! -f $(DEMO)/kmpromail.toml ]; then \
	  target/release/kmpctl init $(DEMO) --port-base $(DEMO_PORT_BASE) --hostname mail.example.test && \
	  target/release/kmpctl -c $(DEMO)/kmpromail.toml domain add example.test && \
	  echo demo-password | target/release/kmpctl -c $(DEMO)/kmpromail.toml user add demo@example.test --password-stdin; \
	fi
	target/release/kmpctl -c $(DEMO)/kmpromail.toml start
	@echo "demo running: SMTP 127.0.0.1:$$(( $(DEMO_PORT_BASE) + 25 )), POP3 :$$(( $(DEMO_PORT_BASE) + 110 )), IMAP :$$(( $(DEMO_PORT_BASE) + 143 ))"
	@echo "user demo@example.test, password demo-password; stop it with: make demo-stop"

demo-stop:
	target/release/kmpctl -c $(DEMO)/kmpromail.toml stop

clean:
	$(CARGO) clean
