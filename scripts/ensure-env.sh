#!/usr/bin/env bash
# First start: if neither the environment nor .env gives APP_PASS, generate a strong
# password, write .env (mode 0600) and print the credentials once.
set -euo pipefail
ENV_FILE=${ENV_FILE:-.env}

if [ -n "${APP_PASS:-}" ]; then exit 0; fi
if [ -f "$ENV_FILE" ] && grep -qE '^[[:space:]]*APP_PASS=.+' "$ENV_FILE"; then exit 0; fi

user=${APP_USER:-admin}
if [ -f "$ENV_FILE" ] && grep -qE '^[[:space:]]*APP_USER=.+' "$ENV_FILE"; then
  user=$(grep -E '^[[:space:]]*APP_USER=' "$ENV_FILE" | tail -1 | cut -d= -f2-)
fi
pass=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
umask 077
touch "$ENV_FILE"
chmod 600 "$ENV_FILE"
grep -qE '^[[:space:]]*APP_USER=' "$ENV_FILE" || echo "APP_USER=$user" >>"$ENV_FILE"
echo "APP_PASS=$pass" >>"$ENV_FILE"
cat <<MSG
================================================================
 Dockyard admin account (shown once; kept in $ENV_FILE, mode 0600)
   user:     $user
   password: $pass
================================================================
MSG
