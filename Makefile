# vmmd — one non-recursive Makefile.
#
#   make            build everything into build/
#   make check      all tests (unit, KVM, system); installs missing packages as root
#   make demo       build, start a private vmmd, boot the demo guest
#   make bench      benchmarks side by side with QEMU
#   make install    PREFIX=/usr/local DESTDIR=
#   V=1 verbose, WERROR=0 to relax -Werror, BUILD=dir for another build dir.

BUILD   ?= build
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= gcc
WERROR  ?= 1
PYTHON  ?= /usr/bin/python3

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-7s %s\n' $(1) $(2)
endif

PKGS := json-c libseccomp
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# Debian's libev-dev ships no .pc file.
EV_LIBS    := $(shell pkg-config --libs libev 2>/dev/null || echo -lev)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)

# -Wno-format-truncation: human messages are cut at their buffer on purpose;
# paths, where truncation would be wrong, go through path_format(), which checks.
WARNINGS := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	    -Wpointer-arith -Wformat=2 -Wno-unused-parameter -Wno-format-truncation
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif

CFLAGS  ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(WARNINGS) -D_GNU_SOURCE -I. -MD -MP \
	      -fno-strict-aliasing $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS ?=
LIBS := $(PKG_LIBS) $(EV_LIBS) -lpthread

OBJDIR := $(BUILD)/obj

.PHONY: all check check-unit check-kvm check-system check-slow demo bench install \
	uninstall clean deps guests unit-tests kvm-tests FORCE
.DEFAULT_GOAL := all
# Keep objects that only a test binary needs.
.SECONDARY:

# ---------------------------------------------------------------- util/
UTIL_SRCS := util/log.c util/error.c util/base64.c util/thread.c util/time.c util/path.c util/fileio.c util/notify.c util/jsontext.c
UTIL_SRCS += util/crc32c.c

# ---------------------------------------------------------------- mmu/ (libc only)
MMU_SRCS := mmu/strbuf.c mmu/role.c mmu/context.c mmu/walk.c mmu/walk-format.c \
	    mmu/cpuid.c mmu/nested.c mmu/validate.c

# ---------------------------------------------------------------- api/
API_SRCS := api/errors.c api/frame.c api/jsonrpc.c api/schema.c api/conn.c \
	    api/client.c api/session.c

# ---------------------------------------------------------------- vcpu/
VCPU_SRCS := vcpu/vcpu.c vcpu/regs.c vcpu/reset.c vcpu/cpuid.c vcpu/state.c \
	     vcpu/state-check.c vcpu/state-format.c

# ---------------------------------------------------------------- vmmd/ data plane
# The VM worker: guest memory, devices, boot loaders (library "vm").
VM_SRCS := vmmd/worker/memory.c vmmd/worker/console.c vmmd/worker/vm.c \
	   vmmd/worker/worker.c vmmd/worker/inspect.c vmmd/worker/registers.c \
	   vmmd/worker/control.c vmmd/worker/state.c vmmd/vmdef.c \
	   vmmd/rundir.c
# Port-I/O device models: the bus and the devices on it.
VM_SRCS += vmmd/devices/iobus.c vmmd/devices/serial.c vmmd/devices/debug-exit.c
# Boot loaders.
VM_SRCS += vmmd/boot/boot.c vmmd/boot/elf.c vmmd/boot/multiboot.c vmmd/boot/flat.c

# ---------------------------------------------------------------- vmmd/ control plane
VMMD_SRCS := vmmd/main.c vmmd/daemon.c vmmd/client.c vmmd/registry.c \
	     vmmd/supervisor.c vmmd/methods.c vmmd/store.c vmmd/listen.c vmmd/limits.c \
	     vmmd/reattach.c

# ---------------------------------------------------------------- cli/
VMCTL_SRCS := cli/vmctl.c cli/commands.c cli/console.c cli/run.c cli/private.c cli/events.c cli/inspect.c \
	      cli/vcpu.c cli/state.c

# ---------------------------------------------------------------- libraries
lib = $(BUILD)/lib/lib$(1).a
objs = $(patsubst %.c,$(OBJDIR)/%.o,$(1))

