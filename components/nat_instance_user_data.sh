#!/bin/bash
# NAT instance bootstrap (Amazon Linux 2023, arm64): forward the private subnets' traffic and
# masquerade it behind this instance's public address. The security group only admits the VPC.
set -euo pipefail

dnf install -y iptables-services
systemctl enable --now iptables

echo "net.ipv4.ip_forward = 1" > /etc/sysctl.d/90-nat-instance.conf
sysctl --system

# The packaged rule set rejects forwarded packets; a NAT instance exists to forward them.
interface="$(ip -o route show default | awk '{print $5; exit}')"
iptables -F FORWARD
iptables -t nat -A POSTROUTING -o "${interface}" -j MASQUERADE
service iptables save
