# Thin wrapper over Meson and the scripts; the README's commands are
# scripts/demo and scripts/test, which call these.
BUILD ?= build
UAPI := $(BUILD)/uapi
# Static mbedTLS + libcurl (built once, cached outside the tree).
DEPS ?= $(shell scripts/build-deps)

.PHONY: all build host static fuzz setup test demo clean lint FORCE

all: build

# Build directories remember the dependency prefix they were configured
# with; new pins (a new prefix) start them afresh.
$(BUILD)/.deps: FORCE
	@mkdir -p $(BUILD)
	@if [ "$$(cat $@ 2>/dev/null)" != "$(DEPS)" ]; then \
		rm -rf $(BUILD)/host $(BUILD)/static $(BUILD)/fuzz; echo "$(DEPS)" >$@; fi

build: host static

$(BUILD)/host/build.ninja: $(BUILD)/.deps
	meson setup $(BUILD)/host -Db_sanitize=address,undefined -Dwerror=true \
		-Ddeps=$(DEPS)/host >/dev/null

host: $(BUILD)/host/build.ninja
	ninja -C $(BUILD)/host --quiet

# musl has no kernel UAPI headers: borrow linux-libc-dev's (scripts/lib.sh).
$(UAPI)/.stamp:
	bash -c '. scripts/lib.sh && musl_uapi "$$1"' make-uapi $(UAPI)
	touch $@

$(BUILD)/static/build.ninja: $(UAPI)/.stamp $(BUILD)/.deps
	CC=musl-gcc meson setup $(BUILD)/static -Dstatic_daemon=true -Dtests=false \
		-Dbuildtype=minsize -Db_lto=true -Dwerror=true -Duapi_headers=$(abspath $(UAPI)) \
		-Ddeps=$(DEPS)/musl >/dev/null

static: $(BUILD)/static/build.ninja
	ninja -C $(BUILD)/static --quiet

$(BUILD)/fuzz/build.ninja: $(BUILD)/.deps
	CC=clang meson setup $(BUILD)/fuzz -Dtests=false -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Ddeps=$(DEPS)/host >/dev/null

fuzz: $(BUILD)/fuzz/build.ninja
	ninja -C $(BUILD)/fuzz --quiet

setup:
	scripts/setup

test:
	scripts/test

demo:
	scripts/demo

lint:
	tests/lint/shellcheck.sh

clean:
	rm -rf $(BUILD)
