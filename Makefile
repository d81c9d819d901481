# kvgrid build.  `make` builds the library, the CLI, the server and the reference engine;
# `make test` runs every test (then again under ASan+UBSan, and the threaded ones under TSan);
# `make demo` runs the main job on an embedded default.  Sources are found by directory:
#   src/*.c     -> build/libkvgrid.a, build/libkvgrid.so.MAJOR.MINOR.PATCH (the embedded
#                  grid only; SONAME libkvgrid.so.MAJOR, with the libkvgrid.so.MAJOR and
#                  libkvgrid.so links); the .so exports only include/kvgrid.h's KVG_API
#                  functions, with the symbol versions of src/libkvgrid.map
#   tools/*.c   -> build/libkvgrid-tools.a (trace, simulator, replay, cost model), linked
#                  by the CLI and the tests; not part of libkvgrid
#   cli/*.c     -> build/kvgrid          server/*.c -> build/kvgridd
#   server/proto_*.c (RESP and lm:// codecs) -> also build/libkvgridd-proto.a, for the tests
#   engine/*.c  -> build/kvgrid-llm (engine/main.c holds main; the rest is the engine library)
#   tests/test_*.c -> build/tests/test_*  (test_engine_*.c also link the engine library)
#   bench/*.c   -> build/bench/*          fuzz/fuzz_*.c -> build/fuzz/fuzz_* (clang)
#   llama/      -> build/libkvgrid-llama.{a,so}, build/kvgrid-llama: llama.cpp on the grid,
#                  against a pinned prebuilt llama.cpp fetched with npm (llama/llama.mk)

CC ?= cc
BUILD ?= build
PREFIX ?= /usr/local
SAN ?=
OPT ?= -O2
CFLAGS_BASE = -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -fPIC -fvisibility=hidden -D_GNU_SOURCE -Iinclude -Isrc \
	-pthread
# gcc's snprintf truncation warnings depend on the optimisation level; our truncation is
# deliberate (error messages, bounded paths).  clang has no such warning.
ifeq ($(findstring clang,$(CC)),)
CFLAGS_BASE += -Wno-format-truncation
endif
ifneq ($(SAN),)
CFLAGS_BASE += -fsanitize=$(SAN) -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SAN)
endif
CFLAGS += $(CFLAGS_BASE)
LIBS = -luring -lcrypto -lxxhash -lpthread -lm
BLAS_CFLAGS = -I/usr/include/x86_64-linux-gnu/openblas-pthread
BLAS_LIBS = -L/usr/lib/x86_64-linux-gnu/openblas-pthread -lopenblas

# The version is the header's (KVG_VERSION_*); MAJOR is the ABI version and the SONAME's.
VERSION_PART = $(shell sed -n 's/^\#define KVG_VERSION_$(1)[[:space:]]*\([0-9]*\).*/\1/p' include/kvgrid.h)
VERSION_MAJOR := $(call VERSION_PART,MAJOR)
VERSION := $(VERSION_MAJOR).$(call VERSION_PART,MINOR).$(call VERSION_PART,PATCH)
SONAME := libkvgrid.so.$(VERSION_MAJOR)
ifeq ($(VERSION_MAJOR),)
$(error include/kvgrid.h: no '#define KVG_VERSION_MAJOR N' line found)
endif
LIB_SO := $(BUILD)/libkvgrid.so.$(VERSION)
LIB_MAP := src/libkvgrid.map
# -z defs: a missing library is a link error, not a load error (sanitizer runtimes are
# resolved from the program, so not under SAN)
SO_LDFLAGS = -shared -Wl,-soname,$(SONAME) -Wl,--version-script,$(LIB_MAP) \
	$(if $(SAN),,-Wl,-z,defs)

