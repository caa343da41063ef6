#!/usr/bin/env bash
# The edge package on a Raspberry Pi's userland: arm64 Debian (trixie / Python 3.13 and
# bookworm / Python 3.11) under qemu-user emulation, checked against x86 on the same files.
#
#   sudo bash platform/arm64_check.sh [--run DIR] [--dist trixie|bookworm]... [--images DIR] [--frames DIR]
#
# For each Debian release it builds (once; cached in $ARM64_CACHE, default
# /var/cache/artery-edge-arm64) an arm64 root with debootstrap, then, on every run:
#   1. installs the project with only the `edge` extra as the README tells a Pi user
#      (a venv with --system-site-packages, pip install "artery-edge[edge]" from a wheel
#      of this checkout) and checks TensorFlow is not there;
#   2. runs the TF-free test files (the Makefile's test-edge selection) in a copy of the checkout;
#   3. runs `artery-edge infer --json` on a fixed set of images with the float32, float16,
#      dynamic and int8 models of RUN (default models/reference), converted here on x86 with .venv;
#   4. runs `artery-edge scan --json` (the packaged INT8 whole-frame model, no --model) on a fixed
#      set of whole frames (ARM64_FRAMES, default 20, evenly spaced by name: the image files of
#      --frames DIR, else ARCADE's val/images in ../shared/data/arcade-stenosis, else frames drawn
#      by `artery-edge synth --frames` on x86) and times it with `benchmark --frame` on the first;
# and compares every probability, and every frame's lesions (count, boxes, scores), with the x86
# run of the same files (platform/arm64_compare.py says within what and why).
# Each root runs on the CPU of the Pi its release shipped for (qemu's CPU model and a matching
# /proc/cpuinfo, see pi_cpu): bookworm on a Pi 4's Cortex-A72, trixie on a Pi 5's Cortex-A76, so
# LiteRT's XNNPACK picks the kernels it would pick there (the A76 has dot-product and fp16
# arithmetic, the A72 has neither).
# Prints tables; exit 0 when x86 and arm64 agree, 1 on a mismatch or failure, 2 when this
# machine cannot run arm64 binaries (no root, no binfmt_misc). Timings are emulated, not a Pi's.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${ARM64_CACHE:-/var/cache/artery-edge-arm64}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
HOST_VENV=${VENV:-$REPO/.venv}
HOST_CA=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
RUN=""
IMAGES=""
FRAMES=""
DISTS=()
PER_CLASS=${ARM64_IMAGES_PER_CLASS:-20}
N_FRAMES=${ARM64_FRAMES:-20}
BENCH_RUNS=${ARM64_BENCH_RUNS:-30}  # benchmark --frame: timed invocations (and half as many whole-path runs)

say() { echo "arm64: $*" >&2; }
die() { echo "error: $1" >&2; exit "${2:-1}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --run) RUN=${2:?--run needs a run folder}; shift 2 ;;
        --dist) DISTS+=("${2:?--dist needs trixie or bookworm}"); shift 2 ;;
        --images) IMAGES=${2:?--images needs a folder}; shift 2 ;;
        --frames) FRAMES=${2:?--frames needs a folder of whole frames}; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" 2 ;;
    esac
done
[ ${#DISTS[@]} -gt 0 ] || DISTS=(trixie bookworm)
for d in "${DISTS[@]}"; do
    case "$d" in trixie|bookworm) ;; *) die "unknown --dist $d: choose trixie or bookworm" 2 ;; esac
done

# ---- can this machine run arm64 binaries at all? (one line and exit 2 when not) ----
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, binfmt_misc): run it with sudo" 2
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null \
        || die "no binfmt_misc support here (cannot mount /proc/sys/fs/binfmt_misc): arm64 binaries cannot run" 2
