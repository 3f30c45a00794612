#!/usr/bin/env bash
# Rebuild the recordings corpora the shipped model was trained and probed on, from free music in Debian's
# game packages: fetch the packages (apt-get download, no install), unpack them, open the archives that hold
# music, then decode every track with `immersions data recordings`.
#   evaluation (never trained on): ufoai-music (orchestral), singularity-music (electronic),
#                                  warzone2100-music (rock, electronic and orchestral; Opus)
#   development (model choice):    drascula-music (adventure-game score), supertuxkart-data (pop, electronic)
#   training:                      every other package below (boswars-data, tecnoballz-data and
#                                  garden-of-coloured-lights-data hold no recorded music of 30 s or more)
# Never add a wesnoth music package or nexuiz-music: they are kept for an independent evaluation.
# Usage: benchmarks/build_recordings.sh WORK_DIR   (about 2.3 GB of packages; 9.1 h of evaluation, 5.8 h of development and 7.2 h of training audio; needs apt-get,
# dpkg-deb and unzip, and this package installed with the [corpus] extra)
set -euo pipefail
work="$(realpath "${1:?usage: $0 WORK_DIR}")"
mkdir -p "$work/debs" "$work/pkgs"
EVAL=(ufoai-music singularity-music warzone2100-music)
DEV=(drascula-music supertuxkart-data)
TRAIN=(0ad-data hyperrogue-music planetblupi-music-ogg pushover-data asc-music fillets-ng-data)
cd "$work/debs"
apt-get download "${EVAL[@]}" "${DEV[@]}" "${TRAIN[@]}"
for deb in *.deb; do
  name="${deb%%_*}"
  [ -d "$work/pkgs/$name" ] || dpkg-deb -x "$deb" "$work/pkgs/$name"
done
# music packed in game archives
mkdir -p "$work/pkgs/ufoai-music/extracted" "$work/pkgs/0ad-data/extracted"
unzip -q -o "$work/pkgs/ufoai-music/usr/share/games/ufoai/base/0music.pk3" -d "$work/pkgs/ufoai-music/extracted"
unzip -q -o "$work/pkgs/0ad-data/usr/share/games/0ad/mods/public/public.zip" 'audio/music/*' \
  -d "$work/pkgs/0ad-data/extracted"
P="$work/pkgs"
# each source is named after its package, less a -data or -music-ogg suffix
sources() { for name in "$@"; do short="${name%-data}"; echo "${short%-music-ogg}=$P/$name"; done; }
immersions data recordings $(sources "${EVAL[@]}") "$work/rec-eval" --min-seconds 30
immersions data recordings $(sources "${DEV[@]}") "$work/rec-dev" --min-seconds 30 \
  --exclude "$work/rec-eval/manifest.csv"
immersions data recordings $(sources "${TRAIN[@]}") "$work/rec-train" --min-seconds 30 \
  --exclude "$work/rec-eval/manifest.csv" "$work/rec-dev/manifest.csv"
