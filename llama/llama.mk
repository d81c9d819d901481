# llama.cpp on the grid (doc/LLAMA.md), included by the top Makefile.
#   llama/fetch.sh          -> $(BUILD)/llama.cpp: the pinned prebuilt llama.cpp (npm) and its headers
#   llama/kvgl*.c           -> $(BUILD)/libkvgrid-llama.a and .so (the adapter, include/kvgrid_llama.h)
#   llama/cmd_*.c, main.c   -> $(BUILD)/kvgrid-llama (mkmodel, bench, demo)
#   tests/llama_*.c         -> $(BUILD)/llama/tests/llama_* (run by tests/test_llama_*.sh)
# libkvgrid itself gains no dependency.  Without npm or the registry the fetch leaves a
# one-line reason in $(BUILD)/llama.cpp/unavailable, the rest of the build goes on, and the
# llama tests and demo part skip with that reason.  Under sanitizers (make test's ASan+UBSan
# and TSan builds) only the adapter and its C test are built, against the plain build's
# fetch: libllama itself is not instrumented, the adapter's parsing and threads are.

LLAMA_DEP := $(if $(SAN),build/llama.cpp,$(BUILD)/llama.cpp)
LLAMA_BINS := $(LLAMA_DEP)/bins
LLAMA_TEST_RPATH := $(if $(SAN),$(abspath $(LLAMA_BINS)),$$ORIGIN/../../llama.cpp/bins)
LLAMA_LINK := $(LLAMA_BINS)/libllama.v0.4.0.so $(LLAMA_BINS)/libggml.v0.4.0.so \
	$(LLAMA_BINS)/libggml-base.so
KVGL_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard llama/kvgl*.c))
KVGL_CMD_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard llama/cmd_*.c llama/main.c))
KVGL_TEST_BIN := $(patsubst tests/%.c,$(BUILD)/llama/tests/%,$(wildcard tests/llama_*.c))
KVGL_SO := $(BUILD)/libkvgrid-llama.so

$(BUILD)/llama/%.o $(BUILD)/tests/llama_%.o: CFLAGS += -I$(LLAMA_DEP)/include
$(KVGL_OBJ) $(KVGL_CMD_OBJ) $(KVGL_TEST_BIN:$(BUILD)/llama/tests/%=$(BUILD)/tests/%.o): \
	include/kvgrid_llama.h $(wildcard llama/*.h)
# llama.cpp's tag and commit, as fetched: part of every key's namespace
$(BUILD)/llama/kvgl.o: CFLAGS += -DKVGL_LLAMA_VERSION='"$(shell cut -c1-19 $(LLAMA_DEP)/ok 2>/dev/null)"'
$(BUILD)/llama/kvgl.o: $(LLAMA_DEP)/ok

# Fetches (or says why it cannot), then builds the llama parts only if the fetch worked.
llama: $(DEPS_OK) $(BUILD)/libkvgrid.a $(BUILD)/libkvgrid.so
	@sh llama/fetch.sh $(LLAMA_DEP)
	@if [ -f $(LLAMA_DEP)/ok ]; then $(MAKE) --no-print-directory llama-build; \
	else echo "llama: skipped: $$(cat $(LLAMA_DEP)/unavailable)"; fi

llama-build: $(BUILD)/libkvgrid-llama.a $(KVGL_SO) $(BUILD)/kvgrid-llama $(KVGL_TEST_BIN)

# The sanitizer builds: the C tests only, if the plain build fetched llama.cpp.
llama-san: $(BUILD)/libkvgrid.a
	@if [ -f $(LLAMA_DEP)/ok ]; then $(MAKE) --no-print-directory $(KVGL_TEST_BIN); fi

$(BUILD)/libkvgrid-llama.a: $(KVGL_OBJ)
	rm -f $@ && ar rcs $@ $^

# The .so finds libkvgrid.so beside it and llama.cpp's libraries in llama.cpp/bins.
$(KVGL_SO): $(KVGL_OBJ) $(BUILD)/libkvgrid.so
	$(CC) -shared -Wl,-soname,libkvgrid-llama.so -Wl,-z,defs $(LDFLAGS) -o $@ $(KVGL_OBJ) \
		-L$(BUILD) -lkvgrid $(LLAMA_LINK) -lxxhash -lpthread \
		-Wl,-rpath,'$$ORIGIN' -Wl,-rpath,'$$ORIGIN/llama.cpp/bins'

$(BUILD)/kvgrid-llama: $(KVGL_CMD_OBJ) $(BUILD)/libkvgrid-llama.a $(BUILD)/libkvgrid.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LLAMA_LINK) $(LIBS) -Wl,-rpath,'$$ORIGIN/llama.cpp/bins'

$(BUILD)/llama/tests/%: $(BUILD)/tests/%.o $(BUILD)/llama/cmd_common.o $(BUILD)/libkvgrid-llama.a \
		$(BUILD)/libkvgrid.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LLAMA_LINK) $(LIBS) -Wl,-rpath,'$(LLAMA_TEST_RPATH)'

.PHONY: llama llama-build llama-san