fi
mkdir -p "$CACHE/logs"
if ! command -v debootstrap >/dev/null || [ ! -x /usr/bin/qemu-aarch64-static ]; then
    say "installing qemu-user-static and debootstrap (apt)"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user-static debootstrap binfmt-support; } \
        > "$CACHE/logs/apt.log" 2>&1 || die "cannot install qemu-user-static and debootstrap (see $CACHE/logs/apt.log)" 2
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || die "no binfmt_misc handler for arm64 (qemu-aarch64 is not registered): arm64 binaries cannot run" 2
# Without the F flag the kernel looks for the interpreter inside the root: put it there.
QEMU_IN_ROOT=""
grep -qs '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || QEMU_IN_ROOT=$(sed -n 's/^interpreter //p' /proc/sys/fs/binfmt_misc/qemu-aarch64)

[ -x "$HOST_VENV/bin/artery-edge" ] || die "$HOST_VENV has no artery-edge: run make .venv/.installed (x86 side: convert, infer)"
if [ -z "$RUN" ]; then
    RUN=$REPO/models/reference
    [ -f "$RUN/model.keras" ] || die "no models/reference/model.keras here: give --run DIR (a finished run with model.keras)" 2
fi
[ -f "$RUN/model.keras" ] || die "$RUN: not a finished run (no model.keras)" 2
RUN=$(cd "$RUN" && pwd)

