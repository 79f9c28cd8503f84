#!/bin/sh
# custosd must not call glibc's NSS lookups (getpwnam, getgrnam and kin):
# linked statically, they need the build's own NSS modules at run time,
# which a firmware rootfs (BusyBox, musl) lacks, so "user = app" failed
# there. Users and groups come from src/table/users.* instead.
#
# Reads the symbol table with nm (the build machine's reads every ELF
# target custos builds for). Usage: test_no_nss.sh BINARY...
# Exit: 0 none found, 1 one was, 77 (skip) when nm is missing or every
# binary carries a sanitizer runtime: clang links ASan's statically, and its
# interceptors define these very names (the unsanitized builds check them).
set -u

if ! command -v nm >/dev/null 2>&1; then
    echo "no-nss: nm not found: skipped" >&2
    exit 77
fi
status=0
checked=0
for bin in "$@"; do
    if ! syms=$(nm "$bin" 2>&1); then
        echo "no-nss: nm $bin failed: $syms" >&2
        exit 1
    fi
    if printf '%s\n' "$syms" | grep -qE ' [TtWw] __interceptor_getpwnam$'; then
        echo "no-nss: $bin: a sanitizer runtime is linked in (its interceptors define the NSS names): not checked" >&2
        continue
    fi
    checked=$((checked + 1))
    # Defined (static link) or undefined (dynamic) alike; "@GLIBC_..." may follow.
    found=$(printf '%s\n' "$syms" |
        grep -E ' [TtWwU] (getpwnam|getpwnam_r|getpwuid|getpwuid_r|getgrnam|getgrnam_r|getgrgid|getgrgid_r|getpwent|getgrent|initgroups|getgrouplist)(@.*)?$')
    if [ -n "$found" ]; then
        echo "no-nss: $bin uses NSS lookups:" >&2
        printf '%s\n' "$found" >&2
        status=1
    else
        echo "no-nss: $bin: no NSS user/group lookups"
    fi
done
if [ "$checked" -eq 0 ]; then
    echo "no-nss: no binary could be checked: skipped" >&2
    exit 77
fi
exit $status
