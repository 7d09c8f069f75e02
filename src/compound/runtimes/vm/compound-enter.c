/* compound-enter: start a service process in the guest the way a container
 * runtime starts one in a container.
 *
 *   compound-enter ROOT WORKDIR UID GID CAPS NNP RLIMITS -- PROG [ARG...]
 *
 *   ROOT     the service's root filesystem (/newroot): chroot into it
 *   WORKDIR  chdir to it *after* the chroot, so ".." and symlinks resolve
 *            inside the root and can never leave it (exec -w /../..)
 *   UID GID  numeric; supplementary groups are set to GID alone
 *   CAPS     hex mask of the capabilities the process may hold (its bounding
 *            set and permitted/effective/inheritable sets), or "all"
 *   NNP      1: no_new_privs (security_opt no-new-privileges)
 *   RLIMITS  "RES:SOFT:HARD,..." (RES a RLIMIT_* number, -1 = unlimited),
 *            or "-" for none
 *   PROG     looked up in PATH inside the root, as execvp does
 *
 * busybox nsenter cannot do it: it changes directory before the chroot and
 * cannot shrink the bounding set. Built static at initramfs build time
 * (initramfs.py) from this file; exit 126 when it cannot set the process up,
 * 127 when PROG is not found, as a container runtime reports them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fail(const char *what, const char *arg) {
    fprintf(stderr, "compound-enter: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "",
            strerror(errno));
    return 126;
}

static int set_rlimits(char *spec) {
    if (strcmp(spec, "-") == 0)
        return 0;
    for (char *item = strtok(spec, ","); item; item = strtok(NULL, ",")) {
        int res;
        long long soft, hard;
        if (sscanf(item, "%d:%lld:%lld", &res, &soft, &hard) != 3) {
            errno = EINVAL;
            return fail("bad rlimit", item);
        }
        struct rlimit rl = {soft < 0 ? RLIM_INFINITY : (rlim_t)soft,
                            hard < 0 ? RLIM_INFINITY : (rlim_t)hard};
        if (setrlimit(res, &rl) != 0)
            return fail("setrlimit", item);
    }
    return 0;
}

static int drop_bounding(unsigned long long keep) {
    for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
        if (!(keep & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 &&
            errno != EINVAL)
            return fail("drop capability from the bounding set", NULL);
    return 0;
}

static int limit_caps(unsigned long long keep) {
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) != 0)
        return fail("capget", NULL);
    for (int i = 0; i < 2; i++) {
        unsigned int mask = (unsigned int)(keep >> (32 * i));
        data[i].effective &= mask;
        data[i].permitted &= mask;
        data[i].inheritable &= mask;
    }
    if (syscall(SYS_capset, &hdr, data) != 0)
        return fail("capset", NULL);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 10 || strcmp(argv[8], "--") != 0) {
        fprintf(stderr,
                "usage: compound-enter ROOT WORKDIR UID GID CAPS NNP RLIMITS -- PROG [ARG...]\n");
        return 126;
    }
    const char *root = argv[1], *wd = argv[2];
    uid_t uid = (uid_t)strtoul(argv[3], NULL, 10);
    gid_t gid = (gid_t)strtoul(argv[4], NULL, 10);
    int rc;
    if (chroot(root) != 0)
        return fail("chroot", root);
    if (chdir("/") != 0)
        return fail("chdir", "/");
    if (chdir(wd) != 0)
        return fail("working directory", wd);
    if ((rc = set_rlimits(argv[7])) != 0)
        return rc;
    /* the bounding set first (it needs CAP_SETPCAP), then the identity
     * (CAP_SETUID/SETGID), then what the process itself holds */
    int all = strcmp(argv[5], "all") == 0;
    unsigned long long keep = all ? 0 : strtoull(argv[5], NULL, 16);
    if (!all && (rc = drop_bounding(keep)) != 0)
        return rc;
    if (setgroups(1, &gid) != 0 || setgid(gid) != 0)
        return fail("set group", argv[4]);
    if (setuid(uid) != 0)
        return fail("set user", argv[3]);
    if (!all && (rc = limit_caps(keep)) != 0)
        return rc;
    if (strcmp(argv[6], "1") == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return fail("no_new_privs", NULL);
    execvp(argv[9], argv + 9);
    int err = errno;
    fprintf(stderr, "compound-enter: %s: %s\n", argv[9], strerror(err));
    return err == ENOENT ? 127 : 126;
}
