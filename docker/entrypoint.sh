#!/usr/bin/env bash
# The image runs inpars: 'docker run IMAGE reproduce scifact' is 'inpars reproduce scifact'. 'make TARGET' runs the
# Makefile of the mounted folder, or the image's own where the folder has none (make reproduce-scifact, make
# regression, make reproduce-mini-faq). A shell, python, java or nvidia-smi given as the first word runs as it is.
set -euo pipefail

# The image's CUDA comes with torch's wheels (CUDA 13.x: the lock's nvidia-cuda-runtime), which need a host driver of
# branch 580 or newer (NVIDIA's minor version compatibility: any 13.x on >= 580). An older driver gets only torch's
# long warning, so say it in one line. Only where GPUs were passed in (--gpus puts /dev/nvidiactl there); reading one
# file costs nothing. INPARS_DRIVER_ROOT: a folder standing for / (tests).
MIN_NVIDIA_DRIVER=580
check_driver() {
    local root=${INPARS_DRIVER_ROOT:-} line version
    [ -e "$root/dev/nvidiactl" ] && [ -r "$root/proc/driver/nvidia/version" ] || return 0
    IFS= read -r line <"$root/proc/driver/nvidia/version" || [ -n "${line:-}" ] || return 0
    [[ $line =~ [[:space:]]([0-9]+)(\.[0-9]+)+([[:space:]]|$) ]] || return 0
    version=${BASH_REMATCH[0]//[[:space:]]/}
    if (( 10#${BASH_REMATCH[1]} < MIN_NVIDIA_DRIVER )); then
        echo "inpars: the host's NVIDIA driver is $version; this image's CUDA 13 needs $MIN_NVIDIA_DRIVER or newer: upgrade" \
            "the host's driver, or run on the CPU without --gpus (make ... DOCKER=1 GPUS=)" >&2
    fi
    return 0
}
check_driver

if [ "$#" -eq 0 ]; then
    exec inpars --help
fi
case "$1" in
    inpars) shift; exec inpars "$@" ;;
    make)
        shift
        if [ -f Makefile ]; then exec make "$@"; else exec make -f /opt/inpars/Makefile "$@"; fi ;;
    bash | sh | python | python3 | nvidia-smi | java | pytest) exec "$@" ;;
    *) exec inpars "$@" ;;
esac
