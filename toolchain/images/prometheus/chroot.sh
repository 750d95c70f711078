# prom/prometheus's layout: data in /prometheus, console files under /usr/share/prometheus, owned by nobody.
mkdir -p /prometheus
chown nobody:nogroup /prometheus
ln -sfn /etc/prometheus/consoles /usr/share/prometheus/consoles
ln -sfn /etc/prometheus/console_libraries /usr/share/prometheus/console_libraries
# The web UI loads moment-timezone-with-data.min.js only; the package's per-zone data files are 210 MB.
rm -rf /usr/share/javascript/moment-timezone/data
