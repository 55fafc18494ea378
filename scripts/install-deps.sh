#!/usr/bin/env bash
# Debian packages Gantry's tests and benchmarks talk to for real: Docker Engine (and
# busybox-static, from which the test image is made without a registry), nginx for the
# upstream renderer, Redis for registry publishing, dnsmasq and dnsperf for the DNS benchmark,
# openssl to make the throwaway CA and certificates of the TLS tests, docker-registry (Docker
# Distribution 2.8) and apache2-utils (htpasswd, for its bcrypt logins) for a real registry that
# the image tests push to and agents pull from, slapd and ldap-utils (ldapadd, ldapmodify) for
# a real OpenLDAP directory that directory sign-in is tested against, prometheus (2.42) to
# scrape the server's /metrics and discover instances through its HTTP SD, prometheus-alertmanager
# (0.25) to route the alerts Gantry pushes to it, perl (with Time::HiRes) for the process
# runtime's log writer, and chromium for the web console's browser tests (driven by
# playwright-core; never a downloaded browser) with a font for its screenshots.
set -euo pipefail
declare -A program_of=([docker.io]=dockerd [busybox-static]=busybox [curl]=curl [nginx]=nginx [redis-server]=redis-server [dnsmasq]=dnsmasq [dnsperf]=dnsperf [iproute2]=ip [openssl]=openssl [docker-registry]=docker-registry [apache2-utils]=htpasswd [slapd]=slapd [ldap-utils]=ldapadd [prometheus]=prometheus [prometheus-alertmanager]=prometheus-alertmanager [chromium]=chromium)
need=()
for pkg in "${!program_of[@]}"; do
  command -v "${program_of[$pkg]}" >/dev/null || [ -x "/usr/sbin/${program_of[$pkg]}" ] || need+=("$pkg")
done
# The process runtime's log writer is Perl with Time::HiRes: in the perl package, not perl-base.
perl -MTime::HiRes -e 1 2>/dev/null || need+=(perl)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  # Packages must not start their services here: the tests start their own instances.
  made_policy=no
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=yes
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ "$made_policy" = no ] || rm -f /usr/sbin/policy-rc.d
fi
echo "dependencies present: $(dockerd --version)"
