# Builds the libFuzzer targets with clang (see build.sh, which runs this). Objects and
# binaries go to $(OUT); header dependencies are tracked with -MMD.
CXX := clang++-14
CC := clang-14
OUT ?= /tmp/gateway-fuzz
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/../..)
LLHTTP := /usr/share/llhttp

SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# The same defines as third_party/llhttp.BUILD and third_party/tomlplusplus.BUILD.
DEFS := -DLLHTTP_STRICT_MODE=1 -DTOML_EXCEPTIONS=0 -DTOML_HEADER_ONLY=1 \
        '-DTOML_ASSERT(expr)=static_assert(true)'
# toml++ from the fixed copy, as in Bazel (third_party/tomlplusplus_fix.py); -I comes
# before the system's /usr/include.
TOML_COPY := $(OUT)/include/toml++/toml.h
INCS := -I$(ROOT) -I/usr/share/include/llhttp -I$(OUT)/include
CXXFLAGS := -std=c++20 -g -O1 -Wall -Wextra $(SAN) -fsanitize=fuzzer-no-link $(DEFS) $(INCS) -MMD -MP
CFLAGS := -g -O1 -w $(SAN) -fsanitize=fuzzer-no-link $(DEFS) $(INCS) -MMD -MP
LIBS := -lre2 -luv -lhiredis -lssl -lcrypto -lpthread -ldl

# The project code the targets reach: the directories of the Bazel libraries they depend
# on, directly or not (//gateway/config pulls in observe; //filters pulls in redis). A
# missing one shows as an undefined reference at link time; .ci/run builds these, so it
# fails there first.
LIB_DIRS := gateway/core gateway/http gateway/route gateway/filter gateway/net gateway/tls \
            gateway/config gateway/observe gateway/redis filters
LIB_SRCS := $(foreach d,$(LIB_DIRS),$(shell cd $(ROOT) && find $(d) -name '*.cc'))
LIB_OBJS := $(patsubst %.cc,$(OUT)/obj/%.o,$(LIB_SRCS))
LLHTTP_OBJS := $(patsubst %,$(OUT)/obj/llhttp/%.o,api http llhttp)

# Objects built from another checkout (a clean clone sharing $(OUT)) name that
# checkout's sources in their .d files, which make would then look for: start over.
ROOT_STAMP := $(OUT)/obj/root
$(shell [ "$$(cat $(ROOT_STAMP) 2>/dev/null)" = "$(ROOT)" ] || \
        { rm -rf $(OUT)/obj; mkdir -p $(OUT)/obj; echo "$(ROOT)" > $(ROOT_STAMP); })
# Objects depend on the flags too: a changed define rebuilds everything.
FLAGS_STAMP := $(OUT)/obj/flags
$(shell mkdir -p $(OUT)/obj)
$(file >$(FLAGS_STAMP).new,$(CXX) $(CXXFLAGS) $(CC) $(CFLAGS))
$(shell cmp -s $(FLAGS_STAMP).new $(FLAGS_STAMP) || mv $(FLAGS_STAMP).new $(FLAGS_STAMP))

TARGETS := request_fuzzer response_fuzzer config_fuzzer jwt_fuzzer route_fuzzer

all: $(addprefix $(OUT)/,$(TARGETS))

$(TOML_COPY): $(ROOT)/third_party/tomlplusplus_fix.py
	python3 $< /usr/include/toml++ $(OUT)/include/toml++
	@touch $@

$(OUT)/obj/%.o: $(ROOT)/%.cc $(FLAGS_STAMP) $(TOML_COPY)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(OUT)/obj/llhttp/%.o: $(LLHTTP)/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# An archive, so each target links only the objects it needs.
$(OUT)/libgateway.a: $(LIB_OBJS) $(LLHTTP_OBJS)
	@rm -f $@
	llvm-ar-14 rcs $@ $^

$(OUT)/%: $(OUT)/obj/tests/fuzz/%.o $(OUT)/libgateway.a
	$(CXX) -fsanitize=fuzzer $(SAN) $< $(OUT)/libgateway.a $(LIBS) -o $@

.PHONY: all
.SECONDARY:
-include $(shell find $(OUT)/obj -name '*.d' 2>/dev/null)
