# prom/alertmanager's layout: /bin/alertmanager, config in /etc/alertmanager, data in /alertmanager (nobody's).
ln -sf prometheus-alertmanager /usr/bin/alertmanager
mkdir -p /etc/alertmanager /alertmanager
chown nobody:nogroup /alertmanager
