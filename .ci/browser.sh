#!/usr/bin/env bash
# Makes sure a headless Chromium and its WebDriver are available for tests/browser.rs and
# tests/account_page.rs: installs Debian's `chromium` when no browser is found and
# `chromium-driver` when no `chromedriver` is found, then checks that the browser starts and
# runs a script. Run as root (or with sudo available) on Debian or Ubuntu.
set -euo pipefail

find_browser() {
    if [[ -n "${CHROMIUM:-}" ]] && command -v "$CHROMIUM" >/dev/null 2>&1; then
        command -v "$CHROMIUM"
        return 0
    fi
    for candidate in chromium chromium-browser google-chrome; do
        if command -v "$candidate" >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

find_driver() {
    if [[ -n "${CHROMEDRIVER:-}" ]] && command -v "$CHROMEDRIVER" >/dev/null 2>&1; then
        command -v "$CHROMEDRIVER"
        return 0
    fi
    command -v chromedriver
}

missing=()
if ! find_browser >/dev/null; then
    missing+=(chromium)
fi
if ! find_driver >/dev/null; then
    missing+=(chromium-driver)
fi
if ((${#missing[@]})); then
    echo "browser.sh: installing ${missing[*]}" >&2
    sudo=""
    if [[ "$(id -u)" != 0 ]]; then
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
browser="$(find_browser)"
driver="$(find_driver)"

"$browser" --version
"$driver" --version

profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
dom="$(timeout 60 "$browser" --headless --no-sandbox --disable-gpu --disable-quic \
    --disable-background-networking --disable-component-update --disable-sync \
    --no-first-run --no-proxy-server --user-data-dir="$profile" \
    --dump-dom "data:text/html,<p id=p>no</p><script>p.textContent='js-ok'</script>" 2>/dev/null)"
if [[ "$dom" != *js-ok* ]]; then
    echo "browser.sh: $browser does not run scripts headless" >&2
    exit 1
fi
echo "browser.sh: $browser runs headless"
