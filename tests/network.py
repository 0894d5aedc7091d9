"""Reading `strace` logs: socket calls that leave this machine, and every DNS query.

The trace covers every socket call (`%network`) of the process and its children, each file
descriptor annotated with its endpoints (`-yy`), so a `sendmmsg` on a connected UDP socket shows
where it goes. Loopback and Unix or netlink sockets are fine; any other internet address is
reported, and so is anything sent to or received from port 53, on any address (a stub resolver on
127.0.0.53 forwards the query outside), and a connection to systemd-resolved's socket.
"""

import ipaddress
import re
import shutil

STRACE = shutil.which("strace")


class ReachedOutside(AssertionError):
    """A traced run sent something outside this machine, or asked DNS for a name."""


# An IPv4 or IPv6 socket address as strace prints it, and its parts.
SOCKADDR = re.compile(r"\{sa_family=AF_INET6?, [^}]*\}")
PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
ADDRESS = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')
# A descriptor annotated by -yy: 5<TCP:[127.0.0.1:40112->127.0.0.1:6379]>, <UDPv6:[[::1]:53->…]>
ENDPOINTS = re.compile(r"<(?:TCP|UDP|UDPLITE|SCTP|RAW|PING)(?:v6)?:\[(.*?)\]>")
ENDPOINT = re.compile(r"\[([0-9a-fA-F:.]+)\]:(\d+)|(\d+\.\d+\.\d+\.\d+):(\d+)")
RESOLVED = "/run/systemd/resolve/"
DNS_PORT = 53
CALL = re.compile(r"^(\d+)\s+(?:<\.\.\. )?(\w+)")


def traced(command: list, log) -> list:
    """`command` under `strace -f`, logging every socket call of it and its children to `log`."""
    options = ["-f", "-qq", "-yy", "--seccomp-bpf", "-s", "0", "-e", "trace=%network"]
    return [STRACE, *options, "-o", str(log), *map(str, command)]


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _endpoints(line: str):
    """(address, port) of every internet socket address in one strace line."""
    for sockaddr in SOCKADDR.finditer(line):
        port, address = PORT.search(sockaddr.group()), ADDRESS.search(sockaddr.group())
        if port and address:
            yield address.group(1) or address.group(2), int(port.group(1))
    for annotation in ENDPOINTS.finditer(line):
        for end in ENDPOINT.finditer(annotation.group(1)):
            yield end.group(1) or end.group(3), int(end.group(2) or end.group(4))


def outside_traffic(trace: str) -> set[str]:
    """Every outside address and every DNS query in a strace log, as `what (pid: call)`."""
    found = set()
    for line in trace.splitlines():
        call = CALL.match(line)
        where = f"({call.group(1)}: {call.group(2)})" if call else f"({line[:40]})"
        for address, port in _endpoints(line):
            if port == DNS_PORT:
                found.add(f"DNS {address}:{port} {where}")
            elif not _is_loopback(address):
                found.add(f"{address}:{port} {where}")
        if RESOLVED in line:
            found.add(f"DNS systemd-resolved {where}")
    return found