LIB_UTIL := $(call lib,util)
LIB_MMU  := $(call lib,mmu)
LIB_API  := $(call lib,api)
LIB_VCPU := $(call lib,vcpu)
LIB_VM   := $(call lib,vm)

$(LIB_UTIL): $(call objs,$(UTIL_SRCS))
$(LIB_MMU):  $(call objs,$(MMU_SRCS))
$(LIB_API):  $(call objs,$(API_SRCS))
$(LIB_VCPU): $(call objs,$(VCPU_SRCS))
$(LIB_VM):   $(call objs,$(VM_SRCS))

# Link order: dependents before dependencies.
ALL_LIBS := $(LIB_VM) $(LIB_API) $(LIB_VCPU) $(LIB_MMU) $(LIB_UTIL)

$(BUILD)/lib/%.a:
	$(call msg,AR,$@)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OBJDIR)/%.o: %.c
	$(call msg,CC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(OBJDIR)/%.o: %.S
	$(call msg,AS,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

# ---------------------------------------------------------------- programs
PROGRAMS := $(BUILD)/vmmd $(BUILD)/vmctl

$(BUILD)/vmctl: $(call objs,$(VMCTL_SRCS)) $(LIB_API) $(LIB_UTIL)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(call objs,$(VMCTL_SRCS)) $(LIB_API) $(LIB_UTIL) $(LIBS)

$(BUILD)/vmmd: $(call objs,$(VMMD_SRCS)) $(ALL_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(call objs,$(VMMD_SRCS)) $(ALL_LIBS) $(LIBS)

# ---------------------------------------------------------------- benchmarks
BENCHES := $(BUILD)/bench/mmu $(BUILD)/bench/api-load

$(BUILD)/bench/api-load: $(OBJDIR)/bench/api-load.o
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^

$(BUILD)/bench/mmu: $(OBJDIR)/bench/mmu.o $(LIB_MMU)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^

all: $(PROGRAMS) $(BENCHES) guests

# ---------------------------------------------------------------- guests
# Freestanding test kernels, built from source in tests/guests/ into
# build/guests/ (tests/guests/README.md).
GUEST_SRC := tests/guests
GUEST_OUT := $(BUILD)/guests
GUEST_OBJ := $(OBJDIR)/guests
GUEST_FLAGS := -ffreestanding -fno-builtin -nostdlib -fno-pic -fno-pie \
	       -fno-stack-protector -fno-asynchronous-unwind-tables -O2 \
	       -std=gnu11 $(WARNINGS) -I$(GUEST_SRC) -I$(GUEST_SRC)/lib -MD -MP
GUEST_FLAGS32 := -m32 -march=i686 -mgeneral-regs-only $(GUEST_FLAGS)
# Ring-0 code stays off SSE so system calls need not save vector state.
GUEST_ARCH64 := -mgeneral-regs-only
GUEST_FLAGS64 = -m64 -mno-red-zone $(GUEST_ARCH64) $(GUEST_FLAGS)
GUEST_LDFLAGS := -nostdlib --build-id=none -z max-page-size=0x1000 -z noexecstack

GUEST_LIB32 := $(addprefix $(GUEST_OBJ)/32/lib/,entry32.o start32.o serial.o \
	       print.o string.o boot.o)
GUEST_MB32 := $(GUEST_OBJ)/32/lib/multiboot-header.o

GUEST_LIB64 := $(addprefix $(GUEST_OBJ)/64/lib/,serial.o print.o string.o boot.o)
DEMO_OBJS := $(addprefix $(GUEST_OBJ)/64/demo/,entry.o kernel.o tsc.o console.o user.o)

GUESTS := $(addprefix $(GUEST_OUT)/,hello.elf hello-pvh.elf bootinfo.elf \
	  bootinfo-pvh.elf triple-fault.elf echo.elf hello-flat.bin hello-flat.mb \
	  demo64.elf demo.elf demo-pvh.elf counter.elf paging.elf bootcount.elf)
GUESTS += $(GUEST_OUT)/smp.elf $(GUEST_OUT)/cpustate.elf $(GUEST_OUT)/xrstor.elf \
	  $(GUEST_OUT)/unhandled.elf
guests: $(GUESTS)

# $(call guest_cc,32|64) and $(call guest_ld,EMULATION,SCRIPT[,FLAGS]): recipes.
define guest_cc
	$(call msg,CC$(1),$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(GUEST_FLAGS$(1)) -c $< -o $@
endef

define guest_ld
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)ld -m $(1) $(GUEST_LDFLAGS) $(3) -T $(2) -o $@ $(filter %.o,$^)
endef

$(GUEST_OBJ)/32/%.o: $(GUEST_SRC)/%.c
	$(call guest_cc,32)
$(GUEST_OBJ)/32/%.o: $(GUEST_SRC)/%.S
	$(call guest_cc,32)
$(GUEST_OBJ)/64/%.o: $(GUEST_SRC)/%.c
	$(call guest_cc,64)
$(GUEST_OBJ)/64/%.o: $(GUEST_SRC)/%.S
	$(call guest_cc,64)

# The demo's ring-3 computation uses SSE (no AVX: XSAVE state is not enabled).
$(GUEST_OBJ)/64/demo/user.o: GUEST_ARCH64 := -msse2 -mno-avx -mfpmath=sse

# Multiboot + PVH ELF: tests/guests/NAME.c on the 32-bit library.
$(GUEST_OUT)/%.elf: $(GUEST_MB32) $(GUEST_LIB32) $(GUEST_OBJ)/32/%.o $(GUEST_SRC)/lib/guest32.ld
	$(call guest_ld,elf_i386,$(GUEST_SRC)/lib/guest32.ld)

# NAME-pvh.elf: without the multiboot header, so QEMU takes the PVH entry.
$(GUEST_OUT)/%-pvh.elf: $(GUEST_LIB32) $(GUEST_OBJ)/32/%.o $(GUEST_SRC)/lib/guest32.ld
	$(call guest_ld,elf_i386,$(GUEST_SRC)/lib/guest32.ld)

# One segment holds code and data, so it is writable and executable.
$(GUEST_OBJ)/hello-flat.elf: $(GUEST_LIB32) $(GUEST_OBJ)/32/hello.o $(GUEST_SRC)/lib/flat.ld
	$(call guest_ld,elf_i386,$(GUEST_SRC)/lib/flat.ld,--no-warn-rwx-segments)

$(GUEST_OUT)/hello-flat.bin: $(GUEST_OBJ)/hello-flat.elf
	$(call msg,OBJCOPY,$@)
	@mkdir -p $(dir $@)
	$(Q)objcopy -O binary $< $@

# hello-flat.bin with a multiboot a.out-kludge header, for QEMU; the header
# must end within the first 8192 bytes (32 bytes + up to 3 of padding).
$(GUEST_OUT)/hello-flat.mb: $(GUEST_SRC)/flat-in-multiboot.S $(GUEST_OUT)/hello-flat.bin
	$(call msg,AS,$@)
	$(Q)test $$(stat -c %s $(GUEST_OUT)/hello-flat.bin) -le 8157 || \
		{ echo "hello-flat.bin is too large for hello-flat.mb" >&2; exit 1; }
	$(Q)$(CC) -m32 -c -DFLAT_BIN='"$(GUEST_OUT)/hello-flat.bin"' $< -o $(GUEST_OBJ)/hello-flat-mb.o
	$(Q)objcopy -O binary -j .text $(GUEST_OBJ)/hello-flat-mb.o $@

$(GUEST_OUT)/demo64.elf: $(GUEST_OBJ)/64/lib/multiboot-header.o $(DEMO_OBJS) $(GUEST_LIB64) \
		$(GUEST_SRC)/demo/demo.ld
	$(call guest_ld,elf_x86_64,$(GUEST_SRC)/demo/demo.ld)

$(GUEST_OUT)/demo-pvh.elf: $(DEMO_OBJS) $(GUEST_LIB64) $(GUEST_SRC)/demo/demo.ld
	$(call guest_ld,elf_x86_64,$(GUEST_SRC)/demo/demo.ld)

# cpustate: its own ring 0 and ring 3 on the demo's long-mode entry and layout.
CPUSTATE_OBJS := $(GUEST_OBJ)/64/demo/entry.o \
		 $(addprefix $(GUEST_OBJ)/64/cpustate/,kernel.o user.o)

$(GUEST_OUT)/cpustate.elf: $(GUEST_OBJ)/64/lib/multiboot-header.o $(CPUSTATE_OBJS) \
		$(GUEST_LIB64) $(GUEST_SRC)/demo/demo.ld
	$(call guest_ld,elf_x86_64,$(GUEST_SRC)/demo/demo.ld)

# ELF32 container, same bytes and addresses: QEMU's multiboot refuses ELF64.
$(GUEST_OUT)/demo.elf: $(GUEST_OUT)/demo64.elf
	$(call msg,OBJCOPY,$@)
	$(Q)objcopy -O elf32-i386 $< $@

# ---------------------------------------------------------------- tests
UNIT_TESTS := $(BUILD)/tests/unit/test-util $(BUILD)/tests/unit/test-api-frame \
	      $(BUILD)/tests/unit/test-api-jsonrpc $(BUILD)/tests/unit/test-api-client \
	      $(BUILD)/tests/unit/test-api-conn
UNIT_TESTS += $(BUILD)/tests/unit/test-iobus $(BUILD)/tests/unit/test-serial \
	      $(BUILD)/tests/unit/test-debug-exit
UNIT_TESTS += $(BUILD)/tests/unit/test-boot $(BUILD)/tests/unit/test-boot-file
UNIT_TESTS += $(BUILD)/tests/unit/test-boot-guests $(BUILD)/tests/unit/test-paths \
	      $(BUILD)/tests/unit/test-jsontext
UNIT_TESTS += $(BUILD)/tests/unit/test-mmu-walk $(BUILD)/tests/unit/test-mmu-role \
	      $(BUILD)/tests/unit/test-mmu-nested $(BUILD)/tests/unit/test-mmu-cpuid \
	      $(BUILD)/tests/unit/test-mmu-validate $(BUILD)/tests/unit/test-mmu-property
UNIT_TESTS += $(BUILD)/tests/unit/test-vcpu-reset $(BUILD)/tests/unit/test-vcpu-cpuid \
	      $(BUILD)/tests/unit/test-vcpu-state $(BUILD)/tests/unit/test-vcpu-role
unit-tests: $(UNIT_TESTS)

# The loaders against the guests this build produced.
$(OBJDIR)/tests/unit/test-boot-guests.o: ALL_CFLAGS += -DGUEST_DIR='"$(abspath $(GUEST_OUT))"'
$(BUILD)/tests/unit/test-boot-guests: | $(GUESTS)

$(BUILD)/tests/unit/%: $(OBJDIR)/tests/unit/%.o $(ALL_LIBS)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(ALL_LIBS) $(CMOCKA_LIBS) $(LIBS)

# KVM tier: programs on real /dev/kvm with tiny guests (tests/kvm/kvm-test.h);
# each skips visibly (exit 77) without /dev/kvm.
KVM_TEST_LIB := $(OBJDIR)/tests/kvm/kvm-test.o $(OBJDIR)/tests/kvm/guests.o
KVM_TESTS := $(BUILD)/tests/kvm/test-kvm-vcpu $(BUILD)/tests/kvm/test-kvm-reset \
	     $(BUILD)/tests/kvm/test-kvm-cpuid $(BUILD)/tests/kvm/test-kvm-state \
	     $(BUILD)/tests/kvm/test-kvm-role
# The differential test of mmu/ against KVM (docs/mmu.md §14), linked below.
MMU_DIFF_TEST := $(BUILD)/tests/kvm/test-kvm-mmu-diff
KVM_TESTS += $(MMU_DIFF_TEST)
kvm-tests: $(KVM_TESTS)

$(BUILD)/tests/kvm/%: $(OBJDIR)/tests/kvm/%.o $(KVM_TEST_LIB) $(ALL_LIBS)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(KVM_TEST_LIB) $(ALL_LIBS) $(CMOCKA_LIBS) $(LIBS)

# The differential test is one program of several objects, without cmocka:
# a seeded run of cases with its own summary. check-kvm-mmu runs it alone.
MMU_DIFF_OBJS := $(addprefix $(OBJDIR)/tests/kvm/,test-kvm-mmu-diff.o mmu-diff-case.o \
		 mmu-diff-vm.o mmu-diff-host.o mmu-diff-compare.o mmu-diff-stats.o \
		 mmu-diff-sregs.o mmu-diff-guest.o)

$(MMU_DIFF_TEST): $(MMU_DIFF_OBJS) $(ALL_LIBS)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(MMU_DIFF_OBJS) $(ALL_LIBS) $(LIBS)

.PHONY: check-kvm-mmu
check-kvm-mmu: $(MMU_DIFF_TEST)
	$(Q)scripts/run-kvm-tests.sh $(MMU_DIFF_TEST)

deps:
	$(Q)scripts/install-deps.sh --ensure

check: deps
	$(Q)$(MAKE) --no-print-directory all unit-tests kvm-tests
	$(Q)$(MAKE) --no-print-directory check-unit check-kvm check-system

check-unit: unit-tests
	$(Q)scripts/run-unit-tests.sh $(UNIT_TESTS)

check-kvm: kvm-tests
	$(Q)scripts/run-kvm-tests.sh $(KVM_TESTS)

# The system tests to run (a file or directory); -rs prints every skip's reason.
SYSTEM_TESTS ?= tests/system

check-system: all
	$(Q)VMMD_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -rs $(SYSTEM_TESTS)

check-slow: deps
	$(Q)$(MAKE) --no-print-directory all unit-tests kvm-tests
	$(Q)VMMD_SLOW=1 scripts/run-kvm-tests.sh $(KVM_TESTS)
	$(Q)VMMD_BUILD=$(abspath $(BUILD)) VMMD_SLOW=1 $(PYTHON) -m pytest -q -rs $(SYSTEM_TESTS)

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh $(BUILD)

bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/run-bench.sh $(BUILD)

# ---------------------------------------------------------------- install
BINDIR      := $(PREFIX)/bin
SBINDIR     := $(PREFIX)/sbin
DOCDIR      := $(PREFIX)/share/doc/vmmd
UNITDIR     := $(PREFIX)/lib/systemd/system
SYSUSERSDIR := $(PREFIX)/lib/sysusers.d
TMPFILESDIR := $(PREFIX)/lib/tmpfiles.d
DOCS        := README.md $(wildcard docs/*.md)

# The service unit names the installed binary, so it is rendered again when
# the install paths change: the stamp holds them and is rewritten only then.
UNIT_PATHS := SBINDIR=$(SBINDIR) DOCDIR=$(DOCDIR)
$(BUILD)/systemd/paths: FORCE
	@mkdir -p $(dir $@)
	$(Q)echo '$(UNIT_PATHS)' | cmp -s - $@ || echo '$(UNIT_PATHS)' > $@

$(BUILD)/systemd/vmmd.service: systemd/vmmd.service.in $(BUILD)/systemd/paths
	$(call msg,GEN,$@)
	@mkdir -p $(dir $@)
	$(Q)sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' $< > $@

install: all $(BUILD)/systemd/vmmd.service
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	install -m 0755 $(BUILD)/vmmd $(DESTDIR)$(SBINDIR)/vmmd
	install -m 0755 $(BUILD)/vmctl $(DESTDIR)$(BINDIR)/vmctl
	install -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	install -m 0644 $(BUILD)/systemd/vmmd.service systemd/vmmd.socket \
		systemd/vmmd-ro.socket $(DESTDIR)$(UNITDIR)/
	install -m 0644 systemd/vmmd.sysusers $(DESTDIR)$(SYSUSERSDIR)/vmmd.conf
	install -m 0644 systemd/vmmd.tmpfiles $(DESTDIR)$(TMPFILESDIR)/vmmd.conf

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/vmmd $(DESTDIR)$(BINDIR)/vmctl
	rm -f $(DESTDIR)$(UNITDIR)/vmmd.service $(DESTDIR)$(UNITDIR)/vmmd.socket \
		$(DESTDIR)$(UNITDIR)/vmmd-ro.socket
	rm -f $(DESTDIR)$(SYSUSERSDIR)/vmmd.conf $(DESTDIR)$(TMPFILESDIR)/vmmd.conf
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf $(BUILD)

FORCE:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
