#!/bin/sh
# Written for saferun's tests after the official eclipse-mosquitto entrypoint: as root, give
# /mosquitto (config, data, log, possibly freshly mounted) to the mosquitto user, then run
# the command; mosquitto drops its own privileges to that user.
set -e
if [ "$(id -u)" = '0' ] && [ -d /mosquitto ]; then
    chown -R mosquitto:mosquitto /mosquitto || true
fi
exec "$@"
