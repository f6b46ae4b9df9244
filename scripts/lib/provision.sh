# Sourced by scripts/test.sh and scripts/run.sh from the project's root:
# makes sure cargo can build the workspace from its lock files.
#
# On a machine that reaches the crate registry this changes nothing. On one
# that reaches only Debian's archive and PyPI (the project's `swift` kind of
# machine), it provisions the machine from the offline bundle beside the
# clone, `../shared/offline/use-bundle.sh` (vendored crates, the npm cache,
# rustfmt/clippy, cargo-nextest, cargo-fuzz), and says so in one line. With
# neither a registry nor a bundle it fails, naming both.
#
# The probe is the bundle README's: a `cargo fetch --locked` that gives up in
# well under 10 s against an unreachable registry. On a machine the bundle
# already provisioned (its block in cargo's config.toml), the bundle's script
# runs again instead: it does nothing unless the bundle changed or npm's
# settings were changed since.

katcore_provision() {
  local bundle="${KATCORE_OFFLINE_BUNDLE:-../shared/offline}"
  local cargo_config="${CARGO_HOME:-$HOME/.cargo}/config.toml"
  if grep -q '^# katcore-offline' "$cargo_config" 2>/dev/null && [ -x "$bundle/use-bundle.sh" ]; then
    # Provisioned from the bundle before: run it again (idempotent, about a second), so
    # that a newer bundle is unpacked and npm's settings are put back if they changed.
    "$bundle/use-bundle.sh" . >/dev/null
    return 0
  fi
  if CARGO_NET_RETRY=0 CARGO_HTTP_TIMEOUT=10 timeout -k 5 30 cargo fetch --locked >/dev/null 2>&1; then
    return 0
  fi
  if [ ! -x "$bundle/use-bundle.sh" ]; then
    echo "provision: the crate registry cannot be reached and there is no offline bundle at $bundle (set KATCORE_OFFLINE_BUNDLE)" >&2
    return 1
  fi
  echo "==> the crate registry cannot be reached: provisioning from the offline bundle $bundle"
  "$bundle/use-bundle.sh" . >/dev/null
  if ! cargo fetch --locked >/dev/null 2>&1; then
    echo "provision: cargo still cannot resolve the lock file after $bundle/use-bundle.sh (a crate the bundle lacks?)" >&2
    cargo fetch --locked >&2 || true
    return 1
  fi
}
