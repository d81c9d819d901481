# fuzz.mk - builds every fuzz/fuzz_*.c as a libFuzzer program (clang), run by fuzz/build.sh.
#   build/fuzz/obj/...        the library (src/*.c) and the server's modules (server/*.c but
#                             its main) with coverage, ASan and UBSan
#   build/fuzz/fuzz_NAME      one program per fuzz/fuzz_NAME.c
# A target links whatever of those it uses: the objects sit in archives.
CC = clang
B = build/fuzz
SAN = -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
CFLAGS = -std=gnu11 -O1 -g -fno-omit-frame-pointer -D_GNU_SOURCE -Iinclude -Isrc -Iserver \
	-pthread -Wall -Wno-unused-parameter $(SAN)
LIBS = -luring -lcrypto -lxxhash -lpthread -lm
HDRS := $(wildcard include/*.h src/*.h server/*.h)

LIB_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(wildcard src/*.c))
SRV_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
SRV_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(SRV_SRC))
TARGETS := $(patsubst fuzz/%.c,$(B)/%,$(wildcard fuzz/fuzz_*.c))

all: $(TARGETS)

$(B)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/libkvgrid-fuzz.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/libserver-fuzz.a: $(SRV_OBJ)
	rm -f $@ && ar rcs $@ $^ $(if $^,,$(B)/obj/empty.o)

# Rebuilt when a source joins or leaves its folder (the folder's time), not only when an
# object is newer: a module that moved must leave its old archive.
$(B)/libkvgrid-fuzz.a: private .EXTRA_PREREQS := src
$(B)/libserver-fuzz.a: private .EXTRA_PREREQS := server

$(B)/obj/empty.o:
	@mkdir -p $(dir $@)
	echo 'int kvg_fuzz_empty_archive;' | $(CC) -x c -c - -o $@

$(B)/fuzz_%: $(B)/obj/fuzz/fuzz_%.o $(B)/libserver-fuzz.a $(B)/libkvgrid-fuzz.a
	$(CC) -fsanitize=fuzzer,address,undefined -o $@ $< $(B)/libserver-fuzz.a \
		$(B)/libkvgrid-fuzz.a $(LIBS)

.PHONY: all
.SECONDARY:
