# Shell functions shared by the tools/ scripts; source it, don't run it.

# ensure_debian_packages PKG...: install those not yet installed.
# SP_SKIP_APT=1 turns a missing package into an error instead.
ensure_debian_packages() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
            | grep -q '^install ok installed$' || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    if [ "${SP_SKIP_APT:-0}" = 1 ]; then
        echo "missing Debian packages: ${missing[*]}" >&2
        return 1
    fi
    echo "installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Lock timeout: another apt run (e.g. provisioning) may still hold it.
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0 install -y -qq \
        --no-install-recommends "${missing[@]}"
}
