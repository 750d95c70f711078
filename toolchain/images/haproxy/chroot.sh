# haproxy:2.6's layout: the config in /usr/local/etc/haproxy (Debian's own under /etc/haproxy is left as it is).
mkdir -p /usr/local/etc/haproxy
ln -sf /usr/sbin/haproxy /usr/local/sbin/haproxy
