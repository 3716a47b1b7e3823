"""A throwaway OpenLDAP server for the directory tests (real slapd on a free loopback port)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SUFFIX = "dc=example,dc=com"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "test-root-secret"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis", "dyngroup")

CONF = """\
{includes}
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
moduleload dynlist
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args

database mdb
maxsize 67108864
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_pw}
directory {dir}/data

overlay dynlist
dynlist-attrset groupOfURLs memberURL member+memberOf@groupOfNames*

overlay ppolicy
ppolicy_default "cn=default,ou=policies,{suffix}"
ppolicy_use_lockout
"""

BASE_LDIF = """\
dn: {suffix}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=policies,{suffix}
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,{suffix}
objectClass: pwdPolicy
objectClass: person
cn: default
sn: policy
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: 2
pwdLockoutDuration: 600
pwdFailureCountInterval: 0

dn: ou=locked,{suffix}
objectClass: organizationalUnit
ou: locked

dn: uid=frozen,ou=locked,{suffix}
objectClass: inetOrgPerson
uid: frozen
cn: Frozen Person
sn: Person
userPassword: frozen-pw
pwdAccountLockedTime: 000001010000Z
"""


@dataclass(frozen=True)
class Slapd:
    url: str
    port: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_slapd(workdir: Path) -> tuple[Slapd, subprocess.Popen[bytes]]:
    """Write a config, load the base LDIF offline, start slapd and wait until it answers."""
    (workdir / "data").mkdir(parents=True)
    includes = "\n".join(f"include /etc/ldap/schema/{s}.schema" for s in SCHEMAS)
    conf = workdir / "slapd.conf"
    conf.write_text(
        CONF.format(includes=includes, dir=workdir, suffix=SUFFIX, root_dn=ROOT_DN, root_pw=ROOT_PW)
    )
    ldif = workdir / "base.ldif"
    ldif.write_text(BASE_LDIF.format(suffix=SUFFIX))
    subprocess.run(["/usr/sbin/slapadd", "-f", str(conf), "-l", str(ldif), "-q"], check=True)
    port = free_port()
    url = f"ldap://127.0.0.1:{port}/"
    proc = subprocess.Popen(
        ["/usr/sbin/slapd", "-f", str(conf), "-h", url, "-d", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        probe = subprocess.run(
            ["ldapsearch", "-x", "-H", url, "-b", "", "-s", "base"],
            capture_output=True,
        )
        if probe.returncode == 0:
            return Slapd(url=f"ldap://127.0.0.1:{port}", port=port), proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("slapd did not answer within 10 s")


def stop_slapd(proc: subprocess.Popen[bytes], workdir: Path) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    shutil.rmtree(workdir, ignore_errors=True)
