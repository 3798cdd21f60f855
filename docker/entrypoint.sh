#!/usr/bin/env bash
# The image runs inpars: 'docker run IMAGE reproduce scifact' is 'inpars reproduce scifact'. 'make TARGET' runs the
# Makefile of the mounted folder, or the image's own where the folder has none (make reproduce-scifact, make
# regression, make reproduce-mini-faq). A shell, python, java or nvidia-smi given as the first word runs as it is.
set -euo pipefail

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
