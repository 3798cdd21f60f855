#!/usr/bin/env bash
# The image runs inpars: 'docker run IMAGE reproduce scifact' is 'inpars reproduce scifact'. A shell, python, make or
# nvidia-smi given as the first word runs as it is, for a look inside.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    exec inpars --help
fi
case "$1" in
    inpars) shift; exec inpars "$@" ;;
    bash | sh | python | python3 | make | nvidia-smi | java) exec "$@" ;;
    *) exec inpars "$@" ;;
esac
