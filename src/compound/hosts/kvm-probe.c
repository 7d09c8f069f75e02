/* kvm-probe: does a KVM vCPU really run guest code on this machine?
 *
 * An existing /dev/kvm proves nothing: nested KVM can hang in the first
 * vCPU run, or refuse what QEMU's `-cpu host` sets up (on the machine this
 * was written on, QEMU aborts: "failed to set MSR 0x10a"). So the vCPU is
 * set up as `-cpu host` does it -- every CPUID leaf KVM supports, then
 * every feature MSR at the value KVM reports -- and then it runs one page
 * of real-mode code (out 0xf1, al=0x2a; hlt): the port write, then the
 * halt, must come back. SIGALRM after the deadline breaks a vCPU that
 * never returns. Static, so it runs on any x86-64 host with
 * nothing installed; compound pipes it over SSH (compound.hosts.kvmprobe).
 *
 * Prints one line: "kvm=1 <microseconds>" or "kvm=0 <reason>"; exit 0 both.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void on_alarm(int sig) { (void)sig; }

static int fail(const char *what) {
    printf("kvm=0 %s: %s\n", what, strerror(errno));
    return 0;
}

int main(int argc, char **argv) {
    int deadline = argc > 1 ? atoi(argv[1]) : 5;
    const uint8_t code[] = {0xb0, 0x2a, 0xe6, 0xf1, 0xf4}; /* mov al,42; out 0xf1,al; hlt */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) return fail("open /dev/kvm");
    if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) return fail("KVM API version");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) return fail("KVM_CREATE_VM");
    uint8_t *mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return fail("mmap guest memory");
    memcpy(mem, code, sizeof code);
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0x1000, .memory_size = 0x1000,
        .userspace_addr = (uint64_t)(uintptr_t)mem,
    };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) return fail("KVM_SET_USER_MEMORY_REGION");
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) return fail("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size <= 0) return fail("KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) return fail("mmap kvm_run");

    /* CPUID as -cpu host: all KVM supports */
    int nent = 256;
    struct kvm_cpuid2 *cpuid = calloc(1, sizeof *cpuid + nent * sizeof(struct kvm_cpuid_entry2));
    cpuid->nent = (uint32_t)nent;
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) return fail("KVM_GET_SUPPORTED_CPUID");
    if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0) return fail("KVM_SET_CPUID2");

    /* feature MSRs (e.g. ARCH_CAPABILITIES) at the values KVM offers */
    struct kvm_msr_list probe_list = {.nmsrs = 0};
    if (ioctl(kvm, KVM_GET_MSR_FEATURE_INDEX_LIST, &probe_list) < 0 && errno != E2BIG)
        return fail("KVM_GET_MSR_FEATURE_INDEX_LIST");
    uint32_t n = probe_list.nmsrs;
    struct kvm_msr_list *list = calloc(1, sizeof *list + n * sizeof(uint32_t));
    list->nmsrs = n;
    if (n && ioctl(kvm, KVM_GET_MSR_FEATURE_INDEX_LIST, list) < 0)
        return fail("KVM_GET_MSR_FEATURE_INDEX_LIST");
    for (uint32_t i = 0; i < n; i++) {
        struct {
            struct kvm_msrs hdr;
            struct kvm_msr_entry entry;
        } one = {.hdr = {.nmsrs = 1}, .entry = {.index = list->indices[i]}};
        if (ioctl(kvm, KVM_GET_MSRS, &one) != 1) continue; /* not offered: QEMU skips it */
        /* QEMU sets ARCH_CAPABILITIES only when CPUID offers it; KVM checks */
        if (ioctl(vcpu, KVM_SET_MSRS, &one) != 1) {
            printf("kvm=0 the vCPU refuses feature MSR 0x%x = 0x%llx (QEMU -cpu host aborts the same way)\n",
                   one.entry.index, (unsigned long long)one.entry.data);
            return 0;
        }
    }

    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) return fail("KVM_GET_SREGS");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) return fail("KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = 0x1000, .rflags = 0x2};
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) return fail("KVM_SET_REGS");

    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    alarm((unsigned)deadline);
    int saw_out = 0;
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR) {
                printf("kvm=0 the vCPU did not come back within %ds (nested KVM hangs look like this)\n",
                       deadline);
                return 0;
            }
            return fail("KVM_RUN");
        }
        if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0xf1 &&
            run->io.direction == KVM_EXIT_IO_OUT &&
            ((uint8_t *)run)[run->io.data_offset] == 0x2a) {
            saw_out = 1;
            continue;
        }
        if (run->exit_reason == KVM_EXIT_HLT && saw_out) break;
        printf("kvm=0 unexpected vCPU exit %u\n", run->exit_reason);
        return 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
    printf("kvm=1 %ld\n", us);
    return 0;
}
