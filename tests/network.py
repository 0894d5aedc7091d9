"""Reading `strace` logs: which addresses outside this machine a process tried to reach."""

import re
import shutil

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
ADDRESS = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6?, "([^"]+)"')
CALLS = "trace=connect,sendto,sendmsg,sendmmsg,bind"
STRACE = shutil.which("strace")


def traced(command: list, log) -> list:
    """`command` run under `strace -f`, logging its socket calls to `log`."""
    return [STRACE, "-f", "-qq", "-e", CALLS, "-o", str(log), *map(str, command)]


def outside_addresses(trace: str) -> set[str]:
    """Every IP address in a strace log of socket calls that is not loopback."""
    found = set()
    for line in trace.splitlines():
        for match in ADDRESS.finditer(line):
            address = match.group(1) or match.group(2)
            if address not in LOOPBACK:
                found.add(f"{address} ({line.split()[0]}: {line.split('(')[0].split()[-1]})")
    return found