START=$(date +%s)
STAGE=$CACHE/stage            # rebuilt every run: source copy, wheel, images, models, results
TIMES=$STAGE/times.tsv        # dist <tab> key <tab> value, read by arm64_compare.py
MOUNTED=()
cleanup() {
    local i
    for ((i=${#MOUNTED[@]}-1; i>=0; i--)); do umount -l "${MOUNTED[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
now() { date +%s.%N; }
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$TIMES"; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }

# Refuse to delete a folder that still has something mounted inside it (a bind-mounted /dev...).
safe_rm() {
    [ -e "$1" ] || return 0
    if grep -qs " $1/" /proc/mounts; then die "$1 still has mounts inside; unmount them first"; fi
    rm -rf "$1"
}

# ---- arm64 roots (cached: built once, marked complete) ----
# Raspberry Pi OS ships Debian's NumPy and Pillow (python3-picamera2 depends on them), and a venv
# made with --system-site-packages sees them: the roots have them too, so pip's choice is a Pi's.
ROOT_PACKAGES="python3-numpy python3-pil"
build_root() {
    local dist=$1 root=$CACHE/roots/$1 t
    if [ -f "$root/.artery-edge-root" ]; then return 0; fi
    t=$(now)
    if [ ! -f "$root/.debootstrap-ok" ]; then
        safe_rm "$root"
        mkdir -p "$CACHE/roots"
        say "$dist: debootstrap --arch=arm64 (minutes; cached afterwards in $root)"
        debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,ca-certificates \
            "$dist" "$root" "$MIRROR" > "$CACHE/logs/debootstrap-$dist.log" 2>&1 \
            || { tail -n 5 "$CACHE/logs/debootstrap-$dist.log" >&2; die "debootstrap $dist failed (see $CACHE/logs/debootstrap-$dist.log)"; }
        touch "$root/.debootstrap-ok"
    fi
    enter_root "$root"
    say "$dist: apt-get install $ROOT_PACKAGES (Debian's builds, as on Raspberry Pi OS)"
    in_root "$root" sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $ROOT_PACKAGES" \
        > "$CACHE/logs/apt-$dist.log" 2>&1 || { tail -n 5 "$CACHE/logs/apt-$dist.log" >&2; die "apt-get in the $dist root failed (see $CACHE/logs/apt-$dist.log)"; }
    record "$dist" root_s "$(since "$t")"
    date -u +%FT%TZ > "$root/.artery-edge-root"
}

# The Pi each release is checked as: qemu CPU model, then the /proc/cpuinfo fields of that core.
pi_cpu() {  # $1: dist -> "qemu-model implementer variant part revision features"
    case "$1" in
        bookworm) echo "cortex-a72 0x41 0x0 0xd08 3 fp asimd evtstrm crc32 cpuid" ;;  # Pi 4 (BCM2711)
        *) echo "cortex-a76 0x41 0x4 0xd0b 1 fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" ;;  # Pi 5 (BCM2712)
    esac
}
qemu_model() { pi_cpu "$1" | cut -d' ' -f1; }

# qemu-user (Debian bookworm's 7.2) shows a guest the host's x86 /proc/cpuinfo; LiteRT's CPU
# detection (cpuinfo) cannot parse it and the interpreter dies with SIGSEGV before loading any
# model. A real Pi has an ARM one: the root gets one like its Pi's, one entry per host CPU.
fake_cpuinfo() {  # $1: dist, $2: file to write
    local fields i
    read -r _ implementer variant part revision fields <<< "$(pi_cpu "$1")"
    : > "$2"
    for ((i=0; i<$(nproc); i++)); do
        printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: %s\nCPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' \
            "$i" "$fields" "$implementer" "$variant" "$part" "$revision" >> "$2"
    done
}

enter_root() {  # /proc (with the Pi's cpuinfo) and /sys for the root (LiteRT's CPU detection reads them); DNS and CAs from the host
    local root=$1 dist m
    dist=$(basename "$root")
    for m in proc:proc sys:sysfs; do
        if ! mountpoint -q "$root/${m%%:*}"; then
            mount -t "${m#*:}" "${m#*:}" "$root/${m%%:*}" && MOUNTED+=("$root/${m%%:*}")
        fi
    done
    mkdir -p "$CACHE/cpuinfo"
    fake_cpuinfo "$dist" "$CACHE/cpuinfo/$dist"
    if ! grep -qs " $root/proc/cpuinfo " /proc/mounts; then
        mount --bind "$CACHE/cpuinfo/$dist" "$root/proc/cpuinfo" && MOUNTED+=("$root/proc/cpuinfo")
    fi
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    mkdir -p "$root/etc/artery-edge"
    cp "$HOST_CA" "$root/etc/artery-edge/host-ca.pem"
    if [ -n "$QEMU_IN_ROOT" ]; then mkdir -p "$root$(dirname "$QEMU_IN_ROOT")"; cp "$QEMU_IN_ROOT" "$root$QEMU_IN_ROOT"; fi
}

in_root() {  # run a command inside an arm64 root with a clean environment, on its Pi's CPU model
    local root=$1 cpu; shift
    cpu=$(qemu_model "$(basename "$root")")
    QEMU_CPU=$cpu chroot "$root" /usr/bin/env -i QEMU_CPU="$cpu" HOME=/root \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 PIP_CERT=/etc/artery-edge/host-ca.pem PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 \
        ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
        ${HTTP_PROXY:+HTTP_PROXY=$HTTP_PROXY} ${HTTPS_PROXY:+HTTPS_PROXY=$HTTPS_PROXY} "$@"
}

safe_rm "$STAGE"
mkdir -p "$STAGE"
: > "$TIMES"
for d in "${DISTS[@]}"; do build_root "$d"; done
for d in "${DISTS[@]}"; do
    enter_root "$CACHE/roots/$d"
    in_root "$CACHE/roots/$d" /bin/true 2>/dev/null \
        || die "arm64 binaries do not run in $CACHE/roots/$d (binfmt_misc / qemu-aarch64)" 2
done

# ---- on x86: the checkout's files, a wheel, the fixed images, the four models (cached by model.keras) ----
say "x86: wheel of this checkout, images, models"
mkdir -p "$STAGE/src" "$STAGE/dist" "$STAGE/work/models" "$STAGE/x86"
(cd "$REPO" && git ls-files -co --exclude-standard -z | xargs -0 -I{} sh -c '[ ! -f "$1" ] || echo "$1"' _ {} \
    | tar -cf - -T -) | tar -xf - -C "$STAGE/src"
"$HOST_VENV/bin/pip" wheel -q --no-deps --disable-pip-version-check -w "$STAGE/dist" "$STAGE/src" \
    > "$CACHE/logs/wheel.log" 2>&1 || die "cannot build the wheel (see $CACHE/logs/wheel.log)"
WHEEL=$(cd "$STAGE/dist" && ls artery_edge-*.whl | head -n 1)
rm -rf "$STAGE/src/build" "$STAGE/src"/*.egg-info

# The fixed image set: PER_CLASS evenly spaced files (sorted by name) of each class folder of
# --images, else of ../shared/data/stenosis-patches, else of a seeded synthetic set.
if [ -z "$IMAGES" ]; then
    IMAGES=$REPO/../shared/data/stenosis-patches
    if [ ! -d "$IMAGES" ]; then
        IMAGES=$CACHE/synthetic-images
        [ -d "$IMAGES" ] || "$HOST_VENV/bin/artery-edge" synth --out "$IMAGES" --count "$PER_CLASS" --size 128 --seed 24 >/dev/null
    fi
fi
[ -d "$IMAGES" ] || die "--images $IMAGES: no such folder" 2
for class_dir in "$IMAGES"/*/; do
    class=$(basename "$class_dir")
    mapfile -t files < <(find "$class_dir" -maxdepth 1 -type f \( -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' \) | LC_ALL=C sort)
    [ ${#files[@]} -gt 0 ] || continue
    mkdir -p "$STAGE/work/images/$class"
    for ((i=0; i<PER_CLASS && i<${#files[@]}; i++)); do
        cp "${files[$(( i * ${#files[@]} / PER_CLASS ))]}" "$STAGE/work/images/$class/"
    done
done
N_IMAGES=$(find "$STAGE/work/images" -type f | wc -l)
[ "$N_IMAGES" -gt 0 ] || die "no images found in the class folders of $IMAGES" 2
FIRST_IMAGE=$(cd "$STAGE/work" && find images -type f | LC_ALL=C sort | head -n 1)

# The fixed frame set: N_FRAMES evenly spaced image files (sorted by name) of --frames, else of
# ARCADE's validation frames, else of frames drawn once (seeded) by `synth --frames` on x86.
if [ -z "$FRAMES" ]; then
    FRAMES=$REPO/../shared/data/arcade-stenosis/val/images
    if [ ! -d "$FRAMES" ]; then
        FRAMES=$CACHE/synthetic-frames/train/images
        [ -d "$FRAMES" ] || "$HOST_VENV/bin/artery-edge" synth --frames --out "$CACHE/synthetic-frames" \
            --count "$N_FRAMES" --seed 37 > "$CACHE/logs/synth-frames.log" 2>&1 \
            || die "synth --frames failed (see $CACHE/logs/synth-frames.log)"
    fi
fi
[ -d "$FRAMES" ] || die "--frames $FRAMES: no such folder" 2
mapfile -t files < <(find "$FRAMES" -maxdepth 1 -type f \( -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' \) | LC_ALL=C sort)
[ ${#files[@]} -gt 0 ] || die "no image files (png, jpg) in $FRAMES" 2
mkdir -p "$STAGE/work/frames"
for ((i=0; i<N_FRAMES && i<${#files[@]}; i++)); do
    cp "${files[$(( i * ${#files[@]} / N_FRAMES ))]}" "$STAGE/work/frames/"
done
N_FRAMES=$(find "$STAGE/work/frames" -type f | wc -l)
FIRST_FRAME=$(cd "$STAGE/work" && find frames -type f | LC_ALL=C sort | head -n 1)

PRECISION_NAMES=$("$HOST_VENV/bin/python" -c "import sys; sys.path.insert(0, '$REPO'); from artery_edge.edge.precisions import PRECISIONS; print(' '.join(PRECISIONS))")
KEY=$(sha256sum "$RUN/model.keras" | cut -c1-16)
MODELS=$CACHE/models/$KEY
if [ ! -f "$MODELS/.complete" ]; then
    say "x86: converting $RUN to every precision (cached in $MODELS)"
    safe_rm "$MODELS"
    mkdir -p "$CACHE/models"
    t=$(now)
    "$HOST_VENV/bin/artery-edge" convert "$RUN" --quantize all --out "$MODELS" > "$CACHE/logs/convert.log" 2>&1 \
        || { safe_rm "$MODELS"; die "conversion failed (see $CACHE/logs/convert.log)"; }
    record x86 convert_s "$(since "$t")"
    echo "$RUN" > "$MODELS/.complete"
fi
for p in $PRECISION_NAMES; do cp "$MODELS/model_$p.tflite" "$STAGE/work/models/"; done

# One cold process with one image, then each model on the whole set; the same commands on both sides.
infer_all() {  # $1: label for times.tsv, $2: output folder, then the command prefix that runs artery-edge
    local side=$1 out=$2 t; shift 2
    t=$(now)
    "$@" infer --model models/model_int8.tflite --image "$FIRST_IMAGE" --json > "$out/cold.json" 2> "$out/cold.err" \
        || { cat "$out/cold.err" >&2; return 1; }
    record "$side" cold_start_s "$(since "$t")"
    for p in $PRECISION_NAMES; do
        t=$(now)
        "$@" infer --model "models/model_$p.tflite" --image images --json > "$out/$p.json" 2> "$out/$p.err" || true
        record "$side" "infer_${p}_s" "$(since "$t")"
    done
}
# The packaged whole-frame model on the frame set (scan picks it: no --model), then benchmark
# times it on one frame: the model alone and the whole path (decode, resize, map, lesions).
scan_all() {  # $1: label for times.tsv, $2: output folder, then the command prefix that runs artery-edge
    local side=$1 out=$2 t model; shift 2
    t=$(now)
    "$@" scan frames --json > "$out/frames.json" 2> "$out/frames.err" || { tail -n 3 "$out/frames.err" >&2; return 1; }
    record "$side" scan_s "$(since "$t")"
    model=$("$HOST_VENV/bin/python" -c "import json, sys; print(json.load(open(sys.argv[1]))['model'])" "$out/frames.json")
    "$@" benchmark --model "$model" --frame "$FIRST_FRAME" --runs "$BENCH_RUNS" --warmup 3 --json \
        > "$out/frame_bench.json" 2> "$out/frame_bench.err" || { tail -n 3 "$out/frame_bench.err" >&2; return 1; }
}
x86_version() {
    "$HOST_VENV/bin/python" -c "import sys, numpy, PIL, importlib.metadata as m; print(f'{sys.version.split()[0]} / {m.version(\"ai-edge-litert\")} / {numpy.__version__} / {PIL.__version__}')"
}
say "x86: infer --json on $N_IMAGES images x {$PRECISION_NAMES}"
record x86 versions "$(x86_version)"
record x86 tf_absent "n/a (.venv)"
(cd "$STAGE/work" && infer_all x86 "$STAGE/x86" "$HOST_VENV/bin/artery-edge") || die "x86 infer failed"
say "x86: scan --json on $N_FRAMES frames (packaged whole-frame model), benchmark --frame $FIRST_FRAME"
(cd "$STAGE/work" && scan_all x86 "$STAGE/x86" "$HOST_VENV/bin/artery-edge") || die "x86 scan failed (see $STAGE/x86/frames.err)"

# ---- on arm64: install as a Pi user would, the TF-free tests, the same infer and scan commands ----
# The dev extra's test tools, with OpenCV's headless build: Raspberry Pi OS Lite has no libGL.so.1,
# which opencv-python's window support links (same cv2 API; the tests open no window).
mapfile -t DEV_TOOLS < <("$HOST_VENV/bin/python" -c "import tomllib; print('\n'.join(tomllib.load(open('$REPO/pyproject.toml', 'rb'))['project']['optional-dependencies']['dev']))" \
    | sed 's/^opencv-python\b/opencv-python-headless/')
# The Makefile's test-edge selection (its pytest arguments), so the two never drift apart.
fake_venv=$(mktemp -d); touch "$fake_venv/.installed"
TEST_ARGS=$(make -s -n -C "$REPO" test-edge EDGE_VENV="$fake_venv" PYTHON=python3 | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' \
    | grep -m 1 -- '-m pytest' | sed 's/.*-m pytest//')
rm -rf "$fake_venv"
[ -n "$TEST_ARGS" ] || die "cannot read the test-edge selection from the Makefile"

check_dist() {
    local dist=$1 root=$CACHE/roots/$1 box=/opt/artery-edge-check out=$STAGE/arm64-$1 t rc log summary
    local py="$box/venv/bin/python"
    mkdir -p "$out"
    safe_rm "$root$box"
    mkdir -p "$root$box"
    cp -a "$STAGE/src" "$STAGE/dist" "$STAGE/work" "$root$box/"
    say "$dist: python3 -m venv --system-site-packages; pip install \"$WHEEL[edge]\""
    t=$(now)
    in_root "$root" sh -c "cd $box && python3 -m venv --system-site-packages venv && venv/bin/pip install -q 'dist/$WHEEL[edge]'" \
        > "$CACHE/logs/install-$dist.log" 2>&1 || { tail -n 5 "$CACHE/logs/install-$dist.log" >&2; record "$dist" install_s failed; return 1; }
    record "$dist" install_s "$(since "$t")"
    record "$dist" cpu "$(qemu_model "$dist") ($(in_root "$root" sh -c 'grep -m1 "^Features" /proc/cpuinfo | cut -d: -f2 | wc -w') cpuinfo features)"
    record "$dist" versions "$(in_root "$root" "$py" -c "import sys, numpy, PIL, importlib.metadata as m; print(f'{sys.version.split()[0]} / {m.version(\"ai-edge-litert\")} / {numpy.__version__} / {PIL.__version__}')")"
    if in_root "$root" "$py" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('tensorflow') is not None)"; then
        record "$dist" tf_absent yes
    else
        record "$dist" tf_absent NO
    fi
    say "$dist: infer --json on $N_IMAGES images x {$PRECISION_NAMES}"
    infer_all "$dist" "$out" in_root "$root" sh -c "cd $box/work && exec ../venv/bin/artery-edge \"\$@\"" artery-edge \
        || say "$dist: infer failed (see $out)"
    say "$dist: scan --json on $N_FRAMES frames, benchmark --frame (emulated timings)"
    scan_all "$dist" "$out" in_root "$root" sh -c "cd $box/work && exec ../venv/bin/artery-edge \"\$@\"" artery-edge \
        || say "$dist: scan failed (see $out)"
    say "$dist: test tools (${DEV_TOOLS[*]}) and the TF-free tests"
    in_root "$root" "$box/venv/bin/pip" install -q "${DEV_TOOLS[@]}" > "$CACHE/logs/dev-$dist.log" 2>&1 \
        || { tail -n 5 "$CACHE/logs/dev-$dist.log" >&2; record "$dist" tests "test tools failed"; return 1; }
    log=$CACHE/logs/tests-$dist.log
    t=$(now)
    rc=0
    in_root "$root" sh -c "cd $box/src && exec ../venv/bin/python -m pytest $TEST_ARGS" > "$log" 2>&1 || rc=$?
    record "$dist" tests_s "$(since "$t")"
    record "$dist" tests_rc "$rc"
    record "$dist" tests_log "$log"
    summary=$(tail -n 1 "$log")
    count() { local n; n=$(echo "$summary" | grep -o "[0-9]* $1" | cut -d' ' -f1 || true); echo "${n:-0}"; }
    record "$dist" tests "$(count passed) / $(count skipped) / $(count failed)"
}
for d in "${DISTS[@]}"; do check_dist "$d" || say "$d: stopped early (see $CACHE/logs)"; done

# ---- the table ----
rc=0
"$HOST_VENV/bin/python" "$REPO/platform/arm64_compare.py" --stage "$STAGE" $(printf -- '--dist %s ' "${DISTS[@]}") || rc=$?
echo "wall time $(( $(date +%s) - START )) s ($( [ -n "$(cut -f2 "$TIMES" | grep -x root_s)" ] && echo "cold: roots built" || echo "warm: cached roots")); logs in $CACHE/logs"
exit "$rc"
