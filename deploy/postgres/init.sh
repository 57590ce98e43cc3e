#!/bin/bash
# PostgreSQL first-start initialisation (run once by the postgres image from
# /docker-entrypoint-initdb.d when the data volume is empty).
#
# One database and one login role per Sinergi service, and one for Keycloak (the
# officers' identity provider). Each role owns its own database and nothing else;
# CONNECT is revoked from PUBLIC on every database, so a role cannot even connect to
# another one's database (nor to the maintenance database `postgres`). Passwords come
# from <NAME>_DB_PASSWORD (deploy/.env). Re-running is harmless: existing roles get
# their password reset, existing databases are left as they are (an installation made
# before a database was added runs it once by hand: docs/operations.md, "Upgrade").
#
# Keep SERVICES in step with shared/runtime/topology.py (tests/deploy checks it).
set -euo pipefail

SERVICES=(integration permits health complaints notifications portal)
# Not a Sinergi service, same treatment: Keycloak's realm, users, sessions and keys.
IDENTITY=(keycloak)

psql_admin() {
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres "$@"
}

for service in "${SERVICES[@]}" "${IDENTITY[@]}"; do
    password_var="${service^^}_DB_PASSWORD"
    password="${!password_var:-}"
    if [[ -z "$password" ]]; then
        echo "init.sh: ${password_var} is not set" >&2
        exit 1
    fi
    # Role: login, no other privileges; password (re)set on every run.
    psql_admin -v role="$service" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN PASSWORD :'password';
SQL
    # Database owned by the role (CREATE DATABASE cannot run inside a DO block).
    psql_admin -v db="$service" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"db";
SQL
    # Inside the database: the role owns the public schema; nobody else may use it.
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname "$service" \
        -v role="$service" <<'SQL'
ALTER SCHEMA public OWNER TO :"role";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SQL
    echo "init.sh: database and role '${service}' ready"
done

# The maintenance database is for the superuser only.
psql_admin -c 'REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;'
