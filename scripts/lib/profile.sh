# Sourced by scripts/bindings.sh, kotlin-test.sh, swift-test.sh and
# ios/build-xcframework.sh: their one option, `--profile dev|release|mobile`
# (default dev, or `katcore_default_profile`).
#
#   [katcore_default_profile=mobile] katcore_profile_args "$@"
#
# Sets `profile` and `dir` (its directory under Cargo's target/: `debug` for
# dev). `-h`/`--help` prints the calling script's header comment and exits;
# anything else is refused, naming the script.

katcore_profile_args() {
  profile="${katcore_default_profile:-dev}"
  while [ $# -gt 0 ]; do
    case "$1" in
      --profile) profile="${2:?--profile needs a value}"; shift 2 ;;
      --profile=*) profile="${1#--profile=}"; shift ;;
      -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
      *) echo "$(basename "$0"): unknown argument $1" >&2; exit 2 ;;
    esac
  done
  case "$profile" in
    dev) dir=debug ;;
    release|mobile) dir="$profile" ;;
    *) echo "$(basename "$0"): unknown profile $profile (dev, release or mobile)" >&2; exit 2 ;;
  esac
}
