# berth build. MODE=debug|release|asan|ubsan builds into build/$(MODE)/.
MODE ?= debug
BUILD := build/$(MODE)
PKGS := libmicrohttpd gnutls lmdb libcrypto jansson libzstd libcurl
TEST_PKGS := cmocka

# Container image (make image, make image-push): OCI labels and push target.
IMAGE_SOURCE ?= https://github.com/berth-registry/berth
IMAGE_LICENSES ?= NOASSERTION
IMAGE_NAME ?= berth
IMAGE_TAG ?=
REGISTRY ?=
PUSH_FLAGS ?=

CC ?= cc
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS_debug := -O0 -g3
CFLAGS_release := -O2 -g -DNDEBUG
CFLAGS_asan := -O1 -g3 -fsanitize=address -fno-omit-frame-pointer
CFLAGS_ubsan := -O1 -g3 -fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDFLAGS_asan := -fsanitize=address
LDFLAGS_ubsan := -fsanitize=undefined

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
TEST_CFLAGS = $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS = $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE -I. $(WARN) $(CFLAGS_$(MODE)) $(PKG_CFLAGS) -MMD -MP $(CFLAGS)
ALL_LDFLAGS = $(LDFLAGS_$(MODE)) $(LDFLAGS)

# Library code: everything below the HTTP shell.
LIB_SRC := $(wildcard common/*.c storage/*.c gc/*.c auth/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
REG_SRC := $(wildcard registry/*.c)
REG_OBJ := $(REG_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/*/test_*.c)
UNIT_BIN := $(UNIT_SRC:%.c=$(BUILD)/%)
TOOL_SRC := $(wildcard tests/bench/*.c)
TOOL_BIN := $(TOOL_SRC:%.c=$(BUILD)/%)

.PHONY: all bin run test check bench clean fmt fmt-check lint deps deps-test deps-bench deps-image unit install \
  image image-push fuzz fuzz-build soak
all: $(BUILD)/berth $(UNIT_BIN) $(TOOL_BIN)
bin: $(BUILD)/berth

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libberth.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/berth: $(REG_OBJ) $(BUILD)/libberth.a
	$(CC) $(ALL_LDFLAGS) -o $@ $(REG_OBJ) $(BUILD)/libberth.a $(PKG_LIBS)

# A unit test may carry extra link flags (e.g. -Wl,--wrap=fsync for failure
# injection) in a file next to it named test_<file>.ldflags.
$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libberth.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) $(ALL_LDFLAGS) -o $@ $< \
	  $(shell cat tests/unit/$*.ldflags 2>/dev/null) $(BUILD)/libberth.a $(PKG_LIBS) $(TEST_LIBS)

$(BUILD)/tests/bench/%: tests/bench/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE -O2 $(WARN) -o $@ $< -lpthread

# gcfill fills a data directory through the storage API: it links the library.
$(BUILD)/tests/bench/gcfill: tests/bench/gcfill.c $(BUILD)/libberth.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libberth.a $(PKG_LIBS)

# libFuzzer harnesses (tests/fuzz/fuzz_*.c), built with clang into
# build/fuzz/ against a libberth of their own (coverage + ASan + UBSan).
# `make fuzz` runs each for FUZZ_RUNS executions (or FUZZ_SECONDS, 0 = no
# bound), FUZZ_JOBS at a time, on build/fuzz/corpus/<harness> seeded from
# tests/fuzz/corpus/<harness>; FUZZ_MERGE=1 merges what they found back into
# the checked-in corpus. `make test` replays the corpora and fuzzes each
# harness for 3 s (tests/fuzz/run.sh --quick).
FUZZ_CC ?= $(shell command -v clang-14 || command -v clang || echo clang-14)
FUZZ_SECONDS ?= 0
FUZZ_RUNS ?= 10000000
FUZZ_JOBS ?= 2
FUZZ_MERGE ?= 0
FUZZ_DIR := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_FLAGS = -std=gnu11 -D_GNU_SOURCE -I. -g -O1 -fno-omit-frame-pointer \
  -Wall -Wextra -Wno-unused-parameter $(PKG_CFLAGS) -MMD -MP
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_DIR)/%)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c $< -o $@

$(FUZZ_DIR)/libberth.a: $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

# A harness may carry extra link flags in tests/fuzz/<harness>.ldflags
# (-Wl,--wrap=... to stand in for storage calls).
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libberth.a
	$(FUZZ_CC) $(FUZZ_FLAGS) -Werror -DFUZZ_ROOT='"$(CURDIR)"' \
	  -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< \
	  $(shell cat tests/fuzz/fuzz_$*.ldflags 2>/dev/null) \
	  $(FUZZ_DIR)/libberth.a $(PKG_LIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: deps-test
	$(MAKE) fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_JOBS=$(FUZZ_JOBS) \
	  FUZZ_MERGE=$(FUZZ_MERGE) tests/fuzz/run.sh --long $(FUZZ_DIR)

deps:
	@scripts/deps.sh build
deps-test:
	@scripts/deps.sh test
deps-bench:
	@scripts/deps.sh bench
deps-image:
	@scripts/deps.sh image

# Builds, then starts the registry on 127.0.0.1:5000 with ./data.
run: deps
	$(MAKE) MODE=release bin
	build/release/berth serve --listen 127.0.0.1:5000 --data ./data

# Every test: unit (cmocka), HTTP API (curl), real clients.
test: deps-test
	$(MAKE) MODE=$(MODE) all
	tests/run.sh $(BUILD)

unit: deps
	$(MAKE) MODE=$(MODE) all
	tests/run.sh --unit-only $(BUILD)

# Sanitizer builds: the whole suite under ASan, unit + API tests under UBSan;
# not the fuzzers again (make test ran them, under ASan + UBSan already).
check: deps-test
	$(MAKE) MODE=asan all
	BERTH_IMAGE_TESTS=0 BERTH_DEPLOY_TESTS=0 CRASH_KILLS=6 MUTATE_SECONDS=6 GC_RACE_SECONDS=15 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 tests/run.sh --no-fuzz build/asan
	$(MAKE) MODE=ubsan all
	BERTH_DEPLOY_TESTS=0 CRASH_KILLS=6 MUTATE_SECONDS=6 GC_RACE_SECONDS=15 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run.sh --no-clients --no-fuzz build/ubsan

# The crash loop with 1,000 kills, then a 120 s race storm (tests/faults/soak.sh).
soak: deps-test
	$(MAKE) MODE=$(MODE) bin
	tests/faults/soak.sh $(BUILD)/berth

bench: deps-bench
	$(MAKE) MODE=release all
	tests/bench/run.sh build/release

lint:
	cppcheck --quiet --enable=warning,performance,portability --error-exitcode=1 \
	  -I. --suppress=missingIncludeSystem --suppress=varFuncNullUB common storage gc auth registry

fmt:
	clang-format -i $$(git ls-files '*.c' '*.h')

fmt-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

install:
	$(MAKE) MODE=release bin
	install -D -m 0755 build/release/berth $(DESTDIR)/usr/local/bin/berth

# Builds build/image/berth.oci.tar (berth:<version>) from scratch with buildah:
# the release binary, its shared libraries, CA certificates, a minimal /etc.
image: deps-image
	$(MAKE) MODE=release bin
	IMAGE_SOURCE='$(IMAGE_SOURCE)' IMAGE_LICENSES='$(IMAGE_LICENSES)' scripts/image.sh build

# Pushes the archive to $(REGISTRY)/$(IMAGE_NAME):$(IMAGE_TAG) (tag defaults to
# the version), building it first if missing. E.g. make image-push
# REGISTRY=host:port PUSH_FLAGS='--dest-tls-verify=false --dest-creds u:p'
image-push: deps-image
	@[ -n '$(REGISTRY)' ] || { echo 'image-push: REGISTRY is empty: make image-push REGISTRY=host:port' >&2; exit 2; }
	@[ -f build/image/berth.oci.tar ] || $(MAKE) image
	REGISTRY='$(REGISTRY)' IMAGE_NAME='$(IMAGE_NAME)' IMAGE_TAG='$(IMAGE_TAG)' \
	  PUSH_FLAGS='$(PUSH_FLAGS)' scripts/image.sh push

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