LIB_SRC := $(wildcard src/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOLS_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/*.c))
CLI_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cli/*.c))
SRV_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard server/*.c))
SRV_PROTO_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard server/proto_*.c))
ENG_LIB_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(filter-out engine/main.c,$(wildcard engine/*.c)))
ENG_MAIN_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard engine/main.c))
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
DEPS_OK := $(BUILD)/.deps-ok

all: $(DEPS_OK) $(BUILD)/libkvgrid.a $(BUILD)/libkvgrid.so $(BUILD)/kvgrid \
	$(if $(SRV_OBJ),$(BUILD)/kvgridd) $(if $(ENG_MAIN_OBJ),$(BUILD)/kvgrid-llm) \
	$(if $(SAN),llama-san,llama)

$(DEPS_OK): scripts/deps.sh
	@sh scripts/deps.sh
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/%.o: %.c $(DEPS_OK) $(filter-out include/kvgrid_llama.h,$(wildcard include/*.h)) \
		$(wildcard src/*.h tools/*.h cli/*.h server/*.h engine/*.h bench/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(if $(filter engine/% tests/test_engine% bench/%,$<),$(BLAS_CFLAGS)) -c $< -o $@

$(BUILD)/libkvgrid.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(LIB_SO): $(LIB_OBJ) $(LIB_MAP)
	$(CC) $(SO_LDFLAGS) $(LDFLAGS) -o $@ $(LIB_OBJ) $(LIBS)

$(BUILD)/$(SONAME): $(LIB_SO)
	ln -sf $(notdir $<) $@

$(BUILD)/libkvgrid.so: $(BUILD)/$(SONAME)
	ln -sf $(notdir $<) $@

# An archive goes stale when a source leaves its folder, though no object is newer; the
# folder's own time (it changes when a file is added, removed or renamed) is a prerequisite.
$(BUILD)/libkvgrid.a $(LIB_SO): private .EXTRA_PREREQS := src
$(BUILD)/libkvgrid-tools.a: private .EXTRA_PREREQS := tools

# The library sees include/ and src/ only, so it cannot grow a dependency on tools/ or server/.
$(BUILD)/cli/%.o $(BUILD)/tests/%.o: CFLAGS += -Itools
$(BUILD)/tests/%.o: CFLAGS += -Iserver

$(BUILD)/libkvgrid-tools.a: $(TOOLS_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/kvgrid: $(CLI_OBJ) $(BUILD)/libkvgrid-tools.a $(BUILD)/libkvgrid.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/libkvgridd-proto.a: $(SRV_PROTO_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/kvgridd: $(SRV_OBJ) $(BUILD)/libkvgrid.a
	$(CC) $(LDFLAGS) -o $@ $(SRV_OBJ) $(BUILD)/libkvgrid.a $(LIBS)

$(BUILD)/kvgrid-llm: $(ENG_MAIN_OBJ) $(ENG_LIB_OBJ) $(BUILD)/libkvgrid.a
	$(CC) $(LDFLAGS) -o $@ $^ $(BLAS_LIBS) $(LIBS)

$(BUILD)/tests/test_engine%: $(BUILD)/tests/test_engine%.o $(ENG_LIB_OBJ) $(BUILD)/libkvgrid.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(BLAS_LIBS) $(LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/libkvgrid-tools.a $(BUILD)/libkvgridd-proto.a \
		$(BUILD)/libkvgrid.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libkvgrid.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(BLAS_LIBS) $(LIBS)

include llama/llama.mk

# tests/faultfs.c: a FUSE filesystem that injects faults (tests/test_shared_eio.sh), built
# where libfuse3 is (scripts/deps.sh test installs it); the tests that need it skip without.
FAULTFS := $(if $(shell pkg-config --exists fuse3 2>/dev/null && echo y),$(BUILD)/tests/faultfs)

$(BUILD)/tests/faultfs: tests/faultfs.c $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags fuse3 2>/dev/null) -o $@ $< $(LDFLAGS) \
		$(shell pkg-config --libs fuse3 2>/dev/null)

tests: all $(TEST_BIN) $(FAULTFS)
benches: all $(BENCH_BIN)

# The whole suite: plain build, then ASan+UBSan, then TSan on the threaded tests.
test: $(DEPS_OK)
	@sh scripts/deps.sh test
	@$(MAKE) --no-print-directory tests
	@$(MAKE) --no-print-directory tests BUILD=build/asan SAN=address,undefined OPT=-O1
	@$(MAKE) --no-print-directory tests BUILD=build/tsan SAN=thread OPT=-O1 CC=clang
	@sh tests/run.sh

demo: all
	@sh scripts/demo.sh

# Records the ABI of the plain build as the baseline tests/test_abi.sh compares against
# (tests/abi/, see scripts/abi.sh).  Run it for a deliberate change of the ABI, and commit
# tests/abi/ with that change.
abi-baseline: all
	@sh scripts/abi.sh baseline

bench: benches
	@sh scripts/deps.sh bench
	@sh bench/run.sh

crash-test: all
	@sh tests/crash.sh 200
	@CRASH_SHARED=1 sh tests/crash.sh 100

fuzz: all
	@sh scripts/deps.sh test
	@sh fuzz/run.sh 60

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/kvgrid.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/libkvgrid.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(notdir $(LIB_SO)) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libkvgrid.so
	install -m 755 $(BUILD)/kvgrid $(DESTDIR)$(PREFIX)/bin/
	for b in kvgridd kvgrid-llm; do [ ! -f $(BUILD)/$$b ] || \
		install -m 755 $(BUILD)/$$b $(DESTDIR)$(PREFIX)/bin/; done
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' kvgrid.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/kvgrid.pc

# Rewrites every C file to .clang-format (tests/test_format.sh checks it).
format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf build

.PHONY: all tests benches test demo abi-baseline bench crash-test fuzz install clean format
.SECONDARY:
