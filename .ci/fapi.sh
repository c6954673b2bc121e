#!/usr/bin/env bash
# Makes sure the stock clients tests/fapi.rs drives are there: openid-client 6 (npm, pinned by
# tests/fapi/package-lock.json) and Authlib 1.6.5 (PyPI).
set -euo pipefail
cd "$(dirname "$0")/../tests/fapi"
if ! node -e "import('openid-client')" >/dev/null 2>&1; then
  npm ci --no-audit --no-fund --loglevel=error
fi
if ! python3 -c 'import authlib' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore authlib==1.6.5
fi
node -e "import('openid-client').then(() => console.log('openid-client', require('./node_modules/openid-client/package.json').version))"
python3 -c 'import authlib; print("authlib", authlib.__version__)'
