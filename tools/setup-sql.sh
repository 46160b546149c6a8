#!/usr/bin/env bash
# PostgreSQL and MariaDB for the functional tests, as root on Debian:
# installed and started when nothing answers on their ports, and a test
# account (serialproxy_test, password serialproxy_test) that may create
# and drop databases named sp_test_*. Idempotent.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"

log() { echo "setup-sql: $*" >&2; }
account=serialproxy_test

[ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 1; }

# PostgreSQL
ensure_debian_packages postgresql-client
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    ensure_debian_packages postgresql
    log "starting PostgreSQL"
    pg_lsclusters -h | while read -r version cluster _; do
        pg_ctlcluster "$version" "$cluster" start || true
    done
    for _ in $(seq 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    pg_isready -q -h 127.0.0.1 -p 5432 || { log "PostgreSQL did not come up"; exit 1; }
fi
psql_admin() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$account'")" != 1 ]; then
    psql_admin -c "CREATE ROLE $account LOGIN CREATEDB PASSWORD '$account'"
fi
log "PostgreSQL answers; role $account can create databases"

# MariaDB
ensure_debian_packages mariadb-client
mariadb_answers() { mysqladmin -uroot --silent ping >/dev/null 2>&1; }
if ! mariadb_answers; then
    ensure_debian_packages mariadb-server
    log "starting MariaDB"
    # Debian's init script gives up after 30 s of "running but not
    # responding" while mariadbd is still recovering or creating its files
    # on a cold machine; the server itself keeps coming up, so its verdict
    # is not ours: wait for the server to answer.
    if [ -d /run/systemd/system ]; then
        systemctl start mariadb || log "systemctl start mariadb failed; waiting"
    else
        service mariadb start || log "the init script gave up; waiting for mariadbd"
    fi
    for _ in $(seq 180); do mariadb_answers && break; sleep 1; done
    if ! mariadb_answers; then
        log "MariaDB did not come up within 180 s; its error log ends:"
        tail -n 30 /var/log/mysql/error.log >&2 || true
        exit 1
    fi
fi
for host in localhost 127.0.0.1; do
    mysql -uroot -e "CREATE USER IF NOT EXISTS '$account'@'$host'
                         IDENTIFIED BY '$account';
                     GRANT ALL PRIVILEGES ON \`sp\\_test\\_%\`.*
                         TO '$account'@'$host';"
done
log "MariaDB answers; user $account can create sp_test_* databases"
