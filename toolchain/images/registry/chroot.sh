# registry:2's command names, so a command written for the public image runs here too.
ln -sf docker-registry /usr/bin/registry
mkdir -p /var/lib/registry
chown docker-registry:docker-registry /var/lib/registry
